#!/usr/bin/env python3
"""optic against one peer impl of a workload of shared/peers/README.md, interleaved in one run.

Usage (through tools/bench_vs_peers.sh, which builds optic in release and picks the peers' venv):
    tools/bench_vs_peers.sh W1 torch_fused --size 1048576 --layout flat
    tools/bench_vs_peers.sh W2 jax_jit --size 4096x1024
    tools/bench_vs_peers.sh W3 jax_jit --size 1024x1024
    tools/bench_vs_peers.sh W4 jax_jit            # on the peers' exact init and data (--dump)
    tools/bench_vs_peers.sh W5 jax_mlp            # fresh processes, cold caches

W1-W4: the peer impl is built in this process with the peer script's own functions (same data,
same step), optic runs `optic bench W? --serve` as a child that does one round per line it
reads. Rounds alternate (optic first in even rounds, the peer first in odd ones, as the peers'
round-robin), with a pause of --gap-ms (>= 20 ms) between blocks, so this VM's drift (it flips
between a good and a contended state, see BASELINES.md) hits both sides alike. W5: each round
starts one fresh optic process (`optic bench W5 --repeats 1`) and one fresh peer process
(`w5_compile_latency.py --child CASE`), alternating.

Prints each side's JSON line (the peer's in its script's format), then one summary line:
medians of both sides, `speedup` = peer time / optic time (> 1: optic is faster) and the
probe_sgemm_gflops the peer script measured before the rounds (< 150: contended state).
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "2")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2")

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PEERS = os.environ.get("PEERS_DIR", "/work/shared/peers")
sys.path.insert(0, PEERS)

# Per workload: timed steps per round, rounds, warm-up steps, untimed steps per round (the peers').
DEFAULTS = {"W1": (10, 5, 3, 2), "W2": (5, 4, 3, 1), "W3": (3, 4, 2, 1), "W4": (1000, 3, 20, 0)}


class Optic:
    """`optic bench W? --serve`: one round per line written to it."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.wait_for("ready")

    def wait_for(self, key):
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise SystemExit(f"optic ended early (exit {self.p.wait()})")
            rec = json.loads(line)
            if key in rec:
                return rec

    def round(self):
        self.p.stdin.write("run\n")
        self.p.stdin.flush()
        return self.wait_for("round")["times_s"]

    def finish(self):
        self.p.stdin.write("end\n")
        self.p.stdin.flush()
        rec = self.wait_for("median_s")
        self.p.wait()
        return rec


def peer_block(step, untimed, steps):
    for _ in range(untimed):
        step()
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    return ts


def build_peer(args):
    """The peer's step function (one round's unit) and its first-call time, from its script."""
    w = args.workload
    if w == "W1":
        import w1_adamw as mod
        n = int(args.size or 1 << 20)
        nt = 1 if args.layout == "flat" else int(args.layout)
        ps, gs = mod.make_data(n, nt)
        step, _ = mod.make(args.peer, ps, gs)
    elif w == "W2":
        import w2_galore as mod
        m, n = (int(x) for x in (args.size or "4096x1024").split("x"))
        W, G, P = mod.make_data(m, n, args.rank)
        step, _ = mod.make_steady(args.peer, W, G, P)
    elif w == "W3":
        import w3_muon as mod
        m, n = (int(x) for x in (args.size or "1024x1024").split("x"))
        W, G = mod.make_data(m, n)
        step, _ = mod.make(args.peer, W, G)
    else:
        raise ValueError(w)
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    for _ in range(max(args.warmup - 1, 0)):
        step()
    return mod, step, first


def optic_cmd(args, extra):
    cmd = [args.optic, "bench", args.workload, "--backend", args.backend, "--dtype", args.dtype]
    if args.size and args.workload != "W4":
        cmd += ["--size", args.size]
    if args.workload == "W1":
        cmd += ["--layout", args.layout]
    if args.workload == "W2":
        cmd += ["--rank", str(args.rank)]
    return cmd + extra


def summary(args, optic_med, peer_med, probe, unit="median_s"):
    out = {"workload": args.workload, "peer": args.peer, "size": args.size, "backend": args.backend,
           f"optic_{unit}": optic_med, f"peer_{unit}": peer_med, "speedup": round(peer_med / optic_med, 4),
           "optic_time_over_peer": round(optic_med / peer_med, 4), "rounds": args.rounds,
           "probe_sgemm_gflops": probe}
    print(json.dumps(out), flush=True)
    print(f"# {args.workload} optic ({args.backend}) {optic_med * 1e3:.3f} ms vs {args.peer} {peer_med * 1e3:.3f} ms:"
          f" speedup {peer_med / optic_med:.3f}x (optic/peer time {optic_med / peer_med:.3f}), probe {probe}",
          flush=True)


def run_steps(args):
    """W1-W3: per-step times, interleaved rounds."""
    mod, step, first = build_peer(args)
    optic = Optic(optic_cmd(args, ["--serve", "--steps", str(args.steps), "--warmup", str(args.warmup)]))
    probe = mod.machine_probe()
    times = {"optic": [], "peer": []}
    rmeds = {"optic": [], "peer": []}
    for r in range(args.rounds):
        for side in (("optic", "peer") if r % 2 == 0 else ("peer", "optic")):
            ts = optic.round() if side == "optic" else peer_block(step, args.untimed, args.steps)
            times[side] += ts
            rmeds[side].append(statistics.median(ts))
            time.sleep(args.gap_ms / 1e3)
    orec = optic.finish()
    orec["probe_sgemm_gflops"] = probe
    print(json.dumps(orec), flush=True)
    ts = times["peer"]
    med = statistics.median(ts)
    prec = {"workload": orec["workload"], "impl": args.peer, "size": orec["size"], "threads": 2, "steps": len(ts),
            "median_s": med, "best_s": min(ts), "round_median_min_s": min(rmeds["peer"]),
            "round_median_max_s": max(rmeds["peer"]), "first_call_s": first, "probe_sgemm_gflops": probe}
    print(json.dumps(prec), flush=True)
    summary(args, statistics.median(times["optic"]), med, probe)


