//! A fixture's problem as the replay harness runs it: the tensors, their initial values and where
//! each step's gradients come from (the recorded sequence of an `update` fixture, or the exact
//! least-squares gradients of a `loss` fixture), and the loop that feeds them to a step function
//! and records the trajectory. Kept apart from the rule compilation in `replay.rs` so the harness
//! can be read (and tested through `replay_with`) on its own.

use super::StepFn;
use ndarray::{Array2, ArrayD, Ix2, IxDyn, Zip};
use optic_compiler::interp::Scalar;
use serde_json::{Map, Value};

/// Where the gradients come from.
enum Source {
    /// Kind `update`: per tensor, the recorded gradients of every step, flat ([steps, *shape]).
    Grads(Vec<Vec<f64>>),
    /// Kind `loss`: least squares 0.5 ||A W - B||^2 / n on the single tensor W.
    LeastSquares { a: Array2<f64>, b: Array2<f64>, n: f64 },
}

/// A fixture's problem: the tensors, their initial values and where the gradients come from.
pub(super) struct Problem {
    name: String,
    kind: &'static str,
    /// The tensors' names, in the fixture's order.
    pub(super) tensors: Vec<String>,
    /// Per tensor, its shape.
    pub(super) shapes: Vec<Vec<usize>>,
    steps: usize,
    /// Per tensor, the initial value, flat.
    init: Vec<Vec<f64>>,
    source: Source,
}

/// The only objective of the `loss` fixtures, whitespace removed; the normalization follows `/`.
const LSQ_OBJECTIVE: &str = "f(W)=0.5*sum((A@W-B)**2)/";

