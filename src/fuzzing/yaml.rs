//! The YAML front doors: IronCore manifests and scenario files.

use std::path::Path;

use crate::api::{self, SourceFile, World, WorldConfig};
use crate::time::Instant;

/// Inputs above this are ignored: size limits of the YAML parser are tested elsewhere, and
/// small inputs keep executions fast.
const MAX_INPUT_BYTES: usize = 64 * 1024;

/// Target `manifest_yaml`: text through the manifest loader and validation (never a panic; the
/// same text gives the same findings), and a valid set through the reconciler, whose blocks must
/// lie in 1024–65535 and be disjoint per public address (behaviour §3, §6 port-limit).
pub fn manifest_yaml(data: &[u8]) {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sources = [SourceFile::new("fuzz.yaml", text)];
    let report = api::load(&sources);
    let again = api::load(&sources);
    assert_eq!(
        format!("{:?}", report.diagnostics),
        format!("{:?}", again.diagnostics),
        "determinism: the same manifests gave different findings"
    );
    if report.has_errors() {
        return;
    }
    let Ok(mut world) = World::from_objects(report.objects, WorldConfig::default()) else {
        return;
    };
    world.reconcile(Instant::ZERO);
    let mut blocks: Vec<_> = world
        .blocks()
        .into_iter()
        .map(|(_, b)| (b.ip, b.port, b.end_port))
        .collect();
    blocks.sort();
    for &(ip, port, end) in &blocks {
        assert!(
            port >= 1024 && end >= port,
            "port-limit: block {ip} {port}-{end} leaves 1024-65535"
        );
    }
    for w in blocks.windows(2) {
        assert!(
            w[0].0 != w[1].0 || w[0].2 < w[1].1,
            "port-limit: blocks {:?} and {:?} overlap",
            w[0],
            w[1]
        );
    }
}

/// Target `scenario_yaml`: text through the scenario loader and name resolution (never a panic;
/// the same text gives the same result). Runs are not simulated here: the simulator is fuzzed by
/// `gateway_ops` and by `natsim swarm`.
pub fn scenario_yaml(data: &[u8]) {
    if data.len() > MAX_INPUT_BYTES {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.yaml");
    let a = crate::scenario::load_str(path, text).map(|s| format!("{:?}", s.doc));
    let b = crate::scenario::load_str(path, text).map(|s| format!("{:?}", s.doc));
    assert_eq!(
        a.as_ref().map_err(|e| e.to_string()),
        b.as_ref().map_err(|e| e.to_string()),
        "determinism: the same scenario text loaded differently"
    );
}
