//! `simkit sw`: the meaning of a status word, ISO 7816-4 or simkit-specific.

use std::process::ExitCode;

use anyhow::{Result, bail};
use serde_json::json;
use simkit_core::hexutil::parse_hex;
use simkit_core::status::Sw;

use crate::output::Output;

/// Arguments of `simkit sw`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The status word: 4 hex digits, e.g. 6982 or "69 82".
    sw: String,
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    let bytes = parse_hex(&args.sw)?;
    let [sw1, sw2] = bytes[..] else {
        bail!(
            "a status word is 2 bytes (4 hex digits), got {} bytes",
            bytes.len()
        );
    };
    let sw = Sw::from_bytes(sw1, sw2);
    let text = sw.to_string();
    out.emit(
        &json!({ "sw": format!("{:04X}", sw.to_u16()), "meaning": sw.meaning(), "display": text }),
        std::slice::from_ref(&text),
    );
    Ok(ExitCode::SUCCESS)
}
