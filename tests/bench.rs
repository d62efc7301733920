//! `optic bench`: every workload prints the peers' JSON fields at tiny sizes, W1's update is the
//! peers' numpy formula, W4 trains, `--serve` runs one round per line. Timings are never
//! asserted (this machine's speed drifts), only that they are there and positive.

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

fn bench(args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_optic")).arg("bench").args(args).output().expect("optic runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "optic bench {args:?} failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

/// The one line, with the fields every peer line has and `extra` ones, timings positive.
fn line(lines: &[Value], workload: &str, extra: &[&str]) -> Value {
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = lines[0].clone();
    assert_eq!(l["workload"], workload, "{l}");
    assert_eq!(l["impl"].as_str().map(|s| s.starts_with("optic")), Some(true), "{l}");
    for k in ["size", "median_s", "first_call_s"].iter().chain(extra) {
        assert!(l.get(*k).is_some_and(|v| !v.is_null()), "no `{k}` in {l}");
    }
    assert!(l["median_s"].as_f64().unwrap() > 0.0, "{l}");
    l
}

#[test]
fn w1_prints_the_peers_fields_in_both_layouts() {
    let l = line(&bench(&["W1", "--size", "4096", "--steps", "3", "--repeats", "2"]), "W1_adamw", &["eff_gbs"]);
    assert_eq!(l["size"], 4096);
    assert_eq!(l["ntensors"], 1);
    assert_eq!(l["steps"], 6);
    for k in ["ns_per_param", "round_median_min_s", "round_median_max_s", "best_s", "layout"] {
        assert!(l.get(k).is_some(), "no `{k}` in {l}");
    }
    let l =
        line(&bench(&["W1", "--size", "4096", "--layout", "64", "--steps", "2", "--repeats", "1"]), "W1_adamw", &[]);
    assert_eq!(l["ntensors"], 64);
    assert_eq!(l["layout"], "64");
}

#[test]
fn w1_update_is_the_numpy_formula() {
    for dtype in ["f32", "f64"] {
        let lines = bench(&["W1", "--check", "--dtype", dtype]);
        let l = &lines[0];
        let diff = l["max_abs_diff_vs_numpy"].as_f64().unwrap();
        let update = l["max_abs_update"].as_f64().unwrap();
        // The peers agree with numpy to 1.2e-6 on updates of about 5e-3 (f32).
        let bound = if dtype == "f32" { 2e-6 } else { 1e-13 };
        assert!(diff <= bound, "{dtype}: {l}");
        assert!(update > 1e-3 && update < 1e-2, "{dtype}: {l}");
    }
}

#[test]
fn w2_and_w3_print_gflops() {
    // W2 prints the steady step, then the projector refresh (as the peers' two modes).
    let lines = bench(&["W2", "--size", "64x32", "--rank", "8", "--steps", "2", "--repeats", "1"]);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let l = line(&lines[..1], "W2_galore_steady", &["gflops", "gemm_flop", "min_traffic_gbs", "amortized_median_s"]);
    assert_eq!(l["size"], "64x32");
    assert_eq!(l["rank"], 8);
    assert_eq!(l["refresh_period"], 200);
    let r = line(&lines[1..], "W2_galore_refresh", &["amortized_s", "route"]);
    let (steady, refresh) = (l["median_s"].as_f64().unwrap(), r["median_s"].as_f64().unwrap());
    // The printed times are rounded to a few significant digits, so compare relatively.
    let amortized = l["amortized_median_s"].as_f64().unwrap();
    let want = steady + refresh / 200.0;
    assert!((amortized - want).abs() <= 1e-4 * want, "{l}\n{r}");
    assert_eq!(r["rank"], 8);
    let l =
        line(&bench(&["W3", "--size", "48x32", "--steps", "2", "--repeats", "1"]), "W3_muon", &["gflops", "ns_flop"]);
    // 5 (4 p^2 q + 2 p^3) with p = 32, q = 48
    assert_eq!(l["ns_flop"].as_f64(), Some(5.0 * (4.0 * 32.0 * 32.0 * 48.0 + 2.0 * 32.0f64.powi(3))));
}

#[test]
fn w4_trains_to_a_lower_loss() {
    let args = ["W4", "--size", "d8_k16_B8", "--steps", "150", "--repeats", "1", "--warmup", "2"];
    let l = line(&bench(&args), "W4_mlp_train", &["steps_per_s", "gflops", "initial_loss", "final_loss_all"]);
    assert_eq!(l["size"], "d8_k16_B8");
    let (init, last, all) = (
        l["initial_loss"].as_f64().unwrap(),
        l["last_step_loss"].as_f64().unwrap(),
        l["final_loss_all"].as_f64().unwrap(),
    );
    assert!(init.is_finite() && init > 0.0, "{l}");
    assert!(last < init && all < init, "{l}");
}

#[test]
fn w5_times_fresh_processes() {
    let l = line(
        &bench(&["W5", "--size", "d8_k16_B8", "--repeats", "2", "--steps", "3"]),
        "W5_compile_latency",
        &["steady_s", "setup_s", "process_wall_s", "first_over_steady", "check_s", "init_s", "build_s"],
    );
    assert_eq!(l["repeats"], 2);
    let f = |k: &str| l[k].as_f64().unwrap();
    assert!(f("first_call_s") >= f("setup_s"), "{l}");
    // The parts are medians over the children, so they add up only roughly: each within the whole.
    for k in ["check_s", "check_lower_s", "init_s", "build_s"] {
        assert!(f(k) >= 0.0 && f(k) <= f("setup_s"), "{k}: {l}");
    }
}

#[test]
fn serve_runs_one_round_per_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_optic"))
        .args(["bench", "W1", "--size", "1024", "--steps", "2", "--serve"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("optic runs");
    child.stdin.take().expect("piped").write_all(b"run\nrun\nend\n").expect("written");
    let out = child.wait_with_output().expect("optic ends");
    assert!(out.status.success());
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0]["ready"], true);
    assert_eq!(lines[1]["times_s"].as_array().map(Vec::len), Some(2));
    assert_eq!(lines[3]["rounds"], 2);
    assert_eq!(lines[3]["steps"], 4);
}

#[test]
fn bad_sizes_are_misuse() {
    for args in [&["W2", "--size", "12"][..], &["W1", "--layout", "3", "--size", "64"], &["W4", "--size", "d8"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_optic")).arg("bench").args(args).output().expect("optic runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn threads_sets_the_pool_and_zero_is_refused() {
    let l =
        line(&bench(&["W1", "--size", "4096", "--steps", "2", "--repeats", "1", "--threads", "1"]), "W1_adamw", &[]);
    assert_eq!(l["threads"], 1, "{l}");
    let out = Command::new(env!("CARGO_BIN_EXE_optic")).args(["bench", "W1", "--threads", "0"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads must be at least 1"));
}
