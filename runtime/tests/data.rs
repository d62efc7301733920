//! Loading `.npy`, `.npz` and `.csv` files: every supported element type, both memory orders, and
//! each error a person can cause, checked on the message they would read.

use ndarray::{array, ArrayD, IxDyn, ShapeBuilder};
use ndarray_npy::{NpzWriter, WriteNpyExt};
use optic_runtime::data::{load, DataError, Loaded, Values};
use std::path::{Path, PathBuf};

mod common;

use common::scratch;

/// A `.npy` file written by hand, for layouts and types ndarray-npy will not write.
fn npy_bytes(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape = match shape {
        [n] => format!("({n},)"),
        dims => format!("({})", dims.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
    };
    let order = if fortran { "True" } else { "False" };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {shape}, }}");
    // numpy pads the header with spaces so the data starts on a 64-byte boundary.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn write_npy<T: ndarray_npy::WritableElement>(dir: &Path, name: &str, a: &ArrayD<T>) -> PathBuf {
    let path = dir.join(name);
    a.write_npy(std::fs::File::create(&path).unwrap()).unwrap();
    path
}

fn load_one(path: &Path) -> Loaded {
    let mut all = load(path).unwrap();
    assert_eq!(all.len(), 1);
    all.pop().unwrap()
}

fn load_err(path: &Path) -> DataError {
    load(path).expect_err("the file should be refused")
}

fn values(l: &Loaded) -> Vec<f64> {
    l.values.to_f64().iter().copied().collect()
}

#[test]
fn npy_of_each_element_type_widens_to_f64() {
    let dir = scratch("types");
    let f64s = array![[1.0, -2.5, 3.0], [4.0, 5.0, 1e300]].into_dyn();
    let l = load_one(&write_npy(&dir, "weights.npy", &f64s));
    assert_eq!((l.name.as_str(), l.dtype.as_str()), ("weights", "f64"));
    assert_eq!(l.values.to_f64(), f64s);

    let f32s = array![0.1f32, -7.25, f32::MAX].into_dyn();
    let l = load_one(&write_npy(&dir, "f.npy", &f32s));
    assert_eq!(l.dtype, "f32");
    assert_eq!(values(&l), vec![f64::from(0.1f32), -7.25, f64::from(f32::MAX)]);

    let i64s = array![[-3i64], [1 << 40]].into_dyn();
    let l = load_one(&write_npy(&dir, "i.npy", &i64s));
    assert_eq!((l.dtype.as_str(), l.values.shape()), ("i64", &[2, 1][..]));
    assert_eq!(values(&l), vec![-3.0, (1u64 << 40) as f64]);

    let u8s = array![0u8, 16, 255].into_dyn();
    let l = load_one(&write_npy(&dir, "u.npy", &u8s));
    assert_eq!((l.dtype.as_str(), values(&l)), ("u8", vec![0.0, 16.0, 255.0]));

    let bools = array![true, false, true].into_dyn();
    let l = load_one(&write_npy(&dir, "mask.npy", &bools));
    assert_eq!((l.dtype.as_str(), values(&l)), ("bool", vec![1.0, 0.0, 1.0]));

    let i16s: Vec<u8> = [-1i16, 300].iter().flat_map(|v| v.to_le_bytes()).collect();
    let l = load_one(&write(&dir, "s.npy", &npy_bytes("<i2", false, &[2], &i16s)));
    assert_eq!((l.dtype.as_str(), values(&l)), ("i16", vec![-1.0, 300.0]));
}

/// float32 files keep their type (read straight into the array when little-endian and in C
/// order, through ndarray-npy otherwise), so a float32 run takes them unrounded and uncopied.
#[test]
fn float32_files_stay_float32_whatever_their_layout() {
    let dir = scratch("float32");
    // Larger than the 4 KiB the direct reader looks at for the header.
    let big = ArrayD::from_shape_fn(IxDyn(&[300, 7]), |i| (i[0] as f32).sin() * 1e3 + i[1] as f32 / 3.0);
    let l = load_one(&write_npy(&dir, "big.npy", &big));
    assert_eq!((l.dtype.as_str(), &l.values), ("f32", &Values::F32(big.clone())));

    let f64s = ArrayD::from_shape_fn(IxDyn(&[600]), |i| (i[0] as f64).sqrt() / 7.0);
    assert_eq!(load_one(&write_npy(&dir, "wide.npy", &f64s)).values, Values::F64(f64s));

    let col_major = ArrayD::from_shape_vec(IxDyn(&[2, 3]).f(), vec![1f32, 4., 2., 5., 3., 6.]).unwrap();
    let l = load_one(&write_npy(&dir, "cols.npy", &col_major));
    let Values::F32(a) = &l.values else { panic!("float32 expected, got {:?}", l.values) };
    assert!(a.is_standard_layout());
    assert_eq!(a.iter().copied().collect::<Vec<_>>(), vec![1., 2., 3., 4., 5., 6.]);

    // A payload longer than its shape is refused by the general path, not read in part.
    let mut long = Vec::new();
    big.write_npy(&mut long).unwrap();
    long.extend([0u8; 4]);
    let e = load_err(&write(&dir, "long.npy", &long));
    assert!(e.message.contains("bytes follow the data"), "{}", e.message);
}

