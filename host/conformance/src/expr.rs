//! Expressions that build bytes: hex, `$variables`, `"text"` and function calls, parsed from a
//! logical line and evaluated against the variables of a running test.
//!
//! The functions' cryptography and message layouts come from `simkit-core` (MACs, key
//! derivation, the credit-module message builders, the PERSONALISE TLV); this module only reads
//! arguments and calls them. It must never compute a MAC itself.

use std::collections::HashMap;

use simkit_core::credit::commands::{InitialCounters, PersonalisationData};
use simkit_core::credit::message::{
    CompletionAck, GrantStatus, LimitUpdate, ProvisionalAck, ReloadGrant, ReloadRequest,
};
use simkit_core::credit::{DeclineReason, Limits, ModuleId, Tag};
use simkit_core::crypto::{Profile, SecretKey, derive_module_keys, profile_tag};

use crate::source::{Loc, LogicalLine, SyntaxError};

/// Variables of a running test: name → bytes.
pub type Vars = HashMap<String, Vec<u8>>;

/// A parsed expression: terms whose bytes are concatenated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// The terms, in order.
    pub terms: Vec<Term>,
}

/// One term of an [`Expr`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// Literal bytes (hex or a string).
    Bytes(Vec<u8>),
    /// `$name`.
    Var(String, Loc),
    /// `name(args)`.
    Call(Call),
}

/// A function call with its arguments parsed by the function's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The function.
    pub func: Func,
    /// Where the call starts.
    pub loc: Loc,
    /// Positional arguments.
    pub args: Vec<Arg>,
    /// Named arguments.
    pub named: Vec<(String, Arg)>,
}

/// An argument, typed by the parameter it fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Bytes: a full expression.
    Bytes(Expr, Loc),
    /// A number: `term (+|- term)*`, terms decimal, `0x..` or `$var`.
    Num(Vec<(i8, NumTerm)>, Loc),
    /// A name: a bare word or a `$var` holding it as text.
    Word(WordArg, Loc),
}

/// A term of a number argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumTerm {
    /// A literal.
    Lit(i128),
    /// `$name`, read big-endian unsigned.
    Var(String),
}

/// A name argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordArg {
    /// A bare word.
    Lit(String),
    /// `$name` holding UTF-8 text.
    Var(String),
}

/// The functions an expression may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `u8(n)`.
    U8,
    /// `u16(n)`.
    U16,
    /// `u32(n)`.
    U32,
    /// `i32(n)`.
    I32,
    /// `len(expr)`.
    Len,
    /// `len16(expr)`.
    Len16,
    /// `sha256(expr)`.
    Sha256,
    /// `xor(a, b)`.
    Xor,
    /// `slice(expr, start, len)`.
    Slice,
    /// `mac(profile, key, data)`.
    Mac,
    /// `kdf(profile, master, module_id[, key=req|grant])`.
    Kdf,
    /// `request(...)`.
    Request,
    /// `grant(...)`.
    Grant,
    /// `provisional(...)`.
    Provisional,
    /// `completion(...)`.
    Completion,
    /// `limit_update(...)`.
    LimitUpdate,
    /// `personalise(...)`.
    Personalise,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bytes,
    Num,
    Word,
}

const BUILDER_COMMON: &[(&str, Kind)] = &[
    ("profile", Kind::Word),
    ("module", Kind::Bytes),
    ("key", Kind::Bytes),
    ("master", Kind::Bytes),
    ("tag", Kind::Bytes),
];

impl Func {
    const ALL: [(&'static str, Func); 17] = [
        ("u8", Func::U8),
        ("u16", Func::U16),
        ("u32", Func::U32),
        ("i32", Func::I32),
        ("len", Func::Len),
        ("len16", Func::Len16),
        ("sha256", Func::Sha256),
        ("xor", Func::Xor),
        ("slice", Func::Slice),
        ("mac", Func::Mac),
        ("kdf", Func::Kdf),
        ("request", Func::Request),
        ("grant", Func::Grant),
        ("provisional", Func::Provisional),
        ("completion", Func::Completion),
        ("limit_update", Func::LimitUpdate),
        ("personalise", Func::Personalise),
    ];

    fn from_name(name: &str) -> Option<Func> {
        Func::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The function's name in scripts.
    pub fn name(self) -> &'static str {
        Func::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    fn positional(self) -> &'static [Kind] {
        match self {
            Func::U8 | Func::U16 | Func::U32 | Func::I32 => &[Kind::Num],
            Func::Len | Func::Len16 | Func::Sha256 => &[Kind::Bytes],
            Func::Xor => &[Kind::Bytes, Kind::Bytes],
            Func::Slice => &[Kind::Bytes, Kind::Num, Kind::Num],
            Func::Mac | Func::Kdf => &[Kind::Word, Kind::Bytes, Kind::Bytes],
            _ => &[],
        }
    }

    fn named(self) -> &'static [(&'static str, Kind)] {
        match self {
            Func::Kdf => &[("key", Kind::Word)],
            Func::Request => &[
                ("n", Kind::Num),
                ("amount", Kind::Num),
                ("balance", Kind::Num),
            ],
            Func::Grant => &[
                ("s", Kind::Num),
                ("status", Kind::Word),
                ("reason", Kind::Num),
                ("amount", Kind::Num),
                ("req_tag", Kind::Bytes),
            ],
            Func::Provisional => &[("s", Kind::Num), ("req_tag", Kind::Bytes)],
            Func::Completion => &[
                ("n", Kind::Num),
                ("declined", Kind::Num),
                ("amount", Kind::Num),
                ("balance", Kind::Num),
                ("grant_tag", Kind::Bytes),
            ],
            Func::LimitUpdate => &[
                ("seq", Kind::Num),
                ("min", Kind::Num),
                ("max", Kind::Num),
                ("upper", Kind::Num),
                ("credit_line", Kind::Num),
            ],
            Func::Personalise => &[
                ("profile", Kind::Word),
                ("module", Kind::Bytes),
                ("master", Kind::Bytes),
                ("k_req", Kind::Bytes),
                ("k_grant", Kind::Bytes),
                ("min", Kind::Num),
                ("max", Kind::Num),
                ("upper", Kind::Num),
                ("credit_line", Kind::Num),
                ("balance", Kind::Num),
                ("n", Kind::Num),
                ("threshold", Kind::Num),
                ("server", Kind::Bytes),
            ],
            _ => &[],
        }
    }

    fn is_builder(self) -> bool {
        matches!(
            self,
            Func::Request | Func::Grant | Func::Provisional | Func::Completion | Func::LimitUpdate
        )
    }

    fn named_kind(self, name: &str) -> Option<Kind> {
        let own = self
            .named()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k);
        own.or_else(|| {
            self.is_builder()
                .then(|| {
                    BUILDER_COMMON
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, k)| *k)
                })
                .flatten()
        })
    }

    fn named_list(self) -> String {
        let mut names: Vec<&str> = self.named().iter().map(|(n, _)| *n).collect();
        if self.is_builder() {
            names.extend(BUILDER_COMMON.iter().map(|(n, _)| *n));
        }
        names.join(", ")
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// A cursor over a range of a logical line.
struct Cur<'a> {
    line: &'a LogicalLine,
    s: &'a str,
    pos: usize,
    end: usize,
}

