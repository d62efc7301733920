//! Loading experiment data files (`.npy`, `.npz`, `.csv`) into row-major arrays: float32 arrays
//! keep their type, so a float32 run takes a large dataset without a conversion or a copy; every
//! other stored element type (float64, signed or unsigned integers, bools) comes back as `f64`,
//! with the stored type kept as a string so a caller can still tell labels from features. Every
//! failure names the file and, where one helps, carries a hint on how to fix it.

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{ReadNpyError, ReadNpyExt, ReadableElement};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One array read from a data file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The array's name: the file stem for `.npy` and a `.csv` table, the key for `.npz` entries,
    /// the header for `.csv` columns.
    pub name: String,
    /// The values in standard (row-major) layout whatever the file's order.
    pub values: Values,
    /// The element type as stored: `"f32"`, `"f64"`, `"i8"` … `"i64"`, `"u8"` … `"u64"` or `"bool"`.
    pub dtype: String,
}

/// A loaded array's values: float32 as stored, anything else as `f64` (integers beyond 2^53
/// round to the nearest `f64`).
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// A float32 array.
    F32(ArrayD<f32>),
    /// Any other element type, widened.
    F64(ArrayD<f64>),
}

impl Values {
    /// The array's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Values::F32(a) => a.shape(),
            Values::F64(a) => a.shape(),
        }
    }

    /// The values as `f64` (exact: every f32 is an f64).
    pub fn to_f64(&self) -> ArrayD<f64> {
        match self {
            Values::F32(a) => a.mapv(f64::from),
            Values::F64(a) => a.clone(),
        }
    }
}

/// Why a data file could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    /// The file, as the caller named it.
    pub path: PathBuf,
    /// What is wrong, without the path (which `Display` prepends).
    pub message: String,
    /// How to fix it, when there is something specific to say.
    pub hint: Option<String>,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for DataError {}

/// The extensions [`load`] understands, also used to list candidates when a file is missing.
const EXTENSIONS: [&str; 3] = ["npy", "npz", "csv"];

/// Loads every array in the data file at `path`, choosing the format by extension: `.npy` gives
/// one array named after the file stem; `.npz` gives every array in archive order, named by its
/// key; `.csv` gives the whole table `[rows, cols]` named after the file stem, then, when the first
/// row is a header, one 1-D array per column named by its header.
pub fn load(path: &Path) -> Result<Vec<Loaded>, DataError> {
    let err = |message: String, hint: Option<String>| DataError { path: path.to_path_buf(), message, hint };
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
    if !EXTENSIONS.contains(&ext.as_str()) {
        return Err(err(
            format!("unsupported data file type '.{ext}'"),
            Some("data files must end in .npy, .npz or .csv".into()),
        ));
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if ext == "npy" {
        if let Some(values) = read_plain_npy(path) {
            let dtype = if matches!(values, Values::F32(_)) { "f32" } else { "f64" };
            return Ok(vec![Loaded { name: stem, values, dtype: dtype.into() }]);
        }
    }
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => err("no such file".into(), missing_hint(path)),
        _ => err(format!("cannot read: {e}"), None),
    })?;
    let result = match ext.as_str() {
        "npy" => decode_npy(&bytes, &stem).map(|l| vec![l]),
        "npz" => load_npz(&bytes),
        _ => load_csv(&bytes, &stem),
    };
    result.map_err(|(message, hint)| err(message, hint))
}

/// A failure before the path is attached: message and hint.
type Failure = (String, Option<String>);

/// Lists the data files next to a missing one, since the usual cause is a typo or a wrong directory.
fn missing_hint(path: &Path) -> Option<String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Some(format!("the directory {} does not exist either", dir.display()));
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    if names.is_empty() {
        Some(format!("{} holds no .npy, .npz or .csv file", dir.display()))
    } else {
        Some(format!("data files in {}: {}", dir.display(), names.join(", ")))
    }
}

/// Reads one `.npz` archive; entries are `.npy` files, so each goes through [`decode_npy`].
fn load_npz(bytes: &[u8]) -> Result<Vec<Loaded>, Failure> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| {
        (
            format!("not a valid .npz file (not a zip archive: {e})"),
            Some("write .npz files with numpy.savez or numpy.savez_compressed".into()),
        )
    })?;
    let mut out = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|e| (format!("not a valid .npz file: entry {i}: {e}"), None))?;
        if entry.is_dir() {
            continue;
        }
        let key = entry.name().to_string();
        let name = key.strip_suffix(".npy").unwrap_or(&key).to_string();
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data).map_err(|e| (format!("not a valid .npz file: entry '{key}': {e}"), None))?;
        let loaded = decode_npy(&data, &name).map_err(|(m, h)| (format!("array '{name}': {m}"), h))?;
        out.push(loaded);
    }
    if out.is_empty() {
        return Err((
            "the .npz archive holds no arrays".into(),
            Some("numpy.savez writes one entry per array passed to it".into()),
        ));
    }
    Ok(out)
}

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

