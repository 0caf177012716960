//! Importers: scriptor (pcsc-tools) and apdutool (Java Card SDK) scripts to the `.apdu` format,
//! so people's old scripts come with them.
//!
//! Neither format says what the card must answer. With a recorded run (scriptor's output, or
//! apdutool's output) each command gets the response recorded for it as its expectation; without
//! one the expectation is left open as `any` with a comment saying so.
//!
//! - scriptor input: one APDU per line in hex (spaces optional), `reset`, `exit`/`quit`,
//!   comments `#` and `//`; its output format (`> 00 A4 …` then `< … 90 00 : Normal processing.`)
//!   is read as input too, and as a run log.
//! - apdutool input: statements ending in `;`, bytes as `0x..` (CLA INS P1 P2 Lc data… Le),
//!   `powerup;`, `powerdown;`, `//` and `/* */` comments; other statements (echo, delay,
//!   output) become comments. Its output (`CLA: 80, INS: ca, P1: 00, P2: 00, Lc: 00, Le: 02,
//!   01, 02, SW1: 90, SW2: 00`) is read as a run log.

use simkit_core::hexutil::{parse_hex, to_hex, to_hex_spaced};

/// Source formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// pcsc-tools scriptor.
    Scriptor,
    /// Java Card SDK apdutool.
    Apdutool,
}

/// An import that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} line {line}: {message}")]
pub struct ImportError {
    /// Which input (`script` or `run log`).
    pub what: &'static str,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// (command bytes, response bytes) of a recorded run.
type Exchange = (Vec<u8>, Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Command(Vec<u8>, usize),
    Response(Vec<u8>),
    Reset,
    Comment(String),
}

fn strip_slash_comment(line: &str) -> (&str, Option<&str>) {
    match line.find("//") {
        Some(i) => (
            line.get(..i).unwrap_or(""),
            line.get(i + 2..).map(str::trim),
        ),
        None => (line, None),
    }
}

fn parse_scriptor(text: &str, what: &'static str) -> Result<Vec<Item>, ImportError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let err = |m: String| ImportError {
            what,
            line: n,
            message: m,
        };
        let (code, comment) = strip_slash_comment(raw);
        let (code, comment) = match code.find('#') {
            Some(h) => (
                code.get(..h).unwrap_or(""),
                code.get(h + 1..).map(str::trim).or(comment),
            ),
            None => (code, comment),
        };
        if let Some(c) = comment.filter(|c| !c.is_empty()) {
            out.push(Item::Comment(c.to_owned()));
        }
        let code = code.trim();
        if code.is_empty() {
            continue;
        }
        let lower = code.to_ascii_lowercase();
        if lower == "reset" {
            out.push(Item::Reset);
        } else if lower == "exit" || lower == "quit" {
            break;
        } else if let Some(resp) = code.strip_prefix('<') {
            // `< 01 02 90 00 : Normal processing.`
            let hex = resp.split(':').next().unwrap_or("");
            let bytes = parse_hex(hex).map_err(|e| err(format!("response {hex:?}: {e}")))?;
            out.push(Item::Response(bytes));
        } else {
            let hex = code.strip_prefix('>').unwrap_or(code);
            let bytes = parse_hex(hex).map_err(|e| err(format!("APDU {:?}: {e}", hex.trim())))?;
            if bytes.len() < 4 {
                return Err(err(format!(
                    "APDU {:?} is shorter than 4 bytes",
                    hex.trim()
                )));
            }
            out.push(Item::Command(bytes, n));
        }
    }
    Ok(out)
}

fn parse_0x_bytes(s: &str) -> Result<Vec<u8>, String> {
    s.split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .map(|t| {
            let h = t
                .strip_prefix("0x")
                .or_else(|| t.strip_prefix("0X"))
                .unwrap_or(t);
            u8::from_str_radix(h, 16).map_err(|_| format!("{t:?} is not a byte"))
        })
        .collect()
}

