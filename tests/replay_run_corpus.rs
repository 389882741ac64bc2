//! Every capture of the tcpdump corpus either replays or is rejected with a clear message, never
//! panics, and counts what it skipped by reason. One snapshot holds a deterministic line per
//! file, so any change in what the replay does with real captures shows up in review, including
//! how often each behaviour §6 invariant was checked (`inv[number=checks]`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use natsim::replay::{ReplayConfig, replay};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/pcaps/tcpdump")
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus directory exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    files
}

fn out_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("replay_run_corpus")
        .join(name)
}

/// `k=v` pairs of a map, comma-separated, zeros left out.
fn pairs<'a>(map: impl IntoIterator<Item = (&'a String, &'a u64)>) -> String {
    map.into_iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn whole_corpus_replays_or_is_rejected_clearly() {
    let mut table = String::new();
    let (mut replayed, mut rejected, mut partial) = (0, 0, 0);
    for path in corpus_files() {
        let name = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let config = ReplayConfig {
            out_dir: Some(out_dir(&name)),
            verdicts: true,
            ..ReplayConfig::default()
        };
        match replay(&path, &config) {
            Ok(o) => {
                let s = &o.summary;
                // Every record is accounted for: replayed, skipped with a reason, or classified
                // (not NIC traffic: DHCP, multicast, neighbour discovery, ...).
                let skipped: u64 = s.skipped.values().sum();
                let classified: u64 = s.classified.values().sum();
                assert_eq!(
                    s.replayed_packets + skipped + classified,
                    s.packets_read,
                    "{name}"
                );
                assert_eq!(s.violation_total(), 0, "{name}: {:?}", s.violation_examples);
                assert_eq!(o.exit_code, 0, "{name}");
                let drops = pairs(s.gateway.iter().filter(|(k, _)| k.starts_with("drop.")));
                let checks = s
                    .invariants
                    .iter()
                    .filter(|i| i.checks > 0)
                    .map(|i| format!("{}={}", i.number, i.checks))
                    .collect::<Vec<_>>()
                    .join(",");
                let _ = writeln!(
                    table,
                    "{name}: read={} replayed={} fwd_out={} fwd_in={} [{}] skip[{}]{} drop[{}] inv[{checks}]{}{}",
                    s.packets_read,
                    s.replayed_packets,
                    s.verdicts.get("forward.outside").copied().unwrap_or(0),
                    s.verdicts.get("forward.inside").copied().unwrap_or(0),
                    pairs(&s.mapping),
                    pairs(&s.skipped),
                    if s.classified.is_empty() {
                        String::new()
                    } else {
                        format!(" classified[{}]", pairs(&s.classified))
                    },
                    drops.replace("drop.", ""),
                    if s.guesses.is_empty() { "" } else { " guessed" },
                    s.capture_error
                        .as_ref()
                        .map(|e| format!(
                            " PARTIAL: {}",
                            e.replace(&corpus_dir().display().to_string(), "")
                        ))
                        .unwrap_or_default(),
                );
                if s.capture_error.is_some() {
                    partial += 1;
                } else {
                    replayed += 1;
                }
            }
            Err(e) => {
                let msg = e
                    .to_string()
                    .replace(&corpus_dir().display().to_string(), "");
                assert!(
                    msg.contains(&name),
                    "{name}: the message names the file: {msg}"
                );
                let _ = writeln!(table, "{name}: REJECTED: {msg}");
                rejected += 1;
            }
        }
    }
    let _ = writeln!(
        table,
        "-- {replayed} replayed, {partial} replayed up to a read error, {rejected} rejected"
    );
    insta::assert_snapshot!("corpus_replay", table);
}
