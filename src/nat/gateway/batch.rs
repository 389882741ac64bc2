//! Batched processing: the cache misses of many packets overlap instead of following one
//! another. A lookup touches the index entry and then the flow it names; at 64k flows and more
//! each is a miss, and one packet alone cannot start the second before the first returns. A
//! batch first hashes every packet's key and prefetches its index entry, then finds each
//! candidate slot and prefetches its flow, and only then processes the packets one by one.
//!
//! The prefetch stages read the gateway and change nothing; the last stage is
//! [`Gateway::process`] itself, in order. So a batch gives exactly the verdicts, counters,
//! events and state of packet-by-packet processing (a property test holds it to that); a
//! wrong or stale hint (a packet that creates or ends a flow earlier in the batch) costs only
//! a wasted prefetch.

use super::{Fam, Gateway, Ingress, Verdict};
use crate::nat::table::{Lookup, NIL};
use crate::time::Instant;
use crate::wire::parse::{be16, proto};

/// Packets whose misses are overlapped at once: enough to cover memory latency, few enough
/// that the prefetched lines are still in L1 when their packet is processed.
const PREFETCH_WINDOW: usize = 16;

/// Below this many flow slots in a family the table stays in cache and prefetching costs more
/// than it saves (measured in reports/BENCHMARKS.md), so the batch just processes in order.
pub(super) const PREFETCH_MIN_FLOWS: usize = 8192;

/// One packet of a batch for [`Gateway::process_batch`].
#[derive(Clone, Debug)]
pub struct BatchPacket {
    /// Where it entered.
    pub ingress: Ingress,
    /// The packet; rewritten in place or replaced, as by [`Gateway::process`].
    pub buf: Vec<u8>,
    /// Set by [`Gateway::process_batch`]: what to do with `buf`.
    pub verdict: Verdict,
}

impl BatchPacket {
    /// A packet not yet processed (its verdict is a placeholder until then).
    pub fn new(ingress: Ingress, buf: Vec<u8>) -> Self {
        BatchPacket {
            ingress,
            buf,
            verdict: Verdict::Buffered,
        }
    }
}

/// The lookup a packet will make: its family (IPv6?), which index, and the key's hash.
type Hint = Option<(bool, Lookup, u64)>;

/// The flow slot the prefetch stage found for a packet's lookup (its tag matched; the key is
/// not checked). [`Gateway::process_with`] takes it if the slot still holds the packet's live
/// flow when the packet's turn comes, and looks up as usual otherwise, so a stale candidate
/// costs a key comparison and nothing else.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate {
    /// The family's table (IPv6?).
    pub(super) v6: bool,
    /// The index it came from.
    pub(super) lookup: Lookup,
    /// The slot.
    pub(super) slot: u32,
}

/// The transport identity a lookup needs, read without validation (a hint only).
struct Tuple<'a> {
    v6: bool,
    proto: u8,
    src: &'a [u8],
    dst: &'a [u8],
    /// Source and destination port, or for ICMP echo (identifier, 0).
    sport: u16,
    dport: u16,
    echo: bool,
}

impl Gateway {
    /// Handles a batch of packets that arrive at the same instant: the same verdicts,
    /// counters, events and state as calling [`Gateway::process`] on each packet in order,
    /// only faster on large tables (see the module documentation).
    pub fn process_batch(&mut self, now: Instant, batch: &mut [BatchPacket]) {
        let min = self.batch_prefetch_min_flows;
        let large = [
            self.fams.v4.table.flows.len() >= min,
            self.fams.v6.table.flows.len() >= min,
        ];
        for window in batch.chunks_mut(PREFETCH_WINDOW) {
            if large[0] || large[1] {
                let mut hints: [Hint; PREFETCH_WINDOW] = [None; PREFETCH_WINDOW];
                for (hint, p) in hints.iter_mut().zip(window.iter()) {
                    *hint = self.hint_of(p.ingress, &p.buf, large);
                    self.prefetch_entry(*hint);
                }
                let mut slots: [Option<Candidate>; PREFETCH_WINDOW] = [None; PREFETCH_WINDOW];
                for (slot, hint) in slots.iter_mut().zip(&hints[..window.len()]) {
                    *slot = self.prefetch_flow(*hint);
                }
                for (p, slot) in window.iter_mut().zip(slots) {
                    self.process_with(now, p.ingress, &mut p.buf, slot, &mut p.verdict);
                }
            } else {
                for p in window.iter_mut() {
                    self.process_with(now, p.ingress, &mut p.buf, None, &mut p.verdict);
                }
            }
        }
    }

