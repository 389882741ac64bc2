//! Behaviour profiles (behaviour §5): timers and choices of real NAT implementations, selectable by
//! name and overridable field by field.

use serde::{Deserialize, Serialize};

/// What `portsPerNetworkInterface` (P) limits (behaviour §4 "Port choice and the meaning of P").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitScope {
    /// At most P concurrent flows per NIC, protocol and remote IP (IEP-4's wording; default).
    RemoteIp,
    /// At most P per NIC, protocol, remote IP and remote port (dpservice, GCP, AWS).
    RemoteEndpoint,
    /// At most P mappings per NIC and protocol (strict endpoint-independent pool).
    Nic,
}

impl LimitScope {
    /// Every scope.
    pub const ALL: [LimitScope; 3] = [
        LimitScope::RemoteIp,
        LimitScope::RemoteEndpoint,
        LimitScope::Nic,
    ];

    /// Stable name as written in scenario and plan files.
    pub fn name(self) -> &'static str {
        match self {
            LimitScope::RemoteIp => "remote-ip",
            LimitScope::RemoteEndpoint => "remote-endpoint",
            LimitScope::Nic => "nic",
        }
    }

    /// Parses a name written by [`LimitScope::name`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == text)
    }
}

/// The named behaviour profiles of behaviour §5, in the order of its table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileName {
    /// RFC recommendations (natsim's default).
    Rfc,
    /// IronCore as built.
    Dpservice,
    /// Google Cloud NAT.
    Gcp,
    /// AWS NAT gateway.
    Aws,
    /// Azure NAT gateway.
    Azure,
    /// Linux conntrack defaults.
    Linux,
}

impl ProfileName {
    /// Every profile, in the order of the behaviour §5 table.
    pub const ALL: [ProfileName; 6] = [
        ProfileName::Rfc,
        ProfileName::Dpservice,
        ProfileName::Gcp,
        ProfileName::Aws,
        ProfileName::Azure,
        ProfileName::Linux,
    ];

    /// The name as written in scenario and plan files.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileName::Rfc => "rfc",
            ProfileName::Dpservice => "dpservice",
            ProfileName::Gcp => "gcp",
            ProfileName::Aws => "aws",
            ProfileName::Azure => "azure",
            ProfileName::Linux => "linux",
        }
    }

    /// Parses a name written by [`ProfileName::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// All timers and behaviour switches of the gateway. Durations are milliseconds of virtual time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Profile name (`rfc`, `dpservice`, `gcp`, `aws`, `azure`, `linux`, or a custom label).
    pub name: String,
    /// UDP idle timeout.
    pub timeout_udp_ms: u64,
    /// UDP idle timeout once traffic was seen in both directions (Linux's "stream"; equal to
    /// `timeout_udp_ms` where a profile has no such notion).
    pub timeout_udp_stream_ms: u64,
    /// TCP idle timeout in ESTABLISHED (and while only one side has sent FIN).
    pub timeout_tcp_established_ms: u64,
    /// TCP timeout while opening, after FIN from both sides, and after RST.
    pub timeout_tcp_transitory_ms: u64,
    /// ICMP query (echo) idle timeout.
    pub timeout_icmp_ms: u64,
    /// Whether ICMP is translated at all (Azure's NAT gateway drops it).
    pub icmp_supported: bool,
    /// Port hold after a UDP flow ends.
    pub hold_udp_ms: u64,
    /// Port hold after an ICMP query flow ends.
    pub hold_icmp_ms: u64,
    /// Port hold after a TCP flow closed with FIN (TIME_WAIT-like).
    pub hold_tcp_fin_ms: u64,
    /// Port hold after a TCP flow closed with RST.
    pub hold_tcp_rst_ms: u64,
    /// Meaning of P.
    pub limit_scope: LimitScope,
    /// Inbound UDP packets refresh the flow (RFC 4787 REQ-6a); outbound always do.
    pub udp_inbound_refresh: bool,
    /// Expiry happens only on multiples of this period (dpservice's aging scan); 0 = exact.
    pub aging_scan_period_ms: u64,
    /// Model IronCore/dpservice's exclusive block end: the last port of each block is unusable.
    pub last_port_unusable: bool,
    /// Answer ICMP echo requests addressed to a NAT IP itself (dpservice does).
    pub echo_reply_to_nat_ip: bool,
    /// Answer unsolicited inbound packets with ICMP 3/13 (v6: 1/1) instead of silence.
    pub icmp_unreachable_on_unsolicited: bool,
    /// Answer a new flow refused for lack of ports with ICMP 3/1 (v6: 1/3) to the inside host
    /// (RFC 6888 REQ-11).
    pub icmp_unreachable_on_exhaustion: bool,
    /// Accept a TCP flow whose first outbound packet is not a SYN (Linux conntrack "loose" mode).
    pub tcp_midstream_pickup: bool,
    /// After an RST, any later non-RST packet of the flow puts it back to ESTABLISHED (RFC 6146
    /// §3.5.2.2, docs/behaviour.md §4). Off for `linux`: an RST closes the flow for good.
    #[serde(default = "yes")]
    pub tcp_rst_recovery: bool,
    /// Timeout after an RST; `None` means the transitory timer (`linux`: CLOSE, 10 s).
    #[serde(default)]
    pub timeout_tcp_reset_ms: Option<u64>,
    /// A new outbound SYN may take over the port of a closed flow (both FINs or an RST) in its
    /// scope when no port is free and its sequence number is past the closed connection's last
    /// one (Linux's TIME_WAIT takeover, `nf_seq_has_advanced`).
    #[serde(default)]
    pub tcp_time_wait_takeover: bool,
    /// An RST before any packet came back ends the TCP flow at once, its port free (Linux
    /// conntrack: "if only reply is a RST ... delete the conntrack immediately").
    #[serde(default)]
    pub tcp_unanswered_rst_ends_flow: bool,
    /// The gateway is a router hop: forwarded packets have their IPv4 TTL / IPv6 hop limit
    /// decremented, and a packet that would leave with 0 is dropped (`drop.ttl_expired`) and
    /// answered with ICMP Time Exceeded (docs/behaviour.md §4 "TTL").
    #[serde(default)]
    pub ttl_decrement: bool,
}

