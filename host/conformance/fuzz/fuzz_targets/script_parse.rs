//! Fuzz target: the `.apdu` script parser (`simkit_conformance::script`, with `source` for
//! logical lines and comments), and evaluating what it parsed.
//!
//! - No text panics the parser; parsing is deterministic, errors included.
//! - Every item is located inside the text (line 1..=number of lines).
//! - Each step's command and each `.select` AID, with the variables a run would have before any
//!   response (`.let`s in order, defaults for the rest), evaluates deterministically and without
//!   a panic; printed as text it parses and evaluates the same.
//! - Each step's expectation, written back as text, parses to the same expectation.

#![no_main]

use libfuzzer_sys::fuzz_target;
use simkit_conformance::Script;
use simkit_conformance::expr::{Expr, Vars, parse_expr_line};
use simkit_conformance::pattern::Expectation;
use simkit_conformance::script::Action;
use simkit_conformance::source::LogicalLine;
use simkit_conformance_fuzz::{print_expr, script_vars};

fn check_expr(expr: &Expr, vars: &Vars) {
    let value = expr.eval(vars);
    assert_eq!(value, expr.eval(vars), "evaluation is deterministic");
    let printed = print_expr(expr);
    let again = parse_expr_line(&LogicalLine::single("p.apdu", 1, &printed))
        .unwrap_or_else(|e| panic!("{printed:?} does not parse: {e}"));
    assert_eq!(print_expr(&again), printed);
    assert_eq!(value.ok(), again.eval(vars).ok(), "{printed:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Script::parse_str("f.apdu", text);
    assert_eq!(
        parsed,
        Script::parse_str("f.apdu", text),
        "parsing is deterministic"
    );
    let lines = text.lines().count();
    let script = match parsed {
        Ok(s) => s,
        Err(e) => {
            assert!(e.loc.line <= lines.max(1), "{e} is past the last line");
            return;
        }
    };
    let _ = (script.name(), script.requires());
    let vars = script_vars(&script);
    for item in &script.items {
        assert!((1..=lines).contains(&item.loc.line), "{}", item.loc);
        match &item.action {
            Action::Step { command, expect } => {
                assert!(!command.terms.is_empty());
                check_expr(command, &vars);
                let written = expect.text();
                let again = Expectation::parse(&LogicalLine::single("p.apdu", 1, &written), 0)
                    .unwrap_or_else(|e| panic!("{written:?} does not parse: {e}"));
                assert_eq!(
                    (&again.data, &again.data_text, &again.sw),
                    (&expect.data, &expect.data_text, &expect.sw)
                );
            }
            Action::Select { aid, .. } => check_expr(aid, &vars),
            Action::Let { value, .. } => check_expr(value, &vars),
            _ => {}
        }
    }
});
