//! `simkit readers`: the PC/SC readers, whether a card is in each, and its ATR.
//!
//! The index shown is what `--card pcsc:INDEX` selects.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use simkit_card::pcsc::{ReaderInfo, list_readers};

use crate::output::Output;

/// Arguments of `simkit readers` (none besides the global `--json`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args, out: &Output) -> Result<ExitCode> {
    let readers = list_readers().context("cannot list PC/SC readers")?;
    out.emit(&to_json(&readers), &text(&readers));
    Ok(ExitCode::SUCCESS)
}

fn to_json(readers: &[ReaderInfo]) -> serde_json::Value {
    json!({
        "readers": readers
            .iter()
            .map(|r| json!({
                "index": r.index,
                "name": r.name,
                "card_present": r.card_present,
                "atr": r.atr.as_ref().map(ToString::to_string),
            }))
            .collect::<Vec<_>>()
    })
}

fn text(readers: &[ReaderInfo]) -> Vec<String> {
    if readers.is_empty() {
        return vec!["no PC/SC readers".to_owned()];
    }
    readers
        .iter()
        .map(|r| match &r.atr {
            Some(atr) => format!("{}: {}  card  ATR {atr}", r.index, r.name),
            None if r.card_present => format!("{}: {}  card", r.index, r.name),
            None => format!("{}: {}  empty", r.index, r.name),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use simkit_card::Atr;

    #[test]
    fn text_and_json_forms() {
        let readers = [
            ReaderInfo {
                index: 0,
                name: "Virtual PCD 00 00".into(),
                card_present: true,
                atr: Some(Atr::new([0x3B, 0x80, 0x01])),
            },
            ReaderInfo {
                index: 1,
                name: "Virtual PCD 00 01".into(),
                card_present: false,
                atr: None,
            },
        ];
        assert_eq!(
            text(&readers),
            [
                "0: Virtual PCD 00 00  card  ATR 3B8001",
                "1: Virtual PCD 00 01  empty"
            ]
        );
        assert_eq!(
            to_json(&readers).to_string(),
            r#"{"readers":[{"atr":"3B8001","card_present":true,"index":0,"name":"Virtual PCD 00 00"},{"atr":null,"card_present":false,"index":1,"name":"Virtual PCD 00 01"}]}"#
        );
        assert_eq!(text(&[]), ["no PC/SC readers"]);
    }
}
