//! safetensors checkpoints: bit-exact round trips in f32 and f64, metadata, stored order, the
//! atomic replace, and refusals of missing or corrupt files.

use ndarray::{array, ArrayD, IxDyn};
use optic_runtime::checkpoint::{load, load_f32, save, save_f32, Dtype};
use std::collections::BTreeMap;

mod common;

use common::scratch;

fn bits64(a: &ArrayD<f64>) -> Vec<u64> {
    a.iter().map(|v| v.to_bits()).collect()
}

fn bits32(a: &ArrayD<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Values whose bits a lossy path would change: signed zero, subnormals, NaN payloads, extremes.
fn awkward64() -> ArrayD<f64> {
    array![[0.1, -0.0, 5e-324, f64::MAX], [f64::from_bits(0x7ff8_0000_dead_beef), f64::NEG_INFINITY, 1.0 / 3.0, -2.5]]
        .into_dyn()
}

#[test]
fn f64_round_trips_bit_exactly_with_metadata() {
    let dir = scratch("f64");
    let path = dir.join("step-10.safetensors");
    let w = awkward64();
    let scalar = ArrayD::from_elem(IxDyn(&[]), 7.0);
    let empty = ArrayD::<f64>::zeros(IxDyn(&[0, 3]));
    // Column-major storage must still be saved in logical (row-major) order.
    let transposed = w.clone().reversed_axes();
    let m = meta(&[("step", "10"), ("optimizer", "adam(lr=1e-3)"), ("note", "ünïcode ✓")]);
    let tensors = vec![
        ("w".to_string(), &w),
        ("step".to_string(), &scalar),
        ("empty".to_string(), &empty),
        ("wt".to_string(), &transposed),
    ];
    save(&path, &tensors, Dtype::F64, &m).unwrap();

    let (loaded, loaded_meta) = load(&path).unwrap();
    assert_eq!(loaded_meta, m);
    let names: Vec<_> = loaded.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["w", "step", "empty", "wt"], "stored order is the saved order");
    for (name, original) in &tensors {
        let (_, back) = loaded.iter().find(|(n, _)| n == name).unwrap();
        assert_eq!(back.shape(), original.shape(), "{name}");
        assert_eq!(bits64(back), bits64(original), "{name}");
    }
}

#[test]
fn f32_round_trips_bit_exactly() {
    let dir = scratch("f32");
    let path = dir.join("c.safetensors");
    let a = array![[0.1f32, -0.0, 1e-45, f32::MAX], [f32::from_bits(0x7fc0_beef), f32::INFINITY, 1.0 / 3.0, 3.0]]
        .into_dyn();
    let b = array![1.5f32, 2.5].into_dyn();
    save_f32(&path, &[("a".into(), &a), ("b".into(), &b)], &BTreeMap::new()).unwrap();

    let (loaded, m) = load_f32(&path).unwrap();
    assert!(m.is_empty());
    assert_eq!(loaded.len(), 2);
    assert_eq!((loaded[0].0.as_str(), bits32(&loaded[0].1)), ("a", bits32(&a)));
    assert_eq!(loaded[0].1.shape(), &[2, 4]);
    assert_eq!(bits32(&loaded[1].1), bits32(&b));

    // Widening to f64 is exact too.
    let (wide, _) = load(&path).unwrap();
    let expected: Vec<u64> = a.iter().map(|&v| f64::from(v).to_bits()).collect();
    assert_eq!(bits64(&wide[0].1), expected);
}

#[test]
fn storing_f64_as_f32_rounds_and_load_f32_narrows() {
    let dir = scratch("narrow");
    let path = dir.join("n.safetensors");
    let w = array![0.1, 1.0 / 3.0].into_dyn();
    save(&path, &[("w".into(), &w)], Dtype::F32, &BTreeMap::new()).unwrap();
    let (loaded, _) = load(&path).unwrap();
    assert_eq!(loaded[0].1, w.mapv(|v| f64::from(v as f32)));
    assert!(std::fs::metadata(&path).unwrap().len() < 200, "two f32s and a header");

    save(&path, &[("w".into(), &w)], Dtype::F64, &BTreeMap::new()).unwrap();
    let (narrow, _) = load_f32(&path).unwrap();
    assert_eq!(narrow[0].1, w.mapv(|v| v as f32));
}

