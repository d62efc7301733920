//! Reporting: each run's configuration, summary and loss plot, and the comparison of a sweep's
//! runs (a table printed and saved as `sweep.md` and `sweep.json`, and one plot of every run's
//! loss). The progress display is in `progress.rs`.

use super::train::Row;
use super::Dtype;
use optic_compiler::lower::experiment::Plan;
use optic_runtime::plot::{Chart, Series};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// How one run went.
#[derive(Debug, Default)]
pub struct RunResult {
    /// Steps completed.
    pub steps: u64,
    /// Every metrics row.
    pub rows: Vec<Row>,
    /// A numerical fault that stopped it.
    pub fault: Option<String>,
    /// Any other failure (a file that cannot be written, a failed decomposition).
    pub error: Option<String>,
}

impl RunResult {
    /// The last value of each metric.
    pub fn last(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = Vec::new();
        for r in &self.rows {
            for (k, v) in &r.values {
                match out.iter_mut().find(|(n, _)| n == k) {
                    Some(slot) => slot.1 = *v,
                    None => out.push((k.clone(), *v)),
                }
            }
        }
        out
    }

    fn status(&self) -> &'static str {
        match (&self.error, &self.fault) {
            (Some(_), _) => "failed",
            (_, Some(_)) => "diverged",
            _ => "completed",
        }
    }
}

