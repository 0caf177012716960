//! `simkit mac`: compute a MAC over hex data with one of the supported algorithms.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use serde_json::json;
use simkit_core::crypto::mac::{self, Padding};
use simkit_core::hexutil::{parse_hex, to_hex};

use crate::keyarg::KeyArgs;
use crate::output::Output;

/// MAC algorithms of `simkit mac`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Alg {
    /// ISO/IEC 9797-1 MAC algorithm 1 (CBC-MAC); key: 8 bytes DES, or 16/24 bytes 3DES.
    #[value(name = "iso9797-1-m1")]
    Iso97971M1,
    /// ISO/IEC 9797-1 MAC algorithm 3 (retail MAC); key: 16 bytes K‖K′.
    #[value(name = "iso9797-1-m3")]
    Iso97971M3,
    /// CBC-MAC with DES-X as the block function; key: 24 bytes DESKEY‖PRE‖POST (OpenSSL's order).
    #[value(name = "desx-cbc")]
    DesxCbc,
    /// AES-128 CMAC (NIST SP 800-38B); key: 16 bytes. No padding option.
    #[value(name = "aes-cmac")]
    AesCmac,
}

/// Arguments of `simkit mac`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "For desx-cbc the 24-byte key is DESKEY‖PRE‖POST, the order OpenSSL uses \
(Crypto++'s DES_XEX3 uses PRE‖DESKEY‖POST).\n\nExample (ISO/IEC 9797-1 Annex B.4):\n  simkit mac --alg \
iso9797-1-m3 --padding 1 --key 0123456789ABCDEFFEDCBA9876543210 --data 4E6F77206973207468652074696D6520666F7220616C6C20"
)]
pub(crate) struct Args {
    /// The MAC algorithm.
    #[arg(long, value_enum)]
    alg: Alg,
    /// ISO/IEC 9797-1 padding method for the DES-based algorithms (1: zeros, 2: 80 then zeros).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    padding: Option<u8>,
    #[command(flatten)]
    key: KeyArgs,
    /// The data in hex (spaces allowed); empty string for no data.
    #[arg(long, allow_hyphen_values = true)]
    data: String,
    /// Output only the leftmost N bytes of the MAC.
    #[arg(long, value_name = "N")]
    tag_len: Option<usize>,
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    let key = args.key.load("key")?;
    let data = parse_hex(&args.data).context("--data is not valid hex")?;
    let padding = match args.padding {
        None | Some(2) => Padding::Method2,
        Some(_) => Padding::Method1,
    };
    let (name, full): (&str, Vec<u8>) = match args.alg {
        Alg::Iso97971M1 => (
            "iso9797-1-m1",
            mac::iso9797_1_alg1(key.expose_secret(), padding, &data)?.to_vec(),
        ),
        Alg::Iso97971M3 => (
            "iso9797-1-m3",
            mac::iso9797_1_alg3(key.expose_secret(), padding, &data)?.to_vec(),
        ),
        Alg::DesxCbc => (
            "desx-cbc",
            mac::desx_cbc_mac(key.expose_secret(), padding, &data)?.to_vec(),
        ),
        Alg::AesCmac => {
            if args.padding.is_some() {
                bail!("--padding does not apply to aes-cmac (CMAC pads internally)");
            }
            (
                "aes-cmac",
                mac::aes_cmac(key.expose_secret(), &data)?.to_vec(),
            )
        }
    };
    let tag_len = args.tag_len.unwrap_or(full.len());
    if tag_len == 0 || tag_len > full.len() {
        bail!(
            "--tag-len must be between 1 and {} for {name}, got {tag_len}",
            full.len()
        );
    }
    let tag = to_hex(full.get(..tag_len).unwrap_or(&full));
    let padding_name = match args.alg {
        Alg::AesCmac => None,
        _ => Some(if matches!(padding, Padding::Method1) {
            1
        } else {
            2
        }),
    };
    out.emit(
        &json!({ "alg": name, "padding": padding_name, "tag_len": tag_len, "mac": tag }),
        std::slice::from_ref(&tag),
    );
    Ok(ExitCode::SUCCESS)
}
