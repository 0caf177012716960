//! Fuzz target: the expression parser and evaluator (`simkit_conformance::expr`).
//!
//! - No text panics the parser, and no parsed expression panics the evaluator.
//! - Parsing and evaluating are deterministic (the same text gives the same expression, errors
//!   included; the same variables give the same bytes or the same error).
//! - Round trip: a parsed expression printed as script text parses again, prints the same text,
//!   and evaluates to the same bytes (or fails too).

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use simkit_conformance::expr::{Vars, parse_expr_line};
use simkit_conformance::source::LogicalLine;
use simkit_conformance_fuzz::{default_value, print_expr, var_names};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let line = LogicalLine::single("f.apdu", 1, text);
    let parsed = parse_expr_line(&line);
    assert_eq!(parsed, parse_expr_line(&line), "parsing is deterministic");
    let Ok(expr) = parsed else {
        return;
    };

    let mut names = BTreeSet::new();
    var_names(&expr, &mut names);
    let vars: Vars = names
        .iter()
        .map(|n| (n.clone(), default_value(n)))
        .collect();
    let value = expr.eval(&vars);
    assert_eq!(value, expr.eval(&vars), "evaluation is deterministic");
    // Unset variables are an error, never a panic or empty bytes.
    if !names.is_empty() {
        assert!(
            expr.eval(&Vars::new()).is_err(),
            "{text:?} read no variable"
        );
    }

    let printed = print_expr(&expr);
    let again = parse_expr_line(&LogicalLine::single("p.apdu", 1, &printed))
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?} does not parse: {e}"));
    assert_eq!(print_expr(&again), printed, "from {text:?}");
    let value_again = again.eval(&vars);
    assert_eq!(
        value.ok(),
        value_again.ok(),
        "{text:?} printed as {printed:?}"
    );
});
