//! The capacity figures of behaviour §7 and known Erlang-B values, reproduced exactly.

use natsim::plan::analytic::{
    Zipf, busy_ports, erlang_b, erlang_b_max_offered, ips_needed, littles_law_max_rate_per_s,
    min_ports_per_nic, min_units, nics_per_ip,
};
use natsim::plan::profiles::{ProfileName, ProfileTimers};
use natsim::plan::providers::{
    AWS_CONNECTIONS_PER_IP_PER_DESTINATION, AWS_MAX_IPS, AZURE_CONNECTIONS_PER_IP_PER_DESTINATION,
    AZURE_MAX_IPS, AZURE_SNAT_PORTS_PER_IP, GCP_DEFAULT_MIN_PORTS_PER_VM, GCP_PORTS_PER_IP, Rules,
};
use natsim::plan::{Plan, compare_providers, evaluate};

#[test]
fn nics_per_ip_p64_is_1008() {
    assert_eq!(nics_per_ip(64), Ok(1008));
}

#[test]
fn nics_per_ip_p1024_is_63() {
    assert_eq!(nics_per_ip(1024), Ok(63));
}

#[test]
fn nics_per_ip_p2048_is_31() {
    assert_eq!(nics_per_ip(2048), Ok(31));
}

#[test]
fn nics_per_ip_p4096_is_15() {
    assert_eq!(nics_per_ip(4096), Ok(15));
}

#[test]
fn nics_per_ip_p32768_is_1() {
    assert_eq!(nics_per_ip(32768), Ok(1));
}

#[test]
fn p_must_be_power_of_two_up_to_64512() {
    for bad in [0, 3, 100, 2047, 65536, 1 << 20] {
        assert!(nics_per_ip(bad).is_err(), "P={bad}");
    }
    assert_eq!(nics_per_ip(1), Ok(64512));
}

#[test]
fn ips_needed_is_ceil_nics_over_nics_per_ip() {
    assert_eq!(ips_needed(5000, 64), Ok(5)); // 5000 / 1008 = 4.96
    assert_eq!(ips_needed(5000, 2048), Ok(162)); // 5000 / 31 = 161.3
    assert_eq!(ips_needed(1008, 64), Ok(1));
    assert_eq!(ips_needed(1009, 64), Ok(2));
    assert_eq!(ips_needed(0, 64), Ok(0));
}

#[test]
fn ips_needed_is_per_family() {
    let text = "\
apiVersion: natsim.dev/v1
kind: Plan
metadata: {name: dual}
fleet:
  nics: 5000
  traffic:
    flow_rate_per_s: 0.01
    flow_duration: {mean_s: 1}
    protocol_mix: {tcp: 1}
gateway: {ports_per_nic: 2048, ips: 162, ip_families: [IPv4, IPv6]}
target: {blocking_max: 0.01}
";
    let plan = Plan::parse(text, "dual.yaml").expect("valid");
    let a = evaluate(&plan.points[0]);
    assert_eq!(a.ips_needed, Some(162));
    assert_eq!(a.addresses_needed, Some(324));
    assert!(a.verdict.ok, "{:?}", a.verdict);
}

#[test]
fn p64_hold_120s_sustains_0_53_conn_per_s() {
    let rate = littles_law_max_rate_per_s(64, 120.0).expect("positive hold");
    assert_eq!(rate, 64.0 / 120.0);
    assert!((rate - 0.533).abs() < 0.001);
    // At that rate exactly P ports are busy on average; above it, more than P.
    assert_eq!(busy_ports(rate, 120.0), 64.0);
    assert!(busy_ports(0.54, 120.0) > 64.0);
}

#[test]
fn littles_law_busy_ports_counts_life_hold_and_timeout() {
    // rfc UDP: 300 s idle timeout + 120 s hold after expiry + 1 s life.
    let t = ProfileTimers::of(ProfileName::Rfc);
    let hold = natsim::plan::model::hold_s(natsim::plan::params::Protocol::Udp, &t, 1.0, 1.0)
        .expect("udp supported");
    assert_eq!(hold, 421.0);
    assert_eq!(busy_ports(0.1, hold), 42.1);
    // TCP, 90% closed: life + 0.9 × transitory 240 + 0.1 × established 7440.
    let tcp = natsim::plan::model::hold_s(natsim::plan::params::Protocol::Tcp, &t, 10.0, 0.9)
        .expect("tcp supported");
    assert!((tcp - (10.0 + 216.0 + 744.0)).abs() < 1e-9);
}

#[test]
fn erlang_b_a1_n1_is_one_half() {
    assert_eq!(erlang_b(1, 1.0), 0.5);
}

#[test]
fn erlang_b_a2_n2_is_0_4() {
    assert!((erlang_b(2, 2.0) - 0.4).abs() < 1e-15);
}