impl<'a> Cur<'a> {
    fn peek(&self) -> Option<char> {
        if self.pos >= self.end {
            return None;
        }
        self.s
            .get(self.pos..self.end)
            .and_then(|r| r.chars().next())
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }
    fn err(&self, at: usize, msg: impl Into<String>) -> SyntaxError {
        SyntaxError::new(self.line.loc(at), msg)
    }
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.bump();
        }
        self.s.get(start..self.pos).unwrap_or("")
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Parses `line.text[start..end]` as an expression. An empty range is an empty expression.
///
/// # Errors
/// The first syntax error, located.
pub fn parse_expr(line: &LogicalLine, start: usize, end: usize) -> Result<Expr, SyntaxError> {
    let mut cur = Cur {
        line,
        s: &line.text,
        pos: start,
        end: end.min(line.text.len()),
    };
    let mut terms = Vec::new();
    loop {
        cur.skip_ws();
        let at = cur.pos;
        let Some(c) = cur.peek() else { break };
        if c == '$' {
            cur.bump();
            let name = cur.take_while(is_ident);
            if name.is_empty() || !name.starts_with(is_ident_start) {
                return Err(cur.err(at, "`$` must be followed by a variable name"));
            }
            terms.push(Term::Var(name.to_owned(), line.loc(at)));
        } else if c == '"' {
            terms.push(Term::Bytes(parse_string(&mut cur)?));
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let word = cur.take_while(is_ident);
            if cur.peek() == Some('(') {
                terms.push(Term::Call(parse_call(&mut cur, word, at)?));
            } else {
                terms.push(Term::Bytes(
                    parse_hex_group(word).map_err(|m| cur.err(at, m))?,
                ));
            }
        } else {
            return Err(cur.err(at, format!("unexpected character {c:?} in an expression")));
        }
    }
    Ok(Expr { terms })
}

/// Parses a whole logical line as an expression (for `--set` values and profile vars).
///
/// # Errors
/// The first syntax error.
pub fn parse_expr_line(line: &LogicalLine) -> Result<Expr, SyntaxError> {
    parse_expr(line, 0, line.text.len())
}

fn parse_hex_group(word: &str) -> Result<Vec<u8>, String> {
    if let Some(bad) = word.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "{word:?} is not hex (character {bad:?}); a function call needs `(` right after its name"
        ));
    }
    if word.len() % 2 != 0 {
        return Err(format!("odd number of hex digits in {word:?}"));
    }
    hex::decode(word).map_err(|e| format!("{word:?} is not hex: {e}"))
}

fn parse_string(cur: &mut Cur<'_>) -> Result<Vec<u8>, SyntaxError> {
    let at = cur.pos;
    cur.bump(); // opening quote
    let mut out = String::new();
    loop {
        match cur.bump() {
            None => return Err(cur.err(at, "string is not closed (missing `\"`)")),
            Some('"') => return Ok(out.into_bytes()),
            Some('\\') => match cur.bump() {
                Some(c @ ('"' | '\\')) => out.push(c),
                Some('n') => out.push('\n'),
                other => {
                    return Err(cur.err(
                        at,
                        format!(
                            "unknown escape `\\{}` in a string (use \\\" \\\\ or \\n)",
                            other.map(String::from).unwrap_or_default()
                        ),
                    ));
                }
            },
            Some(c) => out.push(c),
        }
    }
}

