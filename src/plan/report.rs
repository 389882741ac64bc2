//! Report rendering: `report.md` (tables for people), `report.json` (every number, stable key
//! order) and one SVG per plot. All output is a pure function of the plan and the results.
//!
//! `report.md` and `report.json` are written to a `Write` as they are produced:
//! [`write_plan_report`] streams them into their files (a 100,000-point plan writes over 200 MB
//! that never sits in memory), [`render`] collects the same bytes in memory for tests.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::decide::{Basis, interval_text};
use super::file::{API_VERSION, Plan};
use super::mdtable::MdTable;
use super::model::{percent, sig3};
use super::params::PointParams;
use super::plot::render_svg;
use super::run::{Comparison, PlanResult, PointResult};
use crate::output::AtomicFile;

/// A rendered report, before it is written anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedReport {
    /// `report.md`.
    pub markdown: String,
    /// `report.json`.
    pub json: String,
    /// Plot file name and SVG text, in plan order.
    pub svgs: Vec<(String, String)>,
}

#[derive(Serialize)]
struct SweepJson {
    param: &'static str,
    values: Vec<String>,
}

#[derive(Serialize)]
struct PlanJson<'a> {
    name: &'a str,
    description: &'a str,
    source: &'a str,
    seed: u64,
    blocking_max: Option<f64>,
    sweeps: Vec<SweepJson>,
    points: usize,
}

#[derive(Serialize)]
struct SummaryJson<'a> {
    failing_points: usize,
    disagreements: usize,
    simulation: &'static str,
    combined: &'a [Combined],
}

/// One alternative's combined recommendation: the setting that covers every condition swept
/// under it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Combined {
    /// The alternative (`rules = gcp`), empty when the plan sweeps no choice.
    pub alternative: String,
    /// Largest recommended P over its reachable points (per-NIC rules).
    pub ports_per_nic: Option<u32>,
    /// IPs per family: at that P for its largest fleet, or the largest pooled recommendation.
    pub ips_per_family: Option<u64>,
    /// NICs behind the largest fleet among its reachable points.
    pub nics: u64,
    /// Points no P or IP count brings under the target.
    pub unreachable_points: Vec<usize>,
}

#[derive(Serialize)]
struct ReportJson<'a> {
    api_version: &'static str,
    kind: &'static str,
    plan: PlanJson<'a>,
    summary: SummaryJson<'a>,
    /// The first point's fully resolved parameters; every other point differs from it only in
    /// its swept coordinates (listed in `plan.sweeps`), so they are not repeated per point.
    first_point_params: Option<&'a PointParams>,
    // `points` follow, written by `write_json` one compact line each.
}

/// One point in `report.json`: its coordinates (in `plan.sweeps` order) and its figures.
#[derive(Serialize)]
struct PointJson<'a> {
    index: usize,
    seed: u64,
    coordinates: Vec<&'a str>,
    analytic: &'a super::model::AnalyticPoint,
    simulated: Option<&'a super::run::SimulatedPoint>,
    comparison: &'a Comparison,
    decision: &'a super::decide::Decision,
}

/// The combined recommendation per alternative (see [`super::answer::groups`]).
pub fn combined(plan: &Plan, result: &PlanResult) -> Vec<Combined> {
    super::answer::groups(plan, result, false)
        .into_iter()
        .map(|g| {
            let points: Vec<&PointResult> = g.points.iter().map(|&i| &result.points[i]).collect();
            let per_nic = points
                .iter()
                .all(|p| p.analytic.ports_per_nic_effective.is_some());
            let (reachable, unreachable): (Vec<&PointResult>, Vec<&PointResult>) =
                points.into_iter().partition(|p| {
                    if per_nic {
                        p.decision.recommended_ports_per_nic.is_some()
                    } else {
                        p.decision.recommended_ips.is_some()
                    }
                });
            let nics = reachable.iter().map(|p| p.params.nics).max().unwrap_or(0);
            let ports = if per_nic {
                reachable
                    .iter()
                    .filter_map(|p| p.decision.recommended_ports_per_nic)
                    .max()
            } else {
                None
            };
            let ips = match ports {
                Some(p) => Some(nics.div_ceil(u64::from(super::analytic::PORTS_PER_IP / p))),
                None => reachable
                    .iter()
                    .filter_map(|p| p.decision.recommended_ips)
                    .max(),
            };
            Combined {
                alternative: g.label,
                ports_per_nic: ports,
                ips_per_family: ips,
                nics,
                unreachable_points: unreachable.iter().map(|p| p.params.index).collect(),
            }
        })
        .collect()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| v.to_string())
}

