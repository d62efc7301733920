#!/usr/bin/env python3
"""Generates golden fixtures (format opt-reference/1, as ../shared/reference/INDEX.md describes) for
rules, composables and schedules whose peer has no shipped fixture. The inputs (initial values,
gradient sequence, least-squares problem) are copied from shipped fixtures, so every fixture shares
one recipe. Three families:

- CASES: pytorch_optimizer optimizers, on the inputs of po_lion.json and po_lion_lsq.json
  (<name>.json and <name>_lsq.json).
- COMPOSABLES: the composable rules of stdlib/transforms.opt, each against a library peer (an
  optax.chain run by jax in float64, or torch.nn.utils.clip_grad_norm_ before torch.optim.SGD), on
  the inputs of po_lion.json (kind update; W and b, so a global norm spans two tensors).
- SCHEDULES: torch.optim.lr_scheduler schedulers driving torch.optim.SGD or Adam, on the inputs of
  sched_torch_adamw_warmup_cosine.json, recording the lr (and Adam's beta1 when the scheduler
  cycles it) used by every step, as the shipped sched_* fixtures do.

Usage: PYTHON=$(bash ../shared/peers/setup.sh) && $PYTHON tools/gen_fixtures.py
Writes tests/golden/<name>.json (and <name>_lsq.json for CASES).
Tolerances: f64 rtol 1e-12 (the INDEX's floor; no perturbation measurement here); f32 rtol =
max(1e-5, 10 x the peer's own float32 error against its float64 run), atol 1e-14 / 1e-7;
measured.f32_peer_max_scaled_err records that rtol / 10.
"""
import copy
import json
import os
import sys
import warnings

import importlib.metadata

import numpy as np
import pytorch_optimizer as po
import torch

PO_VERSION = importlib.metadata.version("pytorch_optimizer")
HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "tests", "golden")

# name, optimizer class, constructor arguments
CASES = [
    ("po_adabelief", po.AdaBelief, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-16, weight_decay=0.0)),
    ("po_diffgrad", po.DiffGrad, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)),
    ("po_lamb", po.Lamb, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0)),
    # SignSGD with momentum = 0 is signSGD; with momentum > 0 it is Signum (lerp momentum)
    ("po_signsgd", po.SignSGD, dict(lr=0.005, momentum=0.0, weight_decay=0.0)),
    ("po_signum", po.SignSGD, dict(lr=0.005, momentum=0.9, weight_decay=0.1, weight_decouple=True)),
    ("po_signsgd_l2", po.SignSGD, dict(lr=0.005, momentum=0.0, weight_decay=0.1, weight_decouple=False)),
]


def run(cls, kwargs, fixture, dtype, before_step=None, scheduler=None):
    """Runs a torch optimizer on the fixture's problem. `before_step(params)` runs between setting
    the gradients and optimizer.step() (gradient clipping); `scheduler(opt)` makes a
    torch.optim.lr_scheduler whose step() follows every optimizer.step(). Returns the trajectory,
    the losses and the lr and beta1 used by every step."""
    torch.set_default_dtype(torch.float64)
    names = fixture["tensors"]
    init = fixture["inputs"]["init"]
    params = [torch.tensor(init[n], dtype=dtype, requires_grad=True) for n in names]
    opt = cls(params, **kwargs)
    sched = scheduler(opt) if scheduler else None
    steps = fixture["steps"]
    traj = {n: [] for n in names}
    losses = []
    lrs, beta1s = [], []
    if fixture["kind"] == "loss":
        a = torch.tensor(fixture["inputs"]["A"], dtype=dtype)
        b = torch.tensor(fixture["inputs"]["B"], dtype=dtype)
    for t in range(steps):
        opt.zero_grad()
        if fixture["kind"] == "update":
            for p, n in zip(params, names):
                p.grad = torch.tensor(fixture["inputs"]["grads"][n][t], dtype=dtype)
        else:
            loss = 0.5 * ((a @ params[0] - b) ** 2).sum() / a.shape[0]
            losses.append(loss.item())
            loss.backward()
        if before_step:
            before_step(params)
        group = opt.param_groups[0]
        lrs.append(float(group["lr"]))
        if "betas" in group:
            beta1s.append(float(group["betas"][0]))
        opt.step()
        if sched:
            sched.step()
        for p, n in zip(params, names):
            traj[n].append(p.detach().to(torch.float64).tolist())
    if fixture["kind"] == "loss":
        losses.append((0.5 * ((a @ params[0] - b) ** 2).sum() / a.shape[0]).item())
    return traj, losses, lrs, beta1s


