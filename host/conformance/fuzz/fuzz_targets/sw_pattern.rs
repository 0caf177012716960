//! Fuzz target: response expectations — the status-word pattern language (`9000`, `63Cx`,
//! `9000|6A82`, `any`, `torn`) and the data patterns before it (`simkit_conformance::pattern`).
//!
//! The input's first line is the expectation; the bytes after the first `\n` are response data,
//! their first two bytes also a status word.
//!
//! - No text panics the parser, and no data panics the matcher.
//! - Parsing and matching are deterministic; the expectation's text as written parses to the
//!   same expectation, and the status-word pattern's text to the same pattern.
//! - Status words: every alternative's value matches; `any` matches everything and accepts a
//!   tear; `torn` alone matches no status word.
//! - Data: a response built from the pattern (its bytes, `..` as 00, captures and `*` filled)
//!   matches it, and the captures come back with the bytes filled in.

#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use simkit_conformance::expr::Vars;
use simkit_conformance::pattern::{DataItem, Expectation, SwAlt, SwPattern};
use simkit_conformance::source::LogicalLine;
use simkit_conformance_fuzz::{default_value, pattern_names};

/// Largest response built from a pattern (a card answers at most 65536 data bytes).
const MAX_BUILT: usize = 65_536;

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(head) else {
        return;
    };
    let line = LogicalLine::single("f.apdu", 1, text);
    let parsed = Expectation::parse(&line, 0);
    assert_eq!(
        parsed,
        Expectation::parse(&line, 0),
        "parsing is deterministic"
    );
    let Ok(expect) = parsed else {
        return;
    };

    let written = expect.text();
    let again = Expectation::parse(&LogicalLine::single("p.apdu", 1, &written), 0)
        .unwrap_or_else(|e| panic!("{text:?} written as {written:?} does not parse: {e}"));
    assert_eq!(
        (&again.data, &again.data_text, &again.sw),
        (&expect.data, &expect.data_text, &expect.sw)
    );
    let loc = line.start();
    assert_eq!(
        SwPattern::parse(&expect.sw.text, &loc).as_ref(),
        Ok(&expect.sw)
    );

    let sw = &expect.sw;
    for alt in &sw.alts {
        if let SwAlt::Word { value, mask } = *alt {
            assert_eq!(value & !mask, 0, "x digits are 0 in the value");
            assert!(sw.matches(value));
        }
    }
    let word = match body {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0x9000,
    };
    if sw.is_any() {
        assert!(sw.matches(word) && sw.accepts_tear());
    }
    if sw.only_tear() {
        assert!(!sw.matches(word) && sw.accepts_tear());
    }

    let mut names = BTreeSet::new();
    pattern_names(&expect, &mut names);
    let vars: Vars = names
        .iter()
        .map(|n| (n.clone(), default_value(n)))
        .collect();
    // Captures whose counts add past usize::MAX (`{a:18446744073709551615} {b:1} 9000`) are
    // matched too: `match_data` sums the lengths saturating and refuses them (f3bc84e).
    let matched = expect.match_data(body, &vars);
    assert_eq!(
        matched,
        expect.match_data(body, &vars),
        "matching is deterministic"
    );

    // Build a response the pattern must accept; `body` fills the variable-length part.
    let mut built = Vec::new();
    let mut want = Vec::new();
    for item in &expect.data {
        match item {
            DataItem::Bytes(b) => built.extend(b.iter().map(|x| x.unwrap_or(0))),
            DataItem::Var(v) => built.extend(vars.get(v).map_or(&[][..], Vec::as_slice)),
            DataItem::Capture(name, Some(n)) => {
                if *n > MAX_BUILT {
                    return;
                }
                let fill: Vec<u8> = (0..*n).map(|i| (i % 251) as u8).collect();
                built.extend(&fill);
                want.push((false, name.clone(), fill));
            }
            DataItem::Capture(name, None) => {
                built.extend(body);
                want.push((true, name.clone(), body.to_vec()));
            }
            DataItem::Star => built.extend(body),
        }
        if built.len() > MAX_BUILT {
            return;
        }
    }
    // Captures come back fixed-length first in order, the `{name:*}` one last.
    want.sort_by_key(|(star, _, _)| *star);
    let want: Vec<(String, Vec<u8>)> = want.into_iter().map(|(_, n, b)| (n, b)).collect();
    match expect.match_data(&built, &vars) {
        Ok(caps) => {
            if !(sw.is_any() && expect.data.is_empty()) {
                assert_eq!(caps, want, "{text:?} on {built:02X?}");
            }
        }
        Err(e) => panic!("{text:?} refuses the response built from it, {built:02X?}: {e}"),
    }
});