fn opt_f(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), sig3)
}

fn comparison_text(c: &Comparison) -> String {
    match c {
        Comparison::NotRun => "not run".to_string(),
        Comparison::NotSimulated { .. } => "not simulated".to_string(),
        Comparison::NoFlows => "no flows offered".to_string(),
        Comparison::Compared {
            simulated_blocking,
            simulated_interval,
            simulated_hot,
            simulated_hot_interval,
            agrees,
            ..
        } => {
            let hot = simulated_hot.map_or_else(String::new, |h| {
                format!(
                    "; hot key {}{}",
                    percent(h),
                    interval_text(simulated_hot_interval.as_ref())
                )
            });
            format!(
                "{}: fleet {}{}{hot}",
                if *agrees { "agrees" } else { "DISAGREES" },
                percent(*simulated_blocking),
                interval_text(simulated_interval.as_ref()),
            )
        }
    }
}

/// Percentage points with three significant digits; a difference that rounds to zero is `0`
/// (never `-0`).
pub fn pp(difference: f64) -> String {
    let text = sig3(difference * 100.0);
    if text
        .trim_start_matches(['-', '+'])
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        "0".to_string()
    } else {
        text
    }
}

fn coordinate_cells(plan: &Plan, params: &PointParams) -> Vec<String> {
    plan.sweeps
        .iter()
        .map(|s| opt(params.coordinate(s.param.path())))
        .collect()
}

fn sweep_headers(plan: &Plan) -> Vec<String> {
    plan.sweeps
        .iter()
        .map(|s| s.param.path().to_string())
        .collect()
}

