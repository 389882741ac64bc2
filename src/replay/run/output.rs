//! What a replay writes: both views of the capture, a verdict line and pcapng comments per
//! record, violations marked on the packets, and the summary at the end.

use super::*;

impl<W: Write> Run<W> {
    /// Writes the packet in `buf` where the verdict sends it; one handed to a NIC is observed
    /// as delivered.
    pub(super) fn emit(
        &mut self,
        at: At,
        ingress: Option<Ingress>,
        verdict: Verdict,
        out_ts: u64,
    ) -> Result<(), ReplayError> {
        let (egress, emitted) = match verdict {
            Verdict::Forward(e) => (e, Emitted::Forward),
            Verdict::Respond(e) => (e, Emitted::Respond),
            Verdict::PassThrough => {
                self.stats.pass_through += 1;
                return Ok(());
            }
            Verdict::Buffered => {
                self.stats.buffered += 1;
                return Ok(());
            }
            Verdict::Drop(_) => {
                self.stats.dropped += 1;
                return Ok(());
            }
        };
        let s = &mut self.stats;
        match (egress, emitted, ingress.is_some()) {
            (Egress::Outside, _, false) => s.released_outside += 1,
            (Egress::Nic(_), _, false) => s.released_inside += 1,
            (Egress::Outside, Emitted::Forward, true) => s.forward_outside += 1,
            (Egress::Nic(_), Emitted::Forward, true) => s.forward_inside += 1,
            (Egress::Outside, Emitted::Respond, true) => s.respond_outside += 1,
            (Egress::Nic(_), Emitted::Respond, true) => s.respond_inside += 1,
        }
        let violations_before = if ingress.is_some() {
            self.record_violations
        } else {
            self.checks.total()
        };
        if let Egress::Nic(n) = egress {
            // As the simulator counts it: through the gateway from outside, or a hairpin
            // (forwarded from a NIC to another NIC).
            let from_outside = match ingress {
                Some(Ingress::Outside) | None => true,
                Some(Ingress::Inside(_)) => emitted == Emitted::Forward,
            };
            self.checks.observe(
                at,
                &Observation::Delivered {
                    nic: Some(n),
                    from_outside,
                    pkt: &self.buf,
                },
            );
        }
        self.egress_comment(at, ingress.is_some(), egress, emitted);
        self.mark_violations(violations_before);
        match egress {
            Egress::Outside => {
                self.outside
                    .write_packet_commented(
                        self.outside_iface,
                        out_ts,
                        Some(CaptureDirection::Outbound),
                        &self.buf,
                        &self.comment,
                    )
                    .map_err(write_err(OUTSIDE_FILE))?;
                self.stats.outside_written += 1;
            }
            Egress::Nic(n) => {
                self.inside
                    .write_packet_commented(
                        n.0,
                        out_ts,
                        Some(CaptureDirection::Inbound),
                        &self.buf,
                        &self.comment,
                    )
                    .map_err(write_err(INSIDE_FILE))?;
                self.stats.inside_written += 1;
            }
        }
        Ok(())
    }

    /// Counts a packet [`classify`] took out of the replay, remembers the first of its class
    /// and writes its verdict line.
    pub(super) fn classified(&mut self, at: At, class: Class) -> Result<(), ReplayError> {
        *self.stats.classified.entry(class).or_insert(0) += 1;
        if !self.stats.classified_first.contains_key(&class) {
            self.stats.classified_first.insert(
                class,
                format!(
                    "record {}: {} ({}): {}",
                    at.packet_index,
                    class.verdict(),
                    class.kind(),
                    Tuple(&self.buf)
                ),
            );
        }
        let Some(w) = self.verdicts.as_mut() else {
            return Ok(());
        };
        let r = writeln!(
            w,
            "{{\"index\":{},\"time_ns\":{},\"side\":null,\"verdict\":\"{}\",\"reason\":\"{}\",\"before\":\"{}\",\"after\":null}}",
            at.packet_index,
            at.time_ns,
            class.verdict(),
            class.kind(),
            Tuple(&self.buf)
        );
        r.map_err(verdicts_io)
    }

    /// The comment of a replayed packet as it entered the gateway: its verdict
    /// ([`crate::sim::comment`], the words `natsim run --pcap-dir` captures use too).
    pub(super) fn ingress_comment(&mut self, ingress: Ingress, verdict: Verdict) {
        self.comment.clear();
        let hosts = &self.hosts;
        self.comments.ingress(
            &mut self.comment,
            &self.entered,
            &self.buf,
            verdict,
            &|n, out| out.push_str(host_name(hosts, n)),
        );
        if ingress == Ingress::Outside {
            // Say that the destination was readdressed from the captured one (docs/replay.md).
            self.comment
                .push_str(" (reply half, readdressed to the NAT)");
        }
    }

