//! Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012): each seed first draws which
//! features and fault classes are switched on, then the world. A run with only a few features
//! on explores them more deeply than one where everything is on at once (a port scan cannot
//! starve hairpin traffic of events it never shares a run with), and over many seeds every
//! combination gets its turn.

use std::fmt;

use crate::rng::Rng;
use crate::sim::engine::stream_of;

/// Address families of a generated world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Families {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
    /// Both.
    Dual,
}

impl Families {
    /// Has IPv4.
    pub fn v4(self) -> bool {
        self != Families::V6
    }
    /// Has IPv6.
    pub fn v6(self) -> bool {
        self != Families::V4
    }
    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Families::V4 => "v4",
            Families::V6 => "v6",
            Families::Dual => "dual",
        }
    }
}

/// Which features and fault classes a generated world uses. Every field is a switch the
/// generator honours; [`Features::all`] turns everything on (useful for property tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Features {
    /// Address families.
    pub families: Families,
    /// Scripted TCP clients.
    pub tcp: bool,
    /// Scripted UDP clients.
    pub udp: bool,
    /// Scripted ICMP echo.
    pub icmp: bool,
    /// RFC 5780 probes against a STUN server.
    pub probe: bool,
    /// Clients on remote hosts sending towards NAT IPs and private addresses.
    pub inbound: bool,
    /// NIC-to-NIC traffic through the NAT address.
    pub hairpin: bool,
    /// Background workload generators.
    pub generators: bool,
    /// Port pressure: a small P and a generator that opens more flows than it allows.
    pub pressure: bool,
    /// Profile timers shortened so flows expire within the run.
    pub short_timers: bool,
    /// Several dataplane nodes (distributed dataplane, relaying).
    pub distributed: bool,
    /// A second network whose NICs the gateway never serves.
    pub second_network: bool,
    /// P so large that an IP holds only a few blocks (NICs left without one).
    pub scarce_blocks: bool,
    /// Unsolicited packets towards NAT IPs and private addresses.
    pub unsolicited: bool,
    /// Port scans of NAT IPs.
    pub port_scan: bool,
    /// Replies aimed at live mappings with one field changed.
    pub spoof: bool,
    /// Forged ICMP errors about live flows.
    pub forged_icmp: bool,
    /// RST injection into live TCP flows.
    pub rst_inject: bool,
    /// Link loss.
    pub loss: bool,
    /// Link duplication.
    pub duplicate: bool,
    /// Link reordering and jitter.
    pub reorder: bool,
    /// Link down/up.
    pub link_flap: bool,
    /// NICs created and deleted during the run.
    pub nic_churn: bool,
    /// NICs relabelled in and out of the selector.
    pub relabel: bool,
    /// VirtualIPs attached and detached.
    pub virtual_ip: bool,
    /// P changed during the run.
    pub p_change: bool,
    /// Gateway IPs added and removed.
    pub ip_churn: bool,
    /// Dataplane nodes restarting with state loss.
    pub restart: bool,
    /// The gateway deleted near the end.
    pub delete_gateway: bool,
    /// UDP datagrams larger than the MTU: hosts fragment them, the gateway translates the
    /// fragments, receivers reassemble.
    pub fragments: bool,
    /// Forged ICMP errors about live flows addressed to a NAT address other than the flow's
    /// (docs/behaviour.md §4 ICMP: the gateway must drop them).
    pub icmp_outer_destination: bool,
    /// A small conntrack table limit (2–9 flows per node and family), so table_full, the
    /// live-only count and "never evict" are exercised.
    pub small_table: bool,
    /// RSTs injected from the remote are lost on the victim NIC's link (the endpoints go on) and
    /// the transitory timer is short, so RST recovery is exercised.
    pub lost_rst: bool,
}

impl Features {
    /// Everything on (dual stack).
    pub fn all() -> Features {
        Features {
            families: Families::Dual,
            tcp: true,
            udp: true,
            icmp: true,
            probe: true,
            inbound: true,
            hairpin: true,
            generators: true,
            pressure: true,
            short_timers: true,
            distributed: true,
            second_network: true,
            scarce_blocks: true,
            unsolicited: true,
            port_scan: true,
            spoof: true,
            forged_icmp: true,
            rst_inject: true,
            loss: true,
            duplicate: true,
            reorder: true,
            link_flap: true,
            nic_churn: true,
            relabel: true,
            virtual_ip: true,
            p_change: true,
            ip_churn: true,
            restart: true,
            delete_gateway: true,
            fragments: true,
            icmp_outer_destination: true,
            small_table: true,
            lost_rst: true,
        }
    }

