//! Source text: locations (`file:line:col`), logical lines (a trailing `\` joins the next line,
//! `#` comments stripped) and the errors found while reading a script.
//!
//! This module owns where things are; it knows nothing of what a line means.

use std::fmt;
use std::sync::Arc;

/// A position in a script: file (as given or as included), 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    /// The file, as displayed.
    pub file: Arc<str>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

impl Loc {
    /// `file:line`, as shown in reports.
    pub fn file_line(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// A script error with its location: unreadable file, bad syntax, include cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{loc}: {message}")]
pub struct SyntaxError {
    /// Where.
    pub loc: Loc,
    /// What is wrong, naming the offending text.
    pub message: String,
}

impl SyntaxError {
    /// An error at `loc`.
    pub fn new(loc: Loc, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            loc,
            message: message.into(),
        }
    }
}

/// One logical line: physical lines joined by `\`, comment removed, with the map back to
/// physical positions.
#[derive(Debug, Clone)]
pub struct LogicalLine {
    file: Arc<str>,
    /// The text (comment stripped, continuation joined with one space).
    pub text: String,
    /// (byte offset in `text` where a physical line starts, its line number, byte offset in that
    /// physical line where the copied text starts).
    segs: Vec<(usize, usize, usize)>,
    /// Physical lines of the original each segment came from (for column counting).
    raw: Vec<String>,
}

impl LogicalLine {
    /// The location of byte offset `off` of [`text`](Self::text).
    pub fn loc(&self, off: usize) -> Loc {
        let mut seg = 0;
        for (i, s) in self.segs.iter().enumerate() {
            if s.0 <= off {
                seg = i;
            }
        }
        let (start, line, phys_off) = self.segs.get(seg).copied().unwrap_or((0, 1, 0));
        let raw = self.raw.get(seg).map(String::as_str).unwrap_or("");
        let byte_in_phys = phys_off + off.saturating_sub(start);
        let col = raw
            .get(..byte_in_phys.min(raw.len()))
            .map(|s| s.chars().count())
            .unwrap_or(byte_in_phys)
            + 1;
        Loc {
            file: Arc::clone(&self.file),
            line,
            col,
        }
    }

    /// The location of the line's first character.
    pub fn start(&self) -> Loc {
        self.loc(0)
    }

    /// A line made of `text` alone, located at `file:line` (tests, `--set`, profile vars).
    pub fn single(file: &str, line: usize, text: &str) -> LogicalLine {
        LogicalLine {
            file: Arc::from(file),
            text: text.to_owned(),
            segs: vec![(0, line, 0)],
            raw: vec![text.to_owned()],
        }
    }
}

/// Byte offset of a `#` comment in `line`, ignoring `#` inside `"strings"`.
fn comment_start(line: &str) -> Option<usize> {
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if in_str {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
        } else if c == '#' {
            return Some(i);
        }
    }
    None
}

/// Splits a file into logical lines, dropping blank and comment-only ones.
///
/// # Errors
/// A `\` continuation on the last line of the file.
pub fn logical_lines(file: &str, text: &str) -> Result<Vec<LogicalLine>, SyntaxError> {
    let file: Arc<str> = Arc::from(file);
    let mut out = Vec::new();
    let mut current: Option<LogicalLine> = None;
    let mut last_line = 0;
    for (idx, raw) in text.lines().enumerate() {
        let number = idx + 1;
        last_line = number;
        let code = match comment_start(raw) {
            Some(i) => raw.get(..i).unwrap_or(raw),
            None => raw,
        };
        let trimmed_end = code.trim_end();
        let (body, continues) = match trimmed_end.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (trimmed_end, false),
        };
        let line = current.get_or_insert_with(|| LogicalLine {
            file: Arc::clone(&file),
            text: String::new(),
            segs: Vec::new(),
            raw: Vec::new(),
        });
        if !line.text.is_empty() {
            line.text.push(' ');
        }
        line.segs.push((line.text.len(), number, 0));
        line.raw.push(raw.to_owned());
        line.text.push_str(body);
        if !continues
            && let Some(done) = current.take()
            && !done.text.trim().is_empty()
        {
            out.push(done);
        }
    }
    if current.is_some() {
        return Err(SyntaxError::new(
            Loc {
                file,
                line: last_line,
                col: 1,
            },
            "the last line ends with `\\` but no line follows",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_continuations_and_strips_comments() {
        let lines = logical_lines(
            "t.apdu",
            "# head\n\n80 CA \\\n  00 00 -> 9000 # c\n\"a#b\" -> any\n",
        )
        .unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].text, "80 CA    00 00 -> 9000");
        assert_eq!(lines[0].start().to_string(), "t.apdu:3:1");
        // "00" on the physical line 4 at column 3.
        let off = lines[0].text.find("00").unwrap();
        assert_eq!(lines[0].loc(off).to_string(), "t.apdu:4:3");
        assert_eq!(lines[1].text, "\"a#b\" -> any");
    }

    #[test]
    fn dangling_continuation_is_an_error() {
        let e = logical_lines("t.apdu", "80 CA \\").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.apdu:1:1: the last line ends with `\\` but no line follows"
        );
    }
}
