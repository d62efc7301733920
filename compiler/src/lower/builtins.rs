//! Builtins during lowering: each primitive becomes IR nodes (or folds when its arguments are
//! known). Shape queries answer from the node shapes; `global_norm` and `global_sum` become group
//! reductions; random draws get a stream number that names their place in the program.

use super::expr::ArgLv;
use super::{error, FnVal, Frame, LResult, Lowerer, Lv, RuleVal, UNSUPPORTED};
use crate::diag::codes;
use crate::ir::{Binary, Dist, Linalg, NodeId, Op, Reduce, Unary};
use crate::syntax::ast::Span;
use std::rc::Rc;

/// Parameter names of the builtins, in order (the checker's table, for binding by keyword).
fn params(name: &str) -> &'static [&'static str] {
    match name {
        "max" | "min" => &["x", "y", "axis", "keepdims"],
        "where" => &["cond", "x", "y"],
        "sum" | "mean" | "norm" => &["x", "axis", "keepdims"],
        "argmax" => &["x", "axis"],
        "full_like" => &["x", "value"],
        "fill" => &["shape", "value"],
        "eye" => &["n", "m"],
        "size" => &["x", "axis"],
        "reshape" => &["x", "shape"],
        "concat" => &["xs", "axis"],
        "outer" | "kron" => &["a", "b"],
        "svd" | "left_singular" => &["a", "rank"],
        "randomized_svd" => &["a", "rank", "niter"],
        "rebase" => &["inner", "t", "at", "axis"],
        "solve" => &["a", "b"],
        "partition" => &["matrices", "vectors"],
        "mask" => &["inner", "paths"],
        "route" => &["paths", "then", "otherwise"],
        "onehot" => &["labels", "classes"],
        "load" => &["path", "key"],
        "randn" | "rand" => &["shape"],
        "arange" => &["n"],
        "recorded" => &["name", "x"],
        "grad_at" => &["point"],
        _ => &["x"],
    }
}

