//! What a replay reports: the serialisable [`ReplaySummary`] (`summary.json`) and the printed
//! table. Every map is a `BTreeMap` and nothing depends on the host, so both are byte-identical
//! across runs.

use std::collections::BTreeMap;

use comfy_table::{ContentArrangement, Table, presets::ASCII_MARKDOWN};
use serde::Serialize;

use super::verify::{InvariantReport, Violation};

/// Width of the printed table: fixed so that the output does not depend on the terminal.
pub const TABLE_WIDTH: u16 = 120;

/// One inside host (NIC) in the summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostSummary {
    /// NIC id.
    pub nic: u32,
    /// `host-<addr>`.
    pub name: String,
    /// `nat_ip:port-end_port`, or `null` when the pool had no room.
    pub block: Option<String>,
}

/// Inside hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NicSummary {
    /// NICs created.
    pub total: u64,
    /// With a port block.
    pub with_block: u64,
    /// Without (pool exhausted): their traffic drops as `no_nat_block`.
    pub without_block: u64,
    /// Each host, by NIC id.
    pub hosts: Vec<HostSummary>,
}

/// Everything a replay counted. See `docs/replay.md` for each key.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReplaySummary {
    /// Capture file name (without folders, so the summary does not depend on where it lies).
    pub capture: String,
    /// `pcap`, `pcap_nsec` or `pcapng`.
    pub format: String,
    /// Profile name.
    pub profile: String,
    /// P.
    pub ports_per_nic: u32,
    /// Replay speed.
    pub speed: f64,
    /// Whether bad checksums were recomputed on ingest.
    pub fix_checksums: bool,
    /// Packet records in the capture (IP or not).
    pub packets_read: u64,
    /// Records that carried an IP packet.
    pub ip_packets: u64,
    /// IP packets fed to the gateway.
    pub replayed_packets: u64,
    /// Records not replayed, by reason code (the reader's `skip.*` plus the replay's
    /// `skip.unmapped`, `skip.ip_header_truncated`, `skip.too_many_hosts`).
    pub skipped: BTreeMap<String, u64>,
    /// Reader skips with detail (`skip.not_ip.ethertype_0x0806`, ...).
    pub skipped_detail: BTreeMap<String, u64>,
    /// Tolerated oddities: the reader's, plus `timestamp_clamped` (went backwards).
    pub anomalies: BTreeMap<String, u64>,
    /// Packets captured shorter than they were on the wire.
    pub truncated_packets: u64,
    /// Replayed packets by side and deciding rule (`from_inside.prefix`, `internal`, ...).
    pub mapping: BTreeMap<String, u64>,
    /// `input_bad_checksum`, `fixed.ip_header`, `fixed.transport`.
    pub checksums: BTreeMap<String, u64>,
    /// Captured reply halves by how they were readdressed (`to_flow`, `unsolicited`, ...).
    pub inbound_readdressed: BTreeMap<String, u64>,
    /// Gateway verdicts (`forward.outside`, `forward.inside`, `drop`, `pass_through`, ...).
    pub verdicts: BTreeMap<String, u64>,
    /// The gateway's counters (`translated.out.tcp`, `drop.unsolicited`, `flows.created`, ...).
    pub gateway: BTreeMap<String, u64>,
    /// Inside hosts.
    pub nics: NicSummary,
    /// Every guess the mapping made, in words.
    pub guesses: Vec<String>,
    /// Packets not replayed because of their addresses, by `<verdict>.<kind>`
    /// (`not_natable_source.unspecified`, `passed_link_local.neighbour_discovery`, ...; see
    /// `replay::classify`).
    pub classified: BTreeMap<String, u64>,
    /// The first packet of each classified kind, with its record index.
    pub classified_first: Vec<String>,
    /// Other remarks (an interface map entry that matched nothing, ...).
    pub notes: Vec<String>,
    /// Packets written per output file.
    pub outputs: BTreeMap<String, u64>,
    /// Virtual time from the first to the last packet.
    pub virtual_duration_ns: u64,
    /// Live flows when the capture ended.
    pub live_flows_at_end: u64,
    /// The deliberately broken dataplane replayed against (`--broken NAME`), `null` for the
    /// real gateway.
    pub dataplane: Option<String>,
    /// Every invariant of behaviour §6, in order: checked (checks and violations) or not applicable
    /// (with the reason).
    pub invariants: Vec<InvariantReport>,
    /// The first violations.
    pub violation_examples: Vec<Violation>,
    /// The read error that ended the capture early, if any (packets before it were replayed).
    pub capture_error: Option<String>,
}

