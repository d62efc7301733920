//! The session's commands that inspect and run rules rather than add to the session: `:type`
//! (a value's checked type, or a declaration's checked form), `:ir`, `:try` on the toy problems,
//! `:replay` of golden fixtures, `:load` and `:list`, and the `:help` text. Rule expressions are
//! compiled with the session's declarations in scope and, when they mention `let` names, inside
//! a synthesized function that binds just the lines they need.

use super::*;
use crate::replay::{self, Dtype};
use optic_compiler::interp::Interp;
use optic_compiler::ir::{self, Graph};
use serde_json::Value;

/// What `:help` prints.
pub(super) const HELP: &str = "\
Type an expression to see its value, e.g. randn([3, 4]) @ randn([4, 2]).
  let NAME = EXPR        binds a name for later expressions and commands (not declarations);
                         let (a, b) = EXPR destructures a tuple
  rule NAME(...)(g) ...  adds a declaration, as do schedule, init, fn, model, adapter, experiment
                         and import; redefining a name replaces it
  :type EXPR             the checked type and shape of an expression
  :ir RULE [SHAPE]       the IR of a rule expression for a parameter shape (default [4, 3])
  :try RULE on PROBLEM [steps N]
                         the loss of a rule on a toy problem, next to adam(lr = 1e-2); problems:
                         quadratic, rosenbrock, least_squares, noisy_quadratic (100 steps unless given)
  :replay FIXTURE RULE   replays a golden fixture (opt-reference/1 JSON) in f64 and compares
  :load FILE             imports a file's declarations (re-read at every input)
  :list                  the session's declarations, loaded files and bindings
  :reset                 forgets every declaration and binding
  :help                  this text
  :quit                  ends the session (also Ctrl-D)
An input goes on over several lines while a bracket is open or a line ends in an operator (in a
script, also when the next line starts with `else`). Values are computed in f64 at step 1 with
seed 0. Random draws are counter-based and every input re-evaluates the let lines, so a name shows
the same values each time. Diagnostics point into <input>, the text just typed; an input with
errors leaves the session as it was.";

/// The parameter shape `:ir` uses when none is given.
const DEFAULT_SHAPE: [usize; 2] = [4, 3];

impl Session {
    /// `:type EXPR`.
    pub(super) fn type_of(&self, text: &str) -> Result<String, String> {
        let src = Arc::new(SourceFile::new(INPUT, text));
        syntax::parse_expr(&src).map_err(|d| render(&[d]))?;
        let e = self.embed(EVAL_FN, &self.all_lets(), VALUE_HEAD, text, VALUE);
        let checked = check::check_source(SESSION, &e.text, Path::new("."));
        let diags = relocate_all(checked.diagnostics.clone(), SESSION, e.start, &src);
        if has_errors(&diags) {
            return Err(render(&diags));
        }
        let bound = self.lets.iter().any(|b| b.names.iter().any(|n| n == text));
        if !bound && text.chars().all(input::is_ident_char) {
            if let Some(form) = declaration_summary(&checked, text) {
                return Ok(form);
            }
        }
        Ok(summary_value(&checked, EVAL_FN).unwrap_or_else(|| "?".into()))
    }

    /// Compiles a rule expression for parameters of the given shapes, with the session's
    /// declarations and the `let` bindings it mentions in scope.
    fn compile_rule(&self, rule: &str, shapes: &[Vec<usize>]) -> Result<Vec<Graph>, String> {
        let src = Arc::new(SourceFile::new(INPUT, rule));
        syntax::parse_expr(&src).map_err(|d| render(&[d]))?;
        let lets = self.needed_lets(rule);
        let graphs = if lets.is_empty() {
            // `compile_rule_in` names the rule's own text `<rule>`.
            lower::compile_rule_in(Some((SESSION, &self.source())), rule, shapes)
                .map_err(|d| render(&relocate_all(d, "<rule>", 0, &src)))?
        } else {
            let e = self.embed(RULE_FN, &lets, VALUE_HEAD, rule, VALUE);
            lower::compile_rule_in(Some((SESSION, &e.text)), &format!("{RULE_FN}()"), shapes)
                .map_err(|d| render(&relocate_all(d, SESSION, e.start, &src)))?
        };
        if graphs.len() != shapes.len() {
            return Err(format!("error: the rule compiled to {} graphs for {} parameters", graphs.len(), shapes.len()));
        }
        Ok(graphs)
    }