fn strip_block_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("/*") {
        out.push_str(rest.get(..i).unwrap_or(""));
        match rest
            .get(i + 2..)
            .and_then(|r| r.find("*/").map(|j| i + 2 + j + 2))
        {
            Some(end) => {
                // Keep line numbers: replace the comment by its newlines.
                let c = rest.get(i..end).unwrap_or("");
                out.extend(c.chars().filter(|&ch| ch == '\n'));
                rest = rest.get(end..).unwrap_or("");
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn parse_apdutool(text: &str) -> Result<Vec<Item>, ImportError> {
    let text = strip_block_comments(text);
    let mut out = Vec::new();
    let mut stmt = String::new();
    let mut stmt_line = 1;
    let mut powered_once = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let (code, comment) = strip_slash_comment(raw);
        if let Some(c) = comment.filter(|c| !c.is_empty()) {
            out.push(Item::Comment(c.to_owned()));
        }
        let mut rest = code;
        while let Some(semi) = rest.find(';') {
            if stmt.trim().is_empty() {
                stmt_line = n;
            }
            stmt.push_str(rest.get(..semi).unwrap_or(""));
            rest = rest.get(semi + 1..).unwrap_or("");
            let s = std::mem::take(&mut stmt);
            let s = s.trim();
            let lower = s.to_ascii_lowercase();
            if s.is_empty() {
                continue;
            } else if lower == "powerup" {
                if powered_once {
                    out.push(Item::Reset);
                } else {
                    out.push(Item::Comment("powerup: the runner powers the card".into()));
                }
                powered_once = true;
            } else if lower == "powerdown" {
                out.push(Item::Comment("powerdown".into()));
            } else if lower.starts_with("0x") {
                let bytes = parse_0x_bytes(s).map_err(|m| ImportError {
                    what: "script",
                    line: stmt_line,
                    message: m,
                })?;
                out.push(Item::Command(
                    apdutool_apdu(&bytes).map_err(|m| ImportError {
                        what: "script",
                        line: stmt_line,
                        message: m,
                    })?,
                    stmt_line,
                ));
            } else {
                out.push(Item::Comment(format!("apdutool: {s}")));
            }
        }
        if !rest.trim().is_empty() {
            if stmt.trim().is_empty() {
                stmt_line = n;
            }
            stmt.push_str(rest);
            stmt.push(' ');
        }
    }
    if !stmt.trim().is_empty() {
        return Err(ImportError {
            what: "script",
            line: stmt_line,
            message: "statement does not end with `;`".into(),
        });
    }
    Ok(out)
}

/// apdutool bytes `CLA INS P1 P2 Lc data… Le` to an APDU: Lc 0 means no data field; Le is
/// kept as written.
fn apdutool_apdu(b: &[u8]) -> Result<Vec<u8>, String> {
    let (Some(header), Some(&lc)) = (b.get(..4), b.get(4)) else {
        return Err(format!(
            "an apdutool command needs CLA INS P1 P2 Lc [data] Le, got {} bytes",
            b.len()
        ));
    };
    let lc_n = usize::from(lc);
    let data = b.get(5..5 + lc_n).ok_or_else(|| {
        format!(
            "Lc is {lc_n} but only {} data bytes follow",
            b.len().saturating_sub(5)
        )
    })?;
    let le = b.get(5 + lc_n..).unwrap_or(&[]);
    if le.len() > 1 {
        return Err(format!(
            "{} bytes after the data; expected at most one Le byte",
            le.len()
        ));
    }
    let mut out = header.to_vec();
    if lc_n > 0 {
        out.push(lc);
        out.extend_from_slice(data);
    }
    out.extend_from_slice(le);
    Ok(out)
}

/// Reads an apdutool output log: (command bytes, response bytes) per `CLA:` line.
fn parse_apdutool_log(text: &str) -> Result<Vec<Exchange>, ImportError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if !t.starts_with("CLA:") {
            continue;
        }
        let err = |m: String| ImportError {
            what: "run log",
            line: i + 1,
            message: m,
        };
        let mut fields: Vec<(String, Vec<u8>)> = Vec::new();
        for part in t.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            match part.split_once(':') {
                Some((k, v)) => {
                    let v = parse_0x_bytes(v).map_err(&err)?;
                    fields.push((k.trim().to_owned(), v));
                }
                None => {
                    let v = parse_0x_bytes(part).map_err(&err)?;
                    match fields.last_mut() {
                        Some(f) => f.1.extend(v),
                        None => return Err(err("bytes before CLA:".into())),
                    }
                }
            }
        }
        let get = |k: &str| -> Vec<u8> {
            fields
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut cmd = Vec::new();
        for k in ["CLA", "INS", "P1", "P2"] {
            cmd.extend(get(k).first().copied());
        }
        let lc = get("Lc");
        // `Lc: 02, AA, BB` → Lc then its data; `Le: 02, 01, 02` → Le then the response data.
        if let Some((&n, data)) = lc.split_first()
            && n > 0
        {
            cmd.push(n);
            cmd.extend_from_slice(data);
        }
        let le = get("Le");
        let resp_data = le.get(1..).unwrap_or(&[]).to_vec();
        let mut resp = resp_data;
        resp.extend(get("SW1").first().copied());
        resp.extend(get("SW2").first().copied());
        if resp.len() < 2 {
            return Err(err("no SW1/SW2".into()));
        }
        out.push((cmd, resp));
    }
    Ok(out)
}

