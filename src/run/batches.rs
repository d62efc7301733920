//! The data a step reads. A fixed dataset is split once into training and held-out rows (a
//! seeded shuffle, so the split is the same for every rule and thread count); its training rows
//! form a stream of shuffled epochs, and step t reads the t-th window of `batch` rows of that
//! stream, so every batch is full and every row is seen once per epoch. Without `batch`, every
//! step reads all training rows. Shuffles come from a portable seeded generator (PCG64), keyed
//! by the experiment's seed, the dataset and the epoch, so a resumed run draws the same batches.

use ndarray::{ArrayD, Axis};
use optic_compiler::lower::experiment::{DataSet, Plan};
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// A fixed dataset split into rows.
pub struct Rows<T> {
    /// Per field: the training rows, in dataset order.
    pub train: Vec<ArrayD<T>>,
    /// Per field: the held-out rows (empty arrays without a holdout).
    pub eval: Vec<ArrayD<T>>,
    /// Mini-batch size, if any.
    batch: Option<usize>,
    /// Which dataset (keys its shuffles).
    index: usize,
    seed: u64,
    /// The current epoch's permutation of training rows, and its epoch number.
    perm: Option<(u64, Vec<usize>)>,
}

fn rng(seed: u64, dataset: usize, epoch: u64) -> rand_pcg::Pcg64 {
    // Distinct streams per (dataset, epoch); the constant keeps epoch 0 of dataset 0 away from seed 0.
    let key =
        seed ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(dataset as u64 + 1) ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03);
    rand_pcg::Pcg64::seed_from_u64(key)
}

impl<T: Clone + num_traits::Zero> Rows<T> {
    /// Splits the fields of a fixed dataset (whole arrays, rows first).
    pub fn new(set: &DataSet, fields: Vec<ArrayD<T>>, index: usize, seed: u64) -> Self {
        let rows = set.rows;
        let mut order: Vec<usize> = (0..rows).collect();
        if set.holdout > 0 {
            order.shuffle(&mut rng(seed, index, u64::MAX));
        }
        let (eval_rows, train_rows) = order.split_at(set.holdout);
        let mut train_rows = train_rows.to_vec();
        let mut eval_rows = eval_rows.to_vec();
        train_rows.sort_unstable();
        eval_rows.sort_unstable();
        let train = fields.iter().map(|a| a.select(Axis(0), &train_rows)).collect();
        let eval = fields.iter().map(|a| a.select(Axis(0), &eval_rows)).collect();
        Rows { train, eval, batch: set.batch, index, seed, perm: None }
    }

    /// Field `k`'s rows for 1-based `step`.
    pub fn batch(&mut self, step: u64) -> Vec<ArrayD<T>> {
        let Some(b) = self.batch else { return self.train.clone() };
        let n = self.train[0].shape()[0];
        let start = (step - 1) * b as u64;
        let mut picks = Vec::with_capacity(b);
        for p in start..start + b as u64 {
            let (epoch, i) = (p / n as u64, (p % n as u64) as usize);
            if self.perm.as_ref().map(|(e, _)| *e) != Some(epoch) {
                let mut perm: Vec<usize> = (0..n).collect();
                perm.shuffle(&mut rng(self.seed, self.index, epoch));
                self.perm = Some((epoch, perm));
            }
            picks.push(self.perm.as_ref().expect("set above").1[i]);
        }
        self.train.iter().map(|a| a.select(Axis(0), &picks)).collect()
    }
}

/// Indices of the plan's fixed datasets with their fields' positions in [`Plan::data`].
pub fn fixed(plan: &Plan) -> impl Iterator<Item = (usize, &DataSet)> {
    plan.datasets.iter().enumerate().filter(|(_, d)| !d.init_roots.is_empty())
}
