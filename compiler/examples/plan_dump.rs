//! Lowers every experiment of a file and prints its plan's shape (a debugging aid).
fn main() {
    let path = std::env::args().nth(1).expect("a file");
    optic_compiler::on_big_stack(move || {
        let checked = optic_compiler::check::check_paths(&[std::path::PathBuf::from(&path)]);
        for d in &checked.diagnostics {
            eprintln!("{:?}", miette::Report::new(d.clone()));
        }
        for name in optic_compiler::lower::experiment::experiments(&checked.program) {
            match optic_compiler::lower::experiment::lower_experiment(&checked.program, &name, &[]) {
                Ok((plan, sweep)) => {
                    println!("experiment {name}: seed {} steps {}", plan.seed, plan.steps);
                    for (t, tr) in plan.tensors.iter().zip(&plan.trained) {
                        println!("  tensor {} {:?} {:?} trained={tr}", t.path, t.shape, t.kind);
                    }
                    println!(
                        "  init nodes {}, train nodes {}, fresh nodes {}",
                        plan.init.nodes.len(),
                        plan.train.nodes.len(),
                        plan.fresh.nodes.len()
                    );
                    for d in &plan.data {
                        println!("  data {} {:?}", d.name, d.batch_shape);
                    }
                    for m in &plan.metrics {
                        println!("  metrics {:?}: {:?}", m.split, m.entries.iter().map(|e| &e.0).collect::<Vec<_>>());
                    }
                    for g in &plan.groups {
                        println!("  group {} {:?}", g.rule, g.tensors);
                    }
                    println!("  sweep {:?}", sweep.axes);
                }
                Err(d) => eprintln!("{:?}", miette::Report::new(*d)),
            }
        }
    })
}
