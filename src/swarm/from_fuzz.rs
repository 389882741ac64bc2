//! `natsim swarm --from-fuzz FILE [--broken NAME] [--out DIR]`: a `sim_world` fuzz input (a
//! crash file libFuzzer wrote) to a minimised scenario file.
//!
//! The input is decoded by the harness's own decoder ([`WorldInput::decode`]), so the document
//! is exactly the world the fuzzer ran; from there it is a swarm failure like any other: run
//! against the chosen dataplane, minimised by [`super::shrink::minimise`], written with the
//! swarm's header and checked by loading the file back.

use std::path::{Path, PathBuf};

use super::cli::{
    MAX_SHRINK_RUNS, Origin, Reproduction, minimise_to_file, reproduce_command, reproduction_line,
    with_quiet_panics,
};
use super::fuzz_input::WorldInput;
use super::generate::describe;
use super::run::{Outcome, Target};
use crate::exit::Exit;

/// What converting one fuzz input gave.
#[derive(Clone, Debug)]
pub struct FuzzConversion {
    /// The decoded input.
    pub input: WorldInput,
    /// Its run against the dataplane.
    pub outcome: Outcome,
    /// The minimised scenario file, when the run failed.
    pub reproduction: Option<Reproduction>,
}

/// The scenario file a fuzz input named `name` (its file name) is written to.
pub fn scenario_path(out_dir: &Path, name: &str) -> PathBuf {
    out_dir.join(format!("{name}.yaml"))
}

/// Decodes `data` as a `sim_world` input, runs its world against `target`, and when that fails,
/// minimises it (at most `max_runs` runs) to [`scenario_path`]`(out_dir, name)`.
pub fn from_fuzz(
    data: &[u8],
    name: &str,
    target: Target,
    out_dir: &Path,
    max_runs: u32,
) -> FuzzConversion {
    let input = WorldInput::decode(data);
    let outcome = input.run(target);
    let reproduction = outcome.failure.as_ref().map(|failure| {
        let origin = Origin {
            what: format!("fuzz input {name}"),
            features: format!("{} (fuzz input: {input})", input.features()),
            seed: input.seed,
        };
        minimise_to_file(
            &input.document(),
            &origin,
            failure,
            &outcome.detail,
            &scenario_path(out_dir, name),
            target,
            max_runs,
        )
    });
    FuzzConversion {
        input,
        outcome,
        reproduction,
    }
}

/// `natsim swarm --from-fuzz FILE`: prints the world, the verdict, where the minimised file
/// went and the command that reproduces it. The exit code is the run's (0 when the input passes
/// and nothing is written, 4 for an invariant violation, ...), or 2 for an unreadable file or
/// unknown `--broken` name.
pub fn from_fuzz_cmd(path: &Path, broken: Option<&str>, out_dir: &Path) -> Exit {
    let target = match broken.map(Target::broken).transpose() {
        Ok(t) => t.unwrap_or(Target::Real),
        Err(e) => {
            return Exit(crate::output::print_error(&e));
        }
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            return Exit(crate::output::print_error(&format_args!(
                "reading {}: {e}",
                path.display()
            )));
        }
    };
    let name = path
        .file_name()
        .map_or_else(|| "fuzz-input".into(), |n| n.to_string_lossy().into_owned());
    let c = with_quiet_panics(|| from_fuzz(&data, &name, target, out_dir, MAX_SHRINK_RUNS));
    let mut text = format!("{name}: {} | {}\n", c.input, describe(&c.input.document()));
    match (&c.outcome.failure, &c.reproduction) {
        (Some(f), Some(rep)) => {
            text.push_str(&format!(
                "{name}: FAIL {f} against the {target}: {}\n",
                c.outcome.detail
            ));
            text.push_str(&format!("{name}: {}\n", reproduction_line(rep)));
            text.push_str(&format!(
                "reproduce: {}\n",
                reproduce_command(&rep.path, target)
            ));
        }
        _ => text.push_str(&format!(
            "{name}: pass against the {target}; nothing to write\n"
        )),
    }
    Exit(crate::output::print_all(c.outcome.exit_code, &text))
}
