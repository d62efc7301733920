//! Embeds every `stdlib/*.opt` file in the compiler, so the standard library is always
//! available without files on disk, with the index of its top-level pieces (what each declares
//! and names, `syntax/scan.rs`), so a run finds what its program needs without scanning the
//! library first.

use std::fmt::Write as _;
use std::path::Path;

// The compiler's own scanner, so the index is the one it would compute (a test checks that).
#[allow(dead_code)]
#[path = "src/syntax/scan.rs"]
mod scan;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stdlib");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".opt"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::from("/// The embedded standard library: (file name, text), sorted by name.\npub static FILES: &[(&str, &str)] = &[\n");
    for n in &names {
        let path = dir.join(n);
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            out,
            "    ({n:?}, include_str!({:?})),",
            path.canonicalize().unwrap_or(path).display().to_string()
        );
    }
    out.push_str("];\n");
    let texts: Vec<(String, String)> = names
        .iter()
        .map(|n| (n.clone(), std::fs::read_to_string(dir.join(n)).expect("a readable stdlib file")))
        .collect();
    let files: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    out.push_str(
        "/// The library's top-level pieces (`syntax::scan::index_pieces` of [`FILES`]).\n\
         static PIECES: &[BuiltPiece] = &[\n",
    );
    for p in scan::index_pieces(&files) {
        let _ = writeln!(
            out,
            "    BuiltPiece {{ file: {}, start: {}, end: {}, name: {:?}, mentions: &{:?} }},",
            p.file, p.start, p.end, p.name, p.mentions
        );
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("stdlib_files.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
