//! The IP layer of simulated hosts and routers: splitting datagrams larger than a link's MTU into
//! fragments, and reassembling fragments at the receiving host.
//!
//! IPv4 datagrams without DF are fragmented wherever they meet a smaller MTU (RFC 791); IPv6
//! datagrams only by their source (RFC 8200 §4.5), so an IPv6 router, like an IPv4 one facing
//! DF, drops what does not fit (the link counts an MTU drop; the model's routers have no
//! address to send "packet too big" from). Receivers reassemble with bounded state: at most
//! [`MAX_PARTIAL_DATAGRAMS`] incomplete datagrams per host, each for at most
//! [`REASSEMBLY_TIMEOUT_NS`] (Linux `ipfrag_time`), oldest evicted first; overlapping pieces
//! that disagree drop the datagram (RFC 5722). Exact duplicates are ignored, since links can
//! duplicate packets.
//!
//! Fragmentation works on the packet bytes rather than through
//! [`crate::wire::PacketRepr::emit_fragments`]: a router re-fragments fragments (keeping their
//! offset, identification and more-fragments flag), which a repr of a whole datagram cannot
//! express, and the per-packet parse-and-emit would copy every oversized datagram twice.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::wire::checksum;
use crate::wire::parse::{
    IpMeta, IpVersion, be16, is_v6_extension_header, parse_ip_lax, v6_extension_header_len,
};

/// How long an incomplete datagram waits for its missing pieces.
pub const REASSEMBLY_TIMEOUT_NS: u64 = 30_000_000_000;
/// Incomplete datagrams a host keeps at once.
pub const MAX_PARTIAL_DATAGRAMS: usize = 64;
/// Largest datagram reassembled (the IPv4 total length limit).
pub const MAX_DATAGRAM_BYTES: usize = 65_535;

const V4_DF: u16 = 0x4000;
const V4_MF: u16 = 0x2000;
const V6_FRAGMENT_HEADER: u8 = 44;

/// Why a datagram cannot be sent over a link in fragments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CannotFragment {
    /// IPv4 with DF set.
    DontFragment,
    /// IPv6 away from its source.
    Ipv6InTransit,
    /// IPv6 that already carries extension headers (simulated hosts send none).
    Ipv6ExtensionHeaders,
    /// Not a parsable IP packet.
    Unparsable,
    /// The MTU cannot hold the header and 8 bytes of data.
    MtuTooSmall,
}

/// Splits `pkt` into fragments of at most `mtu_bytes` each, appended to `out`. `source_ident`
/// is `Some` when the sending host fragments its own datagram: it is the IPv6 identification,
/// and the IPv4 one if the packet's is 0 (simulated hosts leave it 0 until they fragment).
/// Routers pass `None` and keep the IPv4 identification; re-fragmenting a fragment keeps its
/// offset and more-fragments flag.
pub fn fragment(
    pkt: &[u8],
    mtu_bytes: usize,
    source_ident: Option<u32>,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), CannotFragment> {
    match pkt.first().map(|b| b >> 4) {
        Some(4) => fragment_v4(pkt, mtu_bytes, source_ident, out),
        Some(6) => match source_ident {
            Some(ident) => fragment_v6(pkt, mtu_bytes, ident, out),
            None => Err(CannotFragment::Ipv6InTransit),
        },
        _ => Err(CannotFragment::Unparsable),
    }
}

