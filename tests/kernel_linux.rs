//! The kernel dataplane (docs/linux.md) against the model: library scenarios through both and
//! compared packet by packet (`natsim diff`), a capture recorded from the kernel replayed
//! through the model, replay against the kernel, and namespace hygiene.
//!
//! The kernel part needs root, iproute2, nftables and conntrack, which `.ci/run` installs
//! (`scripts/install-kernel-dataplane.sh`). It does not skip: on a machine that cannot drive
//! the kernel it fails with the reason, because a differential that quietly did not run would
//! be a false pass. Everything that touches the kernel is one test function, so that no two
//! runs share the machine's namespaces at once (`cleanup_all` removes every natsim namespace).
//!
//! The comparisons against the recorded captures in `testdata/linux/` need no kernel: they are
//! separate tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use natsim::check::Target;
use natsim::diff::VerdictClass;
use natsim::diff::capture::{diff_capture, diff_recorded};
use natsim::diff::scenario::diff_scenario;
use natsim::kernel::{KernelDataplane, KernelSettings, NETNS_PREFIX, cleanup_all, preflight};
use natsim::nat::{GatewayConfig, Profile};
use natsim::replay::ReplayConfig;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kernel() -> Target {
    Target::Kernel(KernelSettings::default())
}

/// Library scenarios on which the kernel and the `linux` model agree on every packet
/// (reports/LINUX-DIFF.md lists what each covers).
const AGREEING: &[&str] = &[
    "tcp-basic",
    "rst-inject",
    "linux-time-wait-takeover",
    "tcp-hold-from-close",
    "udp-dns",
    "icmp-ping",
    "ports-exhausted-remote-ip",
    "block-exhaustion",
    "unsolicited-inbound",
    "spoofed-replies",
    "forged-icmp",
    "icmp-port-unreachable",
    "packet-icmp-error-outbound",
    "packet-icmp-error-for-echo-flow",
    "ipv6-napt66",
    "dual-stack",
    "no-block-tcp-reason",
    "packet-ttl-expiry-linux",
    // An RST before any reply ends the flow in both (reports/LINUX-DIFF.md, 3).
    "tcp-refused",
    "packet-syn-scan-ignores-syn-acks",
    "ports-per-nic-change",
];

/// Library scenarios with a difference named in reports/LINUX-DIFF.md: the first record where
/// the verdicts part, as (model class, kernel class).
const NAMED_DIFFERENCES: &[(&str, VerdictClass, VerdictClass)] = &[
    // The kernel reassembles fragments before NAT (nf_defrag_ipv4).
    (
        "fragments-udp",
        VerdictClass::ForwardOutside,
        VerdictClass::Buffered,
    ),
    // A NIC sending to a NAT address: the model hairpins it (here: drops it, as no mapping
    // matches yet); the kernel has no hairpin path and routes it, translated, out of the
    // outside device towards the NAT address.
    ("hairpin", VerdictClass::Drop, VerdictClass::ForwardOutside),
    // Conntrack marks an out-of-window RST invalid; the ruleset drops invalid packets.
    (
        "packet-rst-out-of-window",
        VerdictClass::ForwardInside,
        VerdictClass::Drop,
    ),
];

fn scenario(name: &str) -> natsim::scenario::load::Scenario {
    let path = root().join("scenarios").join(format!("{name}.yaml"));
    natsim::scenario::load::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn natsim_namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NETNS_PREFIX))
        .map(str::to_string)
        .collect()
}

