//! `optic repl`: a read-eval-print loop for prototyping update rules. Declarations (rules,
//! schedules, inits, functions, models, adapters, experiments) accumulate in a session that
//! always checks; expressions are lowered and run once by the reference interpreter; commands
//! show types and IR, run a rule on toy problems next to Adam, replay golden fixtures and load
//! files. On a terminal it reads with rustyline (history, completion, multi-line input); given a
//! script or a pipe it runs the lines and prints a transcript, each input echoed after its
//! prompt, which is what the tests snapshot. [`session`] holds the semantics, [`input`] the
//! lexical rules about where an input ends, [`show`] the printing of values, [`toy`] the
//! problems of `:try` and [`editor`] the terminal side.

mod editor;
mod input;
mod session;
mod show;
mod toy;

pub use session::{Reply, Session};

use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// The prompt of a new input.
const PROMPT: &str = "opt> ";
/// The prompt of an input's later lines (in transcripts).
const MORE: &str = "...> ";

/// Runs the REPL: on `script` if given, else on stdin (interactively when it is a terminal).
/// Exit code 0 when the input ran to its end or `:quit`, whatever errors the inputs had (they
/// are part of the session); 1 when the script or stdin cannot be read.
pub fn run(script: Option<PathBuf>) -> ExitCode {
    let text = match script {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None if io::stdin().is_terminal() => return interactive(),
        None => {
            let mut t = String::new();
            if let Err(e) = io::stdin().read_to_string(&mut t) {
                eprintln!("error: cannot read stdin: {e}");
                return ExitCode::FAILURE;
            }
            t
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut session = Session::new();
    match transcript(&mut session, &lines, &mut io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`optic repl < s | head`) is not a failure of the session.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the transcript: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the lines of a script through `session`, writing each input after its prompt and then
/// the reply. Lines join into one input while [`input::needs_more`] says so, or when the next
/// line continues it (`else`); text left open at the end is submitted as it is.
pub fn transcript(session: &mut Session, lines: &[&str], out: &mut impl Write) -> io::Result<()> {
    let mut pending = String::new();
    for (i, line) in lines.iter().enumerate() {
        let prompt = if pending.is_empty() { PROMPT } else { MORE };
        writeln!(out, "{}", format!("{prompt}{line}").trim_end())?;
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(line);
        if input::needs_more(&pending) || lines.get(i + 1).is_some_and(|next| input::continues(next)) {
            continue;
        }
        if answer(session, &std::mem::take(&mut pending), out)? {
            return Ok(());
        }
    }
    if !pending.trim().is_empty() {
        answer(session, &pending, out)?;
    }
    Ok(())
}

/// Submits one input and writes the reply; true when the session should end.
fn answer(session: &mut Session, text: &str, out: &mut impl Write) -> io::Result<bool> {
    match session.submit(text) {
        Reply::Quit => Ok(true),
        Reply::Text(t) if t.is_empty() => Ok(false),
        Reply::Text(t) => writeln!(out, "{t}").map(|()| false),
    }
}

/// The interactive loop on a terminal.
fn interactive() -> ExitCode {
    use rustyline::error::ReadlineError;
    let stdlib = Session::stdlib_names();
    let mut session = Session::new();
    // List completion as in a shell: Tab completes the common prefix, a second Tab lists the rest.
    let config = rustyline::Config::builder().completion_type(rustyline::CompletionType::List).build();
    let mut ed = match rustyline::Editor::<editor::ReplHelper, rustyline::history::DefaultHistory>::with_config(config)
    {
        Ok(ed) => ed,
        Err(e) => {
            eprintln!("error: cannot start the line editor: {e}");
            return ExitCode::FAILURE;
        }
    };
    ed.set_helper(Some(editor::ReplHelper { names: session.names(&stdlib) }));
    // History survives sessions when the home directory is writable; without it, it is in memory.
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".optic_history"));
    if let Some(h) = &history {
        let _ = ed.load_history(h);
    }
    println!("optic repl: :help lists the commands, Ctrl-D leaves");
    let mut code = ExitCode::SUCCESS;
    loop {
        match ed.readline(PROMPT) {
            Ok(text) => {
                if !text.trim().is_empty() {
                    let _ = ed.add_history_entry(text.as_str());
                }
                match session.submit(&text) {
                    Reply::Quit => break,
                    Reply::Text(t) if t.is_empty() => {}
                    Reply::Text(t) => println!("{t}"),
                }
                if let Some(h) = ed.helper_mut() {
                    h.names = session.names(&stdlib);
                }
            }
            // Ctrl-C abandons the input being typed, as in a shell.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: {e}");
                code = ExitCode::FAILURE;
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = ed.save_history(h);
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_script(script: &str) -> String {
        let mut out = Vec::new();
        let lines: Vec<&str> = script.lines().collect();
        transcript(&mut Session::new(), &lines, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn transcripts_echo_inputs_and_join_lines() {
        let t = run_script("let x = 2 * 3\nx\nrule gd(lr = 0.1)(g) {\n    return -lr * g\n}\n\n:quit\n1");
        assert_eq!(
            t,
            "opt> let x = 2 * 3\nx = 6\nopt> x\n6\nopt> rule gd(lr = 0.1)(g) {\n...>     return -lr * g\n...> }\n\
             defined rule gd\nopt>\nopt> :quit\n"
        );
    }

    #[test]
    fn else_on_the_next_line_continues() {
        let t = run_script("schedule s(p) =\n    if step <= 5 { p }\n    else { 0 }\n");
        assert!(t.ends_with("...>     else { 0 }\ndefined schedule s\n"), "{t}");
    }

    #[test]
    fn open_text_at_the_end_is_submitted() {
        let t = run_script("(1 +");
        assert!(t.contains("<input>"), "{t}");
    }
}