fn fragment_v4(
    pkt: &[u8],
    mtu_bytes: usize,
    source_ident: Option<u32>,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), CannotFragment> {
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    if pkt.len() < 20 || ihl < 20 || pkt.len() < ihl {
        return Err(CannotFragment::Unparsable);
    }
    let total = usize::from(be16(pkt, 2)).clamp(ihl, pkt.len());
    let flags_offset = be16(pkt, 6);
    if flags_offset & V4_DF != 0 {
        return Err(CannotFragment::DontFragment);
    }
    let chunk = mtu_bytes.saturating_sub(ihl) / 8 * 8;
    if chunk == 0 {
        return Err(CannotFragment::MtuTooSmall);
    }
    let base_offset = usize::from(flags_offset & 0x1fff) * 8;
    let last_more = flags_offset & V4_MF != 0;
    let mut ident = be16(pkt, 4);
    if ident == 0 {
        ident = source_ident.map_or(0, |i| i as u16);
    }
    let data = &pkt[ihl..total];
    let pieces = data.len().div_ceil(chunk);
    for (i, piece) in data.chunks(chunk).enumerate() {
        let more = i + 1 < pieces || last_more;
        let offset = ((base_offset + i * chunk) / 8) as u16;
        let mut f = Vec::with_capacity(ihl + piece.len());
        f.extend_from_slice(&pkt[..ihl]);
        f[2..4].copy_from_slice(&((ihl + piece.len()) as u16).to_be_bytes());
        f[4..6].copy_from_slice(&ident.to_be_bytes());
        let field = if more { V4_MF | offset } else { offset };
        f[6..8].copy_from_slice(&field.to_be_bytes());
        checksum::set_ipv4_header(&mut f, ihl);
        f.extend_from_slice(piece);
        out.push(f);
    }
    Ok(())
}

fn fragment_v6(
    pkt: &[u8],
    mtu_bytes: usize,
    ident: u32,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), CannotFragment> {
    if pkt.len() < 40 {
        return Err(CannotFragment::Unparsable);
    }
    let next = pkt[6];
    if is_v6_extension_header(next) {
        return Err(CannotFragment::Ipv6ExtensionHeaders);
    }
    let end = (40 + usize::from(be16(pkt, 4))).min(pkt.len());
    let chunk = mtu_bytes.saturating_sub(48) / 8 * 8;
    if chunk == 0 {
        return Err(CannotFragment::MtuTooSmall);
    }
    let data = &pkt[40..end];
    let pieces = data.len().div_ceil(chunk);
    for (i, piece) in data.chunks(chunk).enumerate() {
        let more = u16::from(i + 1 < pieces);
        let offset = (i * chunk) as u16;
        let mut f = Vec::with_capacity(48 + piece.len());
        f.extend_from_slice(&pkt[..40]);
        f[4..6].copy_from_slice(&((8 + piece.len()) as u16).to_be_bytes());
        f[6] = V6_FRAGMENT_HEADER;
        f.extend_from_slice(&[next, 0]);
        f.extend_from_slice(&(offset | more).to_be_bytes());
        f.extend_from_slice(&ident.to_be_bytes());
        f.extend_from_slice(piece);
        out.push(f);
    }
    Ok(())
}

/// True when `pkt` may be a fragment (cheap test before parsing): IPv4 with MF or an offset,
/// IPv6 with any extension header.
pub fn may_be_fragment(pkt: &[u8]) -> bool {
    match pkt.first().map(|b| b >> 4) {
        Some(4) => pkt.len() >= 20 && be16(pkt, 6) & 0x3fff != 0,
        Some(6) => pkt.len() >= 40 && is_v6_extension_header(pkt[6]),
        _ => false,
    }
}

/// What became of a fragment offered for reassembly.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// It completed its datagram: here it is, whole and unfragmented.
    Whole(Vec<u8>),
    /// Kept until the rest arrives.
    Pending,
    /// Dropped (unparsable, too large, or it made its datagram inconsistent).
    Dropped,
}

/// Reassembly counters of one host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReassemblyStats {
    /// Fragments received.
    pub fragments: u64,
    /// Datagrams completed.
    pub reassembled: u64,
    /// Incomplete datagrams given up: timed out, evicted for room, or inconsistent.
    pub failed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    src: [u8; 16],
    dst: [u8; 16],
    protocol: u8,
    ident: u32,
}

struct Partial {
    first_ns: u64,
    /// The first fragment's header up to its data (IPv6: without the fragment header).
    header: Option<Vec<u8>>,
    /// Data pieces by byte offset.
    pieces: BTreeMap<u32, Vec<u8>>,
    /// Datagram data length, once the last piece arrived.
    total: Option<u32>,
    bytes: usize,
}

