//! Report rendering: `report.md` (tables for people), `report.json` (every number, stable key
//! order) and one SVG per plot. All output is a pure function of the plan and the results.

use std::path::{Path, PathBuf};

use comfy_table::{ContentArrangement, Table, presets::ASCII_MARKDOWN};
use serde::Serialize;

use super::file::{API_VERSION, Plan};
use super::model::{percent, sig3};
use super::params::PointParams;
use super::plot::render_svg;
use super::run::{Comparison, PlanResult, PointResult};

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
struct SummaryJson {
    failing_points: usize,
    disagreements: usize,
    simulation: &'static str,
    worst_case: WorstCase,
}

/// Settings that meet the target at every point at once.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorstCase {
    /// Largest recommended P over all points using per-NIC rules (`None` if any point cannot
    /// meet the target with any P, or no point uses per-NIC rules).
    pub ports_per_nic: Option<u32>,
    /// IPs per family needed at that P for the largest fleet.
    pub ips_at_ports_per_nic: Option<u64>,
    /// Points that cannot meet the target by any P or IP count.
    pub unreachable_points: Vec<usize>,
}

#[derive(Serialize)]
struct ReportJson<'a> {
    api_version: &'static str,
    kind: &'static str,
    plan: PlanJson<'a>,
    summary: SummaryJson,
    points: &'a [PointResult],
}

/// Computes the settings that satisfy every point.
pub fn worst_case(result: &PlanResult) -> WorstCase {
    let mut ports: Option<u32> = None;
    let mut nics_max = 0_u64;
    let mut unreachable = Vec::new();
    let mut any_per_nic = false;
    for p in &result.points {
        let a = &p.analytic;
        if a.ports_per_nic_effective.is_some() {
            any_per_nic = true;
            nics_max = nics_max.max(p.params.nics);
            match a.recommended_ports_per_nic {
                Some(rp) => ports = Some(ports.map_or(rp, |q| q.max(rp))),
                None => unreachable.push(p.params.index),
            }
        } else if a.recommended_ips.is_none() {
            unreachable.push(p.params.index);
        }
    }
    let ports = ports.filter(|_| any_per_nic && unreachable.is_empty());
    WorstCase {
        ports_per_nic: ports,
        ips_at_ports_per_nic: ports
            .map(|p| nics_max.div_ceil(u64::from(super::analytic::PORTS_PER_IP / p))),
        unreachable_points: unreachable,
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| v.to_string())
}

fn opt_f(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), sig3)
}

fn table(header: Vec<String>) -> Table {
    let mut t = Table::new();
    t.load_style(ASCII_MARKDOWN)
        .force_no_tty()
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    t
}

