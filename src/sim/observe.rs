//! What observers (invariant checkers, s2n-quic style "subscribers") see of a run, and how they
//! stop it. Observations borrow the simulator's buffers: no copy unless the observer keeps one.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::nat::{Block, Event, Family, Ingress, NicId, Verdict};
use crate::time::Instant;

/// Static facts about a NIC observers need (its node, addresses, network).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicInfo {
    /// Dataplane id.
    pub id: NicId,
    /// Name.
    pub name: String,
    /// Network index.
    pub network: u16,
    /// Private addresses.
    pub addresses: Vec<IpAddr>,
    /// Dataplane node that owns it.
    pub node: u16,
}

/// One thing that happened, in the order it happened.
#[derive(Debug)]
pub enum Observation<'a> {
    /// A packet went through a dataplane node's `process`.
    Processed {
        /// Node.
        node: u16,
        /// Where it entered.
        ingress: Ingress,
        /// The packet as it entered.
        before: &'a [u8],
        /// The verdict.
        verdict: Verdict,
        /// The packet as it left (meaningful for `Forward`, `Respond`, `PassThrough`).
        after: &'a [u8],
    },
    /// A packet the dataplane sent on its own (`poll_transmit`).
    Transmitted {
        /// Node.
        node: u16,
        /// Where it went.
        to_nic: Option<NicId>,
        /// Bytes.
        pkt: &'a [u8],
    },
    /// An event the dataplane recorded. Events recorded while processing a packet are observed
    /// before that packet's [`Observation::Processed`] (expiries and evictions happen first).
    Dataplane {
        /// Node.
        node: u16,
        /// The event.
        event: &'a Event,
        /// The ingress of the packet being processed, when it happened inside `process`.
        during: Option<Ingress>,
    },
    /// The control plane is about to give a NIC a block.
    BlockAssigned {
        /// NIC.
        nic: NicId,
        /// Block.
        block: Block,
    },
    /// The control plane is about to take a NIC's block away.
    BlockReleased {
        /// NIC.
        nic: NicId,
        /// Family.
        family: Family,
        /// The block.
        block: Block,
    },
    /// A reconcile finished; observers compare the allocator's view with the dataplanes'.
    Reconciled {
        /// `portsUsed` the allocator reports.
        ports_used: u64,
        /// P.
        ports_per_nic: u32,
        /// Per NIC and family: (allocator's block, dataplane's block).
        table: &'a [super::engine::StatusRow],
    },
    /// A NIC was added or changed (address, node).
    NicUpdated(&'a NicInfo),
    /// A NIC was deleted.
    NicRemoved(NicId),
    /// A dataplane node restarted and lost its state.
    NodeRestarted {
        /// Node.
        node: u16,
    },
    /// A packet was delivered to a host (NIC or remote).
    Delivered {
        /// The NIC, for inside hosts.
        nic: Option<NicId>,
        /// It came through the gateway from outside (or a hairpin).
        from_outside: bool,
        /// Bytes.
        pkt: &'a [u8],
    },
}

/// The invariants, in behaviour §6 order. Serialized (and read, as `expect.exercised` takes
/// them) by their §6 names, e.g. `no-inbound-initiation`; a test ties those to [`Invariant::name`].
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// 1.
    NoInboundInitiation,
    /// 2.
    PortLimit,
    /// 3.
    Isolation,
    /// 4.
    WireValidity,
    /// 5.
    MappingStability,
    /// 6.
    Timers,
    /// 7.
    Selection,
    /// 8.
    Status,
    /// 9.
    Determinism,
    /// 10 (see `check::liveness`).
    #[serde(rename = "liveness")]
    Liveness,
}

impl Invariant {
    /// All, in order.
    pub const ALL: [Invariant; 10] = [
        Invariant::NoInboundInitiation,
        Invariant::PortLimit,
        Invariant::Isolation,
        Invariant::WireValidity,
        Invariant::MappingStability,
        Invariant::Timers,
        Invariant::Selection,
        Invariant::Status,
        Invariant::Determinism,
        Invariant::Liveness,
    ];

