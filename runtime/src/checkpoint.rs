//! Checkpoints: named tensors plus string metadata in the safetensors format (an 8-byte header
//! length, a JSON header, then the raw little-endian data), which PyTorch, JAX and numpy tooling
//! read. The format is encoded here rather than through the `safetensors` crate because that crate
//! links serde_json, whose `PartialEq<Value>` impls for floats break type inference in code built
//! against this runtime (`assert_eq!(x, ArrayD::zeros(..))` stops compiling). Values stored as f32
//! or f64 load back bit-identical into the type they were saved from, and a save goes to a
//! temporary file renamed over the target, so an interrupted write never leaves half a checkpoint.

use ndarray::{ArrayD, IxDyn};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The element type a checkpoint stores its tensors in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// 32-bit IEEE floats: half the size, rounding each f64 to nearest.
    F32,
    /// 64-bit IEEE floats: exact for f64 values.
    F64,
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointError {
    /// The checkpoint file.
    pub path: PathBuf,
    /// What went wrong, without the path (which `Display` prepends).
    pub message: String,
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for CheckpointError {}

/// What a checkpoint holds: its tensors in stored order (the order they were saved in; files from
/// other writers, which sort by name, keep theirs) and its metadata.
pub type Checkpoint<T> = (Vec<(String, ArrayD<T>)>, BTreeMap<String, String>);

/// Saves f64 tensors, stored as `dtype`, with string metadata; atomically replaces `path`.
pub fn save(
    path: &Path,
    tensors: &[(String, &ArrayD<f64>)],
    dtype: Dtype,
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let encoded = tensors.iter().map(|(name, a)| {
        let bytes = match dtype {
            Dtype::F64 => a.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Dtype::F32 => a.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect(),
        };
        (name.as_str(), a.shape(), bytes)
    });
    let name = match dtype {
        Dtype::F64 => "F64",
        Dtype::F32 => "F32",
    };
    write(path, name, encoded.collect(), metadata)
}

/// Saves f32 tensors as f32, with string metadata; atomically replaces `path`.
pub fn save_f32(
    path: &Path,
    tensors: &[(String, &ArrayD<f32>)],
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let encoded =
        tensors.iter().map(|(name, a)| (name.as_str(), a.shape(), a.iter().flat_map(|v| v.to_le_bytes()).collect()));
    write(path, "F32", encoded.collect(), metadata)
}

/// Loads a checkpoint as f64: f64 tensors exactly, f32 tensors widened (also exactly).
pub fn load(path: &Path) -> Result<Checkpoint<f64>, CheckpointError> {
    read(path, |dtype, bytes| match dtype {
        "F64" => Some(bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()),
        "F32" => Some(bytes.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap()))).collect()),
        _ => None,
    })
}

/// Loads a checkpoint as f32: f32 tensors exactly, f64 tensors rounded to nearest (a run in f32
/// resuming from an f64 checkpoint wants that, not an error).
pub fn load_f32(path: &Path) -> Result<Checkpoint<f32>, CheckpointError> {
    read(path, |dtype, bytes| match dtype {
        "F32" => Some(bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()),
        "F64" => Some(bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect()),
        _ => None,
    })
}

fn error(path: &Path, message: String) -> CheckpointError {
    CheckpointError { path: path.to_path_buf(), message }
}

/// Bytes per element of the safetensors dtypes, for validating files from other writers.
fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
        "U16" | "I16" | "F16" | "BF16" => 2,
        "U32" | "I32" | "F32" => 4,
        "U64" | "I64" | "F64" => 8,
        _ => return None,
    })
}

/// A spec-conforming header cannot be larger; the bound stops a corrupt length from allocating.
const MAX_HEADER: u64 = 100_000_000;

