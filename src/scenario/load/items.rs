//! Resolving the run's items: scripted traffic, attacks, faults and workload generators, each
//! name checked against the topology.

use super::*;

pub(super) fn resolve_traffic(
    cx: &Ctx,
    i: usize,
    s: &Spanned<TrafficItem>,
    names: &Names,
) -> Result<AppSpec, ScenarioError> {
    let t = &s.value;
    let field = format!("traffic[{i}]");
    let host = host_ref(names, &t.from)
        .ok_or_else(|| cx.at(s, format!("{field}.from"), names.unknown_host(&t.from)))?;
    let like = first_addr(names, host);
    let set = [
        t.tcp.is_some(),
        t.udp.is_some(),
        t.ping.is_some(),
        t.probe.is_some(),
    ];
    if set.iter().filter(|b| **b).count() != 1 {
        return Err(cx.at(s, field, "exactly one of tcp, udp, ping, probe"));
    }
    let ep = |to: &str, sub: &str| {
        names
            .endpoint(to, like)
            .ok_or_else(|| cx.at(s, format!("{field}.{sub}.to"), names.endpoint_error(to)))
    };
    let kind = if let Some(d) = &t.tcp {
        AppKind::Tcp(TcpParams {
            to: ep(&d.to, "tcp")?,
            request_bytes: d.request_bytes,
            expect_bytes: d.expect_bytes,
            hold_ms: d.hold_ms,
            keepalive_ms: d.keepalive_ms,
            close: d.close,
            src_port: d.src_port,
            rto_ms: d.rto_ms.max(1),
            max_retries: d.max_retries,
            mss_bytes: d.mss_bytes.max(8),
            dont_fragment: d.df,
            close_on_peer_fin: d.close_on_peer_fin,
        })
    } else if let Some(d) = &t.udp {
        AppKind::Udp(UdpParams {
            to: ep(&d.to, "udp")?,
            request_bytes: d.request_bytes,
            count: d.count,
            interval_ms: d.interval_ms,
            timeout_ms: d.timeout_ms,
            retries: d.retries,
            src_port: d.src_port,
        })
    } else if let Some(d) = &t.ping {
        AppKind::Ping(PingParams {
            to: names
                .host_addr(&d.to, like)
                .ok_or_else(|| cx.at(s, format!("{field}.ping.to"), names.unknown_host(&d.to)))?,
            count: d.count,
            interval_ms: d.interval_ms,
            timeout_ms: d.timeout_ms,
            ident: d.ident,
        })
    } else if let Some(d) = &t.probe {
        let r = names.remotes.get(&d.server).ok_or_else(|| {
            cx.at(
                s,
                format!("{field}.probe.server"),
                unknown(
                    "remote host",
                    &d.server,
                    names.remotes.keys().map(String::as_str),
                ),
            )
        })?;
        let addrs = &names.remote_addrs[*r as usize];
        if addrs.len() < 2 {
            return Err(cx.at(
                s,
                format!("{field}.probe.server"),
                "an RFC 5780 server needs two addresses",
            ));
        }
        AppKind::Probe(ProbeParams {
            primary: SocketAddr::new(addrs[0], 3478),
            alternate: SocketAddr::new(addrs[1], 3479),
            timeout_ms: d.timeout_ms,
            src_port: d.src_port,
        })
    } else {
        return Err(cx.at(s, field, "exactly one of tcp, udp, ping, probe"));
    };
    Ok(AppSpec {
        name: t.name.clone(),
        at_ns: ms_to_ns(t.at_ms),
        host,
        kind,
    })
}