impl ReplaySummary {
    /// Violations over all invariants.
    pub fn violation_total(&self) -> u64 {
        self.invariants.iter().map(|i| i.violations).sum()
    }

    /// The summary as pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        s.push('\n');
        s
    }

    /// The printed table: one row per non-zero figure, grouped by section.
    pub fn table(&self) -> String {
        let mut t = Table::new();
        t.load_style(ASCII_MARKDOWN)
            .force_no_tty()
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(TABLE_WIDTH)
            .set_header(vec!["replay", "value"]);
        let mut row = |k: &str, v: String| {
            t.add_row(vec![k.to_string(), v]);
        };
        row("capture", format!("{} ({})", self.capture, self.format));
        row(
            "gateway",
            format!(
                "profile {}, P={}, speed {}, fix_checksums {}",
                self.profile, self.ports_per_nic, self.speed, self.fix_checksums
            ),
        );
        if let Some(d) = &self.dataplane {
            row("dataplane", format!("broken: {d} (testing the checks)"));
        }
        row("packets read", self.packets_read.to_string());
        row("ip packets", self.ip_packets.to_string());
        row("replayed", self.replayed_packets.to_string());
        let mut section = |prefix: &str, map: &BTreeMap<String, u64>| {
            for (k, v) in map.iter().filter(|(_, v)| **v > 0) {
                row(&format!("{prefix}{k}"), v.to_string());
            }
        };
        section("", &self.skipped);
        section("anomaly.", &self.anomalies);
        section("mapping.", &self.mapping);
        section("classified.", &self.classified);
        section("checksum.", &self.checksums);
        section("inbound_readdressed.", &self.inbound_readdressed);
        section("verdict.", &self.verdicts);
        section("gateway.", &self.gateway);
        let mut row = |k: &str, v: String| {
            t.add_row(vec![k.to_string(), v]);
        };
        row(
            "nics",
            format!(
                "{} ({} with a block, {} without)",
                self.nics.total, self.nics.with_block, self.nics.without_block
            ),
        );
        for g in &self.guesses {
            row("guess", g.clone());
        }
        for c in &self.classified_first {
            row("classified first", c.clone());
        }
        for n in &self.notes {
            row("note", n.clone());
        }
        for (k, v) in &self.outputs {
            row(&format!("written.{k}"), v.to_string());
        }
        row("live flows at end", self.live_flows_at_end.to_string());
        row(
            "virtual duration",
            format!("{:.6} s", self.virtual_duration_ns as f64 / 1e9),
        );
        for i in &self.invariants {
            // Never "held" without a check: an invariant the replay gave nothing to judge is
            // "not exercised".
            let value = match i.not_applicable {
                Some(why) => format!("not applicable: {why}"),
                None if i.violations > 0 => {
                    format!("violated ({} of {} checks)", i.violations, i.checks)
                }
                None if i.checks == 0 => "not exercised".to_string(),
                None => format!("held ({} checks)", i.checks),
            };
            row(&format!("invariant {} {}", i.number, i.name), value);
        }
        for v in &self.violation_examples {
            row(
                &format!("violation #{}", v.packet_index),
                format!("{}: {}", v.invariant, v.detail),
            );
        }
        if let Some(e) = &self.capture_error {
            row("capture error", e.clone());
        }
        let mut out = t.to_string();
        out.push('\n');
        out
    }
}