/// Splits the argument list after `(` at top-level commas; returns the ranges and moves past `)`.
fn split_args(cur: &mut Cur<'_>, open_at: usize) -> Result<Vec<(usize, usize)>, SyntaxError> {
    cur.bump(); // '('
    let mut depth = 0usize;
    let mut start = cur.pos;
    let mut parts = Vec::new();
    loop {
        let here = cur.pos;
        match cur.peek() {
            None => return Err(cur.err(open_at, "`(` is not closed (missing `)`)")),
            Some('"') => {
                parse_string(cur)?;
            }
            Some('(') => {
                depth += 1;
                cur.bump();
            }
            Some(')') if depth == 0 => {
                parts.push((start, here));
                cur.bump();
                break;
            }
            Some(')') => {
                depth -= 1;
                cur.bump();
            }
            Some(',') if depth == 0 => {
                parts.push((start, here));
                cur.bump();
                start = cur.pos;
            }
            Some(_) => {
                cur.bump();
            }
        }
    }
    // `f()` has no arguments, not one empty one.
    if parts.len() == 1
        && parts
            .first()
            .and_then(|&(a, b)| cur.s.get(a..b))
            .is_some_and(|t| t.trim().is_empty())
    {
        parts.clear();
    }
    Ok(parts)
}

fn parse_call(cur: &mut Cur<'_>, name: &str, at: usize) -> Result<Call, SyntaxError> {
    let Some(func) = Func::from_name(name) else {
        let names: Vec<&str> = Func::ALL.iter().map(|(n, _)| *n).collect();
        return Err(cur.err(
            at,
            format!("unknown function {name:?}; known: {}", names.join(", ")),
        ));
    };
    let open = cur.pos;
    let parts = split_args(cur, open)?;
    let line = cur.line;
    let mut args = Vec::new();
    let mut named: Vec<(String, Arg)> = Vec::new();
    for (a, b) in parts {
        let text = line.text.get(a..b).unwrap_or("");
        let lead = text.len() - text.trim_start().len();
        let a = a + lead;
        let text = text.trim();
        if text.is_empty() {
            return Err(SyntaxError::new(
                line.loc(a),
                format!("empty argument in {name}(...)"),
            ));
        }
        // `word = value` is a named argument.
        let ident_len = text
            .char_indices()
            .find(|&(_, c)| !is_ident(c))
            .map(|(i, _)| i)
            .unwrap_or(text.len());
        let rest = text.get(ident_len..).unwrap_or("").trim_start();
        if ident_len > 0 && rest.starts_with('=') {
            let key = text.get(..ident_len).unwrap_or("");
            let Some(kind) = func.named_kind(key) else {
                let list = func.named_list();
                return Err(SyntaxError::new(
                    line.loc(a),
                    if list.is_empty() {
                        format!("{name}(...) takes no named argument, got {key:?}")
                    } else {
                        format!("{name}(...) has no argument {key:?}; it takes {list}")
                    },
                ));
            };
            if named.iter().any(|(k, _)| k == key) {
                return Err(SyntaxError::new(
                    line.loc(a),
                    format!("argument {key:?} given twice in {name}(...)"),
                ));
            }
            let eq = a + ident_len + (text.len() - ident_len - rest.len());
            let value_start = eq + 1;
            named.push((key.to_owned(), parse_arg(line, kind, value_start, b)?));
        } else {
            if !named.is_empty() {
                return Err(SyntaxError::new(
                    line.loc(a),
                    format!("positional argument after a named one in {name}(...)"),
                ));
            }
            let kinds = func.positional();
            let Some(&kind) = kinds.get(args.len()) else {
                return Err(SyntaxError::new(
                    line.loc(a),
                    if kinds.is_empty() {
                        format!(
                            "{name}(...) takes only named arguments ({})",
                            func.named_list()
                        )
                    } else {
                        format!(
                            "{name}(...) takes {} positional argument(s), got more",
                            kinds.len()
                        )
                    },
                ));
            };
            args.push(parse_arg(line, kind, a, b)?);
        }
    }
    let want = func.positional().len();
    if args.len() != want {
        return Err(SyntaxError::new(
            line.loc(at),
            format!(
                "{name}(...) takes {want} positional argument(s), got {}",
                args.len()
            ),
        ));
    }
    Ok(Call {
        func,
        loc: line.loc(at),
        args,
        named,
    })
}

fn parse_arg(line: &LogicalLine, kind: Kind, a: usize, b: usize) -> Result<Arg, SyntaxError> {
    let text = line.text.get(a..b).unwrap_or("");
    let lead = text.len() - text.trim_start().len();
    let a = a + lead;
    let text = text.trim();
    let loc = line.loc(a);
    if text.is_empty() {
        return Err(SyntaxError::new(loc, "an argument value is missing"));
    }
    match kind {
        Kind::Bytes => Ok(Arg::Bytes(parse_expr(line, a, b)?, loc)),
        Kind::Word => {
            if let Some(v) = text.strip_prefix('$') {
                if v.is_empty() || !v.starts_with(is_ident_start) || !v.chars().all(is_ident) {
                    return Err(SyntaxError::new(loc, format!("{text:?} is not a variable")));
                }
                Ok(Arg::Word(WordArg::Var(v.to_owned()), loc))
            } else if text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                Ok(Arg::Word(WordArg::Lit(text.to_owned()), loc))
            } else {
                Err(SyntaxError::new(
                    loc,
                    format!("expected a name (like aes-cmac) or a $variable, got {text:?}"),
                ))
            }
        }
        Kind::Num => Ok(Arg::Num(parse_num(line, a, text)?, loc)),
    }
}

