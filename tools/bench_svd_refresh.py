#!/usr/bin/env python3
"""GaLore's projector refresh, optic against torch, interleaved in one run (issue 6, item 6).

    cargo build --release -p optic-runtime --example svd_refresh
    ~/.venv-peers/bin/python tools/bench_svd_refresh.py [--size 4096x1024] [--rank 128] [--rounds 7]

The matrix is W2's (shared/peers/w2_galore.py make_data: numpy default_rng(0), G ~ N(0, 1), f32),
written to a temporary .npy that the optic side reads. The optic side is
`runtime/examples/svd_refresh --serve` (the exact top-k by the Gram route, and the randomized
range finder with q = rank, niter = 2, CholQR2), one round per line written to it; the torch side
is W2's own refresh impls (torch.svd_lowrank(G, q=r, niter=2), and torch.linalg.svd with
--exact). Rounds alternate which side goes first. Prints the medians and the ratios
optic / torch.svd_lowrank (< 1: optic is faster), with the machine probe of the peers' script.
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "2")

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

PEERS = os.environ.get("PEERS_DIR", "/work/shared/peers")
sys.path.insert(0, PEERS)
import w2_galore  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="4096x1024")
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--exact", action="store_true", help="also time torch.linalg.svd")
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"),
                                                   "release/examples/svd_refresh"))
    args = ap.parse_args()
    m, n = (int(x) for x in args.size.split("x"))
    _, G, _ = w2_galore.make_data(m, n, args.rank)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "g.npy")
        np.save(path, G)
        optic = subprocess.Popen([args.bin, "--npy", path, "--rank", str(args.rank), "--serve"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = json.loads(optic.stdout.readline())
        torch_fns = {"torch_svd_lowrank": w2_galore.make_refresh("torch_svd_lowrank", G, args.rank)}
        if args.exact:
            torch_fns["torch_svd"] = w2_galore.make_refresh("torch_svd", G, args.rank)
        w2_galore.build(torch_fns, 1)
        probe = w2_galore.machine_probe()
        times = {k: [] for k in ["optic_gram", "optic_randomized", *torch_fns]}

        def run_optic():
            optic.stdin.write("round\n")
            optic.stdin.flush()
            rec = json.loads(optic.stdout.readline())
            times["optic_gram"].append(rec["gram_s"])
            times["optic_randomized"].append(rec["randomized_s"])

        def run_torch():
            for k, fn in torch_fns.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)

        for r in range(args.rounds):
            for side in (run_optic, run_torch) if r % 2 == 0 else (run_torch, run_optic):
                side()
                time.sleep(0.05)
        optic.stdin.close()
        optic.wait()
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(json.dumps({"impl": k, "size": args.size, "rank": args.rank, "rounds": args.rounds,
                          "median_s": v, "best_s": min(times[k]), "probe_sgemm_gflops": probe}))
    base = med["torch_svd_lowrank"]
    print(json.dumps({"optic_gram_over_torch_svd_lowrank": round(med["optic_gram"] / base, 3),
                      "optic_randomized_over_torch_svd_lowrank": round(med["optic_randomized"] / base, 3),
                      "optic_first_call_s": ready.get("first_call_s"), "probe_sgemm_gflops": probe}))


if __name__ == "__main__":
    main()