fn comparison_text(c: &Comparison) -> String {
    match c {
        Comparison::NotRun => "not run".to_string(),
        Comparison::NotSimulated { .. } => "not simulated".to_string(),
        Comparison::NoFlows => "no flows offered".to_string(),
        Comparison::Compared {
            simulated_blocking,
            difference,
            agrees,
            ..
        } => format!(
            "{} (sim {}, Δ {:+} pp)",
            if *agrees { "agrees" } else { "DISAGREES" },
            percent(*simulated_blocking),
            sig3(difference * 100.0)
        ),
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

fn markdown(
    plan: &Plan,
    result: &PlanResult,
    worst: &WorstCase,
    svgs: &[(String, String)],
) -> String {
    let mut md = String::new();
    let target = plan.points.first().map(|p| p.blocking_max);
    md.push_str(&format!("# {}\n\n", plan.report.title));
    if !plan.description.is_empty() {
        md.push_str(&format!("{}\n\n", plan.description.trim()));
    }
    md.push_str(&format!(
        "- plan: `{}` (`{}`), seed {}\n- points: {}\n- target: blocking ≤ {}\n- simulation: {}\n\n",
        plan.name,
        plan.source_name,
        plan.seed,
        result.points.len(),
        target.map_or_else(|| "n/a".to_string(), percent),
        if result.simulated { "run" } else { "not run" }
    ));
    md.push_str(
        "Analytic model: Little's law for mean busy ports; Erlang-B (Poisson arrivals, lost \
         flows are not retried) for blocking on the hottest scope key. See `docs/planning.md`.\n\n",
    );

    md.push_str("## Points\n\n");
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
            "busy ports hot key",
            "blocking hot key",
            "blocking fleet",
            "max rate/NIC at target",
            "verdict",
            "simulation",
        ]
        .map(String::from),
    );
    let mut t = table(header);
    for p in &result.points {
        let (params, a) = (&p.params, &p.analytic);
        let mut row = vec![params.index.to_string()];
        row.extend(coordinate_cells(plan, params));
        row.extend([
            params.gateway.rules.as_str().to_string(),
            params.gateway.profile.as_str().to_string(),
            params.gateway.limit_scope.as_str().to_string(),
            opt(a.ports_per_nic_effective),
            opt(a.nics_per_ip),
            opt(a.ips_needed),
            params.gateway.ips.to_string(),
            sig3(a.busy_ports_nic),
            sig3(a.busy_ports_hot),
            percent(a.blocking_hot),
            percent(a.blocking_fleet),
            opt_f(a.max_rate_per_s_at_target),
            if a.verdict.ok { "ok" } else { "FAIL" }.to_string(),
            comparison_text(&p.comparison),
        ]);
        t.add_row(row);
    }
    md.push_str(&format!("{t}\n\n"));

    md.push_str("## Recommendations\n\n");
    md.push_str(
        "Smallest power-of-two P that keeps every hottest scope key under the target, and the \
         IPs per family that P needs for the fleet. Pooled providers (AWS, Azure) have no P: \
         the IP count is the smallest that keeps the hottest destination under the target, \
         within the provider's limit.\n\n",
    );
    let mut header = vec!["#".to_string()];
    header.extend(sweep_headers(plan));
    header.extend(
        [
            "rules",
            "recommended P",
            "IPs per family",
            "public addresses",
        ]
        .map(String::from),
    );
    let mut t = table(header);
    for p in &result.points {
        let (params, a) = (&p.params, &p.analytic);
        let mut row = vec![params.index.to_string()];
        row.extend(coordinate_cells(plan, params));
        let families = params.gateway.ip_families.len() as u64;
        row.extend([
            params.gateway.rules.as_str().to_string(),
            if a.ports_per_nic_effective.is_some() {
                a.recommended_ports_per_nic
                    .map_or_else(|| "none ≤ 32768".to_string(), |p| p.to_string())
            } else {
                "n/a".to_string()
            },
            a.recommended_ips
                .map_or_else(|| "unreachable".to_string(), |n| n.to_string()),
            opt(a.recommended_ips.map(|n| n * families)),
        ]);
        t.add_row(row);
    }
    md.push_str(&format!("{t}\n\n"));
    match worst.ports_per_nic {
        Some(p) => md.push_str(&format!(
            "**Every point at once:** P = {p}, {} IPs per family.\n\n",
            opt(worst.ips_at_ports_per_nic)
        )),
        None if !worst.unreachable_points.is_empty() => md.push_str(&format!(
            "**Every point at once:** not reachable; points {} cannot meet the target.\n\n",
            worst
                .unreachable_points
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => {}
    }

    let failing: Vec<&PointResult> = result
        .points
        .iter()
        .filter(|p| !p.analytic.verdict.reasons.is_empty() || !p.analytic.verdict.notes.is_empty())
        .collect();
    if !failing.is_empty() {
        md.push_str("## Findings\n\n");
        for p in failing {
            for r in &p.analytic.verdict.reasons {
                md.push_str(&format!("- point {}: FAIL: {r}\n", p.params.index));
            }
            for n in &p.analytic.verdict.notes {
                md.push_str(&format!("- point {}: note: {n}\n", p.params.index));
            }
        }
        md.push('\n');
    }

    md.push_str("## Per protocol\n\n");
    md.push_str(
        "Hold = mean time a flow keeps its port (life + hold after close, or + idle timeout and \
         hold after expiry). Offered load is in Erlangs on the hottest key (fleet-wide for \
         pooled providers).\n\n",
    );
    let mut t = table(
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
            ]);
        }
    }
    md.push_str(&format!("{t}\n\n"));

    md.push_str("## Simulation\n\n");
    if result.simulated {
        md.push_str(&simulation_section(plan, result));
    } else {
        md.push_str("simulation: not run. Only analytic figures are shown.\n\n");
    }

    if !svgs.is_empty() {
        md.push_str("## Plots\n\n");
        for (spec, (file, _)) in plan.report.plots.iter().zip(svgs) {
            md.push_str(&format!("![{}]({file})\n\n", spec.title));
        }
    }
    md
}

