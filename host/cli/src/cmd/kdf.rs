//! `simkit kdf`: derive a module's request and grant keys (crypto.md §3) and print their key
//! check values; the keys themselves only with `--show-keys`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use simkit_core::crypto::Profile;
use simkit_core::crypto::kdf::derive_module_keys;
use simkit_core::crypto::key::profile_kcv;
use simkit_core::hexutil::{parse_hex_array, to_hex};

use crate::keyarg::MasterArgs;
use crate::output::Output;

/// Arguments of `simkit kdf`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Crypto profile: aes-cmac, retail-mac or desx-cbc.
    #[arg(long)]
    profile: Profile,
    #[command(flatten)]
    master: MasterArgs,
    /// Module id, 8 bytes in hex.
    #[arg(long)]
    module_id: String,
    /// Also print the derived keys (secret!). Without it only key check values are printed.
    #[arg(long)]
    show_keys: bool,
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    let master = args.master.load()?;
    let id: [u8; 8] = parse_hex_array(&args.module_id, "module id").context("--module-id")?;
    let keys = derive_module_keys(args.profile, &master, &id)?;
    let master_kcv = to_hex(&profile_kcv(args.profile, &master)?);
    let req_kcv = to_hex(&profile_kcv(args.profile, &keys.request)?);
    let grant_kcv = to_hex(&profile_kcv(args.profile, &keys.grant)?);
    let mut value = json!({
        "profile": args.profile.name(),
        "module_id": to_hex(&id),
        "master_kcv": master_kcv,
        "request_key_kcv": req_kcv,
        "grant_key_kcv": grant_kcv,
    });
    let mut text = vec![
        format!("profile          {}", args.profile),
        format!("module id        {}", to_hex(&id)),
        format!("master key KCV   {master_kcv}"),
        format!("request key KCV  {req_kcv}"),
        format!("grant key KCV    {grant_kcv}"),
    ];
    if args.show_keys {
        let req = to_hex(keys.request.expose_secret());
        let grant = to_hex(keys.grant.expose_secret());
        text.push(format!("request key      {req}"));
        text.push(format!("grant key        {grant}"));
        value["request_key"] = json!(req);
        value["grant_key"] = json!(grant);
    }
    out.emit(&value, &text);
    Ok(ExitCode::SUCCESS)
}
