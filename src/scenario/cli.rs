//! Entry points for `natsim run`, `natsim check` and `natsim schema`. `main.rs` parses the
//! arguments and calls these; they print, write files and return the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::capture::write_pcapng;
use super::junit::{self, JunitCase};
use super::load::Scenario;
use super::load::load;
use super::report::{
    exit, invariants_line, mark_not_reproducible, require_exercised, run_scenario, summary,
};
use super::schema::json_schema;
use crate::check::Target;
use crate::output;
use crate::sim::dataplane::real_gateway;

/// Longest wall-clock run natsim starts against the kernel dataplane, in seconds (the virtual
/// run time times the time scale).
pub const MAX_KERNEL_WALL_S: f64 = 3600.0;

/// Prepares a scenario for `target`: against a dataplane that is not reproducible (the kernel)
/// there is no determinism rerun, and the wall time the run can take is bounded. Returns a
/// note for the user, if any.
pub fn prepare_for(sc: &mut Scenario, target: Target) -> Result<Option<String>, String> {
    let Target::Kernel(settings) = target else {
        return Ok(None);
    };
    settings.validate()?;
    crate::kernel::preflight().map_err(|e| e.to_string())?;
    sc.doc.limits.rerun_for_determinism = false;
    // Bound the wall time: virtual time × scale ≤ MAX_KERNEL_WALL_S (idle gaps are cut too, so
    // most runs take far less). A scenario with a longer `duration_ms` is refused; one without
    // gets the bound as its `max_time`, which ends the run as a bound hit (exit 5).
    let max_virtual_ns = (MAX_KERNEL_WALL_S / settings.time_scale * 1e9) as u64;
    let limits = &mut sc.sim.limits;
    if let Some(d) = limits.duration_ns
        && d > max_virtual_ns
    {
        return Err(format!(
            "{}: limits.duration_ms is {} s; against the kernel at --time-scale {} that is {:.0} s of wall time, over the bound of {MAX_KERNEL_WALL_S:.0} s",
            sc.file.display(),
            d / 1_000_000_000,
            settings.time_scale,
            d as f64 * 1e-9 * settings.time_scale
        ));
    }
    limits.max_time_ns = limits.max_time_ns.min(max_virtual_ns);
    let profile = &sc.sim.gateway.profile.name;
    Ok((profile != "linux").then(|| {
        format!(
            "note: the kernel behaves as Linux; the scenario's profile `{profile}` sets only its conntrack timeouts, and the invariant checks and expectations still expect `{profile}` (natsim diff compares with the `linux` model)"
        )
    }))
}

pub use crate::exit::Exit;

/// `natsim run FILE [--seed N] [--pcap-dir DIR] [--json PATH]`: runs one scenario, prints the
/// summary to stdout (errors to stderr), writes the JSON report and pcapng captures.
pub fn run_cmd(
    path: &Path,
    seed: Option<u64>,
    pcap_dir: Option<&Path>,
    json: Option<&Path>,
    require_all_exercised: bool,
    target: Target,
) -> Exit {
    let mut out = output::stdout();
    let mut err = output::stderr();
    let code = run_cmd_on(
        &mut out,
        &mut err,
        path,
        seed,
        pcap_dir,
        json,
        require_all_exercised,
        target,
    );
    Exit(output::finish(code.0, out, err))
}

/// [`run_cmd`] writing to the given streams (for tests).
pub fn run_cmd_to(
    out: &mut dyn Write,
    err: &mut dyn Write,
    path: &Path,
    seed: Option<u64>,
    pcap_dir: Option<&Path>,
    json: Option<&Path>,
) -> Exit {
    run_cmd_with(out, err, path, seed, pcap_dir, json, false)
}

/// [`run_cmd_to`] with `--require-exercised`: every invariant must have made a check, or the
/// run is unmet (exit 3) naming the ones that did not.
pub fn run_cmd_with(
    out: &mut dyn Write,
    err: &mut dyn Write,
    path: &Path,
    seed: Option<u64>,
    pcap_dir: Option<&Path>,
    json: Option<&Path>,
    require_all_exercised: bool,
) -> Exit {
    run_cmd_on(
        out,
        err,
        path,
        seed,
        pcap_dir,
        json,
        require_all_exercised,
        Target::Real,
    )
}

