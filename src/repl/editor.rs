//! The line editor's helper for interactive sessions (rustyline): completion of the word before
//! the cursor from the session's names (declarations, bindings, the standard library, builtins,
//! keywords, commands, toy problems), and a validator that keeps reading lines while the input
//! is incomplete by the same rule the script mode uses, so a multi-line rule is one input (and
//! one history entry). No hints and no highlighting: the terminal's text stays as typed.

use super::input;
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

/// Completion and multi-line validation for the REPL.
pub struct ReplHelper {
    /// The names completion offers, sorted; refreshed after every input.
    pub names: Vec<String>,
}

impl ReplHelper {
    /// The start of the word ending at `pos` and the candidates for it.
    fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let Some(before) = line.get(..pos) else { return (pos, Vec::new()) };
        let mut start = before.rfind(|c: char| !input::is_ident_char(c)).map_or(0, |i| i + 1);
        // A command name: `:` at the start of the line.
        if before[..start].trim_start() == ":" {
            start = before.find(':').unwrap_or(start);
        }
        let word = &before[start..];
        if word.is_empty() {
            return (pos, Vec::new());
        }
        let found = self.names.iter().filter(|n| n.starts_with(word) && n.as_str() != word).cloned().collect();
        (start, found)
    }
}

impl Completer for ReplHelper {
    type Candidate = String;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.candidates(line, pos))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        Ok(if input::needs_more(ctx.input()) { ValidationResult::Incomplete } else { ValidationResult::Valid(None) })
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_the_word_before_the_cursor() {
        let h = ReplHelper { names: vec![":help".into(), ":ir".into(), "adam".into(), "adamw".into(), "sgd".into()] };
        assert_eq!(h.candidates("1 + ada", 7), (4, vec!["adam".to_string(), "adamw".to_string()]));
        assert_eq!(h.candidates(":he", 3), (0, vec![":help".to_string()]));
        assert_eq!(h.candidates(":ir ad", 6), (4, vec!["adam".to_string(), "adamw".to_string()]));
        assert_eq!(h.candidates("x + ", 4), (4, vec![]));
        assert_eq!(h.candidates("sgd", 3), (0, vec![]), "a complete name offers nothing");
    }
}