def dump_w4(mod, d):
    student, teacher, X, Y = mod.make_problem()
    import numpy as np
    for k, v in student.items():
        np.save(os.path.join(d, f"student_{k}.npy"), v)
    for k, v in teacher.items():
        np.save(os.path.join(d, f"teacher_{k}.npy"), v)
    np.save(os.path.join(d, "X.npy"), X)
    np.save(os.path.join(d, "Y.npy"), Y)
    return student, X, Y


def run_w4(args):
    import w4_mlp_train as mod
    tmp = tempfile.mkdtemp(prefix="optic_w4_")
    try:
        student, X, Y = dump_w4(mod, tmp)
        if args.peer == "jax_jit":
            run, reset, fla = mod.make_jax(student, X, Y)
        else:
            run, reset, fla = mod.make_torch(student, X, Y, args.peer == "torch_compile")
        t0 = time.perf_counter()
        run(1)
        first = time.perf_counter() - t0
        run(args.warmup)
        optic = Optic(optic_cmd(args, ["--serve", "--data", tmp, "--steps", str(args.steps),
                                       "--warmup", str(args.warmup)]))
        probe = mod.machine_probe()
        walls = {"optic": [], "peer": []}
        finals, lasts, inits = [], [], []
        for r in range(args.rounds):
            for side in (("optic", "peer") if r % 2 == 0 else ("peer", "optic")):
                if side == "optic":
                    walls["optic"] += optic.round()
                else:
                    reset()
                    t0 = time.perf_counter()
                    losses = run(args.steps)
                    walls["peer"].append(time.perf_counter() - t0)
                    finals.append(fla())
                    lasts.append(losses[-1])
                    inits.append(losses[0])
                time.sleep(args.gap_ms / 1e3)
        orec = optic.finish()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    orec["probe_sgemm_gflops"] = probe
    print(json.dumps(orec), flush=True)
    med = statistics.median(walls["peer"])
    sps = args.steps / med
    print(json.dumps({"workload": "W4_mlp_train", "impl": args.peer, "size": orec["size"], "threads": 2,
                      "steps": args.steps, "repeats": len(walls["peer"]), "median_s": med,
                      "steps_per_s": round(sps, 1), "gflops": round(mod.flops_per_step() * sps / 1e9, 2),
                      "first_call_s": first, "initial_loss": inits[0], "last_step_loss": lasts[0],
                      "final_loss_all": statistics.median(finals), "probe_sgemm_gflops": probe}), flush=True)
    summary(args, statistics.median(walls["optic"]), med, probe)


def run_w5(args):
    """Fresh processes, alternating: optic from its source file, the peer's --child case (cold cache)."""
    import w4_mlp_train as mod
    tmp = tempfile.mkdtemp(prefix="optic_w5_")
    try:
        dump_w4(mod, tmp)
        recs = {"optic": [], "peer": []}
        for r in range(args.rounds):
            for side in (("optic", "peer") if r % 2 == 0 else ("peer", "optic")):
                if side == "optic":
                    cmd = optic_cmd(args, ["--repeats", "1", "--data", tmp])
                    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                else:
                    cache = tempfile.mkdtemp(prefix="w5cache_")
                    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=os.path.join(cache, "inductor"))
                    cmd = [sys.executable, os.path.join(PEERS, "w5_compile_latency.py"), "--child", args.peer]
                    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
                    shutil.rmtree(cache, ignore_errors=True)
                recs[side].append(json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1]))
                time.sleep(args.gap_ms / 1e3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for side in ("optic", "peer"):
        med = {k: statistics.median(r[k] for r in recs[side]) for k in ("first_call_s", "steady_s")}
        print(json.dumps({"workload": "W5_compile_latency", "impl": "optic_mlp" if side == "optic" else args.peer,
                          "cache": "cold", "repeats": args.rounds, **med}), flush=True)
    o = statistics.median(r["first_call_s"] for r in recs["optic"])
    p = statistics.median(r["first_call_s"] for r in recs["peer"])
    summary(args, o, p, None, unit="first_call_s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", choices=["W1", "W2", "W3", "W4", "W5"])
    ap.add_argument("peer", help="a peer impl of the workload's script (W5: torch_mlp or jax_mlp)")
    ap.add_argument("--optic", required=True, help="the optic binary (release build)")
    ap.add_argument("--size", default=None, help="W1: N; W2, W3: MxN (defaults: the scripts' first)")
    ap.add_argument("--layout", default="flat", help="W1: flat or a tensor count")
    ap.add_argument("--rank", type=int, default=128, help="W2")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per round (W4: steps per run)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (W4: runs; W5: processes)")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--gap-ms", type=float, default=20.0, help="pause between blocks (at least 20)")
    ap.add_argument("--backend", default="jit", help="optic's executor: interp or jit")
    ap.add_argument("--dtype", default="f32")
    args = ap.parse_args()
    args.gap_ms = max(args.gap_ms, 20.0)
    steps, rounds, warmup, untimed = DEFAULTS.get(args.workload, (20, 3, 0, 0))
    args.steps = args.steps or steps
    args.rounds = args.rounds or rounds
    args.warmup = args.warmup if args.warmup is not None else warmup
    args.untimed = untimed
    if args.workload in ("W1", "W2", "W3"):
        run_steps(args)
    elif args.workload == "W4":
        run_w4(args)
    else:
        run_w5(args)


if __name__ == "__main__":
    main()
