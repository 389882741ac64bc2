//! Conntrack's own events (netlink `NFNLGRP_CONNTRACK_NEW` and `_DESTROY`), parsed: the
//! kernel's word on when a connection was created and when it ended, so that the invariant
//! checker's flow model follows the kernel's table as it follows the model's events. The kernel
//! queues an event on the socket before the packet that caused it leaves the namespace, so
//! reading the socket after a packet's output sees that packet's events; entries the kernel's
//! garbage collector removes are seen at the next packet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::wire::parse::proto;

/// What happened to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtKind {
    /// Created (confirmed).
    New,
    /// Deleted (expired, killed, flushed).
    Destroy,
}

/// One conntrack event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtEvent {
    /// New or destroy.
    pub kind: CtKind,
    /// IP protocol number.
    pub protocol: u8,
    /// Original direction: source end and destination end (ICMP: identifier as the source
    /// port, destination port 0).
    pub original: (SocketAddr, SocketAddr),
    /// Reply direction's destination end: the NAT end of a translated connection.
    pub nat: SocketAddr,
    /// TCP state (`TCP_CONNTRACK_*`: 7 TIME_WAIT, 8 CLOSE), when the event carries it.
    pub tcp_state: Option<u8>,
    /// The kernel's id of the entry (`CTA_ID`), when the event carries it.
    pub id: Option<u32>,
}

/// `TCP_CONNTRACK_TIME_WAIT`.
pub const TCP_TIME_WAIT: u8 = 7;
/// `TCP_CONNTRACK_CLOSE`.
pub const TCP_CLOSE: u8 = 8;

const NLMSG_HDR: usize = 16;
const NFGENMSG: usize = 4;
const SUBSYS_CTNETLINK: u16 = 1;
const MSG_CT_NEW: u16 = 0;
const MSG_CT_DELETE: u16 = 2;
const ATTR_TYPE_MASK: u16 = 0x3fff;

/// The attributes of a netlink attribute stream: (type, payload).
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([buf[0], buf[1]]));
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & ATTR_TYPE_MASK;
        if len < 4 || len > buf.len() {
            return None;
        }
        let payload = &buf[4..len];
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
        Some((kind, payload))
    })
}

fn find(buf: &[u8], kind: u16) -> Option<&[u8]> {
    attrs(buf).find(|(k, _)| *k == kind).map(|(_, p)| p)
}

fn be16(p: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*p.first()?, *p.get(1)?]))
}

fn addr(p: &[u8]) -> Option<IpAddr> {
    match p.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(p[0], p[1], p[2], p[3]))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(p);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

/// A tuple: (protocol, source end, destination end).
fn tuple(buf: &[u8]) -> Option<(u8, SocketAddr, SocketAddr)> {
    let ip = find(buf, 1)?;
    let src = addr(find(ip, 1).or_else(|| find(ip, 3))?)?;
    let dst = addr(find(ip, 2).or_else(|| find(ip, 4))?)?;
    let pr = find(buf, 2)?;
    let protocol = *find(pr, 1)?.first()?;
    let (sport, dport) = match protocol {
        proto::TCP | proto::UDP => (be16(find(pr, 2)?)?, be16(find(pr, 3)?)?),
        proto::ICMP => (be16(find(pr, 4)?)?, 0),
        proto::ICMPV6 => (be16(find(pr, 7)?)?, 0),
        _ => (0, 0),
    };
    Some((
        protocol,
        SocketAddr::new(src, sport),
        SocketAddr::new(dst, dport),
    ))
}

/// Parses every conntrack event in one netlink datagram (others are skipped).
pub fn parse_datagram(mut buf: &[u8]) -> Vec<CtEvent> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDR {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < NLMSG_HDR || len > buf.len() {
            break;
        }
        let msg_type = u16::from_ne_bytes([buf[4], buf[5]]);
        let body = &buf[NLMSG_HDR..len];
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
        let kind = match (msg_type >> 8, msg_type & 0xff) {
            (SUBSYS_CTNETLINK, MSG_CT_NEW) => CtKind::New,
            (SUBSYS_CTNETLINK, MSG_CT_DELETE) => CtKind::Destroy,
            _ => continue,
        };
        let Some(attrs_buf) = body.get(NFGENMSG..) else {
            continue;
        };
        let (Some(orig), Some(reply)) = (find(attrs_buf, 1), find(attrs_buf, 2)) else {
            continue;
        };
        let (Some((protocol, o_src, o_dst)), Some((_, _, r_dst))) = (tuple(orig), tuple(reply))
        else {
            continue;
        };
        let nat_port = match protocol {
            proto::ICMP | proto::ICMPV6 => tuple(reply).map_or(0, |(_, s, _)| s.port()),
            _ => r_dst.port(),
        };
        let tcp_state = find(attrs_buf, 4)
            .and_then(|pi| find(pi, 1))
            .and_then(|tcp| find(tcp, 1))
            .and_then(|s| s.first().copied());
        let id = find(attrs_buf, 12).and_then(|p| {
            Some(u32::from_be_bytes([
                *p.first()?,
                *p.get(1)?,
                *p.get(2)?,
                *p.get(3)?,
            ]))
        });
        out.push(CtEvent {
            kind,
            protocol,
            original: (o_src, o_dst),
            nat: SocketAddr::new(r_dst.ip(), nat_port),
            tcp_state,
            id,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn tuple_attr(kind: u16, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let ip = [attr(1, &src), attr(2, &dst)].concat();
        let pr = [
            attr(1, &[17]),
            attr(2, &sport.to_be_bytes()),
            attr(3, &dport.to_be_bytes()),
        ]
        .concat();
        attr(
            kind | 0x8000,
            &[attr(1 | 0x8000, &ip), attr(2 | 0x8000, &pr)].concat(),
        )
    }

    #[test]
    fn conntrack_events_parse_from_netlink_messages() {
        let body = [
            vec![2, 0, 0, 0],
            tuple_attr(1, [10, 0, 0, 1], [198, 51, 100, 9], 5000, 53),
            tuple_attr(2, [198, 51, 100, 9], [203, 0, 113, 1], 53, 1033),
            attr(12, &7u32.to_be_bytes()),
        ]
        .concat();
        let mut msg = Vec::new();
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&0x0102u16.to_ne_bytes());
        msg.extend_from_slice(&[0; 10]);
        msg.extend_from_slice(&body);
        let events = parse_datagram(&msg);
        assert_eq!(events.len(), 1);
        let e = events[0];
        assert_eq!(e.kind, CtKind::Destroy);
        assert_eq!(e.protocol, 17);
        assert_eq!(e.original.0, "10.0.0.1:5000".parse().unwrap());
        assert_eq!(e.nat, "203.0.113.1:1033".parse().unwrap());
        assert_eq!(e.id, Some(7));
        // Truncated input yields nothing rather than panicking.
        for cut in 0..msg.len() {
            let _ = parse_datagram(&msg[..cut]);
        }
    }
}