pub(super) fn resolve_attack(
    cx: &Ctx,
    i: usize,
    s: &Spanned<AttackItem>,
    names: &Names,
    doc: &ScenarioFile,
) -> Result<AppSpec, ScenarioError> {
    let a = &s.value;
    let field = format!("attacks[{i}]");
    let r = *names.remotes.get(&a.from).ok_or_else(|| {
        cx.at(
            s,
            format!("{field}.from"),
            unknown(
                "remote host",
                &a.from,
                names.remotes.keys().map(String::as_str),
            ),
        )
    })?;
    let like = names.remote_addrs[r as usize].first().copied();
    let set = [
        a.port_scan.is_some(),
        a.unsolicited.is_some(),
        a.spoof_reply.is_some(),
        a.forged_icmp.is_some(),
        a.rst_inject.is_some(),
    ];
    if set.iter().filter(|b| **b).count() != 1 {
        return Err(cx.at(
            s,
            field,
            "exactly one of port_scan, unsolicited, spoof_reply, forged_icmp, rst_inject",
        ));
    }
    let flow_ok = |flow: &str, sub: &str| {
        if doc.traffic.iter().any(|t| t.value.name == flow) {
            Ok(flow.to_string())
        } else {
            Err(cx.at(
                s,
                format!("{field}.{sub}.flow"),
                unknown(
                    "traffic item",
                    flow,
                    doc.traffic.iter().map(|t| t.value.name.as_str()),
                ),
            ))
        }
    };
    let attack = if let Some(d) = &a.port_scan {
        let target = names.host_addr(&d.target, like).ok_or_else(|| {
            cx.at(
                s,
                format!("{field}.port_scan.target"),
                names.unknown_host(&d.target),
            )
        })?;
        if d.ports[1] < d.ports[0] {
            return Err(cx.at(
                s,
                format!("{field}.port_scan.ports"),
                "last port below first",
            ));
        }
        Attack::PortScan {
            target,
            first_port: d.ports[0],
            last_port: d.ports[1],
            proto: match d.protocol {
                ProtoDoc::Tcp => Proto::Tcp,
                ProtoDoc::Udp => Proto::Udp,
            },
            interval_us: d.interval_us,
        }
    } else if let Some(d) = &a.unsolicited {
        Attack::Unsolicited {
            target: names.endpoint(&d.target, like).ok_or_else(|| {
                cx.at(
                    s,
                    format!("{field}.unsolicited.target"),
                    names.endpoint_error(&d.target),
                )
            })?,
            kind: match d.kind {
                UnsolicitedKindDoc::TcpSyn => UnsolicitedKind::TcpSyn,
                UnsolicitedKindDoc::Udp => UnsolicitedKind::Udp,
                UnsolicitedKindDoc::IcmpEcho => UnsolicitedKind::IcmpEcho,
                UnsolicitedKindDoc::Fragment => UnsolicitedKind::Fragment,
            },
            count: d.count.max(1),
            interval_ms: d.interval_ms,
        }
    } else if let Some(d) = &a.spoof_reply {
        Attack::SpoofReply {
            flow: flow_ok(&d.flow, "spoof_reply")?,
            vary: match d.vary {
                VaryDoc::SrcPort => Vary::SrcPort,
                VaryDoc::SrcAddr => Vary::SrcAddr,
                VaryDoc::DstPort => Vary::DstPort,
                VaryDoc::Nothing => Vary::Nothing,
            },
            count: d.count,
        }
    } else if let Some(d) = &a.forged_icmp {
        Attack::ForgedIcmp {
            flow: flow_ok(&d.flow, "forged_icmp")?,
            bad_checksum: d.bad_checksum,
            wrong_port: d.wrong_port,
            outer_destination: match &d.outer_destination {
                None => None,
                Some(a) => Some(a.parse::<IpAddr>().map_err(|_| {
                    cx.at(
                        s,
                        format!("{field}.forged_icmp.outer_destination"),
                        format!("`{a}` is not an IP address"),
                    )
                })?),
            },
            type_code: match (d.icmp_type, d.code) {
                (None, None) => None,
                (t, c) => {
                    let t = t.unwrap_or(3);
                    let is_error = crate::wire::icmp::is_error(crate::wire::IpVersion::V4, t)
                        || crate::wire::icmp::is_error(crate::wire::IpVersion::V6, t);
                    if !is_error {
                        return Err(cx.at(
                            s,
                            format!("{field}.forged_icmp.type"),
                            format!("{t} is not an ICMP or ICMPv6 error type"),
                        ));
                    }
                    Some((t, c.unwrap_or(0)))
                }
            },
        }
    } else if let Some(d) = &a.rst_inject {
        Attack::RstInject {
            flow: flow_ok(&d.flow, "rst_inject")?,
            from_remote: d.from_remote,
            seq_offset: d.seq_offset,
        }
    } else {
        return Err(cx.at(s, field, "no action"));
    };
    Ok(AppSpec {
        name: a.name.clone(),
        at_ns: ms_to_ns(a.at_ms),
        host: HostRef::Remote(r),
        kind: AppKind::Attack(attack),
    })
}