#[test]
fn erlang_b_textbook_table_values() {
    // Published Erlang-B tables: N = 10 at 1% blocking carries 4.46 E; N = 100 at 1%, 84.06 E.
    assert!((erlang_b(10, 4.46) - 0.01).abs() < 2e-4);
    assert!((erlang_b(100, 84.06) - 0.01).abs() < 2e-4);
    let a10 = erlang_b_max_offered(10, 0.01).expect("in range");
    assert!((a10 - 4.4612).abs() < 1e-3, "{a10}");
    // B(N=3, A=1) = (1/6) / (1 + 1 + 1/2 + 1/6) = 1/16.
    assert!((erlang_b(3, 1.0) - 1.0 / 16.0).abs() < 1e-15);
}

#[test]
fn erlang_b_is_stable_for_large_n() {
    let b = erlang_b(64_512, 60_000.0);
    assert!(b.is_finite() && b > 0.0 && b < 1e-3, "{b}");
    let b = erlang_b(64_512, 70_000.0);
    assert!(b > 0.07 && b < 0.09, "{b}");
}

#[test]
fn erlang_b_inverse_meets_the_target_tightly() {
    for (n, target) in [
        (1_u64, 0.5),
        (64, 0.01),
        (2048, 0.001),
        (55_000, 0.01),
        (10, 0.9),
    ] {
        let a = erlang_b_max_offered(n, target).expect("in range");
        assert!(erlang_b(n, a) <= target, "N={n}");
        assert!(
            erlang_b(n, a * (1.0 + 1e-6)) > target,
            "N={n}: {a} is not the largest"
        );
    }
    assert_eq!(erlang_b_max_offered(64, 0.0), None);
    assert_eq!(erlang_b_max_offered(64, 1.0), None);
    assert_eq!(erlang_b_max_offered(0, 0.5), None);
}

#[test]
fn smallest_power_of_two_p_for_a_target() {
    // 50 Erlangs at 1%: 64 ports give B ≈ 0.0093, 32 ports are far too few.
    assert_eq!(min_ports_per_nic(&[50.0], 0.01), Some(64));
    assert_eq!(min_ports_per_nic(&[0.0], 0.01), Some(1));
    assert_eq!(min_ports_per_nic(&[50.0, 60.0], 0.01), Some(128));
    assert_eq!(min_ports_per_nic(&[1e6], 0.01), None);
}

#[test]
fn zipf_hottest_destination_share() {
    assert_eq!(Zipf::new(1, 1.0).hottest_share(), 1.0);
    // H(3, 1) = 1 + 1/2 + 1/3 = 11/6.
    assert!((Zipf::new(3, 1.0).hottest_share() - 6.0 / 11.0).abs() < 1e-15);
    assert!((Zipf::new(10, 0.0).hottest_share() - 0.1).abs() < 1e-15);
}

#[test]
fn gcp_figures() {
    assert_eq!(GCP_PORTS_PER_IP, 64_512);
    assert_eq!(GCP_DEFAULT_MIN_PORTS_PER_VM, 64);
    assert_eq!(Rules::Gcp.effective_ports_per_nic(64), Ok(Some(64)));
    assert_eq!(Rules::Gcp.effective_ports_per_nic(65), Ok(Some(128)));
    assert_eq!(Rules::Gcp.effective_ports_per_nic(1000), Ok(Some(1024)));
}

#[test]
fn aws_55000_per_ip_per_destination_up_to_8_ips() {
    assert_eq!(AWS_CONNECTIONS_PER_IP_PER_DESTINATION, 55_000);
    assert_eq!(AWS_MAX_IPS, 8);
    let limits = Rules::Aws.limits();
    assert_eq!(limits.max_ips, Some(8));
    assert!(!limits.per_nic_blocks);
    // Smallest IP count for a fleet-wide load on one destination.
    assert_eq!(min_units(55_000, 8, 50_000.0, 0.01), Some(1));
    assert_eq!(min_units(55_000, 8, 100_000.0, 0.01), Some(2));
    assert_eq!(min_units(55_000, 8, 500_000.0, 0.01), None);
}

#[test]
fn azure_64512_ports_16_ips_50000_per_destination() {
    assert_eq!(AZURE_SNAT_PORTS_PER_IP, 64_512);
    assert_eq!(AZURE_MAX_IPS, 16);
    assert_eq!(AZURE_CONNECTIONS_PER_IP_PER_DESTINATION, 50_000);
    assert_eq!(Rules::Azure.limits().max_ips, Some(16));
}