fn parse_num(line: &LogicalLine, a: usize, text: &str) -> Result<Vec<(i8, NumTerm)>, SyntaxError> {
    let mut out = Vec::new();
    let mut sign: i8 = 1;
    let mut expect_term = true;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        let c = char::from(*bytes.get(i).unwrap_or(&b' '));
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if expect_term {
            if c == '-' && out.is_empty() {
                sign = -sign;
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len()
                && bytes
                    .get(i)
                    .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'$')
            {
                i += 1;
            }
            let tok = text.get(start..i).unwrap_or("");
            let term = if let Some(v) = tok.strip_prefix('$') {
                if v.is_empty() || !v.starts_with(is_ident_start) || !v.chars().all(is_ident) {
                    return Err(SyntaxError::new(
                        line.loc(a + start),
                        format!("{tok:?} is not a variable"),
                    ));
                }
                NumTerm::Var(v.to_owned())
            } else if let Some(h) = tok.strip_prefix("0x").or_else(|| tok.strip_prefix("0X")) {
                NumTerm::Lit(i128::from(u64::from_str_radix(h, 16).map_err(|_| {
                    SyntaxError::new(line.loc(a + start), format!("{tok:?} is not a hex number"))
                })?))
            } else {
                NumTerm::Lit(i128::from(tok.parse::<u64>().map_err(|_| {
                    SyntaxError::new(
                        line.loc(a + start),
                        format!(
                            "expected a number (decimal, 0x.. or $var), got {:?}",
                            if tok.is_empty() {
                                text.get(start..).unwrap_or("")
                            } else {
                                tok
                            }
                        ),
                    )
                })?))
            };
            out.push((sign, term));
            expect_term = false;
        } else {
            sign = match c {
                '+' => 1,
                '-' => -1,
                _ => {
                    return Err(SyntaxError::new(
                        line.loc(a + i),
                        format!("expected + or - between numbers, got {c:?}"),
                    ));
                }
            };
            i += 1;
            expect_term = true;
        }
    }
    if expect_term {
        return Err(SyntaxError::new(
            line.loc(a),
            format!("number {text:?} is incomplete"),
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// Why an expression could not be evaluated (unset variable, value out of range, bad key...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {message}")]
pub struct EvalError {
    /// Where.
    pub loc: Loc,
    /// What is wrong.
    pub message: String,
}

fn eerr(loc: &Loc, message: impl Into<String>) -> EvalError {
    EvalError {
        loc: loc.clone(),
        message: message.into(),
    }
}

/// Looks up a variable.
///
/// # Errors
/// The variable is not set.
pub fn lookup<'v>(vars: &'v Vars, name: &str, loc: &Loc) -> Result<&'v [u8], EvalError> {
    vars.get(name)
        .map(Vec::as_slice)
        .ok_or_else(|| eerr(loc, format!("variable ${name} is not set")))
}

impl Expr {
    /// The bytes of the expression.
    ///
    /// # Errors
    /// Unset variables, out-of-range numbers, wrong key lengths, all located.
    pub fn eval(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        let mut out = Vec::new();
        for t in &self.terms {
            match t {
                Term::Bytes(b) => out.extend_from_slice(b),
                Term::Var(name, loc) => out.extend_from_slice(lookup(vars, name, loc)?),
                Term::Call(c) => out.extend_from_slice(&c.eval(vars)?),
            }
        }
        Ok(out)
    }
}

impl Arg {
    fn loc(&self) -> &Loc {
        match self {
            Arg::Bytes(_, l) | Arg::Num(_, l) | Arg::Word(_, l) => l,
        }
    }

    fn bytes(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        match self {
            Arg::Bytes(e, _) => e.eval(vars),
            other => Err(eerr(other.loc(), "expected bytes")),
        }
    }

    fn num(&self, vars: &Vars) -> Result<i128, EvalError> {
        let Arg::Num(terms, loc) = self else {
            return Err(eerr(self.loc(), "expected a number"));
        };
        let mut total: i128 = 0;
        for (sign, t) in terms {
            let v = match t {
                NumTerm::Lit(v) => *v,
                NumTerm::Var(name) => {
                    let b = lookup(vars, name, loc)?;
                    if b.len() > 8 {
                        return Err(eerr(
                            loc,
                            format!(
                                "${name} has {} bytes; a number can be read from at most 8",
                                b.len()
                            ),
                        ));
                    }
                    b.iter().fold(0i128, |acc, x| (acc << 8) | i128::from(*x))
                }
            };
            total = total.saturating_add(i128::from(*sign).saturating_mul(v));
        }
        Ok(total)
    }

    fn word(&self, vars: &Vars) -> Result<String, EvalError> {
        match self {
            Arg::Word(WordArg::Lit(w), _) => Ok(w.clone()),
            Arg::Word(WordArg::Var(name), loc) => {
                let b = lookup(vars, name, loc)?;
                String::from_utf8(b.to_vec())
                    .map_err(|_| eerr(loc, format!("${name} does not hold text")))
            }
            other => Err(eerr(other.loc(), "expected a name")),
        }
    }
}

fn ranged(v: i128, min: i128, max: i128, what: &str, loc: &Loc) -> Result<i128, EvalError> {
    if v < min || v > max {
        Err(eerr(
            loc,
            format!("{what} {v} is out of range {min}..={max}"),
        ))
    } else {
        Ok(v)
    }
}

fn to_u32(v: i128, what: &str, loc: &Loc) -> Result<u32, EvalError> {
    let v = ranged(v, 0, i128::from(u32::MAX), what, loc)?;
    u32::try_from(v).map_err(|_| eerr(loc, format!("{what} does not fit u32")))
}

fn to_i32(v: i128, what: &str, loc: &Loc) -> Result<i32, EvalError> {
    let v = ranged(v, i128::from(i32::MIN), i128::from(u32::MAX), what, loc)?;
    // Values above i32::MAX are a bit pattern (a captured 4-byte field read as unsigned).
    let bits = if v > i128::from(i32::MAX) {
        v - (1i128 << 32)
    } else {
        v
    };
    i32::try_from(bits).map_err(|_| eerr(loc, format!("{what} does not fit i32")))
}

fn fixed<const N: usize>(b: Vec<u8>, what: &str, loc: &Loc) -> Result<[u8; N], EvalError> {
    let got = b.len();
    b.try_into()
        .map_err(|_| eerr(loc, format!("{what} must be {N} bytes, got {got}")))
}

fn profile_of(word: &str, loc: &Loc) -> Result<Profile, EvalError> {
    word.parse::<Profile>()
        .map_err(|e| eerr(loc, e.to_string()))
}

impl Call {
    fn named_arg(&self, name: &str) -> Option<&Arg> {
        self.named.iter().find(|(k, _)| k == name).map(|(_, a)| a)
    }

    fn req(&self, name: &str) -> Result<&Arg, EvalError> {
        self.named_arg(name).ok_or_else(|| {
            eerr(
                &self.loc,
                format!("{}(...) needs the argument {name}=", self.func.name()),
            )
        })
    }

    fn req_num(&self, name: &str, vars: &Vars) -> Result<i128, EvalError> {
        self.req(name)?.num(vars)
    }

    fn opt_num(&self, name: &str, vars: &Vars, default: i128) -> Result<i128, EvalError> {
        self.named_arg(name).map_or(Ok(default), |a| a.num(vars))
    }

    fn pos(&self, i: usize) -> Result<&Arg, EvalError> {
        self.args
            .get(i)
            .ok_or_else(|| eerr(&self.loc, "missing argument"))
    }

    fn loc_of(&self, name: &str) -> Loc {
        self.named_arg(name)
            .map_or_else(|| self.loc.clone(), |a| a.loc().clone())
    }

    /// Profile, module id and the message key of a builder (`key=` or `master=` + role).
    fn builder_ctx(
        &self,
        vars: &Vars,
        grant_key: bool,
    ) -> Result<(Profile, ModuleId, SecretKey), EvalError> {
        let profile = profile_of(&self.req("profile")?.word(vars)?, &self.loc_of("profile"))?;
        let module: ModuleId = fixed(
            self.req("module")?.bytes(vars)?,
            "module",
            &self.loc_of("module"),
        )?;
        let key = match (self.named_arg("key"), self.named_arg("master")) {
            (Some(k), None) => SecretKey::new(&k.bytes(vars)?),
            (None, Some(m)) => {
                let master = SecretKey::new(&m.bytes(vars)?);
                let keys = derive_module_keys(profile, &master, &module)
                    .map_err(|e| eerr(m.loc(), e.to_string()))?;
                if grant_key { keys.grant } else { keys.request }
            }
            _ => {
                return Err(eerr(
                    &self.loc,
                    format!(
                        "{}(...) needs exactly one of key= (the module key) and master= (the master key)",
                        self.func.name()
                    ),
                ));
            }
        };
        Ok((profile, module, key))
    }

    fn tag_arg(&self, name: &str, vars: &Vars) -> Result<Tag, EvalError> {
        fixed(self.req(name)?.bytes(vars)?, name, &self.loc_of(name))
    }

    fn override_tag(&self, mut bytes: Vec<u8>, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        if let Some(t) = self.named_arg("tag") {
            let tag: Tag = fixed(t.bytes(vars)?, "tag", t.loc())?;
            let n = bytes.len().saturating_sub(tag.len());
            bytes.truncate(n);
            bytes.extend_from_slice(&tag);
        }
        Ok(bytes)
    }

    fn eval(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        let loc = &self.loc;
        let crypto = |e: simkit_core::crypto::CryptoError| eerr(loc, e.to_string());
        match self.func {
            Func::U8 => {
                let v = ranged(self.pos(0)?.num(vars)?, 0, 0xFF, "u8 value", loc)?;
                Ok(vec![u8::try_from(v).unwrap_or(0)])
            }
            Func::U16 => {
                let v = ranged(self.pos(0)?.num(vars)?, 0, 0xFFFF, "u16 value", loc)?;
                Ok(u16::try_from(v).unwrap_or(0).to_be_bytes().to_vec())
            }
            Func::U32 => Ok(to_u32(self.pos(0)?.num(vars)?, "u32 value", loc)?
                .to_be_bytes()
                .to_vec()),
            Func::I32 => Ok(to_i32(self.pos(0)?.num(vars)?, "i32 value", loc)?
                .to_be_bytes()
                .to_vec()),
            Func::Len => {
                let n = self.pos(0)?.bytes(vars)?.len();
                let n = u8::try_from(n)
                    .map_err(|_| eerr(loc, format!("len: {n} bytes do not fit one byte")))?;
                Ok(vec![n])
            }
            Func::Len16 => {
                let n = self.pos(0)?.bytes(vars)?.len();
                let n = u16::try_from(n)
                    .map_err(|_| eerr(loc, format!("len16: {n} bytes do not fit two bytes")))?;
                Ok(n.to_be_bytes().to_vec())
            }
            Func::Sha256 => {
                use sha2::Digest;
                Ok(sha2::Sha256::digest(self.pos(0)?.bytes(vars)?).to_vec())
            }
            Func::Xor => {
                let a = self.pos(0)?.bytes(vars)?;
                let b = self.pos(1)?.bytes(vars)?;
                if a.len() != b.len() {
                    return Err(eerr(
                        loc,
                        format!(
                            "xor needs equal lengths, got {} and {} bytes",
                            a.len(),
                            b.len()
                        ),
                    ));
                }
                Ok(a.iter().zip(&b).map(|(x, y)| x ^ y).collect())
            }
            Func::Slice => {
                let b = self.pos(0)?.bytes(vars)?;
                let start = self.pos(1)?.num(vars)?;
                let len = self.pos(2)?.num(vars)?;
                let total = b.len();
                usize::try_from(start)
                    .ok()
                    .zip(usize::try_from(len).ok())
                    .and_then(|(s, l)| b.get(s..s.checked_add(l)?))
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| {
                        eerr(
                            loc,
                            format!("slice({start}, {len}) is outside the {total} bytes given"),
                        )
                    })
            }
            Func::Mac => {
                let p = self.pos(0)?;
                let profile = profile_of(&p.word(vars)?, p.loc())?;
                let key = SecretKey::new(&self.pos(1)?.bytes(vars)?);
                let data = self.pos(2)?.bytes(vars)?;
                Ok(profile_tag(profile, &key, &data).map_err(crypto)?.to_vec())
            }
            Func::Kdf => {
                let p = self.pos(0)?;
                let profile = profile_of(&p.word(vars)?, p.loc())?;
                let master = SecretKey::new(&self.pos(1)?.bytes(vars)?);
                let id: ModuleId =
                    fixed(self.pos(2)?.bytes(vars)?, "module id", self.pos(2)?.loc())?;
                let keys = derive_module_keys(profile, &master, &id).map_err(crypto)?;
                match self.named_arg("key").map(|k| k.word(vars)).transpose()? {
                    None => {
                        let mut out = keys.request.expose_secret().to_vec();
                        out.extend_from_slice(keys.grant.expose_secret());
                        Ok(out)
                    }
                    Some(w) if w == "req" || w == "request" => {
                        Ok(keys.request.expose_secret().to_vec())
                    }
                    Some(w) if w == "grant" => Ok(keys.grant.expose_secret().to_vec()),
                    Some(w) => Err(eerr(
                        &self.loc_of("key"),
                        format!("kdf key={w:?}: expected req or grant"),
                    )),
                }
            }
            Func::Request => {
                let (profile, module, key) = self.builder_ctx(vars, false)?;
                let m = ReloadRequest::build(
                    profile,
                    module,
                    to_u32(self.req_num("n", vars)?, "n", &self.loc_of("n"))?,
                    to_u32(
                        self.req_num("amount", vars)?,
                        "amount",
                        &self.loc_of("amount"),
                    )?,
                    to_i32(
                        self.req_num("balance", vars)?,
                        "balance",
                        &self.loc_of("balance"),
                    )?,
                    &key,
                )
                .map_err(crypto)?;
                self.override_tag(m.to_bytes().to_vec(), vars)
            }
            Func::Grant => {
                let (profile, module, key) = self.builder_ctx(vars, true)?;
                let status = match self
                    .named_arg("status")
                    .map(|s| s.word(vars))
                    .transpose()?
                    .as_deref()
                {
                    None | Some("granted") => GrantStatus::Granted,
                    Some("declined") => {
                        let r = self.opt_num("reason", vars, 0)?;
                        let reason = u8::try_from(r)
                            .ok()
                            .and_then(DeclineReason::from_code)
                            .ok_or_else(|| {
                                eerr(
                                    &self.loc_of("reason"),
                                    format!("reason {r} is not a decline reason (1..=5)"),
                                )
                            })?;
                        GrantStatus::Declined(reason)
                    }
                    Some(other) => {
                        return Err(eerr(
                            &self.loc_of("status"),
                            format!("status {other:?}: expected granted or declined"),
                        ));
                    }
                };
                let m = ReloadGrant::build(
                    profile,
                    module,
                    to_u32(self.req_num("s", vars)?, "s", &self.loc_of("s"))?,
                    status,
                    to_u32(
                        self.opt_num("amount", vars, 0)?,
                        "amount",
                        &self.loc_of("amount"),
                    )?,
                    self.tag_arg("req_tag", vars)?,
                    &key,
                )
                .map_err(crypto)?;
                self.override_tag(m.to_bytes().to_vec(), vars)
            }
            Func::Provisional => {
                let (profile, module, key) = self.builder_ctx(vars, true)?;
                let m = ProvisionalAck::build(
                    profile,
                    module,
                    to_u32(self.req_num("s", vars)?, "s", &self.loc_of("s"))?,
                    self.tag_arg("req_tag", vars)?,
                    &key,
                )
                .map_err(crypto)?;
                self.override_tag(m.to_bytes().to_vec(), vars)
            }
            Func::Completion => {
                let (profile, module, key) = self.builder_ctx(vars, false)?;
                let declined = self.opt_num("declined", vars, 0)?;
                if !(0..=1).contains(&declined) {
                    return Err(eerr(&self.loc_of("declined"), "declined must be 0 or 1"));
                }
                let m = CompletionAck::build(
                    profile,
                    module,
                    to_u32(self.req_num("n", vars)?, "n", &self.loc_of("n"))?,
                    declined == 1,
                    to_u32(
                        self.opt_num("amount", vars, 0)?,
                        "amount",
                        &self.loc_of("amount"),
                    )?,
                    to_i32(
                        self.req_num("balance", vars)?,
                        "balance",
                        &self.loc_of("balance"),
                    )?,
                    self.tag_arg("grant_tag", vars)?,
                    &key,
                )
                .map_err(crypto)?;
                self.override_tag(m.to_bytes().to_vec(), vars)
            }
            Func::LimitUpdate => {
                let (profile, module, key) = self.builder_ctx(vars, true)?;
                let limits = self.limits(vars)?.ok_or_else(|| {
                    eerr(
                        loc,
                        "limit_update(...) needs min=, max=, upper= and credit_line=",
                    )
                })?;
                let m = LimitUpdate::build(
                    profile,
                    module,
                    to_u32(self.req_num("seq", vars)?, "seq", &self.loc_of("seq"))?,
                    limits,
                    &key,
                )
                .map_err(crypto)?;
                self.override_tag(m.to_bytes().to_vec(), vars)
            }
            Func::Personalise => self.personalise(vars),
        }
    }

    fn limits(&self, vars: &Vars) -> Result<Option<Limits>, EvalError> {
        let names = ["min", "max", "upper", "credit_line"];
        let present = names.iter().filter(|n| self.named_arg(n).is_some()).count();
        if present == 0 {
            return Ok(None);
        }
        if present != names.len() {
            return Err(eerr(
                &self.loc,
                "limits need all of min=, max=, upper= and credit_line=",
            ));
        }
        Ok(Some(Limits {
            min_reload: to_u32(self.req_num("min", vars)?, "min", &self.loc_of("min"))?,
            max_reload: to_u32(self.req_num("max", vars)?, "max", &self.loc_of("max"))?,
            upper: to_i32(self.req_num("upper", vars)?, "upper", &self.loc_of("upper"))?,
            credit_line: to_i32(
                self.req_num("credit_line", vars)?,
                "credit_line",
                &self.loc_of("credit_line"),
            )?,
        }))
    }

    fn personalise(&self, vars: &Vars) -> Result<Vec<u8>, EvalError> {
        let mut d = PersonalisationData::default();
        let profile = self
            .named_arg("profile")
            .map(|p| p.word(vars).and_then(|w| profile_of(&w, p.loc())))
            .transpose()?;
        d.profile = profile;
        let module: Option<ModuleId> = self
            .named_arg("module")
            .map(|m| m.bytes(vars).and_then(|b| fixed(b, "module", m.loc())))
            .transpose()?;
        d.module_id = module;
        if let Some(m) = self.named_arg("master") {
            let (Some(profile), Some(module)) = (profile, module) else {
                return Err(eerr(
                    m.loc(),
                    "personalise(master=...) needs profile= and module= to derive the keys",
                ));
            };
            let keys = derive_module_keys(profile, &SecretKey::new(&m.bytes(vars)?), &module)
                .map_err(|e| eerr(m.loc(), e.to_string()))?;
            d.k_req = Some(keys.request);
            d.k_grant = Some(keys.grant);
        }
        if let Some(k) = self.named_arg("k_req") {
            d.k_req = Some(SecretKey::new(&k.bytes(vars)?));
        }
        if let Some(k) = self.named_arg("k_grant") {
            d.k_grant = Some(SecretKey::new(&k.bytes(vars)?));
        }
        d.limits = self.limits(vars)?;
        match (self.named_arg("balance"), self.named_arg("n")) {
            (None, None) => {}
            (Some(_), Some(_)) => {
                d.initial = Some(InitialCounters {
                    balance: to_i32(
                        self.req_num("balance", vars)?,
                        "balance",
                        &self.loc_of("balance"),
                    )?,
                    n: to_u32(self.req_num("n", vars)?, "n", &self.loc_of("n"))?,
                });
            }
            _ => {
                return Err(eerr(
                    &self.loc,
                    "personalise(...) needs balance= and n= together",
                ));
            }
        }
        if self.named_arg("threshold").is_some() {
            let t = self.req_num("threshold", vars)?;
            let t = ranged(t, 0, 0xFFFF, "threshold", &self.loc_of("threshold"))?;
            d.threshold = Some(u16::try_from(t).unwrap_or(0));
        }
        if let Some(s) = self.named_arg("server") {
            d.server_address = Some(s.bytes(vars)?);
        }
        Ok(d.to_tlv())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(text: &str) -> Result<Vec<u8>, String> {
        ev_with(text, &Vars::new())
    }

    fn ev_with(text: &str, vars: &Vars) -> Result<Vec<u8>, String> {
        let line = LogicalLine::single("t.apdu", 1, text);
        let e = parse_expr_line(&line).map_err(|e| e.to_string())?;
        e.eval(vars).map_err(|e| e.to_string())
    }

    fn hx(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn hex_strings_vars_and_numbers() {
        assert_eq!(ev("80 CA 0000").unwrap(), hx("80CA0000"));
        assert_eq!(ev("\"AB\" 00").unwrap(), hx("414200"));
        assert_eq!(
            ev("u8(255) u16(0x1234) u32(1)").unwrap(),
            hx("FF 1234 00000001")
        );
        assert_eq!(ev("i32(-5)").unwrap(), hx("FFFFFFFB"));
        assert_eq!(ev("i32(0xFFFFFFFF)").unwrap(), hx("FFFFFFFF"));
        let mut v = Vars::new();
        v.insert("n".into(), hx("00000007"));
        assert_eq!(
            ev_with("u32($n + 1) $n", &v).unwrap(),
            hx("00000008 00000007")
        );
        assert_eq!(ev_with("u8(0x10 - $n)", &v).unwrap(), hx("09"));
        assert_eq!(ev("len(010203) len16(\"\")").unwrap(), hx("03 0000"));
        assert_eq!(
            ev("xor(0F0F, FF00) slice(00112233, 1, 2)").unwrap(),
            hx("F00F 1122")
        );
        assert_eq!(ev("sha256(\"abc\")").unwrap()[..4], hx("ba7816bf")[..]);
    }

    #[test]
    fn errors_are_located_and_pinned() {
        assert_eq!(
            ev("80 CA0").unwrap_err(),
            "t.apdu:1:4: odd number of hex digits in \"CA0\""
        );
        assert_eq!(
            ev("80 zz").unwrap_err(),
            "t.apdu:1:4: \"zz\" is not hex (character 'z'); a function call needs `(` right after its name"
        );
        assert_eq!(
            ev("u8(256)").unwrap_err(),
            "t.apdu:1:1: u8 value 256 is out of range 0..=255"
        );
        assert_eq!(
            ev("00 $x").unwrap_err(),
            "t.apdu:1:4: variable $x is not set"
        );
        assert_eq!(
            ev("foo(1)").unwrap_err(),
            "t.apdu:1:1: unknown function \"foo\"; known: u8, u16, u32, i32, len, len16, sha256, xor, slice, mac, kdf, request, grant, provisional, completion, limit_update, personalise"
        );
        assert_eq!(
            ev("u8(1").unwrap_err(),
            "t.apdu:1:3: `(` is not closed (missing `)`)"
        );
        assert_eq!(
            ev("\"ab").unwrap_err(),
            "t.apdu:1:1: string is not closed (missing `\"`)"
        );
        assert_eq!(
            ev("grant(profile=aes-cmac, nope=1)").unwrap_err(),
            "t.apdu:1:25: grant(...) has no argument \"nope\"; it takes s, status, reason, amount, req_tag, profile, module, key, master, tag"
        );
        assert_eq!(
            ev("xor(00, 0000)").unwrap_err(),
            "t.apdu:1:1: xor needs equal lengths, got 1 and 2 bytes"
        );
        assert_eq!(
            ev("mac(aes_cmac, 00, 00)").unwrap_err(),
            "t.apdu:1:5: unknown crypto profile \"aes_cmac\"; expected one of aes-cmac, retail-mac, desx-cbc"
        );
        assert_eq!(
            ev("u8(1, 2)").unwrap_err(),
            "t.apdu:1:7: u8(...) takes 1 positional argument(s), got more"
        );
    }

    #[test]
    fn crypto_comes_from_core() {
        let key = [0x2Bu8; 16];
        let data = b"hello";
        let want = profile_tag(Profile::AesCmac, &SecretKey::new(&key), data).unwrap();
        let got = ev(&format!("mac(aes-cmac, {}, \"hello\")", hex::encode(key))).unwrap();
        assert_eq!(got, want.to_vec());

        let master = [0x11u8; 16];
        let id = [1, 2, 3, 4, 5, 6, 7, 8];
        let keys = derive_module_keys(Profile::AesCmac, &SecretKey::new(&master), &id).unwrap();
        let both = ev(&format!(
            "kdf(aes-cmac, {}, 0102030405060708)",
            hex::encode(master)
        ))
        .unwrap();
        assert_eq!(&both[..16], keys.request.expose_secret());
        assert_eq!(&both[16..], keys.grant.expose_secret());
        let g = ev(&format!(
            "kdf(aes-cmac, {}, 0102030405060708, key=grant)",
            hex::encode(master)
        ))
        .unwrap();
        assert_eq!(g, keys.grant.expose_secret());

        // A request via master= equals core's build with the derived K_req.
        let r = ReloadRequest::build(Profile::AesCmac, id, 7, 100, -3, &keys.request).unwrap();
        let mut v = Vars::new();
        v.insert("p".into(), b"aes-cmac".to_vec());
        let got = ev_with(
            &format!(
                "request(profile=$p, master={}, module=0102030405060708, n=7, amount=100, balance=-3)",
                hex::encode(master)
            ),
            &v,
        )
        .unwrap();
        assert_eq!(got, r.to_bytes().to_vec());
        // tag= forges.
        let forged = ev(&format!(
            "request(profile=aes-cmac, master={}, module=0102030405060708, n=7, amount=100, balance=-3, tag=0000000000000000)",
            hex::encode(master)
        ))
        .unwrap();
        assert_eq!(forged[..23], r.to_bytes()[..23]);
        assert_eq!(forged[23..], [0u8; 8]);
    }

    #[test]
    fn grant_and_personalise_builders() {
        let master = hex::encode([0x11u8; 16]);
        let g = ev(&format!(
            "grant(profile=aes-cmac, master={master}, module=0102030405060708, s=8, amount=50, req_tag=0101010101010101)"
        ))
        .unwrap();
        assert_eq!(g.len(), ReloadGrant::LEN);
        let d = ev(&format!(
            "grant(profile=aes-cmac, master={master}, module=0102030405060708, s=8, status=declined, reason=3, req_tag=0101010101010101)"
        ))
        .unwrap();
        assert_eq!(d[15..17], [0x01, 0x03]);
        let p = ev(&format!(
            "personalise(profile=aes-cmac, module=0102030405060708, master={master}, min=1, max=1000, upper=5000, credit_line=0, threshold=3)"
        ))
        .unwrap();
        assert_eq!(p[..2], [0x81, 0x08]);
        assert_eq!(
            ev("personalise(balance=1)").unwrap_err(),
            "t.apdu:1:1: personalise(...) needs balance= and n= together"
        );
    }
}
