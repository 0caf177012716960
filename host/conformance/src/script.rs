//! A test script: its items (steps and directives) in order, with `.include` resolved.
//!
//! Parsing is complete before anything is sent, so a syntax error anywhere in a test (or in a
//! file it includes) fails the test without touching the card.

use std::path::{Path, PathBuf};

use crate::expr::{Expr, parse_expr};
use crate::pattern::{Expectation, SwPattern};
use crate::source::{Loc, LogicalLine, SyntaxError, logical_lines};

/// What a script item does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `COMMAND -> EXPECTATION`.
    Step {
        /// The command.
        command: Expr,
        /// What must come back.
        expect: Expectation,
    },
    /// `.name "text"`.
    Name(String),
    /// `.requires CAP...`.
    Requires(Vec<String>),
    /// `.select AID [-> SW]`.
    Select {
        /// The AID.
        aid: Expr,
        /// Expected status word (default `9000`).
        sw: SwPattern,
    },
    /// `.reset`.
    Reset,
    /// `.power off` (`false`) / `.power on` (`true`).
    Power(bool),
    /// `.tear K`.
    Tear(u32),
    /// `.fresh`.
    Fresh,
    /// `.let NAME = EXPR` (`default: false`) or `.default NAME = EXPR` (`true`).
    Let {
        /// The variable.
        name: String,
        /// Its value.
        value: Expr,
        /// Only if unset.
        default: bool,
    },
    /// `.echo TEXT`.
    Echo(String),
    /// `.quirk ID "text"`.
    Quirk {
        /// The quirk ID.
        id: String,
        /// Why.
        text: String,
    },
    /// `.raw on|off`.
    Raw(bool),
}

/// One item with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Where it was written.
    pub loc: Loc,
    /// What it does.
    pub action: Action,
}

/// A parsed test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The items, includes expanded.
    pub items: Vec<Item>,
}

