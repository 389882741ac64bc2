//! Snapshot of `natsim reconcile` for every valid manifest file.

use std::path::Path;

use natsim::api::SourceFile;
use natsim::api::cli::reconcile_to;

/// The file's path relative to the crate root, so snapshots do not depend on the checkout.
fn stable_name(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn valid_manifests_reconcile_to_the_snapshotted_gateways() {
    insta::glob!("../testdata/manifests", "valid/*.yaml", |path| {
        let text = std::fs::read_to_string(path).expect("readable test manifest");
        let source = SourceFile::new(stable_name(path), text);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let ok = reconcile_to(&[source], &[], &mut out, &mut err).expect("writes to memory");
        let out = String::from_utf8(out).expect("utf-8 output");
        let err = String::from_utf8(err).expect("utf-8 diagnostics");
        assert!(ok, "valid manifest rejected:\n{err}");
        insta::assert_snapshot!(format!("# stderr\n{err}# stdout\n{out}"));
    });
}
