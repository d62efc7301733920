//! An experiment's data: `data` statements and `load`. A fixed dataset is evaluated once, in
//! the init graph, and split into training and held-out rows, from which each step takes a
//! batch; its fields are bound as whole tensors in the init pass. Data drawn `fresh every step`
//! is only registered by the init pass and lowered later in a graph of its own, run before each
//! step, whose output shapes become the shapes every other graph reads its fields at.

use super::init_pass::InitPass;
use super::{DataField, DataSet, Pass, Plan};
use crate::diag::{codes, Diagnostic};
use crate::ir::{Graph, NodeId, Op};
use crate::lower::model::VarMode;
use crate::lower::{error, Binding, Frame, LResult, Lowerer, Lv, UNSUPPORTED};
use crate::syntax::ast::{DataOption, Expr, Ident, Span};

/// A `data` statement as the graphs after the init pass need it.
pub(super) struct DataStmt {
    /// Its fields' names.
    pub(super) names: Vec<String>,
    /// For data drawn fresh every step, the expression that draws it.
    pub(super) fresh: Option<Expr>,
}

impl InitPass<'_> {
    /// `data names = src [fresh every step] [batch n] [holdout h]`, written at `span`.
    pub(super) fn data(&mut self, span: Span, names: &[Ident], src: &Expr, options: &[DataOption]) -> LResult<()> {
        let fresh = options.iter().any(|o| matches!(o, DataOption::FreshEveryStep(_)));
        let names: Vec<String> = names.iter().map(|n| n.name.clone()).collect();
        let mut set = DataSet {
            fields: Vec::new(),
            init_roots: Vec::new(),
            fresh_roots: Vec::new(),
            rows: 0,
            holdout: 0,
            batch: None,
        };
        let holdout = self.sampling(options, &mut set)?;
        if fresh {
            if holdout.is_some() || set.batch.is_some() {
                return Err(error(&self.f, span, UNSUPPORTED, "data drawn fresh every step has no holdout; evaluation uses a draw of its own, and every step's draw is its batch"));
            }
            // Its shapes are known once its graph is lowered (see `lower_fresh_data`).
            for n in &names {
                self.plan.data.push(DataField { name: n.clone(), batch_shape: Vec::new() });
                set.fields.push(self.plan.data.len() - 1);
            }
            self.collected.data.push(DataStmt { names, fresh: Some(src.clone()) });
            self.plan.datasets.push(set);
            return Ok(());
        }
        let rows = self.bind_fields(&names, src, &mut set)?;
        self.split_rows(span, &mut set, rows, holdout)?;
        self.collected.data.push(DataStmt { names, fresh: None });
        self.plan.datasets.push(set);
        Ok(())
    }

    /// Evaluates the `batch` and `holdout` options: the batch size goes into `set`, the holdout
    /// (a fraction or a count, resolved once the rows are known) is returned.
    fn sampling(&mut self, options: &[DataOption], set: &mut DataSet) -> LResult<Option<f64>> {
        let mut holdout = None;
        for o in options {
            match o {
                DataOption::Batch(e) => set.batch = Some(self.whole_number(e, "a batch size")? as usize),
                DataOption::Holdout(e) => {
                    let v = self.lw.expr(&mut self.f, e)?;
                    let h = Lowerer::known(&v)
                        .ok_or_else(|| error(&self.f, e.span, codes::TYPE_MISMATCH, "`holdout` is a number"))?;
                    holdout = Some(h);
                }
                DataOption::FreshEveryStep(_) => {}
            }
        }
        Ok(holdout)
    }

    /// Evaluates a fixed dataset into the init graph and binds its fields, one per name, as
    /// whole tensors; gives their common number of rows.
    fn bind_fields(&mut self, names: &[String], src: &Expr, set: &mut DataSet) -> LResult<usize> {
        let v = self.lw.expr(&mut self.f, src)?;
        let parts = match v {
            Lv::Tuple(p) | Lv::List(p) if names.len() > 1 || matches!(p.first(), Some(Lv::T(_) | Lv::Var(_))) => p,
            other => vec![other],
        };
        if parts.len() != names.len() {
            return Err(error(
                &self.f,
                src.span,
                codes::TUPLE_ARITY,
                format!("{} names for data with {} parts", names.len(), parts.len()),
            ));
        }
        let mut rows = None;
        for (n, p) in names.iter().zip(parts) {
            let node = self.lw.tensor(&self.f, p, src.span)?;
            let shape = self.lw.g.shape(node).to_vec();
            let r = *shape.first().ok_or_else(|| {
                error(&self.f, src.span, codes::RANK_MISMATCH, format!("data `{n}` is a scalar; data has rows"))
            })?;
            if rows.is_some_and(|x| x != r) {
                return Err(error(
                    &self.f,
                    src.span,
                    codes::SHAPE_MISMATCH,
                    format!("the data fields have different numbers of rows ({} and {r})", rows.unwrap_or(0)),
                ));
            }
            rows = Some(r);
            set.init_roots.push(node);
            self.plan.data.push(DataField { name: n.clone(), batch_shape: shape });
            set.fields.push(self.plan.data.len() - 1);
            self.f.bind(n, Binding { value: Lv::T(node), mutable: false, slot: None });
        }
        Ok(rows.unwrap_or(0))
    }

    /// Splits a fixed dataset's `rows` into held-out and training rows, and sizes its fields'
    /// batches: `batch` rows, or every training row.
    fn split_rows(&mut self, span: Span, set: &mut DataSet, rows: usize, holdout: Option<f64>) -> LResult<()> {
        // A fraction below 1, or a whole count of rows.
        let holdout = match holdout {
            Some(h) if h < 1.0 => (h * rows as f64).round() as usize,
            Some(h) => h as usize,
            None => 0,
        };
        if holdout >= rows && holdout > 0 {
            return Err(error(
                &self.f,
                span,
                codes::OUT_OF_RANGE,
                format!("holding out {holdout} of {rows} rows leaves none to train on"),
            ));
        }
        set.rows = rows;
        set.holdout = holdout;
        let train_rows = rows - holdout;
        if let Some(b) = set.batch {
            if b == 0 || b > train_rows {
                return Err(error(
                    &self.f,
                    span,
                    codes::OUT_OF_RANGE,
                    format!("a batch of {b} from {train_rows} training rows"),
                ));
            }
        }
        let b = set.batch.unwrap_or(train_rows);
        for &k in &set.fields {
            self.plan.data[k].batch_shape[0] = b;
        }
        Ok(())
    }
}

