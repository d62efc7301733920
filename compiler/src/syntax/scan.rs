//! Scans of `.opt` text that need no parse: where a line's comment starts, where top-level items
//! start, the identifier-like words of code, and from these the index of the standard library's
//! pieces (each top-level item with the name it declares and the pieces its code names). The
//! compiler uses them to split large files for parsing and to parse only the library pieces a
//! program names; the build script includes this very file (`#[path]`) and writes the library's
//! index into the compiler, so a run pays nothing for it. Only `std` may be used here.

/// Lines that begin a top-level item (a run of `///` lines counts from its first line).
pub const ITEM_KEYWORDS: &[&str] =
    &["rule ", "schedule ", "init ", "adapter ", "model ", "fn ", "experiment ", "import ", "///"];

/// Keywords that begin a declaration at column 0 (`import` declares nothing).
// This and the index below serve the build script and a test, not the compiler's run.
#[cfg_attr(not(test), allow(dead_code))]
pub const DECLARATION_KEYWORDS: &[&str] = &["rule ", "schedule ", "init ", "adapter ", "model ", "fn ", "experiment "];

/// Where a `//` comment starts on a line, outside string literals.
pub fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Where top-level items may start: lines at bracket depth 0 that begin with a declaration
/// keyword (or the first `///` line documenting one). Strings and comments are skipped.
pub fn item_starts(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut depth = 0i64;
    let mut offset = 0;
    let mut in_doc = false;
    for line in text.split_inclusive('\n') {
        let doc = line.starts_with("///");
        if depth == 0 && !in_doc && ITEM_KEYWORDS.iter().any(|k| line.starts_with(k)) {
            out.push(offset);
        }
        in_doc = doc;
        let code = comment_start(line).map_or(line, |c| &line[..c]);
        let mut in_string = false;
        let mut escaped = false;
        for b in code.bytes() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if in_string => escaped = true,
                b'"' => in_string = !in_string,
                b'(' | b'[' | b'{' if !in_string => depth += 1,
                b')' | b']' | b'}' if !in_string => depth -= 1,
                _ => {}
            }
        }
        offset += line.len();
    }
    out
}

/// Lines that begin a declaration at column 0, whatever the brackets before them (after a
/// syntax error they may be unbalanced). A run of `///` lines counts from its first line.
pub fn item_starts_relaxed(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut offset = 0;
    let mut in_doc = false;
    for line in text.split_inclusive('\n') {
        if !in_doc && ITEM_KEYWORDS.iter().any(|k| line.starts_with(k)) {
            out.push(offset);
        }
        in_doc = line.starts_with("///");
        offset += line.len();
    }
    out
}

/// The identifier-like words of a text's code: comments are skipped (a rule's documentation
/// names its relatives), strings are not (a name may be passed as one).
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(|line| comment_start(line).map_or(line, |c| &line[..c])).flat_map(|code| {
        code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
    })
}

/// The name a piece's first declaration line declares (`None` for imports and bare comments).
#[cfg_attr(not(test), allow(dead_code))]
pub fn declared_name(piece: &str) -> Option<&str> {
    let line = piece.lines().find(|l| DECLARATION_KEYWORDS.iter().any(|k| l.starts_with(k)))?;
    words(line).nth(1)
}

/// One top-level item of a library file, found without parsing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub struct PieceIndex {
    /// Index of its file.
    pub file: usize,
    /// Where it starts in that file (bytes).
    pub start: usize,
    /// Where it ends.
    pub end: usize,
    /// The name it declares.
    pub name: Option<String>,
    /// The pieces (other than itself) that declare a word of its code, in increasing order.
    pub mentions: Vec<usize>,
}

/// Cuts `files` (name, text) into their top-level items and records what each declares and
/// names. Word scans over-approximate what a piece uses (a field or keyword argument counts
/// too), so a piece's mentions include everything it needs.
#[cfg_attr(not(test), allow(dead_code))]
pub fn index_pieces(files: &[(&str, &str)]) -> Vec<PieceIndex> {
    let mut pieces = Vec::new();
    for (file, (_, text)) in files.iter().enumerate() {
        let mut starts = item_starts(text);
        starts.push(text.len());
        if starts[0] != 0 {
            starts.insert(0, 0);
        }
        for w in starts.windows(2).filter(|w| w[0] < w[1]) {
            let name = declared_name(&text[w[0]..w[1]]).map(str::to_string);
            pieces.push(PieceIndex { file, start: w[0], end: w[1], name, mentions: Vec::new() });
        }
    }
    let mut by_name: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
    for (i, p) in pieces.iter().enumerate() {
        if let Some(n) = &p.name {
            by_name.entry(n.clone()).or_default().push(i);
        }
    }
    for i in 0..pieces.len() {
        let text = &files[pieces[i].file].1[pieces[i].start..pieces[i].end];
        let mut mentions: Vec<usize> =
            words(text).filter_map(|w| by_name.get(w)).flatten().copied().filter(|&j| j != i).collect();
        mentions.sort_unstable();
        mentions.dedup();
        pieces[i].mentions = mentions;
    }
    pieces
}