    /// The comment of a packet the gateway sent: forwarded, generated or released.
    pub(super) fn egress_comment(
        &mut self,
        at: At,
        processed: bool,
        egress: Egress,
        emitted: Emitted,
    ) {
        self.comment.clear();
        let origin = format_args!("record {}", at.packet_index);
        let emitted = match (emitted, processed) {
            (Emitted::Respond, _) => comment::Emitted::Respond(&origin),
            (Emitted::Forward, true) => comment::Emitted::Forward,
            (Emitted::Forward, false) => comment::Emitted::Released,
        };
        let hosts = &self.hosts;
        self.comments.egress(
            &mut self.comment,
            &self.entered,
            &self.buf,
            emitted,
            egress,
            &|n, out| out.push_str(host_name(hosts, n)),
        );
    }

    /// Appends the violations found since the checker's total was `before` to the comment, so
    /// that the packets involved carry them.
    pub(super) fn mark_violations(&mut self, before: u64) {
        let now = self.checks.total();
        if now == before {
            return;
        }
        let new = usize::try_from(now - before).unwrap_or(usize::MAX);
        let examples = self.checks.examples();
        // Only the first violations are kept as examples; name the new ones if they were.
        let named = if examples.len() as u64 == now {
            &examples[examples.len().saturating_sub(new)..]
        } else {
            &[]
        };
        comment::violations(
            &mut self.comment,
            now - before,
            named
                .iter()
                .map(|v| (v.invariant.name(), v.detail.as_str())),
        );
    }

    pub(super) fn skipped_line(&mut self, at: At, reason: &str) -> Result<(), ReplayError> {
        let Some(w) = self.verdicts.as_mut() else {
            return Ok(());
        };
        let r = writeln!(
            w,
            "{{\"index\":{},\"time_ns\":{},\"side\":null,\"verdict\":\"skipped\",\"reason\":\"{reason}\",\"before\":\"{}\",\"after\":null}}",
            at.packet_index,
            at.time_ns,
            Tuple(&self.buf)
        );
        r.map_err(verdicts_io)
    }

    pub(super) fn verdict_line(
        &mut self,
        at: At,
        ingress: Ingress,
        nic: NicId,
        verdict: Verdict,
    ) -> Result<(), ReplayError> {
        let (name, egress, reason) = match verdict {
            Verdict::Forward(e) => ("forward", Some(e), None),
            Verdict::Respond(e) => ("respond", Some(e), None),
            Verdict::PassThrough => ("pass_through", None, None),
            Verdict::Buffered => ("buffered", None, None),
            Verdict::Drop(r) => ("drop", None, Some(r.name())),
        };
        let side = match ingress {
            Ingress::Inside(_) => "inside",
            Ingress::Outside => "outside",
        };
        self.line.clear();
        let l = &mut self.line;
        let _ = write!(
            l,
            "{{\"index\":{},\"time_ns\":{},\"side\":\"{side}\",\"nic\":{},\"verdict\":\"{name}\",",
            at.packet_index, at.time_ns, nic.0
        );
        match egress {
            Some(Egress::Outside) => l.push_str("\"egress\":\"outside\","),
            Some(Egress::Nic(n)) => {
                let _ = write!(l, "\"egress\":\"nic#{}\",", n.0);
            }
            None => l.push_str("\"egress\":null,"),
        }
        match reason {
            Some(r) => {
                let _ = write!(l, "\"reason\":\"{r}\",");
            }
            None => l.push_str("\"reason\":null,"),
        }
        let _ = write!(l, "\"before\":\"{}\",", self.before);
        if egress.is_some() || verdict == Verdict::PassThrough {
            let _ = write!(l, "\"after\":\"{}\"}}", Tuple(&self.buf));
        } else {
            l.push_str("\"after\":null}");
        }
        l.push('\n');
        let Some(w) = self.verdicts.as_mut() else {
            return Ok(());
        };
        let r = w.write_all(self.line.as_bytes());
        r.map_err(verdicts_io)
    }

    pub(super) fn finish(
        mut self,
        name: &str,
        reader: CaptureSummary,
        capture_error: Option<String>,
    ) -> Result<ReplayOutcome, ReplayError> {
        // End-of-capture work is attributed to the last record replayed.
        let at = At {
            packet_index: self.last_index,
            time_ns: self.now_ns,
        };
        self.timers(at);
        self.released(at, self.out_ts(self.now_ns))?;
        self.status(at);
        let summary = self.summary(name, &reader, capture_error);
        if let Some(mut w) = self.verdicts.take() {
            w.flush().map_err(verdicts_io)?;
        }
        self.inside.finish().map_err(write_err(INSIDE_FILE))?;
        self.outside.finish().map_err(write_err(OUTSIDE_FILE))?;
        let exit_code = if summary.violation_total() > 0 {
            crate::exit::VIOLATION
        } else {
            crate::exit::OK
        };
        Ok(ReplayOutcome {
            table: summary.table(),
            summary,
            files: Vec::new(),
            exit_code,
        })
    }