fn yes() -> bool {
    true
}

const S: u64 = 1000;

impl Profile {
    /// The profile with the given name.
    pub fn named(name: &str) -> Option<Profile> {
        ProfileName::parse(name).map(Profile::of)
    }

    /// The named profile: the one table of behaviour §5's timers and choices (the planner
    /// derives its timers from it too).
    pub fn of(name: ProfileName) -> Profile {
        let base = Profile::rfc();
        match name {
            ProfileName::Rfc => base,
            ProfileName::Dpservice => Profile {
                name: "dpservice".into(),
                ttl_decrement: false,
                timeout_udp_ms: 30 * S,
                timeout_udp_stream_ms: 30 * S,
                timeout_tcp_established_ms: 86_400 * S,
                timeout_tcp_transitory_ms: 30 * S,
                timeout_icmp_ms: 30 * S,
                hold_udp_ms: 0,
                hold_icmp_ms: 0,
                limit_scope: LimitScope::RemoteEndpoint,
                aging_scan_period_ms: 5 * S,
                ..base
            },
            ProfileName::Gcp => Profile {
                name: "gcp".into(),
                ttl_decrement: false,
                timeout_udp_ms: 30 * S,
                timeout_udp_stream_ms: 30 * S,
                timeout_tcp_established_ms: 1200 * S,
                timeout_tcp_transitory_ms: 30 * S,
                timeout_icmp_ms: 30 * S,
                hold_udp_ms: 0,
                hold_icmp_ms: 0,
                hold_tcp_fin_ms: 120 * S,
                limit_scope: LimitScope::RemoteEndpoint,
                echo_reply_to_nat_ip: false,
                ..base
            },
            ProfileName::Aws => Profile {
                name: "aws".into(),
                ttl_decrement: false,
                timeout_udp_ms: 350 * S,
                timeout_udp_stream_ms: 350 * S,
                timeout_tcp_established_ms: 350 * S,
                timeout_tcp_transitory_ms: 350 * S,
                timeout_icmp_ms: 350 * S,
                hold_udp_ms: 0,
                hold_icmp_ms: 0,
                limit_scope: LimitScope::RemoteEndpoint,
                echo_reply_to_nat_ip: false,
                ..base
            },
            ProfileName::Azure => Profile {
                name: "azure".into(),
                ttl_decrement: false,
                timeout_udp_ms: 240 * S,
                timeout_udp_stream_ms: 240 * S,
                timeout_tcp_established_ms: 240 * S,
                timeout_tcp_transitory_ms: 30 * S,
                timeout_icmp_ms: 0,
                icmp_supported: false,
                hold_udp_ms: 65 * S,
                hold_icmp_ms: 0,
                hold_tcp_fin_ms: 65 * S,
                hold_tcp_rst_ms: 16 * S,
                limit_scope: LimitScope::RemoteEndpoint,
                echo_reply_to_nat_ip: false,
                ..base
            },
            ProfileName::Linux => Profile {
                name: "linux".into(),
                timeout_udp_ms: 30 * S,
                timeout_udp_stream_ms: 120 * S,
                timeout_tcp_established_ms: 432_000 * S,
                timeout_tcp_transitory_ms: 120 * S,
                timeout_icmp_ms: 30 * S,
                hold_udp_ms: 0,
                hold_icmp_ms: 0,
                hold_tcp_fin_ms: 120 * S,
                limit_scope: LimitScope::RemoteEndpoint,
                tcp_midstream_pickup: true,
                echo_reply_to_nat_ip: false,
                // The kernel: RST -> CLOSE for 10 s (nf_conntrack_tcp_timeout_close), no way
                // back to ESTABLISHED; TIME_WAIT/CLOSE entries may be taken over by a new SYN.
                tcp_rst_recovery: false,
                timeout_tcp_reset_ms: Some(10 * S),
                tcp_time_wait_takeover: true,
                tcp_unanswered_rst_ends_flow: true,
                ..base
            },
        }
    }

