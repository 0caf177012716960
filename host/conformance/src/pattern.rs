//! Expectations: `[DATA-PATTERN] SW-PATTERN`, parsed from the right of `->`, and matching a
//! response against them (with captures).
//!
//! This module decides whether bytes match; it does not send anything and does not know what a
//! status word means (that is `simkit_core::status::Sw`).

use simkit_core::hexutil::to_hex;

use crate::expr::{Vars, lookup};
use crate::source::{Loc, LogicalLine, SyntaxError};

/// One alternative of a status-word pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwAlt {
    /// `value` under `mask` (`63Cx`: value 63C0, mask FFF0).
    Word {
        /// The fixed nibbles.
        value: u16,
        /// Which nibbles are fixed.
        mask: u16,
    },
    /// `any`: everything, a tear included.
    Any,
    /// `torn`: the command lost power in an armed tear.
    Torn,
}

/// A status-word pattern: alternatives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwPattern {
    /// The alternatives, in the order written.
    pub alts: Vec<SwAlt>,
    /// The text as written, for reports.
    pub text: String,
}

impl SwPattern {
    /// Whether status word `sw` matches.
    pub fn matches(&self, sw: u16) -> bool {
        self.alts.iter().any(|a| match *a {
            SwAlt::Word { value, mask } => sw & mask == value,
            SwAlt::Any => true,
            SwAlt::Torn => false,
        })
    }

    /// Whether a power loss (tear) is acceptable.
    pub fn accepts_tear(&self) -> bool {
        self.alts
            .iter()
            .any(|a| matches!(a, SwAlt::Any | SwAlt::Torn))
    }

    /// Whether only a tear is acceptable.
    pub fn only_tear(&self) -> bool {
        self.alts.iter().all(|a| matches!(a, SwAlt::Torn))
    }

    /// Whether this is `any`.
    pub fn is_any(&self) -> bool {
        self.alts.iter().any(|a| matches!(a, SwAlt::Any))
    }

    /// Parses `9000`, `63Cx`, `9000|6A82`, `any`, `torn` (spaces around `|` already removed).
    ///
    /// # Errors
    /// An alternative that is none of these.
    pub fn parse(text: &str, loc: &Loc) -> Result<SwPattern, SyntaxError> {
        let mut alts = Vec::new();
        for alt in text.split('|') {
            let a = if alt.eq_ignore_ascii_case("any") {
                SwAlt::Any
            } else if alt.eq_ignore_ascii_case("torn") {
                SwAlt::Torn
            } else if alt.len() == 4
                && alt
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == 'x' || c == 'X')
            {
                let mut value = 0u16;
                let mut mask = 0u16;
                for c in alt.chars() {
                    value <<= 4;
                    mask <<= 4;
                    if let Some(d) = c.to_digit(16) {
                        value |= u16::try_from(d).unwrap_or(0);
                        mask |= 0xF;
                    }
                }
                SwAlt::Word { value, mask }
            } else {
                return Err(SyntaxError::new(
                    loc.clone(),
                    format!(
                        "status word pattern {alt:?} must be 4 hex digits (x for any digit), any or torn"
                    ),
                ));
            };
            alts.push(a);
        }
        Ok(SwPattern {
            alts,
            text: text.to_owned(),
        })
    }
}

/// One item of a data pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataItem {
    /// Bytes, `None` for `..` (any one byte).
    Bytes(Vec<Option<u8>>),
    /// `*`.
    Star,
    /// `$var`.
    Var(String),
    /// `{name:N}` (`Some(N)`) or `{name:*}` (`None`).
    Capture(String, Option<usize>),
}

/// An expectation: data pattern and status-word pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The data items; empty means the data must be empty.
    pub data: Vec<DataItem>,
    /// The data pattern as written (for reports).
    pub data_text: String,
    /// The status word.
    pub sw: SwPattern,
    /// Where the expectation starts.
    pub loc: Loc,
}