/// [`run_cmd_with`] against any dataplane (`--dataplane linux`: the kernel's NAT).
#[allow(clippy::too_many_arguments)]
pub fn run_cmd_on(
    out: &mut dyn Write,
    err: &mut dyn Write,
    path: &Path,
    seed: Option<u64>,
    pcap_dir: Option<&Path>,
    json: Option<&Path>,
    require_all_exercised: bool,
    target: Target,
) -> Exit {
    // Unusable output paths are refused before the run, not after it.
    let paths = json
        .map_or(Ok(()), output::check_output_file)
        .and_then(|()| pcap_dir.map_or(Ok(()), output::check_output_dir));
    if let Err(e) = paths {
        let _ = writeln!(err, "error: {e}");
        return Exit::BAD_INPUT;
    }
    let mut sc = match load(path) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return Exit::BAD_INPUT;
        }
    };
    match prepare_for(&mut sc, target) {
        Ok(Some(note)) => {
            let _ = writeln!(err, "{note}");
        }
        Ok(None) => {}
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return Exit::BAD_INPUT;
        }
    }
    let run = match target {
        Target::Real => run_scenario(&sc, seed, &|| Box::new(real_gateway)),
        t => run_scenario(&sc, seed, &|| t.factory()),
    };
    let mut output = match run {
        Ok(o) => o,
        Err(e) => {
            let _ = writeln!(err, "error: {}: {e}", path.display());
            return Exit::BAD_INPUT;
        }
    };
    if let Some(arg) = target.dataplane_arg() {
        mark_not_reproducible(&mut output.report, &arg);
    }
    if require_all_exercised {
        require_exercised(&mut output.report);
    }
    let r = &output.report;
    let _ = write!(out, "{}", summary(r));
    if let Some(j) = json {
        let text = serde_json::to_string_pretty(r).unwrap_or_default();
        if let Err(e) = output::write_atomic(j, text + "\n") {
            let _ = writeln!(err, "error: writing {}: {e}", j.display());
            return Exit::BAD_INPUT;
        }
    }
    if let Some(dir) = pcap_dir {
        if output.captures.is_empty() {
            let _ = writeln!(err, "note: the scenario captures no links (set `capture:`)");
        } else {
            let stem = path
                .file_stem()
                .map_or("scenario".into(), |s| s.to_string_lossy().into_owned());
            let file = dir.join(format!("{stem}-seed{}.pcapng", r.seed));
            let links: Vec<(String, &[crate::sim::engine::CapturedPacket])> = output
                .captures
                .iter()
                .map(|(n, p)| (n.clone(), p.as_slice()))
                .collect();
            if let Err(e) = std::fs::create_dir_all(dir).and_then(|_| write_pcapng(&file, &links)) {
                let _ = writeln!(err, "error: writing {}: {e}", file.display());
                return Exit::BAD_INPUT;
            }
            let _ = writeln!(out, "  pcapng: {}", file.display());
        }
    }
    Exit(r.exit_code)
}

/// The scenario files of a directory, sorted by name.
pub fn scenario_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// `natsim check DIR [--junit PATH]`: runs every scenario in DIR (each twice, comparing
/// digests), prints one line each, optionally writes JUnit XML; the exit code is the worst
/// (highest) of the scenarios'.
pub fn check_cmd(dir: &Path, junit: Option<&Path>, require_all_exercised: bool) -> Exit {
    let mut out = output::stdout();
    let mut err = output::stderr();
    let code = check_cmd_with(&mut out, &mut err, dir, junit, require_all_exercised);
    Exit(output::finish(code.0, out, err))
}

/// Says why a folder selected no scenarios: none at all, or only in subfolders (which
/// `natsim check` does not search). Checking nothing must not pass (docs/scenarios.md).
fn empty_selection_message(dir: &Path) -> String {
    let nested: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .filter(|p| scenario_files(p).is_ok_and(|f| !f.is_empty()))
        .collect();
    let mut msg = format!(
        "{}: no scenario files (*.yaml, *.yml) in this folder; nothing was checked",
        dir.display()
    );
    if let Some(first) = nested.iter().min() {
        msg.push_str(&format!(
            "; subfolders are not searched, and {} of them hold scenarios: run e.g. `natsim check {}`",
            nested.len(),
            first.display()
        ));
    }
    msg
}

/// [`check_cmd`] writing to the given streams.
pub fn check_cmd_to(
    out: &mut dyn Write,
    err: &mut dyn Write,
    dir: &Path,
    junit: Option<&Path>,
) -> Exit {
    check_cmd_with(out, err, dir, junit, false)
}

