//! The executor: runs IR graphs the fast way, with fused JIT kernels (`crate::fuse`,
//! `crate::jit`) for elementwise work and the interpreter's operations as the library for the
//! rest (matmul through faer, reductions, decompositions, data movement). It offers what the
//! interpreter offers, with the same results: [`RuleExec`] is [`crate::interp::Interp`] (a rule
//! applied to a group of parameters, step by step, with its state), [`GraphExec`] is
//! [`crate::interp::eval_nodes`] (a loss and its gradients, data, metrics). Kernels compute in the
//! run's type operation for operation as the interpreter does, so both give the same bits on the
//! same graph; the tests hold them to it.
//!
//! [`RuleExec::step_apply`] updates the parameters in place: the parameter update joins the
//! rule's kernel, and state slots are updated in place where nothing else reads their old value,
//! so AdamW is one pass over parameter, gradient and moments.

mod gemm_update;
mod launch;
mod library;
mod program;

pub use crate::interp::InterpError as ExecError;
pub use crate::jit::Elem;

use crate::interp::{single, Recorded, Scalar};
use crate::ir::{Binary, Graph, NodeId, Op};
use ndarray::{ArrayD, IxDyn};
use program::{Io, ParamRef, Program};

/// Element types the executor runs in: the interpreter's, with their JIT type.
pub trait Lane: Scalar {
    /// The JIT's element type.
    const ELEM: Elem;
}

impl Lane for f32 {
    const ELEM: Elem = Elem::F32;
}

impl Lane for f64 {
    const ELEM: Elem = Elem::F64;
}

/// The group reductions of a rule application: each site, with the (graph, node) pairs of it.
type Sites = Vec<(u32, Vec<(usize, NodeId)>)>;

/// A rule applied to a group of parameters (one graph per parameter) and its state: the
/// executor's [`crate::interp::Interp`].
pub struct RuleExec<T: Lane> {
    graphs: Vec<Graph>,
    /// Programs that return directions, and programs that apply them (built on first use).
    directing: Option<Vec<Program<T>>>,
    applying: Option<Vec<Program<T>>>,
    states: Vec<Vec<ArrayD<T>>>,
    recorded: Vec<Recorded<T>>,
    written: Vec<Vec<bool>>,
    sites: Sites,
    seed: u64,
}

impl<T: Lane> RuleExec<T> {
    /// A rule application over `graphs`, all state unwritten (zeros); `seed` feeds random draws
    /// exactly as the interpreter's.
    pub fn new(graphs: Vec<Graph>, seed: u64) -> Self {
        let states = graphs.iter().map(|g| g.slots.iter().map(|s| ArrayD::zeros(IxDyn(&s.shape))).collect()).collect();
        let written = graphs.iter().map(|g| vec![false; g.slots.len()]).collect();
        let mut sites: Sites = Vec::new();
        for (k, g) in graphs.iter().enumerate() {
            for (id, n) in g.nodes.iter().enumerate() {
                if let Op::Group { site, .. } = n.op {
                    match sites.iter_mut().find(|(s, _)| *s == site) {
                        Some((_, members)) => members.push((k, id)),
                        None => sites.push((site, vec![(k, id)])),
                    }
                }
            }
        }
        let recorded = graphs.iter().map(|_| Recorded::new()).collect();
        RuleExec { graphs, directing: None, applying: None, states, recorded, written, sites, seed }
    }

    /// The graphs, one per parameter.
    pub fn graphs(&self) -> &[Graph] {
        &self.graphs
    }

