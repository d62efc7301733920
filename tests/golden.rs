//! Golden trajectories: every first-order fixture in `tests/golden/` (byte-identical copies of
//! `../shared/reference/*.json`, format opt-reference/1) is replayed through the stdlib rule
//! configured as the fixture's peer was, in f64 and in f32, and must agree with the recorded
//! trajectory at the fixture's own tolerance (`check_reference.py`'s metric, `replay::compare`).
//! The table in `golden!` below is the one place that maps fixtures to rule expressions, so it
//! doubles as documentation of how each peer's optimizer is spelled in the language. Fixtures whose
//! tolerance assumes the peer's arbitrary choices are substituted (GaLore's SVD bases, SOAP's
//! eigenbases, Kron's probes) replay with `inject`, as `optic replay --inject`
//! (tests/golden_inject.rs tests it further). The replay
//! core (`src/replay.rs`) is included as a module rather than made a library target: the
//! package stays a single binary, and the tests call the same code the CLI runs without a
//! process per fixture. The `optic replay` command itself is tested at the end, through the binary.

// The CLI glue of replay.rs is used by the binary only.
#[allow(dead_code)]
#[path = "../src/replay.rs"]
mod replay;

mod common;

use common::{optic, stderr};
use ndarray::ArrayD;
use optic_compiler::interp::Scalar;
use replay::{compare, replay, replay_on, replay_with, schedule_values, Backend, Dtype};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One fixture and the rule expression that configures the stdlib rule as its peer was.
struct Golden {
    /// The fixture's file name without `.json`.
    fixture: &'static str,
    /// The rule expression (f64, and f32 unless `rule_f32` is given).
    rule: &'static str,
    /// The rule for f32 when the peer's configuration depends on the dtype.
    rule_f32: Option<&'static str>,
    /// The schedule expression whose values must match the fixture's `lr_schedule`.
    lr_schedule: Option<&'static str>,
    /// The schedule expression whose values must match the fixture's `beta1_schedule`.
    beta1_schedule: Option<&'static str>,
    /// Whether the fixture's recorded choices (`extra`) replace the rule's `recorded` values.
    inject: bool,
}

/// Builds the [`GOLDEN`] table and one test per entry, named after the fixture.
macro_rules! golden {
    (@opt) => { None };
    (@opt $x:literal) => { Some($x) };
    (@flag) => { false };
    (@flag $x:literal) => { $x };
    ($($name:ident => $rule:literal $(, f32 $rule32:literal)? $(, lr_schedule $sched:literal)?
       $(, beta1_schedule $beta1:literal)? $(, inject $inject:literal)?;)*) => {
        const GOLDEN: &[Golden] = &[$(Golden {
            fixture: stringify!($name),
            rule: $rule,
            rule_f32: golden!(@opt $($rule32)?),
            lr_schedule: golden!(@opt $($sched)?),
            beta1_schedule: golden!(@opt $($beta1)?),
            inject: golden!(@flag $($inject)?),
        },)*];
        $(
            #[test]
            fn $name() {
                check_fixture(stringify!($name));
            }
        )*
    };
}

