//! The established-flow fast path: most packets a NAT sees are TCP or UDP packets of a flow it
//! already tracks, unfragmented, without IP options or IPv6 extension headers. For those,
//! [`Gateway::process`] skips the general path (the full header parse, the fragment, NAT64,
//! hairpin, ICMP and new-flow branches, and the second header read of the TTL step) and works
//! at fixed offsets.
//!
//! The fast path only *decides* that a packet is its case; it never decides what happens to
//! it. Every check that could end in anything other than "translate with this live flow" (a
//! bad checksum, an unknown NIC, a spoofed source, a destination in the NIC's own network, TTL
//! 1, a hairpin or NAT64 flow, a SYN that crosses a deferred answer) hands the packet back
//! unchanged to the general path, which then decides as it always does. An inside packet that
//! passed every check but finds no flow goes to the general path's `outbound` at once, with the
//! lookup's miss, since every check the general path makes before `outbound` has been made with
//! the same outcome. Once a packet is committed, the fast path runs the general path's steps in
//! the same order (`refresh`, the counters and the TTL decrement themselves;
//! `rewrite_transport_endpoint`, which writes exactly what `rewrite_endpoint` writes), so
//! verdicts, bytes, counters, events and timers are identical; `tests/nat_batch.rs` holds the
//! two paths to that on random traffic, garbage included.

use super::batch::Candidate;
use super::{Egress, Fam, Gateway, Ingress, NicState, Verdict, class_of, tcp_segment};
use crate::nat::nat64;
use crate::nat::table::{HAIRPIN, Lookup, NAT64};
use crate::nat::tcp::Dir;
use crate::nat::ttl;
use crate::nat::{Family, NicId};
use crate::wire::checksum;
use crate::wire::parse::{IpMeta, IpVersion, be16, proto};
use crate::wire::rewrite::{Side, rewrite_transport_endpoint};
use crate::wire::tcp_flags::SYN;

/// What the fast path did with a packet.
pub(super) enum Fast {
    /// Translated; its verdict has been written to the caller's `out`.
    Translated,
    /// An inside packet that needs nothing but a flow and found none: the general path's
    /// `outbound` has already run for it (told of the miss, so it does not look again) and
    /// written its verdict before the TTL step and the drop count to the caller's `out`.
    Missed,
    /// Not its case, but the IPv4 header checksum and (when the configuration asks for it)
    /// the transport checksum verified: the general path need not sum them again.
    Verified,
    /// Not its case; nothing checked.
    Declined,
}

/// The metadata `parse_ip` would give a packet the fast path can take: an unfragmented IPv4
/// packet without options or an IPv6 packet without extension headers, carrying TCP or UDP,
/// whose lengths `parse_ip` accepts. `None` for everything else (the general path decides).
#[inline]
fn fixed_header(pkt: &[u8]) -> Option<IpMeta> {
    let first = *pkt.first()?;
    let (version, l4, end, protocol) = if first == 0x45 {
        if pkt.len() < 20 {
            return None;
        }
        let total = usize::from(be16(pkt, 2));
        // More-fragments flag or a fragment offset: the general path's fragment handling.
        if total > pkt.len() || be16(pkt, 6) & 0x3FFF != 0 {
            return None;
        }
        (IpVersion::V4, 20, total, pkt[9])
    } else if first >> 4 == 6 {
        if pkt.len() < 40 {
            return None;
        }
        let end = 40 + usize::from(be16(pkt, 4));
        if end > pkt.len() {
            return None;
        }
        (IpVersion::V6, 40, end, pkt[6])
    } else {
        return None;
    };
    let l4_len = end.checked_sub(l4)?;
    let sized = match protocol {
        proto::TCP => {
            l4_len >= 20 && {
                let data_offset = usize::from(pkt[l4 + 12] >> 4) * 4;
                (20..=l4_len).contains(&data_offset)
            }
        }
        proto::UDP => l4_len >= 8 && (8..=l4_len).contains(&usize::from(be16(pkt, l4 + 4))),
        _ => false,
    };
    sized.then_some(IpMeta {
        version,
        l4_offset: l4,
        end,
        protocol,
        fragment: None,
        v6_fragment_header: None,
    })
}

/// True when `src` (4 or 16 bytes) is one of the NIC's own addresses.
#[inline]
pub(super) fn owns_source(state: &NicState, src: &[u8]) -> bool {
    state.config.addresses.iter().any(|a| match a {
        std::net::IpAddr::V4(v) => v.octets() == src,
        std::net::IpAddr::V6(v) => v.octets() == src,
    })
}

