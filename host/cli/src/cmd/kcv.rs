//! `simkit kcv`: the key check value of a key (crypto.md §4).

use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;
use simkit_core::crypto::key::{KeyAlg, kcv};
use simkit_core::hexutil::to_hex;

use crate::keyarg::KeyArgs;
use crate::output::Output;

/// Arguments of `simkit kcv`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    key: KeyArgs,
    /// Key algorithm: des (8 bytes DES, 16/24 bytes 3DES: encrypts 8 zero bytes), desx
    /// (24 bytes DESKEY‖PRE‖POST) or aes (16 bytes: encrypts sixteen 01 bytes, as SCP03).
    #[arg(long, default_value = "des")]
    alg: KeyAlg,
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    let key = args.key.load("key")?;
    // `des` on the command line covers single and triple DES, chosen by the key length.
    let alg = match (args.alg, key.len()) {
        (KeyAlg::Des, 16 | 24) => KeyAlg::Tdes,
        (alg, _) => alg,
    };
    let value = to_hex(&kcv(key.expose_secret(), alg)?);
    out.emit(
        &json!({ "kcv": value, "key_len": key.len() }),
        std::slice::from_ref(&value),
    );
    Ok(ExitCode::SUCCESS)
}
