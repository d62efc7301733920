//! Experiments: a checked `experiment` becomes a [`Plan`], the graphs a runner needs and what
//! connects them. Lowering runs in passes over the experiment's statements. The init pass
//! builds the models (each `param`'s initializer lowered into the init graph, `with` edits and
//! adapters applied, `init ... with` overrides), evaluates the fixed datasets and collects the
//! loss, the `optimize` statements, the metrics, checkpoints and the sweep. Then one graph per
//! role is lowered from the same bindings, where every experiment tensor is an input: the data
//! drawn fresh each step, the training step (the loss and, by reverse-mode differentiation, its
//! gradient with respect to every trained tensor) and the metrics on each data split. Rules are
//! lowered per trained tensor as in `optic replay`. Overrides (`--set`, sweep points) replace a
//! `let` or a setting before anything uses it, so shapes may change between sweep points.

use super::model::{name_tensors, TensorDef, TensorKind, VarMode};
use super::{error, Binding, Frame, LResult, Lowerer, Lv, UNSUPPORTED};
use crate::check::Program;
use crate::diag::{codes, Diagnostic};
use crate::ir::{Graph, NodeId, Op};
use crate::source::SourceFile;
use crate::syntax::ast::{Body, DataOption, Expr, Pattern, Span, StmtKind, SweepValues};
use std::sync::Arc;

/// One data field (`x` of `data x, y = ...`).
#[derive(Clone, Debug)]
pub struct DataField {
    /// Its name.
    pub name: String,
    /// The shape of one step's batch (what the training graph reads).
    pub batch_shape: Vec<usize>,
}

/// A `data` statement.
#[derive(Clone, Debug)]
pub struct DataSet {
    /// Indices of its fields in [`Plan::data`].
    pub fields: Vec<usize>,
    /// For a fixed dataset: per field, its root in the init graph (the whole dataset).
    pub init_roots: Vec<NodeId>,
    /// For fresh data: per field, its root in the fresh graph.
    pub fresh_roots: Vec<NodeId>,
    /// Rows of a fixed dataset (all fields share the first axis).
    pub rows: usize,
    /// Rows held out for evaluation.
    pub holdout: usize,
    /// Mini-batch size (`None`: every training row every step).
    pub batch: Option<usize>,
}

/// Which data a metrics graph reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The training rows (all of them, not a batch; fresh data: a draw of its own).
    Train,
    /// The held-out rows; only metrics that read data.
    Eval,
}

/// The metrics of one split.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// The data it reads.
    pub split: Split,
    /// Inputs: tensors, initial tensors, data fields with this split's shapes.
    pub graph: Graph,
    /// (name, root, logging period).
    pub entries: Vec<(String, NodeId, u64)>,
}

/// The rule of one `optimize` statement.
#[derive(Clone, Debug)]
pub struct Group {
    /// The rule's source text.
    pub rule: String,
    /// The trained tensors.
    pub tensors: Vec<usize>,
    /// One rule graph per tensor.
    pub graphs: Vec<Graph>,
    /// For a rule that evaluates the gradient at another point (`grad_at`), one probe graph
    /// per tensor ([`super::probe_graph`]: the point, from the same inputs; the parameter itself
    /// for a tensor whose rule asks for no other point); empty otherwise.
    pub probes: Vec<Graph>,
}

/// Everything a runner needs to run an experiment (one point of its sweep).
#[derive(Clone, Debug)]
pub struct Plan {
    /// The experiment's name.
    pub name: String,
    /// `seed`.
    pub seed: u64,
    /// `steps`.
    pub steps: u64,
    /// `dtype`, if set.
    pub dtype: Option<String>,
    /// Every tensor kept across steps, in input order.
    pub tensors: Vec<TensorDef>,
    /// Whether each tensor is trained.
    pub trained: Vec<bool>,
    /// Arrays read from files: the init graph's inputs, in order.
    pub files: Vec<(String, optic_runtime::data::Values)>,
    /// Initial values of the tensors and the fixed datasets (evaluated once, at step 0).
    pub init: Graph,
    /// The data fields, in input order.
    pub data: Vec<DataField>,
    /// The `data` statements.
    pub datasets: Vec<DataSet>,
    /// Data drawn every step; inputs as the training graph's.
    pub fresh: Graph,
    /// The training step. Inputs: tensors, initial tensors, data batches.
    pub train: Graph,
    /// The loss in `train`.
    pub loss: NodeId,
    /// (tensor, gradient node in `train`) for every trained tensor.
    pub grads: Vec<(usize, NodeId)>,
    /// Metrics per split.
    pub metrics: Vec<Metrics>,
    /// The effective weight of every adapted tensor, for checkpoints; inputs as the training graph's.
    pub merged: super::merged::Merged,
    /// The rules.
    pub groups: Vec<Group>,
    /// `checkpoint every n`.
    pub checkpoint_every: Option<u64>,
    /// Resolved settings and `let`s, as text, for the run's configuration file.
    pub config: Vec<(String, String)>,
}