#[test]
fn same_fleet_under_each_provider() {
    let text = "\
apiVersion: natsim.dev/v1
kind: Plan
metadata: {name: cmp}
fleet:
  nics: 5000
  traffic:
    flow_rate_per_s: 2
    flow_duration: {mean_s: 5}
    destinations: {count: 1}
    protocol_mix: {tcp: 1, icmp: 0.01}
gateway: {ports_per_nic: 64, ips: 8}
target: {blocking_max: 0.01}
";
    let plan = Plan::parse(text, "cmp.yaml").expect("valid");
    let results = compare_providers(&plan.points[0]);
    let rules: Vec<Rules> = results.iter().map(|(r, _)| *r).collect();
    assert_eq!(rules, Rules::ALL);
    let by = |r: Rules| &results.iter().find(|(x, _)| *x == r).expect("present").1;
    // Per-NIC providers: NICs per IP from P.
    assert_eq!(by(Rules::Ironcore).nics_per_ip, Some(1008));
    assert_eq!(by(Rules::Gcp).nics_per_ip, Some(1008));
    // Pooled providers have no per-NIC blocks.
    assert_eq!(by(Rules::Aws).nics_per_ip, None);
    assert_eq!(by(Rules::Azure).nics_per_ip, None);
    // One destination, so the whole fleet's TCP flows share one key. AWS holds a closed flow's
    // port 350 s: 5000 × 1.98/s × 355 s ≈ 3.5 M concurrent flows, far beyond 8 × 55000.
    assert_eq!(by(Rules::Aws).recommended_ips, None);
    assert!(!by(Rules::Aws).verdict.ok);
    // Azure frees it after 65 s: 5000 × 1.98/s × 70 s ≈ 693,000 flows fit in 14 × 50000 —
    // but Azure drops ICMP, which counts as 100% blocking, so no IP count meets the target.
    assert_eq!(by(Rules::Azure).ips_needed, Some(14));
    assert_eq!(by(Rules::Azure).recommended_ips, None);
    assert_eq!(by(Rules::Azure).blocking_hot, 1.0);
    assert!(
        by(Rules::Azure)
            .verdict
            .reasons
            .iter()
            .any(|r| r.starts_with("14 IPs needed")),
        "{:?}",
        by(Rules::Azure).verdict
    );
    // Azure drops ICMP: its share is refused whatever the capacity.
    assert!(
        by(Rules::Azure)
            .verdict
            .notes
            .iter()
            .any(|n| n.contains("icmp"))
    );
}

#[test]
fn gcp_default_min_ports_per_vm_is_64() {
    // docs/behaviour.md §7: GCP's per-VM minimum defaults to 64 ports, so `rules: gcp` without
    // P packs 1008 VMs per IP (not 31, IronCore's 2048 default).
    let text = "\
apiVersion: natsim.dev/v1
kind: Plan
metadata: {name: gcp-default}
fleet:
  nics: 5000
  traffic: {flow_rate_per_s: 0.1, flow_duration: {mean_s: 1}, protocol_mix: {tcp: 1}}
gateway: {rules: gcp}
target: {blocking_max: 0.01}
";
    let plan = Plan::parse(text, "gcp.yaml").expect("valid");
    assert_eq!(plan.points[0].gateway.ports_per_nic, 64);
    let a = evaluate(&plan.points[0]);
    assert_eq!(a.nics_per_ip, Some(1008));
    assert_eq!(a.ips_needed, Some(5));
    // IronCore keeps its 2048 default.
    let plan = Plan::parse(&text.replace("rules: gcp", "rules: ironcore"), "ic.yaml").expect("ok");
    assert_eq!(evaluate(&plan.points[0]).nics_per_ip, Some(31));
}

#[test]
fn azure_dropped_icmp_counts_as_blocking() {
    let text = "\
apiVersion: natsim.dev/v1
kind: Plan
metadata: {name: azure-icmp}
fleet:
  nics: 10
  traffic: {flow_rate_per_s: 0.1, flow_duration: {mean_s: 1}, protocol_mix: {tcp: 0.9, icmp: 0.1}}
gateway: {rules: azure, ips: 1}
target: {blocking_max: 0.01}
";
    let plan = Plan::parse(text, "azure.yaml").expect("valid");
    let a = evaluate(&plan.points[0]);
    // TCP alone would be fine; the dropped 10% of ICMP is what fails the point.
    assert_eq!(a.blocking_hot, 1.0);
    assert!(
        (a.blocking_fleet - 0.1).abs() < 1e-9,
        "{}",
        a.blocking_fleet
    );
    assert!(!a.verdict.ok);
    assert!(
        a.verdict
            .blocking_reason
            .as_deref()
            .is_some_and(|r| r.contains("icmp"))
    );
    assert_eq!(a.recommended_ips, None);
}

#[test]
fn ips_auto_gives_each_rule_the_ips_it_needs() {
    let text = "\
apiVersion: natsim.dev/v1
kind: Plan
metadata: {name: auto}
fleet:
  nics: 5000
  traffic: {flow_rate_per_s: 0.1, flow_duration: {mean_s: 1}, protocol_mix: {tcp: 1}}
gateway: {ports_per_nic: 1024, ips: auto}
target: {blocking_max: 0.01}
sweep:
  - param: gateway.rules
    values: [ironcore, gcp, aws, azure]
";
    let plan = Plan::parse(text, "auto.yaml").expect("valid");
    let ips: Vec<u64> = plan.points.iter().map(|p| p.gateway.ips).collect();
    // 63 NICs per IP at P = 1024: ceil(5000 / 63) = 80; AWS and Azure their maximum.
    assert_eq!(ips, [80, 80, 8, 16]);
    for p in &plan.points[..2] {
        assert_eq!(evaluate(p).nics_unallocated, 0);
    }
}
