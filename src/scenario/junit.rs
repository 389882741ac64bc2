//! The JUnit XML that `natsim check --junit` writes, built with `quick-junit` (which escapes
//! markup and drops the control characters XML 1.0 cannot hold).
//!
//! A scenario that could not be run (bad input, exit 2) is an `<error>`: the test could not
//! be carried out. A scenario that ran and failed (exit 3, 4 or 5) is a `<failure>`. Every
//! test case carries the wall-clock seconds its runs took (`time`); the simulation itself
//! never reads a wall clock, so this is the only non-reproducible part of the file.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::exit;

/// One scenario's outcome, as `natsim check` saw it.
#[derive(Clone, Debug)]
pub struct JunitCase {
    /// The scenario file as given.
    pub name: String,
    /// Its exit code (`crate::exit`).
    pub code: u8,
    /// What went wrong (empty on a pass).
    pub detail: String,
    /// The invariants line (empty when the scenario did not run).
    pub invariants: String,
    /// Wall-clock time of the scenario's runs.
    pub time: Duration,
}

/// The JUnit XML document for `cases`, one test suite named `natsim`.
pub fn render(cases: &[JunitCase]) -> Result<String, String> {
    let mut suite = TestSuite::new("natsim");
    for case in cases {
        let status = if case.code == exit::OK {
            TestCaseStatus::success()
        } else {
            let kind = if case.code == exit::BAD_INPUT {
                NonSuccessKind::Error
            } else {
                NonSuccessKind::Failure
            };
            let mut status = TestCaseStatus::non_success(kind);
            status
                .set_message(format!("exit {}: {}", case.code, outcome(case.code)))
                .set_type(outcome(case.code))
                .set_description(xml_text(&case.detail));
            status
        };
        let mut test = TestCase::new(xml_text(&case.name), status);
        test.set_classname("scenarios").set_time(case.time);
        if !case.invariants.is_empty() {
            test.set_system_out(xml_text(&case.invariants));
        }
        suite.add_test_case(test);
    }
    suite.set_time(cases.iter().map(|c| c.time).sum());
    let mut report = Report::new("natsim");
    report.add_test_suite(suite);
    report.to_string().map_err(|e| e.to_string())
}

/// What an exit code means, for the `type` and `message` attributes.
fn outcome(code: u8) -> &'static str {
    match code {
        exit::BAD_INPUT => "bad input",
        exit::UNMET => "expectations not met",
        exit::VIOLATION => "invariant violated",
        exit::BOUND_HIT => "run bound hit",
        _ => "failed",
    }
}

/// Drops the two non-characters XML 1.0 forbids that quick-junit lets through (it already
/// drops the C0 controls other than tab, line feed and carriage return, and ANSI escapes).
fn xml_text(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '\u{FFFE}' | '\u{FFFF}'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, code: u8, detail: &str) -> JunitCase {
        JunitCase {
            name: name.to_owned(),
            code,
            detail: detail.to_owned(),
            invariants: String::new(),
            time: Duration::from_millis(1500),
        }
    }

    #[test]
    fn junit_bad_input_is_an_error_and_a_failed_run_a_failure() {
        let xml = render(&[
            case("a.yaml", exit::OK, ""),
            case("b.yaml", exit::BAD_INPUT, "b.yaml:3:1: kind: missing"),
            case("c.yaml", exit::VIOLATION, "invariant 2 violated"),
        ])
        .expect("renders");
        assert!(
            xml.contains("<error message=\"exit 2: bad input\""),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"exit 4: invariant violated\""),
            "{xml}"
        );
        assert!(
            xml.contains("tests=\"3\"") && xml.contains("errors=\"1\""),
            "{xml}"
        );
        assert!(xml.contains("failures=\"1\""), "{xml}");
    }

    #[test]
    fn junit_test_cases_carry_times() {
        let xml =
            render(&[case("a.yaml", exit::OK, ""), case("b.yaml", exit::OK, "")]).expect("renders");
        assert_eq!(
            xml.matches("time=\"1.500\"").count(),
            2,
            "one per case: {xml}"
        );
        assert!(
            xml.contains("time=\"3.000\""),
            "suite time is the sum: {xml}"
        );
    }

    #[test]
    fn junit_is_valid_xml_with_control_characters_and_markup_in_names() {
        let nasty = "a\u{1}b\u{1b}[31mc\u{FFFF}<&>\"'.yaml";
        let xml =
            render(&[case(nasty, exit::BAD_INPUT, "bad \u{0} byte & <tag>")]).expect("renders");
        for c in xml.chars() {
            let allowed = matches!(c, '\t' | '\n' | '\r')
                || ('\u{20}'..='\u{D7FF}').contains(&c)
                || ('\u{E000}'..='\u{FFFD}').contains(&c)
                || c >= '\u{10000}';
            assert!(allowed, "XML 1.0 cannot hold {c:?}: {xml}");
        }
        assert!(xml.contains("&lt;&amp;&gt;"), "{xml}");
        assert!(!xml.contains("<tag>"), "{xml}");
    }
}
