//! The `gateway_packet` world and the gateway configuration every packet-level harness uses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Checker, Control};
use crate::nat::{
    Block, GatewayConfig, Ingress, NetworkConfig, NetworkId, NicConfig, NicId, Profile, Verdict,
};
use crate::sim::dataplane::{DataplaneFactory, real_gateway};
use crate::wire::tcp_flags::SYN;
use crate::wire::{PacketRepr, proto};

/// Private addresses both NICs of the fixture use (in different networks).
pub const INSIDE_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// IPv6 counterpart of [`INSIDE_V4`].
pub const INSIDE_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
/// The fixture's IPv4 NAT address.
pub const NAT_V4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The fixture's IPv6 NAT address.
pub const NAT_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// IPv4 remote hosts the fixture's flows talk to.
pub const REMOTE_V4: [Ipv4Addr; 2] = [
    Ipv4Addr::new(198, 51, 100, 1),
    Ipv4Addr::new(198, 51, 100, 2),
];
/// IPv6 remote hosts the fixture's flows talk to.
pub const REMOTE_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 2),
];
/// P of the fixture.
pub const FIXTURE_P: u16 = 8;

/// Builds a profile from a config byte: bits 0–2 pick [`Profile::NAMES`] (modulo 6); bit 3
/// turns on ICMP unreachable for unsolicited packets, bit 4 on exhaustion, bit 5 the
/// unusable-last-port quirk; bit 6 flips inbound UDP refresh, bit 7 TCP mid-stream pickup.
pub fn profile_from_byte(b: u8) -> Profile {
    let name = Profile::NAMES[usize::from(b & 7) % Profile::NAMES.len()];
    let mut p = Profile::named(name).unwrap_or_default();
    p.icmp_unreachable_on_unsolicited = b & 0x08 != 0;
    p.icmp_unreachable_on_exhaustion = b & 0x10 != 0;
    p.last_port_unusable = b & 0x20 != 0;
    p.udp_inbound_refresh ^= b & 0x40 != 0;
    p.tcp_midstream_pickup ^= b & 0x80 != 0;
    p
}

/// The networks every harness gateway uses: two networks with the same private prefixes.
pub fn two_networks() -> Vec<NetworkConfig> {
    let local = || {
        ["10.0.0.0/24", "fd00::/64"]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    };
    vec![
        NetworkConfig {
            name: "net-a".into(),
            local_prefixes: local(),
        },
        NetworkConfig {
            name: "net-b".into(),
            local_prefixes: local(),
        },
    ]
}

/// A gateway configuration for the harnesses.
pub fn harness_config(profile: Profile, ports_per_nic: u32) -> GatewayConfig {
    GatewayConfig {
        profile,
        ports_per_nic,
        networks: two_networks(),
        record_events: true,
        // Small enough that exhaustion paths are reachable, large enough not to dominate.
        max_flows: 64,
        max_fragment_datagrams: 4,
        max_fragments_buffered: 8,
        ..GatewayConfig::default()
    }
}

/// The `gateway_packet` world: two NICs with the same private address (10.0.0.1, fd00::1) in two
/// networks, blocks of [`FIXTURE_P`] ports on one NAT IP per family (NIC 0 the first slot, NIC 1
/// the second), and a valid TCP, UDP and echo flow per NIC and family opened at start.
pub struct Fixture {
    checker: Checker,
}

/// One of the flows every [`Fixture`] opens: (protocol, inside port or identifier, remote,
/// remote port).
pub const FIXTURE_FLOWS: [(u8, u16, usize, u16); 3] = [
    (proto::TCP, 40000, 0, 80),
    (proto::UDP, 5353, 1, 53),
    (proto::ICMP, 7, 0, 0),
];

impl Fixture {
    /// Builds the fixture for a config byte ([`profile_from_byte`]) on the real gateway; panics
    /// only if the fixture's own setup breaks an invariant.
    pub fn new(config: u8) -> Self {
        Fixture::on(config, &real_gateway).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Builds the fixture on the dataplane `factory` makes (a broken one, in tests); an error
    /// when its setup is refused or already breaks an invariant.
    pub fn on(config: u8, factory: &DataplaneFactory) -> Result<Self, String> {
        let cfg = harness_config(profile_from_byte(config), u32::from(FIXTURE_P));
        let mut checker =
            Checker::new(cfg, factory).map_err(|e| format!("fixture config rejected: {e}"))?;
        for (i, network) in [0u16, 1].into_iter().enumerate() {
            let id = NicId(i as u32);
            let nic = NicConfig {
                network: NetworkId(network),
                addresses: vec![IpAddr::V4(INSIDE_V4), IpAddr::V6(INSIDE_V6)],
                name: format!("nic-{i}"),
            };
            checker.setup(Control::AddNic(id, nic))?;
            let start = 1024 + i as u16 * FIXTURE_P;
            for nat_ip in [IpAddr::V4(NAT_V4), IpAddr::V6(NAT_V6)] {
                let block = Block {
                    nat_ip,
                    port: start,
                    end_port: start + FIXTURE_P - 1,
                };
                checker.setup(Control::AssignBlock(id, block))?;
            }
        }
        for nic in 0..2 {
            for v6 in [false, true] {
                for &(p, iport, remote, rport) in &FIXTURE_FLOWS {
                    let pkt = fixture_outbound(v6, p, iport, remote, rport);
                    checker
                        .packet(Ingress::Inside(NicId(nic)), pkt)
                        .map_err(|v| v.to_string())?;
                }
            }
        }
        Ok(Fixture { checker })
    }

    /// The checker, to drive the fixture step by step and see violations as values (tests).
    pub fn checker_mut(&mut self) -> &mut Checker {
        &mut self.checker
    }

    /// The checker (for seeds and tests that need the flows).
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// Sends a packet; panics on a violation.
    pub fn packet(&mut self, ingress: Ingress, pkt: Vec<u8>) -> Verdict {
        match self.checker.packet(ingress, pkt) {
            Ok((v, _)) => v,
            Err(v) => panic!("{v}"),
        }
    }

    /// Advances the clock; panics on a violation.
    pub fn advance_ms(&mut self, ms: u64, timeout: bool) {
        if ms == 0 && !timeout {
            return;
        }
        if let Err(v) = self.checker.advance(ms, timeout) {
            panic!("{v}");
        }
    }

    /// Ends the run: lets every timer fire and checks once more.
    pub fn finish(mut self) {
        if let Err(v) = self.checker.poll_timeout(u64::MAX / 2_000_000) {
            panic!("{v}");
        }
    }
}

/// The opening packet of a fixture flow (the `FIXTURE_FLOWS` entry), from the shared inside
/// address.
pub fn fixture_outbound(v6: bool, p: u8, iport: u16, remote: usize, rport: u16) -> Vec<u8> {
    let (src, dst) = if v6 {
        (IpAddr::V6(INSIDE_V6), IpAddr::V6(REMOTE_V6[remote % 2]))
    } else {
        (IpAddr::V4(INSIDE_V4), IpAddr::V4(REMOTE_V4[remote % 2]))
    };
    match p {
        proto::TCP => PacketRepr::tcp((src, iport), (dst, rport), SYN, 1, 0, b"").emit(),
        proto::UDP => PacketRepr::udp((src, iport), (dst, rport), b"query").emit(),
        _ => PacketRepr::echo_request(src, dst, iport, 1, b"ping").emit(),
    }
}