fn is_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Expectation {
    /// Parses `line.text[start..]` as an expectation.
    ///
    /// # Errors
    /// A missing status word, a bad item, two `*`.
    pub fn parse(line: &LogicalLine, start: usize) -> Result<Expectation, SyntaxError> {
        let text = line.text.get(start..).unwrap_or("");
        let mut toks: Vec<(usize, &str)> = Vec::new();
        let mut i = 0;
        for part in text.split_ascii_whitespace() {
            let off = text
                .get(i..)
                .and_then(|r| r.find(part))
                .map_or(i, |o| o + i);
            toks.push((start + off, part));
            i = off + part.len();
        }
        let Some(&(mut sw_off, last)) = toks.last() else {
            return Err(SyntaxError::new(
                line.loc(start),
                "expected a status word after `->` (e.g. 9000)",
            ));
        };
        let mut sw_text = last.to_owned();
        let mut n = toks.len() - 1;
        while n > 0
            && (sw_text.starts_with('|') || toks.get(n - 1).is_some_and(|t| t.1.ends_with('|')))
        {
            n -= 1;
            if let Some(&(off, t)) = toks.get(n) {
                sw_text = format!("{t}{sw_text}");
                sw_off = off;
            }
        }
        let sw = SwPattern::parse(&sw_text, &line.loc(sw_off))?;
        let mut data = Vec::new();
        let mut stars = 0;
        for &(off, tok) in toks.get(..n).unwrap_or(&[]) {
            let loc = line.loc(off);
            let item = if tok == "*" {
                DataItem::Star
            } else if let Some(v) = tok.strip_prefix('$') {
                if !is_name(v) {
                    return Err(SyntaxError::new(loc, format!("{tok:?} is not a variable")));
                }
                DataItem::Var(v.to_owned())
            } else if let Some(inner) = tok.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                let Some((name, count)) = inner.split_once(':') else {
                    return Err(SyntaxError::new(
                        loc,
                        format!("capture {tok:?} must be {{name:N}} or {{name:*}}"),
                    ));
                };
                if !is_name(name) {
                    return Err(SyntaxError::new(
                        loc,
                        format!("capture name {name:?} is not a variable name"),
                    ));
                }
                let count = if count == "*" {
                    None
                } else {
                    Some(count.parse::<usize>().map_err(|_| {
                        SyntaxError::new(
                            loc.clone(),
                            format!("capture {tok:?}: {count:?} is not a byte count"),
                        )
                    })?)
                };
                DataItem::Capture(name.to_owned(), count)
            } else {
                let chars: Vec<char> = tok.chars().collect();
                if chars.len() % 2 != 0 {
                    return Err(SyntaxError::new(
                        loc,
                        format!("odd number of hex digits in {tok:?}"),
                    ));
                }
                let mut bytes = Vec::new();
                for pair in chars.chunks(2) {
                    match pair {
                        ['.', '.'] => bytes.push(None),
                        [a, b] if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => {
                            let v = a.to_digit(16).unwrap_or(0) * 16 + b.to_digit(16).unwrap_or(0);
                            bytes.push(Some(u8::try_from(v).unwrap_or(0)));
                        }
                        _ => {
                            return Err(SyntaxError::new(
                                loc,
                                format!(
                                    "{tok:?} is not a data pattern item (hex, .., *, $var, {{name:N}})"
                                ),
                            ));
                        }
                    }
                }
                DataItem::Bytes(bytes)
            };
            if matches!(item, DataItem::Star | DataItem::Capture(_, None)) {
                stars += 1;
                if stars > 1 {
                    return Err(SyntaxError::new(
                        loc,
                        "a data pattern may hold only one `*` or `{name:*}`",
                    ));
                }
            }
            data.push(item);
        }
        let data_text = toks
            .get(..n)
            .unwrap_or(&[])
            .iter()
            .map(|t| t.1)
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Expectation {
            data,
            data_text,
            sw,
            loc: line.loc(start),
        })
    }

    /// The expectation as written.
    pub fn text(&self) -> String {
        if self.data_text.is_empty() {
            self.sw.text.clone()
        } else {
            format!("{} {}", self.data_text, self.sw.text)
        }
    }

    /// Matches response `data`; on success returns the captures, on failure why not.
    ///
    /// # Errors
    /// A description of the first difference (or an unset `$var`).
    pub fn match_data(&self, data: &[u8], vars: &Vars) -> Result<Vec<(String, Vec<u8>)>, String> {
        if self.sw.is_any() && self.data.is_empty() {
            return Ok(Vec::new());
        }
        // Resolve into fixed elements around at most one variable-length item.
        enum El {
            Byte(Option<u8>),
            Cap(String, usize),
        }
        let mut pre: Vec<El> = Vec::new();
        let mut post: Vec<El> = Vec::new();
        let mut star: Option<Option<String>> = None;
        for item in &self.data {
            let target = if star.is_some() { &mut post } else { &mut pre };
            match item {
                DataItem::Bytes(b) => target.extend(b.iter().map(|x| El::Byte(*x))),
                DataItem::Var(name) => {
                    let v = lookup(vars, name, &self.loc).map_err(|e| e.message)?;
                    target.extend(v.iter().map(|x| El::Byte(Some(*x))));
                }
                DataItem::Capture(name, Some(n)) => target.push(El::Cap(name.clone(), *n)),
                DataItem::Star => star = Some(None),
                DataItem::Capture(name, None) => star = Some(Some(name.clone())),
            }
        }
        // Saturating: a capture length is whatever the script wrote (`{a:18446744073709551615}`),
        // and a saturated length is larger than any response, so it is refused below.
        let len = |v: &[El]| -> usize {
            v.iter()
                .map(|e| match e {
                    El::Byte(_) => 1,
                    El::Cap(_, n) => *n,
                })
                .fold(0usize, usize::saturating_add)
        };
        let (pl, ql) = (len(&pre), len(&post));
        match &star {
            None if data.len() != pl => {
                return Err(format!("expected {pl} data bytes, got {}", data.len()));
            }
            Some(_) if data.len() < pl.saturating_add(ql) => {
                return Err(format!(
                    "expected at least {} data bytes, got {}",
                    pl.saturating_add(ql),
                    data.len()
                ));
            }
            _ => {}
        }
        let mut caps = Vec::new();
        let mut walk = |els: &[El], base: usize| -> Result<(), String> {
            let mut off = base;
            for e in els {
                match e {
                    El::Byte(b) => {
                        let got = data.get(off).copied().unwrap_or(0);
                        if let Some(want) = b
                            && *want != got
                        {
                            return Err(format!(
                                "data byte {off}: expected {want:02X}, got {got:02X}"
                            ));
                        }
                        off += 1;
                    }
                    El::Cap(name, n) => {
                        caps.push((name.clone(), data.get(off..off + n).unwrap_or(&[]).to_vec()));
                        off += n;
                    }
                }
            }
            Ok(())
        };
        walk(&pre, 0)?;
        walk(&post, data.len() - ql)?;
        if let Some(Some(name)) = star {
            caps.push((name, data.get(pl..data.len() - ql).unwrap_or(&[]).to_vec()));
        }
        Ok(caps)
    }
}