fn invalid_npy(why: &str) -> Failure {
    (format!("not a valid .npy file ({why})"), Some("write .npy files with numpy.save".into()))
}

/// The header text of a `.npy` file and the offset its data starts at.
fn npy_header(bytes: &[u8]) -> Result<(&str, usize), Failure> {
    if bytes.len() < 10 || !bytes.starts_with(NPY_MAGIC) {
        return Err(invalid_npy(if bytes.starts_with(NPY_MAGIC) {
            "truncated header"
        } else {
            "bad magic: it does not start with \\x93NUMPY"
        }));
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => {
            let l = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (l as usize, 12)
        }
        2 | 3 => return Err(invalid_npy("truncated header")),
        v => return Err(invalid_npy(&format!("unknown format version {v}"))),
    };
    let header = bytes.get(start..start.saturating_add(len)).ok_or_else(|| invalid_npy("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| invalid_npy("header is not text"))?;
    Ok((header, start + len))
}

/// Reads the `descr` entry of a `.npy` header. ndarray-npy reads a fixed element type and keeps its
/// header parser private, so the type must be known before it is asked to decode.
fn npy_descr(bytes: &[u8]) -> Result<String, Failure> {
    let (header, _) = npy_header(bytes)?;
    let rest = header
        .find("'descr'")
        .map(|i| header[i + "'descr'".len()..].trim_start())
        .and_then(|r| r.strip_prefix(':'))
        .map(str::trim_start)
        .ok_or_else(|| invalid_npy("header has no 'descr'"))?;
    let Some(quoted) = rest.strip_prefix('\'') else {
        // A list descriptor describes a record (structured) array.
        let descr = rest.find(']').map_or("[...]", |i| &rest[..=i]);
        return Err(unsupported(descr, "a structured (record) type"));
    };
    let end = quoted.find('\'').ok_or_else(|| invalid_npy("unterminated 'descr'"))?;
    Ok(quoted[..end].to_string())
}

/// The error for an element type that has no numeric meaning.
fn unsupported(descr: &str, what: &str) -> Failure {
    (
        format!("unsupported dtype '{descr}' ({what})"),
        Some(
            "only numeric and bool arrays can be loaded: convert with .astype(numpy.float64) \
             before saving"
                .into(),
        ),
    )
}

/// Where the payload of a plain float `.npy` file lies: little-endian `f4` or `f8` in C order,
/// the common case, read without ndarray-npy.
struct PlainLayout {
    shape: Vec<usize>,
    count: usize,
    /// `f8` rather than `f4`.
    wide: bool,
    /// The payload's offset.
    start: usize,
}

impl PlainLayout {
    /// The layout `bytes` (the file's start, at least its header) describe; None for anything
    /// else, which [`decode_npy`] hands to ndarray-npy with its validation and messages.
    fn of(bytes: &[u8]) -> Option<PlainLayout> {
        let descr = npy_descr(bytes).ok()?;
        let little = cfg!(target_endian = "little") && (descr.starts_with('<') || descr.starts_with('='));
        let wide = match descr.trim_start_matches(['<', '=']) {
            "f4" if little => false,
            "f8" if little => true,
            _ => return None,
        };
        let (header, start) = npy_header(bytes).ok()?;
        let after = |key: &str| header.find(key).map(|i| header[i + key.len()..].trim_start());
        if !after("'fortran_order':")?.starts_with("False") {
            return None;
        }
        let shape_text = after("'shape':")?.strip_prefix('(')?;
        let shape_text = &shape_text[..shape_text.find(')')?];
        let shape: Vec<usize> = shape_text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| t.parse().ok())
            .collect::<Option<_>>()?;
        let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
        Some(PlainLayout { shape, count, wide, start })
    }

    /// The payload's size in bytes.
    fn bytes(&self) -> Option<usize> {
        self.count.checked_mul(if self.wide { 8 } else { 4 })
    }
}

/// A plain float `.npy` payload already in memory (an `.npz` entry), decoded in one pass.
fn decode_float_fast(bytes: &[u8]) -> Option<Values> {
    let layout = PlainLayout::of(bytes)?;
    let data = bytes.get(layout.start..)?;
    if data.len() != layout.bytes()? {
        return None;
    }
    let shape = IxDyn(&layout.shape);
    Some(if layout.wide {
        let values = data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))).collect();
        Values::F64(ArrayD::from_shape_vec(shape, values).ok()?)
    } else {
        let values = data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        Values::F32(ArrayD::from_shape_vec(shape, values).ok()?)
    })
}