impl Gateway {
    /// Turns the established-flow fast path on or off; on by default. Results never depend on
    /// it; tests turn it off to hold the fast path to the general one.
    #[doc(hidden)]
    pub fn set_fast_path(&mut self, on: bool) {
        self.fast_path = on;
    }

    /// Packets the fast path has translated, so that tests can see it was taken.
    #[doc(hidden)]
    pub fn fast_path_packets(&self) -> u64 {
        self.fast_path_packets
    }

    /// Packets of those whose flow was the slot [`Gateway::process_batch`]'s prefetch stage
    /// found, so that tests can see the candidate was taken rather than looked up again.
    #[doc(hidden)]
    pub fn candidate_packets(&self) -> u64 {
        self.candidate_packets
    }

    /// Translates `pkt` if it is a packet of a live flow that needs nothing but translation.
    /// Otherwise the packet is untouched and goes to the general path, told whether its
    /// checksums were already verified here (so a new flow's packet is not summed twice). The
    /// clock has already advanced.
    ///
    /// Always inlined, like [`Gateway::process_with`] and for the same reason: its result
    /// returned through memory was read back across narrower stores.
    #[inline(always)]
    pub(super) fn fast_path(
        &mut self,
        ingress: Ingress,
        pkt: &mut Vec<u8>,
        candidate: Option<Candidate>,
        out: &mut Verdict,
    ) -> Fast {
        if !self.fast_path {
            return Fast::Declined;
        }
        let Some(meta) = fixed_header(pkt) else {
            return Fast::Declined;
        };
        if meta.version == IpVersion::V4 && !checksum::ipv4_header_ok(pkt, 20) {
            return Fast::Declined;
        }
        if self.config.verify_l4_checksums && !checksum::l4_ok(pkt, &meta) {
            return Fast::Declined;
        }
        if self.config.profile.ttl_decrement && ttl::hops(pkt, meta.version) <= 1 {
            return Fast::Verified;
        }
        // A candidate from the other family's table or the other index is no use here.
        let v6 = meta.version == IpVersion::V6;
        let slot = |lookup| {
            candidate
                .filter(|c| c.v6 == v6 && c.lookup == lookup)
                .map(|c| c.slot)
        };
        match (ingress, meta.version) {
            (Ingress::Inside(nic), IpVersion::V4) => {
                self.fast_out::<[u8; 4]>(nic, pkt, &meta, slot(Lookup::Out), out)
            }
            (Ingress::Inside(nic), IpVersion::V6) => {
                self.fast_out::<[u8; 16]>(nic, pkt, &meta, slot(Lookup::Out), out)
            }
            (Ingress::Outside, IpVersion::V4) => {
                self.fast_in::<[u8; 4]>(pkt, &meta, slot(Lookup::In), out)
            }
            (Ingress::Outside, IpVersion::V6) => {
                self.fast_in::<[u8; 16]>(pkt, &meta, slot(Lookup::In), out)
            }
        }
    }

