//! Sweep expansion: the cartesian product of every sweep's values, in a fixed order.
//!
//! Order: the first sweep in the file is the outermost loop (changes slowest), the last sweep the
//! innermost (changes fastest), like nested `for` loops written top to bottom. Values keep the
//! order they were written in (ranges: ascending). Point indices follow this order.

use super::params::{Coordinate, Family, PointParams, SimulationParams};
use super::settings::{Origin, Param, ParamError, Settings, Value};
use crate::rng::mix64;

/// The most points one plan may expand to (keeps a typo like `step: 0.0001` from running for
/// hours).
pub const MAX_POINTS: usize = 100_000;

/// One sweep axis: a parameter and the values it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    /// The swept parameter.
    pub param: Param,
    /// Values with where each was written (range values share the range's origin).
    pub values: Vec<(Value, Origin)>,
}

/// The values of an arithmetic range `from, from + step, …, ≤ to`.
///
/// Each value is computed as `from + i·step` (not by repeated addition, which drifts) and rounded
/// to 12 significant digits, so `0.1` steps give `0.3`, not `0.30000000000000004`.
pub fn arithmetic_range(from: f64, to: f64, step: f64) -> Result<Vec<f64>, String> {
    if !(step > 0.0 && step.is_finite()) {
        return Err(format!("step must be > 0, got {step}"));
    }
    if to < from {
        return Err(format!("to ({to}) must be ≥ from ({from})"));
    }
    let count = ((to - from) / step + 1e-9).floor() + 1.0;
    if count > MAX_POINTS as f64 {
        return Err(format!("range has {count} values, more than {MAX_POINTS}"));
    }
    Ok((0..count as usize)
        .map(|i| round12(from + i as f64 * step))
        .collect())
}

/// The values of a geometric range `from, from·factor, …, ≤ to` (e.g. P from 64 to 32768 by 2).
pub fn geometric_range(from: f64, to: f64, factor: f64) -> Result<Vec<f64>, String> {
    if !(factor > 1.0 && factor.is_finite()) {
        return Err(format!("factor must be > 1, got {factor}"));
    }
    if from.is_nan() || from <= 0.0 {
        return Err(format!("a geometric range needs from > 0, got {from}"));
    }
    if to < from {
        return Err(format!("to ({to}) must be ≥ from ({from})"));
    }
    let mut values = Vec::new();
    let mut i = 0_i32;
    loop {
        let v = round12(from * factor.powi(i));
        if v > to * (1.0 + 1e-12) {
            break;
        }
        values.push(v);
        i += 1;
        if values.len() > MAX_POINTS {
            return Err(format!("range has more than {MAX_POINTS} values"));
        }
    }
    Ok(values)
}

fn round12(x: f64) -> f64 {
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// Expands `sweeps` over `base` into validated points, in sweep order (see the module docs).
pub fn expand(
    base: &Settings,
    sweeps: &[Sweep],
    families: &[Family],
    simulation: SimulationParams,
    seed: u64,
) -> Result<Vec<PointParams>, ParamError> {
    let total = sweeps
        .iter()
        .try_fold(1_usize, |acc, s| acc.checked_mul(s.values.len()))
        .filter(|&n| n <= MAX_POINTS);
    let Some(total) = total else {
        return Err(ParamError {
            field: "sweep".to_string(),
            origin: sweeps
                .first()
                .and_then(|s| s.values.first())
                .map(|v| v.1)
                .unwrap_or_default(),
            message: format!("the sweeps expand to more than {MAX_POINTS} points"),
        });
    };
    let mut points = Vec::with_capacity(total);
    for index in 0..total {
        let mut settings = base.clone();
        let mut coordinates = Vec::with_capacity(sweeps.len());
        // Mixed-radix decomposition of the index, innermost (last) sweep fastest.
        let mut rest = index;
        let mut picks = vec![0_usize; sweeps.len()];
        for (axis, sweep) in sweeps.iter().enumerate().rev() {
            let len = sweep.values.len().max(1);
            picks[axis] = rest % len;
            rest /= len;
        }
        for (sweep, &pick) in sweeps.iter().zip(&picks) {
            if let Some((value, origin)) = sweep.values.get(pick) {
                settings.set(sweep.param, value.clone(), *origin);
                coordinates.push(Coordinate {
                    param: sweep.param.path().to_string(),
                    value: value.to_string(),
                });
            }
        }
        // The point seed depends on the plan seed and the index only, so adding a report plot
        // or running on more threads never changes a point's simulation.
        let point_seed = mix64(seed ^ mix64(index as u64));
        let mut point = settings.resolve(families, simulation, index, point_seed)?;
        point.coordinates = coordinates;
        points.push(point);
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_steps_do_not_drift() {
        assert_eq!(
            arithmetic_range(0.1, 0.5, 0.1),
            Ok(vec![0.1, 0.2, 0.3, 0.4, 0.5])
        );
        assert!(arithmetic_range(1.0, 0.0, 1.0).is_err());
        assert!(arithmetic_range(0.0, 1.0, 0.0).is_err());
    }

    #[test]
    fn geometric_powers_of_two() {
        assert_eq!(
            geometric_range(64.0, 4096.0, 2.0),
            Ok(vec![64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0])
        );
    }
}