pub(super) fn resolve_fault(
    cx: &Ctx,
    i: usize,
    s: &Spanned<FaultItem>,
    names: &Names,
    links: &[String],
    nodes: u16,
) -> Result<(u64, Fault), ScenarioError> {
    let f = &s.value;
    let field = format!("faults[{i}]");
    for (sub, l) in [("link_down", &f.link_down), ("link_up", &f.link_up)] {
        if let Some(l) = l
            && !links.contains(l)
        {
            return Err(cx.at(
                s,
                format!("{field}.{sub}"),
                unknown("link", l, links.iter().map(String::as_str)),
            ));
        }
    }
    if let Some(k) = f.restart_node
        && k >= nodes
    {
        return Err(cx.at(
            s,
            format!("{field}.restart_node"),
            format!("node {k} does not exist (nodes 0..={})", nodes - 1),
        ));
    }
    let nic = |n: &str, sub: &str| {
        names.nics.get(n).copied().ok_or_else(|| {
            cx.at(
                s,
                format!("{field}.{sub}"),
                unknown("NIC", n, names.nics.keys().map(String::as_str)),
            )
        })
    };
    let mut actions: Vec<Fault> = Vec::new();
    if let Some(l) = &f.link_down {
        actions.push(Fault::LinkDown(l.clone()));
    }
    if let Some(l) = &f.link_up {
        actions.push(Fault::LinkUp(l.clone()));
    }
    if let Some(k) = f.restart_node {
        actions.push(Fault::RestartNode(k));
    }
    if let Some(n) = &f.remove_nat_ip {
        if !names.nat_ips.contains_key(n) {
            return Err(cx.at(
                s,
                format!("{field}.remove_nat_ip"),
                unknown("gateway IP", n, names.nat_ips.keys().map(String::as_str)),
            ));
        }
        actions.push(Fault::RemoveNatIp(n.clone()));
    }
    if let Some(ip) = &f.add_nat_ip {
        actions.push(Fault::AddNatIp {
            name: ip.name.clone(),
            addresses: ip.addresses.clone(),
        });
    }
    if let Some(n) = &f.add_nic {
        actions.push(Fault::AddNic(nic(n, "add_nic")?));
    }
    if let Some(n) = &f.delete_nic {
        actions.push(Fault::DeleteNic(nic(n, "delete_nic")?));
    }
    if let Some(r) = &f.relabel {
        actions.push(Fault::Relabel {
            nic: nic(&r.nic, "relabel.nic")?,
            labels: r.labels.clone(),
        });
    }
    if let Some(n) = &f.attach_virtual_ip {
        actions.push(Fault::AttachVirtualIp(nic(n, "attach_virtual_ip")?));
    }
    if let Some(n) = &f.detach_virtual_ip {
        actions.push(Fault::DetachVirtualIp(nic(n, "detach_virtual_ip")?));
    }
    if let Some(d) = &f.drop_packets {
        if !links.contains(&d.on) {
            return Err(cx.at(
                s,
                format!("{field}.drop_packets.on"),
                unknown("link", &d.on, links.iter().map(String::as_str)),
            ));
        }
        let keep = crate::scenario::packets::pattern::filter(
            &d.pattern,
            &format!("{field}.drop_packets.match"),
        )
        .map_err(|(f, m)| cx.at(s, f, m))?;
        actions.push(Fault::DropPackets {
            link: d.on.clone(),
            drop: crate::sim::link::TargetedDrop {
                filter: crate::sim::link::PacketFilter(std::sync::Arc::new(keep)),
                nth: d.nth.max(1),
                count: d.count.max(1),
                seen: 0,
            },
        });
    }
    if let Some(p) = f.set_ports_per_nic {
        if p == 0 || p > PORTS_PER_IP || !p.is_power_of_two() {
            return Err(cx.at(
                s,
                format!("{field}.set_ports_per_nic"),
                format!("{p} is not a power of two in 1..=64512"),
            ));
        }
        actions.push(Fault::SetPortsPerNic(p));
    }
    if f.delete_gateway == Some(true) {
        actions.push(Fault::DeleteGateway);
    }
    if actions.len() != 1 {
        return Err(cx.at(s, field, "exactly one action per fault item"));
    }
    Ok((ms_to_ns(f.at_ms), actions.remove(0)))
}

