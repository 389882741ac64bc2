//! Counters kept while reading, and the deterministic [`CaptureSummary`] built from them.
//!
//! The per-packet path only bumps integers in arrays and vectors; strings and maps are built
//! once, when a summary is requested.

use std::collections::BTreeMap;

use serde::Serialize;

use super::link::{CaptureDirection, IpVersion, SkipReason, linktype};

/// Things that were odd about a packet but did not stop it from being yielded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anomaly {
    /// pcap fraction field ≥ one second (10^6 µs or 10^9 ns); carried into the seconds.
    TimestampFractionOutOfRange,
    /// pcapng timestamp (plus `if_tsoffset`) below 0 or above `u64::MAX` ns; clamped.
    TimestampSaturated,
    /// Timestamp earlier than the previous packet's in file order.
    TimestampOutOfOrder,
    /// Bytes after the IP length field (Ethernet padding, FCS) were cut off.
    IpTrailerTrimmed,
    /// Captured length larger than the original length (impossible on a real link).
    CapturedLenExceedsOriginal,
    /// A pcapng packet or interface block's options were malformed and ignored.
    MalformedOptions,
}

impl Anomaly {
    const ALL: [Anomaly; 6] = [
        Anomaly::TimestampFractionOutOfRange,
        Anomaly::TimestampSaturated,
        Anomaly::TimestampOutOfOrder,
        Anomaly::IpTrailerTrimmed,
        Anomaly::CapturedLenExceedsOriginal,
        Anomaly::MalformedOptions,
    ];

    /// Stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Anomaly::TimestampFractionOutOfRange => "timestamp_fraction_out_of_range",
            Anomaly::TimestampSaturated => "timestamp_saturated",
            Anomaly::TimestampOutOfOrder => "timestamp_out_of_order",
            Anomaly::IpTrailerTrimmed => "ip_trailer_trimmed",
            Anomaly::CapturedLenExceedsOriginal => "captured_len_exceeds_original",
            Anomaly::MalformedOptions => "malformed_options",
        }
    }
}

/// Per-interface counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct InterfaceStats {
    pub link_type: u32,
    pub name: Option<String>,
    pub packets: u64,
    pub ip_packets: u64,
}

/// Running counters of a reader.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    pub packets: u64,
    pub ipv4: u64,
    pub ipv6: u64,
    pub truncated: u64,
    pub skipped: BTreeMap<SkipReason, u64>,
    pub anomalies: [u64; Anomaly::ALL.len()],
    /// Indexed by global interface id.
    pub interfaces: Vec<InterfaceStats>,
    /// Inbound, outbound, unknown (yielded packets only).
    pub directions: [u64; 3],
    pub first_timestamp_ns: Option<u64>,
    pub last_timestamp_ns: Option<u64>,
    pub non_packet_blocks: u64,
    pub error: Option<String>,
}

impl Stats {
    pub fn anomaly(&mut self, a: Anomaly) {
        self.anomalies[a as usize] += 1;
    }

    /// Counts a packet record (yielded or skipped) with a known timestamp.
    pub fn record(&mut self, interface: Option<u32>, timestamp_ns: Option<u64>) {
        self.packets += 1;
        if let Some(s) = interface.and_then(|i| self.interfaces.get_mut(i as usize)) {
            s.packets += 1;
        }
        if let Some(ts) = timestamp_ns {
            if self.last_timestamp_ns.is_some_and(|last| ts < last) {
                self.anomaly(Anomaly::TimestampOutOfOrder);
            }
            self.first_timestamp_ns.get_or_insert(ts);
            self.last_timestamp_ns = Some(ts);
        }
    }

    pub fn yielded(
        &mut self,
        interface: u32,
        version: IpVersion,
        direction: Option<CaptureDirection>,
        truncated: bool,
    ) {
        match version {
            IpVersion::V4 => self.ipv4 += 1,
            IpVersion::V6 => self.ipv6 += 1,
        }
        if let Some(s) = self.interfaces.get_mut(interface as usize) {
            s.ip_packets += 1;
        }
        let d = match direction {
            Some(CaptureDirection::Inbound) => 0,
            Some(CaptureDirection::Outbound) => 1,
            None => 2,
        };
        self.directions[d] += 1;
        if truncated {
            self.truncated += 1;
        }
    }

    pub fn skipped(&mut self, reason: SkipReason) {
        *self.skipped.entry(reason).or_insert(0) += 1;
    }