impl Problem {
    /// Reads the parts of a fixture the replay needs, checking every shape.
    pub(super) fn parse(fx: &Value) -> Result<Problem, String> {
        if let Some(format) = fx.get("format") {
            if format != "opt-reference/1" {
                return Err(format!("unsupported fixture format {format} (expected \"opt-reference/1\")"));
            }
        }
        let name = fx.get("name").and_then(Value::as_str).unwrap_or("?").to_string();
        let kind = match fx.get("kind").and_then(Value::as_str) {
            Some("update") => "update",
            Some("loss") => "loss",
            Some(other) => {
                return Err(format!("fixture kind `{other}` is not supported by replay (only `update` and `loss`)"))
            }
            None => return Err("the fixture has no `kind`".into()),
        };
        let steps = fx.get("steps").and_then(Value::as_u64).ok_or("the fixture has no integer `steps`")? as usize;
        let tensors: Vec<String> = fx
            .get("tensors")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|t| t.as_str().map(String::from)).collect())
            .ok_or("the fixture has no `tensors` list of names")?;
        let shapes = tensors
            .iter()
            .map(|t| {
                fx.pointer(&format!("/shapes/{t}"))
                    .and_then(Value::as_array)
                    .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect::<Option<Vec<_>>>())
                    .ok_or_else(|| format!("the fixture has no shape for tensor `{t}` in `shapes`"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let inputs = fx.get("inputs").ok_or("the fixture has no `inputs`")?;
        let init = tensors
            .iter()
            .zip(&shapes)
            .map(|(t, s)| read(inputs, &format!("init/{t}"), s))
            .collect::<Result<Vec<_>, _>>()?;
        let source = if kind == "update" {
            let grads = tensors
                .iter()
                .zip(&shapes)
                .map(|(t, s)| read(inputs, &format!("grads/{t}"), &[&[steps][..], s].concat()))
                .collect::<Result<Vec<_>, _>>()?;
            Source::Grads(grads)
        } else {
            Problem::least_squares(inputs, &tensors, &shapes)?
        };
        Ok(Problem { name, kind, tensors, shapes, steps, init, source })
    }

    /// Reads `A`, `B` and the normalization of a `loss` fixture, checking the objective is the
    /// one the harness implements.
    fn least_squares(inputs: &Value, tensors: &[String], shapes: &[Vec<usize>]) -> Result<Source, String> {
        let objective = inputs.get("objective").and_then(Value::as_str).ok_or("the loss fixture has no `objective`")?;
        let compact: String = objective.chars().filter(|c| !c.is_whitespace()).collect();
        let n =
            compact.strip_prefix(LSQ_OBJECTIVE).and_then(|n| n.parse::<u32>().ok()).filter(|&n| n > 0).ok_or_else(
                || format!("unsupported objective `{objective}` (replay knows `0.5*sum((A@W - B)**2)/n`)"),
            )?;
        if tensors != ["W"] {
            return Err(format!("a least-squares fixture must have the single tensor `W`, not {tensors:?}"));
        }
        let (k, m) = match shapes[0][..] {
            [k, m] => (k, m),
            _ => return Err(format!("W must be a matrix, not of shape {:?}", shapes[0])),
        };
        let rows = inputs.pointer("/A").and_then(Value::as_array).map_or(0, Vec::len);
        let a = Array2::from_shape_vec((rows, k), read(inputs, "A", &[rows, k])?).map_err(|e| e.to_string())?;
        let b = Array2::from_shape_vec((rows, m), read(inputs, "B", &[rows, m])?).map_err(|e| e.to_string())?;
        Ok(Source::LeastSquares { a, b, n: f64::from(n) })
    }

    /// Runs `step` for every step and records the parameters after each (and the loss).
    pub(super) fn drive<T: Scalar>(&self, step: &mut StepFn<'_, T>) -> Result<Value, String> {
        // Inputs are converted (for f32: rounded) once, here.
        let cast = |v: &[f64]| v.iter().map(|&x| <T as Scalar>::from_f64(x)).collect::<Vec<T>>();
        let mut params = self
            .init
            .iter()
            .zip(&self.shapes)
            .map(|(v, s)| ArrayD::from_shape_vec(IxDyn(s), cast(v)).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let grads: Vec<Vec<T>> = match &self.source {
            Source::Grads(g) => g.iter().map(|v| cast(v)).collect(),
            Source::LeastSquares { .. } => Vec::new(),
        };
        let lsq = match &self.source {
            Source::LeastSquares { a, b, n } => Some((
                a.mapv(<T as Scalar>::from_f64),
                b.mapv(<T as Scalar>::from_f64),
                <T as Scalar>::from_f64(1.0 / n),
            )),
            Source::Grads(_) => None,
        };
        let mut trajectory: Vec<Vec<f64>> =
            self.shapes.iter().map(|s| Vec::with_capacity(self.steps * s.iter().product::<usize>())).collect();
        let mut loss = Vec::with_capacity(self.steps + 1);
        for t in 1..=self.steps {
            let inputs = if let Some((a, b, inv_n)) = &lsq {
                let (value, grad) = least_squares(a, b, *inv_n, &params[0])?;
                loss.push(value);
                vec![vec![grad]]
            } else {
                self.shapes
                    .iter()
                    .zip(&grads)
                    .map(|(s, g)| {
                        let size = s.iter().product::<usize>();
                        let slice = g[(t - 1) * size..t * size].to_vec();
                        ArrayD::from_shape_vec(IxDyn(s), slice).map(|g| vec![g]).map_err(|e| e.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            let directions = step(t as u64, &params, &inputs).map_err(|e| format!("step {t}: {e}"))?;
            if directions.len() != params.len() {
                return Err(format!("step {t}: {} directions for {} parameters", directions.len(), params.len()));
            }
            for (k, (p, d)) in params.iter_mut().zip(&directions).enumerate() {
                if p.shape() != d.shape() {
                    return Err(format!(
                        "step {t}: the direction for `{}` has shape {:?}, the parameter {:?}",
                        self.tensors[k],
                        d.shape(),
                        p.shape()
                    ));
                }
                Zip::from(&mut *p).and(d).for_each(|p, &d| *p += d);
                trajectory[k].extend(p.iter().map(|&x| <T as Scalar>::to_f64(x)));
            }
        }
        let mut out = Map::new();
        out.insert("name".into(), self.name.clone().into());
        out.insert("kind".into(), self.kind.into());
        let traj = self
            .tensors
            .iter()
            .zip(&self.shapes)
            .zip(&trajectory)
            .map(|((t, s), v)| (t.clone(), nest(v, &[&[self.steps][..], s].concat())))
            .collect::<Map<_, _>>();
        out.insert("trajectory".into(), Value::Object(traj));
        if let Some((a, b, inv_n)) = &lsq {
            loss.push(least_squares(a, b, *inv_n, &params[0])?.0);
            out.insert("loss".into(), Value::Array(loss.into_iter().map(number).collect()));
        }
        Ok(Value::Object(out))
    }
}

/// The least-squares loss 0.5 ||A W - B||^2 / n and its gradient A^T (A W - B) / n at `w`. The
/// gradient is computed in T, as a port running in T would; the loss, a diagnostic that feeds
/// nothing, is accumulated in f64 from the T residual.
fn least_squares<T: Scalar>(a: &Array2<T>, b: &Array2<T>, inv_n: T, w: &ArrayD<T>) -> Result<(f64, ArrayD<T>), String> {
    let w = w.view().into_dimensionality::<Ix2>().map_err(|e| format!("W is not a matrix: {e}"))?;
    let r = a.dot(&w) - b;
    let sum_sq: f64 = r.iter().map(|&x| <T as Scalar>::to_f64(x).powi(2)).sum();
    let loss = 0.5 * sum_sq * <T as Scalar>::to_f64(inv_n);
    let grad = a.t().dot(&r).mapv(|x| x * inv_n);
    Ok((loss, grad.into_dyn()))
}

/// Reads the numbers at `inputs/path` as a flat vector, checking they form `shape`.
fn read(inputs: &Value, path: &str, shape: &[usize]) -> Result<Vec<f64>, String> {
    let v = inputs.pointer(&format!("/{path}")).ok_or_else(|| format!("the fixture has no `inputs.{path}`"))?;
    let mut out = Vec::with_capacity(shape.iter().product());
    if flatten_shaped(v, shape, &mut out) {
        Ok(out)
    } else {
        Err(format!("`inputs.{}` is not an array of numbers of shape {shape:?}", path.replace('/', ".")))
    }
}

/// Appends the numbers of a nested JSON array to `out`; false unless it has exactly `shape`.
fn flatten_shaped(v: &Value, shape: &[usize], out: &mut Vec<f64>) -> bool {
    match shape.split_first() {
        None => v.as_f64().map(|x| out.push(x)).is_some(),
        Some((&n, rest)) => match v.as_array() {
            Some(items) if items.len() == n => items.iter().all(|x| flatten_shaped(x, rest, out)),
            _ => false,
        },
    }
}

/// A flat buffer as nested JSON arrays of `shape`.
fn nest(flat: &[f64], shape: &[usize]) -> Value {
    match shape.split_first() {
        None => number(flat[0]),
        Some((&n, rest)) => {
            let size = rest.iter().product::<usize>();
            Value::Array((0..n).map(|i| nest(&flat[i * size..(i + 1) * size], rest)).collect())
        }
    }
}

/// A JSON number, or `null` for NaN and infinities (JSON has no such numbers).
pub(super) fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}