    /// Prefetch in [`Gateway::process_batch`] only for families with at least `flows` flow
    /// slots (default 8192). Results never depend on it; tests set 0 so that the prefetch
    /// stages run on small tables too.
    #[doc(hidden)]
    pub fn set_batch_prefetch_min_flows(&mut self, flows: usize) {
        self.batch_prefetch_min_flows = flows;
    }

    /// The lookup a packet will make, for families whose table is `large`.
    fn hint_of(&self, ingress: Ingress, pkt: &[u8], large: [bool; 2]) -> Hint {
        let t = tuple_of(pkt).filter(|t| large[usize::from(t.v6)])?;
        let hash = match (ingress, t.v6) {
            (Ingress::Inside(nic), false) => (Lookup::Out, out_hash::<[u8; 4]>(self, nic.0, &t)),
            (Ingress::Inside(nic), true) => (Lookup::Out, out_hash::<[u8; 16]>(self, nic.0, &t)),
            (Ingress::Outside, false) => (Lookup::In, in_hash::<[u8; 4]>(self, &t)?),
            (Ingress::Outside, true) => (Lookup::In, in_hash::<[u8; 16]>(self, &t)?),
        };
        Some((t.v6, hash.0, hash.1))
    }

    fn prefetch_entry(&self, hint: Hint) {
        match hint {
            Some((false, lookup, hash)) => self.fams.v4.table.prefetch_entry(lookup, hash),
            Some((true, lookup, hash)) => self.fams.v6.table.prefetch_entry(lookup, hash),
            None => {}
        }
    }

    fn prefetch_flow(&self, hint: Hint) -> Option<Candidate> {
        let (v6, lookup, hash) = hint?;
        let slot = if v6 {
            self.fams.v6.table.prefetch_flow(lookup, hash)
        } else {
            self.fams.v4.table.prefetch_flow(lookup, hash)
        };
        (slot != NIL).then_some(Candidate { v6, lookup, slot })
    }
}

fn out_hash<A: Fam>(g: &Gateway, nic: u32, t: &Tuple<'_>) -> u64 {
    let iport = t.sport;
    let rport = if t.echo { 0 } else { t.dport };
    A::state_ref(&g.fams).table.out_hash_for(
        nic,
        t.proto,
        &A::read(t.src, 0),
        iport,
        &A::read(t.dst, 0),
        rport,
    )
}

fn in_hash<A: Fam>(g: &Gateway, t: &Tuple<'_>) -> Option<u64> {
    let fam = A::state_ref(&g.fams);
    let nat_idx = *fam.nat_lookup.get(&A::read(t.dst, 0))?;
    // Inbound: the NAT port is the destination port (or the echo identifier).
    let (nat_port, rport) = if t.echo {
        (t.sport, 0)
    } else {
        (t.dport, t.sport)
    };
    Some(
        fam.table
            .in_hash_for(nat_idx, nat_port, &A::read(t.src, 0), rport, t.proto),
    )
}

/// The addresses and ports of an unfragmented TCP, UDP or ICMP echo packet, read without
/// checking anything else; `None` for anything the batch does not prefetch for.
fn tuple_of(pkt: &[u8]) -> Option<Tuple<'_>> {
    let (v6, protocol, src, dst, l4) = match pkt.first()? >> 4 {
        4 => {
            let ihl = usize::from(pkt.first()? & 0x0f) * 4;
            let frag = be16(pkt.get(..8)?, 6) & 0x3fff;
            if frag != 0 || ihl < 20 {
                return None;
            }
            (false, *pkt.get(9)?, pkt.get(12..16)?, pkt.get(16..20)?, ihl)
        }
        6 => (true, *pkt.get(6)?, pkt.get(8..24)?, pkt.get(24..40)?, 40),
        _ => return None,
    };
    let l4h = pkt.get(l4..l4 + 8)?;
    let (sport, dport, echo) = match protocol {
        proto::TCP | proto::UDP => (be16(l4h, 0), be16(l4h, 2), false),
        proto::ICMP if !v6 && matches!(l4h[0], 0 | 8) => (be16(l4h, 4), 0, true),
        proto::ICMPV6 if v6 && matches!(l4h[0], 128 | 129) => (be16(l4h, 4), 0, true),
        _ => return None,
    };
    Some(Tuple {
        v6,
        proto: protocol,
        src,
        dst,
        sport,
        dport,
        echo,
    })
}
