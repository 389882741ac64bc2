//! `natsim diff SCENARIO|CAPTURE`: prints the comparison, writes the JSON report, and returns
//! the exit code: 0 when every packet of both runs was compared and agreed, 1 when they differ
//! (or part), 2 for bad input or a kernel that cannot be driven.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::capture::{diff_capture, diff_recorded};
use super::scenario::diff_scenario;
use super::{Comparison, render};
use crate::check::Target;
use crate::exit::Exit;
use crate::nat::Profile;
use crate::output;
use crate::replay::ReplayConfig;

/// What `natsim diff` was asked.
#[derive(Clone, Debug)]
pub struct DiffOptions {
    /// Seed override (scenarios).
    pub seed: Option<u64>,
    /// The model's profile.
    pub profile: String,
    /// Write the JSON report here.
    pub json: Option<PathBuf>,
    /// Replay configuration (captures).
    pub config: Option<PathBuf>,
    /// Output folder of the replays (captures).
    pub out: Option<PathBuf>,
    /// Compare a capture recorded from the kernel with the model, instead of running the
    /// kernel.
    pub recorded: bool,
    /// The kernel dataplane's settings.
    pub kernel: Target,
    /// Also print up to this many differing records.
    pub show: usize,
}

/// The JSON report.
#[derive(Serialize)]
struct DiffReport<'a> {
    input: String,
    kind: &'static str,
    profile: &'a str,
    kernel_release: String,
    dataplane: Option<String>,
    agreement_percent: f64,
    full_agreement: bool,
    comparison: &'a Comparison,
    /// Records of a recorded capture that were not inputs (packets the gateway sent).
    not_inputs: u64,
    /// Scenario runs: each run's result and counters.
    #[serde(skip_serializing_if = "Option::is_none")]
    runs: Option<serde_json::Value>,
}

fn is_scenario(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs `natsim diff`.
pub fn diff_cmd(input: &Path, opts: &DiffOptions) -> Exit {
    let mut out = output::stdout();
    let mut err = output::stderr();
    let code = diff_cmd_to(&mut out, &mut err, input, opts);
    Exit(output::finish(code.0, out, err))
}

/// [`diff_cmd`] writing to the given streams.
pub fn diff_cmd_to(
    out: &mut dyn Write,
    err: &mut dyn Write,
    input: &Path,
    opts: &DiffOptions,
) -> Exit {
    match run(out, input, opts) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            Exit::BAD_INPUT
        }
    }
}

fn run(out: &mut dyn Write, input: &Path, opts: &DiffOptions) -> Result<Exit, String> {
    if let Some(j) = &opts.json {
        output::check_output_file(j).map_err(|e| e.to_string())?;
    }
    let profile = Profile::named(&opts.profile).ok_or_else(|| {
        format!(
            "--profile: unknown profile `{}`; one of {}",
            opts.profile,
            Profile::NAMES.join(", ")
        )
    })?;
    let scenario = is_scenario(input);
    let mut notes: Vec<String> = Vec::new();
    let (comparison, not_inputs, runs, kind) = if scenario {
        if opts.recorded {
            return Err("--recorded takes a capture (pcapng written by `natsim run --dataplane linux --pcap-dir`), not a scenario".into());
        }
        let sc = crate::scenario::load::load(input).map_err(|e| e.to_string())?;
        let d = diff_scenario(&sc, opts.seed, &profile, opts.kernel)?;
        for note in &d.kernel.dataplane_notes {
            notes.push(format!("kernel run: {note}"));
        }
        // A violation ends a run, and with it the packet stream: say so next to the table.
        for (who, r) in [("model", &d.model), ("kernel", &d.kernel)] {
            if let Some(v) = &r.violation {
                notes.push(format!(
                    "{who} run stopped at t={}: invariant {} violated: {}",
                    v.at,
                    v.invariant.name(),
                    v.message
                ));
            }
        }
        let runs = serde_json::json!({
            "model": { "result": d.model.result, "counters": d.model.counters, "invariants": d.model.invariants, "violation": d.model.violation.as_ref().map(|v| &v.message) },
            "kernel": { "result": d.kernel.result, "counters": d.kernel.counters, "invariants": d.kernel.invariants, "violation": d.kernel.violation.as_ref().map(|v| &v.message), "dataplane_notes": d.kernel.dataplane_notes },
        });
        (d.comparison, 0, Some(runs), "scenario")
    } else {
        let mut config = match &opts.config {
            Some(p) => ReplayConfig::load(p).map_err(|e| e.to_string())?,
            None => ReplayConfig::default(),
        };
        config.profile = opts.profile.clone();
        if let Some(o) = &opts.out {
            config.out_dir = Some(o.clone());
        }
        config.validate().map_err(|e| e.to_string())?;
        let d = if opts.recorded {
            diff_recorded(input, &config)?
        } else {
            if let Target::Kernel(s) = opts.kernel {
                s.validate()?;
            }
            crate::kernel::preflight().map_err(|e| e.to_string())?;
            diff_capture(input, &config, opts.kernel)?
        };
        let _ = writeln!(out, "replays written under {}", d.out_dir.display());
        let kind = if opts.recorded {
            "recorded_capture"
        } else {
            "capture"
        };
        (d.comparison, d.not_inputs, None, kind)
    };
    let against = if opts.recorded {
        "the verdicts recorded from the kernel".to_string()
    } else {
        format!("the Linux kernel {}", kernel_release())
    };
    let _ = writeln!(
        out,
        "diff {}: model (profile {}) vs {against}",
        input.display(),
        opts.profile
    );
    let _ = write!(out, "{}", render(&comparison, opts.show));
    for n in &notes {
        let _ = writeln!(out, "  {n}");
    }
    if not_inputs > 0 {
        let _ = writeln!(
            out,
            "  {not_inputs} record(s) not compared: sent by the gateway itself, or without a verdict comment"
        );
    }
    let full = comparison.full_agreement();
    let _ = writeln!(
        out,
        "  result: {}",
        if full {
            "the same verdict on every packet"
        } else if comparison.model_packets == 0 && comparison.kernel_packets == 0 {
            "nothing to compare: no packet reached a dataplane (exit 1)"
        } else {
            "the verdicts differ (exit 1)"
        }
    );
    if let Some(j) = &opts.json {
        let report = DiffReport {
            input: input.display().to_string(),
            kind,
            profile: &opts.profile,
            kernel_release: if opts.recorded {
                "recorded".into()
            } else {
                kernel_release()
            },
            dataplane: opts.kernel.dataplane_arg(),
            agreement_percent: comparison.agreement_percent(),
            full_agreement: full,
            comparison: &comparison,
            not_inputs,
            runs,
        };
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        output::write_atomic(j, text + "\n")
            .map_err(|e| format!("writing {}: {e}", j.display()))?;
        let _ = writeln!(out, "  wrote {}", j.display());
    }
    Ok(if full {
        Exit::OK
    } else {
        Exit(crate::exit::FAILED)
    })
}
