//! `optic replay --inject`: a fixture's recorded choices supplied to the rule's `recorded` values.
//! Where a peer's trajectory depends on something the algorithm leaves open (the signs of an
//! SVD's singular vectors, a Gaussian probe), the fixture records what the peer used under
//! `extra.<name>.<tensor>`, and its tolerance assumes a re-implementation substitutes it. The
//! rule marks the same quantity `recorded("<name>", expr)`; the interpreter then uses the
//! fixture's value instead of `expr` (see `optic_compiler::interp::Recorded`).
//!
//! Three layouts are read. Keyed by tensor (`extra.<name>.<tensor>`): a list of
//! `{"step": t, "<field>": value}` entries, each value holding from its step until the next
//! (GaLore's projectors: `{"step", "ortho_matrix"}`), or a plain list with one value per step,
//! the k-th for step k + 1 (Kron's `probe_v`). A list of calls (`extra.<name>` itself a list):
//! `{"step": t, "tensor": name, "Q": [m_0, m_1, ...], ...}` in call order, one matrix per
//! dimension of the tensor (SOAP's eigenbases: `source` says eigh or qr, an empty `[]` is a
//! dimension left unrotated); m_k is supplied as `<name>[k]` from step t, where step 0 (the
//! peer's initialization inside its first step) is step 1.

use optic_compiler::interp::{Recorded, Scalar};
use serde_json::Value;

/// One recorded value for one tensor.
pub struct Entry {
    /// The name the rule's `recorded(...)` uses: the fixture's `extra` key.
    pub name: String,
    /// The 1-based step from which it holds.
    pub step: u64,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its elements, row-major.
    pub data: Vec<f64>,
}

/// Per tensor (in `tensors`' order), the values the fixture's `extra` records for it. Fails when
/// there is nothing to inject or a record is malformed, naming where.
pub fn entries(fixture: &Value, tensors: &[String]) -> Result<Vec<Vec<Entry>>, String> {
    let extra = match fixture.get("extra") {
        Some(Value::Object(m)) if !m.is_empty() => m,
        _ => return Err("--inject: the fixture records no choices to inject (no `extra`)".into()),
    };
    let mut out: Vec<Vec<Entry>> = tensors.iter().map(|_| Vec::new()).collect();
    for (name, per_tensor) in extra {
        if let Some(calls) = per_tensor.as_array() {
            call_list(name, calls, tensors, &mut out)?;
            continue;
        }
        let Some(per_tensor) = per_tensor.as_object() else {
            return Err(format!(
                "--inject: extra.{name} is neither a list of calls nor an object keyed by tensor name"
            ));
        };
        for (tensor, list) in per_tensor {
            let at = format!("extra.{name}.{tensor}");
            let k = tensors
                .iter()
                .position(|t| t == tensor)
                .ok_or_else(|| format!("--inject: {at} names no tensor of the fixture ({})", tensors.join(", ")))?;
            let items = list.as_array().ok_or_else(|| format!("--inject: {at} is not a list"))?;
            for (i, item) in items.iter().enumerate() {
                let (step, value) = match item {
                    Value::Object(fields) => stepped(fields).map_err(|e| format!("--inject: {at}[{i}]: {e}"))?,
                    _ => (i as u64 + 1, item),
                };
                let (shape, data) =
                    array(value).ok_or_else(|| format!("--inject: {at}[{i}] is not a numeric array"))?;
                out[k].push(Entry { name: name.clone(), step, shape, data });
            }
        }
    }
    Ok(out)
}

/// Reads the call-list layout: each call's matrices become entries `<name>[k]` of its tensor.
fn call_list(name: &str, calls: &[Value], tensors: &[String], out: &mut [Vec<Entry>]) -> Result<(), String> {
    for (i, call) in calls.iter().enumerate() {
        let at = format!("extra.{name}[{i}]");
        let tensor =
            call.get("tensor").and_then(Value::as_str).ok_or_else(|| format!("--inject: {at} has no `tensor`"))?;
        let k = tensors
            .iter()
            .position(|t| t == tensor)
            .ok_or_else(|| format!("--inject: {at} names no tensor of the fixture ({})", tensors.join(", ")))?;
        // the peer's step counter at the call: 0 is the initialization inside the first step
        let step = call.get("step").and_then(Value::as_u64).ok_or_else(|| format!("--inject: {at} has no `step`"))?;
        let matrices =
            call.get("Q").and_then(Value::as_array).ok_or_else(|| format!("--inject: {at} has no list `Q`"))?;
        for (dim, m) in matrices.iter().enumerate() {
            if m.as_array().is_some_and(Vec::is_empty) {
                continue;
            }
            let (shape, data) = array(m).ok_or_else(|| format!("--inject: {at}.Q[{dim}] is not a numeric array"))?;
            out[k].push(Entry { name: format!("{name}[{dim}]"), step: step.max(1), shape, data });
        }
    }
    Ok(())
}

/// Supplies the entries through `set` (graph, table: the interpreter's or the executor's
/// `set_recorded`), tensor `k`'s to graph `k`, in the run's precision. Fails when the rule does
/// not record a name the fixture does, or the shapes differ.
pub fn supply<T: Scalar>(
    set: &mut dyn FnMut(usize, Recorded<T>) -> Result<(), String>,
    tensors: &[String],
    entries: &[Vec<Entry>],
) -> Result<(), String> {
    for (k, list) in entries.iter().enumerate() {
        if list.is_empty() {
            continue;
        }
        let mut table = Recorded::new();
        for e in list {
            let data = e.data.iter().map(|&x| T::from_f64(x)).collect();
            let value = ndarray::ArrayD::from_shape_vec(e.shape.clone(), data).map_err(|err| err.to_string())?;
            table.insert(e.name.clone(), e.step, value);
        }
        set(k, table).map_err(|e| {
            format!("--inject: tensor `{}`: {e} (mark the choice `recorded(\"NAME\", expr)` in the rule)", tensors[k])
        })?;
    }
    Ok(())
}

/// The step and the value of a `{"step": t, "<field>": value}` entry.
fn stepped(fields: &serde_json::Map<String, Value>) -> Result<(u64, &Value), String> {
    let step = fields.get("step").and_then(Value::as_u64).filter(|&s| s >= 1).ok_or("no positive integer `step`")?;
    let mut others = fields.iter().filter(|(k, _)| *k != "step");
    match (others.next(), others.next()) {
        (Some((_, v)), None) => Ok((step, v)),
        _ => Err("an entry holds `step` and exactly one value".into()),
    }
}

/// A nested JSON array of numbers as (shape, row-major elements); `None` if it is ragged or
/// holds anything else.
fn array(v: &Value) -> Option<(Vec<usize>, Vec<f64>)> {
    let mut shape = Vec::new();
    let mut probe = v;
    while let Some(items) = probe.as_array() {
        shape.push(items.len());
        probe = items.first()?;
    }
    let mut data = Vec::with_capacity(shape.iter().product());
    flatten(v, &shape, &mut data).then_some((shape, data))
}

fn flatten(v: &Value, shape: &[usize], out: &mut Vec<f64>) -> bool {
    match shape.split_first() {
        None => v.as_f64().map(|x| out.push(x)).is_some(),
        Some((&n, rest)) => {
            v.as_array().is_some_and(|items| items.len() == n && items.iter().all(|x| flatten(x, rest, out)))
        }
    }
}
