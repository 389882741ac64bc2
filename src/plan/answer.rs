//! The one-paragraph answer at the top of a report, and the grouping of points into
//! alternatives (what the operator chooses) and conditions (what the traffic does).
//!
//! A swept `gateway.*` parameter is a choice: its values are alternatives that cannot all apply
//! at once. Any other swept parameter (traffic, fleet, target) is a condition: one setting must
//! cover all its values.

use super::file::Plan;
use super::model::{percent, sig3};
use super::run::PlanResult;
use super::settings::Param;

/// Points that share one alternative (the same value of every swept choice).
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// `rules=gcp, ports_per_nic=64`, or empty when nothing is chosen by a sweep.
    pub label: String,
    /// Point indices, in order.
    pub points: Vec<usize>,
}

fn is_choice(param: Param, with_sizing: bool) -> bool {
    let path = param.path();
    path.starts_with("gateway.")
        && (with_sizing || !matches!(param, Param::PortsPerNic | Param::Ips))
}

fn human(param: Param) -> &'static str {
    match param {
        Param::PortsPerNic => "P",
        Param::Ips => "IPs",
        Param::FlowRate => "new flows/s per NIC",
        Param::Nics => "NICs",
        _ => param.path().rsplit('.').next().unwrap_or(param.path()),
    }
}

/// Groups points by the swept choices; `with_sizing` also separates P and IPs.
pub fn groups(plan: &Plan, result: &PlanResult, with_sizing: bool) -> Vec<Group> {
    let choices: Vec<Param> = plan
        .sweeps
        .iter()
        .map(|s| s.param)
        .filter(|&p| is_choice(p, with_sizing))
        .collect();
    let mut out: Vec<Group> = Vec::new();
    for (i, p) in result.points.iter().enumerate() {
        let label = choices
            .iter()
            .map(|&c| {
                format!(
                    "{} = {}",
                    human(c),
                    p.params.coordinate(c.path()).unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        match out.iter_mut().find(|g| g.label == label) {
            Some(g) => g.points.push(i),
            None => out.push(Group {
                label,
                points: vec![i],
            }),
        }
    }
    out
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The answer paragraph: per alternative, the IPs it needs, the rate Erlang-B sustains at the
/// target, and how far the swept conditions pass on the judged figure (the simulation's when it
/// ran and blocked more).
pub fn answer(plan: &Plan, result: &PlanResult) -> String {
    let Some(first) = result.points.first() else {
        return String::new();
    };
    let target = percent(first.params.blocking_max);
    let conditions: Vec<Param> = plan
        .sweeps
        .iter()
        .map(|s| s.param)
        .filter(|&p| !is_choice(p, true))
        .collect();
    let mut sentences = Vec::new();
    for g in groups(plan, result, true) {
        let points: Vec<_> = g.points.iter().map(|&i| &result.points[i]).collect();
        let p0 = points[0];
        let (gw, a) = (&p0.params.gateway, &p0.analytic);
        let mut s = if g.label.is_empty() {
            String::new()
        } else {
            format!("{}: ", g.label)
        };
        s.push_str(&format!(
            "{} rules, {} timers",
            gw.rules.as_str(),
            gw.profile.as_str()
        ));
        match (a.ports_per_nic_effective, a.nics_per_ip) {
            (Some(p), Some(per_ip)) => {
                let nics = points.iter().map(|p| p.params.nics).max().unwrap_or(0);
                s.push_str(&format!(
                    ", P = {p} ({per_ip} NICs per IP): {} NICs need {} IPs per family ({} configured)",
                    thousands(nics),
                    nics.div_ceil(per_ip.max(1)),
                    gw.ips
                ));
            }
            _ => s.push_str(&format!(
                " (ports pooled over the fleet, {} IPs configured)",
                gw.ips
            )),
        }
        let rates: Vec<f64> = points
            .iter()
            .filter_map(|p| p.analytic.max_rate_per_s_at_target)
            .collect();
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rates.iter().copied().fold(0.0, f64::max);
        if rates.is_empty() {
            s.push_str(&format!("; Erlang-B meets the {target} target at no rate"));
        } else if (hi - lo).abs() <= hi * 1e-9 {
            s.push_str(&format!(
                "; at {target} blocking Erlang-B sustains {} new flows/s per NIC",
                sig3(lo)
            ));
        } else {
            s.push_str(&format!(
                "; at {target} blocking Erlang-B sustains {}–{} new flows/s per NIC",
                sig3(lo),
                sig3(hi)
            ));
        }
        let passing = points.iter().filter(|p| p.decision.ok).count();
        let simulated = points.iter().filter(|p| p.simulated.is_some()).count();
        let by_sim = points
            .iter()
            .filter(|p| p.decision.basis == super::decide::Basis::Simulated)
            .count();
        if let [cond] = conditions.as_slice() {
            // The highest swept value below which every point passes.
            let mut last_ok: Option<&str> = None;
            for p in &points {
                if !p.decision.ok {
                    break;
                }
                last_ok = p.params.coordinate(cond.path());
            }
            let judged = if simulated > 0 {
                "judged on the worse of Erlang-B and the simulation"
            } else {
                "by Erlang-B"
            };
            match last_ok {
                Some(v) => s.push_str(&format!(
                    "; {judged}, swept points pass up to {} = {v}",
                    human(*cond)
                )),
                None => s.push_str(&format!("; {judged}, no swept point passes")),
            }
        } else {
            s.push_str(&format!("; {passing} of {} points pass", points.len()));
        }
        if by_sim > 0 {
            s.push_str(&format!(
                " ({by_sim} point{} judged on a simulated figure above Erlang-B's: client \
                 retries and timer effects Erlang-B leaves out, see the rows)",
                if by_sim == 1 { "" } else { "s" }
            ));
        }
        if let Some(reason) = points
            .iter()
            .flat_map(|p| p.analytic.verdict.notes.iter())
            .find(|n| n.contains(" drops "))
        {
            s.push_str(&format!("; {reason}"));
        }
        sentences.push(s);
    }
    format!("**Answer.** {}.\n\n", sentences.join(". "))
}