/// Writes `report.md` to `out`. Long tables and lists go out row by row, so memory does not grow
/// with the report (a 100,000-point plan writes tens of megabytes of Markdown).
fn write_markdown(
    out: &mut dyn Write,
    plan: &Plan,
    result: &PlanResult,
    combined: &[Combined],
    svgs: &[(String, String)],
) -> io::Result<()> {
    let target = plan.points.first().map(|p| p.blocking_max);
    write!(out, "# {}\n\n", plan.report.title)?;
    if !plan.description.is_empty() {
        write!(out, "{}\n\n", plan.description.trim())?;
    }
    write!(
        out,
        "- plan: `{}` (`{}`), seed {}\n- points: {}\n- target: blocking ≤ {}\n- simulation: {}\n\n",
        plan.name,
        plan.source_name,
        plan.seed,
        result.points.len(),
        target.map_or_else(|| "n/a".to_string(), percent),
        if result.simulated { "run" } else { "not run" }
    )?;
    out.write_all(super::answer::answer(plan, result).as_bytes())?;
    out.write_all(
        "One verdict per point: blocking on the hottest scope key against the target, from \
         Erlang-B (Poisson arrivals, refused flows not retried), or from the simulation when it \
         blocks more (then the row says why). Little's law is shown as offered against carried \
         busy ports; carried ports never exceed P. See `docs/planning.md`.\n\n"
            .as_bytes(),
    )?;

    out.write_all(b"## Points\n\n")?;
    let mut header = vec!["#".to_string()];
    header.extend(sweep_headers(plan));
    header.extend(
        [
            "rules",
            "profile",
            "scope",
            "P",
            "NICs/IP",
            "IPs needed",
            "IPs",
            "busy ports/NIC",
            "hot key offered → carried ports",
            "blocking hot key (Erlang-B)",
            "blocking fleet (Erlang-B)",
            "max rate/NIC at target",
            "simulation (95% interval)",
            "verdict",
        ]
        .map(String::from),
    );
    let mut t = MdTable::new(out, header);
    for p in &result.points {
        let (params, a) = (&p.params, &p.analytic);
        let mut row = vec![params.index.to_string()];
        row.extend(coordinate_cells(plan, params));
        row.extend([
            params.gateway.rules.as_str().to_string(),
            params.gateway.profile.as_str().to_string(),
            params.gateway.limit_scope.name().to_string(),
            opt(a.ports_per_nic_effective),
            opt(a.nics_per_ip),
            opt(a.ips_needed),
            params.gateway.ips.to_string(),
            sig3(a.busy_ports_nic),
            format!("{} → {}", sig3(a.busy_ports_hot), sig3(a.carried_ports_hot)),
            percent(a.blocking_hot),
            percent(a.blocking_fleet),
            opt_f(a.max_rate_per_s_at_target),
            comparison_text(&p.comparison),
            verdict_text(p),
        ]);
        t.add_row(row)?;
    }
    t.finish()?;
    out.write_all(b"\n\n")?;
    if result.points.iter().any(|p| p.decision.why.is_some()) {
        out.write_all(
            "Points judged on the simulated figure (worse than Erlang-B); their verdict and \
             recommendation use it:\n\n"
                .as_bytes(),
        )?;
        for p in &result.points {
            if let Some(w) = &p.decision.why {
                writeln!(
                    out,
                    "- point {}: judged on the simulation: {w}",
                    p.params.index
                )?;
            }
        }
        out.write_all(b"\n")?;
    }

    out.write_all(b"## Recommendations\n\n")?;
    out.write_all(
        "Smallest power-of-two P that keeps every hottest scope key under the target, and the \
         IPs per family that P needs for the fleet. Pooled providers (AWS, Azure) have no P: \
         the IP count is the smallest that keeps the hottest destination under the target, \
         within the provider's limit. Where the simulation blocked more than Erlang-B, P is \
         sized for the equivalent offered load (the load at which Erlang-B gives the simulated \
         blocking; factor in the last column), an extrapolation from the simulated P.\n\n"
            .as_bytes(),
    )?;
    let mut header = vec!["#".to_string()];
    header.extend(sweep_headers(plan));
    header.extend(
        [
            "rules",
            "recommended P",
            "IPs per family",
            "public addresses",
            "judged on",
        ]
        .map(String::from),
    );
    let mut t = MdTable::new(out, header);
    for p in &result.points {
        let (params, a, d) = (&p.params, &p.analytic, &p.decision);
        let mut row = vec![params.index.to_string()];
        row.extend(coordinate_cells(plan, params));
        let families = params.gateway.ip_families.len() as u64;
        row.extend([
            params.gateway.rules.as_str().to_string(),
            if a.ports_per_nic_effective.is_some() {
                d.recommended_ports_per_nic
                    .map_or_else(|| "none ≤ 32768".to_string(), |p| p.to_string())
            } else {
                "n/a".to_string()
            },
            d.recommended_ips
                .map_or_else(|| "unreachable".to_string(), |n| n.to_string()),
            opt(d.recommended_ips.map(|n| n * families)),
            match d.basis {
                Basis::ErlangB => "Erlang-B".to_string(),
                Basis::Simulated => format!("simulation (load ×{})", sig3(d.load_factor)),
            },
        ]);
        t.add_row(row)?;
    }
    t.finish()?;
    out.write_all(b"\n\n")?;
    out.write_all(combined_section(combined).as_bytes())?;
    let has_findings =
        |p: &PointResult| !p.decision.reasons.is_empty() || !p.analytic.verdict.notes.is_empty();
    if result.points.iter().any(has_findings) {
        out.write_all(b"## Findings\n\n")?;
        for p in result.points.iter().filter(|p| has_findings(p)) {
            for r in &p.decision.reasons {
                writeln!(out, "- point {}: FAIL: {r}", p.params.index)?;
            }
            for n in &p.analytic.verdict.notes {
                writeln!(out, "- point {}: note: {n}", p.params.index)?;
            }
        }
        out.write_all(b"\n")?;
    }

    out.write_all(b"## Per protocol\n\n")?;
    out.write_all(
        "Hold = mean time a flow keeps its port (life + hold after close, or + idle timeout and \
         hold after expiry). Offered load is in Erlangs on the hottest key (fleet-wide for \
         pooled providers).\n\n"
            .as_bytes(),
    )?;
    let mut t = MdTable::new(
        out,
        [
            "#",
            "protocol",
            "share",
            "rate/s per NIC",
            "hold s",
            "busy ports/NIC",
            "offered load hot key",
            "ports on key",
            "blocking hot key",
            "blocking weighted",
            "Little's-law max rate/NIC",
        ]
        .map(String::from)
        .to_vec(),
    );
    for p in &result.points {
        for l in &p.analytic.protocols {
            t.add_row(vec![
                p.params.index.to_string(),
                l.protocol.as_str().to_string(),
                percent(l.share),
                sig3(l.rate_per_s),
                if l.supported {
                    sig3(l.hold_s)
                } else {
                    "dropped".to_string()
                },
                sig3(l.busy_ports_nic),
                sig3(l.offered_hot),
                l.servers.to_string(),
                percent(l.blocking_hot),
                percent(l.blocking_weighted),
                opt_f(l.littles_law_max_rate_per_s),
            ])?;
        }
    }
    t.finish()?;
    out.write_all(b"\n\n")?;

    out.write_all(b"## Simulation\n\n")?;
    if result.simulated {
        write_simulation_section(out, plan, result)?;
    } else {
        out.write_all(b"simulation: not run. Only analytic figures are shown.\n\n")?;
    }

    if !svgs.is_empty() {
        out.write_all(b"## Plots\n\n")?;
        for (spec, (file, _)) in plan.report.plots.iter().zip(svgs) {
            write!(out, "![{}]({file})\n\n", spec.title)?;
        }
    }
    Ok(())
}
fn verdict_text(p: &PointResult) -> String {
    let ok = if p.decision.ok { "ok" } else { "FAIL" };
    match p.decision.basis {
        Basis::ErlangB => ok.to_string(),
        Basis::Simulated => format!("{ok} (sim {})", percent(p.decision.blocking)),
    }
}

