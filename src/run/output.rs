//! What a run leaves on disk, under its directory: `config.json` (the resolved configuration),
//! `metrics.jsonl` (one JSON object per logged step, appended and flushed as the run goes),
//! `checkpoints/step_<n>.safetensors` (tensors, the merged weights of adapted tensors, and rule
//! states), and at the end `summary.json` and the loss curves `loss.svg` / `loss.png`. A resumed
//! run continues from the newest checkpoint and drops the metrics lines logged after it, so the
//! file ends as an uninterrupted run's would.

use super::train::Row;
use optic_compiler::exec::{Lane, RuleExec};
use optic_compiler::interp::{eval_nodes, ArrayD, Scalar};
use optic_compiler::lower::experiment::Plan;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// A run's directory.
pub struct RunDir {
    /// Where it is.
    pub path: PathBuf,
    metrics: File,
}

fn io(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

impl RunDir {
    /// Opens (creating) a run directory; without `resume`, earlier results there are replaced.
    pub fn open(path: &Path, resume: bool) -> Result<RunDir, String> {
        fs::create_dir_all(path).map_err(|e| io(path, e))?;
        let file = path.join("metrics.jsonl");
        if !resume {
            let _ = fs::remove_dir_all(path.join("checkpoints"));
            for f in ["summary.json", "loss.svg", "loss.png"] {
                let _ = fs::remove_file(path.join(f));
            }
        }
        let metrics = OpenOptions::new()
            .create(true)
            .append(resume)
            .write(true)
            .truncate(!resume)
            .open(&file)
            .map_err(|e| io(&file, e))?;
        Ok(RunDir { path: path.to_path_buf(), metrics })
    }

    /// Writes the resolved configuration.
    pub fn config(&self, value: &Value) -> Result<(), String> {
        let p = self.path.join("config.json");
        fs::write(&p, serde_json::to_string_pretty(value).expect("JSON values serialize") + "\n").map_err(|e| io(&p, e))
    }

    /// Appends one metrics line and flushes it.
    pub fn append(&mut self, row: &Row) -> Result<(), String> {
        // Written by hand so that `step` comes first and the metrics keep the `log` order.
        let mut line = format!("{{\"step\":{}", row.step);
        for (k, v) in &row.values {
            line += &format!(",{}:{}", Value::String(k.clone()), number(*v));
        }
        line += "}\n";
        self.metrics
            .write_all(line.as_bytes())
            .and_then(|_| self.metrics.flush())
            .map_err(|e| io(&self.path.join("metrics.jsonl"), e))
    }

    /// Records a numerical fault in `fault.txt`.
    pub fn fault(&self, msg: &str, step: u64) -> Result<(), String> {
        let p = self.path.join("fault.txt");
        fs::write(&p, format!("step {step}: {msg}\n")).map_err(|e| io(&p, e))
    }

    fn checkpoint_dir(&self) -> PathBuf {
        self.path.join("checkpoints")
    }

    /// Saves the tensors and rule states after `step`.
    pub fn checkpoint<T: Lane>(
        &self,
        plan: &Plan,
        step: u64,
        tensors: &[ArrayD<T>],
        interps: &[RuleExec<T>],
    ) -> Result<(), String> {
        let dir = self.checkpoint_dir();
        fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let mut named: Vec<(String, ArrayD<T>)> = Vec::new();
        for (t, v) in plan.tensors.iter().zip(tensors) {
            named.push((format!("tensor/{}", t.path), v.clone()));
        }
        named.extend(merged(plan, step, tensors)?);
        for (gi, (group, interp)) in plan.groups.iter().zip(interps).enumerate() {
            for (k, (&t, graph)) in group.tensors.iter().zip(&group.graphs).enumerate() {
                for (slot, s) in graph.slots.iter().enumerate() {
                    if let Some(v) = interp.state(k, slot) {
                        named.push((format!("state/{gi}/{}/{slot}:{}", plan.tensors[t].path, s.name), v.clone()));
                    }
                }
            }
        }
        let mut meta = BTreeMap::new();
        meta.insert("format".to_string(), "optic-checkpoint/1".to_string());
        meta.insert("experiment".to_string(), plan.name.clone());
        meta.insert("step".to_string(), step.to_string());
        meta.insert("seed".to_string(), plan.seed.to_string());
        let path = dir.join(format!("step_{step}.safetensors"));
        super::ckpt::save(&path, &named, &meta).map_err(|e| io(&path, e))
    }

    /// Loads the newest checkpoint, if any: sets the tensors and rule states, drops metrics
    /// lines after it, and returns its step.
    pub fn restore<T: Lane>(
        &mut self,
        plan: &Plan,
        tensors: &mut [ArrayD<T>],
        interps: &mut [RuleExec<T>],
    ) -> Result<Option<u64>, String> {
        let dir = self.checkpoint_dir();
        let Ok(entries) = fs::read_dir(&dir) else { return Ok(None) };
        let newest = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.strip_prefix("step_")?.strip_suffix(".safetensors")?.parse::<u64>().ok().map(|s| (s, e.path()))
            })
            .max_by_key(|x| x.0);
        let Some((step, path)) = newest else { return Ok(None) };
        let (named, meta) = super::ckpt::load::<T>(&path).map_err(|e| io(&path, e))?;
        if meta.get("experiment") != Some(&plan.name) {
            return Err(io(
                &path,
                format!("a checkpoint of experiment {:?}, not `{}`", meta.get("experiment"), plan.name),
            ));
        }
        let get = |name: &str| named.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        for (t, slot) in plan.tensors.iter().zip(tensors.iter_mut()) {
            let v = get(&format!("tensor/{}", t.path))
                .ok_or_else(|| io(&path, format!("no tensor `{}`: was the experiment changed?", t.path)))?;
            if v.shape() != slot.shape() {
                return Err(io(&path, format!("`{}` has shape {:?} there, {:?} now", t.path, v.shape(), slot.shape())));
            }
            *slot = v.clone();
        }
        for (gi, (group, interp)) in plan.groups.iter().zip(interps.iter_mut()).enumerate() {
            for (k, (&t, graph)) in group.tensors.iter().zip(&group.graphs).enumerate() {
                for (slot, s) in graph.slots.iter().enumerate() {
                    if let Some(v) = get(&format!("state/{gi}/{}/{slot}:{}", plan.tensors[t].path, s.name)) {
                        interp.set_state(k, slot, v.clone()).map_err(|e| io(&path, e))?;
                    }
                }
            }
        }
        // Keep the metrics logged up to the checkpoint.
        let file = self.path.join("metrics.jsonl");
        let kept: Vec<String> = match File::open(&file) {
            Ok(f) => BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter(|l| {
                    serde_json::from_str::<Value>(l).ok().and_then(|v| v["step"].as_u64()).is_some_and(|s| s <= step)
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut text = kept.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        fs::write(&file, text).map_err(|e| io(&file, e))?;
        self.metrics = OpenOptions::new().append(true).open(&file).map_err(|e| io(&file, e))?;
        let _ = fs::remove_file(self.path.join("fault.txt"));
        Ok(Some(step))
    }

    /// Every metrics row in the file (a resumed run's earlier rows included).
    pub fn rows(&self) -> Vec<Row> {
        read_rows(&self.path.join("metrics.jsonl"))
    }
}

/// The merged weight of every adapted tensor (`merged/<path>`): what a user of the trained
/// model wants from an adapter. They are derived, never restored: resuming reads only `tensor/`
/// and `state/`. The merged graph reads only the current tensors (the lowering keeps no weight
/// that reads initial values or data), so those inputs are placeholders.
fn merged<T: Scalar>(plan: &Plan, step: u64, tensors: &[ArrayD<T>]) -> Result<Vec<(String, ArrayD<T>)>, String> {
    if plan.merged.weights.is_empty() {
        return Ok(Vec::new());
    }
    let mut inputs = tensors.to_vec();
    inputs.extend(tensors.iter().cloned());
    inputs.extend(plan.data.iter().map(|d| ArrayD::zeros(d.batch_shape.clone())));
    let roots: Vec<usize> = plan.merged.weights.iter().map(|w| w.1).collect();
    let vals = eval_nodes(&plan.merged.graph, step.max(1), &inputs, plan.seed, &roots)
        .map_err(|e| format!("step {step}, merging the adapted weights: {e}"))?;
    Ok(plan.merged.weights.iter().map(|(path, _)| format!("merged/{path}")).zip(vals).collect())
}

/// Reads a `metrics.jsonl`.
pub fn read_rows(path: &Path) -> Vec<Row> {
    let Ok(f) = File::open(path) else { return Vec::new() };
    BufReader::new(f)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| {
            let v: Value = serde_json::from_str(&l).ok()?;
            let obj = v.as_object()?;
            let step = obj.get("step")?.as_u64()?;
            let values = obj
                .iter()
                .filter(|(k, _)| *k != "step")
                .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or(f64::NAN)))
                .collect();
            Some(Row { step, values })
        })
        .collect()
}

/// A metric as JSON: non-finite values as strings (JSON has no NaN).
pub fn number(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        json!(v.to_string())
    }
}
