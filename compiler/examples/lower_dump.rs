//! Prints the IR of a rule expression for a parameter shape: `lower_dump 'adam(lr = 0.01)' 8,6`.
fn main() {
    let mut args = std::env::args().skip(1);
    let rule = args.next().expect("a rule expression");
    let shape: Vec<usize> = args
        .next()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("a size"))
        .collect();
    match optic_compiler::lower::compile_rule(&rule, &[shape]) {
        Ok(graphs) => print!("{}", optic_compiler::ir::print_graph(&graphs[0])),
        Err(ds) => ds.iter().for_each(|d| eprintln!("{}", d.render_plain())),
    }
}