/// Recommendations that combine only compatible points: points that differ in what the
/// operator chooses (rules, profile, timers, scope; P and IPs are what is recommended) are
/// alternatives and never merged; points that differ in conditions (traffic, fleet) are
/// combined into one setting that covers them all.
fn combined_section(combined: &[Combined]) -> String {
    let mut md = String::from(
        "**Combined.** One setting per alternative that covers every condition swept under it \
         (P and IPs are what is recommended, so they are not alternatives here); alternatives \
         are never merged:\n\n",
    );
    for c in combined {
        let label = if c.alternative.is_empty() {
            "all points"
        } else {
            c.alternative.as_str()
        };
        let setting = match (c.ports_per_nic, c.ips_per_family) {
            (Some(p), Some(ips)) => format!("P = {p} and {ips} IPs per family ({} NICs)", c.nics),
            (None, Some(ips)) => format!("{ips} IPs"),
            _ => "no setting meets the target at any of its points".to_string(),
        };
        let list = |v: &[usize]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let covers = if c.unreachable_points.is_empty() {
            "covers all its points".to_string()
        } else if c.ips_per_family.is_none() {
            format!("points {}", list(&c.unreachable_points))
        } else {
            format!(
                "covers its other points; points {} cannot meet the target with any P or IP \
                 count",
                list(&c.unreachable_points)
            )
        };
        md.push_str(&format!("- {label}: {setting}; {covers}.\n"));
    }
    md.push('\n');
    md
}

/// "n of N NICs" for one stratum of a sample.
fn stratum_text(sampled: u64, scale: f64) -> String {
    format!("{sampled} (×{})", sig3(scale))
}