/// A host's reassembly buffer.
#[derive(Default)]
pub struct Reassembly {
    partial: BTreeMap<Key, Partial>,
    /// Counters.
    pub stats: ReassemblyStats,
}

impl Reassembly {
    /// Offers a received packet known to be a fragment (see [`may_be_fragment`]); packets that
    /// turn out not to be fragments come back as [`Offer::Whole`] unchanged.
    pub fn offer(&mut self, now_ns: u64, pkt: Vec<u8>) -> Offer {
        let Ok(meta) = parse_ip_lax(&pkt) else {
            return Offer::Whole(pkt);
        };
        let Some(frag) = meta.fragment.filter(|f| !f.is_atomic()) else {
            return Offer::Whole(pkt);
        };
        self.stats.fragments += 1;
        self.expire(now_ns);
        let key = key_of(&pkt, &meta, frag.ident);
        if !self.partial.contains_key(&key) && self.partial.len() >= MAX_PARTIAL_DATAGRAMS {
            self.evict_oldest();
        }
        let p = self.partial.entry(key).or_insert_with(|| Partial {
            first_ns: now_ns,
            header: None,
            pieces: BTreeMap::new(),
            total: None,
            bytes: 0,
        });
        let data = &pkt[meta.l4_offset..meta.end];
        let start = frag.offset_bytes;
        let end = start + data.len() as u32;
        let consistent = insert_piece(p, start, data)
            && (frag.more || p.total.is_none_or(|t| t == end))
            && (!frag.more || p.total.is_none_or(|t| end <= t))
            && p.bytes + 60 <= MAX_DATAGRAM_BYTES;
        if !consistent {
            self.partial.remove(&key);
            self.stats.failed += 1;
            return Offer::Dropped;
        }
        if !frag.more {
            p.total = Some(end);
        }
        if start == 0 && p.header.is_none() {
            p.header = Some(unfragmentable_header(&pkt, &meta));
        }
        match complete(p) {
            Some(whole) => {
                self.partial.remove(&key);
                self.stats.reassembled += 1;
                Offer::Whole(whole)
            }
            None => Offer::Pending,
        }
    }

    fn expire(&mut self, now_ns: u64) {
        let before = self.partial.len();
        self.partial
            .retain(|_, p| now_ns < p.first_ns.saturating_add(REASSEMBLY_TIMEOUT_NS));
        self.stats.failed += (before - self.partial.len()) as u64;
    }

    fn evict_oldest(&mut self) {
        let oldest = self
            .partial
            .iter()
            .min_by_key(|(k, p)| (p.first_ns, **k))
            .map(|(k, _)| *k);
        if let Some(k) = oldest {
            self.partial.remove(&k);
            self.stats.failed += 1;
        }
    }
}

fn key_of(pkt: &[u8], meta: &IpMeta, ident: u32) -> Key {
    let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
    let n = meta.addr_len();
    src[..n].copy_from_slice(&pkt[meta.src_offset()..meta.src_offset() + n]);
    dst[..n].copy_from_slice(&pkt[meta.dst_offset()..meta.dst_offset() + n]);
    Key {
        src,
        dst,
        protocol: meta.protocol,
        ident,
    }
}

/// Stores a piece; false when it overlaps a different piece (an exact duplicate is fine).
fn insert_piece(p: &mut Partial, start: u32, data: &[u8]) -> bool {
    let end = start + data.len() as u32;
    if let Some(existing) = p.pieces.get(&start) {
        return existing.as_slice() == data;
    }
    let before_ok = p
        .pieces
        .range(..start)
        .next_back()
        .is_none_or(|(&s, d)| s + d.len() as u32 <= start);
    let after_ok = p
        .pieces
        .range(start..)
        .next()
        .is_none_or(|(&s, _)| end <= s);
    if !(before_ok && after_ok) {
        return false;
    }
    p.bytes += data.len();
    p.pieces.insert(start, data.to_vec());
    true
}