    /// The names [`Profile::named`] accepts.
    pub const NAMES: [&'static str; 6] = ["rfc", "dpservice", "gcp", "aws", "azure", "linux"];

    /// The default profile: the IETF recommendations (RFC 4787, 5382, 5508, 7857).
    pub fn rfc() -> Profile {
        Profile {
            name: "rfc".into(),
            timeout_udp_ms: 300 * S,
            timeout_udp_stream_ms: 300 * S,
            timeout_tcp_established_ms: 7440 * S,
            timeout_tcp_transitory_ms: 240 * S,
            timeout_icmp_ms: 60 * S,
            icmp_supported: true,
            hold_udp_ms: 120 * S,
            hold_icmp_ms: 120 * S,
            hold_tcp_fin_ms: 0,
            hold_tcp_rst_ms: 0,
            limit_scope: LimitScope::RemoteIp,
            udp_inbound_refresh: true,
            aging_scan_period_ms: 0,
            last_port_unusable: false,
            echo_reply_to_nat_ip: true,
            icmp_unreachable_on_unsolicited: false,
            icmp_unreachable_on_exhaustion: false,
            tcp_midstream_pickup: false,
            tcp_rst_recovery: true,
            timeout_tcp_reset_ms: None,
            tcp_time_wait_takeover: false,
            tcp_unanswered_rst_ends_flow: false,
            ttl_decrement: true,
        }
    }

    /// Applies per-field overrides given as a JSON object (the parsed form of a scenario's
    /// `overrides:` map); unknown fields are rejected with their name.
    pub fn with_overrides(
        &self,
        overrides: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Profile, String> {
        let mut value = serde_json::to_value(self).map_err(|e| e.to_string())?;
        if let serde_json::Value::Object(map) = &mut value {
            for (k, v) in overrides {
                if !map.contains_key(k) {
                    return Err(format!("unknown profile field `{k}`"));
                }
                map.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::rfc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_are_the_named_profiles() {
        let names: Vec<&str> = ProfileName::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names, Profile::NAMES);
        for name in ProfileName::ALL {
            let p = Profile::named(name.as_str()).expect("named profile");
            assert_eq!(p.name, name.as_str());
            assert_eq!(p, Profile::of(name));
        }
        assert_eq!(Profile::named("nosuch"), None);
        for s in LimitScope::ALL {
            assert_eq!(LimitScope::parse(s.name()), Some(s));
        }
    }
}
