//! Vacuity guards: which interesting paths a run actually reached. A property that holds
//! because its path never ran proves nothing, so every guarded path is counted per run and
//! the swarm (and `tests/swarm_props.rs`) report how many runs reached each.
//!
//! Most paths show in the report's counters. The rest (a block removal that ended flows, an
//! inbound ICMP error translated, an established TCP flow, a timer expiry, IPv6 translation)
//! are seen by [`Coverage`], an observer of the run: it only looks at verdicts, packets and
//! events, so a run with it is the same run (same trace digest) as one without.

use crate::nat::{Egress, EndReason, Event, Ingress, Verdict};
use crate::scenario::Report;
use crate::sim::{Observation, Observer, Violation};
use crate::time::Instant;
use crate::wire::IpVersion;
use crate::wire::icmp;
use crate::wire::parse::{parse_ip, proto};
use crate::wire::tcp_flags::{ACK, SYN};
use crate::wire::view::TcpView;

/// A guarded path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Path {
    /// A new flow refused for lack of ports (`drop.ports_exhausted`).
    Exhaustion,
    /// An ICMP error from outside translated back to a NIC (RFC 5508).
    IcmpErrorIn,
    /// A packet hairpinned NIC to NIC through the NAT address (`translated.hairpin`).
    Hairpin,
    /// A NIC lost a block while it had live flows.
    BlockRemoved,
    /// Unsolicited inbound dropped (`drop.unsolicited`).
    Unsolicited,
    /// An inbound TCP segment of an established connection translated.
    TcpEstablished,
    /// A flow's idle timer ran out.
    Expiry,
    /// An IPv6 packet translated outbound.
    Ipv6,
    /// A NIC without a block refused (`drop.no_nat_block`).
    NoNatBlock,
    /// A dataplane node restarted (`sim.restarts`).
    Restart,
    /// A packet relayed between dataplane nodes (`sim.relayed`).
    Relayed,
    /// A packet with a bad checksum dropped (`drop.bad_checksum`).
    BadChecksum,
    /// A link lost a packet.
    LinkLoss,
    /// A later fragment translated (`translated.out.fragment`, `translated.in.fragment`).
    Fragments,
}

impl Path {
    /// Every guarded path.
    pub const ALL: [Path; 14] = [
        Path::Exhaustion,
        Path::IcmpErrorIn,
        Path::Hairpin,
        Path::BlockRemoved,
        Path::Unsolicited,
        Path::TcpEstablished,
        Path::Expiry,
        Path::Ipv6,
        Path::NoNatBlock,
        Path::Restart,
        Path::Relayed,
        Path::BadChecksum,
        Path::LinkLoss,
        Path::Fragments,
    ];

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Path::Exhaustion => "exhaustion",
            Path::IcmpErrorIn => "icmp-error-in",
            Path::Hairpin => "hairpin",
            Path::BlockRemoved => "block-removed",
            Path::Unsolicited => "unsolicited",
            Path::TcpEstablished => "tcp-established",
            Path::Expiry => "expiry",
            Path::Ipv6 => "ipv6",
            Path::NoNatBlock => "no-nat-block",
            Path::Restart => "restart",
            Path::Relayed => "relayed",
            Path::BadChecksum => "bad-checksum",
            Path::LinkLoss => "link-loss",
            Path::Fragments => "fragments",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The set of paths one run reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Reached(u32);

impl Reached {
    /// Marks a path.
    pub fn insert(&mut self, p: Path) {
        self.0 |= p.bit();
    }
    /// Whether the path was reached.
    pub fn contains(self, p: Path) -> bool {
        self.0 & p.bit() != 0
    }
    /// Union.
    pub fn union(self, other: Reached) -> Reached {
        Reached(self.0 | other.0)
    }
    /// Names of the reached paths, in [`Path::ALL`] order.
    pub fn names(self) -> Vec<&'static str> {
        Path::ALL
            .iter()
            .filter(|p| self.contains(**p))
            .map(|p| p.name())
            .collect()
    }

