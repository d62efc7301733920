//! Random draws: reproducible from (seed, stream, step), different when any of them changes,
//! independent across the parameters of one rule application, and with the right moments.

use crate::interp::{eval_once, Interp};
use crate::ir::{Dist, Graph, Op};
use ndarray::{ArrayD, IxDyn};

fn draw(dist: Dist, stream: u64, shape: &[usize], step: u64, seed: u64) -> ArrayD<f64> {
    let mut g = Graph::default();
    g.output = g.push(Op::Random { dist, stream }, shape.to_vec());
    eval_once::<f64>(&g, step, None, &[], seed).unwrap()
}

#[test]
fn draws_are_reproducible_and_distinct() {
    let a = draw(Dist::Normal, 3, &[4, 5], 7, 42);
    assert_eq!(a, draw(Dist::Normal, 3, &[4, 5], 7, 42));
    assert_ne!(a, draw(Dist::Normal, 3, &[4, 5], 8, 42), "another step");
    assert_ne!(a, draw(Dist::Normal, 4, &[4, 5], 7, 42), "another stream");
    assert_ne!(a, draw(Dist::Normal, 3, &[4, 5], 7, 43), "another seed");
    // Element i depends only on i: a larger draw starts with the same numbers.
    let big = draw(Dist::Normal, 3, &[40], 7, 42);
    assert_eq!(a.iter().copied().collect::<Vec<_>>(), big.iter().take(20).copied().collect::<Vec<_>>());
}

#[test]
fn moments() {
    let n = 100_000;
    let z = draw(Dist::Normal, 1, &[n], 1, 0);
    let mean = z.mean().unwrap();
    let var = z.mapv(|x| (x - mean) * (x - mean)).sum() / n as f64;
    assert!(mean.abs() < 0.015 && (var - 1.0).abs() < 0.02, "normal: mean {mean} var {var}");
    let u = draw(Dist::Uniform, 1, &[n], 1, 0);
    assert!(u.iter().all(|&x| (0.0..1.0).contains(&x)));
    let (mean, var) = (u.mean().unwrap(), u.mapv(|x| (x - 0.5) * (x - 0.5)).mean().unwrap());
    assert!((mean - 0.5).abs() < 0.005 && (var - 1.0 / 12.0).abs() < 0.002, "uniform: mean {mean} var {var}");
}

#[test]
fn f32_draws_round_the_f64_ones() {
    let mut g = Graph::default();
    g.output = g.push(Op::Random { dist: Dist::Uniform, stream: 9 }, vec![1000]);
    let a = eval_once::<f64>(&g, 2, None, &[], 5).unwrap();
    let b = eval_once::<f32>(&g, 2, None, &[], 5).unwrap();
    assert!(a.iter().zip(b.iter()).all(|(&x, &y)| (x as f32 == y || y < 1.0) && (x - y as f64).abs() < 1e-7));
    assert!(b.iter().all(|&y| y < 1.0));
}

#[test]
fn parameters_draw_independently() {
    let mut g = Graph { inputs: vec![vec![8]], ..Graph::default() };
    g.output = g.push(Op::Random { dist: Dist::Normal, stream: 0 }, vec![8]);
    let mut it = Interp::<f64>::new(vec![g.clone(), g], 1);
    let p = ArrayD::zeros(IxDyn(&[8]));
    let d = it.step(1, &[p.clone(), p.clone()], &[vec![p.clone()], vec![p.clone()]]).unwrap();
    assert_ne!(d[0], d[1]);
    let again =
        Interp::<f64>::new(it.graphs().to_vec(), 1).step(1, &[p.clone(), p.clone()], &[vec![p.clone()], vec![p]]);
    assert_eq!(again.unwrap(), d, "same seed, same numbers");
}