    /// An inside packet of a live, non-hairpin flow (the general path: `classify`, `handle_inside`,
    /// `outbound`, `find_or_create`, `leave_hop_expires`); for one that finds no flow, the general
    /// path's `outbound` at once, since every check before it has been made.
    #[inline(always)]
    fn fast_out<A: Fam>(
        &mut self,
        nic: NicId,
        pkt: &mut Vec<u8>,
        meta: &IpMeta,
        candidate: Option<u32>,
        out: &mut Verdict,
    ) -> Fast {
        let Some(state) = self.nics.get(nic.0 as usize).and_then(|n| n.as_ref()) else {
            return Fast::Verified;
        };
        let (s, d, n) = (meta.src_offset(), meta.dst_offset(), meta.addr_len());
        if !owns_source(state, &pkt[s..s + n])
            || state.blocks[A::FAMILY.index()].is_none()
            || (A::FAMILY == Family::V6
                && self.config.nat64
                && nat64::is_nat64_destination(&pkt[d..d + n]))
        {
            return Fast::Verified;
        }
        let local = &self.config.networks[usize::from(state.config.network.0)].local_prefixes;
        if !local.is_empty() && {
            let dst = meta.dst(pkt);
            local.iter().any(|p| p.contains(&dst))
        } {
            return Fast::Verified;
        }
        let p = meta.protocol;
        let l4 = meta.l4_offset;
        let (inside, remote) = (A::read(pkt, s), A::read(pkt, d));
        let (iport, rport) = (be16(pkt, l4), be16(pkt, l4 + 2));
        let seg = if p == proto::TCP {
            tcp_segment(pkt, meta)
        } else {
            (0, 0)
        };
        if seg.0 & SYN != 0 && !self.deferred.is_empty() {
            return Fast::Verified;
        }
        let table = &A::state_ref(&self.fams).table;
        let taken =
            candidate.filter(|&c| table.out_flow_is(c, nic.0, p, &inside, iport, &remote, rport));
        let found = match taken {
            Some(c) => Ok(c),
            None => {
                let hash = table.out_hash_for(nic.0, p, &inside, iport, &remote, rport);
                table
                    .find_out_hashed(hash, nic.0, p, &inside, iport, &remote, rport)
                    .ok_or(hash)
            }
        };
        debug_assert!(
            found.is_err()
                || found.ok() == table.find_out(nic.0, p, &inside, iport, &remote, rport)
        );
        let idx = match found {
            Ok(idx) => idx,
            Err(hash) => {
                // `classify` would truncate before `outbound`.
                pkt.truncate(meta.end);
                *out = self.outbound::<A>(nic, pkt, meta, Some(hash));
                return Fast::Missed;
            }
        };
        if table.flows[idx as usize].flags & HAIRPIN != 0 {
            return Fast::Verified;
        }
        // Committed: from here on, exactly the general path's steps.
        self.fast_path_packets += 1;
        self.candidate_packets += u64::from(taken.is_some());
        pkt.truncate(meta.end);
        self.refresh_out::<A>(idx, p, seg);
        let fam = A::state_ref(&self.fams);
        let f = &fam.table.flows[idx as usize];
        let nat = fam.nat_ips[usize::from(f.nat_ip)];
        rewrite_transport_endpoint(pkt, meta, Side::Src, nat.as_ref(), f.nat_port);
        self.counters.translated_out[class_of(p)] += 1;
        self.nic_counters[nic.0 as usize].translated_out[class_of(p)] += 1;
        if self.config.profile.ttl_decrement {
            ttl::decrement(pkt, meta.version);
        }
        *out = Verdict::Forward(Egress::Outside);
        Fast::Translated
    }

    /// An outside packet that is a reply of a live, non-NAT64 flow (the general path:
    /// `classify`, `handle_outside`, `leave_hop_expires`).
    #[inline(always)]
    fn fast_in<A: Fam>(
        &mut self,
        pkt: &mut Vec<u8>,
        meta: &IpMeta,
        candidate: Option<u32>,
        out: &mut Verdict,
    ) -> Fast {
        let fam = A::state_ref(&self.fams);
        let Some(&nat_idx) = fam.nat_lookup.get(&A::read(pkt, meta.dst_offset())) else {
            return Fast::Verified;
        };
        let p = meta.protocol;
        let l4 = meta.l4_offset;
        let (nat_port, rport) = (be16(pkt, l4 + 2), be16(pkt, l4));
        let remote = A::read(pkt, meta.src_offset());
        let taken = candidate.filter(|&c| {
            fam.table
                .in_flow_is(c, nat_idx, nat_port, &remote, rport, p)
        });
        let Some(idx) = taken.or_else(|| fam.table.find_in(nat_idx, nat_port, &remote, rport, p))
        else {
            return Fast::Verified;
        };
        debug_assert_eq!(
            Some(idx),
            fam.table.find_in(nat_idx, nat_port, &remote, rport, p)
        );
        if fam.table.flows[idx as usize].flags & NAT64 != 0 {
            return Fast::Verified;
        }
        // Committed: from here on, exactly the general path's steps.
        self.fast_path_packets += 1;
        self.candidate_packets += u64::from(taken.is_some());
        pkt.truncate(meta.end);
        let tcp_flags = if p == proto::TCP { pkt[l4 + 13] } else { 0 };
        self.refresh::<A>(idx, Dir::In, tcp_flags);
        let f = &A::state_ref(&self.fams).table.flows[idx as usize];
        let (inside, inside_port, to) = (f.inside, f.inside_port, f.nic);
        rewrite_transport_endpoint(pkt, meta, Side::Dst, inside.as_ref(), inside_port);
        let c = class_of(p);
        self.counters.translated_in[c] += 1;
        self.nic_counters[to as usize].translated_in[c] += 1;
        if self.config.profile.ttl_decrement {
            ttl::decrement(pkt, meta.version);
        }
        *out = Verdict::Forward(Egress::Nic(NicId(to)));
        Fast::Translated
    }
}