    /// The paths visible in a report's counters.
    pub fn from_report(r: &Report) -> Reached {
        let mut out = Reached::default();
        let counter = |k: &str| r.counters.get(k).copied().unwrap_or(0);
        for (p, k) in [
            (Path::Exhaustion, "drop.ports_exhausted"),
            (Path::Hairpin, "translated.hairpin"),
            (Path::Unsolicited, "drop.unsolicited"),
            (Path::NoNatBlock, "drop.no_nat_block"),
            (Path::Restart, "sim.restarts"),
            (Path::Relayed, "sim.relayed"),
            (Path::BadChecksum, "drop.bad_checksum"),
            (Path::Fragments, "translated.out.fragment"),
            (Path::Fragments, "translated.in.fragment"),
        ] {
            if counter(k) > 0 {
                out.insert(p);
            }
        }
        if r.links.values().any(|l| l.lost > 0) {
            out.insert(Path::LinkLoss);
        }
        out
    }
}

/// An observer recording which paths a run took. It only reads verdicts, translated packets and
/// dataplane events, all of which the simulator shows every observer, so a run with it is the
/// same run (same trace digest) as one without.
#[derive(Clone, Debug, Default)]
pub struct Coverage {
    /// The paths reached so far.
    pub reached: Reached,
}

impl Coverage {
    fn mark(&mut self, p: Path) {
        self.reached.insert(p);
    }

    /// Looks at a processed packet (after translation).
    fn look(&mut self, ingress: Ingress, verdict: Verdict, pkt: &[u8]) {
        let Ok(meta) = parse_ip(pkt) else {
            return;
        };
        let l4 = pkt.get(meta.l4_offset..).unwrap_or(&[]);
        match (ingress, verdict) {
            (Ingress::Inside(_), Verdict::Forward(Egress::Outside))
                if meta.version == IpVersion::V6 =>
            {
                self.mark(Path::Ipv6)
            }
            (Ingress::Outside, Verdict::Forward(Egress::Nic(_))) => match meta.protocol {
                p if icmp::is_icmp(meta.version, p)
                    && l4.first().is_some_and(|&t| icmp::is_error(meta.version, t)) =>
                {
                    self.mark(Path::IcmpErrorIn)
                }
                proto::TCP => {
                    // ACK without SYN: the handshake is done.
                    let flags = TcpView::new_checked(l4).map_or(0, |h| h.flags());
                    if flags & ACK != 0 && flags & SYN == 0 {
                        self.mark(Path::TcpEstablished);
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// Looks at a dataplane event.
    fn event(&mut self, e: &Event) {
        match e {
            Event::BlockRemoved { flows_flushed, .. } if *flows_flushed > 0 => {
                self.mark(Path::BlockRemoved)
            }
            Event::FlowEnded {
                reason: EndReason::Timeout,
                ..
            } => self.mark(Path::Expiry),
            _ => {}
        }
    }
}

impl Observer for Coverage {
    fn observe(&mut self, _: u64, _: Instant, obs: &Observation<'_>) -> Result<(), Violation> {
        match obs {
            Observation::Processed {
                ingress,
                verdict,
                after,
                ..
            } => self.look(*ingress, *verdict, after),
            Observation::Dataplane { event, .. } => self.event(event),
            _ => {}
        }
        Ok(())
    }
}

/// How many of a set of runs reached each path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Runs counted.
    pub runs: u64,
    /// Per path (in [`Path::ALL`] order), runs that reached it.
    pub reached: [u64; Path::ALL.len()],
}

impl Tally {
    /// Counts one run.
    pub fn add(&mut self, r: Reached) {
        self.runs += 1;
        for (i, p) in Path::ALL.iter().enumerate() {
            if r.contains(*p) {
                self.reached[i] += 1;
            }
        }
    }
    /// Runs that reached `p`.
    pub fn count(&self, p: Path) -> u64 {
        Path::ALL
            .iter()
            .position(|x| *x == p)
            .map_or(0, |i| self.reached[i])
    }
    /// `name count/runs` for every path.
    pub fn line(&self) -> String {
        Path::ALL
            .iter()
            .map(|p| format!("{} {}/{}", p.name(), self.count(*p), self.runs))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