impl Lowerer<'_> {
    /// Lowers a builtin call.
    pub(crate) fn builtin(&mut self, f: &mut Frame, name: &'static str, args: &[ArgLv], span: Span) -> LResult<Lv> {
        let names = params(name);
        let mut a: Vec<Option<Lv>> = vec![None; names.len()];
        let mut next = 0;
        for arg in args {
            let i = match &arg.name {
                Some(n) => names.iter().position(|p| p == n).ok_or_else(|| {
                    error(f, arg.span, codes::UNKNOWN_KEYWORD, format!("`{name}` has no parameter `{n}`"))
                })?,
                None => {
                    while next < a.len() && a[next].is_some() {
                        next += 1;
                    }
                    next
                }
            };
            let slot = a
                .get_mut(i)
                .ok_or_else(|| error(f, arg.span, codes::TOO_MANY_ARGS, format!("too many arguments for `{name}`")))?;
            *slot = Some(arg.value.clone());
        }
        let need = |k: usize| -> LResult<Lv> {
            a.get(k)
                .cloned()
                .flatten()
                .ok_or_else(|| error(f, span, codes::MISSING_ARG, format!("`{name}` needs `{}`", names[k])))
        };
        let x0 = need(0)?;
        match name {
            "initial" => match x0 {
                Lv::Var(i) => Ok(Lv::T(self.initial_node(i))),
                _ => Err(error(
                    f,
                    span,
                    codes::TYPE_MISMATCH,
                    "`initial` takes a tensor of the experiment, such as `model.w`",
                )),
            },
            "load" => self.load(f, &x0, a.get(1).cloned().flatten(), span),
            "detach" => {
                // A copy of the value through which differentiation does not pass.
                let x = self.tensor(f, x0, span)?;
                let shape = self.g.shape(x).to_vec();
                let d = self.node(Op::Reshape(x), shape);
                self.detached.push(d);
                Ok(Lv::T(d))
            }
            "grad_at" => self.grad_at(f, x0, span),
            "abs" | "sign" | "sqrt" | "exp" | "log" | "sin" | "cos" | "tanh" | "erf" | "floor" | "ceil" | "round" => {
                let u = Unary::from_builtin(name).expect("the arm lists elementwise builtins");
                if let Some(v) = Self::known(&x0).and_then(|x| u.eval_f64(x)) {
                    return Ok(Lv::Num(v));
                }
                let x = self.tensor(f, x0, span)?;
                let shape = self.g.shape(x).to_vec();
                Ok(Lv::T(self.node(Op::Unary(u, x), shape)))
            }
            "max" | "min" if a[1].is_some() => {
                let y = need(1)?;
                if let (Some(p), Some(q)) = (Self::known(&x0), Self::known(&y)) {
                    let v = if name == "max" { p.max(q) } else { p.min(q) };
                    return Ok(if matches!((&x0, &y), (Lv::Int(_), Lv::Int(_))) {
                        Lv::Int(v as i64)
                    } else {
                        Lv::Num(v)
                    });
                }
                let (x, y) = (self.tensor(f, x0, span)?, self.tensor(f, y, span)?);
                let op = if name == "max" { Binary::Max } else { Binary::Min };
                self.elementwise(f, op, x, y, span).map(Lv::T)
            }
            "max" | "min" | "sum" | "mean" | "norm" | "argmax" => {
                let (axis, keep) = match name {
                    "max" | "min" => (a[2].clone(), a[3].clone()),
                    "argmax" => (a[1].clone(), None),
                    _ => (a[1].clone(), a[2].clone()),
                };
                let op = match name {
                    "max" => Reduce::Max,
                    "min" => Reduce::Min,
                    "sum" => Reduce::Sum,
                    "mean" => Reduce::Mean,
                    "norm" => Reduce::Norm,
                    _ => Reduce::ArgMax,
                };
                let x = self.tensor(f, x0, span)?;
                self.reduce(f, op, x, axis, keep, span).map(Lv::T)
            }
            "where" => {
                let (c, x, y) = (self.tensor(f, x0, span)?, need(1)?, need(2)?);
                let (x, y) = (self.tensor(f, x, span)?, self.tensor(f, y, span)?);
                let s1 = super::expr::broadcast(self.g.shape(c), self.g.shape(x));
                let shape = s1
                    .and_then(|s| super::expr::broadcast(&s, self.g.shape(y)))
                    .ok_or_else(|| error(f, span, codes::BROADCAST_SHAPE, "`where` operands do not broadcast"))?;
                Ok(Lv::T(self.node(Op::Select(c, x, y), shape)))
            }
            "global_norm" | "global_sum" => {
                let x = self.tensor(f, x0, span)?;
                let partial = if name == "global_norm" {
                    let sq = self.elementwise(f, Binary::Mul, x, x, span)?;
                    self.node(Op::Reduce { op: Reduce::Sum, arg: sq, axes: Vec::new(), keepdims: false }, Vec::new())
                } else {
                    self.node(Op::Reduce { op: Reduce::Sum, arg: x, axes: Vec::new(), keepdims: false }, Vec::new())
                };
                let site = self.sites;
                self.sites += 1;
                let total = self.node(Op::Group { arg: partial, site }, Vec::new());
                Ok(Lv::T(if name == "global_norm" {
                    self.node(Op::Unary(Unary::Sqrt, total), Vec::new())
                } else {
                    total
                }))
            }
            "zeros_like" | "ones_like" | "full_like" => {
                let x = self.tensor(f, x0, span)?;
                let shape = self.g.shape(x).to_vec();
                let v = match name {
                    "zeros_like" => Lv::Num(0.0),
                    "ones_like" => Lv::Num(1.0),
                    _ => need(1)?,
                };
                self.filled(f, shape, v, span)
            }
            "fill" => {
                let dims = self.dims(f, &x0, span)?;
                let v = need(1)?;
                self.filled(f, dims, v, span)
            }
            "randn" | "rand" => {
                let dims = self.dims(f, &x0, span)?;
                let stream = self.streams;
                self.streams += 1;
                let dist = if name == "randn" { Dist::Normal } else { Dist::Uniform };
                Ok(Lv::T(self.node(Op::Random { dist, stream }, dims)))
            }
            "eye" => {
                let n = size(f, &x0, span)?;
                let m = match &a[1] {
                    Some(v) => size(f, v, span)?,
                    None => n,
                };
                let k = n.min(m);
                let ones = self.node(Op::Fill(1.0), vec![k]);
                let square = self.node(Op::Diag(ones), vec![k, k]);
                if n == m {
                    return Ok(Lv::T(square));
                }
                let zeros = self.node(Op::Fill(0.0), if n > m { vec![n - m, m] } else { vec![n, m - n] });
                let axis = if n > m { 0 } else { 1 };
                Ok(Lv::T(self.node(Op::Concat { args: vec![square, zeros], axis }, vec![n, m])))
            }
            "rows" | "cols" | "ndim" | "numel" | "size" | "shape" => {
                let x = self.tensor(f, x0, span)?;
                let s = self.g.shape(x).to_vec();
                let n = s.len();
                let int = |v: usize| Lv::Int(v as i64);
                match name {
                    "ndim" => Ok(int(n)),
                    "numel" => Ok(int(s.iter().product())),
                    "shape" => Ok(Lv::List(s.iter().map(|&d| int(d)).collect())),
                    "rows" | "cols" if n < 2 => {
                        Err(error(f, span, codes::RANK_MISMATCH, format!("`{name}` needs a matrix")))
                    }
                    "rows" => Ok(int(s[n - 2])),
                    "cols" => Ok(int(s[n - 1])),
                    _ => {
                        let k = Self::known(&need(1)?)
                            .ok_or_else(|| error(f, span, codes::LOWERING, "the axis must be known"))?
                            as i64;
                        let k = if k < 0 { n as i64 + k } else { k };
                        s.get(usize::try_from(k).unwrap_or(usize::MAX))
                            .map(|&d| int(d))
                            .ok_or_else(|| error(f, span, codes::OUT_OF_BOUNDS, "no such axis"))
                    }
                }
            }
            "reshape" | "flatten" => {
                let x = self.tensor(f, x0, span)?;
                let from: usize = self.g.shape(x).iter().product();
                let dims = if name == "flatten" { vec![from] } else { self.dims(f, &need(1)?, span)? };
                if dims.iter().product::<usize>() != from {
                    return Err(error(
                        f,
                        span,
                        codes::SHAPE_MISMATCH,
                        format!("cannot reshape {from} elements to {dims:?}"),
                    ));
                }
                Ok(Lv::T(self.node(Op::Reshape(x), dims)))
            }
            "concat" => {
                let (Lv::List(items) | Lv::Tuple(items)) = x0 else {
                    return Err(error(f, span, codes::TYPE_MISMATCH, "`concat` takes a list of tensors"));
                };
                let axis = a[1].as_ref().and_then(Self::known).unwrap_or(0.0) as usize;
                let ids: Vec<NodeId> = items.into_iter().map(|i| self.tensor(f, i, span)).collect::<LResult<_>>()?;
                let mut shape = self.g.shape(ids[0]).to_vec();
                if axis >= shape.len() {
                    return Err(error(f, span, codes::OUT_OF_BOUNDS, "no such axis"));
                }
                shape[axis] = ids.iter().map(|&i| self.g.shape(i).get(axis).copied().unwrap_or(0)).sum();
                Ok(Lv::T(self.node(Op::Concat { args: ids, axis }, shape)))
            }
            "outer" => {
                let (x, y) = (self.tensor(f, x0, span)?, need(1)?);
                let y = self.tensor(f, y, span)?;
                let (m, n) = (self.g.shape(x).iter().product::<usize>(), self.g.shape(y).iter().product::<usize>());
                let col = self.node(Op::Reshape(x), vec![m, 1]);
                let row = self.node(Op::Reshape(y), vec![1, n]);
                self.elementwise(f, Binary::Mul, col, row, span).map(Lv::T)
            }
            "diag" => {
                let x = self.tensor(f, x0, span)?;
                let s = self.g.shape(x).to_vec();
                let shape = match s.as_slice() {
                    [n] => vec![*n, *n],
                    [m, n] => vec![(*m).min(*n)],
                    _ => return Err(error(f, span, codes::RANK_MISMATCH, "`diag` takes a vector or a matrix")),
                };
                Ok(Lv::T(self.node(Op::Diag(x), shape)))
            }
            "trace" => {
                let x = self.tensor(f, x0, span)?;
                let s = self.g.shape(x).to_vec();
                let [m, n] = s.as_slice() else {
                    return Err(error(f, span, codes::RANK_MISMATCH, "`trace` takes a matrix"));
                };
                let d = self.node(Op::Diag(x), vec![(*m).min(*n)]);
                Ok(Lv::T(
                    self.node(Op::Reduce { op: Reduce::Sum, arg: d, axes: Vec::new(), keepdims: false }, Vec::new()),
                ))
            }
            "triu" | "tril" => {
                let x = self.tensor(f, x0, span)?;
                let shape = self.g.shape(x).to_vec();
                Ok(Lv::T(self.node(Op::Triangle(x, name == "triu"), shape)))
            }
            "svd" | "left_singular" | "qr" | "eigh" | "solve" | "cholesky" => {
                self.linalg(f, name, x0, a.get(1).cloned().flatten(), span)
            }
            "randomized_svd" => {
                let niter = match a[2].clone() {
                    Some(v) => size(f, &v, span)?,
                    None => 2,
                };
                self.randomized_svd(f, x0, need(1)?, niter, span)
            }
            "rebase" => {
                let t = self.tensor(f, need(1)?, span)?;
                let at = self.tensor(f, need(2)?, span)?;
                let axis = match a[3].clone() {
                    Some(v) => size(f, &v, span)?,
                    None => 0,
                };
                let square = matches!(self.g.shape(t), [n, k] if n == k);
                if !square || !self.g.shape(at).is_empty() || axis > 1 {
                    return Err(error(
                        f,
                        span,
                        codes::SHAPE_MISMATCH,
                        "`rebase` takes a square basis change `t`, a scalar condition `at` and axis 0 or 1",
                    ));
                }
                Ok(Lv::Rule(Rc::new(RuleVal::Rebase { inner: self.as_value(x0), t, at, axis })))
            }
            "partition" => {
                let (m, v) = (self.as_value(need(0)?), self.as_value(need(1)?));
                Ok(Lv::Rule(Rc::new(RuleVal::Partition { matrices: m, vectors: v })))
            }
            "mask" => {
                let paths = strings(f, &need(1)?, span)?;
                Ok(Lv::Rule(Rc::new(RuleVal::Mask { inner: self.as_value(x0), paths })))
            }
            "route" => {
                let paths = strings(f, &x0, span)?;
                let (then, otherwise) = (self.as_value(need(1)?), self.as_value(need(2)?));
                Ok(Lv::Rule(Rc::new(RuleVal::Route { paths, then, otherwise })))
            }
            "recorded" => {
                let Lv::Str(name) = x0 else {
                    return Err(error(f, span, codes::TYPE_MISMATCH, "`recorded` takes a constant string name"));
                };
                let x = need(1)?;
                let x = self.tensor(f, x, span)?;
                let shape = self.g.shape(x).to_vec();
                Ok(Lv::T(self.node(Op::Recorded { name, arg: x }, shape)))
            }
            "arange" => {
                let n = size(f, &x0, span)?;
                Ok(Lv::T(self.arange(n)))
            }
            "onehot" => {
                let labels = self.tensor(f, x0, span)?;
                let k = size(f, &need(1)?, span)?;
                let mut shape = self.g.shape(labels).to_vec();
                shape.push(1);
                let column = self.node(Op::Reshape(labels), shape);
                let classes = self.arange(k);
                self.elementwise(f, Binary::Eq, column, classes, span).map(Lv::T)
            }
            _ => {
                let _ = FnVal::Builtin(name);
                Err(error(f, span, UNSUPPORTED, format!("`{name}` cannot be used in an update rule yet")))
            }
        }
    }

    /// 0, 1, ..., n - 1 as a vector, built by doubling (`a ++ (a + len(a))`) so that it takes
    /// log2(n) nodes and no op of its own.
    fn arange(&mut self, n: usize) -> NodeId {
        let mut a = self.node(Op::Fill(0.0), vec![1]);
        let mut len = 1;
        while len < n {
            let shift = self.constant(len as f64);
            let b = self.node(Op::Binary(Binary::Add, a, shift), vec![len]);
            a = self.node(Op::Concat { args: vec![a, b], axis: 0 }, vec![2 * len]);
            len *= 2;
        }
        if len == n {
            a
        } else {
            self.node(Op::Slice { arg: a, ranges: vec![(0, 1)], drop: Vec::new() }, vec![n])
        }
    }

    fn filled(&mut self, f: &Frame, shape: Vec<usize>, v: Lv, span: Span) -> LResult<Lv> {
        match Self::known(&v) {
            Some(c) => Ok(Lv::T(self.node(Op::Fill(c), shape))),
            None => {
                let t = self.tensor(f, v, span)?;
                Ok(Lv::T(self.expand_to(t, &shape)))
            }
        }
    }

    fn reduce(
        &mut self,
        f: &Frame,
        op: Reduce,
        x: NodeId,
        axis: Option<Lv>,
        keep: Option<Lv>,
        span: Span,
    ) -> LResult<NodeId> {
        let shape = self.g.shape(x).to_vec();
        let n = shape.len() as i64;
        let axes: Vec<usize> = match axis {
            None => (0..shape.len()).collect(),
            Some(Lv::List(items)) => items
                .iter()
                .map(|i| Self::known(i).map(|v| v as i64))
                .collect::<Option<Vec<i64>>>()
                .ok_or_else(|| error(f, span, codes::LOWERING, "axes must be known"))?
                .into_iter()
                .map(|k| if k < 0 { n + k } else { k })
                .map(|k| usize::try_from(k).unwrap_or(usize::MAX))
                .collect(),
            Some(v) => {
                let k =
                    Self::known(&v).ok_or_else(|| error(f, span, codes::LOWERING, "the axis must be known"))? as i64;
                vec![usize::try_from(if k < 0 { n + k } else { k }).unwrap_or(usize::MAX)]
            }
        };
        if axes.iter().any(|&k| k >= shape.len()) {
            return Err(error(f, span, codes::OUT_OF_BOUNDS, "no such axis"));
        }
        let keepdims = keep.as_ref().and_then(Self::known).is_some_and(|b| b != 0.0);
        let mut axes = axes;
        axes.sort_unstable();
        axes.dedup();
        let out: Vec<usize> = shape
            .iter()
            .enumerate()
            .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
                (true, true) => Some(1),
                (true, false) => None,
                _ => Some(d),
            })
            .collect();
        let axes = if axes.len() == shape.len() && !keepdims { Vec::new() } else { axes };
        Ok(self.node(Op::Reduce { op, arg: x, axes, keepdims }, out))
    }

    /// `randomized_svd(a, rank, niter)`: (U, S, V^T) of the randomized range finder, with a
    /// Gaussian test matrix drawn here (a counter-based draw of its own stream, new every step).
    fn randomized_svd(&mut self, f: &Frame, x0: Lv, rank: Lv, niter: usize, span: Span) -> LResult<Lv> {
        let a = self.tensor(f, x0, span)?;
        let [m, n] = *self.g.shape(a) else {
            return Err(error(f, span, codes::RANK_MISMATCH, "`randomized_svd` takes a matrix"));
        };
        let r = size(f, &rank, span)?;
        if r == 0 || r > m.min(n) {
            return Err(error(f, span, codes::LOWERING, format!("rank {r} for a {m}x{n} matrix")));
        }
        let stream = self.streams;
        self.streams += 1;
        let omega = self.node(Op::Random { dist: Dist::Normal, stream }, vec![n, r]);
        let node = self.node(Op::Linalg(Linalg::RandomizedSvd { rank: r, niter }, vec![a, omega]), Vec::new());
        let parts = [vec![m, r], vec![r], vec![r, n]];
        Ok(Lv::Tuple(parts.into_iter().enumerate().map(|(i, sh)| Lv::T(self.node(Op::Output(node, i), sh))).collect()))
    }

    fn linalg(&mut self, f: &Frame, name: &str, x0: Lv, second: Option<Lv>, span: Span) -> LResult<Lv> {
        let a = self.tensor(f, x0, span)?;
        let s = self.g.shape(a).to_vec();
        let [m, n] = s.as_slice() else {
            return Err(error(f, span, codes::RANK_MISMATCH, format!("`{name}` takes a matrix")));
        };
        let (m, n) = (*m, *n);
        let k = m.min(n);
        let out = |lw: &mut Self, node: NodeId, shapes: Vec<Vec<usize>>| -> Vec<Lv> {
            shapes.into_iter().enumerate().map(|(i, sh)| Lv::T(lw.node(Op::Output(node, i), sh))).collect()
        };
        Ok(match name {
            "svd" | "left_singular" => {
                let r = match &second {
                    Some(v) => size(f, v, span)?,
                    None => k,
                };
                if r == 0 || r > k {
                    return Err(error(f, span, codes::LOWERING, format!("rank {r} for a {m}x{n} matrix")));
                }
                let node = self.node(Op::Linalg(Linalg::Svd { rank: r }, vec![a]), Vec::new());
                let mut parts = out(self, node, vec![vec![m, r], vec![r], vec![r, n]]);
                if name == "left_singular" {
                    parts.swap_remove(0)
                } else {
                    Lv::Tuple(parts)
                }
            }
            "qr" => {
                let node = self.node(Op::Linalg(Linalg::Qr, vec![a]), Vec::new());
                Lv::Tuple(out(self, node, vec![vec![m, k], vec![k, n]]))
            }
            "eigh" => {
                let node = self.node(Op::Linalg(Linalg::Eigh, vec![a]), Vec::new());
                Lv::Tuple(out(self, node, vec![vec![n], vec![n, n]]))
            }
            "cholesky" => {
                let node = self.node(Op::Linalg(Linalg::Cholesky, vec![a]), Vec::new());
                out(self, node, vec![vec![n, n]]).swap_remove(0)
            }
            _ => {
                let b = second.ok_or_else(|| error(f, span, codes::MISSING_ARG, "`solve` needs `b`"))?;
                let b = self.tensor(f, b, span)?;
                let shape = self.g.shape(b).to_vec();
                let node = self.node(Op::Linalg(Linalg::Solve, vec![a, b]), Vec::new());
                out(self, node, vec![shape]).swap_remove(0)
            }
        })
    }
}

