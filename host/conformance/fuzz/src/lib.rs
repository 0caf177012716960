//! Helpers shared by the conformance fuzz targets: a printer that writes a parsed expression back
//! as script text (the library has none: scripts are only read), and the variables a target
//! evaluates against.
//!
//! The printer is the fuzz targets' own oracle, not a second implementation of the format: the
//! property checked is that printing, parsing the print and printing again gives the same text,
//! and that both expressions evaluate to the same bytes.

use std::collections::BTreeSet;
use std::fmt::Write;

use simkit_conformance::expr::{Arg, Expr, NumTerm, Term, Vars, WordArg};
use simkit_conformance::pattern::{DataItem, Expectation};
use simkit_conformance::script::{Action, Script};

/// `expr` as script text: hex in upper case, strings as hex (the empty string as `""`),
/// arguments separated by `, `.
pub fn print_expr(expr: &Expr) -> String {
    let mut out = String::new();
    for (i, t) in expr.terms.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match t {
            Term::Bytes(b) if b.is_empty() => out.push_str("\"\""),
            Term::Bytes(b) => {
                for x in b {
                    let _ = write!(out, "{x:02X}");
                }
            }
            Term::Var(name, _) => {
                out.push('$');
                out.push_str(name);
            }
            Term::Call(c) => {
                out.push_str(c.func.name());
                out.push('(');
                let mut first = true;
                for a in &c.args {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    out.push_str(&print_arg(a));
                }
                for (k, a) in &c.named {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    out.push_str(k);
                    out.push_str(" = ");
                    out.push_str(&print_arg(a));
                }
                out.push(')');
            }
        }
    }
    out
}

fn print_arg(a: &Arg) -> String {
    match a {
        Arg::Bytes(e, _) => print_expr(e),
        Arg::Word(WordArg::Lit(w), _) => w.clone(),
        Arg::Word(WordArg::Var(v), _) => format!("${v}"),
        Arg::Num(terms, _) => {
            let mut out = String::new();
            for (i, (sign, t)) in terms.iter().enumerate() {
                match (i, *sign < 0) {
                    (0, true) => out.push('-'),
                    (0, false) => {}
                    (_, true) => out.push_str(" - "),
                    (_, false) => out.push_str(" + "),
                }
                match t {
                    NumTerm::Lit(v) => {
                        let _ = write!(out, "{v}");
                    }
                    NumTerm::Var(v) => {
                        out.push('$');
                        out.push_str(v);
                    }
                }
            }
            out
        }
    }
}

/// Every variable name `expr` reads, nested arguments included.
pub fn var_names(expr: &Expr, out: &mut BTreeSet<String>) {
    for t in &expr.terms {
        match t {
            Term::Bytes(_) => {}
            Term::Var(name, _) => {
                out.insert(name.clone());
            }
            Term::Call(c) => {
                for a in c.args.iter().chain(c.named.iter().map(|(_, a)| a)) {
                    match a {
                        Arg::Bytes(e, _) => var_names(e, out),
                        Arg::Word(WordArg::Var(v), _) => {
                            out.insert(v.clone());
                        }
                        Arg::Word(WordArg::Lit(_), _) => {}
                        Arg::Num(terms, _) => {
                            for (_, t) in terms {
                                if let NumTerm::Var(v) = t {
                                    out.insert(v.clone());
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Every variable name an expectation reads or captures.
pub fn pattern_names(e: &Expectation, out: &mut BTreeSet<String>) {
    for item in &e.data {
        match item {
            DataItem::Var(v) | DataItem::Capture(v, _) => {
                out.insert(v.clone());
            }
            DataItem::Bytes(_) | DataItem::Star => {}
        }
    }
}

/// A value for a variable the input does not set, chosen by its name the way the suites name
/// them, so that builders and MACs get arguments of a usable size: profiles, module ids, keys,
/// numbers.
pub fn default_value(name: &str) -> Vec<u8> {
    match name {
        "profile" | "alg" | "p" => b"aes-cmac".to_vec(),
        "id" | "module" => vec![1, 2, 3, 4, 5, 6, 7, 8],
        n if n.starts_with('k') || n.contains("master") || n.contains("key") => {
            (0x40..0x50).collect()
        }
        n if n.contains("tag") => vec![0xA5; 8],
        n if n.len() <= 2 => vec![0, 0, 0, u8::try_from(n.len()).unwrap_or(1)],
        _ => Vec::new(),
    }
}

/// Variables for a whole script, as a run would see them before any response: every `.let` and
/// `.default` in order (`.default` only if unset; a value that does not evaluate leaves the
/// variable unset), then a [`default_value`] for every other name read anywhere.
pub fn script_vars(script: &Script) -> Vars {
    let mut vars = Vars::new();
    let mut names = BTreeSet::new();
    for item in &script.items {
        match &item.action {
            Action::Let {
                name,
                value,
                default,
            } => {
                var_names(value, &mut names);
                if *default && vars.contains_key(name) {
                    continue;
                }
                if let Ok(v) = value.eval(&vars) {
                    vars.insert(name.clone(), v);
                }
            }
            Action::Step { command, expect } => {
                var_names(command, &mut names);
                pattern_names(expect, &mut names);
            }
            Action::Select { aid, .. } => var_names(aid, &mut names),
            _ => {}
        }
    }
    for n in names {
        vars.entry(n.clone()).or_insert_with(|| default_value(&n));
    }
    vars
}
