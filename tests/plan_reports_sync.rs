//! The worked reports in `reports/<plan>/` are exactly what `natsim plan plans/<plan>.yaml --out
//! reports/<plan>` produces (`scripts/regen-reports.sh` regenerates them).
//!
//! Release builds (CI runs `cargo test --release`) regenerate every plan in full, simulation
//! included (about a minute of CPU), and compare every file byte for byte. Debug builds, where
//! the simulator is an order of magnitude slower, take a cheaper path: they re-render each report
//! with the simulated answers recorded in the committed `report.json` (checking the analytic
//! figures, tables, JSON and plots byte for byte) and re-simulate the cheapest point of each plan
//! in full, which must reproduce its recorded answer exactly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use natsim::plan::{PointParams, SimulatedPoint, plan_cmd, plan_cmd_with, simulate};
use serde_json::Value;

const PLANS: [&str; 4] = [
    "ips-for-5000-nics",
    "dns-under-profiles",
    "providers",
    "tcp-clients-dpservice",
];

fn plan_path(stem: &str) -> PathBuf {
    Path::new("plans").join(format!("{stem}.yaml"))
}

/// Every file of a report folder, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .expect("file name");
        out.insert(name, std::fs::read(&path).expect("readable file"));
    }
    out
}

fn assert_same(stem: &str, generated: &Path) {
    let committed = files(&Path::new("reports").join(stem));
    let fresh = files(generated);
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        fresh.keys().collect::<Vec<_>>(),
        "reports/{stem}: file set differs; run scripts/regen-reports.sh"
    );
    for (name, bytes) in &committed {
        assert!(
            fresh.get(name) == Some(bytes),
            "reports/{stem}/{name} is not what the command produces; run scripts/regen-reports.sh"
        );
    }
}

fn temp_dir(stem: &str) -> PathBuf {
    std::env::temp_dir().join(format!("natsim-sync-{}-{stem}", std::process::id()))
}

/// What the committed report recorded per point: the simulated answer, or why there is none.
fn recorded(stem: &str) -> Vec<Result<SimulatedPoint, String>> {
    let path = Path::new("reports").join(stem).join("report.json");
    let text = std::fs::read_to_string(&path).expect("committed report.json");
    let json: Value = serde_json::from_str(&text).expect("valid JSON");
    json["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| match &p["simulated"] {
            Value::Null => Err(p["comparison"]["reason"]
                .as_str()
                .expect("a reason for a point without simulation")
                .to_string()),
            sim => Ok(serde_json::from_value(sim.clone()).expect("a SimulatedPoint")),
        })
        .collect()
}

fn full(stem: &str) {
    let out = temp_dir(stem);
    plan_cmd(&plan_path(stem), &out, Some(2)).expect("plan runs");
    assert_same(stem, &out);
    std::fs::remove_dir_all(&out).ok();
}

fn replayed_with_spot_check(stem: &str) {
    let answers = recorded(stem);
    let replay = |p: &PointParams| answers[p.index].clone();
    let out = temp_dir(stem);
    plan_cmd_with(&plan_path(stem), &out, Some(2), Some(&replay)).expect("plan renders");
    assert_same(stem, &out);
    std::fs::remove_dir_all(&out).ok();

    // The cheapest simulated point (fewest simulator events) must reproduce its answer.
    let plan = natsim::plan::Plan::load(&plan_path(stem)).expect("valid plan");
    let cheapest = answers
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.as_ref().ok().map(|s| (s.sample.events, i)))
        .min()
        .map(|(_, i)| i)
        .expect("a simulated point");
    let fresh = simulate(&plan.points[cheapest]).expect("simulates");
    assert_eq!(
        Ok(&fresh),
        answers[cheapest].as_ref(),
        "{stem} point {cheapest}"
    );
}

#[test]
fn worked_reports_are_what_the_command_produces() {
    for stem in PLANS {
        if cfg!(debug_assertions) {
            replayed_with_spot_check(stem);
        } else {
            full(stem);
        }
    }
}

/// No committed worked report has a point whose verdict contradicts its own simulated figure or
/// its recommendation (issue 18's acceptance check, on the files people read).
#[test]
fn worked_reports_have_consistent_verdicts() {
    for stem in PLANS {
        let path = Path::new("reports").join(stem).join("report.json");
        let text = std::fs::read_to_string(&path).expect("committed report.json");
        let json: Value = serde_json::from_str(&text).expect("valid JSON");
        let target = json["plan"]["blocking_max"].as_f64().expect("a target");
        for p in json["points"].as_array().expect("points") {
            let at = format!("{stem} point {}", p["index"]);
            let d = &p["decision"];
            let ok = d["ok"].as_bool().expect("ok");
            let judged = d["blocking"].as_f64().expect("blocking");
            if let Some(sim) = p["simulated"]["blocking_hot"].as_f64() {
                assert!(judged >= sim, "{at}: judged {judged} below simulated {sim}");
            }
            if ok {
                assert!(judged <= target, "{at}: ok at {judged}");
                if let (Some(rec), Some(p_eff)) = (
                    d["recommended_ports_per_nic"].as_u64(),
                    p["analytic"]["ports_per_nic_effective"].as_u64(),
                ) {
                    assert!(rec <= p_eff, "{at}: ok but recommends P = {rec}");
                }
            } else {
                assert!(
                    !d["reasons"].as_array().expect("reasons").is_empty(),
                    "{at}"
                );
            }
        }
    }
}