impl Script {
    /// The `.name`, if given.
    pub fn name(&self) -> Option<&str> {
        self.items.iter().find_map(|i| match &i.action {
            Action::Name(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Every capability named by `.requires`.
    pub fn requires(&self) -> Vec<String> {
        let mut caps = Vec::new();
        for i in &self.items {
            if let Action::Requires(c) = &i.action {
                caps.extend(c.iter().cloned());
            }
        }
        caps
    }

    /// Parses a script from text, without includes (`.include` is an error here).
    ///
    /// # Errors
    /// The first syntax error.
    pub fn parse_str(file: &str, text: &str) -> Result<Script, SyntaxError> {
        let mut items = Vec::new();
        parse_into(file, text, None, &mut Vec::new(), &mut items)?;
        Ok(Script { items })
    }

    /// Reads and parses a script file, following `.include`s relative to each including file.
    /// Locations show `display` for the top file (e.g. the path relative to the suite root) and
    /// paths relative to it for includes.
    ///
    /// # Errors
    /// Unreadable files, syntax errors, include cycles.
    pub fn load(path: &Path, display: &str) -> Result<Script, SyntaxError> {
        let mut items = Vec::new();
        let text = std::fs::read_to_string(path).map_err(|e| {
            SyntaxError::new(
                Loc {
                    file: display.into(),
                    line: 0,
                    col: 0,
                },
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let mut stack = vec![canon];
        parse_into(display, &text, Some(path), &mut stack, &mut items)?;
        Ok(Script { items })
    }
}

fn parse_into(
    display: &str,
    text: &str,
    path: Option<&Path>,
    stack: &mut Vec<PathBuf>,
    items: &mut Vec<Item>,
) -> Result<(), SyntaxError> {
    for line in logical_lines(display, text)? {
        let t = line.text.as_str();
        let lead = t.len() - t.trim_start().len();
        let body = t.trim();
        let loc = line.loc(lead);
        if let Some(d) = body.strip_prefix('.') {
            let (word, rest) = d
                .split_once(|c: char| c.is_ascii_whitespace())
                .unwrap_or((d, ""));
            let rest_off = lead + 1 + word.len() + (d.len() - word.len() - rest.len());
            let rest_trim = rest.trim();
            if word == "include" {
                let Some(path) = path else {
                    return Err(SyntaxError::new(
                        loc,
                        ".include needs a script read from a file",
                    ));
                };
                include(&line, loc, rest_trim, path, display, stack, items)?;
                continue;
            }
            let action = directive(&line, &loc, word, rest_trim, rest_off)?;
            items.push(Item { loc, action });
        } else {
            let Some(arrow) = find_arrow(t) else {
                return Err(SyntaxError::new(
                    loc,
                    "a command needs `-> EXPECTATION` (every response is checked; use `-> any` for setup)",
                ));
            };
            let command = parse_expr(&line, 0, arrow)?;
            if command.terms.is_empty() {
                return Err(SyntaxError::new(loc, "no command before `->`"));
            }
            let expect = Expectation::parse(&line, arrow + 2)?;
            items.push(Item {
                loc,
                action: Action::Step { command, expect },
            });
        }
    }
    Ok(())
}

/// Byte offset of the first `->` outside a string.
fn find_arrow(t: &str) -> Option<usize> {
    let mut in_str = false;
    let mut esc = false;
    let b = t.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            }
        } else if c == b'"' {
            in_str = true;
        } else if c == b'-' && b.get(i + 1) == Some(&b'>') {
            return Some(i);
        }
    }
    None
}

fn unquote(s: &str, loc: &Loc, what: &str) -> Result<String, SyntaxError> {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .map(|r| r.replace("\\\"", "\"").replace("\\\\", "\\"))
        .ok_or_else(|| SyntaxError::new(loc.clone(), format!("{what} needs a \"quoted text\"")))
}

fn is_var_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn directive(
    line: &LogicalLine,
    loc: &Loc,
    word: &str,
    rest: &str,
    rest_off: usize,
) -> Result<Action, SyntaxError> {
    let no_args = |a: Action| {
        if rest.is_empty() {
            Ok(a)
        } else {
            Err(SyntaxError::new(
                loc.clone(),
                format!(".{word} takes no argument, got {rest:?}"),
            ))
        }
    };
    match word {
        "name" => Ok(Action::Name(unquote(rest, loc, ".name")?)),
        "requires" => {
            let caps: Vec<String> = rest.split_ascii_whitespace().map(str::to_owned).collect();
            if caps.is_empty() {
                return Err(SyntaxError::new(
                    loc.clone(),
                    ".requires needs at least one capability",
                ));
            }
            Ok(Action::Requires(caps))
        }
        "select" => {
            let (aid_end, sw) = match find_arrow(line.text.get(rest_off..).unwrap_or("")) {
                Some(a) => {
                    let sw_text: String = line
                        .text
                        .get(rest_off + a + 2..)
                        .unwrap_or("")
                        .split_ascii_whitespace()
                        .collect();
                    (
                        rest_off + a,
                        SwPattern::parse(&sw_text, &line.loc(rest_off + a + 2))?,
                    )
                }
                None => (line.text.len(), SwPattern::parse("9000", loc)?),
            };
            let aid = parse_expr(line, rest_off, aid_end)?;
            if aid.terms.is_empty() {
                return Err(SyntaxError::new(loc.clone(), ".select needs an AID"));
            }
            Ok(Action::Select { aid, sw })
        }
        "reset" => no_args(Action::Reset),
        "fresh" => no_args(Action::Fresh),
        "power" => match rest {
            "on" => Ok(Action::Power(true)),
            "off" => Ok(Action::Power(false)),
            _ => Err(SyntaxError::new(
                loc.clone(),
                format!(".power takes on or off, got {rest:?}"),
            )),
        },
        "raw" => match rest {
            "on" => Ok(Action::Raw(true)),
            "off" => Ok(Action::Raw(false)),
            _ => Err(SyntaxError::new(
                loc.clone(),
                format!(".raw takes on or off, got {rest:?}"),
            )),
        },
        "tear" => rest
            .parse::<u32>()
            .ok()
            .filter(|k| *k >= 1 && *k < (1 << 31))
            .map(Action::Tear)
            .ok_or_else(|| {
                SyntaxError::new(
                    loc.clone(),
                    format!(".tear takes a write number K >= 1, got {rest:?}"),
                )
            }),
        "let" | "default" => {
            let Some((name, value)) = rest.split_once('=') else {
                return Err(SyntaxError::new(
                    loc.clone(),
                    format!(".{word} needs NAME = EXPR"),
                ));
            };
            let name = name.trim();
            if !is_var_name(name) {
                return Err(SyntaxError::new(
                    loc.clone(),
                    format!(".{word}: {name:?} is not a variable name"),
                ));
            }
            let eq = line
                .text
                .get(rest_off..)
                .and_then(|r| r.find('='))
                .map_or(rest_off, |i| rest_off + i);
            let value_expr = parse_expr(line, eq + 1, line.text.len())?;
            if value.trim().is_empty() {
                return Err(SyntaxError::new(
                    loc.clone(),
                    format!(".{word} {name}: the value is missing"),
                ));
            }
            Ok(Action::Let {
                name: name.to_owned(),
                value: value_expr,
                default: word == "default",
            })
        }
        "echo" => Ok(Action::Echo(rest.to_owned())),
        "quirk" => {
            let (id, text) = rest
                .split_once(|c: char| c.is_ascii_whitespace())
                .unwrap_or((rest, ""));
            if id.is_empty() {
                return Err(SyntaxError::new(loc.clone(), ".quirk needs ID \"text\""));
            }
            Ok(Action::Quirk {
                id: id.to_owned(),
                text: unquote(text, loc, ".quirk ID")?,
            })
        }
        other => Err(SyntaxError::new(
            loc.clone(),
            format!(
                "unknown directive .{other}; known: .name .requires .select .reset .power .tear .fresh .include .let .default .echo .quirk .raw"
            ),
        )),
    }
}

fn include(
    line: &LogicalLine,
    loc: Loc,
    rest: &str,
    from: &Path,
    display: &str,
    stack: &mut Vec<PathBuf>,
    items: &mut Vec<Item>,
) -> Result<(), SyntaxError> {
    let _ = line;
    let rel = rest.trim_matches('"');
    if rel.is_empty() {
        return Err(SyntaxError::new(loc, ".include needs a PATH"));
    }
    let base = from.parent().unwrap_or(Path::new("."));
    let target = base.join(rel);
    let canon = target.canonicalize().map_err(|e| {
        SyntaxError::new(
            loc.clone(),
            format!("cannot read included {}: {e}", target.display()),
        )
    })?;
    if let Some(pos) = stack.iter().position(|p| *p == canon) {
        let chain: Vec<String> = stack
            .get(pos..)
            .unwrap_or(&[])
            .iter()
            .chain(std::iter::once(&canon))
            .map(|p| {
                p.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect();
        return Err(SyntaxError::new(
            loc,
            format!("include cycle: {}", chain.join(" -> ")),
        ));
    }
    let text = std::fs::read_to_string(&target).map_err(|e| {
        SyntaxError::new(
            loc.clone(),
            format!("cannot read included {}: {e}", target.display()),
        )
    })?;
    let shown = match Path::new(display).parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(rel).display().to_string(),
        _ => rel.to_owned(),
    };
    stack.push(canon);
    let r = parse_into(&shown, &text, Some(&target), stack, items);
    stack.pop();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_steps_and_directives() {
        let s = Script::parse_str(
            "t.apdu",
            ".name \"status\"\n.requires aes-cmac tear\n.select F053494D4B49540101\n\
             .select A000 -> 6A82 | 9000\n.let k = 00 u8(1)\n.default p = \"aes-cmac\"\n\
             .tear 3\n.quirk Q1 \"old firmware\"\n.raw on\n.power off\n.reset\n.echo hello there\n\
             80 10 00 00 31 -> {b:4} * 9000\n",
        )
        .unwrap();
        assert_eq!(s.name(), Some("status"));
        assert_eq!(s.requires(), vec!["aes-cmac", "tear"]);
        assert_eq!(s.items.len(), 13);
        assert!(matches!(&s.items[3].action, Action::Select { sw, .. } if sw.matches(0x6A82)));
        assert!(matches!(&s.items[6].action, Action::Tear(3)));
        assert_eq!(s.items[12].loc.to_string(), "t.apdu:13:1");
    }

    #[test]
    fn errors_pinned() {
        let e = |t: &str| Script::parse_str("t.apdu", t).unwrap_err().to_string();
        assert_eq!(
            e("\n  80 CA 00 00\n"),
            "t.apdu:2:3: a command needs `-> EXPECTATION` (every response is checked; use `-> any` for setup)"
        );
        assert_eq!(
            e(".bogus"),
            "t.apdu:1:1: unknown directive .bogus; known: .name .requires .select .reset .power .tear .fresh .include .let .default .echo .quirk .raw"
        );
        assert_eq!(
            e(".tear 0"),
            "t.apdu:1:1: .tear takes a write number K >= 1, got \"0\""
        );
        assert_eq!(
            e(".let 1x = 00"),
            "t.apdu:1:1: .let: \"1x\" is not a variable name"
        );
        assert_eq!(
            e(".name status"),
            "t.apdu:1:1: .name needs a \"quoted text\""
        );
        assert_eq!(e("-> 9000"), "t.apdu:1:1: no command before `->`");
        assert_eq!(
            e(".power up"),
            "t.apdu:1:1: .power takes on or off, got \"up\""
        );
        assert_eq!(
            e(".include x.apdu"),
            "t.apdu:1:1: .include needs a script read from a file"
        );
    }

    #[test]
    fn includes_and_cycles() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("_setup.apdu"), ".select F0 01\n").unwrap();
        std::fs::write(
            p.join("t.apdu"),
            ".include _setup.apdu\n80 CA 00 00 -> 9000\n",
        )
        .unwrap();
        let s = Script::load(&p.join("t.apdu"), "suite/t.apdu").unwrap();
        assert_eq!(s.items.len(), 2);
        assert_eq!(s.items[0].loc.to_string(), "suite/_setup.apdu:1:1");
        std::fs::write(p.join("_a.apdu"), ".include _b.apdu\n").unwrap();
        std::fs::write(p.join("_b.apdu"), ".include _a.apdu\n").unwrap();
        std::fs::write(p.join("c.apdu"), ".include _a.apdu\n").unwrap();
        let e = Script::load(&p.join("c.apdu"), "c.apdu").unwrap_err();
        assert_eq!(
            e.to_string(),
            "_b.apdu:1:1: include cycle: _a.apdu -> _b.apdu -> _a.apdu"
        );
        let e = Script::load(&p.join("missing.apdu"), "missing.apdu").unwrap_err();
        assert!(
            e.to_string().starts_with("missing.apdu:0:0: cannot read"),
            "{e}"
        );
    }
}
