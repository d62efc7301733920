//! Helpers shared by the integration tests that run the `optic` binary.

use std::process::{Command, Output};

/// Runs `optic` with `args` from the repository root.
pub fn optic(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_optic"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the optic binary runs")
}

/// What a run printed on stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