/// The first fragment's header as the whole datagram's: IPv4 without MF/offset, IPv6 without
/// the fragment header (the header before it names what followed it).
fn unfragmentable_header(pkt: &[u8], meta: &IpMeta) -> Vec<u8> {
    match meta.version {
        IpVersion::V4 => pkt[..meta.l4_offset].to_vec(),
        IpVersion::V6 => {
            let at = meta.v6_fragment_header.unwrap_or(40);
            let mut h = pkt[..at].to_vec();
            let next = pkt.get(at).copied().unwrap_or(0);
            // Walk the chain to the header whose "next header" field names the fragment header.
            let (mut field, mut off, mut kind) = (6usize, 40usize, pkt[6]);
            while off < at {
                field = off;
                let len_byte = pkt.get(off + 1).copied().unwrap_or(0);
                let len = v6_extension_header_len(kind, len_byte);
                kind = pkt[off];
                off += len;
            }
            if let Some(b) = h.get_mut(field) {
                *b = next;
            }
            h
        }
    }
}

fn complete(p: &Partial) -> Option<Vec<u8>> {
    let total = p.total?;
    let header = p.header.as_ref()?;
    let mut at = 0u32;
    for (&s, d) in &p.pieces {
        if s != at {
            return None;
        }
        at += d.len() as u32;
    }
    if at != total {
        return None;
    }
    let mut whole = Vec::with_capacity(header.len() + total as usize);
    whole.extend_from_slice(header);
    for d in p.pieces.values() {
        whole.extend_from_slice(d);
    }
    let len = whole.len();
    if whole[0] >> 4 == 4 {
        let ihl = header.len();
        whole[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        whole[6..8].copy_from_slice(&[0, 0]);
        checksum::set_ipv4_header(&mut whole, ihl);
    } else {
        whole[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    }
    Some(whole)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::packet::build_udp_len;
    use std::net::SocketAddr;

    fn udp(src: &str, dst: &str, payload: usize) -> Vec<u8> {
        let mut b = Vec::new();
        let s: SocketAddr = src.parse().expect("addr");
        let d: SocketAddr = dst.parse().expect("addr");
        build_udp_len(&mut b, s, d, payload);
        b
    }

    fn split(pkt: &[u8], mtu: usize, ident: Option<u32>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        fragment(pkt, mtu, ident, &mut out).expect("fragments");
        out
    }

    #[test]
    fn ipv4_fragments_fit_the_mtu_and_reassemble_in_any_order() {
        let whole = udp("198.51.100.1:53", "10.0.0.1:4000", 3000);
        let mut pieces = split(&whole, 1500, Some(7));
        assert_eq!(pieces.len(), 3);
        for p in &pieces {
            assert!(p.len() <= 1500);
            let m = parse_ip_lax(p).expect("parses");
            assert_eq!(m.fragment.map(|f| f.ident), Some(7));
        }
        pieces.reverse();
        let mut r = Reassembly::default();
        let last = pieces.pop().expect("three");
        for p in pieces {
            assert_eq!(r.offer(0, p), Offer::Pending);
        }
        let Offer::Whole(got) = r.offer(0, last) else {
            panic!("the last piece completes the datagram");
        };
        // Identical but for the identification the host gave it when fragmenting.
        assert_eq!(got.len(), whole.len());
        assert_eq!(got[4..6], [0, 7]);
        assert!(got[12..] == whole[12..] && got[..4] == whole[..4]);
        assert!(checksum::verifies(checksum::sum(&got[..20])));
        assert_eq!(r.stats.reassembled, 1);
    }

    #[test]
    fn ipv6_source_fragments_reassemble_and_transit_ones_are_refused() {
        let whole = udp("[2001:db8::1]:53", "[fd00::1]:4000", 3000);
        let mut out = Vec::new();
        assert_eq!(
            fragment(&whole, 1280, None, &mut out),
            Err(CannotFragment::Ipv6InTransit)
        );
        let pieces = split(&whole, 1280, Some(9));
        assert!(pieces.iter().all(|p| p.len() <= 1280));
        let mut r = Reassembly::default();
        let n = pieces.len();
        for (i, p) in pieces.into_iter().enumerate() {
            let got = r.offer(0, p);
            if i + 1 == n {
                assert!(got == Offer::Whole(whole.clone()), "reassembled exactly");
            } else {
                assert_eq!(got, Offer::Pending);
            }
        }
    }

    /// Extension headers before the fragment header stay in the reassembled datagram, and the
    /// last of them now names the upper-layer protocol. The chain here is an authentication
    /// header (its length counts 4-byte units, RFC 4302) then destination options (8-byte units).
    #[test]
    fn ipv6_fragments_behind_extension_headers_reassemble() {
        let whole = udp("[2001:db8::1]:53", "[fd00::1]:4000", 3000);
        let with_ah = |pkt: &[u8], next: u8| {
            let mut p = pkt[..40].to_vec();
            p[6] = 51;
            let plen = be16(pkt, 4) + 24;
            p[4..6].copy_from_slice(&plen.to_be_bytes());
            p.extend_from_slice(&[60, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd]);
            p.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
            p.extend_from_slice(&pkt[40..]);
            p
        };
        let mut r = Reassembly::default();
        let pieces = split(&whole, 1280, Some(4));
        let n = pieces.len();
        for (i, p) in pieces.iter().enumerate() {
            let got = r.offer(0, with_ah(p, 44));
            if i + 1 < n {
                assert_eq!(got, Offer::Pending);
            } else {
                assert!(
                    got == Offer::Whole(with_ah(&whole, 17)),
                    "chain kept, names UDP"
                );
            }
        }
    }

    #[test]
    fn dont_fragment_is_honoured() {
        let mut whole = udp("198.51.100.1:53", "10.0.0.1:4000", 3000);
        whole[6] |= 0x40;
        let mut out = Vec::new();
        assert_eq!(
            fragment(&whole, 1500, Some(1), &mut out),
            Err(CannotFragment::DontFragment)
        );
    }

    #[test]
    fn duplicates_are_ignored_and_conflicting_overlaps_drop_the_datagram() {
        let whole = udp("198.51.100.1:53", "10.0.0.1:4000", 3000);
        let pieces = split(&whole, 1500, Some(3));
        let mut r = Reassembly::default();
        assert_eq!(r.offer(0, pieces[0].clone()), Offer::Pending);
        assert_eq!(r.offer(0, pieces[0].clone()), Offer::Pending, "duplicate");
        let mut bad = pieces[1].clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert_eq!(r.offer(0, bad), Offer::Pending);
        assert_eq!(r.offer(0, pieces[1].clone()), Offer::Dropped, "conflict");
        assert_eq!(r.stats.failed, 1);
    }

    #[test]
    fn incomplete_datagrams_time_out_and_are_bounded() {
        let mut r = Reassembly::default();
        for ident in 0..(MAX_PARTIAL_DATAGRAMS as u32 + 5) {
            let whole = udp("198.51.100.1:53", "10.0.0.1:4000", 3000);
            let first = split(&whole, 1500, Some(ident + 1)).swap_remove(0);
            assert_eq!(r.offer(u64::from(ident), first), Offer::Pending);
        }
        assert_eq!(r.partial.len(), MAX_PARTIAL_DATAGRAMS);
        assert_eq!(r.stats.failed, 5, "the oldest were evicted");
        let whole = udp("198.51.100.1:53", "10.0.0.1:4000", 3000);
        let late = split(&whole, 1500, Some(1000)).swap_remove(0);
        assert_eq!(r.offer(REASSEMBLY_TIMEOUT_NS + 100, late), Offer::Pending);
        assert_eq!(r.partial.len(), 1, "everything older timed out");
    }
}