fn pairs_from_items(items: &[Item]) -> Vec<Exchange> {
    let mut out = Vec::new();
    let mut last: Option<Vec<u8>> = None;
    for it in items {
        match it {
            Item::Command(c, _) => last = Some(c.clone()),
            Item::Response(r) => {
                if let Some(c) = last.take() {
                    out.push((c, r.clone()));
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether two commands are the same apart from Le (apdutool's log does not show the Le sent).
fn same_command(a: &[u8], b: &[u8]) -> bool {
    use simkit_core::apdu::Command;
    match (Command::parse(a), Command::parse(b)) {
        (Ok(x), Ok(y)) => {
            (x.cla, x.ins, x.p1, x.p2, &x.data) == (y.cla, y.ins, y.p1, y.p2, &y.data)
        }
        _ => a == b,
    }
}

/// Converts `script` (in `format`) to the `.apdu` format. `run_log` is a recorded run of it
/// (scriptor output, or apdutool output) whose responses become the expectations; commands
/// are matched in order, and one that differs from the log's is left open with a note.
///
/// # Errors
/// A line that is not valid in the source format, naming it.
pub fn convert(
    format: Format,
    source_name: &str,
    script: &str,
    run_log: Option<&str>,
) -> Result<String, ImportError> {
    let items = match format {
        Format::Scriptor => parse_scriptor(script, "script")?,
        Format::Apdutool => parse_apdutool(script)?,
    };
    let mut responses: Vec<Exchange> = match (format, run_log) {
        (Format::Scriptor, Some(log)) => pairs_from_items(&parse_scriptor(log, "run log")?),
        (Format::Apdutool, Some(log)) => parse_apdutool_log(log)?,
        // A scriptor output file carries its own responses.
        (Format::Scriptor, None) => pairs_from_items(&items),
        (Format::Apdutool, None) => Vec::new(),
    };
    responses.reverse();
    let kind = match format {
        Format::Scriptor => "scriptor",
        Format::Apdutool => "apdutool",
    };
    let mut out = format!(
        "# Imported from {kind} script {source_name} by `simkit import {kind}`.\n.name \"{}\"\n",
        source_name.replace('"', "'")
    );
    let mut open = 0;
    for it in &items {
        match it {
            Item::Comment(c) => out.push_str(&format!("# {c}\n")),
            Item::Reset => out.push_str(".reset\n"),
            Item::Response(_) => {}
            Item::Command(c, line) => {
                let expect = match responses.pop() {
                    Some((logged, resp)) if same_command(&logged, c) => {
                        let (data, sw) = resp.split_at(resp.len().saturating_sub(2));
                        if data.is_empty() {
                            to_hex(sw)
                        } else {
                            format!("{} {}", to_hex(data), to_hex(sw))
                        }
                    }
                    Some((logged, _)) => {
                        open += 1;
                        format!(
                            "any  # OPEN: the run log's command here was {}, not this one (line {line})",
                            to_hex(&logged)
                        )
                    }
                    None => {
                        open += 1;
                        format!(
                            "any  # OPEN: no recorded response (line {line}); put the expected one here"
                        )
                    }
                };
                out.push_str(&format!("{} -> {expect}\n", to_hex_spaced(c)));
            }
        }
    }
    if open > 0 {
        out.push_str(&format!(
            "# {open} expectation(s) left open as `any`: this script checks nothing there until edited.\n"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scriptor_lines_and_its_output_format() {
        let s = "# select\n00A4040002F001\n// get data\n80 CA 00 00 00\nreset\nexit\n80CB000000\n";
        let out = convert(Format::Scriptor, "old.script", s, None).unwrap();
        assert!(
            out.contains("00 A4 04 00 02 F0 01 -> any  # OPEN: no recorded response (line 2)"),
            "{out}"
        );
        assert!(out.contains("\n.reset\n"));
        assert!(!out.contains("80 CB"), "exit stops");
        let log = "> 00 A4 04 00 02 F0 01\n< 90 00 : Normal processing.\n> 80 CA 00 00 00\n< 01 02 90 00 : Normal processing.\n";
        let out = convert(Format::Scriptor, "old.script", s, Some(log)).unwrap();
        assert!(out.contains("00 A4 04 00 02 F0 01 -> 9000\n"), "{out}");
        assert!(out.contains("80 CA 00 00 00 -> 0102 9000\n"), "{out}");
        assert!(!out.contains("OPEN"));
        // The output format alone is a script with its own expectations.
        let out = convert(Format::Scriptor, "run.log", log, None).unwrap();
        assert!(out.contains("80 CA 00 00 00 -> 0102 9000\n"), "{out}");
        crate::Script::parse_str("x.apdu", &out).unwrap();
        assert_eq!(
            convert(Format::Scriptor, "x", "80 CA 0\n", None)
                .unwrap_err()
                .to_string(),
            "script line 1: APDU \"80 CA 0\": odd number of hex digits (5)"
        );
    }

    #[test]
    fn apdutool_statements_and_log() {
        let s = "powerup;\n// select\n0x00 0xA4 0x04 0x00 0x02 0xF0 0x01 0x7F;\n0x80 0xCA 0x00 0x00\n 0x00 0x02;\necho \"hi\";\npowerdown;\npowerup;\n";
        let out = convert(Format::Apdutool, "old.scr", s, None).unwrap();
        assert!(out.contains("00 A4 04 00 02 F0 01 7F -> any"), "{out}");
        assert!(out.contains("80 CA 00 00 02 -> any"), "{out}");
        assert!(out.contains("# apdutool: echo \"hi\""), "{out}");
        assert!(out.ends_with(".reset\n# 2 expectation(s) left open as `any`: this script checks nothing there until edited.\n"), "{out}");
        let log = "CLA: 00, INS: a4, P1: 04, P2: 00, Lc: 02, f0, 01, Le: 00, SW1: 90, SW2: 00\n\
                   CLA: 80, INS: ca, P1: 00, P2: 00, Lc: 00, Le: 02, 01, 02, SW1: 90, SW2: 00\n";
        let out = convert(Format::Apdutool, "old.scr", s, Some(log)).unwrap();
        // The log does not show the Le sent; commands match without it.
        assert!(out.contains("00 A4 04 00 02 F0 01 7F -> 9000\n"), "{out}");
        assert!(out.contains("80 CA 00 00 02 -> 0102 9000\n"), "{out}");
        assert!(!out.contains("OPEN"), "{out}");
        crate::Script::parse_str("x.apdu", &out).unwrap();
        assert_eq!(
            convert(
                Format::Apdutool,
                "x",
                "0x80 0xCA 0x00 0x00 0x05 0x01;\n",
                None
            )
            .unwrap_err()
            .to_string(),
            "script line 1: Lc is 5 but only 1 data bytes follow"
        );
        assert_eq!(
            convert(Format::Apdutool, "x", "0x80 0xCA\n", None)
                .unwrap_err()
                .to_string(),
            "script line 1: statement does not end with `;`"
        );
    }
}
