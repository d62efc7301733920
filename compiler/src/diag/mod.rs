//! Diagnostics: what every stage reports when the input is wrong. A [`Diagnostic`] carries a
//! stable code from [`codes`], a message, labelled spans in one source file (the first label is
//! the primary one), an optional help line, and related diagnostics for places in other files
//! (a declaration in an imported file or the standard library). It implements
//! [`miette::Diagnostic`], so the CLI renders it with file name, line, column and underlines.

pub mod codes;

use crate::source::SourceFile;
use crate::syntax::ast::Span;
use std::fmt;
use std::sync::Arc;

pub use codes::Code;

/// How bad it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The program is rejected.
    Error,
    /// The program runs, but probably not as meant.
    Warning,
}

/// A labelled place in the source.
#[derive(Clone, Debug)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What about it.
    pub text: String,
}

/// One problem found in one source file.
#[derive(Clone)]
pub struct Diagnostic {
    /// Stable identifier, e.g. `E201`.
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// One line saying what is wrong.
    pub message: String,
    /// The file the labels point into.
    pub source: Arc<SourceFile>,
    /// Labelled spans; the first is the primary one.
    pub labels: Vec<Label>,
    /// How to fix it, when something useful can be said.
    pub help: Option<String>,
    /// Notes pointing into other files.
    pub related: Vec<Diagnostic>,
}

impl Diagnostic {
    /// An error with a primary label.
    pub fn error(
        code: Code,
        source: &Arc<SourceFile>,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            source: source.clone(),
            labels: vec![Label { span, text: label.into() }],
            help: None,
            related: Vec::new(),
        }
    }

    /// Adds a secondary label in the same file.
    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Self {
        self.labels.push(Label { span, text: text.into() });
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the help line if there is one.
    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        if help.is_some() {
            self.help = help;
        }
        self
    }

    /// Adds a note about another place: a secondary label when it is in the same file, a
    /// related diagnostic (rendered after this one) when it is in another file.
    pub fn with_note(
        mut self,
        source: &Arc<SourceFile>,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        let (message, label) = (message.into(), label.into());
        if Arc::ptr_eq(source, &self.source) || source.name == self.source.name {
            let text = if label.is_empty() || label == "declared here" { message } else { label };
            return self.with_label(span, text);
        }
        let mut note = Diagnostic::error(self.code, source, span, message, label);
        note.severity = Severity::Warning;
        self.related.push(note);
        self
    }

    /// The primary span.
    pub fn primary_span(&self) -> Span {
        self.labels.first().map(|l| l.span).unwrap_or_default()
    }

    /// `file:line:column` of the primary span, 1-based.
    pub fn location(&self) -> String {
        let (line, col) = self.source.line_col(self.primary_span().start);
        format!("{}:{}:{}", self.source.name, line, col)
    }

    /// Renders the diagnostic without colours or terminal width tricks, for tests and pipes.
    pub fn render_plain(&self) -> String {
        let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100)
            .with_links(false);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = handler.render_report(&mut out, self);
        out
    }
}

impl fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.code, self.location(), self.message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Advice,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&*self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let len = self.source.text.len();
        Some(Box::new(self.labels.iter().enumerate().map(move |(i, l)| {
            // Clamp so a span past the end (an unexpected end of input) still renders.
            let start = l.span.start.min(len);
            let end = l.span.end.clamp(start, len);
            let span = (start, end - start);
            if i == 0 {
                miette::LabeledSpan::new_primary_with_span(Some(l.text.clone()), span)
            } else {
                miette::LabeledSpan::new_with_span(Some(l.text.clone()), span)
            }
        })))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|d| d as &dyn miette::Diagnostic)))
        }
    }
}

/// The closest of `candidates` to `name`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let len = name.chars().count();
    // One- and two-letter names are too short for a typo to be recognisable.
    let limit = if len < 3 { 0 } else { (len / 3).max(1) };
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// Levenshtein distance over characters, with case differences counted as half-free.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(!a[i - 1].eq_ignore_ascii_case(&b[j - 1]));
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_names_only() {
        let names = ["beta1", "beta2", "eps", "lr"];
        assert_eq!(did_you_mean("betta1", names).as_deref(), Some("did you mean `beta1`?"));
        assert_eq!(did_you_mean("epss", names).as_deref(), Some("did you mean `eps`?"));
        assert_eq!(did_you_mean("momentum", names), None);
    }
}
