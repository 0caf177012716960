//! Parsing: a range of a logical line into an [`Expr`], each call's arguments typed by its
//! function's signature ([`Func`]). It evaluates nothing and reads no variable.

use super::ast::{Arg, Call, Expr, Func, Kind, NumTerm, Term, WordArg};
use crate::source::{LogicalLine, SyntaxError};

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
