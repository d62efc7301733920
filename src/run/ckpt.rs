//! Checkpoint files through the runtime's safetensors support. Values travel as f64 and are
//! stored in the run's own type: an f32 value widened to f64 and narrowed back is unchanged, so
//! a resumed f32 run continues bit for bit.

use optic_compiler::interp::{ArrayD, Scalar};
use optic_runtime::checkpoint::{self, Checkpoint, Dtype};
use std::collections::BTreeMap;
use std::path::Path;

fn dtype<T>() -> Dtype {
    if std::mem::size_of::<T>() == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

/// Saves named tensors with metadata.
pub fn save<T: Scalar>(
    path: &Path,
    named: &[(String, ArrayD<T>)],
    meta: &BTreeMap<String, String>,
) -> Result<(), String> {
    let wide: Vec<(String, ArrayD<f64>)> = named.iter().map(|(n, a)| (n.clone(), a.mapv(|x| x.to_f64()))).collect();
    let refs: Vec<(String, &ArrayD<f64>)> = wide.iter().map(|(n, a)| (n.clone(), a)).collect();
    checkpoint::save(path, &refs, dtype::<T>(), meta).map_err(|e| e.to_string())
}

/// Loads named tensors and metadata.
pub fn load<T: Scalar>(path: &Path) -> Result<Checkpoint<T>, String> {
    let (named, meta) = checkpoint::load(path).map_err(|e| e.to_string())?;
    Ok((named.into_iter().map(|(n, a)| (n, a.mapv(T::from_f64))).collect(), meta))
}