fn write_simulation_section(
    out: &mut dyn Write,
    plan: &Plan,
    result: &PlanResult,
) -> io::Result<()> {
    write!(
        out,
        "Each point ran in natsim's packet-level simulator on a sample of NICs (the fleet's NICs \
         are independent under per-NIC blocks); counts are scaled to the fleet by the factor in \
         brackets (fleet NICs per sampled NIC), separately for NICs with and without a block. \
         Only flows after warm-up count. A refused flow is one whose first packet was refused; \
         drops count packets (a refused TCP client retransmits its SYN). Mean ports are \
         time-averaged per NIC (carried load, to compare with Little's law); peaks are over the \
         sampled NICs. Intervals are 95%: the wider of a Wilson interval and a batch-means \
         interval over ten batches of the window (refusals come in bursts), with the sampled \
         flows behind each; a comparison agrees when every Erlang-B figure lies inside its \
         interval{}. See `docs/planning.md`.\n\n",
        if plan.report.tolerance_blocking > 0.0 {
            format!(" or within {} pp", pp(plan.report.tolerance_blocking))
        } else {
            String::new()
        }
    )?;
    let mut t = MdTable::new(
        out,
        [
            "#",
            "NICs sampled with block",
            "without block",
            "run s (warm-up)",
            "offered",
            "refused",
            "refused by reason",
            "drops by reason (packets)",
            "mean ports/NIC",
            "mean ports hot key",
            "peak ports/NIC",
            "peak ports/key",
            "comparison",
        ]
        .map(String::from)
        .to_vec(),
    );
    for p in &result.points {
        let Some(s) = &p.simulated else { continue };
        let list = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        t.add_row(vec![
            p.params.index.to_string(),
            stratum_text(s.sample.nics_allocated, s.sample.scale_allocated),
            stratum_text(s.sample.nics_unallocated, s.sample.scale_unallocated),
            format!(
                "{} ({})",
                sig3(s.sample.duration_s),
                sig3(s.sample.warmup_s)
            ),
            s.flows_offered.to_string(),
            s.flows_refused.to_string(),
            list(&s.refused_by_reason),
            list(&s.drops_by_reason),
            sig3(s.mean_ports_in_use_nic),
            sig3(s.mean_ports_in_use_hot_key),
            s.peak_ports_in_use_nic.to_string(),
            s.peak_ports_in_use_key.to_string(),
            comparison_text(&p.comparison),
        ])?;
    }
    t.finish()?;
    out.write_all(b"\n\n")?;
    let mut not_simulated = result.points.iter().filter_map(|p| match &p.comparison {
        Comparison::NotSimulated { reason } => Some((p.params.index, reason)),
        _ => None,
    });
    if let Some(first) = not_simulated.next() {
        for (index, reason) in std::iter::once(first).chain(not_simulated) {
            writeln!(out, "- point {index}: not simulated: {reason}")?;
        }
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes `report.json` to `out`: pretty-printed, except that each point is one compact line, so
/// the file grows by one line per point (no indentation blobs) and a diff shows which points
/// changed. Points are serialised one at a time, straight to `out`.
fn write_json(
    out: &mut dyn Write,
    plan: &Plan,
    result: &PlanResult,
    combined: &[Combined],
) -> io::Result<()> {
    let head = ReportJson {
        api_version: API_VERSION,
        kind: "PlanReport",
        plan: PlanJson {
            name: &plan.name,
            description: &plan.description,
            source: &plan.source_name,
            seed: plan.seed,
            blocking_max: plan.points.first().map(|p| p.blocking_max),
            sweeps: plan
                .sweeps
                .iter()
                .map(|s| SweepJson {
                    param: s.param.path(),
                    values: s.values.iter().map(|(v, _)| v.to_string()).collect(),
                })
                .collect(),
            points: result.points.len(),
        },
        summary: SummaryJson {
            failing_points: result.failing_points(),
            disagreements: result.disagreements(),
            simulation: if result.simulated { "run" } else { "not run" },
            combined,
        },
        first_point_params: result.points.first().map(|p| &p.params),
    };
    let text = serde_json::to_string_pretty(&head)?;
    // Reopen the object (drop its closing brace) and append the points, one per line.
    let open = text.trim_end().trim_end_matches('}').trim_end().len();
    out.write_all(&text.as_bytes()[..open])?;
    out.write_all(b",\n  \"points\": [")?;
    for (i, p) in result.points.iter().enumerate() {
        out.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
        let point = PointJson {
            index: p.params.index,
            seed: p.params.seed,
            coordinates: p
                .params
                .coordinates
                .iter()
                .map(|c| c.value.as_str())
                .collect(),
            analytic: &p.analytic,
            simulated: p.simulated.as_ref(),
            comparison: &p.comparison,
            decision: &p.decision,
        };
        serde_json::to_writer(&mut *out, &point)?;
    }
    out.write_all(b"\n  ]\n}\n")
}

/// The plots, rendered in plan order: file name and SVG text.
pub fn render_svgs(plan: &Plan, result: &PlanResult) -> Result<Vec<(String, String)>, String> {
    plan.report
        .plots
        .iter()
        .map(|spec| render_svg(plan, spec, result).map(|svg| (spec.file.clone(), svg)))
        .collect()
}

/// Renders the report in memory (the same bytes [`write_plan_report`] writes).
pub fn render(plan: &Plan, result: &PlanResult) -> Result<RenderedReport, String> {
    let svgs = render_svgs(plan, result)?;
    let combined = combined(plan, result);
    let mut json = Vec::new();
    write_json(&mut json, plan, result, &combined).map_err(|e| format!("report.json: {e}"))?;
    let mut markdown = Vec::new();
    write_markdown(&mut markdown, plan, result, &combined, &svgs)
        .map_err(|e| format!("report.md: {e}"))?;
    let text = |bytes: Vec<u8>, name: &str| {
        String::from_utf8(bytes).map_err(|e| format!("{name}: not UTF-8: {e}"))
    };
    Ok(RenderedReport {
        markdown: text(markdown, "report.md")?,
        json: text(json, "report.json")?,
        svgs,
    })
}

/// Writes one file of the report through [`AtomicFile`]: complete or absent, never truncated.
fn write_file(
    out_dir: &Path,
    name: &str,
    written: &mut Vec<PathBuf>,
    content: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let path = out_dir.join(name);
    let mut file = AtomicFile::create(&path)?;
    content(&mut file)?;
    file.commit()?;
    written.push(path);
    Ok(())
}

/// Writes `report.md`, `report.json` and the plots (`svgs`, from [`render_svgs`]) into
/// `out_dir` (created if missing), streaming the Markdown and JSON to their files instead of
/// building them in memory; returns the paths written, in that order. Each file is written
/// atomically ([`AtomicFile`]).
pub fn write_plan_report(
    plan: &Plan,
    result: &PlanResult,
    svgs: &[(String, String)],
    out_dir: &Path,
) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir)?;
    let combined = combined(plan, result);
    let mut written = Vec::new();
    write_file(out_dir, "report.md", &mut written, |out| {
        write_markdown(out, plan, result, &combined, svgs)
    })?;
    write_file(out_dir, "report.json", &mut written, |out| {
        write_json(out, plan, result, &combined)
    })?;
    for (name, svg) in svgs {
        write_file(out_dir, name, &mut written, |out| {
            out.write_all(svg.as_bytes())
        })?;
    }
    Ok(written)
}

/// Writes a report rendered in memory ([`render`]) into `out_dir` (created if missing); returns
/// the paths written, in the order of [`write_plan_report`].
pub fn write_report(report: &RenderedReport, out_dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir)?;
    let mut written = Vec::new();
    let files = [
        ("report.md", &report.markdown),
        ("report.json", &report.json),
    ];
    for (name, text) in files
        .into_iter()
        .chain(report.svgs.iter().map(|(n, s)| (n.as_str(), s)))
    {
        write_file(out_dir, name, &mut written, |out| {
            out.write_all(text.as_bytes())
        })?;
    }
    Ok(written)
}
