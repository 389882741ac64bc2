//! NAT64 header translation (RFC 6146 with RFC 7915 header rules) for the well-known prefix
//! `64:ff9b::/96`: an inside IPv6 host reaches IPv4 remotes through the NIC's IPv4 block.
//!
//! The translated transport checksum is recomputed over the new pseudo-header (the header is
//! rebuilt, not rewritten, so RFC 1624's in-place update does not apply). Supported: TCP, UDP and
//! ICMP echo (ICMPv6 128/129 <-> ICMP 8/0). Fragments, ICMP errors across the families and IPv4
//! options are not translated; the gateway drops them with a counted reason.

use crate::wire::checksum;
use crate::wire::icmp::{v4 as icmpv4, v6 as icmpv6};
use crate::wire::parse::{IpMeta, IpVersion, proto};
use crate::wire::view::{IcmpView, Ipv4View, Ipv6View, TcpView};

/// The well-known NAT64 prefix `64:ff9b::/96` (RFC 6052).
pub const WELL_KNOWN_PREFIX: [u8; 12] = [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];

/// True when an IPv6 destination lies in `64:ff9b::/96`.
pub fn is_nat64_destination(dst: &[u8]) -> bool {
    dst.len() == 16 && dst[..12] == WELL_KNOWN_PREFIX
}

/// The IPv6 address `64:ff9b::a.b.c.d` for an IPv4 address.
pub fn embed(v4: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..12].copy_from_slice(&WELL_KNOWN_PREFIX);
    a[12..].copy_from_slice(&v4);
    a
}

/// Builds the IPv4 packet for an outbound IPv6 packet: source `src4:new_port`, destination
/// `dst4`, ICMPv6 echo request becomes ICMP echo request with identifier `new_port`.
pub fn v6_to_v4(pkt: &[u8], meta: &IpMeta, src4: [u8; 4], dst4: [u8; 4], new_port: u16) -> Vec<u8> {
    let mut t = pkt[meta.l4_offset..meta.end].to_vec();
    // The gateway translates only TCP, UDP and echo, whose fixed headers parsing checked.
    let p4 = match meta.protocol {
        proto::ICMPV6 => {
            let mut m = IcmpView::new_unchecked(&mut t[..]);
            m.set_msg_type(icmpv4::ECHO_REQUEST);
            m.set_ident(new_port);
            proto::ICMP
        }
        p => {
            // TCP and UDP have their ports at the same offsets.
            TcpView::new_unchecked(&mut t[..]).set_src_port(new_port);
            p
        }
    };
    let total = 20 + t.len();
    checksum::fill_transport_part(IpVersion::V4, &src4, &dst4, p4, &mut t);
    let tos = Ipv6View::new_unchecked(pkt).traffic_class();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&[0x45, tos]);
    out.extend_from_slice(&(total.min(usize::from(u16::MAX)) as u16).to_be_bytes());
    // Identification 0 with DF set: RFC 7915 §5.1 for packets that were not fragments.
    let hop_limit = Ipv6View::new_unchecked(pkt).hop_limit();
    out.extend_from_slice(&[0, 0, 0x40, 0, hop_limit, p4, 0, 0]);
    out.extend_from_slice(&src4);
    out.extend_from_slice(&dst4);
    checksum::set_ipv4_header(&mut out, 20);
    out.extend_from_slice(&t);
    out
}

/// Builds the IPv6 packet for an inbound IPv4 reply: source `src6`, destination
/// `dst6:new_port`, ICMP echo reply becomes ICMPv6 echo reply with identifier `new_port`.
pub fn v4_to_v6(
    pkt: &[u8],
    meta: &IpMeta,
    src6: [u8; 16],
    dst6: [u8; 16],
    new_port: u16,
) -> Vec<u8> {
    let mut t = pkt[meta.l4_offset..meta.end].to_vec();
    let p6 = match meta.protocol {
        proto::ICMP => {
            let mut m = IcmpView::new_unchecked(&mut t[..]);
            m.set_msg_type(icmpv6::ECHO_REPLY);
            m.set_ident(new_port);
            proto::ICMPV6
        }
        p => {
            TcpView::new_unchecked(&mut t[..]).set_dst_port(new_port);
            p
        }
    };
    checksum::fill_transport_part(IpVersion::V6, &src6, &dst6, p6, &mut t);
    let ip4 = Ipv4View::new_unchecked(pkt);
    let vtf: u32 = (6 << 28) | (u32::from(ip4.tos()) << 20);
    let mut out = Vec::with_capacity(40 + t.len());
    out.extend_from_slice(&vtf.to_be_bytes());
    out.extend_from_slice(&(t.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    out.extend_from_slice(&[p6, ip4.ttl()]);
    out.extend_from_slice(&src6);
    out.extend_from_slice(&dst6);
    out.extend_from_slice(&t);
    out
}
