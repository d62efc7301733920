//! `check_reference.py`'s pass/fail metric in Rust: a candidate trajectory (as `replay` writes it)
//! against a reference fixture at the fixture's own tolerance. Separate from the replay itself
//! because the model tests (`tests/models.rs`) and the REPL compare trajectories they did not
//! replay.

use super::Dtype;
use serde_json::Value;
use std::fmt;

/// The outcome of a passing [`compare`].
#[derive(Debug)]
pub struct Comparison {
    /// Steps compared (fewer than the fixture's when its float32 tolerance says so).
    pub steps: usize,
    /// Per tensor, the worst norm-scaled error max|c - r| / max|r| over the compared steps.
    pub worst: Vec<(String, f64)>,
    /// Why nothing was compared, when the fixture's tolerance marks this precision unusable.
    pub skipped: Option<String>,
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(why) = &self.skipped {
            return write!(f, "not compared: {why}");
        }
        write!(f, "{} steps, worst scaled error", self.steps)?;
        for (t, e) in &self.worst {
            write!(f, " {t}={e:.1e}")?;
        }
        Ok(())
    }
}

/// One failing check, for the message.
struct Failure {
    step: usize,
    what: String,
    detail: String,
}

/// Compares a candidate (as [`replay`] writes it) with a reference fixture by
/// `check_reference.py`'s metric at the fixture's own tolerance for `precision`: per step and
/// tensor PASS if max|c - r| <= atol + rtol max|r|; losses |c - r| <= atol + rtol |r| (every
/// compared step, plus the final loss when all steps are compared); `lr_schedule` and
/// `beta1_schedule` when both sides have them, |c - r| <= 1e-15 + 1e-12 |r|. float32 compares
/// only `tolerance.float32.compare_steps` steps when given, or, as the script does, the prefix
/// `measured.f32_steps_within_1e-4` when the peer's own float32 run departs by more than 1e-2. A
/// tolerance marked unusable (`"usable": false`, or an rtol that is not a number such as "n/a")
/// skips the comparison. Unlike the script, a loss fixture's candidate without `loss` fails.
/// The error names the first failing step and tensor with the error's size and the bound.
pub fn compare(reference: &Value, candidate: &Value, precision: Dtype) -> Result<Comparison, String> {
    let key = precision.tolerance_key();
    let name = reference.get("name").and_then(Value::as_str).unwrap_or("?");
    let tol = reference.pointer(&format!("/tolerance/{key}"));
    let (default_rtol, default_atol) = match precision {
        Dtype::F64 => (1e-12, 1e-14),
        Dtype::F32 => (1e-5, 1e-7),
    };
    let skip = |why: String| Ok(Comparison { steps: 0, worst: Vec::new(), skipped: Some(why) });
    if tol.and_then(|t| t.get("usable")).and_then(Value::as_bool) == Some(false) {
        let why = tol.and_then(|t| t.get("why")).and_then(Value::as_str).unwrap_or("marked unusable");
        return skip(format!("the {key} tolerance of {name} is unusable: {why}"));
    }
    let tol_value = |field: &str, default: f64| match tol.and_then(|t| t.get(field)) {
        None => Some(default),
        Some(v) => v.as_f64(),
    };
    let (Some(rtol), Some(atol)) = (tol_value("rtol", default_rtol), tol_value("atol", default_atol)) else {
        return skip(format!("the {key} tolerance of {name} is not a number (n/a)"));
    };

    let rtraj = reference.get("trajectory").and_then(Value::as_object).ok_or("the reference has no `trajectory`")?;
    let ctraj = candidate.get("trajectory").and_then(Value::as_object).ok_or("the candidate has no `trajectory`")?;
    let steps = match reference.get("steps").and_then(Value::as_u64) {
        Some(s) => s as usize,
        None => rtraj.values().next().and_then(Value::as_array).map_or(0, Vec::len),
    };
    let mut nsteps = steps;
    if precision == Dtype::F32 {
        if let Some(n) = tol.and_then(|t| t.get("compare_steps")).and_then(Value::as_u64) {
            nsteps = nsteps.min(n as usize);
        } else if reference.pointer("/measured/f32_peer_max_scaled_err").and_then(Value::as_f64).unwrap_or(0.0) > 1e-2 {
            let within = reference.pointer("/measured/f32_steps_within_1e-4").and_then(Value::as_u64);
            nsteps = within.map_or(steps, |n| n as usize).max(1);
        }
    }

    let mut failures: Vec<Failure> = Vec::new();
    let mut worst = Vec::new();
    for (t, rsteps) in rtraj {
        let rsteps = rsteps.as_array().ok_or_else(|| format!("reference trajectory `{t}` is not a list"))?;
        let csteps = ctraj
            .get(t)
            .ok_or_else(|| format!("tensor `{t}` is missing from the candidate"))?
            .as_array()
            .ok_or_else(|| format!("candidate trajectory `{t}` is not a list"))?;
        if csteps.len() < nsteps || rsteps.len() < nsteps {
            return Err(format!(
                "`{t}`: candidate has {} steps, reference {}, need {nsteps}",
                csteps.len(),
                rsteps.len()
            ));
        }
        let mut worst_scaled = 0.0f64;
        let (mut r, mut c) = (Vec::new(), Vec::new());
        for s in 0..nsteps {
            r.clear();
            c.clear();
            flatten_any(&rsteps[s], &mut r).map_err(|e| format!("reference `{t}` step {}: {e}", s + 1))?;
            flatten_any(&csteps[s], &mut c).map_err(|e| format!("candidate `{t}` step {}: {e}", s + 1))?;
            if r.len() != c.len() {
                return Err(format!("`{t}` step {}: reference has {} elements, candidate {}", s + 1, r.len(), c.len()));
            }
            let scale = r.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            // (abs error, index); a non-finite candidate element is an infinite error
            let (err, at) = r.iter().zip(&c).enumerate().fold((0.0f64, 0), |(e, at), (i, (r, c))| {
                let d = if c.is_finite() { (c - r).abs() } else { f64::INFINITY };
                if d > e {
                    (d, i)
                } else {
                    (e, at)
                }
            });
            let scaled = if scale > 0.0 {
                err / scale
            } else if err == 0.0 {
                0.0
            } else {
                f64::INFINITY
            };
            worst_scaled = worst_scaled.max(scaled);
            let allowed = atol + rtol * scale;
            if err.is_nan() || err > allowed {
                failures.push(Failure {
                    step: s + 1,
                    what: format!("tensor `{t}`"),
                    detail: format!(
                        "max|c-r| = {err:.3e} at flat element {at} (ref {:e}, cand {:e}) > allowed {allowed:.3e}; \
                         scaled error {scaled:.2e} vs rtol {rtol:.0e}",
                        r[at], c[at]
                    ),
                });
            }
        }
        worst.push((t.clone(), worst_scaled));
    }

    if let Some(rloss) = reference.get("loss").and_then(Value::as_array) {
        let closs = candidate.get("loss").and_then(Value::as_array).ok_or("the candidate has no `loss`")?;
        let mut check = |s: usize, label: String| {
            let r = rloss.get(s).and_then(Value::as_f64);
            let c = closs.get(s).map(|v| v.as_f64().unwrap_or(f64::NAN));
            match (r, c) {
                (Some(r), Some(c)) => {
                    let d = if c.is_finite() { (c - r).abs() } else { f64::INFINITY };
                    let allowed = atol + rtol * r.abs();
                    if d > allowed {
                        let rel = d / r.abs();
                        failures.push(Failure {
                            step: s + 1,
                            what: label,
                            detail: format!(
                                "ref {r:e}, cand {c:e}, |c-r| = {d:.3e} > allowed {allowed:.3e} (rel {rel:.2e})"
                            ),
                        });
                    }
                }
                (Some(_), None) => failures.push(Failure { step: s + 1, what: label, detail: "missing".into() }),
                _ => {}
            }
        };
        for s in 0..nsteps {
            check(s, "loss before the step".into());
        }
        if nsteps == steps && rloss.len() > steps {
            check(steps, "final loss".into());
        }
    }

    for key in ["lr_schedule", "beta1_schedule"] {
        if let (Some(r), Some(c)) =
            (reference.get(key).and_then(Value::as_array), candidate.get(key).and_then(Value::as_array))
        {
            for (s, (r, c)) in r.iter().zip(c).enumerate() {
                let (r, c) = (r.as_f64().unwrap_or(f64::NAN), c.as_f64().unwrap_or(f64::NAN));
                let d = (r - c).abs();
                if d.is_nan() || d > 1e-15 + 1e-12 * r.abs() {
                    failures.push(Failure { step: s + 1, what: key.into(), detail: format!("ref {r:e}, cand {c:e}") });
                }
            }
        }
    }

    if failures.is_empty() {
        return Ok(Comparison { steps: nsteps, worst, skipped: None });
    }
    failures.sort_by_key(|f| f.step);
    let first = &failures[0];
    let mut failing_steps: Vec<usize> = failures.iter().map(|f| f.step).collect();
    failing_steps.dedup();
    let worst_text: Vec<String> = worst.iter().map(|(t, e)| format!("{t}={e:.1e}")).collect();
    Err(format!(
        "{name} ({}, rtol {rtol:.0e}, atol {atol:.0e}): first failure at step {} in {}: {}; {} of {nsteps} steps fail; \
         worst scaled error per tensor: {}",
        precision.name(),
        first.step,
        first.what,
        first.detail,
        failing_steps.len(),
        worst_text.join(", ")
    ))
}

/// Appends the numbers of a nested JSON array (any shape) to `out`; `null` reads as NaN.
fn flatten_any(v: &Value, out: &mut Vec<f64>) -> Result<(), String> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|x| flatten_any(x, out)),
        Value::Null => {
            out.push(f64::NAN);
            Ok(())
        }
        _ => v.as_f64().map(|x| out.push(x)).ok_or_else(|| format!("not a number: {v}")),
    }
}
