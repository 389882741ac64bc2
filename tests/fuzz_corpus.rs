//! Replays every committed fuzz input — `fuzz/corpus/<target>/*` and `fuzz/artifacts/<target>/*`
//! — through the same `natsim::fuzzing` harness functions the cargo-fuzz targets call, as plain
//! tests: a crash found by libFuzzer stays a regression test without libFuzzer or nightly.
//!
//! Seed files (`fuzz/corpus/<target>/seed-*`) are generated: `seeds_are_current` checks them
//! against `natsim::fuzzing::seeds` plus packets taken from the small captures in
//! `testdata/pcaps/tcpdump/`, and rewrites them when run with `NATSIM_WRITE_FUZZ_SEEDS=1`.
//!
//! An artifact that reproduces a bug not fixed yet is listed in `fuzz/known-failures.txt` as
//! `<target>/<file> <text the panic message contains>`: it must still fail with that message
//! (so the list cannot go stale silently), and once the bug is fixed the test says to delete the
//! line.

use std::collections::BTreeMap;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use natsim::fuzzing::world::{WorldInput, sim_world_against};
use natsim::fuzzing::{self, seeds};
use natsim::replay::CaptureReader;
use natsim::swarm::Target;
use natsim::swarm::yaml::round_trip;

type Harness = fn(&[u8]);

/// `sim_world` on the real gateway, whatever `NATSIM_FUZZ_BROKEN` says.
fn sim_world_real(data: &[u8]) {
    sim_world_against(data, Target::Real);
}

const TARGETS: [(&str, Harness); 7] = [
    ("wire_parse", fuzzing::wire_parse),
    ("gateway_packet", fuzzing::gateway_packet),
    ("gateway_ops", fuzzing::gateway_ops),
    ("pcap_read", fuzzing::pcap_read),
    ("manifest_yaml", fuzzing::manifest_yaml),
    ("scenario_yaml", fuzzing::scenario_yaml),
    ("sim_world", sim_world_real),
];

/// Captures up to this size become `pcap_read` seeds (keeps the corpus small).
const PCAP_SEED_MAX_BYTES: u64 = 2600;
/// IP packets taken from each small capture as `wire_parse`/`gateway_packet` seeds.
const PACKETS_PER_CAPTURE: usize = 2;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            // Bookkeeping files that are not inputs.
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.starts_with('.') && !name.ends_with(".md")
        })
        .collect();
    files.sort();
    files
}

fn known_failures() -> BTreeMap<String, String> {
    let text = fs::read_to_string(fuzz_dir().join("known-failures.txt")).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<non-string panic>".into())
}