def run_optax(make_tx, fixture, dtype):
    """Runs an optax GradientTransformation on the fixture's recorded gradients (kind update) with
    jax in float64 (or float32), params = optax.apply_updates(params, updates) every step."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    names = fixture["tensors"]
    params = {n: jnp.asarray(np.array(fixture["inputs"]["init"][n]), dtype=dtype) for n in names}
    tx = make_tx()
    state = tx.init(params)
    traj = {n: [] for n in names}
    for t in range(fixture["steps"]):
        grads = {n: jnp.asarray(np.array(fixture["inputs"]["grads"][n][t]), dtype=dtype) for n in names}
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        for n in names:
            traj[n].append(np.asarray(params[n], dtype=np.float64).tolist())
    return traj


def scaled_err(t64, t32):
    worst = 0.0
    for n in t64:
        for r, c in zip(t64[n], t32[n]):
            r, c = torch.tensor(r), torch.tensor(c)
            worst = max(worst, ((r - c).abs().max() / r.abs().max().clamp_min(1e-300)).item())
    return worst


def load(base):
    with open(os.path.join(GOLDEN, base + ".json")) as f:
        return json.load(f)


def write(out):
    with open(os.path.join(GOLDEN, out["name"] + ".json"), "w") as f:
        json.dump(out, f)


def tolerance(out, t64, t32):
    """Sets the tolerance and measurement fields from the float64 and float32 peer runs."""
    f32 = max(1e-5, 10 * scaled_err(t64, t32))
    out["tolerance"] = {"float64": {"rtol": 1e-12, "atol": 1e-14}, "float32": {"rtol": f32, "atol": 1e-7}}
    out["measured"] = {"f32_peer_max_scaled_err": f32 / 10}
    print(out["name"], "f32 rtol", f32, file=sys.stderr)


def po_fixtures():
    for name, cls, kwargs in CASES:
        for suffix, base in (("", "po_lion"), ("_lsq", "po_lion_lsq")):
            fx = load(base)
            out = copy.deepcopy(fx)
            t64, l64, _, _ = run(cls, kwargs, fx, torch.float64)
            t32, _, _, _ = run(cls, kwargs, fx, torch.float32)
            out["name"] = name + suffix
            out["provenance"] = (
                "opt-reference/1; generated by tools/gen_fixtures.py (optic) on the inputs of "
                f"{base}.json; torch {torch.__version__}, pytorch_optimizer {PO_VERSION}; float64, CPU"
            )
            out["peer"] = {"package": "pytorch_optimizer", "version": PO_VERSION, "api": cls.__name__}
            out["hyper"] = {"constructor_args": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}}
            out["notes"] = [f"pytorch_optimizer.{cls.__name__} with default options except those listed; "
                            "inputs copied from " + base + ".json."]
            out["trajectory"] = t64
            out["final_state"] = {n: t64[n][-1] for n in t64}
            if fx["kind"] == "loss":
                out["loss"] = l64
            tolerance(out, t64, t32)
            for k in ("cross_check", "extra"):
                out.pop(k, None)
            write(out)


# ---------------------------------------------------------------------------------- composables


def optax_case(api, make_tx):
    """A composable whose peer is an optax transformation, built by make_tx() (optax imported)."""
    def runner(fx, dtype):
        import jax.numpy as jnp

        return run_optax(make_tx, fx, jnp.float64 if dtype == torch.float64 else jnp.float32)

    return {"package": "optax", "api": api}, runner


def torch_clip_case(api, per_tensor, max_norm, lr):
    """torch.nn.utils.clip_grad_norm_ (over all parameters, or each tensor alone) before torch SGD."""
    def clip(params):
        groups = [[p] for p in params] if per_tensor else [params]
        for g in groups:
            torch.nn.utils.clip_grad_norm_(g, max_norm)

    def runner(fx, dtype):
        return run(torch.optim.SGD, dict(lr=lr), fx, dtype, before_step=clip)[0]

    return {"package": "torch", "api": api}, runner


def _optax():
    import optax

    return optax


# name, (peer, runner), note
COMPOSABLES = [
    ("optax_clip_value",
     *optax_case("optax.chain(optax.clip(1.0), optax.scale(-0.05))",
                 lambda: _optax().chain(_optax().clip(1.0), _optax().scale(-0.05))),
     "elementwise clipping of the gradient to [-1, 1], then a plain descent step"),
    ("torch_clip_grad_norm",
     *torch_clip_case("torch.nn.utils.clip_grad_norm_([p], 3.0) for each p, then torch.optim.SGD(lr=0.1)",
                      True, 3.0, 0.1),
     "each tensor clipped alone: W at every step, b at steps 2, 3, 15, 19 and 22"),
    ("torch_clip_grad_norm_global",
     *torch_clip_case("torch.nn.utils.clip_grad_norm_([W, b], 8.0), then torch.optim.SGD(lr=0.1)",
                      False, 8.0, 0.1),
     "one norm over W and b: clipping is active at 12 of the 25 steps (1-4, 10-12, 15, 19-22)"),
    ("optax_clip_by_global_norm",
     *optax_case("optax.chain(optax.clip_by_global_norm(8.0), optax.scale(-0.1))",
                 lambda: _optax().chain(_optax().clip_by_global_norm(8.0), _optax().scale(-0.1))),
     "one norm over W and b, g * 8 / norm when norm >= 8 (no 1e-6 as in torch's clip_grad_norm_): "
     "clipping is active at 12 of the 25 steps (1-4, 10-12, 15, 19-22)"),
    ("optax_scale",
     *optax_case("optax.scale(-0.05)", lambda: _optax().scale(-0.05)),
     "the descent step alone"),
    ("optax_l2",
     *optax_case("optax.chain(optax.add_decayed_weights(0.1), optax.scale(-0.05))",
                 lambda: _optax().chain(_optax().add_decayed_weights(0.1), _optax().scale(-0.05))),
     "coupled L2: g + 0.1 * param before the step"),
    ("optax_adamw",
     *optax_case("optax.adamw(0.01, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1)",
                 lambda: _optax().adamw(0.01, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1)),
     "decoupled decay: -lr * (adam direction + 0.1 * param), i.e. Adam followed by -0.001 * param"),
    ("optax_trace",
     *optax_case("optax.chain(optax.trace(0.9), optax.scale(-0.05))",
                 lambda: _optax().chain(_optax().trace(0.9), _optax().scale(-0.05))),
     "momentum accumulator t = 0.9 t + g"),
    ("optax_trace_nesterov",
     *optax_case("optax.chain(optax.trace(0.9, nesterov=True), optax.scale(-0.05))",
                 lambda: _optax().chain(_optax().trace(0.9, nesterov=True), _optax().scale(-0.05))),
     "Nesterov: g + 0.9 t with the updated t"),
    ("optax_ema",
     *optax_case("optax.chain(optax.ema(0.9, debias=True), optax.scale(-0.05))",
                 lambda: _optax().chain(_optax().ema(0.9, debias=True), _optax().scale(-0.05))),
     "EMA of the gradients, divided by 1 - 0.9^t (1-based t)"),
    ("optax_ema_nodebias",
     *optax_case("optax.chain(optax.ema(0.9, debias=False), optax.scale(-0.05))",
                 lambda: _optax().chain(_optax().ema(0.9, debias=False), _optax().scale(-0.05))),
     "EMA of the gradients without debiasing"),
    ("optax_chain",
     *optax_case("optax.chain(optax.clip(2.0), optax.add_decayed_weights(0.01), optax.trace(0.9, nesterov=True), "
                 "optax.ema(0.5), optax.scale(-0.02))",
                 lambda: _optax().chain(_optax().clip(2.0), _optax().add_decayed_weights(0.01),
                                        _optax().trace(0.9, nesterov=True), _optax().ema(0.5),
                                        _optax().scale(-0.02))),
     "five transformations in a row, each with its own state"),
]


def composable_fixtures():
    import jax
    import optax

    base = "po_lion"
    fx = load(base)
    for name, peer, runner, note in COMPOSABLES:
        t64 = runner(fx, torch.float64)
        t32 = runner(fx, torch.float32)
        out = copy.deepcopy(fx)
        out["name"] = name
        if peer["package"] == "optax":
            versions = f"optax {optax.__version__}, jax {jax.__version__} (jax_enable_x64)"
            peer = dict(peer, version=optax.__version__)
        else:
            versions = f"torch {torch.__version__}"
            peer = dict(peer, version=torch.__version__)
        out["provenance"] = (
            "opt-reference/1; generated by tools/gen_fixtures.py (optic) on the inputs of "
            f"{base}.json; {versions}; float64, CPU"
        )
        out["peer"] = peer
        out["hyper"] = {"description": peer["api"]}
        out["notes"] = [f"{peer['api']}: {note}; inputs copied from {base}.json. The float32 run rounds the "
                        "inputs to float32 once and runs the peer in float32."]
        out["trajectory"] = t64
        out["final_state"] = {n: t64[n][-1] for n in t64}
        tolerance(out, t64, t32)
        for k in ("cross_check", "extra"):
            out.pop(k, None)
        write(out)


# ---------------------------------------------------------------------------------- schedules

S = torch.optim.lr_scheduler
SGD_M = (torch.optim.SGD, dict(lr=0.05, momentum=0.9), "torch.optim.SGD(lr=0.05, momentum=0.9)")
ADAM = (torch.optim.Adam, dict(lr=0.01), "torch.optim.Adam(lr=0.01)")

# name, (optimizer class, arguments, description), scheduler factory, description
SCHEDULES = [
    ("sched_torch_sgd_exponential", SGD_M, lambda o: S.ExponentialLR(o, gamma=0.9), "ExponentialLR(gamma=0.9)"),
    ("sched_torch_adam_step", ADAM, lambda o: S.StepLR(o, step_size=7, gamma=0.5), "StepLR(step_size=7, gamma=0.5)"),
    ("sched_torch_sgd_polynomial",
     (torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True),
      "torch.optim.SGD(lr=0.05, momentum=0.9, nesterov=True)"),
     lambda o: S.PolynomialLR(o, total_iters=20, power=2.0), "PolynomialLR(total_iters=20, power=2.0)"),
    ("sched_torch_adam_onecycle", ADAM, lambda o: S.OneCycleLR(o, max_lr=0.02, total_steps=25),
     "OneCycleLR(max_lr=0.02, total_steps=25) (pct_start=0.3, anneal_strategy='cos', cycle_momentum=True, "
     "base_momentum=0.85, max_momentum=0.95, div_factor=25, final_div_factor=1e4)"),
    ("sched_torch_sgd_onecycle_three_phase", SGD_M,
     lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=25, pct_start=0.25, anneal_strategy="linear",
                            div_factor=10.0, final_div_factor=100.0, three_phase=True),
     "OneCycleLR(max_lr=0.1, total_steps=25, pct_start=0.25, anneal_strategy='linear', div_factor=10, "
     "final_div_factor=100, three_phase=True) (cycle_momentum=True, base_momentum=0.85, max_momentum=0.95)"),
    ("sched_torch_sgd_warm_restarts", SGD_M,
     lambda o: S.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=1, eta_min=1e-3),
     "CosineAnnealingWarmRestarts(T_0=5, T_mult=1, eta_min=1e-3)"),
    ("sched_torch_adam_warm_restarts_mult2", ADAM,
     lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
     "CosineAnnealingWarmRestarts(T_0=3, T_mult=2, eta_min=0)"),
    ("sched_torch_sgd_linear", SGD_M,
     lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=20),
     "LinearLR(start_factor=1.0, end_factor=0.1, total_iters=20)"),
    ("sched_torch_adam_constant", ADAM, lambda o: S.ConstantLR(o, factor=0.5, total_iters=5),
     "ConstantLR(factor=0.5, total_iters=5)"),
    ("sched_torch_sgd_sequential", SGD_M,
     lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.2, end_factor=1.0, total_iters=4),
                                  S.ExponentialLR(o, gamma=0.9)], milestones=[6]),
     "SequentialLR([LinearLR(start_factor=0.2, end_factor=1.0, total_iters=4), ExponentialLR(gamma=0.9)], "
     "milestones=[6])"),
]


def schedule_fixtures():
    base = "sched_torch_adamw_warmup_cosine"
    fx = load(base)
    for name, (cls, kwargs, opt_desc), make_sched, sched_desc in SCHEDULES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t64, _, lrs, beta1s = run(cls, kwargs, fx, torch.float64, scheduler=make_sched)
            t32, _, lrs32, _ = run(cls, kwargs, fx, torch.float32, scheduler=make_sched)
        assert lrs == lrs32, "the schedule does not depend on the dtype"
        # Adam's beta1 is recorded only when the scheduler changes it
        cycles_beta1 = len(set(beta1s)) > 1
        api = cls.__module__.rsplit(".", 1)[0] + "." + cls.__name__
        out = {
            "format": "opt-reference/1",
            "name": name,
            "provenance": "opt-reference/1; generated by tools/gen_fixtures.py (optic) on the inputs of "
            f"{base}.json; torch {torch.__version__}; float64, CPU",
            "kind": fx["kind"],
            "peer": {"package": "torch", "version": torch.__version__,
                     "api": f"{api} + torch.optim.lr_scheduler.{sched_desc.split('(')[0]}"},
            "hyper": {"description": {"optimizer": opt_desc, "scheduler": sched_desc}},
            "notes": [
                f"{opt_desc} driven by torch.optim.lr_scheduler.{sched_desc}; inputs copied from {base}.json.",
                "scheduler.step() is called AFTER each optimizer.step(); lr_schedule[t] is the lr used by step "
                "t+1" + (", beta1_schedule[t] Adam's beta1 used by step t+1 (OneCycleLR cycles it)."
                         if cycles_beta1 else "."),
                "The float32 run rounds the inputs to float32 once and runs the optimizer in float32 "
                "(the scheduler's values are Python floats in both).",
            ],
            "tensors": fx["tensors"],
            "shapes": fx["shapes"],
            "steps": fx["steps"],
            "step_convention": fx["step_convention"],
            "inputs": fx["inputs"],
            "lr_schedule": lrs,
        }
        if cycles_beta1:
            out["beta1_schedule"] = beta1s
        if "momentum" in kwargs and "OneCycleLR" in sched_desc:
            out["notes"].append("OneCycleLR also cycles SGD's momentum (recorded in extra.momentum_schedule).")
            out["extra"] = {"momentum_schedule": momentum_values(cls, kwargs, fx, make_sched)}
        out["trajectory"] = t64
        out["final_state"] = {n: t64[n][-1] for n in t64}
        tolerance(out, t64, t32)
        write(out)


def momentum_values(cls, kwargs, fx, make_sched):
    """SGD's momentum used by every step under the scheduler."""
    params = [torch.zeros(1, requires_grad=True)]
    opt = cls(params, **kwargs)
    sched = make_sched(opt)
    values = []
    for _ in range(fx["steps"]):
        values.append(float(opt.param_groups[0]["momentum"]))
        params[0].grad = torch.zeros(1)
        opt.step()
        sched.step()
    return values


def main():
    po_fixtures()
    composable_fixtures()
    schedule_fixtures()


if __name__ == "__main__":
    main()