    pub fn summary(&self, format: &'static str) -> CaptureSummary {
        let mut skipped = BTreeMap::new();
        let mut skipped_detail = BTreeMap::new();
        for (reason, n) in &self.skipped {
            *skipped.entry(reason.code().to_string()).or_insert(0) += n;
            *skipped_detail.entry(reason.to_string()).or_insert(0) += n;
        }
        let mut link_types = BTreeMap::new();
        let mut interfaces = BTreeMap::new();
        for (id, s) in self.interfaces.iter().enumerate() {
            *link_types
                .entry(linktype::name(s.link_type).into_owned())
                .or_insert(0) += s.packets;
            interfaces.insert(
                id as u32,
                InterfaceSummary {
                    link_type: s.link_type,
                    link_name: linktype::name(s.link_type).into_owned(),
                    name: s.name.clone(),
                    packets: s.packets,
                    ip_packets: s.ip_packets,
                },
            );
        }
        let anomalies = Anomaly::ALL
            .iter()
            .zip(self.anomalies)
            .filter(|(_, n)| *n > 0)
            .map(|(a, n)| (a.code().to_string(), n))
            .collect();
        let directions = [("inbound", 0), ("outbound", 1), ("unknown", 2)]
            .into_iter()
            .filter(|(_, i)| self.directions[*i] > 0)
            .map(|(k, i)| (k.to_string(), self.directions[i]))
            .collect();
        CaptureSummary {
            format: format.to_string(),
            packets: self.packets,
            ip_packets: self.ipv4 + self.ipv6,
            ipv4_packets: self.ipv4,
            ipv6_packets: self.ipv6,
            truncated_packets: self.truncated,
            skipped_packets: self.skipped.values().sum(),
            skipped,
            skipped_detail,
            link_types,
            interfaces,
            directions,
            anomalies,
            first_timestamp_ns: self.first_timestamp_ns,
            last_timestamp_ns: self.last_timestamp_ns,
            non_packet_blocks: self.non_packet_blocks,
            error: self.error.clone(),
        }
    }
}

/// What a reader saw, for reports and snapshots. Deterministic: every map is a `BTreeMap`
/// with stable string keys, and nothing depends on the wall clock or the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureSummary {
    /// `pcap` (microsecond), `pcap_nsec` (nanosecond) or `pcapng`.
    pub format: String,
    /// Packet records read (yielded + skipped).
    pub packets: u64,
    /// Packets yielded as IP.
    pub ip_packets: u64,
    /// Yielded IPv4 packets.
    pub ipv4_packets: u64,
    /// Yielded IPv6 packets.
    pub ipv6_packets: u64,
    /// Yielded packets whose capture was cut short (captured length < original length).
    pub truncated_packets: u64,
    /// Packet records not yielded.
    pub skipped_packets: u64,
    /// Skipped records by reason code (`skip.not_ip`, ...).
    pub skipped: BTreeMap<String, u64>,
    /// Skipped records by reason code and detail (`skip.not_ip.ethertype_0x0806`, ...).
    pub skipped_detail: BTreeMap<String, u64>,
    /// Packet records per link type name.
    pub link_types: BTreeMap<String, u64>,
    /// Per interface (pcap files have one, id 0; pcapng ids are global across sections).
    pub interfaces: BTreeMap<u32, InterfaceSummary>,
    /// Yielded packets by direction (`inbound`, `outbound`, `unknown`).
    pub directions: BTreeMap<String, u64>,
    /// Anomalies by code; each was tolerated, see [`Anomaly`].
    pub anomalies: BTreeMap<String, u64>,
    /// Timestamp of the first timestamped record in file order.
    pub first_timestamp_ns: Option<u64>,
    /// Timestamp of the last timestamped record in file order.
    pub last_timestamp_ns: Option<u64>,
    /// pcapng blocks that carry no packet (statistics, name resolution, custom, unknown).
    pub non_packet_blocks: u64,
    /// The error that stopped reading early, if any.
    pub error: Option<String>,
}

/// One capture interface in a [`CaptureSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InterfaceSummary {
    /// Link type number.
    pub link_type: u32,
    /// Link type name (`ethernet`, `linux_sll`, `linktype_160`, ...).
    pub link_name: String,
    /// pcapng `if_name`, if present.
    pub name: Option<String>,
    /// Packet records on this interface.
    pub packets: u64,
    /// Of which yielded as IP.
    pub ip_packets: u64,
}
