//! Data: `load` reads arrays from .npy, .npz or .csv files (checked to exist and to look like
//! their format while checking, so a bad path fails before a run starts), and `onehot` turns
//! integer labels into one-hot targets.

use super::{numeric, sig, Sig};
use crate::check::dims::to_dim;
use crate::check::eval::{Checker, Frame};
use crate::check::shape::{Dim, Shape};
use crate::check::value::{Elem, Value};
use crate::diag::{codes, Diagnostic};
use crate::syntax::ast::Span;

/// The signatures of this family.
pub(super) const SIGS: &[Sig] = &[sig("load", &["path", "key"], 1), sig("onehot", &["labels", "classes"], 2)];

/// The typing rule of this family: the value of a call with its arguments bound to `s`'s
/// parameters, reporting misuse.
pub(super) fn type_call(ch: &mut Checker, f: &mut Frame, s: &Sig, a: &[Option<(Value, Span)>], _span: Span) -> Value {
    let name = s.name;
    match name {
        "load" => load(ch, f, a),
        "onehot" => {
            let Some(shape) = numeric(ch, f, name, &a[0]) else { return Value::Unknown };
            let k = a[1].as_ref().map_or(Dim::Any, |(v, sp)| to_dim(ch, f, v, *sp));
            match shape {
                Shape::Dims(mut d) => {
                    d.push(k);
                    Value::tensor(Shape::Dims(d))
                }
                other => Value::tensor(other),
            }
        }
        _ => Value::Unknown,
    }
}

/// `load(path, key)`: one array of the file with a key, all of them (a list) without.
fn load(ch: &mut Checker, f: &Frame, a: &[Option<(Value, Span)>]) -> Value {
    let Some((v, sp)) = &a[0] else { return Value::Unknown };
    // With a key, one array of the file; without, all of them in file order.
    let whole = if a.get(1).is_some_and(|k| k.is_some()) {
        Value::Tensor(Shape::Any(None), Elem::Float)
    } else {
        Value::List(None)
    };
    let Value::Str(Some(path)) = v else {
        if !matches!(v, Value::Str(None) | Value::Unknown) {
            ch.err(
                f,
                codes::TYPE_MISMATCH,
                *sp,
                format!("`load` takes a file path, not {}", v.describe()),
                "not a string",
            );
        }
        return whole;
    };
    if ch.prog.units[f.unit].stdlib {
        return whole;
    }
    let ext = std::path::Path::new(path).extension().and_then(|e| e.to_str()).unwrap_or("");
    if !matches!(ext, "npy" | "npz" | "csv") {
        ch.report(
            Diagnostic::error(
                codes::BAD_FILE,
                &f.source,
                *sp,
                format!("cannot load `{path}`: unsupported format"),
                "not .npy, .npz or .csv",
            )
            .with_help("save the data as .npy, .npz or .csv"),
        );
        return whole;
    }
    let base = std::path::Path::new(&f.source.name).parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let full = base.join(path);
    if !full.is_file() {
        ch.report(
            Diagnostic::error(
                codes::BAD_FILE,
                &f.source,
                *sp,
                format!("data file `{path}` not found"),
                format!("looked for {}", full.display()),
            )
            .with_help("paths are relative to the experiment's file"),
        );
    } else if let Some(why) = malformed(&full, ext) {
        ch.report(
            Diagnostic::error(
                codes::BAD_FILE,
                &f.source,
                *sp,
                format!("data file `{path}` is malformed: {why}"),
                "not a valid data file",
            )
            .with_help(format!(
                "write it with numpy (`np.save`, `np.savez`) or as comma-separated text; found at {}",
                full.display()
            )),
        );
    }
    whole
}

/// Why a data file cannot be what its extension says, judged from its first bytes.
fn malformed(path: &std::path::Path, ext: &str) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path).and_then(|mut fh| fh.read(&mut head)).ok()?;
    let head = &head[..n];
    match ext {
        "npz" if !head.starts_with(b"PK\x03\x04") && !head.starts_with(b"PK\x05\x06") => {
            Some("an .npz file is a zip archive".into())
        }
        "npy" if !head.starts_with(b"\x93NUMPY") => Some("an .npy file starts with the NumPy magic string".into()),
        // A multi-byte character cut at the 512th byte is not an error (`error_len` is `None`).
        "csv" if std::str::from_utf8(head).is_err_and(|e| e.error_len().is_some()) => {
            Some("a .csv file is text".into())
        }
        _ => None,
    }
}
