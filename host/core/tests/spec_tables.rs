//! The status-word table of `applet-spec/status-words.md` and the Rust `Sw` enum must say the
//! same thing: every row's code maps to the variant of that name and prints that meaning, and
//! every applet-specific code the enum knows has a row.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use simkit_core::status::Sw;

fn spec_rows() -> BTreeMap<u16, (String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../applet-spec/status-words.md"
    );
    let text = std::fs::read_to_string(path).expect("read applet-spec/status-words.md");
    let mut rows = BTreeMap::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | XXXX | Name | meaning |  → ["", "XXXX", "Name", "meaning", ""]
        if cells.len() != 5 || cells[1].len() != 4 {
            continue;
        }
        let Ok(code) = u16::from_str_radix(cells[1], 16) else {
            continue;
        };
        let previous = rows.insert(code, (cells[2].to_owned(), cells[3].to_owned()));
        assert!(previous.is_none(), "status word {code:04X} listed twice");
    }
    rows
}

#[test]
fn every_spec_row_matches_the_enum() {
    let rows = spec_rows();
    assert!(
        rows.len() >= 30,
        "only {} rows parsed: table format changed?",
        rows.len()
    );
    for (code, (name, meaning)) in &rows {
        let sw = Sw::from_u16(*code);
        assert_eq!(format!("{sw:?}"), *name, "variant name of {code:04X}");
        assert_eq!(sw.meaning(), meaning.as_str(), "meaning of {code:04X}");
        assert_eq!(sw.to_string(), format!("{code:04X} {meaning}"));
    }
}

#[test]
fn every_applet_specific_code_is_in_the_spec() {
    let rows = spec_rows();
    for code in 0x9C00u16..=0x9DFF {
        let sw = Sw::from_u16(code);
        let known = !matches!(sw, Sw::Unknown(_));
        assert_eq!(
            known,
            rows.contains_key(&code),
            "{code:04X}: enum and spec disagree"
        );
    }
}
