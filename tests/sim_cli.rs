//! The `run` / `check` / `schema` entry points: exit codes, error messages with file, line and
//! field, JSON report and pcapng output.

use std::path::Path;

use natsim::scenario::cli::{check_cmd_to, run_cmd_to};

fn run(path: &str, seed: Option<u64>) -> (u8, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let json = std::env::var("NATSIM_DEBUG_JSON")
        .ok()
        .map(std::path::PathBuf::from);
    let code = run_cmd_to(
        &mut out,
        &mut err,
        Path::new(path),
        seed,
        None,
        json.as_deref(),
    );
    (
        code.0,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[test]
fn run_prints_a_summary_and_exits_zero_on_a_passing_scenario() {
    let (code, out, err) = run("scenarios/tcp-basic.yaml", None);
    println!("{out}{err}");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("scenario tcp-basic (scenarios/tcp-basic.yaml) seed 1"),
        "{out}"
    );
}

#[test]
fn check_runs_the_scenario_library_and_writes_junit() {
    let dir = std::env::temp_dir().join(format!("natsim-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let junit = dir.join("junit.xml");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = check_cmd_to(&mut out, &mut err, Path::new("scenarios"), Some(&junit));
    let out = String::from_utf8_lossy(&out);
    println!("{out}");
    assert_eq!(code.0, 0, "{out}{}", String::from_utf8_lossy(&err));
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(xml.contains("<testsuite name=\"natsim\"") && xml.contains("failures=\"0\""));
}

#[test]
fn bad_files_exit_2_naming_file_line_and_field() {
    let dir = std::env::temp_dir().join(format!("natsim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let cases = [
        (
            "unknown-field.yaml",
            "apiVersion: natsim.dev/v1\nkind: Scenario\nmetadata: {name: x}\ntopology:\n  networks: []\n  bogus: 1\n",
            "bogus",
        ),
        (
            "bad-ref.yaml",
            "apiVersion: natsim.dev/v1\nkind: Scenario\nmetadata: {name: x}\ntopology:\n  networks: [{name: n, prefixes: [10.0.0.0/24]}]\n  nics:\n    - {name: a, network: n, addresses: [10.0.0.1]}\ntraffic:\n  - {name: t, from: nobody, udp: {to: \"a:53\"}}\n",
            "traffic[0].from",
        ),
        (
            "bad-p.yaml",
            "apiVersion: natsim.dev/v1\nkind: Scenario\nmetadata: {name: x}\ntopology:\n  networks: [{name: n, prefixes: [10.0.0.0/24]}]\ngateway: {network: n, ips: [], ports_per_nic: 65536}\n",
            "ports_per_nic",
        ),
        (
            "dup.yaml",
            "apiVersion: natsim.dev/v1\nkind: Scenario\nkind: Scenario\nmetadata: {name: x}\ntopology: {networks: []}\n",
            "dup.yaml:3",
        ),
    ];
    for (name, text, needle) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        let (code, _, err) = run(path.to_str().expect("utf8"), None);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(name) && err.contains(needle), "{name}: {err}");
        if name == "bad-ref.yaml" {
            assert!(
                err.contains("bad-ref.yaml:9:"),
                "line number missing: {err}"
            );
        }
    }
}

#[test]
fn run_writes_a_json_report_and_a_pcapng_with_one_interface_per_link() {
    let dir = std::env::temp_dir().join(format!("natsim-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let json = dir.join("r.json");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run_cmd_to(
        &mut out,
        &mut err,
        Path::new("scenarios/tcp-basic.yaml"),
        Some(5),
        Some(&dir),
        Some(&json),
    );
    assert_eq!(code.0, 0, "{}", String::from_utf8_lossy(&err));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parses");
    assert_eq!(r["seed"], 5);
    assert_eq!(r["replay"], "natsim run scenarios/tcp-basic.yaml --seed 5");
    assert_eq!(r["invariants"]["isolation"]["result"], "held");
    let pcap = std::fs::read(dir.join("tcp-basic-seed5.pcapng")).expect("pcapng written");
    let mut reader = pcap_file::pcapng::PcapNgReader::new(&pcap[..]).expect("pcapng header");
    let (mut interfaces, mut packets) = (0, 0);
    while let Some(block) = reader.next_block() {
        match block.expect("block") {
            pcap_file::pcapng::Block::InterfaceDescription(_) => interfaces += 1,
            pcap_file::pcapng::Block::EnhancedPacket(p) => {
                packets += 1;
                assert!(natsim::wire::PacketRepr::parse(&p.data).is_ok());
            }
            _ => {}
        }
    }
    assert_eq!(interfaces, 2);
    assert!(packets > 10, "{packets}");
}

#[test]
fn schema_is_generated_from_the_types() {
    let schema: serde_json::Value =
        serde_json::from_str(&natsim::scenario::schema::json_schema()).expect("schema is JSON");
    let props = &schema["properties"];
    for key in [
        "apiVersion",
        "topology",
        "gateway",
        "traffic",
        "attacks",
        "faults",
        "packets",
        "expect",
    ] {
        assert!(props.get(key).is_some(), "{key} missing from schema");
    }
    assert_eq!(schema["additionalProperties"], false);
}
