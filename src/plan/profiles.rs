//! Plan-side view of the behaviour profiles: the timers of behaviour §5 that decide how long a
//! flow holds its port, in seconds. They are read off the gateway's own [`Profile`] table, so the
//! planner and the simulated gateway can never disagree on a timer.

use serde::Serialize;

use crate::nat::Profile;
pub use crate::nat::{LimitScope, ProfileName};

/// The timers of one profile, in seconds, as the planner needs them.
///
/// "Hold" fields are the time a port stays tied up after its flow is over, before it may be
/// reused: for TCP after a close (FIN/RST), for UDP and ICMP after the idle timeout fired.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ProfileTimers {
    /// UDP idle timeout.
    pub udp_idle_s: f64,
    /// TCP established idle timeout (a TCP flow that never closes holds its port this long after
    /// its last packet).
    pub tcp_established_idle_s: f64,
    /// TCP transitory timeout (half-open, closing).
    pub tcp_transitory_idle_s: f64,
    /// ICMP query idle timeout; `None` when the profile drops ICMP (Azure).
    pub icmp_idle_s: Option<f64>,
    /// Time from a TCP close to port reuse.
    pub tcp_close_hold_s: f64,
    /// Extra hold after a UDP mapping expired.
    pub udp_hold_s: f64,
    /// Extra hold after an ICMP mapping expired.
    pub icmp_hold_s: f64,
    /// The profile's `limit_scope`.
    pub limit_scope: LimitScope,
}

impl ProfileTimers {
    /// The behaviour §5 timers of `profile`, from the gateway's [`Profile::of`].
    ///
    /// A closed TCP flow's port stays tied up for the transitory timer and the FIN hold, both
    /// counted from the close (behaviour §5 "port hold from close"), so the longer of the two.
    /// Azure's RST hold (16 s) is shorter than its FIN hold and is not used: the planner sizes
    /// for the common close.
    pub fn of(profile: ProfileName) -> ProfileTimers {
        let p = Profile::of(profile);
        let s = |ms: u64| ms as f64 / 1000.0;
        ProfileTimers {
            udp_idle_s: s(p.timeout_udp_ms),
            tcp_established_idle_s: s(p.timeout_tcp_established_ms),
            tcp_transitory_idle_s: s(p.timeout_tcp_transitory_ms),
            icmp_idle_s: p.icmp_supported.then(|| s(p.timeout_icmp_ms)),
            tcp_close_hold_s: s(p.timeout_tcp_transitory_ms.max(p.hold_tcp_fin_ms)),
            udp_hold_s: s(p.hold_udp_ms),
            icmp_hold_s: s(p.hold_icmp_ms),
            limit_scope: p.limit_scope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in ProfileName::ALL {
            assert_eq!(ProfileName::parse(p.as_str()), Some(p));
        }
        for s in LimitScope::ALL {
            assert_eq!(LimitScope::parse(s.name()), Some(s));
        }
    }

    /// The behaviour §5 table as the planner reads it, one row per profile: (UDP idle,
    /// established, transitory, ICMP idle, TCP close hold, UDP hold, ICMP hold, scope). A change
    /// of the gateway's profile table shows up here as a change of plan results.
    #[test]
    fn plan_timers_are_read_off_the_gateway_profiles() {
        use LimitScope::{RemoteEndpoint as Re, RemoteIp as Ri};
        type Row = (f64, f64, f64, Option<f64>, f64, f64, f64, LimitScope);
        let table: [(ProfileName, Row); 6] = [
            (
                ProfileName::Rfc,
                (300.0, 7440.0, 240.0, Some(60.0), 240.0, 120.0, 120.0, Ri),
            ),
            (
                ProfileName::Dpservice,
                (30.0, 86_400.0, 30.0, Some(30.0), 30.0, 0.0, 0.0, Re),
            ),
            (
                ProfileName::Gcp,
                (30.0, 1200.0, 30.0, Some(30.0), 120.0, 0.0, 0.0, Re),
            ),
            (
                ProfileName::Aws,
                (350.0, 350.0, 350.0, Some(350.0), 350.0, 0.0, 0.0, Re),
            ),
            (
                ProfileName::Azure,
                (240.0, 240.0, 30.0, None, 65.0, 65.0, 0.0, Re),
            ),
            (
                ProfileName::Linux,
                (30.0, 432_000.0, 120.0, Some(30.0), 120.0, 0.0, 0.0, Re),
            ),
        ];
        for (name, row) in table {
            let t = ProfileTimers::of(name);
            let got: Row = (
                t.udp_idle_s,
                t.tcp_established_idle_s,
                t.tcp_transitory_idle_s,
                t.icmp_idle_s,
                t.tcp_close_hold_s,
                t.udp_hold_s,
                t.icmp_hold_s,
                t.limit_scope,
            );
            assert_eq!(got, row, "{}", name.as_str());
        }
    }

    #[test]
    fn spec_table_udp_timeouts() {
        let udp: Vec<f64> = ProfileName::ALL
            .iter()
            .map(|&p| ProfileTimers::of(p).udp_idle_s)
            .collect();
        assert_eq!(udp, [300.0, 30.0, 30.0, 350.0, 240.0, 30.0]);
        assert_eq!(ProfileTimers::of(ProfileName::Azure).icmp_idle_s, None);
    }
}