    /// One step that returns the directions (to be added by the caller), as
    /// [`crate::interp::Interp::step`].
    pub fn step(
        &mut self,
        step: u64,
        params: &[ArrayD<T>],
        inputs: &[Vec<ArrayD<T>>],
    ) -> Result<Vec<ArrayD<T>>, ExecError> {
        self.check_counts(params.len(), inputs.len())?;
        let graphs = &self.graphs;
        let programs = self.directing.get_or_insert_with(|| {
            graphs.iter().map(|g| Program::new(g.clone(), vec![g.output], g.state_writes.clone(), None, true)).collect()
        });
        let mut ios: Vec<Io<T>> = params
            .iter()
            .zip(inputs)
            .zip(self.states.iter_mut())
            .zip(&self.recorded)
            .enumerate()
            .map(|(k, (((p, x), s), r))| Io {
                inputs: x,
                recorded: Some(r),
                param: ParamRef::Shared(p),
                states: s,
                step,
                seed: single::graph_seed(self.seed, k),
            })
            .collect();
        run_group(programs, &mut ios, &self.sites, step)?;
        let mut dirs = Vec::with_capacity(programs.len());
        for (prog, io) in programs.iter().zip(&ios) {
            let d = prog.get(io, prog.graph.output)?;
            if Some(d.shape()) != io.param.get().map(|p| p.shape()) {
                let msg = format!(
                    "the direction has shape {:?}, the parameter {:?}",
                    d.shape(),
                    io.param.get().map(|p| p.shape())
                );
                return Err(ExecError::new(prog.graph.output, msg));
            }
            dirs.push(d.clone());
        }
        for (prog, io) in programs.iter_mut().zip(ios.iter_mut()) {
            prog.commit(io)?;
        }
        self.mark_written();
        Ok(dirs)
    }

    /// One step that adds the directions to `params` in place (the update fused into the rule's
    /// kernels where it can be).
    pub fn step_apply(
        &mut self,
        step: u64,
        params: &mut [ArrayD<T>],
        inputs: &[Vec<ArrayD<T>>],
    ) -> Result<(), ExecError> {
        self.check_counts(params.len(), inputs.len())?;
        for (g, p) in self.graphs.iter().zip(params.iter()) {
            if g.shape(g.output) != p.shape() {
                let msg = format!("the direction has shape {:?}, the parameter {:?}", g.shape(g.output), p.shape());
                return Err(ExecError::new(g.output, msg));
            }
        }
        let graphs = &self.graphs;
        let programs = self.applying.get_or_insert_with(|| {
            graphs
                .iter()
                .map(|g| {
                    let (graph, applied) = with_update(g);
                    Program::new(graph, Vec::new(), g.state_writes.clone(), Some(applied), true)
                })
                .collect()
        });
        let mut ios: Vec<Io<T>> = params
            .iter_mut()
            .zip(inputs)
            .zip(self.states.iter_mut())
            .zip(&self.recorded)
            .enumerate()
            .map(|(k, (((p, x), s), r))| Io {
                inputs: x,
                recorded: Some(r),
                param: ParamRef::Unique(p),
                states: s,
                step,
                seed: single::graph_seed(self.seed, k),
            })
            .collect();
        run_group(programs, &mut ios, &self.sites, step)?;
        for (prog, io) in programs.iter_mut().zip(ios.iter_mut()) {
            prog.commit(io)?;
        }
        self.mark_written();
        Ok(())
    }

    fn check_counts(&self, params: usize, inputs: usize) -> Result<(), ExecError> {
        let n = self.graphs.len();
        if params != n || inputs != n {
            let at = self.graphs.first().map_or(0, |g| g.output);
            return Err(ExecError::new(at, format!("{n} graphs but {params} parameters and {inputs} input lists")));
        }
        Ok(())
    }

    fn mark_written(&mut self) {
        for (g, w) in self.graphs.iter().zip(self.written.iter_mut()) {
            g.state_writes.iter().for_each(|&(slot, _)| w[slot] = true);
        }
    }

    /// Supplies the values of graph `k`'s recorded nodes, as
    /// [`crate::interp::Interp::set_recorded`].
    pub fn set_recorded(&mut self, k: usize, recorded: Recorded<T>) -> Result<(), String> {
        let Some(g) = self.graphs.get(k) else {
            return Err(format!("no graph {k} ({} graphs)", self.graphs.len()));
        };
        recorded.check(g)?;
        self.recorded[k] = recorded;
        Ok(())
    }

    /// The current value of state slot `slot` of graph `k` (None before its first write).
    pub fn state(&self, k: usize, slot: usize) -> Option<&ArrayD<T>> {
        if *self.written.get(k)?.get(slot)? {
            self.states[k].get(slot)
        } else {
            None
        }
    }