/// A sweep: its axes and their values as source text.
#[derive(Clone, Debug, Default)]
pub struct Sweep {
    /// (name, values).
    pub axes: Vec<(String, Vec<String>)>,
}

impl Sweep {
    /// Every point of the grid, the first axis slowest.
    pub fn points(&self) -> Vec<Vec<(String, String)>> {
        let mut points = vec![Vec::new()];
        for (name, values) in &self.axes {
            points = points
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut q: Vec<(String, String)> = p.clone();
                        q.push((name.clone(), v.clone()));
                        q
                    })
                })
                .collect();
        }
        points
    }
}

/// The experiments of a checked program's root file, by name, in order.
pub fn experiments(prog: &Program) -> Vec<String> {
    let root = prog.units.iter().position(|u| u.root).unwrap_or(0);
    (0..prog.decls.len())
        .filter(|&id| prog.decls[id].unit == root && prog.decl(id).kind == crate::syntax::ast::DeclKind::Experiment)
        .map(|id| prog.decl(id).name.name.clone())
        .collect()
}

/// Lowers experiment `name` of a checked program with `overrides` (name, expression text)
/// replacing its `let`s and settings. Also returns its sweep (the values are not applied).
/// Lowering recurses with the program's nesting: run it on a big stack ([`crate::on_big_stack`]).
pub fn lower_experiment(
    prog: &Program,
    name: &str,
    overrides: &[(String, String)],
) -> Result<(Plan, Sweep), Box<Diagnostic>> {
    lower_inner(prog, name, overrides)
}

struct Collected {
    loss: Option<Expr>,
    optimize: Vec<(Vec<crate::syntax::ast::Path>, Lv, String, Span)>,
    logs: Vec<(u64, Vec<crate::syntax::ast::LogEntry>)>,
    data: Vec<(Vec<String>, bool, Option<Expr>)>,
}