    /// `:ir RULE [SHAPE]`.
    pub(super) fn ir(&self, args: &str) -> Result<String, String> {
        let (rule, shape) = input::split_shape(args).map_err(|e| format!("error: {e}"))?;
        let shape = shape.unwrap_or_else(|| DEFAULT_SHAPE.to_vec());
        let graphs = self.compile_rule(rule, std::slice::from_ref(&shape))?;
        let graph = graphs.first().map(ir::print_graph).unwrap_or_default();
        Ok(format!("{rule} for a parameter of shape {shape:?}:\n{}", graph.trim_end()))
    }

    /// `:try RULE on PROBLEM [steps N]`.
    pub(super) fn try_rule(&self, args: &str) -> Result<String, String> {
        let args = input::split_try(args).map_err(|e| format!("error: {e}"))?;
        let problem = toy::Problem::named(args.problem).ok_or_else(|| {
            format!("error: no toy problem `{}`; the problems are {}", args.problem, toy::NAMES.join(", "))
        })?;
        let steps = args.steps.unwrap_or(100);
        if steps > toy::MAX_STEPS {
            return Err(format!("error: at most {} steps", toy::MAX_STEPS));
        }
        let shape = problem.shape();
        let mine = self.compile_rule(args.rule, std::slice::from_ref(&shape))?;
        lower::needs_training_loop(args.rule, &mine).map_err(|e| format!("error: {e}"))?;
        let reference = lower::compile_rule(toy::REFERENCE, std::slice::from_ref(&shape))
            .map_err(|d| format!("internal error: the reference rule does not compile:\n{}", render(&d)))?;
        let at = toy::report_steps(steps);
        let mine = toy::run(&problem, mine, steps, &at);
        let reference = toy::run(&problem, reference, steps, &at);
        let table = toy::table(&at, &[(args.rule, &mine), (toy::REFERENCE, &reference)]);
        Ok(format!("{}; loss by step:\n{table}", problem.describe()))
    }

    /// `:replay FIXTURE RULE`: the fixture's problem through the rule in f64, compared with the
    /// fixture's trajectory at its own tolerance.
    pub(super) fn replay(&self, args: &str) -> Result<String, String> {
        let (path, rule) = args.split_once(char::is_whitespace).ok_or("usage: :replay FIXTURE RULE")?;
        let rule = rule.trim();
        let text = std::fs::read_to_string(path).map_err(|e| format!("error: cannot read {path}: {e}"))?;
        let fixture: Value =
            serde_json::from_str(&text).map_err(|e| format!("error: {path} is not valid JSON: {e}"))?;
        let shapes = fixture_shapes(&fixture).map_err(|e| format!("error: {path}: {e}"))?;
        let graphs = self.compile_rule(rule, &shapes)?;
        lower::needs_training_loop(rule, &graphs).map_err(|e| format!("error: {e}"))?;
        let mut interp = Interp::<f64>::new(graphs, 0);
        let candidate =
            replay::replay_with::<f64>(&fixture, &mut |t, p, i| interp.step(t, p, i).map_err(|e| e.to_string()))
                .map_err(|e| format!("error: {path}: {e}"))?;
        let name = fixture.get("name").and_then(Value::as_str).unwrap_or("?");
        Ok(match replay::compare(&fixture, &candidate, Dtype::F64) {
            Ok(c) if c.skipped.is_some() => format!("{name}: {c}"),
            Ok(c) => format!("{name}: PASS (f64): {c}"),
            Err(msg) => format!("FAIL: {msg}"),
        })
    }

    /// `:load FILE`: the file must check on its own; it is then imported.
    pub(super) fn load(&mut self, path: &str) -> Result<String, String> {
        let path = path.trim().trim_matches('"');
        if path.contains(['"', '\\']) {
            return Err(format!("error: cannot import a path with quotes or backslashes: {path}"));
        }
        if !Path::new(path).is_file() {
            return Err(format!("error: no file {path}"));
        }
        let alone = check::check_paths(&[path.into()]);
        if !alone.is_ok() {
            return Err(render(&alone.diagnostics));
        }
        let mut declared = Vec::new();
        for unit in alone.program.units.iter().filter(|u| u.root) {
            for item in unit.ast.iter().flat_map(|f| f.items.iter()) {
                if let ast::Item::Decl(d) = item {
                    declared.push(format!("{} {}", d.kind.keyword(), d.name.name));
                }
            }
        }
        let import = format!("import \"{path}\"");
        let src = Arc::new(SourceFile::new(INPUT, import.as_str()));
        let again = self.chunks.iter().any(|c| c.name.is_none() && c.text.trim() == import);
        let others: String =
            self.chunks.iter().filter(|c| c.text.trim() != import).map(|c| format!("{}\n", c.text)).collect();
        let checked = check::check_source(SESSION, &format!("{import}\n{others}"), Path::new("."));
        let diags = relocate_all(checked.diagnostics, SESSION, 0, &src);
        if has_errors(&diags) {
            return Err(render(&diags));
        }
        if !again {
            self.chunks.push(Chunk { name: None, kind: "import", text: import });
        }
        let what = if declared.is_empty() { "no declarations".to_string() } else { declared.join(", ") };
        Ok(format!("{} {path}: {what}", if again { "reloaded" } else { "loaded" }))
    }