/// Lowers the graph that draws the fresh data every step, then records each fresh field's shape
/// (in `plan.data`) and root (in its dataset). Gives the graph and the shapes of all data fields,
/// as every later graph reads them.
pub(super) fn lower_fresh_data(
    pass: &mut Pass,
    plan: &mut Plan,
    data: &[DataStmt],
) -> Result<(Graph, Vec<Vec<usize>>), Box<Diagnostic>> {
    let data_shapes: Vec<Vec<usize>> = plan.data.iter().map(|d| d.batch_shape.clone()).collect();
    let (mut fresh, fresh_roots) = pass.lower(&data_shapes, |lw, f| draw_fresh_data(lw, f, data))?;
    let mut k = 0;
    let mut shapes = data_shapes.clone();
    for (set, stmt) in plan.datasets.iter_mut().zip(data) {
        if stmt.fresh.is_some() {
            for &field in &set.fields {
                shapes[field] = fresh.shape(fresh_roots[k]).to_vec();
                plan.data[field].batch_shape = shapes[field].clone();
                set.fresh_roots.push(fresh_roots[k]);
                k += 1;
            }
        }
    }
    fresh.output = fresh_roots.first().copied().unwrap_or(0);
    Ok((fresh, shapes))
}

/// The fresh data's fields, every fresh `data` statement's in order, as roots of the graph.
fn draw_fresh_data(lw: &mut Lowerer, f: &mut Frame, data: &[DataStmt]) -> LResult<Vec<NodeId>> {
    let mut roots = Vec::new();
    for DataStmt { names, fresh } in data {
        let Some(src) = fresh else { continue };
        let v = lw.expr(f, src)?;
        let parts = match v {
            Lv::Tuple(p) | Lv::List(p) if names.len() > 1 => p,
            other => vec![other],
        };
        if parts.len() != names.len() {
            return Err(error(
                f,
                src.span,
                codes::TUPLE_ARITY,
                format!("{} names for data with {} parts", names.len(), parts.len()),
            ));
        }
        for p in parts {
            roots.push(lw.tensor(f, p, src.span)?);
        }
    }
    Ok(roots)
}

impl Lowerer<'_> {
    /// `load(path)`: the arrays of a data file as inputs of the init graph, all of them in file
    /// order, or with `key` the one of that name. Paths are relative to the file that says
    /// `load`, or for the standard library's (`from_file`) to the experiment's file.
    pub(crate) fn load(&mut self, f: &Frame, path: &Lv, key: Option<Lv>, span: Span) -> LResult<Lv> {
        let Lv::Str(path) = path else {
            return Err(error(f, span, codes::TYPE_MISMATCH, "`load` takes a file path"));
        };
        let key = match key {
            None => None,
            Some(Lv::Str(k)) => Some(k),
            Some(_) => return Err(error(f, span, codes::TYPE_MISMATCH, "`load`'s key is a string")),
        };
        if !matches!(self.vars.mode, VarMode::Init) {
            return Err(error(f, span, UNSUPPORTED, "data files are loaded in an experiment's bindings"));
        }
        let unit = if self.prog.units[f.unit].stdlib {
            self.prog.units.iter().position(|u| u.root).unwrap_or(f.unit)
        } else {
            f.unit
        };
        let name = &self.prog.units[unit].source.name;
        let base = std::path::Path::new(name).parent().map(|p| p.to_path_buf()).unwrap_or_default();
        let arrays = optic_runtime::data::load(&base.join(path)).map_err(|e| {
            let d = Diagnostic::error(codes::BAD_FILE, &f.source, span, e.to_string(), "cannot load this");
            Box::new(match &e.hint {
                Some(h) => d.with_help(h.clone()),
                None => d,
            })
        })?;
        let arrays: Vec<_> = match &key {
            None => arrays,
            Some(k) => {
                let names: Vec<String> = arrays.iter().map(|a| a.name.clone()).collect();
                let hit: Vec<_> = arrays.into_iter().filter(|a| a.name == *k).collect();
                if hit.is_empty() {
                    return Err(Box::new(
                        Diagnostic::error(
                            codes::BAD_FILE,
                            &f.source,
                            span,
                            format!("`{path}` has no array `{k}`"),
                            "no such key",
                        )
                        .with_help(format!("it has: {}", names.join(", "))),
                    ));
                }
                hit
            }
        };
        let mut parts = Vec::new();
        for a in arrays {
            let k = self.vars.files.len();
            let node = self.node(Op::Input(k), a.values.shape().to_vec());
            self.vars.files.push((a.name, a.values));
            parts.push(Lv::T(node));
        }
        Ok(if parts.len() == 1 { parts.pop().expect("one part") } else { Lv::Tuple(parts) })
    }
}
