//! `simkit personalise`: personalise a credit module from a profile file and write the
//! registration record the grant signer imports.
//!
//! The profile is TOML (see `docs` in the README and `examples/personalise.toml`):
//!
//! ```toml
//! module_id = "0102030405060708"
//! profile = "aes-cmac"
//! fraud_threshold = 5
//! server_address = "https://reload.example/v1"
//! [master_key]
//! env = "SIMKIT_MASTER_KEY"      # or: file = "master.hex"
//! [limits]
//! min_reload = 100
//! max_reload = 50000
//! upper = 100000
//! credit_line = 2000
//! [initial]
//! balance = 0
//! n = 0
//! ```
//!
//! The master key never sits in the profile itself: it comes from an environment variable or a
//! file, so profiles can be shared and versioned.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::json;
use simkit_card::credit::CreditClient;
use simkit_core::credit::Limits;
use simkit_core::credit::commands::{InitialCounters, PersonalisationData};
use simkit_core::credit::registration::Registration;
use simkit_core::crypto::Profile;
use simkit_core::crypto::kdf::derive_module_keys;
use simkit_core::crypto::key::SecretKey;
use simkit_core::hexutil::parse_hex_array;

use crate::cardarg::CardArg;
use crate::keyarg::load_key;
use crate::output::Output;

/// Arguments of `simkit personalise`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    card: CardArg,
    /// The personalisation profile (TOML).
    #[arg(long, value_name = "FILE.toml")]
    profile: PathBuf,
    /// Where to write the registration record (default: registration-<module id>.json).
    #[arg(long, value_name = "FILE")]
    registration_out: Option<PathBuf>,
    /// Load the data but do not LOCK (the card stays in personalisation state).
    #[arg(long)]
    no_lock: bool,
}

/// Where the master key comes from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MasterKeySource {
    env: Option<String>,
    file: Option<PathBuf>,
}

/// A personalisation profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersoProfile {
    module_id: String,
    profile: Profile,
    #[serde(default = "default_threshold")]
    fraud_threshold: u16,
    #[serde(default)]
    server_address: String,
    master_key: MasterKeySource,
    limits: Limits,
    #[serde(default)]
    initial: Initial,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Initial {
    #[serde(default)]
    balance: i32,
    #[serde(default)]
    n: u32,
}

fn default_threshold() -> u16 {
    5
}

/// A profile, read and checked, with its master key loaded.
pub(crate) struct Loaded {
    pub(crate) data: PersonalisationData,
    pub(crate) registration: Registration,
}

/// Reads and checks a profile file; every error names the file and the field.
pub(crate) fn load_profile(path: &Path) -> Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading profile {}", path.display()))?;
    let p: PersoProfile =
        toml::from_str(&text).with_context(|| format!("profile {}", path.display()))?;
    let where_ = |field: &str| format!("profile {}: {field}", path.display());
    let module_id: [u8; 8] =
        parse_hex_array(&p.module_id, "module id").with_context(|| where_("module_id"))?;
    p.limits.validate().with_context(|| where_("[limits]"))?;
    if p.fraud_threshold == 0 {
        bail!("{}: must be at least 1", where_("fraud_threshold"));
    }
    if p.server_address.len() > 64 {
        bail!(
            "{}: at most 64 bytes, got {}",
            where_("server_address"),
            p.server_address.len()
        );
    }
    let (lo, hi) = (-i64::from(p.limits.credit_line), i64::from(p.limits.upper));
    if !(lo..=hi).contains(&i64::from(p.initial.balance)) {
        bail!(
            "{}: balance {} must lie in [-credit_line, upper] = [{lo}, {hi}]",
            where_("[initial]"),
            p.initial.balance
        );
    }
    // A relative key file is relative to the profile, like any path inside a config file.
    let key_file = p.master_key.file.as_ref().map(|f| match path.parent() {
        Some(dir) if f.is_relative() => dir.join(f),
        _ => f.clone(),
    });
    let master: SecretKey = load_key(
        None,
        p.master_key.env.as_deref(),
        key_file.as_ref(),
        "[master_key]",
    )
    .with_context(|| where_("[master_key]"))?;
    let keys = derive_module_keys(p.profile, &master, &module_id)
        .with_context(|| where_("[master_key]"))?;
    let mut data =
        PersonalisationData::complete(p.profile, module_id, &keys, p.limits, p.fraud_threshold);
    data.initial = Some(InitialCounters {
        balance: p.initial.balance,
        n: p.initial.n,
    });
    data.server_address = Some(p.server_address.clone().into_bytes());
    let registration = Registration::new(
        module_id,
        p.profile,
        &master,
        p.initial.n,
        p.initial.balance,
        p.limits,
        p.fraud_threshold,
        p.server_address,
    )?;
    Ok(Loaded { data, registration })
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    let loaded = load_profile(&args.profile)?;
    let reg = &loaded.registration;
    let (mut channel, uri) = args.card.open()?;
    let mut client = CreditClient::new(&mut channel);
    client.select().context("selecting the credit module")?;
    client.personalise(&loaded.data).context("PERSONALISE")?;
    if !args.no_lock {
        client.lock().context("LOCK")?;
    }
    let status = client.status().context("GET STATUS")?;
    let out_path = args.registration_out.unwrap_or_else(|| {
        PathBuf::from(format!(
            "registration-{}.json",
            simkit_core::hexutil::to_hex(&reg.module_id)
        ))
    });
    let text = serde_json::to_string_pretty(reg)? + "\n";
    std::fs::write(&out_path, text).with_context(|| format!("writing {}", out_path.display()))?;
    let mut lines = vec![
        format!(
            "personalised module {} ({}) on {uri}",
            simkit_core::hexutil::to_hex(&reg.module_id),
            reg.profile
        ),
        format!("  master key KCV   {}", reg.master_key_kcv),
        format!("  request key KCV  {}", reg.request_key_kcv),
        format!("  grant key KCV    {}", reg.grant_key_kcv),
        format!("  lifecycle        {:?}", status.lifecycle),
        format!("  balance {}  N {}", status.balance, status.n),
        format!("  registration     {}", out_path.display()),
    ];
    if let Some(note) = CardArg::ephemeral_note(&uri) {
        lines.push(note.to_owned());
    }
    out.emit(
        &json!({
            "card": uri.to_string(),
            "registration_file": out_path.display().to_string(),
            "registration": reg,
            "lifecycle": format!("{:?}", status.lifecycle),
        }),
        &lines,
    );
    Ok(ExitCode::SUCCESS)
}