/// Reads a plain float `.npy` file straight into its array: one copy out of the page cache,
/// where reading the whole file and then decoding it moves a 16 MiB dataset three times. None
/// for any other file, or any failure, which the general path then reads or reports.
fn read_plain_npy(path: &Path) -> Option<Values> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
    // numpy pads its headers to 64 bytes; 4 KiB covers any it writes.
    let mut head = vec![0u8; len.min(4096)];
    file.read_exact(&mut head).ok()?;
    let layout = PlainLayout::of(&head)?;
    if len.checked_sub(layout.start)? != layout.bytes()? {
        return None;
    }
    let shape = IxDyn(&layout.shape);
    Some(if layout.wide {
        Values::F64(ArrayD::from_shape_vec(shape, read_floats::<f64>(&file, layout.start as u64, layout.count)?).ok()?)
    } else {
        Values::F32(ArrayD::from_shape_vec(shape, read_floats::<f32>(&file, layout.start as u64, layout.count)?).ok()?)
    })
}

/// The floats whose little-endian bytes [`read_floats`] may read straight into memory.
trait PlainFloat: Copy + Default {}
impl PlainFloat for f32 {}
impl PlainFloat for f64 {}

/// Reads `count` little-endian floats at byte `start` of a file into a vector, without an
/// intermediate byte buffer and without zeroing the vector first. A large payload is read as
/// two halves on two threads: most of the time goes to the kernel clearing the fresh pages and
/// copying out of the page cache, which then runs on both cores.
#[cfg(unix)]
fn read_floats<T: PlainFloat>(file: &std::fs::File, start: u64, count: usize) -> Option<Vec<T>> {
    use std::os::fd::AsRawFd;
    const SPLIT_ABOVE: usize = 4 << 20;
    let mut values: Vec<T> = Vec::with_capacity(count);
    let size = count.checked_mul(std::mem::size_of::<T>())?;
    let (fd, base) = (file.as_raw_fd(), values.as_mut_ptr() as usize);
    let half = if size > SPLIT_ABOVE { size / 2 / 4096 * 4096 } else { size };
    let read_all = move |from: usize, to: usize| -> bool {
        let mut done = from;
        while done < to {
            let offset = libc::off_t::try_from(start + done as u64).unwrap_or(libc::off_t::MAX);
            // SAFETY: the kernel writes at most `to - done` bytes from `base + done`, which lie
            // inside the vector's allocation of `size` bytes; the two halves do not overlap.
            let n = unsafe { libc::pread(fd, (base + done) as *mut libc::c_void, to - done, offset) };
            match n {
                n if n > 0 => done += n as usize,
                n if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
                _ => return false,
            }
        }
        true
    };
    let read = std::thread::scope(|s| {
        let second = (half < size).then(|| s.spawn(move || read_all(half, size)));
        let first = read_all(0, half);
        first && second.is_none_or(|h| h.join().unwrap_or(false))
    });
    if !read {
        return None;
    }
    // SAFETY: all `size` bytes are written, and every bit pattern is an f32 or f64 (the only
    // `PlainFloat`s); on this little-endian target (checked by `PlainLayout::of`) the file's
    // bytes are the values.
    unsafe { values.set_len(count) };
    Some(values)
}

/// Reads `count` little-endian floats at byte `start` of a file into a vector, without an
/// intermediate byte buffer.
#[cfg(not(unix))]
fn read_floats<T: PlainFloat>(mut file: &std::fs::File, start: u64, count: usize) -> Option<Vec<T>> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut values = vec![T::default(); count];
    let size = std::mem::size_of_val(values.as_slice());
    // SAFETY: f32 and f64 (the only `PlainFloat`s) have no padding and every bit pattern is a
    // value, so their initialized storage may be written as bytes; on this little-endian target
    // (checked by `PlainLayout::of`) the file's bytes are the values.
    let bytes = unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), size) };
    file.read_exact(bytes).ok()?;
    Some(values)
}

