//! How long `optic check` takes on a large file: a generated 10,000-line program of rules,
//! schedules, functions, models and experiments (every construct the checker instantiates).
//! Target: under 100 ms in release. Run with `cargo bench --bench check`; the generated file is
//! also written to `target/check_10k.opt` so the CLI can be timed on it.

use criterion::{criterion_group, criterion_main, Criterion};
use optic_compiler::check::check_source;
use std::fmt::Write as _;
use std::path::Path;

/// A program of about `lines` lines, made of distinct copies of one realistic block.
pub fn generate(lines: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    while out.lines().count() < lines {
        let _ = write!(
            out,
            r#"/// Adam variant {i}.
rule adam_{i}(lr in [0, inf) = 1e-3, beta1 in [0, 1) = 0.9, beta2 in [0, 1) = 0.999, eps = 1e-8)(g) {{
    state m = zeros_like(g)
    state v = zeros_like(g)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g^2
    let m_hat = m / (1 - beta1^step)
    let v_hat = v / (1 - beta2^step)
    return -lr * m_hat / (sqrt(v_hat) + eps)
}}

schedule warm_{i}(peak, warmup: int = 10) = if step <= warmup {{ peak * step / warmup }} else {{ peak }}

fn act_{i}(x) = where(x > 0, x, 0.01 * x)

model net_{i}(d: int, k: int) {{
    param w[k, d] = gaussian(std = 1 / sqrt(d))
    param a[k] = zeros
    forward(x[batch, d]) = act_{i}(x @ w^T) @ a
}}

experiment run_{i} {{
    seed = {i}
    let d = 16
    let lr = 1e-3
    teacher = net_{i}(d, 8)
    model = net_{i}(d, 32)
    data x = gaussian([64, d]) fresh every step
    loss = mse(model(x), teacher(x))
    optimize model.* with chain(clip_global_norm(1.0), adam_{i}(lr = warm_{i}(lr)))
    steps = 100
    log every 10 {{
        loss
        moved = norm(model.w - initial(model.w)) / norm(initial(model.w))
    }}
    sweep lr in [1e-4, 1e-3], seed in 0..2
}}

"#
        );
        i += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let text = generate(10_000);
    let lines = text.lines().count();
    let _ = std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/check_10k.opt"), &text);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let checked = check_source("check_10k.opt", &text, dir);
    assert!(checked.is_ok(), "the generated program must check: {:?}", checked.diagnostics.first());
    c.bench_function(&format!("check {lines} lines"), |b| b.iter(|| check_source("check_10k.opt", &text, dir)));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
