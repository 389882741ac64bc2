//! `natsim replay CAPTURE [--config FILE] [--out DIR] [--inside PREFIX]... [--profile NAME]
//! [--profiles all|LIST] [--fix-checksums] [--speed X] [--verdicts] [--broken NAME]` as a library
//! function; `main.rs` parses the arguments and exits with the returned code.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use super::config::ReplayConfig;
use super::profiles::{parse_profiles, replay_profiles};
use super::run::replay_with;
use crate::check::Target;

/// Command-line options; each one that is set overrides the config file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplayCliOptions {
    /// `--out DIR`.
    pub out: Option<PathBuf>,
    /// `--inside PREFIX` (repeatable): replaces the inside prefixes.
    pub inside: Vec<IpNet>,
    /// `--profile NAME`.
    pub profile: Option<String>,
    /// `--profiles all|LIST`: replay under each profile and compare the verdicts
    /// ([`super::profiles`]); replaces `--profile`.
    pub profiles: Option<String>,
    /// `--fix-checksums`.
    pub fix_checksums: bool,
    /// `--speed X`.
    pub speed: Option<f64>,
    /// `--verdicts`: also write `verdicts.jsonl`.
    pub verdicts: bool,
    /// `--broken NAME`: replay against a deliberately broken dataplane (names as
    /// `natsim swarm --broken`), to see the invariant checks fail. Testing aid.
    pub broken: Option<String>,
    /// `--allow-truncated`: a capture that ends early (truncated or corrupt after some
    /// packets) is replayed up to that point with exit 0 instead of exit 2.
    pub allow_truncated: bool,
    /// `--dataplane linux`: replay against the kernel's NAT instead of the model (not with
    /// `--broken` or `--profiles`).
    pub kernel: Option<Target>,
}

impl ReplayCliOptions {
    /// Applies the options that are set to `config`.
    pub fn apply(&self, config: &mut ReplayConfig) {
        if let Some(out) = &self.out {
            config.out_dir = Some(out.clone());
        }
        if !self.inside.is_empty() {
            config.inside_prefixes = self.inside.clone();
        }
        if let Some(p) = &self.profile {
            config.profile = p.clone();
        }
        if self.fix_checksums {
            config.fix_checksums = true;
        }
        if let Some(s) = self.speed {
            config.speed = s;
        }
        if self.verdicts {
            config.verdicts = true;
        }
    }
}

/// Runs `natsim replay`: loads `config_path` (if any), applies `overrides`, replays `capture`,
/// prints every guess, the summary table and the files written. Returns the exit code: 0, or
/// 4 when an invariant was violated, or 2 when the capture ended early (truncated or corrupt
/// after some packets) and `--allow-truncated` was not given: the outputs then cover only the
/// packets before that point, which CI must not mistake for a complete replay. Errors
/// (unreadable capture or config, invalid option, output not writable) are returned; `main`
/// prints them and exits with 2.
pub fn replay_cmd(
    capture: &Path,
    config_path: Option<&Path>,
    overrides: ReplayCliOptions,
) -> anyhow::Result<u8> {
    let mut config = match config_path {
        Some(p) => ReplayConfig::load(p)?,
        None => ReplayConfig::default(),
    };
    overrides.apply(&mut config);
    config.validate()?;
    if let Some(spec) = &overrides.profiles {
        if overrides.broken.is_some() {
            anyhow::bail!("--profiles compares the real gateway's profiles; drop --broken");
        }
        if overrides.kernel.is_some() {
            anyhow::bail!(
                "--profiles compares the model's profiles; use `natsim diff` to compare with the kernel"
            );
        }
        let names = parse_profiles(spec).map_err(anyhow::Error::msg)?;
        let (cmp, json) = replay_profiles(capture, &config, &names)?;
        let mut out = std::io::stdout().lock();
        out.write_all(cmp.table().as_bytes())?;
        for r in &cmp.runs {
            writeln!(out, "wrote {}", r.out_dir.display())?;
        }
        writeln!(out, "wrote {}", json.display())?;
        let violations: u64 = cmp.runs.iter().map(|r| r.violations).sum();
        if violations > 0 {
            writeln!(
                out,
                "{violations} invariant violation(s); exit code {}",
                crate::exit::VIOLATION
            )?;
            return Ok(crate::exit::VIOLATION);
        }
        return Ok(crate::exit::OK);
    }
    let target = match (&overrides.broken, overrides.kernel) {
        (Some(_), Some(_)) => {
            anyhow::bail!("--broken replays against a broken model gateway; drop --dataplane linux")
        }
        (Some(name), None) => Target::broken(name).map_err(anyhow::Error::msg)?,
        (None, Some(k)) => {
            if let Target::Kernel(s) = k {
                s.validate().map_err(anyhow::Error::msg)?;
            }
            crate::kernel::preflight()?;
            k
        }
        (None, None) => Target::Real,
    };
    let outcome = replay_with(capture, &config, target)?;
    let mut out = std::io::stdout().lock();
    for g in &outcome.summary.guesses {
        writeln!(out, "guessed: {g}")?;
    }
    for c in &outcome.summary.classified_first {
        writeln!(out, "classified: {c}")?;
    }
    if let Some(e) = &outcome.summary.capture_error {
        writeln!(out, "warning: capture ended early: {e}")?;
    }
    out.write_all(outcome.table.as_bytes())?;
    for f in &outcome.files {
        writeln!(out, "wrote {}", f.display())?;
    }
    if outcome.exit_code != 0 {
        writeln!(
            out,
            "{} invariant violation(s); exit code {}",
            outcome.summary.violation_total(),
            outcome.exit_code
        )?;
    }
    if let Some(e) = &outcome.summary.capture_error
        && !overrides.allow_truncated
    {
        out.flush()?;
        eprintln!(
            "error: {e}; the outputs cover only the {} packet(s) before that point (pass --allow-truncated to accept a capture that ends early)",
            outcome.summary.replayed_packets
        );
        return Ok(outcome.exit_code.max(crate::exit::BAD_INPUT));
    }
    Ok(outcome.exit_code)
}
