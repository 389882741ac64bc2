//! Gateway configuration: networks, NICs, public IPs, P, the profile, and per-NIC port blocks.
//! Blocks are handed in from outside (the API reconciler) and can change at run time.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::profile::Profile;

/// Usable NAT ports start here (IEP-4: 1024–65535, 64512 per IP).
pub const FIRST_NAT_PORT: u16 = 1024;
/// Number of usable NAT ports per IP.
pub const PORTS_PER_IP: u32 = 64512;

/// Identifies a NIC to the gateway. The embedder chooses ids; they index a vector, so keep them
/// dense (0, 1, 2, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NicId(pub u32);

impl fmt::Display for NicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nic#{}", self.0)
    }
}

/// Identifies a network (an index into [`GatewayConfig::networks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NetworkId(pub u16);

/// Address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// Family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        if addr.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
    /// 0 for IPv4, 1 for IPv6 (array index).
    pub fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }
    /// `IPv4` / `IPv6`, as IronCore spells them.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// A network: its own prefixes and routes are reached untranslated; everything else is NATed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Name, for reports.
    pub name: String,
    /// Prefixes and routes that are not NATed (the network's own address space, peerings).
    pub local_prefixes: Vec<IpNet>,
}

/// A NIC as the dataplane sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicConfig {
    /// The network the NIC is in.
    pub network: NetworkId,
    /// Its private addresses (at most one per family is typical; all are accepted as sources).
    pub addresses: Vec<IpAddr>,
    /// Name, for reports.
    pub name: String,
}

/// A port block on a NAT IP, both ends inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Block {
    /// The public address.
    pub nat_ip: IpAddr,
    /// First port.
    pub port: u16,
    /// Last port (inclusive, as IronCore's `endPort`).
    pub end_port: u16,
}

impl Block {
    /// Number of ports in the block.
    pub fn len(&self) -> u32 {
        u32::from(self.end_port) - u32::from(self.port) + 1
    }
    /// Never true for a valid block; present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.end_port < self.port
    }
    /// True when the two blocks share a port on the same IP.
    pub fn overlaps(&self, other: &Block) -> bool {
        self.nat_ip == other.nat_ip && self.port <= other.end_port && other.port <= self.end_port
    }
}

/// Static gateway configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GatewayConfig {
    /// Timers and behaviour.
    pub profile: Profile,
    /// `portsPerNetworkInterface`: a power of two in 1..=64512.
    pub ports_per_nic: u32,
    /// Networks, indexed by [`NetworkId`].
    pub networks: Vec<NetworkConfig>,
    /// Public addresses the gateway owns (more may be added with blocks at run time).
    pub nat_ips: Vec<IpAddr>,
    /// Connection-tracking capacity per family: live flows only (a closed TCP flow on its
    /// transitory timer counts; an expired flow whose port is still held does not).
    pub max_flows: u32,
    /// Fragmented datagrams tracked at once.
    pub max_fragment_datagrams: u32,
    /// Out-of-order fragments buffered at once (all datagrams together).
    pub max_fragments_buffered: u32,
    /// How long fragment state lives.
    pub fragment_timeout_ms: u64,
    /// Verify TCP/UDP/ICMP checksums of packets entering the gateway and drop bad ones.
    pub verify_l4_checksums: bool,
    /// Translate IPv6 packets to `64:ff9b::/96` into IPv4 with the NIC's IPv4 block (NAT64).
    pub nat64: bool,
    /// Seed for the port start-point hash.
    pub seed: u64,
    /// Record events for observers ([`crate::nat::Event`]).
    pub record_events: bool,
    /// Also record a `FlowRefreshed` event per refreshing packet (verbose).
    pub record_refresh_events: bool,
    /// Minimum spacing of `PortsExhausted` events per NIC.
    pub exhaustion_event_interval_ms: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            profile: Profile::rfc(),
            ports_per_nic: 2048,
            networks: Vec::new(),
            nat_ips: Vec::new(),
            max_flows: 4 << 20,
            max_fragment_datagrams: 1024,
            max_fragments_buffered: 4096,
            fragment_timeout_ms: 30_000,
            verify_l4_checksums: true,
            nat64: false,
            seed: 0,
            record_events: false,
            record_refresh_events: false,
            exhaustion_event_interval_ms: 1000,
        }
    }
}

/// A configuration or block assignment that the gateway refuses; the message names the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A field has an invalid value.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted field path, e.g. `ports_per_nic` or `block.end_port`.
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
}

impl ConfigError {
    /// Shorthand constructor.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl GatewayConfig {
    /// Checks the static configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = self.ports_per_nic;
        if p == 0 || p > PORTS_PER_IP || !p.is_power_of_two() {
            return Err(ConfigError::invalid(
                "ports_per_nic",
                format!("{p} is not a power of two in 1..=64512 (portsPerNetworkInterface)"),
            ));
        }
        if self.networks.len() > usize::from(u16::MAX) {
            return Err(ConfigError::invalid("networks", "at most 65535 networks"));
        }
        if self.max_flows == 0 {
            return Err(ConfigError::invalid("max_flows", "must be at least 1"));
        }
        Ok(())
    }
}