/// [`check_cmd_to`] with `--require-exercised` (see [`run_cmd_with`]).
pub fn check_cmd_with(
    out: &mut dyn Write,
    err: &mut dyn Write,
    dir: &Path,
    junit: Option<&Path>,
    require_all_exercised: bool,
) -> Exit {
    let files = match scenario_files(dir) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(err, "error: {}: {e}", dir.display());
            return Exit::BAD_INPUT;
        }
    };
    if files.is_empty() {
        let _ = writeln!(err, "error: {}", empty_selection_message(dir));
        return Exit::BAD_INPUT;
    }
    if let Some(Err(e)) = junit.map(output::check_output_file) {
        let _ = writeln!(err, "error: {e}");
        return Exit::BAD_INPUT;
    }
    let cases: Vec<CheckCase> = files
        .iter()
        .map(|f| {
            let case = check_one(f, require_all_exercised);
            print_case(out, &case);
            case
        })
        .collect();
    finish_check(out, err, &cases, junit)
}

/// One scenario file's result in `natsim check`: its line, what went wrong, the invariants line,
/// and the wall-clock time its runs took (for JUnit only).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckCase {
    /// The scenario file as given.
    pub name: String,
    /// Its exit code.
    pub code: u8,
    /// The one-line result printed for it.
    pub line: String,
    /// What went wrong (the summary or the error), printed after the line unless it passed.
    pub detail: String,
    /// The invariants line (empty when the scenario did not run).
    pub invariants: String,
    /// Wall-clock time of its runs, in microseconds (JUnit's `time`; nothing else uses it).
    pub time_us: u64,
}

/// Loads and runs one scenario file against the real gateway.
pub fn check_one(f: &Path, require_all_exercised: bool) -> CheckCase {
    // JUnit's `time` is the wall-clock time a CI reader expects. It goes into the JUnit file
    // only; the simulation runs on virtual time and its report stays reproducible.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let (code, line, detail, invariants) = match load(f) {
        Err(e) => (
            exit::BAD_INPUT,
            format!("BAD INPUT {}", f.display()),
            e.to_string(),
            String::new(),
        ),
        Ok(sc) => match run_scenario(&sc, None, &|| Box::new(real_gateway)) {
            Err(e) => (
                exit::BAD_INPUT,
                format!("BAD INPUT {}", f.display()),
                e.to_string(),
                String::new(),
            ),
            Ok(o) => {
                let mut r = o.report;
                if require_all_exercised {
                    require_exercised(&mut r);
                }
                let inv = invariants_line(&r.invariants);
                let line = format!(
                    "{:<18} {} seed {} digest {} ({} events); {inv}",
                    r.result, r.file, r.seed, r.digest, r.sim.events
                );
                (r.exit_code, line, summary(&r), inv)
            }
        },
    };
    CheckCase {
        name: f.display().to_string(),
        code,
        line,
        detail,
        invariants,
        time_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    }
}

/// Prints a case's line, and its detail unless it passed.
pub fn print_case(out: &mut dyn Write, case: &CheckCase) {
    let _ = writeln!(out, "{}", case.line);
    if case.code != exit::OK {
        let _ = write!(out, "{}", case.detail);
        if !case.detail.ends_with('\n') {
            let _ = writeln!(out);
        }
    }
}

/// The summary line, the JUnit file if asked for, and the worst exit code of `cases`.
pub fn finish_check(
    out: &mut dyn Write,
    err: &mut dyn Write,
    cases: &[CheckCase],
    junit: Option<&Path>,
) -> Exit {
    let failed = cases.iter().filter(|c| c.code != exit::OK).count();
    let _ = writeln!(out, "{} scenarios, {} failed", cases.len(), failed);
    if let Some(j) = junit {
        let junit_cases: Vec<JunitCase> = cases
            .iter()
            .map(|c| JunitCase {
                name: c.name.clone(),
                code: c.code,
                detail: c.detail.clone(),
                invariants: c.invariants.clone(),
                time: std::time::Duration::from_micros(c.time_us),
            })
            .collect();
        let x = match junit::render(&junit_cases) {
            Ok(x) => x,
            Err(e) => {
                let _ = writeln!(err, "error: writing {}: {e}", j.display());
                return Exit::BAD_INPUT;
            }
        };
        if let Err(e) = output::write_atomic(j, x) {
            let _ = writeln!(err, "error: writing {}: {e}", j.display());
            return Exit::BAD_INPUT;
        }
    }
    Exit(cases.iter().map(|c| c.code).max().unwrap_or(exit::OK))
}

/// `natsim schema [--out PATH]`: the JSON Schema of scenario files (for editors), to a file or
/// stdout.
pub fn schema_cmd(out_path: Option<&Path>) -> Exit {
    let schema = json_schema() + "\n";
    match out_path {
        Some(p) => match output::write_atomic(p, schema) {
            Ok(()) => Exit::OK,
            Err(e) => Exit(output::print_error(&format_args!(
                "writing {}: {e}",
                p.display()
            ))),
        },
        None => Exit(output::print_all(exit::OK, &schema)),
    }
}
