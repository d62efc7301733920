//! Lowering tests: every standard-library rule lowers to IR for a matrix and a vector, and the IR
//! of a few rules has the structure their semantics require (pinned by snapshots).

use optic_compiler::ir::{print_graph, Op};
use optic_compiler::lower::compile_rule;

/// Rules of the standard library whose hyperparameters all have defaults.
fn default_rules() -> Vec<String> {
    use optic_compiler::syntax::ast::{DeclKind, Item};
    let mut names = Vec::new();
    for f in optic_compiler::stdlib::files() {
        let ast = f.ast.as_ref().expect("the stdlib parses");
        for item in &ast.items {
            if let Item::Decl(d) = item {
                let defaults = d.params.iter().flatten().all(|p| p.default.is_some() || p.variadic);
                if d.kind == DeclKind::Rule && defaults {
                    names.push(d.name.name.clone());
                }
            }
        }
    }
    names.sort();
    names
}

#[test]
fn every_default_stdlib_rule_lowers_for_matrices_and_vectors() {
    let rules = default_rules();
    assert!(rules.len() > 30, "found only {rules:?}");
    // Rules that only make sense for matrices.
    let matrix_only = [
        "muon",
        "normuon",
        "adamuon",
        "adafactor_factored",
        "shampoo_matrix",
        "soap_matrix",
        "psgd_kron_matrix",
        "cosmos_matrix",
    ];
    for r in &rules {
        let shapes: Vec<Vec<usize>> =
            if matrix_only.contains(&r.as_str()) { vec![vec![8, 6]] } else { vec![vec![8, 6], vec![6]] };
        let graphs = compile_rule(&format!("{r}()"), &shapes).unwrap_or_else(|ds| {
            panic!("{r} does not lower:\n{}", ds.iter().map(|d| d.render_plain()).collect::<String>())
        });
        for (g, s) in graphs.iter().zip(&shapes) {
            assert_eq!(g.shape(g.output), &s[..], "{r}: the direction has the parameter's shape");
        }
    }
}

#[test]
fn adam_ir() {
    let g = compile_rule("adam(lr = 0.01)", &[vec![8, 6]]).expect("lowers");
    insta::assert_snapshot!(print_graph(&g[0]));
}

#[test]
fn partition_routes_by_rank() {
    let gs = compile_rule("partition(matrices = sign_sgd(lr = 0.1), vectors = sgd(lr = 0.1))", &[vec![4, 3], vec![3]])
        .expect("lowers");
    assert!(gs[0].slots.is_empty() || gs[0].slots.iter().all(|s| !s.name.contains("sgd/")), "{:?}", gs[0].slots);
    let has_sign = |g: &optic_compiler::ir::Graph| {
        g.nodes.iter().any(|n| matches!(n.op, Op::Unary(optic_compiler::ir::Unary::Sign, _)))
    };
    assert!(has_sign(&gs[0]) && !has_sign(&gs[1]));
}

#[test]
fn group_reductions_match_across_parameters() {
    let gs = compile_rule("clip_global_norm(1.0)", &[vec![4, 3], vec![3]]).expect("lowers");
    let sites = |g: &optic_compiler::ir::Graph| -> Vec<u32> {
        g.nodes.iter().filter_map(|n| if let Op::Group { site, .. } = n.op { Some(site) } else { None }).collect()
    };
    assert_eq!(sites(&gs[0]), vec![0]);
    assert_eq!(sites(&gs[0]), sites(&gs[1]));
}

#[test]
fn nested_rules_get_their_own_state() {
    let g = compile_rule("chain(adam(lr = 0.1), adam(lr = 0.2))", &[vec![3]]).expect("lowers");
    let names: Vec<&str> = g[0].slots.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "0:chain/0:adam/m",
            "0:chain/0:adam/v",
            "0:chain/0:adam/v_max",
            "0:chain/1:adam/m",
            "0:chain/1:adam/v",
            "0:chain/1:adam/v_max"
        ]
    );
}

#[test]
fn lowering_errors_are_diagnostics() {
    let err = compile_rule("adam(lr = 0.01, betta1 = 0.9)", &[vec![3]]).expect_err("bad keyword");
    assert_eq!(err[0].code.0, "E303");
    let err = compile_rule("nosuchrule()", &[vec![3]]).expect_err("unknown");
    assert_eq!(err[0].code.0, "E201");
}

#[test]
fn routing_by_path_needs_named_parameters() {
    let err =
        compile_rule(r#"route(paths = ["b"], then = sgd(), otherwise = adam())"#, &[vec![3]]).expect_err("no names");
    assert_eq!(err[0].code.0, "E901");
    let named = [("model.w".to_string(), vec![4, 3]), ("model.b".to_string(), vec![3])];
    let gs = optic_compiler::lower::compile_rule_named(None, r#"mask(sign_sgd(lr = 1), paths = ["*.w"])"#, &named)
        .expect("lowers");
    let has_sign = |g: &optic_compiler::ir::Graph| {
        g.nodes.iter().any(|n| matches!(n.op, Op::Unary(optic_compiler::ir::Unary::Sign, _)))
    };
    assert!(has_sign(&gs[0]) && !has_sign(&gs[1]));
    assert!(matches!(gs[1].nodes[gs[1].output].op, Op::Input(0)), "unmasked parameters pass their input through");
}