/// "n of N NICs" for one stratum of a sample.
fn stratum_text(sampled: u64, scale: f64) -> String {
    format!("{sampled} (×{})", sig3(scale))
}

fn simulation_section(plan: &Plan, result: &PlanResult) -> String {
    let mut md = String::new();
    md.push_str(&format!(
        "Each point ran in natsim's packet-level simulator on a sample of NICs (the fleet's NICs \
         are independent under per-NIC blocks); counts are scaled to the fleet by the factor in \
         brackets (fleet NICs per sampled NIC), separately for NICs with and without a block. \
         Only flows after warm-up count. A refused flow is one whose first packet was refused; \
         drops count packets (a refused TCP client retransmits its SYN). Mean ports are \
         time-averaged per NIC (carried load, to compare with Little's law); peaks are over the \
         sampled NICs. Agreement tolerance: ±{} pp of fleet blocking. See `docs/planning.md`.\n\n",
        sig3(plan.report.tolerance_blocking * 100.0)
    ));
    let mut t = table(
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
    let mut unsimulated = Vec::new();
    for p in &result.points {
        if let Comparison::NotSimulated { reason } = &p.comparison {
            unsimulated.push(format!(
                "- point {}: not simulated: {reason}\n",
                p.params.index
            ));
        }
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
        ]);
    }
    md.push_str(&format!("{t}\n\n"));
    if !unsimulated.is_empty() {
        md.push_str(&unsimulated.concat());
        md.push('\n');
    }
    md
}

/// Renders the report in memory.
pub fn render(plan: &Plan, result: &PlanResult) -> Result<RenderedReport, String> {
    let svgs = plan
        .report
        .plots
        .iter()
        .map(|spec| render_svg(plan, spec, result).map(|svg| (spec.file.clone(), svg)))
        .collect::<Result<Vec<_>, _>>()?;
    let worst = worst_case(result);
    let json = ReportJson {
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
            worst_case: worst.clone(),
        },
        points: &result.points,
    };
    let mut json = serde_json::to_string_pretty(&json).map_err(|e| format!("report.json: {e}"))?;
    json.push('\n');
    Ok(RenderedReport {
        markdown: markdown(plan, result, &worst, &svgs),
        json,
        svgs,
    })
}

/// Writes `report.md`, `report.json` and the plots into `out_dir` (created if missing); returns
/// the paths written, in that order.
pub fn write_report(report: &RenderedReport, out_dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir)?;
    let mut written = Vec::new();
    let mut write = |name: &str, text: &str| -> std::io::Result<()> {
        let path = out_dir.join(name);
        crate::output::write_atomic(&path, text)?;
        written.push(path);
        Ok(())
    };
    write("report.md", &report.markdown)?;
    write("report.json", &report.json)?;
    for (name, svg) in &report.svgs {
        write(name, svg)?;
    }
    Ok(written)
}