    /// Sets state slot `slot` of graph `k` (restoring a checkpoint).
    pub fn set_state(&mut self, k: usize, slot: usize, value: ArrayD<T>) -> Result<(), String> {
        let Some(s) = self.graphs.get(k).and_then(|g| g.slots.get(slot)) else {
            return Err(format!("no state slot {slot} in graph {k}"));
        };
        if value.shape() != s.shape.as_slice() {
            return Err(format!("state {} has shape {:?}, the value {:?}", s.name, s.shape, value.shape()));
        }
        self.states[k][slot] = value.as_standard_layout().into_owned();
        self.written[k][slot] = true;
        Ok(())
    }

    /// How many parameters' last applied step accumulated the update into the product that
    /// computes it (GaLore's deprojection, any `alpha (a @ b)` direction): see `gemm_update`.
    pub fn updates_folded_into_products(&self) -> usize {
        self.applying.iter().flatten().filter(|p| p.folds_update_into_product()).count()
    }

    /// The fused schedules in use for each graph after the last step (for `optic explain` and
    /// tests), in the applying form when `applying`.
    pub fn schedules(&self, applying: bool) -> Vec<(&Graph, &crate::fuse::Schedule)> {
        let programs = if applying { &self.applying } else { &self.directing };
        programs.iter().flatten().filter_map(|p| p.schedule().map(|s| (&p.graph, s))).collect()
    }
}

/// `g` with the parameter update appended: a node `param + direction`, the parameter's new value.
pub fn with_update(g: &Graph) -> (Graph, NodeId) {
    let mut graph = g.clone();
    let shape = g.shape(g.output).to_vec();
    let param = match g.nodes.iter().position(|n| n.op == Op::Param) {
        Some(p) => p,
        None => graph.push(Op::Param, shape.clone()),
    };
    let applied = graph.push(Op::Binary(Binary::Add, param, g.output), shape);
    (graph, applied)
}

/// Evaluates one step of every graph of a rule application: group sums first, site by site
/// (each member's argument, summed in graph order), then every root.
fn run_group<T: Lane>(
    programs: &mut [Program<T>],
    ios: &mut [Io<T>],
    sites: &Sites,
    step: u64,
) -> Result<(), ExecError> {
    if sites.is_empty() {
        if let Some(cuts) = program_shares(programs, rayon::current_num_threads()) {
            return run_in_shares(programs, ios, &cuts, step);
        }
    }
    for p in programs.iter_mut() {
        p.begin(step)?;
    }
    for (site, members) in sites {
        let mut total: Option<T> = None;
        for (i, &(k, id)) in members.iter().enumerate() {
            if members[..i].iter().any(|&(k2, _)| k2 == k) {
                return Err(ExecError::new(id, format!("group site {site} appears twice in graph {k}")));
            }
            let Op::Group { arg, .. } = programs[k].graph.nodes[id].op else { unreachable!("sites hold groups") };
            programs[k].demand(&mut ios[k], arg)?;
            let v = programs[k].get(&ios[k], arg)?;
            if v.ndim() != 0 {
                let msg = format!("a group reduction needs a scalar, got shape {:?}", v.shape());
                return Err(ExecError::new(id, msg));
            }
            let x = v[IxDyn(&[])];
            total = Some(total.map_or(x, |t| t + x));
        }
        let total = total.expect("a site has at least one member");
        for &(k, id) in members {
            programs[k].set_group(id, total);
        }
    }
    // Parameters are independent once group sums are known. When each parameter's step is one
    // kernel, all of them run as one parallel region; otherwise many parameters run across the
    // pool (each on one thread), a few large ones one after the other with their kernels split.
    let mut jobs = Vec::with_capacity(programs.len());
    for (p, io) in programs.iter_mut().zip(ios.iter_mut()) {
        match p.single_kernel_job(io)? {
            Some(job) => jobs.push(job),
            None => break,
        }
    }
    let all_single = jobs.len() == programs.len();
    if all_single {
        // SAFETY: each job writes its own parameter's buffers, state slots and parameter, checked
        // and resolved by `single_kernel_job`; no job reads what another writes.
        unsafe { launch::run(&jobs) };
        drop(jobs);
        for p in programs.iter_mut() {
            p.single_kernel_ran();
        }
    } else {
        drop(jobs);
    }
    let elements: usize = programs.iter().map(|p| p.graph.shape(p.graph.output).iter().product::<usize>()).sum();
    // After the one region, what is left (host roots, reads) is too little for another fork.
    if !all_single && programs.len() > 1 && elements >= launch::PARALLEL_MIN && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        programs.par_iter_mut().zip(ios.par_iter_mut()).try_for_each(|(p, io)| p.demand_roots(io))?;
    } else {
        for (p, io) in programs.iter_mut().zip(ios.iter_mut()) {
            p.demand_roots(io)?;
        }
    }
    Ok(())
}