/// Hex of response data for reports, `(none)` when empty.
pub fn show_data(data: &[u8]) -> String {
    if data.is_empty() {
        "(none)".to_owned()
    } else {
        to_hex(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(text: &str) -> Expectation {
        let line = LogicalLine::single("t.apdu", 1, text);
        Expectation::parse(&line, 0).unwrap()
    }

    fn err(text: &str) -> String {
        let line = LogicalLine::single("t.apdu", 1, text);
        Expectation::parse(&line, 0).unwrap_err().to_string()
    }

    fn hx(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn status_words() {
        let e = exp("9000 | 6A82");
        assert!(e.sw.matches(0x9000) && e.sw.matches(0x6A82) && !e.sw.matches(0x6A80));
        assert!(e.data.is_empty());
        let m = exp("63Cx");
        assert!(m.sw.matches(0x63C2) && !m.sw.matches(0x6382));
        assert!(exp("61xx").sw.matches(0x6110));
        assert!(exp("any").sw.accepts_tear());
        assert!(exp("9000|torn").sw.accepts_tear());
        assert!(exp("torn").sw.only_tear());
        assert_eq!(
            err("90000"),
            "t.apdu:1:1: status word pattern \"90000\" must be 4 hex digits (x for any digit), any or torn"
        );
        assert_eq!(
            err("  "),
            "t.apdu:1:1: expected a status word after `->` (e.g. 9000)"
        );
    }

    #[test]
    fn data_patterns_and_captures() {
        let vars = Vars::new();
        let e = exp("{balance:4} {n:4} .. * 9000");
        let caps = e
            .match_data(&hx("00000064 00000007 AA BBCC"), &vars)
            .unwrap();
        assert_eq!(
            caps,
            vec![
                ("balance".to_owned(), hx("00000064")),
                ("n".to_owned(), hx("00000007"))
            ]
        );
        assert_eq!(
            e.match_data(&hx("0000"), &vars).unwrap_err(),
            "expected at least 9 data bytes, got 2"
        );
        let e = exp("01..03 {rest:*} FF 9000");
        assert_eq!(
            e.match_data(&hx("01 02 03 04 05 FF"), &vars).unwrap(),
            vec![("rest".to_owned(), hx("0405"))]
        );
        assert_eq!(
            e.match_data(&hx("01 02 04 FF"), &vars).unwrap_err(),
            "data byte 2: expected 03, got 04"
        );
        let e = exp("9000");
        assert_eq!(
            e.match_data(&hx("01"), &vars).unwrap_err(),
            "expected 0 data bytes, got 1"
        );
        let mut v = Vars::new();
        v.insert("x".into(), hx("AABB"));
        let e = exp("$x * 9000");
        assert!(e.match_data(&hx("AABB00"), &v).is_ok());
        assert_eq!(
            e.match_data(&hx("AABB00"), &vars).unwrap_err(),
            "variable $x is not set"
        );
    }

    #[test]
    fn capture_lengths_past_usize_are_refused_not_overflowed() {
        // Found by the sw_pattern fuzz target: the sum of the lengths overflowed (a panic in
        // debug builds, a wrong match in release ones).
        let vars = Vars::new();
        let e = exp("{a:18446744073709551615} {b:1} 9000");
        assert_eq!(
            e.match_data(&hx("01 02"), &vars).unwrap_err(),
            format!("expected {} data bytes, got 2", usize::MAX)
        );
        let e = exp("{a:18446744073709551615} * {b:1} 9000");
        assert_eq!(
            e.match_data(&hx("01 02"), &vars).unwrap_err(),
            format!("expected at least {} data bytes, got 2", usize::MAX)
        );
    }

    #[test]
    fn pattern_errors_pinned() {
        assert_eq!(
            err("* * 9000"),
            "t.apdu:1:3: a data pattern may hold only one `*` or `{name:*}`"
        );
        assert_eq!(
            err("ABC 9000"),
            "t.apdu:1:1: odd number of hex digits in \"ABC\""
        );
        assert_eq!(
            err("{a} 9000"),
            "t.apdu:1:1: capture \"{a}\" must be {name:N} or {name:*}"
        );
        assert_eq!(
            err("{a:z} 9000"),
            "t.apdu:1:1: capture \"{a:z}\": \"z\" is not a byte count"
        );
        assert_eq!(
            err("0G 9000"),
            "t.apdu:1:1: \"0G\" is not a data pattern item (hex, .., *, $var, {name:N})"
        );
    }
}
