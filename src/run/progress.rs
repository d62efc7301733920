//! The progress display of `optic run`: an indicatif bar over every run's steps (the loss in its
//! message, indicatif's ETA), or plain lines, about ten per run, each with the step, the loss,
//! the time so far and an estimate of the time left, or nothing. `--progress auto` (the default)
//! draws the bar on a terminal and prints plain lines otherwise (logs, CI, `--plain`).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How `optic run` shows progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A bar on a terminal (unless `--plain`), plain lines otherwise.
    #[default]
    Auto,
    /// A bar (drawn only on a terminal).
    Bar,
    /// About ten lines per run on stderr: step, loss, elapsed time and ETA.
    Plain,
    /// Nothing.
    None,
}

/// Per run, for plain lines: when it started, its first step (a resumed run starts late) and the
/// last step printed.
#[derive(Clone, Copy, Debug, Default)]
struct Clock {
    start: Option<(Instant, u64)>,
    printed: u64,
}

/// Progress of one or several runs.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    /// Per run: (label, steps).
    runs: Vec<(String, u64)>,
    clocks: Mutex<Vec<Clock>>,
}

impl Progress {
    /// A display for these runs (label, steps); `plain` is `--plain`, which `auto` follows.
    pub fn new(runs: &[(String, u64)], mode: ProgressMode, plain: bool) -> Progress {
        let bar = match mode {
            ProgressMode::Auto => !plain && std::io::stderr().is_terminal(),
            ProgressMode::Bar => true,
            ProgressMode::Plain | ProgressMode::None => false,
        };
        let mut p = Progress {
            bar: None,
            plain: !bar && mode != ProgressMode::None,
            runs: runs.to_vec(),
            clocks: Mutex::new(vec![Clock::default(); runs.len()]),
        };
        if bar {
            p.bar = Some(Self::make_bar(runs, ProgressDrawTarget::stderr()));
        }
        p
    }

    /// A bar drawn to `target` (a test's in-memory terminal).
    #[cfg(test)]
    fn with_target(runs: &[(String, u64)], target: ProgressDrawTarget) -> Progress {
        Progress {
            bar: Some(Self::make_bar(runs, target)),
            plain: false,
            runs: runs.to_vec(),
            clocks: Mutex::new(vec![Clock::default(); runs.len()]),
        }
    }

    fn make_bar(runs: &[(String, u64)], target: ProgressDrawTarget) -> ProgressBar {
        let total: u64 = runs.iter().map(|r| r.1).sum();
        let b = ProgressBar::with_draw_target(Some(total), target);
        b.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps, ETA {eta} {msg}")
                .expect("the template is valid"),
        );
        b
    }

    /// Step `step` of run `label` finished with training loss `loss`.
    pub fn step(&self, label: &str, step: u64, loss: f64) {
        if let Some(b) = &self.bar {
            b.inc(1);
            if step.is_multiple_of(16) || step == 1 {
                b.set_message(if self.runs.len() == 1 {
                    format!("loss {loss:.4e}")
                } else {
                    format!("{label}: loss {loss:.4e}")
                });
            }
            return;
        }
        if !self.plain {
            return;
        }
        let Some(i) = self.runs.iter().position(|r| r.0 == label) else { return };
        let steps = self.runs[i].1;
        let now = Instant::now();
        let mut clocks = self.clocks.lock().expect("no panics hold the lock");
        // The clock starts at the run's first step, so the first step's time is not counted:
        // the rate is that of the steps after it.
        let (start, first) = *clocks[i].start.get_or_insert((now, step));
        let tenth = (steps / 10).max(1);
        if (step.is_multiple_of(tenth) || step == steps) && clocks[i].printed != step {
            clocks[i].printed = step;
            eprintln!("{}", plain_line(label, step, steps, loss, now - start, step - first));
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// One plain progress line: `[run] step 20/100 loss 1.234567e-2 elapsed 1.2s ETA 4.8s`, where
/// `done` steps took `elapsed` (the ETA is unknown, `?`, before any has).
fn plain_line(label: &str, step: u64, steps: u64, loss: f64, elapsed: Duration, done: u64) -> String {
    let eta = if done == 0 {
        "?".to_string()
    } else {
        duration(elapsed.as_secs_f64() / done as f64 * steps.saturating_sub(step) as f64)
    };
    format!("[{label}] step {step}/{steps} loss {loss:.6e} elapsed {} ETA {eta}", duration(elapsed.as_secs_f64()))
}

/// A duration for people: `0.4s`, `12s`, `3m05s`, `2h07m`.
fn duration(secs: f64) -> String {
    if secs < 10.0 {
        format!("{secs:.1}s")
    } else if secs < 60.0 {
        format!("{secs:.0}s")
    } else if secs < 3600.0 {
        let s = secs.round() as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = (secs / 60.0).round() as u64;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A terminal that keeps what is written to it.
    #[derive(Debug, Default, Clone)]
    struct Screen(Arc<Mutex<String>>);

    impl indicatif::TermLike for Screen {
        fn width(&self) -> u16 {
            120
        }
        fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> std::io::Result<()> {
            self.write_str(&format!("{s}\n"))
        }
        fn write_str(&self, s: &str) -> std::io::Result<()> {
            self.0.lock().expect("no panics hold the lock").push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> std::io::Result<()> {
            self.write_str("\n")
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_bar_shows_steps_eta_and_loss() {
        let screen = Screen::default();
        let runs = vec![("main".to_string(), 40)];
        let p = Progress::with_target(&runs, ProgressDrawTarget::term_like(Box::new(screen.clone())));
        for step in 1..=16 {
            p.step("main", step, 0.5);
        }
        if let Some(b) = &p.bar {
            // A draw now, whatever the rate limit let through.
            b.tick();
        }
        let text = screen.0.lock().expect("no panics hold the lock").clone();
        assert!(text.contains("16/40 steps"), "{text:?}");
        assert!(text.contains("ETA"), "{text:?}");
        assert!(text.contains("loss 5.0000e-1"), "{text:?}");
        p.finish();
    }

    #[test]
    fn a_sweep_bar_names_the_run_of_the_loss() {
        let screen = Screen::default();
        let runs = vec![("lr=0.1".to_string(), 20), ("lr=0.2".to_string(), 20)];
        let p = Progress::with_target(&runs, ProgressDrawTarget::term_like(Box::new(screen.clone())));
        p.step("lr=0.1", 1, 2.0);
        p.step("lr=0.2", 1, 3.0);
        if let Some(b) = &p.bar {
            b.tick();
        }
        let text = screen.0.lock().expect("no panics hold the lock").clone();
        assert!(text.contains("2/40 steps") && text.contains("lr=0.2: loss 3.0000e0"), "{text:?}");
    }

    #[test]
    fn plain_lines_have_the_step_loss_and_eta() {
        let line = plain_line("main", 20, 100, 0.0123, Duration::from_millis(1900), 19);
        assert_eq!(line, "[main] step 20/100 loss 1.230000e-2 elapsed 1.9s ETA 8.0s");
        let line = plain_line("lr=0.1", 1, 100, 1.0, Duration::ZERO, 0);
        assert_eq!(line, "[lr=0.1] step 1/100 loss 1.000000e0 elapsed 0.0s ETA ?");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0.44), "0.4s");
        assert_eq!(duration(12.3), "12s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(7620.0), "2h07m");
    }
}