fn replay(target: &str, harness: Harness) {
    let known = known_failures();
    let mut failures = Vec::new();
    let mut replayed = 0;
    for sub in ["corpus", "artifacts"] {
        for path in files_in(&fuzz_dir().join(sub).join(target)) {
            let data = fs::read(&path).expect("readable corpus file");
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let key = format!("{target}/{name}");
            let outcome = catch_unwind(AssertUnwindSafe(|| harness(&data)));
            replayed += 1;
            match (outcome, known.get(&key)) {
                (Ok(()), None) => {}
                (Err(e), None) => {
                    failures.push(format!("{}: {}", path.display(), panic_message(e.as_ref())))
                }
                (Err(e), Some(expected)) => {
                    let msg = panic_message(e.as_ref());
                    if !msg.contains(expected.as_str()) {
                        failures.push(format!(
                            "{}: known failure now fails differently: {msg}",
                            path.display()
                        ));
                    }
                }
                (Ok(()), Some(_)) => failures.push(format!(
                    "{}: listed in fuzz/known-failures.txt but passes now: the bug is fixed, \
                     delete the line",
                    path.display()
                )),
            }
        }
    }
    assert!(replayed > 0, "no corpus for {target}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn replay_wire_parse() {
    replay("wire_parse", TARGETS[0].1);
}

#[test]
fn replay_gateway_packet() {
    replay("gateway_packet", TARGETS[1].1);
}

#[test]
fn replay_gateway_ops() {
    replay("gateway_ops", TARGETS[2].1);
}

#[test]
fn replay_pcap_read() {
    replay("pcap_read", TARGETS[3].1);
}

#[test]
fn replay_manifest_yaml() {
    replay("manifest_yaml", TARGETS[4].1);
}

#[test]
fn replay_scenario_yaml() {
    replay("scenario_yaml", TARGETS[5].1);
}

#[test]
fn replay_sim_world() {
    replay("sim_world", TARGETS[6].1);
}

/// The `sim_world` corpus: the CI proof (`scripts/fuzz-find-broken.sh`) starts from it and must
/// find the leaky filter by fuzzing, so no committed input may trip it already.
#[test]
fn sim_world_corpus_does_not_trip_the_leaky_filter() {
    let leaky = Target::broken("leaky-filter").expect("known");
    for path in files_in(&fuzz_dir().join("corpus/sim_world")) {
        let data = fs::read(&path).expect("readable corpus file");
        let outcome = WorldInput::decode(&data).run(leaky);
        assert_eq!(
            outcome.failure,
            None,
            "{} already trips the leaky filter: {}",
            path.display(),
            outcome.detail
        );
    }
}

/// Prunes a `sim_world` corpus for the CI proof: `NATSIM_PRUNE_LEAKY=<dir> cargo test --release
/// --test fuzz_corpus prune_leaky -- --nocapture` deletes every input in `<dir>` that already
/// trips the leaky filter, naming each (does nothing when the variable is unset).
/// `scripts/fuzz-campaign.sh` runs it after minimising `sim_world`, since `cargo fuzz cmin`
/// keeps inputs for their coverage and some of them may trip it.
#[test]
fn prune_leaky() {
    let Some(dir) = std::env::var_os("NATSIM_PRUNE_LEAKY") else {
        return;
    };
    let leaky = Target::broken("leaky-filter").expect("known");
    let mut pruned = 0;
    for path in files_in(Path::new(&dir)) {
        let data = fs::read(&path).expect("readable corpus file");
        if WorldInput::decode(&data).run(leaky).failure.is_some() {
            println!("pruned {}: trips the leaky filter", path.display());
            fs::remove_file(&path).expect("removable corpus file");
            pruned += 1;
        }
    }
    println!("pruned {pruned} inputs");
}

/// `sim_world` resolves its documents without writing YAML; `natsim swarm --from-fuzz` writes
/// them. Both see the same world only if the document reads back unchanged, extras included.
#[test]
fn sim_world_documents_read_back_unchanged() {
    let mut inputs: Vec<PathBuf> = files_in(&fuzz_dir().join("corpus/sim_world"));
    inputs.extend(broken_finds().into_iter().map(|(_, p)| p));
    assert!(!inputs.is_empty());
    for path in inputs {
        let data = fs::read(&path).expect("readable input");
        let doc = WorldInput::decode(&data).document();
        let (text, sc) = round_trip(&doc, &path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::to_value(&sc.doc).expect("json"),
            serde_json::to_value(&doc).expect("json"),
            "{} changes when written and read back:\n{text}",
            path.display()
        );
    }
}

/// `fuzz/broken/<name>/*`: `sim_world` inputs a fuzzer found against the deliberately broken
/// dataplane `<name>` (a `natsim swarm --broken` name), with the name.
fn broken_finds() -> Vec<(String, PathBuf)> {
    let Ok(entries) = fs::read_dir(fuzz_dir().join("broken")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
        .flat_map(|d| {
            let name = d
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            files_in(&d).into_iter().map(move |p| (name.clone(), p))
        })
        .collect()
}

/// Inputs found against a broken dataplane still fail against it (so `sim_world` still finds
/// that breakage) and pass on the real gateway (they are not real-gateway failures, which
/// belong in `fuzz/artifacts/`).
#[test]
fn broken_finds_fail_only_against_their_broken_dataplane() {
    let finds = broken_finds();
    assert!(!finds.is_empty(), "no fuzz/broken/<name>/ inputs");
    for (name, path) in finds {
        let target = Target::broken(&name)
            .unwrap_or_else(|e| panic!("fuzz/broken/{name}/ is not a dataplane name: {e}"));
        let data = fs::read(&path).expect("readable input");
        let bad = catch_unwind(AssertUnwindSafe(|| sim_world_against(&data, target)));
        assert!(
            bad.is_err(),
            "{} no longer fails against the {target}",
            path.display()
        );
        sim_world_real(&data);
    }
}

/// Every known failure names a file that exists.
#[test]
fn known_failures_name_existing_artifacts() {
    for key in known_failures().keys() {
        let path = fuzz_dir().join("artifacts").join(key);
        assert!(
            path.is_file(),
            "fuzz/known-failures.txt names missing {key}"
        );
    }
}

/// Small captures of the tcpdump test suite, by file name.
fn small_captures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/pcaps/tcpdump");
    files_in(&dir)
        .into_iter()
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            (ext == "pcap" || ext == "pcapng")
                && fs::metadata(p).is_ok_and(|m| m.len() <= PCAP_SEED_MAX_BYTES)
        })
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            Some((name, fs::read(&p).ok()?))
        })
        .collect()
}