// Peer argument names map to rule parameters as: betas = (beta1, beta2[, beta3]); pytorch_optimizer
// None defaults (beta3, t_alpha_beta3) are the rules' 0; FAdam eps_2 = eps2; SPAM warmup_epoch =
// warmup; torch Adafactor eps = (eps1, eps2) with eps1 = None meaning finfo(dtype).eps. Peer options
// the rules do not offer (foreach, maximize, ...; AdamP/Prodigy weight_decouple, which the peers
// ignore; MARS cautious/ams_bound = false) are left out. The lsq twins differ only in lr unless noted.
golden! {
    // ---------------------------------------------------------------- torch.optim
    torch_sgd => "sgd(lr = 0.05, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false)";
    torch_sgd_lsq => "sgd(lr = 0.1, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false)";
    torch_sgd_momentum => "sgd(lr = 0.05, momentum = 0.9, dampening = 0, weight_decay = 0, nesterov = false)";
    torch_sgd_momentum_lsq => "sgd(lr = 0.05, momentum = 0.9, dampening = 0, weight_decay = 0, nesterov = false)";
    torch_sgd_nesterov => "sgd(lr = 0.05, momentum = 0.9, dampening = 0, weight_decay = 0, nesterov = true)";
    torch_sgd_nesterov_lsq => "sgd(lr = 0.05, momentum = 0.9, dampening = 0, weight_decay = 0, nesterov = true)";
    torch_sgd_wd => "sgd(lr = 0.05, momentum = 0.9, dampening = 0.1, weight_decay = 0.1, nesterov = false)";
    torch_sgd_wd_lsq => "sgd(lr = 0.05, momentum = 0.9, dampening = 0.1, weight_decay = 0.1, nesterov = false)";
    torch_adam => "adam(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, amsgrad = false)";
    torch_adam_lsq => "adam(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, amsgrad = false)";
    torch_adam_l2 => "adam(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1, amsgrad = false)";
    torch_adam_l2_lsq => "adam(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1, amsgrad = false)";
    torch_adamw => "adamw(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1, amsgrad = false)";
    torch_adamw_lsq => "adamw(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1, amsgrad = false)";
    torch_adam_amsgrad => "adam(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, amsgrad = true)";
    torch_adam_amsgrad_lsq => "adam(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, \
                               amsgrad = true)";
    torch_adamax => "adamax(lr = 0.02, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0)";
    torch_adamax_lsq => "adamax(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0)";
    torch_nadam => "nadam(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, \
                    momentum_decay = 4e-3, decoupled_weight_decay = false)";
    torch_nadam_lsq => "nadam(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, \
                        momentum_decay = 4e-3, decoupled_weight_decay = false)";
    torch_radam => "radam(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, \
                    decoupled_weight_decay = false)";
    torch_radam_lsq => "radam(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, \
                        decoupled_weight_decay = false)";
    torch_adagrad => "adagrad(lr = 0.1, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0.1, eps = 1e-10)";
    torch_adagrad_lsq => "adagrad(lr = 0.5, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0.1, \
                          eps = 1e-10)";
    torch_rmsprop => "rmsprop(lr = 0.01, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false)";
    torch_rmsprop_lsq => "rmsprop(lr = 0.01, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, \
                          centered = false)";
    torch_rmsprop_centered => "rmsprop(lr = 0.01, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, \
                               centered = true)";
    torch_rmsprop_centered_lsq => "rmsprop(lr = 0.01, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, \
                                   centered = true)";
    torch_rmsprop_momentum => "rmsprop(lr = 0.01, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0.9, \
                               centered = false)";
    torch_rmsprop_momentum_lsq => "rmsprop(lr = 0.005, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0.9, \
                                   centered = false)";
    torch_adadelta => "adadelta(lr = 1.0, rho = 0.9, eps = 1e-6, weight_decay = 0)";
    torch_adadelta_lsq => "adadelta(lr = 1.0, rho = 0.9, eps = 1e-6, weight_decay = 0)";
    // eps1 = None is finfo(param.dtype).eps: the f32 peer run used float32's.
    torch_adafactor => "adafactor(lr = 0.01, beta2_decay = -0.8, eps1 = 2.220446049250313e-16, eps2 = 1e-3, \
                        d = 1.0, weight_decay = 0)",
        f32 "adafactor(lr = 0.01, beta2_decay = -0.8, eps1 = 1.1920928955078125e-7, eps2 = 1e-3, \
             d = 1.0, weight_decay = 0)";
    torch_adafactor_lsq => "adafactor(lr = 0.05, beta2_decay = -0.8, eps1 = 2.220446049250313e-16, eps2 = 1e-3, \
                            d = 1.0, weight_decay = 0)",
        f32 "adafactor(lr = 0.05, beta2_decay = -0.8, eps1 = 1.1920928955078125e-7, eps2 = 1e-3, \
             d = 1.0, weight_decay = 0)";

    // ---------------------------------------------------------------- pytorch_optimizer 4.1.0
    // Generated here by tools/gen_fixtures.py (pytorch_optimizer 4.1.0 has no shipped fixture for these).
    po_adabelief => "adabelief(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-16)";
    po_adabelief_lsq => "adabelief(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-16)";
    po_diffgrad => "diffgrad(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, inner_eps = 1e-15)";
    po_diffgrad_lsq => "diffgrad(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, inner_eps = 1e-15)";
    po_lamb => "lamb(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-6)";
    po_lamb_lsq => "lamb(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-6)";
    po_lion => "lion(lr = 0.005, beta1 = 0.9, beta2 = 0.99, weight_decay = 0.1, weight_decouple = true, \
                fixed_decay = false)";
    po_lion_lsq => "lion(lr = 0.01, beta1 = 0.9, beta2 = 0.99, weight_decay = 0.1, weight_decouple = true, \
                    fixed_decay = false)";
    po_adabound => "adabound(lr = 0.01, final_lr = 0.1, beta1 = 0.9, beta2 = 0.999, gamma = 1e-3, eps = 1e-8, \
                    weight_decay = 0, weight_decouple = true, fixed_decay = false, ams_bound = false)";
    po_adabound_lsq => "adabound(lr = 0.05, final_lr = 0.1, beta1 = 0.9, beta2 = 0.999, gamma = 1e-3, eps = 1e-8, \
                        weight_decay = 0, weight_decouple = true, fixed_decay = false, ams_bound = false)";
    // SignSGD(momentum = 0) is signSGD and SignSGD(momentum > 0) Signum; weight decay decoupled by default
    po_signsgd => "sign_sgd(lr = 0.005, weight_decay = 0, weight_decouple = true)";
    po_signsgd_lsq => "sign_sgd(lr = 0.005, weight_decay = 0, weight_decouple = true)";
    po_signsgd_l2 => "sign_sgd(lr = 0.005, weight_decay = 0.1, weight_decouple = false)";
    po_signsgd_l2_lsq => "sign_sgd(lr = 0.005, weight_decay = 0.1, weight_decouple = false)";
    po_signum => "signum(lr = 0.005, beta = 0.9, weight_decay = 0.1, weight_decouple = true)";
    po_signum_lsq => "signum(lr = 0.005, beta = 0.9, weight_decay = 0.1, weight_decouple = true)";
    po_adamp => "adamp(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1, fixed_decay = false, \
                 delta = 0.1, wd_ratio = 0.1, nesterov = false)";
    po_adamp_lsq => "adamp(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1, \
                     fixed_decay = false, delta = 0.1, wd_ratio = 0.1, nesterov = false)";
    // delta = 10 makes the projection branch fire
    po_adamp_projected => "adamp(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1, \
                           fixed_decay = false, delta = 10.0, wd_ratio = 0.1, nesterov = false)";
    po_adamp_projected_lsq => "adamp(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.1, \
                               fixed_decay = false, delta = 10.0, wd_ratio = 0.1, nesterov = false)";
    po_adan => "adan(lr = 0.01, beta1 = 0.98, beta2 = 0.92, beta3 = 0.99, eps = 1e-8, weight_decay = 0, \
                weight_decouple = false, max_grad_norm = 0)";
    po_adan_lsq => "adan(lr = 0.05, beta1 = 0.98, beta2 = 0.92, beta3 = 0.99, eps = 1e-8, weight_decay = 0, \
                    weight_decouple = false, max_grad_norm = 0)";
    po_adan_wd => "adan(lr = 0.01, beta1 = 0.98, beta2 = 0.92, beta3 = 0.99, eps = 1e-8, weight_decay = 0.02, \
                   weight_decouple = false, max_grad_norm = 0)";
    po_adan_wd_lsq => "adan(lr = 0.05, beta1 = 0.98, beta2 = 0.92, beta3 = 0.99, eps = 1e-8, weight_decay = 0.02, \
                       weight_decouple = false, max_grad_norm = 0)";
    // t_alpha_beta3 = None is the rule's 0 (no warm-up); the lsq twin has the same lr
    po_ademamix => "ademamix(lr = 0.01, beta1 = 0.9, beta2 = 0.999, beta3 = 0.9999, alpha = 5.0, t_alpha_beta3 = 0, \
                    eps = 1e-8, weight_decay = 0, weight_decouple = false, fixed_decay = false)";
    po_ademamix_lsq => "ademamix(lr = 0.01, beta1 = 0.9, beta2 = 0.999, beta3 = 0.9999, alpha = 5.0, \
                        t_alpha_beta3 = 0, eps = 1e-8, weight_decay = 0, weight_decouple = false, fixed_decay = false)";
    po_ademamix_sched => "ademamix(lr = 0.01, beta1 = 0.9, beta2 = 0.999, beta3 = 0.9999, alpha = 5.0, \
                          t_alpha_beta3 = 20, eps = 1e-8, weight_decay = 0, weight_decouple = false, \
                          fixed_decay = false)";
    po_ademamix_sched_lsq => "ademamix(lr = 0.01, beta1 = 0.9, beta2 = 0.999, beta3 = 0.9999, alpha = 5.0, \
                              t_alpha_beta3 = 20, eps = 1e-8, weight_decay = 0, weight_decouple = false, \
                              fixed_decay = false)";
    // b (a vector) takes MARS's AdamW branch with lr_1d, betas_1d and weight_decay_1d = 0.1
    po_mars => "mars(lr = 3e-3, beta1 = 0.95, beta2 = 0.99, gamma = 0.025, mars_type = \"adamw\", \
                optimize_1d = false, lr_1d = 3e-3, beta1_1d = 0.9, beta2_1d = 0.95, weight_decay = 0, \
                weight_decay_1d = 0.1, eps = 1e-8)";
    po_mars_lsq => "mars(lr = 0.01, beta1 = 0.95, beta2 = 0.99, gamma = 0.025, mars_type = \"adamw\", \
                    optimize_1d = false, lr_1d = 3e-3, beta1_1d = 0.9, beta2_1d = 0.95, weight_decay = 0, \
                    weight_decay_1d = 0.1, eps = 1e-8)";
    po_spam => "spam(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-6, weight_decay = 0, density = 1.0, \
                warmup = 5, threshold = 5000, grad_accu_steps = 2, update_proj_gap = 10)";
    po_spam_lsq => "spam(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-6, weight_decay = 0, density = 1.0, \
                    warmup = 5, threshold = 5000, grad_accu_steps = 2, update_proj_gap = 10)";
    po_stablespam => "stable_spam(lr = 0.01, beta1 = 0.9, beta2 = 0.999, gamma1 = 0.7, gamma2 = 0.9, \
                      theta = 0.999, t_max = 20, eta_min = 0.5, weight_decay = 0, update_proj_gap = 10, eps = 1e-8)";
    po_stablespam_lsq => "stable_spam(lr = 0.05, beta1 = 0.9, beta2 = 0.999, gamma1 = 0.7, gamma2 = 0.9, \
                          theta = 0.999, t_max = 20, eta_min = 0.5, weight_decay = 0, update_proj_gap = 10, \
                          eps = 1e-8)";
    po_fadam => "fadam(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, eps2 = 0.01, weight_decay = 0.1, \
                 clip = 1.0, p = 0.5)";
    po_fadam_lsq => "fadam(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, eps2 = 0.01, weight_decay = 0.1, \
                     clip = 1.0, p = 0.5)";
    // beta3 = None is the rule's 0 (sqrt(beta2)); the lsq twins have the same lr
    po_prodigy => "prodigy(lr = 1.0, beta1 = 0.9, beta2 = 0.999, beta3 = 0, d0 = 1e-6, d_coef = 1.0, \
                   growth_rate = inf, weight_decay = 0, fixed_decay = false, bias_correction = false, \
                   safeguard_warmup = false, eps = 1e-8)";
    po_prodigy_lsq => "prodigy(lr = 1.0, beta1 = 0.9, beta2 = 0.999, beta3 = 0, d0 = 1e-6, d_coef = 1.0, \
                       growth_rate = inf, weight_decay = 0, fixed_decay = false, bias_correction = false, \
                       safeguard_warmup = false, eps = 1e-8)";
    po_prodigy_bc => "prodigy(lr = 1.0, beta1 = 0.9, beta2 = 0.999, beta3 = 0, d0 = 1e-6, d_coef = 1.0, \
                      growth_rate = inf, weight_decay = 0, fixed_decay = false, bias_correction = true, \
                      safeguard_warmup = false, eps = 1e-8)";
    po_prodigy_bc_lsq => "prodigy(lr = 1.0, beta1 = 0.9, beta2 = 0.999, beta3 = 0, d0 = 1e-6, d_coef = 1.0, \
                          growth_rate = inf, weight_decay = 0, fixed_decay = false, bias_correction = true, \
                          safeguard_warmup = false, eps = 1e-8)";
    po_schedulefree_adamw => "schedule_free_adamw(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, \
                              weight_decay = 0, r = 0, weight_lr_power = 2.0, warmup_steps = 5, decoupling_c = 0, \
                              ams_bound = false)";
    po_schedulefree_adamw_lsq => "schedule_free_adamw(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, \
                                  weight_decay = 0, r = 0, weight_lr_power = 2.0, warmup_steps = 5, \
                                  decoupling_c = 0, ams_bound = false)";
    po_schedulefree_adamw_nowarmup => "schedule_free_adamw(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, \
                                       weight_decay = 0, r = 0, weight_lr_power = 2.0, warmup_steps = 0, \
                                       decoupling_c = 0, ams_bound = false)";
    po_schedulefree_adamw_nowarmup_lsq => "schedule_free_adamw(lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, \
                                           weight_decay = 0, r = 0, weight_lr_power = 2.0, warmup_steps = 0, \
                                           decoupling_c = 0, ams_bound = false)";
    // GaLore's matrix group (rank 2, gap 10, scale 0.25) and its plain group (b) share the peer's Adam;
    // the projectors are the peer's (float32 LAPACK SVD, or float64 in the f64svd twins), injected.
    po_galore => "partition(matrices = galore(inner = galore_adam(lr = 0.01, eps = 1e-6), rank = 2, \
                  update_proj_gap = 10, scale = 0.25), vectors = galore_adam(lr = 0.01, eps = 1e-6))", inject true;
    po_galore_f64svd => "partition(matrices = galore(inner = galore_adam(lr = 0.01, eps = 1e-6), rank = 2, \
                         update_proj_gap = 10, scale = 0.25), vectors = galore_adam(lr = 0.01, eps = 1e-6))",
        inject true;
    po_galore_lsq => "galore(inner = galore_adam(lr = 0.05, eps = 1e-6), rank = 2, update_proj_gap = 10, \
                      scale = 0.25)", inject true;
    po_galore_f64svd_lsq => "galore(inner = galore_adam(lr = 0.05, eps = 1e-6), rank = 2, update_proj_gap = 10, \
                             scale = 0.25)", inject true;

    // ---------------------------------------------------------------- composables (stdlib/transforms.opt)
    // Generated by tools/gen_fixtures.py: optax chains run by jax in float64, and
    // torch.nn.utils.clip_grad_norm_ before torch.optim.SGD, on the inputs of po_lion.
    optax_clip_value => "chain(clip_value(1.0), scale(-0.05))";
    // clip_grad_norm_([p], 3.0) for each tensor alone
    torch_clip_grad_norm => "chain(clip_norm(3.0), sgd(lr = 0.1, momentum = 0, dampening = 0, weight_decay = 0, \
                             nesterov = false))";
    // clip_grad_norm_([W, b], 8.0): one norm over both tensors
    torch_clip_grad_norm_global => "chain(clip_global_norm(8.0), sgd(lr = 0.1, momentum = 0, dampening = 0, \
                                    weight_decay = 0, nesterov = false))";
    // optax's global norm clipping has no 1e-6 in the denominator
    optax_clip_by_global_norm => "chain(clip_global_norm(8.0, eps = 0), scale(-0.1))";
    optax_scale => "scale(-0.05)";
    // add_decayed_weights(0.1) before the step is coupled L2
    optax_l2 => "chain(l2(0.1), scale(-0.05))";
    // optax.adamw(0.01, weight_decay = 0.1) = -lr (adam + wd param): Adam, then decoupled decay of lr * wd
    optax_adamw => "chain(adam(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, amsgrad = false), \
                    decay(0.01 * 0.1))";
    optax_trace => "chain(momentum(decay = 0.9, nesterov = false), scale(-0.05))";
    optax_trace_nesterov => "chain(momentum(decay = 0.9, nesterov = true), scale(-0.05))";
    optax_ema => "chain(ema(decay = 0.9, debias = true), scale(-0.05))";
    optax_ema_nodebias => "chain(ema(decay = 0.9, debias = false), scale(-0.05))";
    optax_chain => "chain(clip_value(2.0), l2(0.01), momentum(decay = 0.9, nesterov = true), \
                    ema(decay = 0.5, debias = true), scale(-0.02))";

    // ---------------------------------------------------------------- torch.optim.lr_scheduler
    // SequentialLR([LinearLR(0.1, 1.0, total_iters = 5), CosineAnnealingLR(T_max = 20, eta_min = 1e-4)],
    // milestones = [5]) on AdamW(lr = 0.01, weight_decay = 0.1): the decay uses the scheduled lr. The
    // warm-up LinearLR(0.1, 1.0, total_iters = 5) is `linear_schedule(0.001, 0.01, 5)`.
    sched_torch_adamw_warmup_cosine => "adamw(lr = join(linear_schedule(0.001, 0.01, 5), \
                                        cosine(0.01, total = 20, floor = 1e-4), at = 5), beta1 = 0.9, \
                                        beta2 = 0.999, eps = 1e-8, weight_decay = 0.1, amsgrad = false)",
        lr_schedule "join(linear_schedule(0.001, 0.01, 5), cosine(0.01, total = 20, floor = 1e-4), at = 5)";
    // LambdaLR(lambda s: (s + 1) / 5 if s < 5 else 0.5 (1 + cos(pi (s - 5) / 20))) on
    // SGD(lr = 0.05, momentum = 0.9, nesterov = True)
    sched_torch_sgd_nesterov_lambda_cosine => "sgd(lr = cosine(0.05, warmup = 5, total = 25), momentum = 0.9, \
                                               dampening = 0, weight_decay = 0, nesterov = true)",
        lr_schedule "cosine(0.05, warmup = 5, total = 25)";

    // Generated by tools/gen_fixtures.py on the same inputs; torch.optim.SGD(lr, momentum = 0.9) or
    // torch.optim.Adam(lr = 0.01) with the scheduler's step() after every optimizer step.
    // ExponentialLR(gamma = 0.9) on SGD(lr = 0.05)
    sched_torch_sgd_exponential => "sgd(lr = exponential(0.05, 0.9), momentum = 0.9, dampening = 0, \
                                    weight_decay = 0, nesterov = false)",
        lr_schedule "exponential(0.05, 0.9)";
    // StepLR(step_size = 7, gamma = 0.5) on Adam(lr = 0.01)
    sched_torch_adam_step => "adam(lr = step_decay(0.01, 7, gamma = 0.5), beta1 = 0.9, beta2 = 0.999, eps = 1e-8, \
                              weight_decay = 0, amsgrad = false)",
        lr_schedule "step_decay(0.01, 7, gamma = 0.5)";
    // PolynomialLR(total_iters = 20, power = 2) on SGD(lr = 0.05, momentum = 0.9, nesterov = True)
    sched_torch_sgd_polynomial => "sgd(lr = polynomial(0.05, 20, power = 2), momentum = 0.9, dampening = 0, \
                                   weight_decay = 0, nesterov = true)",
        lr_schedule "polynomial(0.05, 20, power = 2)";
    // OneCycleLR(max_lr = 0.02, total_steps = 25) on Adam: it also cycles beta1 (0.95 -> 0.85 -> 0.95)
    sched_torch_adam_onecycle => "adam(lr = one_cycle(0.02, 25), beta1 = one_cycle_momentum(25), beta2 = 0.999, \
                                  eps = 1e-8, weight_decay = 0, amsgrad = false)",
        lr_schedule "one_cycle(0.02, 25)",
        beta1_schedule "one_cycle_momentum(25)";
    // OneCycleLR(max_lr = 0.1, total_steps = 25, pct_start = 0.25, anneal_strategy = 'linear', div_factor = 10,
    // final_div_factor = 100, three_phase = True) on SGD(momentum = 0.9): it cycles the momentum
    sched_torch_sgd_onecycle_three_phase => "sgd(lr = one_cycle(0.1, 25, pct_start = 0.25, anneal = \"linear\", \
                                             div_factor = 10, final_div_factor = 100, three_phase = true), \
                                             momentum = one_cycle_momentum(25, pct_start = 0.25, \
                                             anneal = \"linear\", three_phase = true), dampening = 0, \
                                             weight_decay = 0, nesterov = false)",
        lr_schedule "one_cycle(0.1, 25, pct_start = 0.25, anneal = \"linear\", div_factor = 10, \
                     final_div_factor = 100, three_phase = true)";
    // CosineAnnealingWarmRestarts(T_0 = 5, T_mult = 1, eta_min = 1e-3) on SGD(lr = 0.05)
    sched_torch_sgd_warm_restarts => "sgd(lr = warm_restarts(0.05, 5, mult = 1, floor = 1e-3), momentum = 0.9, \
                                      dampening = 0, weight_decay = 0, nesterov = false)",
        lr_schedule "warm_restarts(0.05, 5, mult = 1, floor = 1e-3)";
    // CosineAnnealingWarmRestarts(T_0 = 3, T_mult = 2) on Adam: restarts at steps 4, 10 and 22
    sched_torch_adam_warm_restarts_mult2 => "adam(lr = warm_restarts(0.01, 3, mult = 2), beta1 = 0.9, \
                                             beta2 = 0.999, eps = 1e-8, weight_decay = 0, amsgrad = false)",
        lr_schedule "warm_restarts(0.01, 3, mult = 2)";
    // LinearLR(start_factor = 1.0, end_factor = 0.1, total_iters = 20) on SGD(lr = 0.05)
    sched_torch_sgd_linear => "sgd(lr = linear_schedule(0.05, 0.005, 20), momentum = 0.9, dampening = 0, \
                               weight_decay = 0, nesterov = false)",
        lr_schedule "linear_schedule(0.05, 0.005, 20)";
    // ConstantLR(factor = 0.5, total_iters = 5) on Adam(lr = 0.01)
    sched_torch_adam_constant => "adam(lr = join(constant_schedule(0.005), constant_schedule(0.01), at = 5), \
                                  beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0, amsgrad = false)",
        lr_schedule "join(constant_schedule(0.005), constant_schedule(0.01), at = 5)";
    // SequentialLR([LinearLR(0.2, 1.0, total_iters = 4), ExponentialLR(gamma = 0.9)], milestones = [6]) on
    // SGD(lr = 0.05): the warm-up holds 0.05 at steps 5 and 6, the decay restarts from 0.05 at step 7
    sched_torch_sgd_sequential => "sgd(lr = join(linear_schedule(0.01, 0.05, 4), exponential(0.05, 0.9), at = 6), \
                                   momentum = 0.9, dampening = 0, weight_decay = 0, nesterov = false)",
        lr_schedule "join(linear_schedule(0.01, 0.05, 4), exponential(0.05, 0.9), at = 6)";

    // ---------------------------------------------------------------- orthogonalized updates (Muon family)
    // The `_f64` fixtures come from peers patched to run Newton-Schulz in float64, like these rules.
    // torch.optim.Muon: ns_coefficients = (a, b, c), adjust_lr_fn = adjust_lr (None = "original").
    torch_muon_f64 => "muon(lr = 0.02, weight_decay = 0.1, momentum = 0.95, nesterov = true, ns_steps = 5, \
                       a = 3.4445, b = -4.775, c = 2.0315, eps = 1e-7, adjust_lr = \"original\")";
    torch_muon_f64_lsq => "muon(lr = 0.05, weight_decay = 0.1, momentum = 0.95, nesterov = true, ns_steps = 5, \
                           a = 3.4445, b = -4.775, c = 2.0315, eps = 1e-7, adjust_lr = \"original\")";
    torch_muon_f64_rms => "muon(lr = 0.02, weight_decay = 0.1, momentum = 0.95, nesterov = false, ns_steps = 5, \
                           a = 3.4445, b = -4.775, c = 2.0315, eps = 1e-7, adjust_lr = \"match_rms_adamw\")";
    torch_muon_f64_rms_lsq => "muon(lr = 0.05, weight_decay = 0.1, momentum = 0.95, nesterov = false, \
                               ns_steps = 5, a = 3.4445, b = -4.775, c = 2.0315, eps = 1e-7, \
                               adjust_lr = \"match_rms_adamw\")";
    // pytorch_optimizer.Muon: use_muon groups; b (a vector) takes the AdamW group (adamw_lr, adamw_betas,
    // adamw_eps, adamw_wd); use_adjusted_lr = False is "original"
    po_muon_f64 => "partition(matrices = muon(lr = 0.02, weight_decay = 0.1, momentum = 0.95, nesterov = true, \
                    ns_steps = 5, adjust_lr = \"original\"), vectors = adamw(lr = 0.01, beta1 = 0.9, \
                    beta2 = 0.95, eps = 1e-10, weight_decay = 0))";
    po_muon_f64_lsq => "muon(lr = 0.05, weight_decay = 0.1, momentum = 0.95, nesterov = true, ns_steps = 5, \
                        adjust_lr = \"original\")";
    po_normuon_f64 => "partition(matrices = normuon(lr = 0.02, weight_decay = 0, momentum = 0.95, beta2 = 0.95, \
                       nesterov = true, ns_steps = 5, eps = 1e-10, adjust_lr = \"original\"), \
                       vectors = adamw(lr = 0.01, beta1 = 0.9, beta2 = 0.95, eps = 1e-10, weight_decay = 0))";
    po_normuon_f64_lsq => "normuon(lr = 0.05, weight_decay = 0, momentum = 0.95, beta2 = 0.95, nesterov = true, \
                           ns_steps = 5, eps = 1e-10, adjust_lr = \"original\")";
    // AdaMuon's use_adjusted_lr = True (its default) is "match_rms_adamw"; its AdamW group has betas (0.9, 0.999)
    po_adamuon_f64 => "partition(matrices = adamuon(lr = 0.02, beta1 = 0.9, beta2 = 0.95, weight_decay = 0, \
                       ns_steps = 5, eps = 1e-10, adjust_lr = \"match_rms_adamw\"), vectors = adamw(lr = 0.01, \
                       beta1 = 0.9, beta2 = 0.999, eps = 1e-10, weight_decay = 0))";
    po_adamuon_f64_lsq => "adamuon(lr = 0.05, beta1 = 0.9, beta2 = 0.95, weight_decay = 0, ns_steps = 5, \
                           eps = 1e-10, adjust_lr = \"match_rms_adamw\")";
    // As shipped, the peers run Newton-Schulz in bfloat16; their fixtures' tolerance is 3x the distance of
    // the bf16 peer to its f64 twin. These full-precision rules land within it, at the distances measured
    // (the same in f64 and f32, on both backends): torch_muon 1.7e-3 (rtol 1e-2), torch_muon_lsq 1.4e-2
    // (5e-2), po_muon 1.7e-3 (1e-2), po_muon_lsq 1.4e-2 (5e-2), po_normuon 1.2e-3 (5e-3), po_normuon_lsq
    // 2.3e-2 (1e-1), po_adamuon 1.1e-3 (5e-3). po_adamuon_lsq is chaotic in the peer's rounding (n/a): not here.
    torch_muon => "muon(lr = 0.02, weight_decay = 0.1, momentum = 0.95, nesterov = true, ns_steps = 5)";
    torch_muon_lsq => "muon(lr = 0.05, weight_decay = 0.1, momentum = 0.95, nesterov = true, ns_steps = 5)";
    po_muon => "partition(matrices = muon(lr = 0.02, weight_decay = 0.1, momentum = 0.95, nesterov = true, \
                ns_steps = 5), vectors = adamw(lr = 0.01, beta1 = 0.9, beta2 = 0.95, eps = 1e-10, weight_decay = 0))";
    po_muon_lsq => "muon(lr = 0.05, weight_decay = 0.1, momentum = 0.95, nesterov = true, ns_steps = 5)";
    po_normuon => "partition(matrices = normuon(lr = 0.02, weight_decay = 0, momentum = 0.95, beta2 = 0.95, \
                   eps = 1e-10), vectors = adamw(lr = 0.01, beta1 = 0.9, beta2 = 0.95, eps = 1e-10, \
                   weight_decay = 0))";
    po_normuon_lsq => "normuon(lr = 0.05, weight_decay = 0, momentum = 0.95, beta2 = 0.95, eps = 1e-10)";
    po_adamuon => "partition(matrices = adamuon(lr = 0.02, beta1 = 0.9, beta2 = 0.95, weight_decay = 0, \
                   eps = 1e-10), vectors = adamw(lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-10, \
                   weight_decay = 0))";
    // ---------------------------------------------------------------- Kronecker and eigenbasis preconditioners
    // (stdlib/rules_precond.opt; tests/precond.rs has their property tests)
    // pytorch_optimizer.Shampoo(momentum = 0, weight_decay = 0, preconditioning_compute_steps = 1,
    // matrix_eps = 1e-6): matrices L^-1/4 G R^-1/4, the vector b full-matrix AdaGrad
    po_shampoo => "shampoo(lr = 0.01, momentum = 0, weight_decay = 0, weight_decouple = false, fixed_decay = false, \
                   preconditioning_compute_steps = 1, matrix_eps = 1e-6)";
    po_shampoo_lsq => "shampoo(lr = 0.05, momentum = 0, weight_decay = 0, weight_decouple = false, \
                       fixed_decay = false, preconditioning_compute_steps = 1, matrix_eps = 1e-6)";
    // pytorch_optimizer.SOAP(betas = (0.95, 0.95), shampoo_beta = None (-1: beta2), weight_decay = 0.01,
    // precondition_frequency = 10, eps = 1e-8); the eigenbases (extra.eigenbases: the step-1 eigh
    // and the float32 QR refreshes) injected. po_soap_lsq in f32 compares only the fixture's step
    // prefix (tolerance.float32.compare_steps = 1: the peer itself diverges in float32).
    po_soap => "soap(lr = 0.003, beta1 = 0.95, beta2 = 0.95, shampoo_beta = -1, weight_decay = 0.01, \
                precondition_frequency = 10, correct_bias = true, normalize_gradient = false, eps = 1e-8)", inject true;
    po_soap_lsq => "soap(lr = 0.05, beta1 = 0.95, beta2 = 0.95, shampoo_beta = -1, weight_decay = 0.01, \
                    precondition_frequency = 10, correct_bias = true, normalize_gradient = false, eps = 1e-8)",
        inject true;
    // pytorch_optimizer.Kron(momentum = 0.9, precondition_dtype = float64, balance_prob = 0, default
    // update schedule: every step before 500); the Gaussian probes (extra.probe_v) injected. The
    // f64 twins remove the peer's float32 triangular solve; the as-shipped files keep it (looser rtol).
    po_kron_f64 => "psgd_kron(lr = 0.01, momentum = 0.9, weight_decay = 0, weight_decouple = true, \
                    precondition_lr = 0.1, precondition_init_scale = 1.0, momentum_into_precondition_update = true)",
        inject true;
    po_kron_f64_lsq => "psgd_kron(lr = 0.02, momentum = 0.9, weight_decay = 0, weight_decouple = true, \
                        precondition_lr = 0.1, precondition_init_scale = 1.0, \
                        momentum_into_precondition_update = true)", inject true;
    po_kron => "psgd_kron(lr = 0.01, momentum = 0.9, weight_decay = 0, weight_decouple = true, precondition_lr = 0.1, \
                precondition_init_scale = 1.0, momentum_into_precondition_update = true)", inject true;
    po_kron_lsq => "psgd_kron(lr = 0.02, momentum = 0.9, weight_decay = 0, weight_decouple = true, precondition_lr = 0.1, \
                    precondition_init_scale = 1.0, momentum_into_precondition_update = true)", inject true;
}