    /// The swarm draw for `seed`: each switch is on with probability 1/2, except the gateway
    /// deletion (1/8, it ends all translation) and scarce blocks (1/4, they starve NICs). At
    /// least one traffic protocol is always on, so no world is silent.
    pub fn draw(seed: u64) -> Features {
        let mut rng = Rng::new(seed, stream_of("swarm/features"));
        let mut coin = |num: u64, den: u64| rng.chance(num, den);
        let families = match (coin(3, 4), coin(1, 2)) {
            (true, _) => Families::V4,
            (false, true) => Families::V6,
            (false, false) => Families::Dual,
        };
        let mut f = Features {
            families,
            tcp: coin(1, 2),
            udp: coin(1, 2),
            icmp: coin(1, 2),
            probe: coin(1, 4),
            inbound: coin(1, 2),
            hairpin: coin(1, 2),
            generators: coin(1, 2),
            pressure: coin(1, 2),
            short_timers: coin(1, 2),
            distributed: coin(1, 3),
            second_network: coin(1, 4),
            scarce_blocks: coin(1, 6),
            unsolicited: coin(1, 2),
            port_scan: coin(1, 2),
            spoof: coin(1, 2),
            forged_icmp: coin(1, 2),
            rst_inject: coin(1, 2),
            loss: coin(1, 3),
            duplicate: coin(1, 3),
            reorder: coin(1, 3),
            link_flap: coin(1, 3),
            nic_churn: coin(1, 3),
            relabel: coin(1, 3),
            virtual_ip: coin(1, 3),
            p_change: coin(1, 4),
            ip_churn: coin(1, 4),
            restart: coin(1, 4),
            delete_gateway: coin(1, 10),
            // Drawn below from a stream of its own, so that adding the switch left every
            // other switch of every seed as it was.
            fragments: false,
            icmp_outer_destination: false,
            small_table: false,
            lost_rst: false,
        };
        f.fragments = Rng::new(seed, stream_of("swarm/features/fragments")).chance(1, 4);
        // Also from streams of their own, for the same reason.
        f.icmp_outer_destination =
            Rng::new(seed, stream_of("swarm/features/icmp-outer-destination")).chance(1, 4);
        f.small_table = Rng::new(seed, stream_of("swarm/features/small-table")).chance(1, 4);
        f.lost_rst = Rng::new(seed, stream_of("swarm/features/lost-rst")).chance(1, 3);
        if !(f.tcp || f.udp || f.icmp) {
            f.udp = true;
        }
        f
    }

    /// Names of the switches, in declaration order (bit `i` of a mask is switch `i`).
    pub const NAMES: [&'static str; 32] = [
        "tcp",
        "udp",
        "icmp",
        "probe",
        "inbound",
        "hairpin",
        "generators",
        "pressure",
        "short-timers",
        "distributed",
        "second-network",
        "scarce-blocks",
        "unsolicited",
        "port-scan",
        "spoof",
        "forged-icmp",
        "rst-inject",
        "loss",
        "duplicate",
        "reorder",
        "link-flap",
        "nic-churn",
        "relabel",
        "virtual-ip",
        "p-change",
        "ip-churn",
        "restart",
        "delete-gateway",
        "fragments",
        "icmp-outer-destination",
        "small-table",
        "lost-rst",
    ];

    fn switches(&self) -> [bool; 32] {
        [
            self.tcp,
            self.udp,
            self.icmp,
            self.probe,
            self.inbound,
            self.hairpin,
            self.generators,
            self.pressure,
            self.short_timers,
            self.distributed,
            self.second_network,
            self.scarce_blocks,
            self.unsolicited,
            self.port_scan,
            self.spoof,
            self.forged_icmp,
            self.rst_inject,
            self.loss,
            self.duplicate,
            self.reorder,
            self.link_flap,
            self.nic_churn,
            self.relabel,
            self.virtual_ip,
            self.p_change,
            self.ip_churn,
            self.restart,
            self.delete_gateway,
            self.fragments,
            self.icmp_outer_destination,
            self.small_table,
            self.lost_rst,
        ]
    }

    fn switches_mut(&mut self) -> [&mut bool; 32] {
        [
            &mut self.tcp,
            &mut self.udp,
            &mut self.icmp,
            &mut self.probe,
            &mut self.inbound,
            &mut self.hairpin,
            &mut self.generators,
            &mut self.pressure,
            &mut self.short_timers,
            &mut self.distributed,
            &mut self.second_network,
            &mut self.scarce_blocks,
            &mut self.unsolicited,
            &mut self.port_scan,
            &mut self.spoof,
            &mut self.forged_icmp,
            &mut self.rst_inject,
            &mut self.loss,
            &mut self.duplicate,
            &mut self.reorder,
            &mut self.link_flap,
            &mut self.nic_churn,
            &mut self.relabel,
            &mut self.virtual_ip,
            &mut self.p_change,
            &mut self.ip_churn,
            &mut self.restart,
            &mut self.delete_gateway,
            &mut self.fragments,
            &mut self.icmp_outer_destination,
            &mut self.small_table,
            &mut self.lost_rst,
        ]
    }

    /// The switches as a bit mask (bit `i` is [`Features::NAMES`]`[i]`).
    pub fn mask(&self) -> u32 {
        self.switches()
            .iter()
            .enumerate()
            .fold(0, |m, (i, on)| m | (u32::from(*on) << i))
    }

    /// Features from a bit mask, e.g. one drawn (and shrunk towards fewer features) by a
    /// property-testing library. As in [`Features::draw`], some protocol is always on.
    pub fn from_mask(families: Families, mask: u32) -> Features {
        let mut f = Features::all();
        f.families = families;
        for (i, s) in f.switches_mut().into_iter().enumerate() {
            *s = mask & (1 << i) != 0;
        }
        if !(f.tcp || f.udp || f.icmp) {
            f.udp = true;
        }
        f
    }

    /// The names of the switches that are on, in declaration order.
    pub fn on(&self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .zip(self.switches())
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect()
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.families.name(), self.on().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draw_is_a_function_of_the_seed() {
        assert_eq!(Features::draw(7), Features::draw(7));
        let distinct = (0..64)
            .map(|s| Features::draw(s).to_string())
            .collect::<std::collections::BTreeSet<_>>();
        assert!(distinct.len() > 50, "{}", distinct.len());
    }

    #[test]
    fn masks_round_trip() {
        for s in 0..100 {
            let f = Features::draw(s);
            assert_eq!(Features::from_mask(f.families, f.mask()), f);
        }
        assert_eq!(
            Features::from_mask(Families::Dual, u32::MAX),
            Features::all()
        );
    }

    #[test]
    fn some_protocol_is_always_on() {
        for s in 0..500 {
            let f = Features::draw(s);
            assert!(f.tcp || f.udp || f.icmp, "seed {s}");
        }
    }
}