    /// `:list`.
    pub(super) fn list(&self) -> String {
        let mut out = Vec::new();
        for c in &self.chunks {
            out.push(match &c.name {
                Some(n) => format!("{} {n}", c.kind),
                None => c.text.trim().to_string(),
            });
        }
        out.extend(self.lets.iter().map(|b| b.line.clone()));
        if out.is_empty() {
            "the session is empty".into()
        } else {
            out.join("\n")
        }
    }
}

/// The tensor shapes of a fixture, in its `tensors` order.
fn fixture_shapes(fx: &Value) -> Result<Vec<Vec<usize>>, String> {
    let tensors = fx.get("tensors").and_then(Value::as_array).ok_or("the fixture has no `tensors` list")?;
    tensors
        .iter()
        .map(|t| {
            let t = t.as_str().ok_or("`tensors` must list names")?;
            fx.pointer(&format!("/shapes/{t}"))
                .and_then(Value::as_array)
                .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect::<Option<Vec<_>>>())
                .ok_or_else(|| format!("the fixture has no shape for tensor `{t}`"))
        })
        .collect()
}

/// The checked form of the declaration `name` (as `optic check --summary` prints it), wherever
/// it is declared: in the session, a loaded file or the standard library. Files other than the
/// session are checked on their own for it, since only root files get summaries.
fn declaration_summary(checked: &Checked, name: &str) -> Option<String> {
    let prog = &checked.program;
    let root = prog.units.iter().position(|u| u.root)?;
    let id = prog.lookup(root, name)?;
    let unit = prog.unit_of(id);
    let own;
    let summaries = if unit.root {
        &checked.summaries
    } else {
        let dir = unit.path.as_deref().and_then(Path::parent).unwrap_or(Path::new("."));
        own = check::check_source(&unit.source.name, &unit.source.text, dir).summaries;
        &own
    };
    let header = format!("{} {name}", prog.decl(id).kind.keyword());
    for (_, text) in summaries {
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let next = line.strip_prefix(header.as_str()).and_then(|rest| rest.chars().next());
            if line == header || next.is_some_and(|c| !input::is_ident_char(c)) {
                let body = lines.take_while(|l| l.starts_with("  "));
                return Some(std::iter::once(line).chain(body).collect::<Vec<_>>().join("\n"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::tests::answers;

    #[test]
    fn rules_use_bindings() {
        let a = answers(&["let rate = 0.5", "rule gd(lr = 0.1)(g) = -lr * g", ":ir gd(lr = rate) [2]"]);
        assert!(a[2].starts_with("gd(lr = rate) for a parameter of shape [2]:"), "{}", a[2]);
        assert!(a[2].contains("const -0.5"), "{}", a[2]);
    }

    #[test]
    fn commands_misused() {
        let a = answers(&[":nope", ":type", ":try gd on nowhere", ":quit"]);
        assert!(a[0].starts_with("unknown command `:nope`"));
        assert_eq!(a[1], "usage: :type EXPR");
        assert!(a[2].contains("no toy problem `nowhere`"), "{}", a[2]);
        assert_eq!(a[3], ":quit");
    }

    #[test]
    fn try_prints_a_table() {
        let a = answers(&["rule gd(lr = 0.1)(g) = -lr * g", ":try gd(lr = 0.1) on quadratic steps 10"]);
        let lines: Vec<&str> = a[1].lines().collect();
        assert!(lines[0].starts_with("quadratic:"));
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["step", "gd(lr", "=", "0.1)", "adam(lr", "=", "1e-2)"]
        );
        assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["0", "27.5", "27.5"]);
        assert_eq!(lines.len(), 2 + 5, "the problem, the header, steps 0, 1, 2, 5, 10");
    }
}