    pub(super) fn summary(
        &self,
        name: &str,
        reader: &CaptureSummary,
        capture_error: Option<String>,
    ) -> ReplaySummary {
        let s = &self.stats;
        let mut skipped = reader.skipped.clone();
        for (k, v) in [
            ("skip.unmapped", s.unmapped),
            ("skip.ip_header_truncated", s.no_addresses),
            ("skip.too_many_hosts", s.too_many_hosts),
        ] {
            if v > 0 {
                skipped.insert(k.to_string(), v);
            }
        }
        let mut anomalies = reader.anomalies.clone();
        if s.timestamp_clamped > 0 {
            anomalies.insert("timestamp_clamped".into(), s.timestamp_clamped);
        }
        let mut mapping = std::collections::BTreeMap::new();
        for rule in Rule::ALL {
            for (side, counts) in [
                ("from_inside", &s.from_inside),
                ("from_outside", &s.from_outside),
            ] {
                let n = counts[rule as usize];
                if n > 0 {
                    mapping.insert(format!("{side}.{}", rule.name()), n);
                }
            }
        }
        if s.internal > 0 {
            mapping.insert("internal".into(), s.internal);
        }
        let nonzero = |pairs: &[(&str, u64)]| {
            pairs
                .iter()
                .filter(|(_, v)| *v > 0)
                .map(|(k, v)| (k.to_string(), *v))
                .collect()
        };
        let checksums = nonzero(&[
            ("input_bad_checksum", s.input_bad_checksum),
            ("fixed.ip_header", s.fixed_ip_header),
            ("fixed.transport", s.fixed_transport),
        ]);
        let inbound_readdressed = Readdress::ALL
            .iter()
            .filter(|r| s.readdressed[**r as usize] > 0)
            .map(|r| (r.name().to_string(), s.readdressed[*r as usize]))
            .collect();
        let verdicts = nonzero(&[
            ("forward.outside", s.forward_outside),
            ("forward.inside", s.forward_inside),
            ("respond.outside", s.respond_outside),
            ("respond.inside", s.respond_inside),
            ("released.outside", s.released_outside),
            ("released.inside", s.released_inside),
            ("pass_through", s.pass_through),
            ("buffered", s.buffered),
            ("drop", s.dropped),
        ]);
        let hosts: Vec<HostSummary> = self
            .hosts
            .hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| HostSummary {
                nic: i as u32,
                name: h.name.clone(),
                block: h
                    .block
                    .map(|b| format!("{}:{}-{}", b.nat_ip, b.port, b.end_port)),
            })
            .collect();
        let with_block = hosts.iter().filter(|h| h.block.is_some()).count() as u64;
        let mut notes = Vec::new();
        for (used, key) in self
            .interface_keys_used
            .iter()
            .zip(self.config.interfaces.keys())
        {
            if !used {
                notes.push(format!(
                    "interface map entry `{key}` matched no interface of the capture"
                ));
            }
        }
        let (v4, v6) = self.gateway.live_flows();
        ReplaySummary {
            capture: name.to_string(),
            format: reader.format.clone(),
            profile: self.config.profile.clone(),
            ports_per_nic: self.config.ports_per_nic,
            speed: self.config.speed,
            fix_checksums: self.config.fix_checksums,
            packets_read: reader.packets,
            ip_packets: reader.ip_packets,
            replayed_packets: s.replayed,
            skipped,
            skipped_detail: reader.skipped_detail.clone(),
            anomalies,
            truncated_packets: reader.truncated_packets,
            mapping,
            checksums,
            inbound_readdressed,
            verdicts,
            gateway: self.gateway.counters().to_map(),
            nics: NicSummary {
                total: hosts.len() as u64,
                with_block,
                without_block: hosts.len() as u64 - with_block,
                hosts,
            },
            guesses: self.guesses.clone(),
            classified: s.classified.iter().map(|(c, n)| (c.key(), *n)).collect(),
            classified_first: s.classified_first.values().cloned().collect(),
            notes,
            outputs: [
                (INSIDE_FILE.to_string(), s.inside_written),
                (OUTSIDE_FILE.to_string(), s.outside_written),
            ]
            .into_iter()
            .collect(),
            virtual_duration_ns: self.now_ns.saturating_sub(self.offset_ns),
            live_flows_at_end: (v4 + v6) as u64,
            dataplane: self.target.broken_arg(),
            invariants: self.checks.report(),
            violation_examples: self.checks.examples().to_vec(),
            capture_error,
        }
    }
}
