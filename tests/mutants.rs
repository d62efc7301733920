//! No input may panic. Mutants of every shipped `.opt` file (deleted, duplicated, swapped and
//! inserted fragments, truncations, junk bytes) are checked; each must come back as a clean
//! result or as diagnostics that name the file, line and column, never as a panic. The
//! generator is seeded, so a failure reproduces; `OPTIC_MUTANTS=N` runs more.

use optic_compiler::check::check_source;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::path::Path;

const FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "==",
    "@",
    "^T",
    "^",
    "*",
    "/",
    "-",
    "+",
    ":",
    "..",
    ".",
    "*x",
    "let",
    "var",
    "state",
    "return",
    "repeat",
    "for",
    "if",
    "else",
    "rule",
    "model",
    "init",
    "fn",
    "experiment",
    "adapter",
    "schedule",
    "import \"nope.opt\"",
    "import \"mutant.opt\"",
    "param",
    "frozen",
    "weight",
    "forward",
    "optimize",
    "with",
    "sweep",
    "log every",
    "1e999",
    "99999999999999999999",
    "0",
    "-1",
    "1.5",
    "\"",
    "\"s\"",
    "///",
    "//",
    "None",
    "true",
    "not",
    "and",
    "é",
    "\u{0}",
    "\t",
    "\n",
    "g",
    "x",
    "step",
    "param",
    "inf",
    "nan",
    "[*s]",
    "[m, n]",
    "adam(lr = -1)",
    "refresh every 0",
    "reset every",
    "in [0, 1)",
    ": rule",
    "load(\"missing.npz\")",
];

fn corpus() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["examples", "stdlib"] {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(dir)).expect("directory exists").flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "opt") {
                out.push((p.display().to_string(), std::fs::read_to_string(&p).expect("readable")));
            }
        }
    }
    out
}

fn boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn mutate(text: &str, rng: &mut Pcg64) -> String {
    let mut t = text.to_string();
    for _ in 0..rng.random_range(1..4) {
        let n = t.len().max(1);
        let a = boundary(&t, rng.random_range(0..n));
        let b = boundary(&t, (a + rng.random_range(0..24)).min(t.len()));
        match rng.random_range(0..6) {
            0 => t.replace_range(a..b, ""),
            1 => {
                let frag = FRAGMENTS[rng.random_range(0..FRAGMENTS.len())];
                t.insert_str(a, frag);
            }
            2 => {
                let piece = t[a..b].to_string();
                let c = boundary(&t, rng.random_range(0..n));
                t.insert_str(c, &piece);
            }
            3 => t.truncate(a),
            4 => {
                let frag = FRAGMENTS[rng.random_range(0..FRAGMENTS.len())];
                t.replace_range(a..b, frag);
            }
            _ => {
                // Swap two lines.
                let mut lines: Vec<&str> = t.lines().collect();
                if lines.len() > 1 {
                    let i = rng.random_range(0..lines.len());
                    let j = rng.random_range(0..lines.len());
                    lines.swap(i, j);
                }
                t = lines.join("\n");
            }
        }
    }
    t
}

#[test]
fn mutants_never_panic_and_always_locate() {
    let corpus = corpus();
    assert!(!corpus.is_empty());
    let count: usize = std::env::var("OPTIC_MUTANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(480);
    let mut rng = Pcg64::seed_from_u64(0x0971c);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut rejected = 0;
    for i in 0..count {
        let (name, text) = &corpus[i % corpus.len()];
        let mutant = mutate(text, &mut rng);
        let result = std::panic::catch_unwind(|| {
            let checked = check_source("mutant.opt", &mutant, &dir);
            let rendered: Vec<String> = checked.diagnostics.iter().map(|d| d.render_plain()).collect();
            (checked.diagnostics, rendered)
        });
        let (diags, rendered) = match result {
            Ok(r) => r,
            Err(_) => panic!("mutant {i} of {name} panicked the checker:\n-----\n{mutant}\n-----"),
        };
        if !diags.is_empty() {
            rejected += 1;
        }
        for (d, r) in diags.iter().zip(&rendered) {
            assert!(!d.labels.is_empty(), "mutant {i} of {name}: a diagnostic without a location: {d:?}");
            let loc = d.location();
            let mut parts = loc.rsplitn(3, ':');
            let col: usize = parts.next().and_then(|c| c.parse().ok()).expect("a column");
            let line: usize = parts.next().and_then(|l| l.parse().ok()).expect("a line");
            assert!(line >= 1 && col >= 1, "mutant {i}: bad location {loc}");
            assert!(r.contains(&d.source.name), "mutant {i}: the rendering does not name the file:\n{r}");
        }
    }
    // Most mutants are broken programs; if almost none are rejected the checker is asleep.
    assert!(rejected * 2 > count, "only {rejected} of {count} mutants were rejected");
}
