//! The nftables ruleset natsim loads into its namespace: the IronCore NAT gateway written as
//! Linux netfilter rules. Regenerated whole from the NICs and their blocks after every control
//! change and loaded with `nft -f` (one atomic transaction; `flush ruleset` first).
//!
//! - `forward` (filter, policy drop): invalid conntrack state is dropped (so nothing leaves
//!   untranslated); from outside only `established,related` passes (nothing from outside can
//!   initiate); from a NIC, a source that is not one of its addresses is dropped (spoofing), a
//!   packet to another NIC passes untranslated, and a packet towards the outside passes only in
//!   a family in which the NIC holds a block (else it is dropped, as `no_nat_block`).
//! - `postrouting` (nat): per NIC and family, SNAT to `NAT_IP:port-end_port` of its block, for
//!   TCP, UDP and ICMP echo (the kernel keeps an ICMP identifier in the range too), and SNAT to
//!   the bare NAT IP for anything else.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::nat::Block;

/// One NIC as the ruleset sees it.
#[derive(Clone, Debug)]
pub struct NicRules<'a> {
    /// Its TUN device in the namespace.
    pub iface: &'a str,
    /// Its addresses (sources it may use).
    pub addresses: &'a [IpAddr],
    /// Its IPv4 block, if it holds one.
    pub v4: Option<Block>,
    /// Its IPv6 block, if it holds one.
    pub v6: Option<Block>,
}

/// The whole ruleset for the outside device `outside` and these NICs.
pub fn ruleset(outside: &str, nics: &[NicRules<'_>]) -> String {
    let mut s = String::from("flush ruleset\ntable inet natsim {\n");
    s.push_str("\tchain forward {\n\t\ttype filter hook forward priority filter; policy drop;\n");
    s.push_str("\t\tct state invalid drop\n");
    let _ = writeln!(
        s,
        "\t\tiifname \"{outside}\" ct state established,related accept"
    );
    for nic in nics {
        let iface = nic.iface;
        for (family, nfproto, match_word) in [(4u8, "ipv4", "ip saddr"), (6u8, "ipv6", "ip6 saddr")]
        {
            let own: Vec<String> = nic
                .addresses
                .iter()
                .filter(|a| {
                    if family == 4 {
                        a.is_ipv4()
                    } else {
                        a.is_ipv6()
                    }
                })
                .map(IpAddr::to_string)
                .collect();
            if own.is_empty() {
                let _ = writeln!(s, "\t\tiifname \"{iface}\" meta nfproto {nfproto} drop");
            } else {
                let _ = writeln!(
                    s,
                    "\t\tiifname \"{iface}\" {match_word} != {{ {} }} drop",
                    own.join(", ")
                );
            }
        }
        let _ = writeln!(s, "\t\tiifname \"{iface}\" oifname != \"{outside}\" accept");
        for (block, nfproto) in [(nic.v4, "ipv4"), (nic.v6, "ipv6")] {
            let action = if block.is_some() { "accept" } else { "drop" };
            let _ = writeln!(s, "\t\tiifname \"{iface}\" meta nfproto {nfproto} {action}");
        }
    }
    s.push_str("\t}\n");
    s.push_str(
        "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
    );
    for nic in nics {
        for block in [nic.v4, nic.v6].into_iter().flatten() {
            let (word, family, echo) = match block.nat_ip {
                IpAddr::V4(_) => ("ip saddr", "ip", "icmp"),
                IpAddr::V6(_) => ("ip6 saddr", "ip6", "ipv6-icmp"),
            };
            let nat = match block.nat_ip {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            };
            let bare = block.nat_ip.to_string();
            let range = format!("{}-{}", block.port, block.end_port);
            for addr in nic
                .addresses
                .iter()
                .filter(|a| a.is_ipv4() == block.nat_ip.is_ipv4())
            {
                let head = format!("\t\toifname \"{outside}\" {word} {addr}");
                let _ = writeln!(
                    s,
                    "{head} meta l4proto {{ tcp, udp }} snat {family} to {nat}:{range}"
                );
                let _ = writeln!(
                    s,
                    "{head} meta l4proto {echo} snat {family} to {nat}:{range}"
                );
                let _ = writeln!(s, "{head} snat {family} to {bare}");
            }
        }
    }
    s.push_str("\t}\n}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_snats_each_nic_to_its_block_and_drops_families_without_one() {
        let addrs: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap(), "fd00::5".parse().unwrap()];
        let block = Block {
            nat_ip: "203.0.113.1".parse().unwrap(),
            port: 1024,
            end_port: 1087,
        };
        let text = ruleset(
            "out0",
            &[NicRules {
                iface: "nic0",
                addresses: &addrs,
                v4: Some(block),
                v6: None,
            }],
        );
        assert!(text.contains(
            "oifname \"out0\" ip saddr 10.0.0.5 meta l4proto { tcp, udp } snat ip to 203.0.113.1:1024-1087"
        ));
        assert!(text.contains(
            "oifname \"out0\" ip saddr 10.0.0.5 meta l4proto icmp snat ip to 203.0.113.1:1024-1087"
        ));
        assert!(text.contains("iifname \"nic0\" meta nfproto ipv4 accept"));
        assert!(text.contains("iifname \"nic0\" meta nfproto ipv6 drop"));
        assert!(text.contains("iifname \"nic0\" ip6 saddr != { fd00::5 } drop"));
        assert!(text.contains("iifname \"out0\" ct state established,related accept"));
        assert!(!text.contains("snat ip6"));
    }
}
