//! The CLI entry points behave as documented in docs/api.md.

use std::path::PathBuf;
use std::process::ExitCode;

use ipnet::IpNet;
use natsim::api::SourceFile;
use natsim::api::cli::{read_sources, reconcile, reconcile_to, validate, validate_to};

fn manifest(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

#[test]
fn validate_exit_code_follows_errors_not_warnings() {
    assert_eq!(
        validate(&[manifest("testdata/manifests/valid/dual-stack.yaml")]),
        ExitCode::SUCCESS
    );
    assert_eq!(
        validate(&[manifest(
            "testdata/manifests/invalid/ports-per-nic-65536.yaml"
        )]),
        ExitCode::FAILURE
    );
    assert_eq!(
        reconcile(
            &[manifest("testdata/manifests/invalid/type-not-public.yaml")],
            &[]
        ),
        ExitCode::FAILURE
    );
}

#[test]
fn unreadable_files_are_reported_and_fail() {
    let (sources, errors) = read_sources(&[manifest("testdata/manifests/no-such-file.yaml")]);
    assert!(sources.is_empty());
    assert!(errors[0].contains("cannot read file"), "{}", errors[0]);
    // Bad input, not a verdict: exit 2 (natsim::exit::BAD_INPUT).
    assert_eq!(
        validate(&[manifest("testdata/manifests/no-such-file.yaml")]),
        ExitCode::from(natsim::exit::BAD_INPUT)
    );
}

#[test]
fn reconcile_uses_the_given_pool_and_default_for_the_other_family() {
    let (sources, _) = read_sources(&[manifest("testdata/manifests/valid/iep4-example.yaml")]);
    let pool: IpNet = "198.51.100.0/24".parse().expect("prefix");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert!(reconcile_to(&sources, &[pool], &mut out, &mut err).expect("in memory"));
    let out = String::from_utf8(out).expect("utf-8");
    assert!(out.contains("\"198.51.100.1\""), "{out}");
    assert!(out.contains("2001:db8:ffff::1"), "{out}");
}

#[test]
fn output_is_deterministic_and_errors_span_files() {
    let a = SourceFile::new(
        "a.yaml",
        "apiVersion: networking.ironcore.dev/v1alpha1\nkind: Network\nmetadata: {name: net}\n",
    );
    let b = SourceFile::new(
        "b.yaml",
        "apiVersion: networking.ironcore.dev/v1alpha1\nkind: NATGateway\nmetadata: {name: nat}\nspec: {type: Public, ipFamilies: [IPv4], networkRef: {name: nett}, ips: [{name: ip1}], networkInterfaceSelector: {}}\n",
    );
    let mut out = Vec::new();
    assert!(!validate_to(&[a.clone(), b.clone()], &mut out).expect("in memory"));
    let text = String::from_utf8(out).expect("utf-8");
    assert!(text.contains("b.yaml:4:"), "{text}");
    assert!(
        text.contains("valid: one of the Networks in namespace default: net"),
        "{text}"
    );
    let fixed = SourceFile::new("b.yaml", b.text.replace("nett", "net"));
    let run = || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert!(
            reconcile_to(&[a.clone(), fixed.clone()], &[], &mut out, &mut err).expect("in memory")
        );
        out
    };
    assert_eq!(run(), run());
}