pub(super) fn resolve_generator(
    cx: &Ctx,
    i: usize,
    s: &Spanned<GeneratorDoc>,
    names: &Names,
    nics: &[NicSpec],
) -> Result<GeneratorSpec, ScenarioError> {
    let g = &s.value;
    let field = format!("generators[{i}]");
    let mut sel = Vec::new();
    for pat in &g.nics {
        let before = sel.len();
        if let Some(prefix) = pat.strip_suffix('*') {
            sel.extend(
                (0..nics.len() as u32).filter(|&k| nics[k as usize].name.starts_with(prefix)),
            );
        } else if let Some(&k) = names.nics.get(pat) {
            sel.push(k);
        }
        if sel.len() == before {
            return Err(cx.at(
                s,
                format!("{field}.nics"),
                if pat.ends_with('*') {
                    format!("`{pat}` matches no NIC")
                } else {
                    unknown("NIC", pat, names.nics.keys().map(String::as_str))
                },
            ));
        }
    }
    sel.sort_unstable();
    sel.dedup();
    let arrivals = match (g.arrivals.fixed_ms, g.arrivals.poisson_per_s) {
        (Some(ms), None) => Arrivals::Fixed { interval_ms: ms },
        (None, Some(r)) if r > 0.0 => Arrivals::Poisson { rate_per_s: r },
        _ => {
            return Err(cx.at(
                s,
                format!("{field}.arrivals"),
                "exactly one of fixed_ms, poisson_per_s (> 0)",
            ));
        }
    };
    let d = &g.duration;
    let duration = match (d.fixed_ms, d.exponential_mean_ms, &d.pareto) {
        (Some(ms), None, None) => Distribution::Fixed { ms },
        (None, Some(m), None) => Distribution::Exponential { mean_ms: m },
        (None, None, Some(p)) => Distribution::Pareto {
            scale_ms: p.scale_ms,
            shape: p.shape,
        },
        _ => {
            return Err(cx.at(
                s,
                format!("{field}.duration"),
                "exactly one of fixed_ms, exponential_mean_ms, pareto",
            ));
        }
    };
    let mut remotes = Vec::new();
    for r in &g.destinations {
        remotes.push(*names.remotes.get(r).ok_or_else(|| {
            cx.at(
                s,
                format!("{field}.destinations"),
                unknown("remote host", r, names.remotes.keys().map(String::as_str)),
            )
        })?);
    }
    if remotes.is_empty() {
        return Err(cx.at(
            s,
            format!("{field}.destinations"),
            "at least one destination",
        ));
    }
    Ok(GeneratorSpec {
        name: g.name.clone(),
        nics: sel,
        start_ns: ms_to_ns(g.start_ms),
        stop_ns: ms_to_ns(g.stop_ms),
        arrivals,
        duration,
        remotes,
        zipf_s: g.zipf_s,
        mix: [g.mix.tcp, g.mix.udp, g.mix.icmp],
        request_bytes: g.request_bytes,
        interval_ms: g.interval_ms,
    })
}