/// Encodes the file and writes it atomically: a temporary file in the target's directory (a rename
/// is atomic only within one file system), flushed to disk, then renamed over the target.
fn write(
    path: &Path,
    dtype: &str,
    tensors: Vec<(&str, &[usize], Vec<u8>)>,
    metadata: &BTreeMap<String, String>,
) -> Result<(), CheckpointError> {
    let mut seen = std::collections::HashSet::new();
    if let Some((dup, ..)) = tensors.iter().find(|(name, ..)| !seen.insert(*name)) {
        return Err(error(path, format!("tensor name '{dup}' appears twice")));
    }
    if tensors.iter().any(|(name, ..)| *name == "__metadata__") {
        return Err(error(path, "'__metadata__' is reserved and cannot name a tensor".into()));
    }
    let mut header = String::from("{");
    if !metadata.is_empty() {
        header.push_str("\"__metadata__\":{");
        for (i, (k, v)) in metadata.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            header.push_str(&format!("{sep}{}:{}", json_string(k), json_string(v)));
        }
        header.push('}');
    }
    let mut offset = 0;
    for (i, (name, shape, bytes)) in tensors.iter().enumerate() {
        let sep = if i == 0 && metadata.is_empty() { "" } else { "," };
        let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
        header.push_str(&format!(
            "{sep}{}:{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{offset},{}]}}",
            json_string(name),
            dims.join(","),
            offset + bytes.len()
        ));
        offset += bytes.len();
    }
    header.push('}');
    // Like the reference writer, pad with spaces so the data starts 8-byte aligned.
    while !header.len().is_multiple_of(8) {
        header.push(' ');
    }

    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| error(path, "not a file path".into()))?;
    // Unique per process and per save, so concurrent saves (a sweep's workers) never share one.
    static SAVES: AtomicUsize = AtomicUsize::new(0);
    let n = SAVES.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{}-{n}.tmp", file_name.to_string_lossy(), std::process::id()));
    let written = (|| {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        file.write_all(&(header.len() as u64).to_le_bytes())?;
        file.write_all(header.as_bytes())?;
        for (_, _, bytes) in &tensors {
            file.write_all(bytes)?;
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        // The partial temporary file is useless; the target was never touched.
        let _ = std::fs::remove_file(&tmp);
        error(path, format!("cannot write: {e}"))
    })
}

/// Reads every tensor in stored order, decoding each with `decode` (None: a dtype it does not take).
fn read<T>(path: &Path, decode: impl Fn(&str, &[u8]) -> Option<Vec<T>>) -> Result<Checkpoint<T>, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => error(path, "no such file".into()),
        _ => error(path, format!("cannot read: {e}")),
    })?;
    let invalid = |why: String| error(path, format!("not a valid safetensors checkpoint ({why})"));
    let len = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
    let len = len.filter(|&l| l <= MAX_HEADER && 8 + l <= bytes.len() as u64);
    let len = len.ok_or_else(|| invalid("truncated or corrupt header length".into()))? as usize;
    let header = std::str::from_utf8(&bytes[8..8 + len]).map_err(|_| invalid("header is not UTF-8".into()))?;
    let data = &bytes[8 + len..];
    let entries = match json::parse(header).map_err(|e| invalid(format!("header: {e}")))? {
        json::Value::Object(entries) => entries,
        _ => return Err(invalid("header is not a JSON object".into())),
    };

    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::new();
    for (name, value) in entries {
        if name == "__metadata__" {
            let json::Value::Object(pairs) = value else {
                return Err(invalid("__metadata__ is not an object".into()));
            };
            for (k, v) in pairs {
                let json::Value::String(v) = v else {
                    return Err(invalid(format!("metadata '{k}' is not a string")));
                };
                metadata.insert(k, v);
            }
            continue;
        }
        let info = tensor_info(&value).ok_or_else(|| invalid(format!("tensor '{name}' has a malformed entry")))?;
        tensors.push((name, info));
    }
    // Data must be laid out back to back in offset order and fill the buffer exactly.
    tensors.sort_by_key(|(_, (_, _, (start, _)))| *start);
    let mut end = 0;
    let mut out = Vec::with_capacity(tensors.len());
    for (name, (dtype, shape, (start, stop))) in tensors {
        let size = dtype_size(&dtype).ok_or_else(|| invalid(format!("tensor '{name}' has unknown dtype {dtype}")))?;
        let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if start != end || Some(stop - start) != count.and_then(|c| c.checked_mul(size)) || stop > data.len() {
            return Err(invalid(format!("tensor '{name}' has data offsets that do not match its shape")));
        }
        end = stop;
        let values = decode(&dtype, &data[start..stop]).ok_or_else(|| {
            error(path, format!("tensor '{name}' is stored as {dtype}; only F32 and F64 can be loaded"))
        })?;
        let array = ArrayD::from_shape_vec(IxDyn(&shape), values).expect("length checked against the shape");
        out.push((name, array));
    }
    if end != data.len() {
        return Err(invalid(format!("{} bytes after the last tensor", data.len() - end)));
    }
    Ok((out, metadata))
}

/// A tensor's header entry (dtype, shape, data offsets), or None when it is malformed.
type TensorInfo = (String, Vec<usize>, (usize, usize));