/// The resolved configuration of a run.
pub fn config(plan: &Plan, file: &Path, overrides: &[(String, String)], dtype: Dtype) -> Value {
    let tensors: Vec<Value> = plan
        .tensors
        .iter()
        .zip(&plan.trained)
        .filter(|(t, _)| !t.path.contains('~'))
        .map(|(t, trained)| json!({"path": t.path, "shape": t.shape, "trained": trained}))
        .collect();
    let settings: serde_json::Map<String, Value> = plan.config.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "experiment": plan.name,
        "file": file.display().to_string(),
        "overrides": overrides.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "seed": plan.seed,
        "steps": plan.steps,
        "dtype": match dtype { Dtype::F32 => "f32", Dtype::F64 => "f64" },
        "settings": settings,
        "tensors": tensors,
        "optimize": plan.groups.iter().map(|g| json!({
            "rule": g.rule,
            "tensors": g.tensors.iter().map(|&t| plan.tensors[t].path.clone()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "data": plan.data.iter().map(|d| json!({"name": d.name, "batch_shape": d.batch_shape})).collect::<Vec<_>>(),
        "checkpoint_every": plan.checkpoint_every,
    })
}

fn series(rows: &[Row], metric: &str, label: &str) -> Option<Series> {
    let points: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.values.iter().find(|(k, _)| k == metric).map(|(_, v)| (r.step as f64, *v)))
        .collect();
    (!points.is_empty()).then(|| Series { label: label.to_string(), points })
}

/// The optimizer state of each `optimize` group: its rule, tensors, trained elements, state
/// elements (every `state` slot of its rule graphs, as the executor allocates them) and state
/// bytes per trained element in the run's precision.
pub fn optimizer_state(plan: &Plan, dtype: Dtype) -> Value {
    let bytes = match dtype {
        Dtype::F32 => 4,
        Dtype::F64 => 8,
    };
    let groups: Vec<Value> = plan
        .groups
        .iter()
        .map(|g| {
            let parameters: usize = g.tensors.iter().map(|&t| plan.tensors[t].shape.iter().product::<usize>()).sum();
            let state: usize =
                g.graphs.iter().flat_map(|graph| &graph.slots).map(|s| s.shape.iter().product::<usize>()).sum();
            json!({
                "rule": g.rule,
                "tensors": g.tensors.iter().map(|&t| plan.tensors[t].path.clone()).collect::<Vec<_>>(),
                "parameters": parameters,
                "state_elements": state,
                "bytes_per_parameter": (state * bytes) as f64 / parameters.max(1) as f64,
            })
        })
        .collect();
    Value::Array(groups)
}

/// Writes a run's `summary.json` and its loss plot.
pub fn finish_run(plan: &Plan, dir: &Path, r: &RunResult, dtype: Dtype) -> Result<(), String> {
    let last: serde_json::Map<String, Value> =
        r.last().into_iter().map(|(k, v)| (k, super::output::number(v))).collect();
    let summary = json!({
        "experiment": plan.name,
        "status": r.status(),
        "steps_completed": r.steps,
        "steps": plan.steps,
        "final": last,
        "optimizer_state": optimizer_state(plan, dtype),
        "fault": r.fault,
        "error": r.error,
    });
    let p = dir.join("summary.json");
    std::fs::write(&p, serde_json::to_string_pretty(&summary).expect("JSON values serialize") + "\n")
        .map_err(|e| format!("{}: {e}", p.display()))?;
    let mut chart = Chart {
        title: format!("{}: loss", plan.name),
        x_label: "step".into(),
        y_label: "loss".into(),
        log_y: true,
        series: Vec::new(),
    };
    chart.series.extend(series(&r.rows, "loss", "loss"));
    chart.series.extend(series(&r.rows, "eval_loss", "eval_loss"));
    if chart.series.is_empty() {
        // No loss logged: plot every metric instead, on a linear axis if any is not positive.
        chart.title = format!("{}: metrics", plan.name);
        chart.y_label = "value".into();
        chart.series = r.last().iter().filter_map(|(k, _)| series(&r.rows, k, k)).collect();
        chart.log_y = chart.series.iter().all(|s| s.points.iter().all(|p| p.1 > 0.0));
    }
    if !chart.series.is_empty() {
        optic_runtime::plot::write(&chart, &dir.join("loss.svg"), &dir.join("loss.png")).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A run's label, overrides and directory.
pub type PointRef<'a> = (&'a String, &'a Vec<(String, String)>, &'a PathBuf);

/// Prints the outcome of an experiment's runs; for a sweep, also writes the comparison.
pub fn report(name: &str, base: &Path, points: &[PointRef], results: &[RunResult]) -> Result<(), String> {
    let mut metrics: Vec<String> = Vec::new();
    for r in results {
        for (k, _) in r.last() {
            if !metrics.contains(&k) {
                metrics.push(k);
            }
        }
    }
    let mut table = format!("| run | status | steps | {} |\n", metrics.join(" | "));
    table += &format!("|{}\n", "---|".repeat(metrics.len() + 3));
    for ((label, _, _), r) in points.iter().zip(results) {
        let last = r.last();
        let cells: Vec<String> = metrics
            .iter()
            .map(|m| last.iter().find(|(k, _)| k == m).map_or("-".into(), |(_, v)| format!("{v:.6}")))
            .collect();
        table += &format!("| {label} | {} | {} | {} |\n", r.status(), r.steps, cells.join(" | "));
    }
    println!("experiment {name}:\n{table}");
    for ((label, _, dir), r) in points.iter().zip(results) {
        if let Some(f) = &r.fault {
            eprintln!("error: run {label} diverged: {f} (results so far in {})", dir.display());
        }
        if let Some(e) = &r.error {
            eprintln!("error: run {label} failed: {e}");
        }
    }
    if points.len() < 2 {
        if let Some((_, _, dir)) = points.first() {
            println!("results in {}", dir.display());
        }
        return Ok(());
    }
    let p = base.join("sweep.md");
    std::fs::write(&p, &table).map_err(|e| format!("{}: {e}", p.display()))?;
    let json: Vec<Value> = points
        .iter()
        .zip(results)
        .map(|((label, overrides, _), r)| {
            let last: serde_json::Map<String, Value> = r.last().into_iter().map(|(k, v)| (k, super::output::number(v))).collect();
            json!({"run": label, "overrides": overrides.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(), "status": r.status(), "steps_completed": r.steps, "final": last})
        })
        .collect();
    let p = base.join("sweep.json");
    std::fs::write(&p, serde_json::to_string_pretty(&json).expect("JSON values serialize") + "\n")
        .map_err(|e| format!("{}: {e}", p.display()))?;
    let chart = Chart {
        title: format!("{name}: loss per run"),
        x_label: "step".into(),
        y_label: "loss".into(),
        log_y: true,
        series: points.iter().zip(results).filter_map(|((label, _, _), r)| series(&r.rows, "loss", label)).collect(),
    };
    if !chart.series.is_empty() {
        optic_runtime::plot::write(&chart, &base.join("sweep_loss.svg"), &base.join("sweep_loss.png"))
            .map_err(|e| e.to_string())?;
    }
    println!("sweep of {} runs in {} (sweep.md, sweep.json, sweep_loss.svg)", points.len(), base.display());
    Ok(())
}