#[test]
fn saving_replaces_atomically_and_leaves_no_temporary_file() {
    let dir = scratch("atomic");
    let path = dir.join("latest.safetensors");
    let one = array![1.0].into_dyn();
    let two = array![2.0, 2.0].into_dyn();
    save(&path, &[("x".into(), &one)], Dtype::F64, &meta(&[("step", "1")])).unwrap();
    save(&path, &[("x".into(), &two)], Dtype::F64, &meta(&[("step", "2")])).unwrap();
    let (loaded, m) = load(&path).unwrap();
    assert_eq!((loaded[0].1.clone(), m["step"].as_str()), (two, "2"));
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, vec!["latest.safetensors"]);

    let e = save(&dir.join("no/such/dir/c.safetensors"), &[], Dtype::F64, &BTreeMap::new()).unwrap_err();
    assert!(e.message.starts_with("cannot write"), "{e}");
}

#[test]
fn refuses_duplicates_missing_and_corrupt_files() {
    let dir = scratch("errors");
    let x = array![1.0].into_dyn();
    let e = save(&dir.join("d.safetensors"), &[("x".into(), &x), ("x".into(), &x)], Dtype::F64, &BTreeMap::new())
        .unwrap_err();
    assert_eq!(e.message, "tensor name 'x' appears twice");

    let missing = dir.join("gone.safetensors");
    let e = load(&missing).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: no such file", missing.display()));

    let garbage = dir.join("garbage.safetensors");
    std::fs::write(&garbage, b"definitely not a checkpoint").unwrap();
    assert!(load(&garbage).unwrap_err().message.starts_with("not a valid safetensors checkpoint"));

    let good = dir.join("good.safetensors");
    save(&good, &[("x".into(), &awkward64())], Dtype::F64, &BTreeMap::new()).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() - 5]).unwrap();
    let e = load_f32(&cut).unwrap_err();
    assert!(e.message.starts_with("not a valid safetensors checkpoint"), "{e}");
}

/// A safetensors file from a header and data: 8-byte length, header padded with spaces as the
/// reference writer pads it, data.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut header = header.to_string();
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// A file laid out as the reference (Python/Rust `safetensors`) writer does: keys sorted by name,
/// metadata first, escapes in strings; `b` is a dtype we cannot load when `bf16`.
fn reference_file(bf16: bool) -> Vec<u8> {
    let mut header = String::from(r#"{"__metadata__":{"format":"pt","note":"tab\there \"q\" \u00e9\ud83d\ude00"},"#);
    header.push_str(r#""a.bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#);
    let mut data = [1.5f32.to_le_bytes(), (-2.0f32).to_le_bytes()].concat();
    if bf16 {
        header.push_str(r#""b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}}"#);
        data.extend([0x80, 0x3f, 0x00, 0x40]);
    } else {
        header.push_str(r#""b":{"dtype":"F64","shape":[],"data_offsets":[8,16]}}"#);
        data.extend(0.25f64.to_le_bytes());
    }
    file(&header, &data)
}

#[test]
fn reads_files_from_the_reference_writer() {
    let dir = scratch("reference");
    let path = dir.join("torch.safetensors");
    std::fs::write(&path, reference_file(false)).unwrap();
    let (tensors, m) = load(&path).unwrap();
    assert_eq!(m, meta(&[("format", "pt"), ("note", "tab\there \"q\" é😀")]));
    assert_eq!(tensors[0], ("a.bias".to_string(), array![1.5, -2.0].into_dyn()));
    assert_eq!(tensors[1], ("b".to_string(), ArrayD::from_elem(IxDyn(&[]), 0.25)));

    std::fs::write(&path, reference_file(true)).unwrap();
    let e = load_f32(&path).unwrap_err();
    assert_eq!(e.message, "tensor 'b' is stored as BF16; only F32 and F64 can be loaded");

    // Our own header escapes what it must and reads back.
    let m = meta(&[("quote\"", "back\\slash\nnewline\u{1}")]);
    save(&path, &[], Dtype::F32, &m).unwrap();
    assert_eq!(load(&path).unwrap(), (vec![], m));
}

#[test]
fn refuses_headers_that_disagree_with_the_data() {
    let dir = scratch("offsets");
    let path = dir.join("bad.safetensors");
    let cases = [
        (r#"{"x":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}"#, 8, "do not match its shape"),
        (r#"{"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#, 16, "8 bytes after the last tensor"),
        (r#"{"x":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}}"#, 16, "do not match its shape"),
        (r#"{"x":{"dtype":"F64","shape":[1]}}"#, 8, "malformed entry"),
        (r#"{"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}"#, 8, "header: expected"),
        (r#"[1]"#, 0, "not a JSON object"),
    ];
    for (header, data_len, expected) in cases {
        std::fs::write(&path, file(header, &vec![0; data_len])).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.message.starts_with("not a valid safetensors checkpoint"), "{e}");
        assert!(e.message.contains(expected), "{header}: {e}");
    }
}
