//! [`ReplayConfig`]: how `natsim replay` builds the gateway around a capture and maps packets to
//! its sides. Read from YAML (a replay config file, or later a scenario's `replay:` section) and
//! overridden field by field from the command line.
//!
//! ```yaml
//! profile: dpservice
//! overrides: { timeout_udp_ms: 60000 }
//! ports_per_nic: 2048
//! nat_pool: { first_ipv4: 203.0.113.1, first_ipv6: "2001:db8:ffff::1", size: 8 }
//! inside_prefixes: [10.0.0.0/8, 192.168.0.0/16]
//! interfaces: { eth0: inside, "1": outside }
//! time_offset_ms: 0
//! speed: 1.0
//! fix_checksums: false
//! verdicts: false
//! out_dir: replay-out
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::run::ReplayError;
use crate::nat::config::PORTS_PER_IP;
use crate::nat::{GatewayConfig, Profile};
use crate::yaml::locate_key_path;

/// The side a packet enters the gateway from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntrySide {
    /// From an inside host (a NIC): it is translated on its way out.
    Inside,
    /// From the internet: a reply (or an unsolicited packet) to an inside host.
    Outside,
}

impl EntrySide {
    /// `inside` / `outside`.
    pub fn name(self) -> &'static str {
        match self {
            EntrySide::Inside => "inside",
            EntrySide::Outside => "outside",
        }
    }
}

/// The public addresses NICs get their blocks on: `size` consecutive addresses per family,
/// starting at `first_ipv4` / `first_ipv6`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatPool {
    /// First IPv4 NAT address (default `203.0.113.1`, TEST-NET-3).
    pub first_ipv4: Ipv4Addr,
    /// First IPv6 NAT address (default `2001:db8:ffff::1`, documentation prefix).
    pub first_ipv6: Ipv6Addr,
    /// Addresses per family (default 8: 248 NICs per family at P = 2048).
    pub size: u32,
}

impl Default for NatPool {
    fn default() -> Self {
        NatPool {
            first_ipv4: Ipv4Addr::new(203, 0, 113, 1),
            first_ipv6: Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1),
            size: 8,
        }
    }
}

impl NatPool {
    /// The `index`-th IPv4 address of the pool, if it exists.
    pub fn ipv4(&self, index: u32) -> Option<IpAddr> {
        if index >= self.size {
            return None;
        }
        u32::from(self.first_ipv4)
            .checked_add(index)
            .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
    }

    /// The `index`-th IPv6 address of the pool, if it exists.
    pub fn ipv6(&self, index: u32) -> Option<IpAddr> {
        if index >= self.size {
            return None;
        }
        u128::from(self.first_ipv6)
            .checked_add(u128::from(index))
            .map(|a| IpAddr::V6(Ipv6Addr::from(a)))
    }

    /// Every address of the pool, IPv4 first.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let v4 = (0..self.size).filter_map(|i| self.ipv4(i));
        v4.chain((0..self.size).filter_map(|i| self.ipv6(i)))
            .collect()
    }

    /// True when the 4- or 16-byte address is one of the pool's (a range check: pools can be
    /// large, and this runs per packet).
    pub fn contains_bytes(&self, addr: &[u8]) -> bool {
        let size = u128::from(self.size);
        if let Ok(a) = <[u8; 4]>::try_from(addr) {
            let a = u128::from(u32::from_be_bytes(a));
            let first = u128::from(u32::from(self.first_ipv4));
            a >= first && a - first < size
        } else if let Ok(a) = <[u8; 16]>::try_from(addr) {
            let a = u128::from_be_bytes(a);
            let first = u128::from(self.first_ipv6);
            a >= first && a - first < size
        } else {
            false
        }
    }
}