fn first_ip_packets(capture: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Ok(mut reader) = CaptureReader::new(capture, "seed") else {
        return out;
    };
    while out.len() < n {
        match reader.next_packet() {
            Ok(Some(p)) => out.push(p.ip.to_vec()),
            _ => break,
        }
    }
    out
}

/// Every seed file, by target and file name.
fn expected_seeds() -> BTreeMap<(&'static str, String), Vec<u8>> {
    let mut m = BTreeMap::new();
    for (name, bytes) in seeds::packets() {
        m.insert(("wire_parse", format!("seed-{name}")), bytes);
    }
    for (name, bytes) in seeds::gateway_packet() {
        m.insert(("gateway_packet", format!("seed-{name}")), bytes);
    }
    for (name, bytes) in seeds::gateway_ops() {
        m.insert(("gateway_ops", format!("seed-{name}")), bytes);
    }
    for (name, bytes) in seeds::sim_world() {
        m.insert(("sim_world", format!("seed-{name}")), bytes);
    }
    // Real-world packets: each capture's first packets for the parser, and all of them as one
    // gateway_packet input, once from inside NIC 0 and once from outside, checksums fixed.
    let mut from_inside = vec![0u8];
    let mut from_outside = vec![0u8];
    for (file, bytes) in small_captures() {
        let stem = file.replace('.', "_");
        for (i, p) in first_ip_packets(&bytes, PACKETS_PER_CAPTURE)
            .into_iter()
            .enumerate()
        {
            if p.len() <= 1500 {
                seeds::packet_record(&mut from_inside, 4, &p);
                seeds::packet_record(&mut from_outside, 5, &p);
            }
            m.insert(("wire_parse", format!("seed-pcap-{stem}-{i}")), p);
        }
        m.insert(("pcap_read", format!("seed-{file}")), bytes);
    }
    m.insert(
        ("gateway_packet", "seed-pcap-packets-inside".into()),
        from_inside,
    );
    m.insert(
        ("gateway_packet", "seed-pcap-packets-outside".into()),
        from_outside,
    );
    m
}

#[test]
fn seeds_are_current() {
    let want = expected_seeds();
    let write = std::env::var_os("NATSIM_WRITE_FUZZ_SEEDS").is_some_and(|v| v == "1");
    let mut problems = Vec::new();
    for (target, _) in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        for path in files_in(&dir) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("seed-") && !want.contains_key(&(target, name.to_string())) {
                if write {
                    fs::remove_file(&path).expect("remove stale seed");
                } else {
                    problems.push(format!("stale seed {}", path.display()));
                }
            }
        }
    }
    for ((target, name), bytes) in &want {
        let path = fuzz_dir().join("corpus").join(target).join(name);
        if fs::read(&path).ok().as_ref() == Some(bytes) {
            continue;
        }
        if write {
            fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            fs::write(&path, bytes).expect("write seed");
        } else {
            problems.push(format!("missing or outdated {}", path.display()));
        }
    }
    assert!(
        problems.is_empty(),
        "seed corpus out of date; regenerate with NATSIM_WRITE_FUZZ_SEEDS=1 cargo test --test \
         fuzz_corpus seeds_are_current\n{}",
        problems.join("\n")
    );
}

/// Replays one file outside the corpus: `NATSIM_FUZZ_REPLAY=<target>:<path> cargo test --test
/// fuzz_corpus replay_one -- --nocapture` runs a fresh crash file through its harness without
/// libFuzzer (does nothing when the variable is unset).
#[test]
fn replay_one() {
    let Some(spec) = std::env::var_os("NATSIM_FUZZ_REPLAY") else {
        return;
    };
    let spec = spec.to_string_lossy().into_owned();
    let (target, path) = spec
        .split_once(':')
        .expect("NATSIM_FUZZ_REPLAY=<target>:<path>");
    let harness = TARGETS
        .iter()
        .find(|(t, _)| *t == target)
        .map(|(_, h)| *h)
        .expect("known target");
    harness(&fs::read(path).expect("readable file"));
}
