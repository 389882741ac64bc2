//! A scenario through the model and through the kernel: each run records every packet its
//! dataplane was handed ([`VerdictLog`], an observer), then [`super::compare`] lines them up.

use std::collections::BTreeMap;

use super::{Record, VerdictClass, compare, shape};
use crate::check::Target;
use crate::nat::{Ingress, Profile, Verdict};
use crate::scenario::cli::prepare_for;
use crate::scenario::load::Scenario;
use crate::scenario::report::{Report, mark_not_reproducible, run_scenario_observed};
use crate::sim::observe::{
    DESCRIBED_BYTES, Observation, Observer, Violation, packet_hex, packet_summary,
};
use crate::time::Instant;

/// Records every packet a dataplane processed, in order.
#[derive(Debug, Default)]
pub struct VerdictLog {
    /// The records.
    pub records: Vec<Record>,
    names: BTreeMap<u32, String>,
}

impl Observer for VerdictLog {
    fn observe(
        &mut self,
        _index: u64,
        now: Instant,
        obs: &Observation<'_>,
    ) -> Result<(), Violation> {
        match obs {
            Observation::NicUpdated(info) => {
                self.names.insert(info.id.0, info.name.clone());
            }
            Observation::Processed {
                ingress,
                before,
                verdict,
                after,
                ..
            } => {
                let side = match ingress {
                    Ingress::Outside => "outside".to_string(),
                    Ingress::Inside(id) => self
                        .names
                        .get(&id.0)
                        .cloned()
                        .unwrap_or_else(|| format!("nic#{}", id.0)),
                };
                let output = match verdict {
                    Verdict::Drop(_) | Verdict::Buffered => String::new(),
                    _ => packet_summary(after),
                };
                let verdict_words = match verdict {
                    Verdict::Drop(r) => format!("drop: {}", r.name()),
                    v => VerdictClass::of(*v).name().to_string(),
                };
                self.records.push(Record {
                    index: self.records.len() as u64,
                    time_ns: now.as_nanos(),
                    shape: shape(&side, before),
                    side,
                    class: VerdictClass::of(*verdict),
                    verdict: verdict_words,
                    packet: packet_summary(before),
                    hex: packet_hex(before, DESCRIBED_BYTES),
                    output,
                });
            }
            _ => {}
        }
        Ok(())
    }
}

/// Both runs of a scenario and their comparison.
#[derive(Debug)]
pub struct ScenarioDiff {
    /// The model's report.
    pub model: Report,
    /// The kernel's report.
    pub kernel: Report,
    /// Record by record.
    pub comparison: super::Comparison,
}

/// Runs `sc` with `profile` through the model and through the kernel (with `kernel`'s
/// settings) and compares them. The scenario's expectations are evaluated in both reports but
/// do not affect the comparison.
pub fn diff_scenario(
    sc: &Scenario,
    seed: Option<u64>,
    profile: &Profile,
    kernel: Target,
) -> Result<ScenarioDiff, String> {
    let mut sc = sc.clone();
    sc.sim.gateway.profile = profile.clone();
    sc.doc.limits.rerun_for_determinism = false;
    let model_run = |sc: &Scenario, target: Target| {
        let make = || vec![Box::new(VerdictLog::default()) as Box<dyn Observer>];
        run_scenario_observed(sc, seed, &|| target.factory(), &make)
            .map_err(|e| format!("{}: {e}", sc.file.display()))
    };
    // The kernel run gets the same wall-time bound as `natsim run --dataplane linux`, applied
    // to both runs so that they end at the same virtual time.
    let mut ksc = sc.clone();
    prepare_for(&mut ksc, kernel)?;
    sc.sim.limits = ksc.sim.limits;
    let (model_out, mut model_obs) = model_run(&sc, Target::Real)?;
    let (mut kernel_out, mut kernel_obs) = model_run(&ksc, kernel)?;
    if let Some(arg) = kernel.dataplane_arg() {
        mark_not_reproducible(&mut kernel_out.report, &arg);
    }
    let take = |obs: &mut Vec<Box<dyn Observer>>| -> Vec<Record> {
        obs.iter_mut()
            .find_map(|o| (&mut **o as &mut dyn std::any::Any).downcast_mut::<VerdictLog>())
            .map(|l| std::mem::take(&mut l.records))
            .unwrap_or_default()
    };
    let m = take(&mut model_obs);
    let k = take(&mut kernel_obs);
    let comparison = compare(&m, &k);
    Ok(ScenarioDiff {
        model: model_out.report,
        kernel: kernel_out.report,
        comparison,
    })
}