/// Decodes one `.npy` payload, dispatching on its stored element type.
fn decode_npy(bytes: &[u8], name: &str) -> Result<Loaded, Failure> {
    let descr = npy_descr(bytes)?;
    if let Some(values) = decode_float_fast(bytes) {
        let dtype = if descr.ends_with('4') { "f32" } else { "f64" };
        return Ok(Loaded { name: name.to_string(), values, dtype: dtype.to_string() });
    }
    // numpy marks byte order with '<', '>', '|' (not applicable) or '='; ndarray-npy checks it.
    let code = descr.trim_start_matches(['<', '>', '|', '=']);
    if code == "f4" {
        let values = read_as::<f32, f32>(bytes, |x| x).map_err(|e| npy_failure(e, &descr))?;
        return Ok(Loaded { name: name.to_string(), values: Values::F32(values), dtype: "f32".into() });
    }
    let (dtype, array) = match code {
        "f8" => ("f64", read_as::<f64, f64>(bytes, |x| x)),
        "i1" | "b" => ("i8", read_as::<i8, f64>(bytes, f64::from)),
        "i2" => ("i16", read_as::<i16, f64>(bytes, f64::from)),
        "i4" => ("i32", read_as::<i32, f64>(bytes, f64::from)),
        "i8" => ("i64", read_as::<i64, f64>(bytes, |x| x as f64)),
        "u1" | "B" => ("u8", read_as::<u8, f64>(bytes, f64::from)),
        "u2" => ("u16", read_as::<u16, f64>(bytes, f64::from)),
        "u4" => ("u32", read_as::<u32, f64>(bytes, f64::from)),
        "u8" => ("u64", read_as::<u64, f64>(bytes, |x| x as f64)),
        "b1" => ("bool", read_as::<bool, f64>(bytes, |b| if b { 1.0 } else { 0.0 })),
        _ => return Err(unsupported(&descr, describe(code))),
    };
    let array = array.map_err(|e| npy_failure(e, &descr))?;
    Ok(Loaded { name: name.to_string(), values: Values::F64(array), dtype: dtype.to_string() })
}

/// Names the kind of an unsupported type code, so the message says more than the raw descriptor.
fn describe(code: &str) -> &'static str {
    match code.chars().next() {
        Some('U') | Some('S') | Some('a') => "strings",
        Some('O') => "Python objects",
        Some('c') => "complex numbers",
        Some('f') => "a float width other than 32 or 64 bits",
        Some('M') | Some('m') => "dates or time deltas",
        Some('V') => "raw bytes",
        _ => "not a numeric type",
    }
}

/// Decodes the whole payload as `T`, then widens it to `U` in row-major layout.
fn read_as<T: ReadableElement + Copy, U: Clone>(
    bytes: &[u8],
    widen: impl Fn(T) -> U,
) -> Result<ArrayD<U>, ReadNpyError> {
    let stored = ArrayD::<T>::read_npy(bytes)?;
    let array = stored.mapv(widen);
    // mapv keeps a Fortran-ordered input's strides; callers may want contiguous row-major slices.
    Ok(if array.is_standard_layout() { array } else { array.as_standard_layout().into_owned() })
}

/// Turns ndarray-npy's error into a message for a person.
fn npy_failure(e: ReadNpyError, descr: &str) -> Failure {
    let hint = Some("the file may be truncated or corrupt: save it again with numpy.save".into());
    match e {
        ReadNpyError::MissingData => {
            ("not a valid .npy file (truncated: the data ends before the shape says)".into(), hint)
        }
        ReadNpyError::ExtraBytes(n) => {
            (format!("not a valid .npy file ({n} bytes follow the data the header describes)"), hint)
        }
        ReadNpyError::WrongDescriptor(_) => unsupported(descr, "unsupported byte order"),
        other => (format!("not a valid .npy file ({other})"), hint),
    }
}