#[test]
fn kernel_dataplane_agrees_with_the_linux_model_and_cleans_up() {
    if let Err(e) = preflight() {
        panic!(
            "the kernel differential cannot run here: {e} (run scripts/install-kernel-dataplane.sh as root)"
        );
    }
    let linux = Profile::named("linux").expect("linux profile");
    let ours = format!("{NETNS_PREFIX}{}-", std::process::id());

    let mut agreeing = 0;
    for name in AGREEING {
        let d = diff_scenario(&scenario(name), None, &linux, kernel())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = &d.comparison;
        assert!(
            c.full_agreement(),
            "{name}: the kernel and the linux model differ:\n{}",
            natsim::diff::render(c, 5)
        );
        assert!(c.aligned > 0, "{name}: no packet compared");
        assert!(
            d.kernel.violation.is_none(),
            "{name}: the kernel run violated {:?}",
            d.kernel.violation
        );
        agreeing += 1;
    }
    assert!(agreeing >= 12, "at least 12 library scenarios must agree");

    for (name, model_class, kernel_class) in NAMED_DIFFERENCES {
        let d = diff_scenario(&scenario(name), None, &linux, kernel())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let first = d
            .comparison
            .first_divergence
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: expected the named difference, got agreement"));
        let (m, k) = (first.model.as_ref(), first.kernel.as_ref());
        assert_eq!(
            (m.map(|r| r.class), k.map(|r| r.class)),
            (Some(*model_class), Some(*kernel_class)),
            "{name}: the first difference is not the one reports/LINUX-DIFF.md names:\n{}",
            natsim::diff::render(&d.comparison, 5)
        );
    }

    // `natsim diff SCENARIO --json`: the report is written whole and says what the table says.
    let tmp = tempfile::tempdir().expect("temp dir");
    let json = tmp.path().join("diff.json");
    let options = natsim::diff::cli::DiffOptions {
        seed: None,
        profile: "linux".into(),
        json: Some(json.clone()),
        config: None,
        out: None,
        recorded: false,
        kernel: kernel(),
        show: 0,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = natsim::diff::cli::diff_cmd_to(
        &mut out,
        &mut err,
        &root().join("scenarios/udp-dns.yaml"),
        &options,
    );
    let printed = String::from_utf8_lossy(&out);
    assert_eq!(code.0, 0, "{printed}{}", String::from_utf8_lossy(&err));
    assert!(printed.contains("agreement 6/6 (100.00 %)"), "{printed}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON");
    assert_eq!(report["full_agreement"], true);
    assert_eq!(report["comparison"]["aligned"], 6);
    assert_eq!(
        report["runs"]["kernel"]["invariants"]["determinism"]["result"],
        "not_applicable"
    );

    // A capture recorded from the kernel (natsim run --dataplane linux --pcap-dir), made here
    // afresh, replays through the model with at least 99.5 % of verdicts agreeing.
    let scenario_file = root().join("testdata/linux/recorded-mix.yaml");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = natsim::scenario::cli::run_cmd_on(
        &mut out,
        &mut err,
        &scenario_file,
        None,
        Some(tmp.path()),
        None,
        false,
        kernel(),
    );
    assert_eq!(
        code.0,
        0,
        "recording run failed: {}{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
    let capture = tmp.path().join("recorded-mix-seed7.pcapng");
    let config = replay_config("recorded-mix.replay.yaml", tmp.path().join("recorded"));
    let d = diff_recorded(&capture, &config).expect("recorded diff");
    assert!(d.comparison.aligned > 1000, "{}", d.comparison.aligned);
    assert!(
        d.comparison.agreement_percent() >= 99.5,
        "a fresh kernel recording agrees on only {:.2} %:\n{}",
        d.comparison.agreement_percent(),
        natsim::diff::render(&d.comparison, 10)
    );

    // The same capture replayed live through the kernel (`natsim diff CAPTURE`): one record
    // per packet in both, compared by record.
    let config = replay_config("recorded-mix.replay.yaml", tmp.path().join("live"));
    let d = diff_capture(&capture, &config, kernel()).expect("capture diff");
    assert_eq!(d.comparison.model_packets, d.comparison.kernel_packets);
    assert!(
        d.comparison.agreement_percent() >= 99.5,
        "{}",
        natsim::diff::render(&d.comparison, 10)
    );

    // `natsim replay --dataplane linux` through the command's own entry point.
    let options = natsim::replay::cli::ReplayCliOptions {
        out: Some(tmp.path().join("replay-cli")),
        kernel: Some(kernel()),
        ..Default::default()
    };
    let code = natsim::replay::cli::replay_cmd(
        &capture,
        Some(&root().join("testdata/linux/recorded-mix.replay.yaml")),
        options,
    )
    .expect("replay against the kernel");
    assert_eq!(code, 0);

    // Every namespace this process made is gone; one left by a "crashed" run is deleted by
    // `natsim kernel-cleanup`.
    assert!(
        !natsim_namespaces().iter().any(|n| n.starts_with(&ours)),
        "namespaces left behind: {:?}",
        natsim_namespaces()
    );
    let dp = KernelDataplane::new(&GatewayConfig::default(), KernelSettings::default())
        .expect("kernel dataplane");
    let leaked = dp.namespace().to_string();
    std::mem::forget(dp);
    assert!(natsim_namespaces().contains(&leaked));
    let deleted = cleanup_all().expect("cleanup");
    assert!(deleted.contains(&leaked), "{deleted:?}");
    assert!(!natsim_namespaces().contains(&leaked));
}

fn replay_config(file: &str, out: PathBuf) -> ReplayConfig {
    let mut c = ReplayConfig::load(&root().join("testdata/linux").join(file)).expect("config");
    c.profile = "linux".into();
    c.out_dir = Some(out);
    c
}

fn recorded(stem: &str) -> natsim::diff::Comparison {
    let tmp = tempfile::tempdir().expect("temp dir");
    let config = replay_config(&format!("{stem}.replay.yaml"), tmp.path().to_path_buf());
    let capture = root()
        .join("testdata/linux")
        .join(format!("{stem}-seed7.pcapng"));
    diff_recorded(Path::new(&capture), &config)
        .expect("recorded diff")
        .comparison
}

/// The committed recording of a run against Linux 6.18 (testdata/linux/recorded-mix.yaml, 64
/// ports per NIC): the model gives the kernel's verdict on every packet.
#[test]
fn recorded_linux_capture_replays_through_the_linux_model_with_the_kernels_verdicts() {
    let c = recorded("recorded-mix");
    assert_eq!(c.aligned, 6182);
    assert!(
        c.agreement_percent() >= 99.5,
        "{}",
        natsim::diff::render(&c, 10)
    );
    assert!(c.full_agreement(), "{}", natsim::diff::render(&c, 10));
}

/// The committed recording under port exhaustion (16 ports per NIC, TCP churn to two servers):
/// the kernel reuses closing connections' ports where the model still holds them
/// (reports/LINUX-DIFF.md). Pinned at the measured figure, so that a model change that moves
/// it, either way, is seen.
#[test]
fn recorded_linux_capture_under_exhaustion_keeps_its_measured_agreement() {
    let c = recorded("recorded-exhaustion");
    assert_eq!(
        (c.agreeing, c.aligned),
        (6106, 6169),
        "{}",
        natsim::diff::render(&c, 10)
    );
    let differing: u64 = c.differing.values().sum();
    assert_eq!(differing, 63);
}

fn natsim_cli(args: &[&str], path_env: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_natsim"));
    cmd.args(args).current_dir(root());
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    let out = cmd.output().expect("natsim runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Without the tools (or without root) the kernel dataplane is refused with exit 2 and the
/// package to install, before anything is created.
#[test]
fn kernel_dataplane_without_its_tools_exits_2_naming_the_package() {
    let (code, _, err) = natsim_cli(
        &["run", "scenarios/udp-dns.yaml", "--dataplane", "linux"],
        Some("/nonexistent"),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("apt-get install iproute2") || err.contains("needs root"),
        "{err}"
    );
    let (code, _, err) = natsim_cli(&["diff", "scenarios/udp-dns.yaml"], Some("/nonexistent"));
    assert_eq!(code, 2, "{err}");
}

/// Bad options are refused with exit 2 and a message naming them.
#[test]
fn diff_and_kernel_options_out_of_range_are_refused() {
    let (code, _, err) = natsim_cli(
        &["diff", "scenarios/udp-dns.yaml", "--profile", "bsd"],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("unknown profile `bsd`"), "{err}");
    let (code, _, err) = natsim_cli(
        &[
            "run",
            "scenarios/udp-dns.yaml",
            "--dataplane",
            "linux",
            "--time-scale",
            "0",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("--time-scale 0"), "{err}");
    let (code, _, err) = natsim_cli(&["diff", "scenarios/udp-dns.yaml", "--recorded"], None);
    assert_eq!(code, 2);
    assert!(err.contains("--recorded takes a capture"), "{err}");
    let (code, _, err) = natsim_cli(&["diff", "no-such-capture.pcap", "--recorded"], None);
    assert_eq!(code, 2);
    assert!(err.contains("no-such-capture.pcap"), "{err}");
    let (code, _, err) = natsim_cli(
        &[
            "replay",
            "testdata/linux/recorded-mix-seed7.pcapng",
            "--dataplane",
            "linux",
            "--broken",
            "leaky-filter",
        ],
        None,
    );
    assert_eq!(code, 2);
    assert!(err.contains("drop --dataplane linux"), "{err}");
}