/// Where to cut many parameters into one contiguous run per worker, of about equal elements:
/// the end of each run but the last. None when the parameters are too few or too uneven for
/// that (one larger than a worker's share), or the work too small to fork for.
fn program_shares<T: Lane>(programs: &[Program<T>], workers: usize) -> Option<Vec<usize>> {
    let sizes: Vec<usize> = programs.iter().map(|p| p.graph.shape(p.graph.output).iter().product()).collect();
    let total: usize = sizes.iter().sum();
    let share = total.div_ceil(workers.max(1));
    if workers < 2 || programs.len() < 2 * workers || total < launch::PARALLEL_MIN || sizes.iter().any(|&n| n > share) {
        return None;
    }
    let mut cuts = Vec::with_capacity(workers - 1);
    let mut sum = 0;
    for (i, n) in sizes.iter().enumerate() {
        sum += n;
        if sum >= share * (cuts.len() + 1) && cuts.len() < workers - 1 && i + 1 < sizes.len() {
            cuts.push(i + 1);
        }
    }
    Some(cuts)
}

/// A contiguous run of parameters: their programs and what each reads and writes.
type Run<'p, 'io, T> = (&'p mut [Program<T>], &'p mut [Io<'io, T>]);

/// Many parameters without group sums: each worker takes one contiguous run of them and does
/// their whole step itself (host scalars, building and calling the kernels, the roots), so the
/// per-parameter host work is split between the workers as the kernels are. Each parameter's
/// step is computed exactly as on one thread. Returns the first error in parameter order.
fn run_in_shares<T: Lane>(
    programs: &mut [Program<T>],
    ios: &mut [Io<T>],
    cuts: &[usize],
    step: u64,
) -> Result<(), ExecError> {
    fn run_run<T: Lane>(programs: &mut [Program<T>], ios: &mut [Io<T>], step: u64) -> Result<(), ExecError> {
        for (p, io) in programs.iter_mut().zip(ios.iter_mut()) {
            p.begin(step)?;
            if let Some(job) = p.single_kernel_job(io)? {
                // SAFETY: the job writes only this parameter's buffers, state and parameter,
                // checked and resolved by `single_kernel_job`.
                unsafe { launch::run_here(std::slice::from_ref(&job)) };
                p.single_kernel_ran();
            }
            p.demand_roots(io)?;
        }
        Ok(())
    }
    let mut runs: Vec<Run<'_, '_, T>> = Vec::with_capacity(cuts.len() + 1);
    let (mut rest_p, mut rest_io) = (programs, ios);
    let mut at = 0;
    for &cut in cuts {
        let (p, rp) = rest_p.split_at_mut(cut - at);
        let (io, rio) = rest_io.split_at_mut(cut - at);
        runs.push((p, io));
        (rest_p, rest_io, at) = (rp, rio, cut);
    }
    runs.push((rest_p, rest_io));
    let mut results: Vec<Result<(), ExecError>> = runs.iter().map(|_| Ok(())).collect();
    rayon::scope(|s| {
        let mut pairs = runs.into_iter().zip(results.iter_mut());
        let first = pairs.next();
        for ((p, io), out) in pairs {
            s.spawn(move |_| *out = run_run(p, io, step));
        }
        if let Some(((p, io), out)) = first {
            *out = run_run(p, io, step);
        }
    });
    results.into_iter().collect()
}

/// A stateless graph evaluated at given nodes, again and again: the executor's
/// [`crate::interp::eval_nodes`] (a group node is its own argument; the graph reads no parameter).
pub struct GraphExec<T: Lane> {
    program: Program<T>,
    nodes: Vec<NodeId>,
}

impl<T: Lane> GraphExec<T> {
    /// Prepares `graph` to compute `nodes`.
    pub fn new(graph: Graph, nodes: Vec<NodeId>) -> Self {
        GraphExec { program: Program::new(graph, nodes.clone(), Vec::new(), None, false), nodes }
    }

    /// The values of the nodes, in the order given, at `step` with `inputs`, drawing with `seed`.
    pub fn run(&mut self, step: u64, inputs: &[ArrayD<T>], seed: u64) -> Result<Vec<ArrayD<T>>, ExecError> {
        // Empty arrays match no value's shape, so every value is copied and the buffers stay.
        let mut outs = Vec::new();
        self.run_into(step, inputs, seed, &mut outs)?;
        Ok(outs)
    }

    /// [`run`](Self::run) into `outs` (resized to the node count), reusing its arrays: a value the
    /// program computed into a buffer of its own is swapped with the array of the same shape at
    /// its position, which becomes the buffer the next step writes. A training loop that hands
    /// its outputs back each step thus moves its loss and gradients without copying them.
    pub fn run_into(
        &mut self,
        step: u64,
        inputs: &[ArrayD<T>],
        seed: u64,
        outs: &mut Vec<ArrayD<T>>,
    ) -> Result<(), ExecError> {
        let mut states: Vec<ArrayD<T>> =
            self.program.graph.slots.iter().map(|s| ArrayD::zeros(IxDyn(&s.shape))).collect();
        let mut io = Io { inputs, recorded: None, param: ParamRef::None, states: &mut states, step, seed };
        self.program.begin(step)?;
        self.program.demand_roots(&mut io)?;
        outs.resize_with(self.nodes.len(), || ArrayD::zeros(IxDyn(&[0])));
        let sched = self.program.schedule().expect("begun");
        let resolved: Vec<NodeId> = self.nodes.iter().map(|&n| sched.resolve(n)).collect();
        for (i, &n) in resolved.iter().enumerate() {
            // A node asked for twice is taken once, then copied from where it went.
            match resolved[..i].iter().position(|&m| m == n) {
                Some(j) => outs[i] = outs[j].clone(),
                None => self.program.take_into(&io, n, &mut outs[i])?,
            }
        }
        Ok(())
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.program.graph
    }

    /// The fused schedule of the last run.
    pub fn schedule(&self) -> Option<&crate::fuse::Schedule> {
        self.program.schedule()
    }
}

/// The fused schedule of `graph` computing `roots` at `step` (which decides the selects that
/// depend on the step alone), with its kernels compiled: what `optic explain` shows. Returned
/// with the graph it schedules: `graph` after the executor's algebra (`fuse::outer_products`,
/// `fuse::reciprocals`), whose node ids are `graph`'s.
pub fn schedule_at<T: Lane>(
    graph: &Graph,
    roots: &[NodeId],
    step: u64,
) -> Result<(Graph, crate::fuse::Schedule), ExecError> {
    let mut program = Program::<T>::new(graph.clone(), roots.to_vec(), Vec::new(), None, false);
    program.begin(step)?;
    let sched = program.schedule().expect("begun").clone();
    Ok((program.graph, sched))
}

/// The fused schedule of a rule graph at `step` in its applying form (the parameter update
/// fused in): the extended graph, after the executor's algebra as in [`schedule_at`], and its
/// schedule.
pub fn rule_schedule_at<T: Lane>(graph: &Graph, step: u64) -> Result<RuleSchedule, ExecError> {
    let (extended, applied) = with_update(graph);
    let mut program = Program::<T>::new(extended, Vec::new(), graph.state_writes.clone(), Some(applied), true);
    program.begin(step)?;
    let sched = program.schedule().expect("begun").clone();
    let folded = program.folded_update();
    Ok(RuleSchedule { graph: program.graph, sched, folded })
}

/// What [`rule_schedule_at`] returns.
pub struct RuleSchedule {
    /// The rule's graph with the update appended, after the executor's algebra.
    pub graph: Graph,
    /// Its fused schedule.
    pub sched: crate::fuse::Schedule,
    /// When the update is accumulated into the product that computes it: what runs instead of
    /// the update's kernel, in words.
    pub folded: Option<String>,
}
