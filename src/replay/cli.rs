//! The `optic replay` command: reads the fixture file, replays it, writes the candidate JSON
//! (with `NaN` for non-finite numbers, as Python reads them) and optionally checks it. Everything
//! that touches files, stdout or exit codes lives here, so the test crates that include the
//! replay core by path use none of it.

use super::problem::number;
use super::{compare, replay_on, schedule_values, Backend, Dtype};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `optic replay` was asked to do.
pub struct Request {
    /// The fixture file.
    pub fixture: PathBuf,
    /// The rule expression.
    pub rule: String,
    /// The element type.
    pub dtype: Dtype,
    /// The seed of the rule's random draws.
    pub seed: u64,
    /// A schedule expression to evaluate and write as `lr_schedule`.
    pub lr_schedule: Option<String>,
    /// Where to write the JSON (stdout when absent, unless `check`).
    pub out: Option<PathBuf>,
    /// Compare with the fixture's trajectory and fail unless it agrees.
    pub check: bool,
    /// What runs the rule.
    pub backend: Backend,
    /// Supply the fixture's recorded choices (`extra`) to the rule's `recorded` values.
    pub inject: bool,
}

/// Runs `optic replay`: 0 on success, 1 when the fixture or the rule has a problem or `--check`
/// fails. Every problem is one message on stderr (rule diagnostics one line each).
pub fn run(req: &Request) -> ExitCode {
    match execute(req) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn execute(req: &Request) -> Result<ExitCode, String> {
    let path = req.fixture.display();
    let text = std::fs::read_to_string(&req.fixture).map_err(|e| format!("cannot read {path}: {e}"))?;
    let fixture: Value = serde_json::from_str(&text).map_err(|e| format!("{path} is not valid JSON: {e}"))?;
    let mut out = replay_on(&fixture, &req.rule, req.dtype, req.seed, req.inject, req.backend)
        .map_err(|e| format!("{path}: {e}"))?;
    if let Some(schedule) = &req.lr_schedule {
        let steps = fixture.get("steps").and_then(Value::as_u64).unwrap_or(0) as usize;
        let values = schedule_values(schedule, steps, req.seed).map_err(|e| format!("--lr-schedule: {e}"))?;
        out["lr_schedule"] = Value::Array(values.into_iter().map(number).collect());
    }
    let (text, non_finite) = to_json_text(&out);
    if non_finite {
        eprintln!("warning: the trajectory has non-finite values (written as NaN)");
    }
    match &req.out {
        Some(file) => write_file(file, &text)?,
        None if !req.check => println!("{text}"),
        None => {}
    }
    if req.check {
        let name = fixture.get("name").and_then(Value::as_str).unwrap_or("?");
        match compare(&fixture, &out, req.dtype) {
            Ok(c) => eprintln!("{name}: PASS ({}): {c}", req.dtype.name()),
            Err(msg) => {
                eprintln!("FAIL: {msg}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_file(file: &Path, text: &str) -> Result<(), String> {
    std::fs::write(file, format!("{text}\n")).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

/// Compact JSON, except that `null` (only ever a non-finite number here) is written `NaN`, the
/// token Python's json module (and so check_reference.py) reads as a number: a diverged
/// trajectory then fails the check instead of crashing it. Also says whether a `NaN` was written.
fn to_json_text(v: &Value) -> (String, bool) {
    fn write(v: &Value, out: &mut String, nan: &mut bool) {
        match v {
            Value::Null => {
                *nan = true;
                out.push_str("NaN")
            }
            Value::Array(items) => {
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out, nan);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (k, x)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(x, out, nan);
                }
                out.push('}');
            }
            // numbers (shortest round-trip form), strings (escaped) and booleans as serde_json writes them
            other => out.push_str(&other.to_string()),
        }
    }
    let (mut out, mut nan) = (String::new(), false);
    write(v, &mut out, &mut nan);
    (out, nan)
}
