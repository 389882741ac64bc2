//! The kernel's connection table read back (`conntrack -L -o extended` in the namespace) as
//! natsim flows, so that what reads a dataplane's flows (attacks aimed at a flow the dataplane
//! still holds, the report's live-flow count) works against the kernel too.

use std::net::{IpAddr, SocketAddr};

use crate::nat::event::FlowView;
use crate::nat::{FlowInfo, NicId};
use crate::time::Instant;
use crate::wire::parse::proto;

/// One conntrack entry, as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// IP protocol number.
    pub protocol: u8,
    /// Seconds until it expires.
    pub timeout_s: u64,
    /// TCP state (`established`, `time_wait`, ...), `active` otherwise.
    pub state: &'static str,
    /// Original direction: source end (inside), destination end (remote; ICMP: port 0).
    pub original: (SocketAddr, SocketAddr),
    /// Reply direction's destination: the NAT end.
    pub nat: SocketAddr,
}

fn state_of(word: &str) -> &'static str {
    match word {
        "SYN_SENT" => "syn_sent",
        "SYN_RECV" => "syn_recv",
        "ESTABLISHED" => "established",
        "FIN_WAIT" => "fin_wait",
        "CLOSE_WAIT" => "close_wait",
        "LAST_ACK" => "last_ack",
        "TIME_WAIT" => "time_wait",
        "CLOSE" => "close",
        "SYN_SENT2" => "syn_sent2",
        _ => "active",
    }
}

/// Parses one line of `conntrack -L -o extended`, e.g.
/// `ipv4 2 tcp 6 431999 ESTABLISHED src=10.0.0.1 dst=198.51.100.10 sport=40000 dport=80
/// src=198.51.100.10 dst=203.0.113.1 sport=80 dport=1062 [ASSURED] mark=0 use=1`.
/// `None` for anything else.
pub fn parse_line(line: &str) -> Option<Entry> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let protocol: u8 = words.get(3)?.parse().ok()?;
    let timeout_s: u64 = words.get(4)?.parse().ok()?;
    let state = words
        .get(5)
        .filter(|w| !w.contains('=') && !w.starts_with('['))
        .map_or("active", |w| state_of(w));
    // key=value pairs in order; the first src/dst/(sport|id) belong to the original
    // direction, the second to the reply.
    let mut src: Vec<IpAddr> = Vec::new();
    let mut dst: Vec<IpAddr> = Vec::new();
    let mut sport: Vec<u16> = Vec::new();
    let mut dport: Vec<u16> = Vec::new();
    let mut id: Vec<u16> = Vec::new();
    for w in &words[5..] {
        let Some((k, v)) = w.split_once('=') else {
            continue;
        };
        match k {
            "src" => src.push(v.parse().ok()?),
            "dst" => dst.push(v.parse().ok()?),
            "sport" => sport.push(v.parse().ok()?),
            "dport" => dport.push(v.parse().ok()?),
            "id" => id.push(v.parse().ok()?),
            _ => {}
        }
    }
    let (o_src, o_dst, r_dst) = (*src.first()?, *dst.first()?, *dst.get(1)?);
    let (inside_port, remote_port, nat_port) = match protocol {
        proto::TCP | proto::UDP => (*sport.first()?, *dport.first()?, *dport.get(1)?),
        proto::ICMP | proto::ICMPV6 => (*id.first()?, 0, *id.get(1)?),
        _ => (0, 0, 0),
    };
    Some(Entry {
        protocol,
        timeout_s,
        state,
        original: (
            SocketAddr::new(o_src, inside_port),
            SocketAddr::new(o_dst, remote_port),
        ),
        nat: SocketAddr::new(r_dst, nat_port),
    })
}

/// An entry as a natsim flow of `nic`, at virtual time `now`, with its remaining timeout
/// scaled back to virtual time.
pub fn flow_info(e: &Entry, nic: NicId, now: Instant, time_scale: f64) -> FlowInfo {
    let remaining_ns = (e.timeout_s as f64 / time_scale * 1e9) as u64;
    FlowInfo {
        flow: FlowView {
            nic,
            protocol: e.protocol,
            inside: e.original.0,
            remote: e.original.1,
            nat: e.nat,
        },
        live: true,
        state: e.state,
        last_active: now,
        deadline: Instant::from_nanos(now.as_nanos().saturating_add(remaining_ns)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_lines_parse_into_inside_remote_and_nat_ends() {
        let tcp = "ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.1 dst=198.51.100.10 sport=40000 dport=80 src=198.51.100.10 dst=203.0.113.1 sport=80 dport=1062 [ASSURED] mark=0 use=1";
        let e = parse_line(tcp).unwrap();
        assert_eq!(e.protocol, 6);
        assert_eq!(e.state, "established");
        assert_eq!(e.original.0, "10.0.0.1:40000".parse().unwrap());
        assert_eq!(e.original.1, "198.51.100.10:80".parse().unwrap());
        assert_eq!(e.nat, "203.0.113.1:1062".parse().unwrap());
        let udp = "ipv4     2 udp      17 29 src=10.0.0.5 dst=198.51.100.9 sport=5000 dport=53 [UNREPLIED] src=198.51.100.9 dst=203.0.113.1 sport=53 dport=1033 mark=0 use=1";
        let e = parse_line(udp).unwrap();
        assert_eq!((e.state, e.timeout_s), ("active", 29));
        assert_eq!(e.nat, "203.0.113.1:1033".parse().unwrap());
        let icmp = "ipv6     10 ipv6-icmp 58 29 src=fd00::1 dst=2001:db8::9 type=128 code=0 id=7 src=2001:db8::9 dst=2001:db8:ffff::1 type=129 code=0 id=1030 mark=0 use=1";
        let e = parse_line(icmp).unwrap();
        assert_eq!(e.original.0, "[fd00::1]:7".parse().unwrap());
        assert_eq!(e.nat, "[2001:db8:ffff::1]:1030".parse().unwrap());
        assert_eq!(
            parse_line("conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown."),
            None
        );
    }
}