/// Everything `natsim replay` needs besides the capture. Every field has a default, so an
/// empty file (or none) is a valid configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// Behaviour profile: `rfc`, `dpservice`, `gcp`, `aws`, `azure`, `linux`.
    pub profile: String,
    /// Per-field overrides of the profile (field names of [`Profile`]).
    pub overrides: BTreeMap<String, serde_json::Value>,
    /// `portsPerNetworkInterface` (P): a power of two in 1..=64512.
    pub ports_per_nic: u32,
    /// NAT addresses.
    pub nat_pool: NatPool,
    /// The inside address space: traffic between these and anything else is NATed; these are
    /// also the network's local prefixes (traffic among them passes untranslated).
    pub inside_prefixes: Vec<IpNet>,
    /// Capture interface (pcapng `if_name`, or the interface id as a decimal string) → the side
    /// every packet captured on it enters from. Takes precedence over addresses.
    pub interfaces: BTreeMap<String, EntrySide>,
    /// Virtual time of the first packet.
    pub time_offset_ms: u64,
    /// Replay speed: virtual time = capture time / speed (2.0 = twice as fast, so flows expire
    /// relatively later).
    pub speed: f64,
    /// Recompute bad IPv4 header and transport checksums on ingest (captures taken on the
    /// sending host with checksum offload carry garbage there).
    pub fix_checksums: bool,
    /// Write `verdicts.jsonl` (one JSON object per packet; costs time and disk).
    pub verdicts: bool,
    /// Output folder (the command line defaults it next to the capture).
    pub out_dir: Option<PathBuf>,
}

/// RFC 1918, RFC 6598 shared address space, and IPv6 unique local addresses.
pub const DEFAULT_INSIDE_PREFIXES: [&str; 5] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "fc00::/7",
];

/// Default `ports_per_nic` (IronCore's current default).
pub const DEFAULT_PORTS_PER_NIC: u32 = 2048;

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            profile: "rfc".into(),
            overrides: BTreeMap::new(),
            ports_per_nic: DEFAULT_PORTS_PER_NIC,
            nat_pool: NatPool::default(),
            inside_prefixes: DEFAULT_INSIDE_PREFIXES
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
            interfaces: BTreeMap::new(),
            time_offset_ms: 0,
            speed: 1.0,
            fix_checksums: false,
            verdicts: false,
            out_dir: None,
        }
    }
}

/// Slowest replay speed (a capture stretched a thousandfold).
pub const MIN_SPEED: f64 = 0.001;
/// Fastest replay speed.
pub const MAX_SPEED: f64 = 1_000_000.0;

/// Largest NAT pool per family: the gateway indexes NAT IPs with 16 bits.
pub const MAX_POOL_SIZE: u32 = 65_536;