#[test]
fn big_endian_and_scalar_npy() {
    let dir = scratch("endian");
    let be: Vec<u8> = [1.5f64, -2.0].iter().flat_map(|v| v.to_be_bytes()).collect();
    let l = load_one(&write(&dir, "be.npy", &npy_bytes(">f8", false, &[2], &be)));
    assert_eq!(values(&l), vec![1.5, -2.0]);

    let scalar = npy_bytes("<f4", false, &[], &2.5f32.to_le_bytes());
    let l = load_one(&write(&dir, "lr.npy", &scalar));
    assert_eq!(l.values.shape(), &[] as &[usize]);
    assert_eq!(values(&l), vec![2.5]);
}

#[test]
fn fortran_order_is_read_by_index_and_returned_row_major() {
    let dir = scratch("fortran");
    // [[1, 2, 3], [4, 5, 6]] stored column by column.
    let data: Vec<u8> = [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let l = load_one(&write(&dir, "f.npy", &npy_bytes("<f8", true, &[2, 3], &data)));
    assert_eq!(l.values.to_f64(), array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn());
    assert!(l.values.to_f64().is_standard_layout());

    // The same through ndarray-npy's writer, from a column-major array.
    let col_major = ArrayD::from_shape_vec(IxDyn(&[2, 3]).f(), vec![1i32, 4, 2, 5, 3, 6]).unwrap();
    let l = load_one(&write_npy(&dir, "g.npy", &col_major));
    assert_eq!(values(&l), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert!(l.values.to_f64().is_standard_layout());
}

#[test]
fn npz_returns_every_array_in_archive_order() {
    let dir = scratch("npz");
    let path = dir.join("set.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&path).unwrap());
    npz.add_array("weights", &array![[1.0f32, 2.0], [3.0, 4.0]]).unwrap();
    npz.add_array("labels", &array![2i64, 0, 1]).unwrap();
    npz.finish().unwrap();

    let all = load(&path).unwrap();
    let summary: Vec<_> = all.iter().map(|l| (l.name.as_str(), l.dtype.as_str(), l.values.shape().to_vec())).collect();
    assert_eq!(summary, vec![("weights", "f32", vec![2, 2]), ("labels", "i64", vec![3])]);
    assert_eq!(values(&all[1]), vec![2.0, 0.0, 1.0]);
}

#[test]
fn the_digits_example_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data/digits.npz");
    let all = load(&path).unwrap();
    let find = |name: &str| all.iter().find(|l| l.name == name).unwrap();
    let (images, labels) = (find("images"), find("labels"));
    assert_eq!((images.values.shape(), images.dtype.as_str()), (&[1797, 64][..], "u8"));
    assert_eq!((labels.values.shape(), labels.dtype.as_str()), (&[1797][..], "i64"));
    assert!(images.values.to_f64().iter().all(|&v| (0.0..=16.0).contains(&v)));
    assert!(labels.values.to_f64().iter().all(|&v| (0.0..=9.0).contains(&v)));
}

#[test]
fn csv_with_a_header_gives_the_table_and_named_columns() {
    let dir = scratch("csv-header");
    let path = write(&dir, "curve.csv", b"step, loss\n0, 1.5\n1, 0.75\n\n2, nan\n");
    let all = load(&path).unwrap();
    let names: Vec<_> = all.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, vec!["curve", "step", "loss"]);
    assert_eq!(all[0].values.shape(), &[3, 2]);
    assert_eq!(values(&all[1]), vec![0.0, 1.0, 2.0]);
    assert_eq!(&values(&all[2])[..2], &[1.5, 0.75]);
    assert!(values(&all[2])[2].is_nan());
}

#[test]
fn csv_without_a_header_gives_only_the_table() {
    let dir = scratch("csv-plain");
    let path = write(&dir, "xy.csv", b"1,2,3\r\n4,5,6e-1\r\n");
    let l = load_one(&path);
    assert_eq!((l.name.as_str(), l.dtype.as_str()), ("xy", "f64"));
    assert_eq!(l.values.to_f64(), array![[1.0, 2.0, 3.0], [4.0, 5.0, 0.6]].into_dyn());
}

#[test]
fn csv_errors_say_where() {
    let dir = scratch("csv-errors");
    let e = load_err(&write(&dir, "ragged.csv", b"a,b,c\n1,2,3\n4,5\n"));
    assert_eq!(e.message, "line 3 has 2 fields but line 1 has 3");
    assert!(e.hint.is_some());

    let e = load_err(&write(&dir, "text.csv", b"x,lr\n1,0.1\n2,fast\n"));
    assert_eq!(e.message, "line 3, column 2 ('lr'): 'fast' is not a number");

    let e = load_err(&write(&dir, "nohead.csv", b"1,2\n3,x\n"));
    // A non-numeric field in the first row makes it a header, so the error lands on line 2 only
    // when line 1 was numbers.
    assert_eq!(e.message, "line 2, column 2: 'x' is not a number");

    let e = load_err(&write(&dir, "empty.csv", b"\n  \n"));
    assert_eq!(e.message, "the file is empty");

    let e = load_err(&write(&dir, "head.csv", b"a,b\n"));
    assert!(e.message.contains("header but no row"), "{}", e.message);

    let e = load_err(&write(&dir, "quoted.csv", b"\"a\",b\n1,2\n"));
    assert_eq!(e.message, "line 1: quoted fields are not supported");
    assert_eq!(e.to_string(), format!("{}: {}", e.path.display(), e.message));
}

#[test]
fn a_missing_file_lists_the_data_files_beside_it() {
    let dir = scratch("missing");
    write(&dir, "train.npz", b"");
    write(&dir, "notes.txt", b"");
    write(&dir, "eval.csv", b"");
    let e = load_err(&dir.join("trian.npz"));
    assert_eq!(e.message, "no such file");
    let hint = e.hint.unwrap();
    assert!(hint.ends_with(": eval.csv, train.npz"), "{hint}");

    let e = load_err(&dir.join("nowhere/x.npy"));
    assert!(e.hint.unwrap().contains("does not exist"));
}

#[test]
fn invalid_npy_and_npz_files_are_refused() {
    let dir = scratch("invalid");
    let e = load_err(&write(&dir, "bad.npy", b"PK\x03\x04 this is not numpy"));
    assert!(e.message.contains("bad magic"), "{}", e.message);

    let full = npy_bytes("<f8", false, &[4], &[0; 32]);
    let e = load_err(&write(&dir, "short.npy", &full[..full.len() - 8]));
    assert!(e.message.contains("truncated"), "{}", e.message);
    let e = load_err(&write(&dir, "head.npy", &full[..40]));
    assert!(e.message.contains("truncated header"), "{}", e.message);

    let e = load_err(&write(&dir, "bad.npz", b"not a zip at all"));
    assert!(e.message.starts_with("not a valid .npz file"), "{}", e.message);

    let e = load_err(&write(&dir, "x.txt", b"1,2"));
    assert!(e.message.contains("unsupported data file type '.txt'"));
}

#[test]
fn unsupported_dtypes_name_the_array_and_type() {
    let dir = scratch("dtypes");
    let e = load_err(&write(&dir, "obj.npy", &npy_bytes("|O", false, &[1], &[0; 8])));
    assert_eq!(e.message, "unsupported dtype '|O' (Python objects)");
    assert!(e.hint.unwrap().contains("astype"));

    let path = dir.join("mixed.npz");
    let mut npz = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    npz.start_file("ok.npy", opts).unwrap();
    std::io::Write::write_all(&mut npz, &npy_bytes("|u1", false, &[1], &[7])).unwrap();
    npz.start_file("names.npy", opts).unwrap();
    std::io::Write::write_all(&mut npz, &npy_bytes("<U5", false, &[1], &[0; 20])).unwrap();
    npz.finish().unwrap();
    let e = load_err(&path);
    assert_eq!(e.message, "array 'names': unsupported dtype '<U5' (strings)");

    let path = dir.join("empty.npz");
    NpzWriter::new(std::fs::File::create(&path).unwrap()).finish().unwrap();
    assert_eq!(load_err(&path).message, "the .npz archive holds no arrays");
}