/// The directory of the copied fixtures.
fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn load(fixture: &str) -> Value {
    let path = golden_dir().join(format!("{fixture}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Replays one fixture in f64 and f32 with its table rule and compares at its own tolerance.
fn check_fixture(fixture: &str) {
    let entry = GOLDEN.iter().find(|g| g.fixture == fixture).expect("every test has a table entry");
    let reference = load(fixture);
    let mut failures = Vec::new();
    // Every fixture on the executor (the default path) and on the interpreter (the oracle).
    for (dtype, backend) in [Dtype::F64, Dtype::F32].into_iter().flat_map(|d| [(d, Backend::Jit), (d, Backend::Interp)])
    {
        let rule = match dtype {
            Dtype::F32 => entry.rule_f32.unwrap_or(entry.rule),
            Dtype::F64 => entry.rule,
        };
        let start = Instant::now();
        // the compiler recurses over expressions; give it the stack the CLI gives it
        let result = optic_compiler::on_big_stack(|| replay_on(&reference, rule, dtype, 0, entry.inject, backend));
        let elapsed = start.elapsed();
        let mut candidate = match result {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{} {backend:?}: replay failed: {e}", dtype.name()));
                continue;
            }
        };
        for (key, schedule) in [("lr_schedule", entry.lr_schedule), ("beta1_schedule", entry.beta1_schedule)] {
            let Some(schedule) = schedule else { continue };
            let steps = reference["steps"].as_u64().expect("steps") as usize;
            match optic_compiler::on_big_stack(|| schedule_values(schedule, steps, 0)) {
                Ok(v) => candidate[key] = serde_json::json!(v),
                Err(e) => failures.push(format!("{key}: {e}")),
            }
        }
        match compare(&reference, &candidate, dtype) {
            Ok(c) => eprintln!("{fixture} {} {backend:?}: PASS, {c} (replay {elapsed:.1?})", dtype.name()),
            Err(e) => failures.push(format!("FAIL {backend:?} {e} (replay {elapsed:.1?})")),
        }
    }
    assert!(failures.is_empty(), "{fixture} with `{}`:\n{}", entry.rule, failures.join("\n"));
}

#[test]
fn the_table_and_the_fixture_directory_agree() {
    let mut files: Vec<String> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(String::from))
        .collect();
    files.sort();
    let mut table: Vec<String> = GOLDEN.iter().map(|g| g.fixture.to_string()).collect();
    table.sort();
    assert_eq!(files, table, "every fixture in tests/golden needs a rule in GOLDEN, and every entry a fixture");
    for g in GOLDEN {
        let fx = load(g.fixture);
        assert_eq!(fx["name"], g.fixture, "file name and fixture name differ");
        assert!(fx["provenance"].as_str().is_some_and(|p| p.starts_with("opt-reference/1; generated by")));
        assert_eq!(g.lr_schedule.is_some(), fx.get("lr_schedule").is_some(), "{}: lr_schedule", g.fixture);
        assert_eq!(g.beta1_schedule.is_some(), fx.get("beta1_schedule").is_some(), "{}: beta1_schedule", g.fixture);
    }
}

// ------------------------------------------------------------------------------------ harness and metric

/// Plain SGD written by hand, through the harness alone: checks the inputs, the least-squares
/// gradient and loss, the recording and the f32 rounding without the compiler or interpreter.
fn sgd_by_hand<T: Scalar>(fixture: &Value, lr: f64) -> Value {
    let neg_lr = <T as Scalar>::from_f64(-lr);
    let mut step = |_t: u64, _p: &[ArrayD<T>], inputs: &[Vec<ArrayD<T>>]| {
        Ok::<_, String>(inputs.iter().map(|i| i[0].mapv(|g| neg_lr * g)).collect())
    };
    replay_with::<T>(fixture, &mut step).expect("the harness runs")
}

#[test]
fn the_harness_reproduces_torch_sgd_by_hand() {
    for (fixture, lr) in [("torch_sgd", 0.05), ("torch_sgd_lsq", 0.1)] {
        let reference = load(fixture);
        let start = Instant::now();
        let c64 = sgd_by_hand::<f64>(&reference, lr);
        let elapsed = start.elapsed();
        let c32 = sgd_by_hand::<f32>(&reference, lr);
        let r64 = compare(&reference, &c64, Dtype::F64).unwrap_or_else(|e| panic!("{e}"));
        let r32 = compare(&reference, &c32, Dtype::F32).unwrap_or_else(|e| panic!("{e}"));
        eprintln!("{fixture}: f64 {r64}; f32 {r32}; harness {elapsed:.1?}");
        // f32 really ran in f32: its error is far above f64 rounding
        assert!(r32.worst[0].1 > 1e-9, "{r32}");
    }
    let lsq = sgd_by_hand::<f64>(&load("torch_sgd_lsq"), 0.1);
    assert_eq!(lsq["loss"].as_array().map(Vec::len), Some(41), "loss before each step and after the last");
    assert_eq!(lsq["kind"], "loss");
}

#[test]
fn the_harness_reports_bad_fixtures() {
    let mut fx = load("torch_sgd");
    let mut step = |_t: u64, p: &[ArrayD<f64>], _i: &[Vec<ArrayD<f64>>]| Ok::<_, String>(p.to_vec());
    fx["kind"] = "model".into();
    let e = replay_with::<f64>(&fx, &mut step).unwrap_err();
    assert!(e.contains("kind `model` is not supported"), "{e}");
    let mut fx = load("torch_sgd");
    fx["inputs"]["grads"]["b"][3] = serde_json::json!([1.0, 2.0]);
    let e = replay_with::<f64>(&fx, &mut step).unwrap_err();
    assert!(e.contains("inputs.grads.b") && e.contains("[25, 6]"), "{e}");
    let mut fx = load("torch_sgd_lsq");
    fx["inputs"]["objective"] = "f(W) = sum(abs(A@W - B))".into();
    let e = replay_with::<f64>(&fx, &mut step).unwrap_err();
    assert!(e.contains("unsupported objective"), "{e}");
    let fx = load("torch_sgd");
    let mut wrong_shape =
        |_t: u64, _p: &[ArrayD<f64>], _i: &[Vec<ArrayD<f64>>]| Ok::<_, String>(vec![ArrayD::zeros(vec![2]); 2]);
    let e = replay_with::<f64>(&fx, &mut wrong_shape).unwrap_err();
    assert!(e.starts_with("step 1: the direction for `W` has shape [2]"), "{e}");
}

#[test]
fn compare_accepts_every_reference_itself() {
    for g in GOLDEN {
        let fx = load(g.fixture);
        for dtype in [Dtype::F64, Dtype::F32] {
            let c = compare(&fx, &fx, dtype).unwrap_or_else(|e| panic!("{e}"));
            assert!(c.skipped.is_none() && c.worst.iter().all(|(_, e)| *e == 0.0), "{}: {c}", g.fixture);
        }
    }
}

#[test]
fn compare_names_the_first_failing_step_tensor_and_error() {
    let reference = load("torch_adam");
    let mut candidate = reference.clone();
    let x = &mut candidate["trajectory"]["W"][2][1][3];
    *x = (x.as_f64().unwrap() + 1e-9).into();
    candidate["trajectory"]["b"][20][0] = Value::Null; // a NaN, later
    let e = compare(&reference, &candidate, Dtype::F64).unwrap_err();
    assert!(e.contains("first failure at step 3 in tensor `W`"), "{e}");
    assert!(e.contains("max|c-r| = 1.000e-9 at flat element 9"), "{e}");
    assert!(e.contains("2 of 25 steps fail"), "{e}");
    // 1e-9 is within the f32 tolerance; the NaN is not
    let e = compare(&reference, &candidate, Dtype::F32).unwrap_err();
    assert!(e.contains("first failure at step 21 in tensor `b`") && e.contains("max|c-r| = inf"), "{e}");

    let reference = load("torch_adam_lsq");
    let mut candidate = reference.clone();
    candidate["loss"][40] = (reference["loss"][40].as_f64().unwrap() * (1.0 + 1e-10)).into();
    let e = compare(&reference, &candidate, Dtype::F64).unwrap_err();
    assert!(e.contains("step 41 in final loss"), "{e}");
    candidate.as_object_mut().unwrap().remove("loss");
    assert!(compare(&reference, &candidate, Dtype::F64).unwrap_err().contains("no `loss`"));

    let reference = load("sched_torch_sgd_nesterov_lambda_cosine");
    let mut candidate = reference.clone();
    candidate["lr_schedule"][7] = 0.5.into();
    let e = compare(&reference, &candidate, Dtype::F32).unwrap_err();
    assert!(e.contains("step 8 in lr_schedule"), "{e}");
}

#[test]
fn compare_honours_compare_steps_and_unusable_tolerances() {
    let mut reference = load("torch_sgd");
    let mut candidate = reference.clone();
    candidate["trajectory"]["W"][4][0][0] = 100.0.into();
    assert!(compare(&reference, &candidate, Dtype::F32).is_err());
    reference["tolerance"]["float32"]["compare_steps"] = 4.into();
    let c = compare(&reference, &candidate, Dtype::F32).expect("only steps 1..4 are compared");
    assert_eq!(c.steps, 4);
    assert!(compare(&reference, &candidate, Dtype::F64).is_err(), "f64 still compares every step");
    reference["tolerance"]["float64"]["rtol"] = "n/a".into();
    assert!(compare(&reference, &candidate, Dtype::F64).unwrap().skipped.is_some());
    reference["tolerance"]["float32"]["usable"] = false.into();
    assert!(compare(&reference, &candidate, Dtype::F32).unwrap().skipped.is_some());
}

// ------------------------------------------------------------------------------------ the command

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("optic-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// The shape of a nested JSON array.
fn shape_of(v: &Value) -> Vec<usize> {
    let mut shape = Vec::new();
    let mut v = v;
    while let Some(items) = v.as_array() {
        shape.push(items.len());
        match items.first() {
            Some(first) => v = first,
            None => break,
        }
    }
    shape
}

#[test]
fn replay_writes_the_candidate_json() {
    let out = scratch("torch_sgd.json");
    let o =
        optic(&["replay", "tests/golden/torch_sgd.json", "--rule", "sgd(lr = 0.1)", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("written")).expect("JSON");
    assert_eq!(v["name"], "torch_sgd");
    assert_eq!(v["kind"], "update");
    assert_eq!(v["dtype"], "f64");
    assert_eq!(v["rule"], "sgd(lr = 0.1)");
    assert_eq!(shape_of(&v["trajectory"]["W"]), [25, 8, 6]);
    assert_eq!(shape_of(&v["trajectory"]["b"]), [25, 6]);
    assert!(v.get("loss").is_none());

    let o = optic(&["replay", "tests/golden/torch_sgd_lsq.json", "--rule", "sgd(lr = 0.1)", "--dtype", "f32"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(v["dtype"], "f32");
    assert_eq!(shape_of(&v["trajectory"]["W"]), [40, 8, 6]);
    assert_eq!(shape_of(&v["loss"]), [41]);
}

#[test]
fn replay_check_passes_and_fails() {
    let o = optic(&["replay", "tests/golden/torch_sgd.json", "--rule", "sgd(lr = 0.05)", "--check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("torch_sgd: PASS"), "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "--check without --out prints no JSON");
    let o = optic(&["replay", "tests/golden/torch_sgd.json", "--rule", "sgd(lr = 0.1)", "--check"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("first failure at step 1 in tensor `W`"), "{}", stderr(&o));
}

#[test]
fn replay_reports_problems_with_exit_1() {
    let sgd = "tests/golden/torch_sgd.json";
    let o = optic(&["replay", sgd, "--rule", "no_such_rule(lr = 0.1)"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not compile") && stderr(&o).contains("<rule>:"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());

    let o = optic(&["replay", "tests/golden/no_such_fixture.json", "--rule", "sgd(lr = 0.1)"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("error: cannot read tests/golden/no_such_fixture.json"), "{}", stderr(&o));

    let bad = scratch("bad.json");
    std::fs::write(&bad, "{\"kind\": \"update\",").expect("write");
    let o = optic(&["replay", bad.to_str().unwrap(), "--rule", "sgd(lr = 0.1)"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not valid JSON"), "{}", stderr(&o));

    let model = scratch("model.json");
    std::fs::write(&model, r#"{"format": "opt-reference/1", "name": "m", "kind": "model", "steps": 3}"#)
        .expect("write");
    let o = optic(&["replay", model.to_str().unwrap(), "--rule", "sgd(lr = 0.1)"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("kind `model` is not supported"), "{}", stderr(&o));

    let o = optic(&["replay", sgd, "--rule", "sgd(lr = 0.1)", "--out", "/nonexistent-dir/x.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot write /nonexistent-dir/x.json"), "{}", stderr(&o));

    // misuse of the command itself
    assert_eq!(optic(&["replay", sgd]).status.code(), Some(2), "--rule is required");
    assert_eq!(optic(&["replay", sgd, "--rule", "sgd()", "--dtype", "f16"]).status.code(), Some(2));
}

#[test]
fn replay_writes_the_lr_schedule() {
    let fixture = "tests/golden/sched_torch_sgd_nesterov_lambda_cosine.json";
    let schedule = "cosine(0.05, warmup = 5, total = 25)";
    let rule = format!("sgd(lr = {schedule}, momentum = 0.9, nesterov = true)");
    let o = optic(&["replay", fixture, "--rule", &rule, "--lr-schedule", schedule]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    let reference = load("sched_torch_sgd_nesterov_lambda_cosine");
    let (c, r) = (v["lr_schedule"].as_array().expect("written"), reference["lr_schedule"].as_array().unwrap());
    assert_eq!(c.len(), r.len());
    for (c, r) in c.iter().zip(r) {
        assert!((c.as_f64().unwrap() - r.as_f64().unwrap()).abs() <= 1e-15, "{c} vs {r}");
    }
}

/// `route` and `mask` choose rules by parameter path: routing both ways to one rule changes
/// nothing, and a masked-out gradient leaves its parameter in place while the other follows torch.
#[test]
fn rules_route_by_parameter_path() {
    let fx = load("torch_sgd");
    let same = replay(&fx, r#"route(paths = ["b"], then = sgd(lr = 0.05), otherwise = sgd(lr = 0.05))"#, Dtype::F64, 0)
        .expect("replays");
    compare(&fx, &same, Dtype::F64).expect("routing both ways to one rule changes nothing");

    let mut masked =
        replay(&fx, r#"chain(mask(scale(0), paths = ["W"]), sgd(lr = 0.05))"#, Dtype::F64, 0).expect("replays");
    let w = &masked["trajectory"]["W"];
    assert_eq!(&w[w.as_array().expect("steps").len() - 1], &fx["inputs"]["init"]["W"], "W never moves");
    // With W's trajectory taken from the reference, what remains to compare is b's.
    masked["trajectory"]["W"] = fx["trajectory"]["W"].clone();
    compare(&fx, &masked, Dtype::F64).expect("b follows torch's sgd");
}