/// Parses a comma-separated table of numbers, with an optional header row of names.
fn load_csv(bytes: &[u8], stem: &str) -> Result<Vec<Loaded>, Failure> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| (format!("not a text file (invalid UTF-8 at byte {})", e.valid_up_to()), None))?;
    // Blank lines (a trailing newline, spacing between blocks) carry no row; line numbers stay
    // those of the file so messages point at the right place.
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty()).peekable();
    let Some(&(first_no, first)) = lines.peek() else {
        return Err(("the file is empty".into(), Some("a .csv data file needs at least one row of numbers".into())));
    };
    let first_fields = split_csv(first, first_no)?;
    let header = if first_fields.iter().any(|f| f.parse::<f64>().is_err()) {
        lines.next();
        let names: Vec<String> = first_fields
            .iter()
            .enumerate()
            .map(|(i, f)| if f.is_empty() { format!("col{i}") } else { f.to_string() })
            .collect();
        Some(names)
    } else {
        None
    };
    let cols = first_fields.len();
    let mut values = Vec::new();
    let mut rows = 0;
    for (no, line) in lines {
        let fields = split_csv(line, no)?;
        if fields.len() != cols {
            return Err((
                format!("line {no} has {} fields but line {first_no} has {cols}", fields.len()),
                Some("every row needs the same number of comma-separated fields".into()),
            ));
        }
        for (c, field) in fields.iter().enumerate() {
            let v = field.parse::<f64>().map_err(|_| {
                let column = match &header {
                    Some(names) => format!("column {} ('{}')", c + 1, names[c]),
                    None => format!("column {}", c + 1),
                };
                (format!("line {no}, {column}: '{field}' is not a number"), None)
            })?;
            values.push(v);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err((format!("line {first_no} is a header but no row of numbers follows it"), None));
    }
    let table = ArrayD::from_shape_vec(IxDyn(&[rows, cols]), values).expect("rows * cols values were pushed");
    let mut out = Vec::with_capacity(1 + cols);
    if let Some(names) = header {
        for (c, name) in names.into_iter().enumerate() {
            let values = Values::F64(table.index_axis(ndarray::Axis(1), c).to_owned());
            out.push(Loaded { name, values, dtype: "f64".into() });
        }
    }
    out.insert(0, Loaded { name: stem.to_string(), values: Values::F64(table), dtype: "f64".into() });
    Ok(out)
}

/// Splits one line on commas and trims each field; quoting is not supported, so it is refused
/// rather than misread (a quoted comma would silently shift every later column).
fn split_csv(line: &str, no: usize) -> Result<Vec<&str>, Failure> {
    if line.contains('"') {
        return Err((
            format!("line {no}: quoted fields are not supported"),
            Some("write plain comma-separated numbers without quotes".into()),
        ));
    }
    Ok(line.split(',').map(str::trim).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_npy::WriteNpyExt;

    fn npy<T: ndarray_npy::WritableElement>(a: &ArrayD<T>) -> Vec<u8> {
        let mut out = Vec::new();
        a.write_npy(&mut out).expect("written");
        out
    }

    /// The one-pass decoder gives ndarray-npy's values and shapes, and declines what it does not
    /// handle (Fortran order, integers) so the general path reads those.
    #[test]
    fn the_fast_float_path_agrees_with_ndarray_npy() {
        let f32s = ArrayD::from_shape_fn(IxDyn(&[3, 5, 2]), |i| (i[0] * 10 + i[1]) as f32 * 0.37 - i[2] as f32);
        let f64s = ArrayD::from_shape_fn(IxDyn(&[7]), |i| (i[0] as f64).sqrt() - 1.5);
        let scalar = ArrayD::from_elem(IxDyn(&[]), 2.5f64);
        let empty = ArrayD::<f32>::zeros(IxDyn(&[0, 4]));
        for bytes in [npy(&f32s), npy(&f64s), npy(&scalar), npy(&empty)] {
            let descr = npy_descr(&bytes).expect("a header");
            let fast = decode_float_fast(&bytes).expect("the fast path takes it");
            let slow = if descr.ends_with('4') {
                read_as::<f32, f32>(&bytes, |x| x).map(Values::F32)
            } else {
                read_as::<f64, f64>(&bytes, |x| x).map(Values::F64)
            }
            .expect("ndarray-npy reads it");
            assert_eq!(fast, slow, "{descr}");
        }
        let fortran = f32s.as_standard_layout().into_owned().reversed_axes();
        assert!(!fortran.is_standard_layout());
        let bytes = npy(&fortran);
        assert!(decode_float_fast(&bytes).is_none());
        assert_eq!(decode_npy(&bytes, "x").expect("the general path").values, Values::F32(fortran));
        let ints = npy(&ArrayD::from_elem(IxDyn(&[2]), 3i32));
        assert!(decode_float_fast(&ints).is_none());
        // A truncated payload is left to ndarray-npy, which reports it.
        let whole = npy(&f64s);
        let cut = &whole[..whole.len() - 8];
        assert!(decode_float_fast(cut).is_none());
        assert!(decode_npy(cut, "x").is_err());
    }
}