fn strings(f: &Frame, v: &Lv, span: Span) -> LResult<Vec<String>> {
    match v {
        Lv::List(items) => items
            .iter()
            .map(|i| match i {
                Lv::Str(s) => Ok(s.clone()),
                _ => Err(error(f, span, codes::TYPE_MISMATCH, "`paths` is a list of strings")),
            })
            .collect(),
        _ => Err(error(f, span, codes::TYPE_MISMATCH, "`paths` is a list of strings")),
    }
}

fn size(f: &Frame, v: &Lv, span: Span) -> LResult<usize> {
    match Lowerer::known(v) {
        Some(x) if x >= 0.0 && x.fract() == 0.0 => Ok(x as usize),
        _ => Err(error(f, span, codes::LOWERING, "a size must be a whole number known before running")),
    }
}

impl Lowerer<'_> {
    /// `grad_at(point)` in a rule: the loss's gradient with the parameter at `point`, read as the
    /// rule graph's input 1 (see [`super::probe_graph`]); one such gradient per rule application.
    fn grad_at(&mut self, f: &Frame, point: Lv, span: Span) -> LResult<Lv> {
        let in_rule = f.inst.is_some() && matches!(self.vars.mode, super::model::VarMode::None);
        let Some(param) = self.g.inputs.first().cloned().filter(|_| in_rule) else {
            return Err(error(f, span, codes::MISPLACED_BUILTIN, "`grad_at` is only meaningful in a rule"));
        };
        if self.probe.is_some() {
            return Err(error(
                f,
                span,
                UNSUPPORTED,
                "a rule application evaluates the gradient at one other point: `grad_at` is used twice",
            ));
        }
        let p = self.tensor(f, point, span)?;
        if super::expr::broadcast(self.g.shape(p), &param).as_deref() != Some(param.as_slice()) {
            return Err(error(
                f,
                span,
                codes::SHAPE_MISMATCH,
                format!("the point has shape {:?}, the parameter {param:?}", self.g.shape(p)),
            ));
        }
        let p = self.expand_to(p, &param);
        self.probe = Some(p);
        self.g.inputs.push(param.clone());
        Ok(Lv::T(self.node(Op::Input(1), param)))
    }
}