    /// SPEC name.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::NoInboundInitiation => "no-inbound-initiation",
            Invariant::PortLimit => "port-limit",
            Invariant::Isolation => "isolation",
            Invariant::WireValidity => "wire-validity",
            Invariant::MappingStability => "mapping-stability",
            Invariant::Timers => "timers",
            Invariant::Selection => "selection",
            Invariant::Status => "status",
            Invariant::Determinism => "determinism",
            Invariant::Liveness => "liveness",
        }
    }

    /// By name.
    pub fn from_name(s: &str) -> Option<Invariant> {
        Invariant::ALL.into_iter().find(|i| i.name() == s)
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A broken invariant, as an observer reports it. The simulator adds where and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The invariant (behaviour §6).
    pub invariant: Invariant,
    /// What went wrong.
    pub message: String,
    /// The packets involved, summarised and in hex.
    pub packets: Vec<String>,
    /// Index of the simulator event (filled in by the simulator).
    pub event_index: u64,
    /// Virtual time (filled in by the simulator).
    pub at: Instant,
}

impl Violation {
    /// A violation of `invariant`.
    pub fn new(invariant: Invariant, message: String) -> Self {
        Violation {
            invariant,
            message,
            packets: Vec::new(),
            event_index: 0,
            at: Instant::ZERO,
        }
    }

    /// Adds a packet to the report.
    pub fn with_packet(mut self, label: &str, pkt: &[u8]) -> Self {
        self.packets.push(describe_packet(label, pkt));
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invariant {} violated at event {} (t={}): {}",
            self.invariant, self.event_index, self.at, self.message
        )?;
        for p in &self.packets {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// One line describing a packet: a summary, then its bytes in hex.
pub fn describe_packet(label: &str, pkt: &[u8]) -> String {
    format!(
        "{label}: {} [{}]",
        packet_summary(pkt),
        packet_hex(pkt, DESCRIBED_BYTES)
    )
}

/// Bytes of a packet [`describe_packet`] shows in hex.
pub const DESCRIBED_BYTES: usize = 128;

/// A packet in one line: `proto 17 10.0.0.1:5000 -> 198.51.100.10:53 flags 0x00 len 92`.
pub fn packet_summary(pkt: &[u8]) -> String {
    match super::packet::Tuple::parse(pkt) {
        Some(t) => format!(
            "proto {} {} -> {} flags {:#04x} len {}",
            t.protocol,
            t.src_addr(),
            t.dst_addr(),
            t.tcp_flags,
            pkt.len()
        ),
        None => match crate::wire::parse::parse_ip(pkt) {
            Ok(m) => format!(
                "proto {} {} -> {} {} len {}",
                m.protocol,
                m.src(pkt),
                m.dst(pkt),
                if m.fragment.is_some() {
                    "fragment"
                } else {
                    "no ports"
                },
                pkt.len()
            ),
            Err(_) => format!("unparsable, len {}", pkt.len()),
        },
    }
}

/// The first `max` bytes of a packet in hex.
pub fn packet_hex(pkt: &[u8], max: usize) -> String {
    use std::fmt::Write as _;
    let mut hex = String::with_capacity(pkt.len().min(max) * 2);
    for b in pkt.iter().take(max) {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Something watching a run. Returning a violation stops the run. A run takes any number of
/// observers; `Any` lets the harness read one back by type when the run is over
/// ([`super::Simulator::observer`]).
pub trait Observer: std::any::Any {
    /// Called for every observation, in order, with the simulator event index and time.
    fn observe(&mut self, index: u64, now: Instant, obs: &Observation<'_>)
    -> Result<(), Violation>;
}

/// Stable 64-bit digest of a canonical trace: FNV-1a over 64-bit words (each word xored in, then
/// multiplied by the FNV prime), so hashing a packet costs one multiply per 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest(u64);

impl Default for Digest {
    fn default() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }
}

impl Digest {
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    /// Mixes in one word.
    #[inline]
    pub fn word(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(Self::PRIME);
    }

    /// Mixes in bytes (length first, so concatenations differ).
    #[inline]
    pub fn bytes(&mut self, b: &[u8]) {
        self.word(b.len() as u64);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(w));
        }
    }

    /// The digest value.
    pub fn value(&self) -> u64 {
        self.0
    }

    /// As 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_stable_and_length_sensitive() {
        let mut a = Digest::default();
        a.bytes(b"hello world");
        assert_eq!(a.hex(), {
            let mut b = Digest::default();
            b.bytes(b"hello world");
            b.hex()
        });
        let mut c = Digest::default();
        c.bytes(b"hello world\0");
        assert_ne!(a, c);
        // Pinned so the trace digest keeps its meaning across refactors.
        let mut d = Digest::default();
        d.word(1);
        assert_eq!(
            d.value(),
            (0xcbf2_9ce4_8422_2325u64 ^ 1).wrapping_mul(0x0000_0100_0000_01b3)
        );
    }
}