fn tensor_info(value: &json::Value) -> Option<TensorInfo> {
    let json::Value::Object(fields) = value else { return None };
    let field = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let ints = |v: Option<&json::Value>| match v? {
        json::Value::Array(items) => {
            items.iter().map(|i| if let json::Value::Int(n) = i { Some(*n) } else { None }).collect::<Option<Vec<_>>>()
        }
        _ => None,
    };
    let json::Value::String(dtype) = field("dtype")? else { return None };
    let offsets = ints(field("data_offsets"))?;
    let [start, stop] = offsets[..] else { return None };
    if start > stop {
        return None;
    }
    Some((dtype.clone(), ints(field("shape"))?, (start, stop)))
}

/// Quotes a string as JSON.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The JSON a safetensors header uses: objects (keeping key order), arrays, strings and
/// non-negative integers; anything else is an error, since no valid header has it.
mod json {
    /// One parsed value.
    pub enum Value {
        Object(Vec<(String, Value)>),
        Array(Vec<Value>),
        String(String),
        Int(usize),
    }

    /// Parses a whole document.
    pub fn parse(text: &str) -> Result<Value, String> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("unexpected text at byte {}", p.i));
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) -> bool {
            self.ws();
            let hit = self.s.get(self.i) == Some(&c);
            self.i += usize::from(hit);
            hit
        }

        fn value(&mut self, depth: usize) -> Result<Value, String> {
            // The deepest valid header is three levels; the bound keeps corrupt input off the stack.
            if depth > 8 {
                return Err("nested too deeply".into());
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut entries = Vec::new();
                    if !self.eat(b'}') {
                        loop {
                            self.ws();
                            let key = self.string()?;
                            if !self.eat(b':') {
                                return Err(format!("expected ':' at byte {}", self.i));
                            }
                            entries.push((key, self.value(depth + 1)?));
                            if self.eat(b'}') {
                                break;
                            }
                            if !self.eat(b',') {
                                return Err(format!("expected ',' or '}}' at byte {}", self.i));
                            }
                        }
                    }
                    Ok(Value::Object(entries))
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    if !self.eat(b']') {
                        loop {
                            items.push(self.value(depth + 1)?);
                            if self.eat(b']') {
                                break;
                            }
                            if !self.eat(b',') {
                                return Err(format!("expected ',' or ']' at byte {}", self.i));
                            }
                        }
                    }
                    Ok(Value::Array(items))
                }
                Some(b'"') => self.string().map(Value::String),
                Some(c) if c.is_ascii_digit() => {
                    let start = self.i;
                    while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                        self.i += 1;
                    }
                    let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                    digits.parse().map(Value::Int).map_err(|_| format!("number {digits} is out of range"))
                }
                _ => Err(format!("unexpected value at byte {}", self.i)),
            }
        }

        fn string(&mut self) -> Result<String, String> {
            if self.s.get(self.i) != Some(&b'"') {
                return Err(format!("expected a string at byte {}", self.i));
            }
            self.i += 1;
            let mut out = String::new();
            loop {
                let start = self.i;
                while self.s.get(self.i).is_some_and(|&c| c != b'"' && c != b'\\') {
                    self.i += 1;
                }
                // The input is a &str and we stop only at ASCII bytes, so this slice is valid UTF-8.
                out.push_str(std::str::from_utf8(&self.s[start..self.i]).unwrap());
                match self.s.get(self.i) {
                    Some(b'"') => {
                        self.i += 1;
                        return Ok(out);
                    }
                    Some(_) => {
                        let esc = *self.s.get(self.i + 1).ok_or("unterminated string")?;
                        self.i += 2;
                        out.push(match esc {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => self.unicode()?,
                            _ => return Err(format!("bad escape at byte {}", self.i - 1)),
                        });
                    }
                    None => return Err("unterminated string".into()),
                }
            }
        }

        /// The code point after `\u`, joining a UTF-16 surrogate pair when one follows.
        fn unicode(&mut self) -> Result<char, String> {
            let hex = |p: &mut Self| -> Result<u32, String> {
                let h = p.s.get(p.i..p.i + 4).and_then(|h| std::str::from_utf8(h).ok());
                let v = h.and_then(|h| u32::from_str_radix(h, 16).ok()).ok_or("bad \\u escape")?;
                p.i += 4;
                Ok(v)
            };
            let hi = hex(self)?;
            let code = if (0xd800..0xdc00).contains(&hi) && self.s.get(self.i..self.i + 2) == Some(b"\\u") {
                self.i += 2;
                let lo = hex(self)?;
                if !(0xdc00..0xe000).contains(&lo) {
                    return Err("bad \\u escape".into());
                }
                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
            } else {
                hi
            };
            char::from_u32(code).ok_or_else(|| "bad \\u escape".into())
        }
    }
}