fn lower_inner(prog: &Program, name: &str, overrides: &[(String, String)]) -> Result<(Plan, Sweep), Box<Diagnostic>> {
    let root = prog.units.iter().position(|u| u.root).unwrap_or(0);
    let Some(id) = (0..prog.decls.len()).find(|&id| {
        prog.decls[id].unit == root
            && prog.decl(id).kind == crate::syntax::ast::DeclKind::Experiment
            && prog.decl(id).name.name == name
    }) else {
        let src = prog.units[root].source.clone();
        return Err(Box::new(Diagnostic::error(
            codes::UNKNOWN_NAME,
            &src,
            Span { start: 0, end: 0 },
            format!("no experiment `{name}` in this file"),
            "here",
        )));
    };
    let decl = prog.decl(id);
    let unit = prog.decls[id].unit;
    let source = prog.units[unit].source.clone();
    let mut over: Vec<(String, Expr, Arc<SourceFile>, bool)> = Vec::new();
    for (k, text) in overrides {
        let src = Arc::new(SourceFile::new(format!("--set {k}"), text.clone()));
        let e = crate::syntax::parse_expr(&src).map_err(Box::new)?;
        over.push((k.clone(), e, src, false));
    }

    let mut lw = Lowerer::new(prog);
    lw.vars.mode = VarMode::Init;
    let step = lw.node(Op::Step, Vec::new());
    let mut f = Frame {
        unit,
        source: source.clone(),
        scopes: vec![Vec::new()],
        step,
        inst: None,
        conds: Vec::new(),
        reset: None,
    };
    let mut plan = Plan {
        name: name.to_string(),
        seed: 0,
        steps: 0,
        dtype: None,
        tensors: Vec::new(),
        trained: Vec::new(),
        files: Vec::new(),
        init: Graph::default(),
        data: Vec::new(),
        datasets: Vec::new(),
        fresh: Graph::default(),
        train: Graph::default(),
        loss: 0,
        grads: Vec::new(),
        metrics: Vec::new(),
        merged: Default::default(),
        groups: Vec::new(),
        checkpoint_every: None,
        config: Vec::new(),
    };
    let mut sweep = Sweep::default();
    let mut deferred: Vec<(String, Expr)> = Vec::new();
    let mut col = Collected { loss: None, optimize: Vec::new(), logs: Vec::new(), data: Vec::new() };
    let Body::Block(block) = &decl.body else { unreachable!("the checker accepted the experiment") };

    // An override, lowered in the experiment's frame (so it may use earlier `let`s).
    let overridden = |lw: &mut Lowerer,
                      f: &mut Frame,
                      over: &mut Vec<(String, Expr, Arc<SourceFile>, bool)>,
                      n: &str|
     -> LResult<Option<Lv>> {
        let Some(o) = over.iter_mut().find(|o| o.0 == n) else { return Ok(None) };
        o.3 = true;
        let saved = std::mem::replace(&mut f.source, o.2.clone());
        let v = lw.expr(f, &o.1);
        f.source = saved;
        v.map(Some)
    };

    for s in &block.stmts {
        match &s.kind {
            StmtKind::Let { pattern: Pattern::Name(n), value, .. } => {
                let v = match overridden(&mut lw, &mut f, &mut over, &n.name)? {
                    Some(v) => v,
                    None => lw.expr(&mut f, value)?,
                };
                plan.config.push((n.name.clone(), show(&v, &f.source, value)));
                // A value of the step (`where(modulo(step, 3) == 1, ...)`) is lowered again in
                // every graph run per step; other tensors are computed once, at initialization.
                if let Lv::T(node) = v {
                    if depends_on_step(&lw.g, node) {
                        deferred.push((n.name.clone(), value.clone()));
                        f.bind(&n.name, Binding { value: Lv::T(node), mutable: false, slot: None });
                        continue;
                    }
                }
                let v = lw.persist(v, &n.name);
                f.bind(&n.name, Binding { value: v, mutable: false, slot: None });
            }
            StmtKind::Assign { place, value, clauses, .. } => {
                let n = &place.parts[0].name;
                let setting = ["seed", "steps", "loss", "dtype"].contains(&n.as_str());
                if n == "loss" {
                    col.loss = Some(value.clone());
                    continue;
                }
                let v = match overridden(&mut lw, &mut f, &mut over, n)? {
                    Some(v) if setting => v,
                    _ => lw.expr(&mut f, value)?,
                };
                if setting {
                    plan.config.push((n.clone(), show(&v, &f.source, value)));
                    match n.as_str() {
                        "seed" => plan.seed = whole(&f, &v, value.span, "seed")?,
                        "steps" => plan.steps = whole(&f, &v, value.span, "steps")?,
                        _ => match v {
                            Lv::Str(d) => plan.dtype = Some(d),
                            _ => {
                                return Err(error(
                                    &f,
                                    value.span,
                                    codes::TYPE_MISMATCH,
                                    "`dtype` is \"f32\" or \"f64\"",
                                ))
                            }
                        },
                    }
                    continue;
                }
                // `b = a` of a model binding is a copy: new tensors with the same initial values.
                let v = match v {
                    Lv::Model(m)
                        if clauses.is_empty()
                            && matches!(
                                value.kind,
                                crate::syntax::ast::ExprKind::Name(_) | crate::syntax::ast::ExprKind::Field { .. }
                            ) =>
                    {
                        Lv::Model(std::rc::Rc::new(lw.copy_model(&m)))
                    }
                    other => other,
                };
                let v = lw.apply_clauses(&mut f, v, clauses, value.span)?;
                let v = lw.persist(v, n);
                if let Lv::Model(m) = &v {
                    name_tensors(&mut lw.vars.tensors, n, &m.members);
                }
                f.bind(n, Binding { value: v, mutable: false, slot: None });
            }
            StmtKind::Data { names, source: src, options } => {
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
                let mut holdout_spec: Option<f64> = None;
                for o in options {
                    match o {
                        DataOption::Batch(e) => {
                            let v = lw.expr(&mut f, e)?;
                            set.batch = Some(whole(&f, &v, e.span, "a batch size")? as usize);
                        }
                        DataOption::Holdout(e) => {
                            let v = lw.expr(&mut f, e)?;
                            let h = Lowerer::known(&v)
                                .ok_or_else(|| error(&f, e.span, codes::TYPE_MISMATCH, "`holdout` is a number"))?;
                            holdout_spec = Some(h);
                        }
                        DataOption::FreshEveryStep(_) => {}
                    }
                }
                if fresh {
                    if holdout_spec.is_some() || set.batch.is_some() {
                        return Err(error(&f, s.span, UNSUPPORTED, "data drawn fresh every step has no holdout; evaluation uses a draw of its own, and every step's draw is its batch"));
                    }
                    for n in &names {
                        plan.data.push(DataField { name: n.clone(), batch_shape: Vec::new() });
                        set.fields.push(plan.data.len() - 1);
                    }
                    col.data.push((names, true, Some(src.clone())));
                    plan.datasets.push(set);
                    continue;
                }
                let v = lw.expr(&mut f, src)?;
                let parts = match v {
                    Lv::Tuple(p) | Lv::List(p)
                        if names.len() > 1 || matches!(p.first(), Some(Lv::T(_) | Lv::Var(_))) =>
                    {
                        p
                    }
                    other => vec![other],
                };
                if parts.len() != names.len() {
                    return Err(error(
                        &f,
                        src.span,
                        codes::TUPLE_ARITY,
                        format!("{} names for data with {} parts", names.len(), parts.len()),
                    ));
                }
                let mut rows = None;
                for (n, p) in names.iter().zip(parts) {
                    let node = lw.tensor(&f, p, src.span)?;
                    let shape = lw.g.shape(node).to_vec();
                    let r = *shape.first().ok_or_else(|| {
                        error(&f, src.span, codes::RANK_MISMATCH, format!("data `{n}` is a scalar; data has rows"))
                    })?;
                    if rows.is_some_and(|x| x != r) {
                        return Err(error(
                            &f,
                            src.span,
                            codes::SHAPE_MISMATCH,
                            format!("the data fields have different numbers of rows ({} and {r})", rows.unwrap_or(0)),
                        ));
                    }
                    rows = Some(r);
                    set.init_roots.push(node);
                    plan.data.push(DataField { name: n.clone(), batch_shape: shape });
                    set.fields.push(plan.data.len() - 1);
                    f.bind(n, Binding { value: Lv::T(node), mutable: false, slot: None });
                }
                let rows = rows.unwrap_or(0);
                // A fraction below 1, or a whole count of rows.
                let holdout = match holdout_spec {
                    Some(h) if h < 1.0 => (h * rows as f64).round() as usize,
                    Some(h) => h as usize,
                    None => 0,
                };
                if holdout >= rows && holdout > 0 {
                    return Err(error(
                        &f,
                        s.span,
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
                            &f,
                            s.span,
                            codes::OUT_OF_RANGE,
                            format!("a batch of {b} from {train_rows} training rows"),
                        ));
                    }
                }
                let b = set.batch.unwrap_or(train_rows);
                for &k in &set.fields {
                    plan.data[k].batch_shape[0] = b;
                }
                col.data.push((names, false, None));
                plan.datasets.push(set);
            }
            StmtKind::Optimize { paths, rule } => {
                let r = lw.expr(&mut f, rule)?;
                let r = lw.as_value(r);
                if !matches!(r, Lv::Rule(_)) {
                    return Err(error(&f, rule.span, codes::TYPE_MISMATCH, "`optimize ... with` takes a rule"));
                }
                let text = source.text[rule.span.start..rule.span.end].to_string();
                col.optimize.push((paths.clone(), r, text, rule.span));
            }
            StmtKind::Init { paths, init } => {
                let v = lw.expr(&mut f, init)?;
                for p in paths {
                    let pat = p.to_string();
                    let hits: Vec<usize> = (0..lw.vars.tensors.len())
                        .filter(|&t| {
                            lw.vars.tensors[t].kind == TensorKind::Param
                                && super::path_matches(&pat, &lw.vars.tensors[t].path)
                        })
                        .collect();
                    if hits.is_empty() {
                        return Err(error(&f, p.span, codes::NO_SUCH_PARAM, format!("`{pat}` matches no parameter")));
                    }
                    for t in hits {
                        let dims = lw.vars.tensors[t].shape.clone();
                        lw.vars.tensors[t].init = lw.init_value(&f, v.clone(), &dims, init.span)?;
                    }
                }
            }
            StmtKind::Log { every, entries } => {
                let v = lw.expr(&mut f, every)?;
                col.logs.push((whole(&f, &v, every.span, "a logging period")?, entries.clone()));
            }
            StmtKind::Checkpoint { every } => {
                let v = lw.expr(&mut f, every)?;
                plan.checkpoint_every = Some(whole(&f, &v, every.span, "a checkpoint period")?);
            }
            StmtKind::Sweep { axes } => {
                for a in axes {
                    let values = match &a.values {
                        SweepValues::List(e) => match &e.kind {
                            crate::syntax::ast::ExprKind::List(items) => {
                                items.iter().map(|i| source.text[i.span.start..i.span.end].to_string()).collect()
                            }
                            _ => match lw.expr(&mut f, e)? {
                                Lv::List(items) => items.iter().map(|i| show(i, &source, e)).collect(),
                                _ => return Err(error(&f, e.span, codes::TYPE_MISMATCH, "sweep values are a list")),
                            },
                        },
                        SweepValues::Range(lo, hi) => {
                            let (l, h) = (lw.expr(&mut f, lo)?, lw.expr(&mut f, hi)?);
                            let (l, h) =
                                (Lowerer::known(&l).unwrap_or(0.0) as i64, Lowerer::known(&h).unwrap_or(0.0) as i64);
                            (l..h).map(|i| i.to_string()).collect()
                        }
                    };
                    sweep.axes.push((a.name.name.clone(), values));
                }
            }
            _ => return Err(error(&f, s.span, UNSUPPORTED, "this statement is not supported in an experiment")),
        }
    }
    if let Some(o) = over.iter().find(|o| !o.3) {
        let names: Vec<&str> = plan.config.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Box::new(
            Diagnostic::error(
                codes::UNKNOWN_NAME,
                &o.2,
                Span { start: 0, end: o.2.text.len() },
                format!("`{}` is not a `let` or setting of experiment `{name}`", o.0),
                "not used",
            )
            .with_help(format!("it has: {}", names.join(", "))),
        ));
    }

    // The init graph: initial values of the tensors and the fixed datasets.
    plan.files = std::mem::take(&mut lw.vars.files);
    let n_tensors = lw.vars.tensors.len();
    let scope = f.scopes[0].clone();
    let tensors = std::mem::take(&mut lw.vars.tensors);
    let streams = lw.streams;
    plan.init = std::mem::take(&mut lw.g);
    plan.init.inputs = plan.files.iter().map(|(_, a)| a.shape().to_vec()).collect();

    // Which tensors are trained.
    let mut trained = vec![false; n_tensors];
    let mut group_tensors = Vec::new();
    for (paths, _, _, span) in &col.optimize {
        let mut ts = Vec::new();
        for p in paths {
            let pat = p.to_string();
            let hits: Vec<usize> = (0..n_tensors)
                .filter(|&t| {
                    tensors[t].kind == TensorKind::Param
                        && !tensors[t].path.contains('~')
                        && super::path_matches(&pat, &tensors[t].path)
                })
                .collect();
            if hits.is_empty() {
                return Err(error(&f, p.span, codes::NO_SUCH_PARAM, format!("`{pat}` matches no trainable parameter")));
            }
            for t in hits {
                if trained[t] {
                    return Err(error(
                        &f,
                        *span,
                        codes::DOUBLE_OPTIMIZE,
                        format!("`{}` is optimized twice", tensors[t].path),
                    ));
                }
                trained[t] = true;
                ts.push(t);
            }
        }
        group_tensors.push(ts);
    }

    // The graphs run every step.
    let names: Vec<String> = plan.data.iter().map(|d| d.name.clone()).collect();
    let mut pass =
        Pass { prog, unit, source: &source, scope: &scope, tensors, streams, data: &names, deferred: &deferred };
    let data_shapes: Vec<Vec<usize>> = plan.data.iter().map(|d| d.batch_shape.clone()).collect();
    // Fresh data first: its shapes are those of the other graphs' data inputs.
    let (mut fresh, fresh_roots) = pass.lower(&data_shapes, |lw, f| {
        let mut roots = Vec::new();
        for (names, is_fresh, src) in &col.data {
            if !is_fresh {
                continue;
            }
            let src = src.as_ref().expect("fresh data has a source");
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
    })?;
    let mut k = 0;
    let mut shapes = data_shapes.clone();
    for (set, (_, is_fresh, _)) in plan.datasets.iter_mut().zip(&col.data) {
        if *is_fresh {
            for &field in &set.fields {
                shapes[field] = fresh.shape(fresh_roots[k]).to_vec();
                plan.data[field].batch_shape = shapes[field].clone();
                set.fresh_roots.push(fresh_roots[k]);
                k += 1;
            }
        }
    }
    fresh.output = fresh_roots.first().copied().unwrap_or(0);

    // The training step: the loss and its gradients.
    let loss_expr = col.loss.clone().expect("the checker requires a loss");
    let wanted: Vec<usize> = (0..n_tensors).filter(|&t| trained[t]).collect();
    let mut stops = Vec::new();
    let (mut train, roots) = pass.lower(&shapes, |lw, f| {
        let inputs: Vec<NodeId> = wanted.iter().map(|&t| lw.var_node(t)).collect();
        let v = lw.expr(f, &loss_expr)?;
        let loss = lw.tensor(f, v, loss_expr.span)?;
        if !lw.g.shape(loss).is_empty() {
            return Err(error(
                f,
                loss_expr.span,
                codes::TYPE_MISMATCH,
                format!("the loss has shape {:?}, not a scalar", lw.g.shape(loss)),
            ));
        }
        let mut r = vec![loss];
        r.extend(inputs);
        stops = lw.detached.clone();
        Ok(r)
    })?;
    let loss = roots[0];
    let grads = crate::grad::differentiate_except(&mut train, loss, &roots[1..], &stops)
        .map_err(|e| error(&f, loss_expr.span, codes::LOWERING, format!("cannot differentiate the loss: {e}")))?;
    train.output = loss;
    plan.grads = wanted.iter().copied().zip(grads).collect();
    plan.loss = loss;

    // Metrics, on the training data and, where some data is held out, on the held-out rows.
    plan.metrics = super::metrics::lower_metrics(&mut pass, &plan.datasets, &col.logs, &loss_expr, &shapes, &trained)?;
    plan.merged = super::merged::lower_merged(&mut pass, &shapes)?;

    // Rules, one graph per trained tensor.
    for ((_, rule, text, span), ts) in col.optimize.iter().zip(group_tensors) {
        let (mut graphs, mut probes) = (Vec::new(), Vec::new());
        for &t in &ts {
            let (g, probe) = super::lower_rule_value(
                prog,
                unit,
                &source,
                rule,
                *span,
                &pass.tensors[t].shape,
                Some(&pass.tensors[t].path),
            )
            .map_err(|d| {
                Box::new(Diagnostic::error(
                    d.code,
                    &source,
                    *span,
                    format!("applying this rule to `{}`: {}", pass.tensors[t].path, d.message),
                    "here",
                ))
            })?;
            graphs.push(g);
            probes.push(probe);
        }
        // A tensor whose rule asks for no other point stays where it is while the others move.
        let probes = if probes.iter().any(Option::is_some) {
            probes
                .into_iter()
                .zip(&graphs)
                .map(|(p, g)| {
                    p.unwrap_or_else(|| {
                        let shape = g.inputs[0].clone();
                        let mut id = Graph { inputs: vec![shape.clone()], ..Graph::default() };
                        id.output = id.push(Op::Param, shape);
                        id
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        plan.groups.push(Group { rule: text.clone(), tensors: ts, graphs, probes });
    }
    plan.fresh = fresh;
    plan.train = train;
    plan.trained = trained;
    plan.tensors = pass.tensors;
    Ok((plan, sweep))
}

/// Lowers graphs run every step from the experiment's bindings.
pub(super) struct Pass<'a> {
    prog: &'a Program,
    unit: usize,
    source: &'a Arc<SourceFile>,
    scope: &'a [(String, Binding)],
    tensors: Vec<TensorDef>,
    streams: u64,
    /// The data fields' names.
    data: &'a [String],
    /// `let`s that depend on the step, lowered again in each graph.
    deferred: &'a [(String, Expr)],
}

impl Pass<'_> {
    /// Lowers one graph with data fields of the given shapes: `body` returns its roots.
    pub(super) fn lower(
        &mut self,
        data_shapes: &[Vec<usize>],
        body: impl FnOnce(&mut Lowerer, &mut Frame) -> LResult<Vec<NodeId>>,
    ) -> Result<(Graph, Vec<NodeId>), Box<Diagnostic>> {
        let mut lw = Lowerer::new(self.prog);
        lw.vars.mode = VarMode::Run;
        lw.vars.tensors = std::mem::take(&mut self.tensors);
        lw.streams = self.streams;
        let step = lw.node(Op::Step, Vec::new());
        let mut f = Frame {
            unit: self.unit,
            source: self.source.clone(),
            scopes: vec![self.scope.to_vec()],
            step,
            inst: None,
            conds: Vec::new(),
            reset: None,
        };
        let n = lw.vars.tensors.len();
        for (k, d) in self.data.iter().enumerate() {
            let node = lw.node(Op::Input(2 * n + k), data_shapes[k].clone());
            f.bind(d, Binding { value: Lv::T(node), mutable: false, slot: None });
        }
        let mut result = Ok(Vec::new());
        for (name, e) in self.deferred {
            match lw.expr(&mut f, e) {
                Ok(v) => f.bind(name, Binding { value: v, mutable: false, slot: None }),
                Err(d) => {
                    result = Err(d);
                    break;
                }
            }
        }
        if result.is_ok() {
            result = body(&mut lw, &mut f);
        }
        self.streams = lw.streams;
        let mut inputs: Vec<Vec<usize>> = lw.vars.tensors.iter().map(|t| t.shape.clone()).collect();
        inputs.extend(lw.vars.tensors.iter().map(|t| t.shape.clone()));
        inputs.extend(data_shapes.iter().cloned());
        self.tensors = std::mem::take(&mut lw.vars.tensors);
        let roots = result?;
        lw.g.inputs = inputs;
        lw.g.output = roots.first().copied().unwrap_or(0);
        Ok((lw.g, roots))
    }
}

/// Whether a node of the graph reads the step.
fn depends_on_step(g: &Graph, root: NodeId) -> bool {
    let mut seen = vec![false; g.nodes.len()];
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        if matches!(g.nodes[n].op, Op::Step) {
            return true;
        }
        stack.extend(g.nodes[n].op.operands());
    }
    false
}

fn whole(f: &Frame, v: &Lv, span: Span, what: &str) -> LResult<u64> {
    match Lowerer::known(v) {
        Some(x) if x >= 0.0 && x.fract() == 0.0 => Ok(x as u64),
        _ => Err(error(f, span, codes::TYPE_MISMATCH, format!("{what} is a whole number"))),
    }
}

/// A value as text for the run's configuration.
fn show(v: &Lv, source: &SourceFile, e: &Expr) -> String {
    match v {
        Lv::Int(n) => n.to_string(),
        Lv::Num(x) => format!("{x}"),
        Lv::Bool(b) => b.to_string(),
        Lv::Str(s) => format!("{s:?}"),
        _ => source.text.get(e.span.start..e.span.end).unwrap_or("?").to_string(),
    }
}

impl Lowerer<'_> {
    /// A value bound in the init pass, made usable in every later graph: tensors (nodes of the
    /// init graph) become experiment tensors named after the binding.
    pub(crate) fn persist(&mut self, v: Lv, name: &str) -> Lv {
        match v {
            Lv::T(node) => Lv::Var(self.new_tensor(name.to_string(), node, TensorKind::Let)),
            Lv::List(items) => {
                Lv::List(items.into_iter().enumerate().map(|(i, x)| self.persist(x, &format!("{name}[{i}]"))).collect())
            }
            Lv::Tuple(items) => Lv::Tuple(
                items.into_iter().enumerate().map(|(i, x)| self.persist(x, &format!("{name}[{i}]"))).collect(),
            ),
            other => other,
        }
    }

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
