//! Every invalid manifest is rejected with messages naming file, line, object and field.

use std::path::Path;

use natsim::api::cli::validate_to;
use natsim::api::{Severity, SourceFile, load};

fn stable_name(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn invalid_manifests_are_rejected_with_located_messages() {
    insta::glob!("../testdata/manifests", "invalid/*.yaml", |path| {
        let text = std::fs::read_to_string(path).expect("readable test manifest");
        let name = stable_name(path);
        let sources = [SourceFile::new(name.clone(), text)];
        let report = load(&sources);
        assert!(report.has_errors(), "{name} was accepted");
        for d in report.errors() {
            assert_eq!(d.file, name);
            assert!(d.loc.line > 0, "no line in: {d}");
            assert!(d.object.is_some(), "no object in: {d}");
            assert!(!d.field.is_empty(), "no field in: {d}");
            assert_eq!(d.severity, Severity::Error);
        }
        let mut out = Vec::new();
        let ok = validate_to(&sources, &mut out).expect("writes to memory");
        assert!(!ok);
        insta::assert_snapshot!(String::from_utf8(out).expect("utf-8 output"));
    });
}
