//! The scenario `manifests:` key: API diagnostics become scenario errors (exit 2) naming the
//! manifest file (or the scenario file, for inline manifests) and the line; the manifests win
//! over the topology; and the blocks the simulator applies are the API reconciler's.

use std::path::{Path, PathBuf};

use natsim::api::{IpFamily, ObjectKey};
use natsim::scenario::cli::run_cmd_to;
use natsim::scenario::{load, load_str};
use natsim::sim::{Simulator, real_gateway};

const HEAD: &str = "apiVersion: natsim.dev/v1\nkind: Scenario\nmetadata: {name: x}\n";

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("natsim-manifests-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

const NAT_P_65536: &str = "apiVersion: networking.ironcore.dev/v1alpha1
kind: NATGateway
metadata: {name: nat}
spec:
  type: Public
  ipFamilies: [IPv4]
  networkRef: {name: net-a}
  ips: [{name: ip1}]
  portsPerNetworkInterface: 65536
  networkInterfaceSelector: {}
";

#[test]
fn an_inline_manifest_error_names_the_scenario_line() {
    let indented: String = NAT_P_65536.lines().map(|l| format!("  {l}\n")).collect();
    let text = format!(
        "{HEAD}topology:\n  networks: [{{name: net-a, prefixes: [10.0.0.0/24]}}]\nmanifests: |\n{indented}"
    );
    let err = load_str(Path::new("inline.yaml"), &text).expect_err("P = 65536 is refused");
    // `manifests: |` is on line 6; `portsPerNetworkInterface` is the 9th manifest line.
    assert_eq!(err.file, Path::new("inline.yaml"));
    assert_eq!(err.line, 15, "{err}");
    assert_eq!(err.column, 31, "{err}"); // the value, after the block's two-space indent
    assert!(
        err.field
            .contains("NATGateway default/nat: spec.portsPerNetworkInterface"),
        "{err}"
    );
    assert!(err.message.contains("zero port blocks"), "{err}");
}

#[test]
fn a_manifest_file_error_names_the_manifest_file_and_exits_2() {
    let dir = tmp_dir("file");
    std::fs::write(dir.join("nat.yaml"), NAT_P_65536).expect("write manifest");
    let scenario = dir.join("s.yaml");
    std::fs::write(
        &scenario,
        format!(
            "{HEAD}manifests: [nat.yaml]\ntopology:\n  networks: [{{name: net-a, prefixes: [10.0.0.0/24]}}]\n"
        ),
    )
    .expect("write scenario");
    let err = load(&scenario).expect_err("refused");
    assert_eq!(err.file, dir.join("nat.yaml"));
    assert_eq!(err.line, 9, "{err}");
    let (mut out, mut errs) = (Vec::new(), Vec::new());
    let code = run_cmd_to(&mut out, &mut errs, &scenario, None, None, None);
    let errs = String::from_utf8_lossy(&errs);
    assert_eq!(code.0, 2, "{errs}");
    assert!(errs.contains("nat.yaml:9:"), "{errs}");
}

#[test]
fn every_manifest_error_is_reported_and_a_missing_file_is_named() {
    let text = format!(
        "{HEAD}topology: {{networks: []}}\nmanifests: |\n  apiVersion: networking.ironcore.dev/v1alpha1\n  kind: NetworkInterface\n  metadata: {{name: a}}\n  spec: {{networkRef: {{name: nowhere}}, ipFamilies: [IPv4], ips: [{{value: 10.0.0.1}}]}}\n  ---\n  apiVersion: networking.ironcore.dev/v1alpha1\n  kind: Network\n  metadata: {{name: Bad_Name}}\n"
    );
    let err = load_str(Path::new("two.yaml"), &text).expect_err("refused");
    let all = err.to_string();
    assert!(all.contains("nowhere"), "{all}");
    assert!(all.contains("Bad_Name"), "{all}");
    let missing = format!("{HEAD}topology: {{networks: []}}\nmanifests: [no-such-file.yaml]\n");
    let err = load_str(Path::new("missing.yaml"), &missing).expect_err("refused");
    assert_eq!(err.field, "manifests[0]");
    assert!(err.message.contains("no-such-file.yaml"), "{err}");
}

#[test]
fn manifests_win_and_the_gateway_section_must_not_repeat_them() {
    let indented: String = NAT_P_65536
        .replace("65536", "64")
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect();
    let base = format!(
        "{HEAD}topology:\n  networks: [{{name: net-a, prefixes: [10.0.0.0/24]}}]\n  nics: [{{name: vm, network: net-a, addresses: [10.0.0.1]}}]\nmanifests: |\n{indented}"
    );
    let err = load_str(
        Path::new("dup.yaml"),
        &format!("{base}gateway: {{name: nat, network: net-a}}\n"),
    )
    .expect_err("network given twice");
    assert_eq!(err.field, "gateway.network", "{err}");
    let sc = load_str(
        Path::new("ok.yaml"),
        &format!("{base}gateway: {{name: nat, profile: dpservice}}\n"),
    )
    .expect("the gateway section may pick the dataplane behaviour");
    assert_eq!(sc.sim.gateway.ports_per_nic, 64);
    assert_eq!(
        sc.sim.control.gateway,
        Some(ObjectKey::in_default("nat")),
        "the manifest gateway is the run's gateway"
    );
    // ip1 got the lowest pool address; the dataplane knows it from the start.
    assert_eq!(
        sc.sim.gateway.nat_ips,
        vec!["203.0.113.1".parse::<std::net::IpAddr>().expect("ip")]
    );
}

#[test]
fn the_dataplanes_hold_exactly_the_reconcilers_blocks() {
    let sc = load(Path::new("scenarios/manifests-iep4.yaml")).expect("loads");
    let mut sim =
        Simulator::new(sc.sim.clone(), Box::new(real_gateway), Vec::new()).expect("builds");
    sim.run();
    let world = sim.control().world();
    for (i, n) in sc.sim.nics.iter().enumerate() {
        let key = ObjectKey::new(n.namespace.clone(), n.name.clone());
        for family in IpFamily::ALL {
            let api = world
                .block(&key, family)
                .map(|b| (b.ip, b.port, b.end_port));
            let dataplane = sim
                .dataplane_block(i as u32, natsim::sim::control::family(family))
                .map(|b| (b.nat_ip, b.port, b.end_port));
            assert_eq!(api, dataplane, "{key} {family}");
        }
    }
    let status = world
        .gateway_status(&ObjectKey::in_default("my-nat"))
        .expect("reconciled");
    assert_eq!(status.ports_used, sim.status().ports_used);
}

#[test]
fn an_address_pinned_twice_across_gateway_and_manifests_is_refused() {
    let text = format!(
        "{HEAD}topology:\n  networks: [{{name: net-a, prefixes: [10.0.0.0/24]}}]\ngateway: {{network: net-a, ips: [{{name: ip1, addresses: [203.0.113.1]}}], selector: {{}}}}\nmanifests: |\n  apiVersion: networking.ironcore.dev/v1alpha1\n  kind: VirtualIP\n  metadata: {{name: vip}}\n  spec: {{type: Public, ipFamily: IPv4}}\n  status: {{ip: 203.0.113.1}}\n"
    );
    let err = load_str(Path::new("twice.yaml"), &text).expect_err("refused");
    assert!(err.message.contains("203.0.113.1"), "{err}");
    let bad_name = format!(
        "{HEAD}topology:\n  networks: [{{name: net-a, prefixes: [10.0.0.0/24]}}]\ngateway: {{name: Not_A_Label, network: net-a}}\n"
    );
    let err = load_str(Path::new("name.yaml"), &bad_name).expect_err("refused");
    assert_eq!(err.field, "gateway.name", "{err}");
}
