//! How the kernel dataplane runs and what it reports besides verdicts: [`KernelSettings`]
//! (time scale, verdict wait), [`KernelStats`], and the conntrack sysctls a profile maps to
//! ([`conntrack_sysctls`]), scaled with virtual time.

use super::clock::ClockStats;
use crate::nat::Profile;

/// How the kernel dataplane runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelSettings {
    /// Wall seconds per virtual second; conntrack timeouts are scaled the same way.
    pub time_scale: f64,
    /// How long to wait for the kernel's output after writing a packet before calling it a
    /// drop, in microseconds (the kernel forwards in the writer's context, so an output is
    /// almost always there at once).
    pub verdict_wait_us: u64,
}

impl Default for KernelSettings {
    fn default() -> Self {
        KernelSettings {
            time_scale: 0.1,
            verdict_wait_us: 2_000,
        }
    }
}

// Settings are compared as values; `validate` refuses NaN, so equality is reflexive.
impl Eq for KernelSettings {}

impl KernelSettings {
    /// Checks the ranges (time scale 0.001..=10, verdict wait 100 µs..=1 s).
    pub fn validate(&self) -> Result<(), String> {
        if !(0.001..=10.0).contains(&self.time_scale) {
            return Err(format!(
                "--time-scale {}: valid 0.001 to 10 (wall seconds per virtual second)",
                self.time_scale
            ));
        }
        if !(100..=1_000_000).contains(&self.verdict_wait_us) {
            return Err(format!(
                "--verdict-wait-us {}: valid 100 to 1000000",
                self.verdict_wait_us
            ));
        }
        Ok(())
    }
}

/// What the kernel dataplane saw besides verdicts (for reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct KernelStats {
    /// Packets written to the kernel.
    pub written: u64,
    /// Packets read back.
    pub read: u64,
    /// Packets the kernel sent on its own that are not NAT traffic (neighbour discovery, MLD,
    /// IGMP), ignored.
    pub ignored_chatter: u64,
    /// Outputs that came after their packet's verdict wait (handed over by `poll_transmit`).
    pub late_outputs: u64,
    /// Conntrack event datagrams lost (the socket's buffer overflowed): the checker's view of
    /// the kernel's flows may then be incomplete.
    pub events_lost: u64,
    /// Reads from a device that failed (other than "nothing to read"): outputs possibly lost.
    pub read_errors: u64,
    /// The wall clock's mapping.
    pub clock: ClockStats,
}

fn ms_to_secs_scaled(ms: u64, scale: f64) -> u64 {
    ((ms as f64 / 1000.0) * scale).ceil().max(1.0) as u64
}

/// The conntrack sysctls for a profile at a time scale: every timeout the profile names, scaled
/// and rounded up to whole seconds (at least 1), and the kernel's defaults, scaled, for the
/// TCP states the profile does not name; `nf_conntrack_tcp_loose` from the profile's mid-stream
/// pickup. Also returns the longest scaled timeout, in seconds.
pub fn conntrack_sysctls(profile: &Profile, scale: f64) -> (Vec<(String, String)>, u64) {
    let s = |ms: u64| ms_to_secs_scaled(ms, scale);
    let transitory = s(profile.timeout_tcp_transitory_ms);
    let entries: Vec<(&str, u64)> = vec![
        ("nf_conntrack_udp_timeout", s(profile.timeout_udp_ms)),
        (
            "nf_conntrack_udp_timeout_stream",
            s(profile.timeout_udp_stream_ms),
        ),
        (
            "nf_conntrack_icmp_timeout",
            s(profile.timeout_icmp_ms.max(1)),
        ),
        (
            "nf_conntrack_icmpv6_timeout",
            s(profile.timeout_icmp_ms.max(1)),
        ),
        (
            "nf_conntrack_tcp_timeout_established",
            s(profile.timeout_tcp_established_ms),
        ),
        ("nf_conntrack_tcp_timeout_syn_sent", transitory),
        ("nf_conntrack_tcp_timeout_time_wait", transitory),
        ("nf_conntrack_tcp_timeout_fin_wait", transitory),
        (
            "nf_conntrack_tcp_timeout_close",
            s(profile.timeout_tcp_reset_ms.unwrap_or(10_000)),
        ),
        // Kernel defaults (the profile has no field for these states).
        ("nf_conntrack_tcp_timeout_syn_recv", s(60_000)),
        ("nf_conntrack_tcp_timeout_close_wait", s(60_000)),
        ("nf_conntrack_tcp_timeout_last_ack", s(30_000)),
        ("nf_conntrack_tcp_timeout_unacknowledged", s(300_000)),
        ("nf_conntrack_tcp_timeout_max_retrans", s(300_000)),
        ("nf_conntrack_generic_timeout", s(600_000)),
    ];
    // Established TCP lives for days; the idle-gap cap only needs the timers that can end an
    // entry within a scenario, so it leaves that one out.
    let longest = entries
        .iter()
        .filter(|(k, _)| *k != "nf_conntrack_tcp_timeout_established")
        .map(|(_, v)| *v)
        .max()
        .unwrap_or(1);
    let mut out: Vec<(String, String)> = entries
        .into_iter()
        .map(|(k, v)| (format!("net/netfilter/{k}"), v.to_string()))
        .collect();
    out.push((
        "net/netfilter/nf_conntrack_tcp_loose".into(),
        u8::from(profile.tcp_midstream_pickup).to_string(),
    ));
    (out, longest)
}