impl ReplayConfig {
    /// Reads and validates a replay config file.
    pub fn load(path: &Path) -> Result<ReplayConfig, ReplayError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReplayError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ReplayConfig::parse(&text, &path.display().to_string())
    }

    /// Parses and validates config text; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<ReplayConfig, ReplayError> {
        let config: ReplayConfig =
            crate::yaml::from_str(text).map_err(|e| ReplayError::Config {
                source_name: source_name.to_string(),
                line: e.line,
                column: e.column,
                field: e.field,
                message: e.message,
            })?;
        config.validate().map_err(|e| match e {
            ReplayError::Invalid { field, message } => {
                let (line, column) = locate_key_path(text, &field).unwrap_or((0, 0));
                ReplayError::Config {
                    source_name: source_name.to_string(),
                    line,
                    column,
                    field: Some(field),
                    message,
                }
            }
            other => other,
        })?;
        Ok(config)
    }

    /// Checks the values serde cannot: P, speed, profile and overrides, pool size.
    pub fn validate(&self) -> Result<(), ReplayError> {
        let invalid = |field: &str, message: String| ReplayError::Invalid {
            field: field.to_string(),
            message,
        };
        let p = self.ports_per_nic;
        if p == 0 || p > PORTS_PER_IP || !p.is_power_of_two() {
            return Err(invalid(
                "ports_per_nic",
                format!("{p} is not a power of two in 1..=64512"),
            ));
        }
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Err(invalid(
                "speed",
                format!("{} is not a positive finite number", self.speed),
            ));
        }
        // Virtual times are u64 nanoseconds: bound what feeds them so nothing wraps or
        // saturates (docs/replay.md lists the ranges).
        if !(MIN_SPEED..=MAX_SPEED).contains(&self.speed) {
            return Err(invalid(
                "speed",
                format!("{} is out of range {MIN_SPEED}..={MAX_SPEED}", self.speed),
            ));
        }
        let max_ms = crate::time::MAX_DURATION_MS;
        if self.time_offset_ms > max_ms {
            return Err(invalid(
                "time_offset_ms",
                format!(
                    "{} is out of range 0..={max_ms} ms (365 days)",
                    self.time_offset_ms
                ),
            ));
        }
        if self.nat_pool.size == 0 || self.nat_pool.size > MAX_POOL_SIZE {
            return Err(invalid(
                "nat_pool.size",
                format!("{} is not in 1..=65536", self.nat_pool.size),
            ));
        }
        if self.nat_pool.ipv4(self.nat_pool.size - 1).is_none()
            || self.nat_pool.ipv6(self.nat_pool.size - 1).is_none()
        {
            return Err(invalid(
                "nat_pool.size",
                "the pool runs past the end of the address space".into(),
            ));
        }
        if let Some(key) = self.interfaces.keys().find(|k| k.is_empty()) {
            return Err(invalid(
                "interfaces",
                format!("`{key}` is not an interface name or id"),
            ));
        }
        self.profile()?;
        Ok(())
    }

    /// The profile with its overrides applied.
    pub fn profile(&self) -> Result<Profile, ReplayError> {
        let base = Profile::named(&self.profile).ok_or_else(|| ReplayError::Invalid {
            field: "profile".into(),
            message: format!(
                "unknown profile `{}`; valid: {}",
                self.profile,
                Profile::NAMES.join(", ")
            ),
        })?;
        if self.overrides.is_empty() {
            return Ok(base);
        }
        let map: serde_json::Map<String, serde_json::Value> = self
            .overrides
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        base.with_overrides(&map)
            .map_err(|message| ReplayError::Invalid {
                field: "overrides".into(),
                message,
            })
    }

    /// The gateway configuration: one network whose local prefixes are the inside prefixes,
    /// the whole NAT pool, events on (the invariant checker reads them).
    pub fn gateway_config(&self) -> Result<GatewayConfig, ReplayError> {
        Ok(GatewayConfig {
            profile: self.profile()?,
            ports_per_nic: self.ports_per_nic,
            networks: vec![crate::nat::NetworkConfig {
                name: "capture".into(),
                local_prefixes: self.inside_prefixes.clone(),
            }],
            nat_ips: self.nat_pool.addresses(),
            record_events: true,
            ..GatewayConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_is_the_default() {
        let c = ReplayConfig::parse("{}", "c.yaml").expect("valid");
        assert_eq!(c, ReplayConfig::default());
    }

    #[test]
    fn full_config_parses() {
        let text = "profile: dpservice\noverrides:\n  timeout_udp_ms: 60000\nports_per_nic: 64\n\
                    nat_pool:\n  first_ipv4: 198.51.100.7\n  size: 2\ninside_prefixes: [10.1.0.0/16]\n\
                    interfaces:\n  eth0: inside\n  \"1\": outside\nspeed: 2.5\nfix_checksums: true\n";
        let c = ReplayConfig::parse(text, "c.yaml").expect("valid");
        assert_eq!(c.ports_per_nic, 64);
        assert_eq!(c.profile().expect("profile").timeout_udp_ms, 60_000);
        assert_eq!(
            c.nat_pool.ipv4(1),
            Some("198.51.100.8".parse().expect("ip"))
        );
        assert_eq!(c.nat_pool.ipv4(2), None);
        assert_eq!(c.interfaces.get("1"), Some(&EntrySide::Outside));
        assert!(c.fix_checksums);
    }

    #[test]
    fn unknown_field_names_file_line_and_field() {
        let e = ReplayConfig::parse("speed: 1\nnat_pool:\n  frist_ipv4: 1.2.3.4\n", "c.yaml")
            .expect_err("unknown field");
        let text = e.to_string();
        assert!(text.starts_with("c.yaml:3:"), "{text}");
        assert!(text.contains("nat_pool.frist_ipv4"), "{text}");
    }

    #[test]
    fn invalid_values_name_their_line() {
        let e = ReplayConfig::parse("profile: rfc\nports_per_nic: 100\n", "c.yaml")
            .expect_err("not a power of two");
        assert_eq!(
            e.to_string(),
            "c.yaml:2:1: ports_per_nic: 100 is not a power of two in 1..=64512"
        );
        let e = ReplayConfig::parse("profile: cisco\n", "c.yaml").expect_err("unknown profile");
        assert!(
            e.to_string()
                .starts_with("c.yaml:1:1: profile: unknown profile `cisco`")
        );
        let e = ReplayConfig::parse("overrides: {timeout_udp: 1}\n", "c.yaml")
            .expect_err("unknown override");
        assert!(
            e.to_string()
                .contains("unknown profile field `timeout_udp`"),
            "{e}"
        );
        let e = ReplayConfig::parse("speed: 0\n", "c.yaml").expect_err("zero speed");
        assert!(e.to_string().contains("speed: 0 is not a positive"), "{e}");
    }
}
