//! Times the phases of `optic check` on one file: `phases FILE [pest|parse|check]`, each the best
//! of `REPS` runs (default 5). A profiling aid: `valgrind --tool=callgrind` with `REPS=1` gives counts
//! that do not depend on the machine's load.
use optic_compiler::{check, syntax, SourceFile};
use std::sync::Arc;
use std::time::Instant;
fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("a file");
    let mode = args.next().unwrap_or_default();
    let text = std::fs::read_to_string(&path).expect("readable");
    let src = Arc::new(SourceFile::new(path.clone(), text.clone()));
    let time = |name: &str, f: &dyn Fn()| {
        let best = (0..std::env::var("REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(5))
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .min()
            .expect("runs");
        println!("{name}: {best:?}");
    };
    if mode.is_empty() || mode == "pest" {
        time("pest", &|| assert!(syntax::parse::pest_only(&text) > 0));
    }
    if mode.is_empty() || mode == "parse" {
        time("parse", &|| {
            syntax::parse_file(&src).expect("parses");
        });
    }
    if mode.is_empty() || mode == "check" {
        time("check", &|| assert!(check::check_source("x.opt", &text, std::path::Path::new(".")).is_ok()));
    }
}
