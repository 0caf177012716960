//! Key input shared by the commands that take secret keys. A key can come from the command line
//! (`--key HEX`, convenient for test vectors but visible in `ps` and shell history), from an
//! environment variable, or from a file holding hex; exactly one source must be given. Keys go
//! straight into `SecretKey`, which zeroizes on drop and never prints its bytes.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use simkit_core::crypto::key::SecretKey;
use simkit_core::hexutil::parse_hex;
use zeroize::Zeroizing;

/// The three ways to pass one key; `what` names it in errors ("master key").
pub(crate) fn load_key(
    hex: Option<&str>,
    env: Option<&str>,
    file: Option<&PathBuf>,
    what: &str,
) -> Result<SecretKey> {
    let text: Zeroizing<String> = match (hex, env, file) {
        (Some(h), None, None) => Zeroizing::new(h.to_owned()),
        (None, Some(var), None) => Zeroizing::new(
            std::env::var(var)
                .with_context(|| format!("{what}: environment variable {var} is not set"))?,
        ),
        (None, None, Some(path)) => Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("{what}: cannot read {}", path.display()))?,
        ),
        (None, None, None) => {
            bail!("{what} missing: give it as hex, in an environment variable or in a file")
        }
        _ => bail!(
            "{what} given more than once: use exactly one of hex, environment variable or file"
        ),
    };
    let bytes =
        Zeroizing::new(parse_hex(text.trim()).with_context(|| format!("{what} is not valid hex"))?);
    Ok(SecretKey::new(&bytes))
}

/// `--key HEX | --key-env VAR | --key-file FILE`: a key given to a command.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct KeyArgs {
    /// The key in hex. Prefer --key-env or --key-file for real keys (visible in `ps` otherwise).
    #[arg(long)]
    key: Option<String>,
    /// Read the key (hex) from this environment variable.
    #[arg(long, value_name = "VAR")]
    key_env: Option<String>,
    /// Read the key (hex) from this file.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

impl KeyArgs {
    /// Whether any of the three options was given.
    pub(crate) fn is_given(&self) -> bool {
        self.key.is_some() || self.key_env.is_some() || self.key_file.is_some()
    }

    /// Loads the key; `what` names it in errors.
    pub(crate) fn load(&self, what: &str) -> Result<SecretKey> {
        load_key(
            self.key.as_deref(),
            self.key_env.as_deref(),
            self.key_file.as_ref(),
            what,
        )
    }
}

/// `--master HEX | --master-env VAR | --master-file FILE`: an issuer master key.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct MasterArgs {
    /// Issuer master key in hex (16 bytes; 24 for desx-cbc). Prefer --master-env / --master-file.
    #[arg(long)]
    master: Option<String>,
    /// Read the master key (hex) from this environment variable.
    #[arg(long, value_name = "VAR")]
    master_env: Option<String>,
    /// Read the master key (hex) from this file.
    #[arg(long, value_name = "FILE")]
    master_file: Option<PathBuf>,
}

impl MasterArgs {
    /// Whether any of the three options was given.
    pub(crate) fn is_given(&self) -> bool {
        self.master.is_some() || self.master_env.is_some() || self.master_file.is_some()
    }

    /// Loads the master key.
    pub(crate) fn load(&self) -> Result<SecretKey> {
        load_key(
            self.master.as_deref(),
            self.master_env.as_deref(),
            self.master_file.as_ref(),
            "master key",
        )
    }
}

/// `--pkcs11-module LIB (--pkcs11-slot N | --pkcs11-token LABEL) --pkcs11-pin-env VAR
/// --pkcs11-key-label LABEL`: an issuer master key inside a PKCS#11 token (aes-cmac only).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct Pkcs11Args {
    /// PKCS#11 module holding the master key (e.g. /usr/lib/softhsm/libsofthsm2.so). The key
    /// never leaves the token; only the aes-cmac profile can be served this way.
    #[arg(long, value_name = "LIB", requires_all = ["pkcs11_pin_env", "pkcs11_key_label"])]
    pkcs11_module: Option<PathBuf>,
    /// Slot id of the token (as `pkcs11-tool -L` lists it).
    #[arg(
        long,
        value_name = "N",
        requires = "pkcs11_module",
        conflicts_with = "pkcs11_token"
    )]
    pkcs11_slot: Option<u64>,
    /// Label of the token (instead of --pkcs11-slot).
    #[arg(long, value_name = "LABEL", requires = "pkcs11_module")]
    pkcs11_token: Option<String>,
    /// Environment variable holding the token's user PIN.
    #[arg(long, value_name = "VAR", requires = "pkcs11_module")]
    pkcs11_pin_env: Option<String>,
    /// CKA_LABEL of the master key object on the token.
    #[arg(long, value_name = "LABEL", requires = "pkcs11_module")]
    pkcs11_key_label: Option<String>,
}

impl Pkcs11Args {
    /// The token configuration, or `None` when --pkcs11-module is not given.
    pub(crate) fn config(&self) -> Result<Option<simkit_server::Pkcs11Config>> {
        let Some(module) = &self.pkcs11_module else {
            return Ok(None);
        };
        let slot = match (self.pkcs11_slot, &self.pkcs11_token) {
            (Some(id), None) => simkit_server::SlotChoice::Id(id),
            (None, Some(label)) => simkit_server::SlotChoice::TokenLabel(label.clone()),
            _ => bail!("--pkcs11-module needs exactly one of --pkcs11-slot or --pkcs11-token"),
        };
        let var = self
            .pkcs11_pin_env
            .as_deref()
            .context("--pkcs11-module needs --pkcs11-pin-env")?;
        let pin = Zeroizing::new(
            std::env::var(var)
                .with_context(|| format!("PKCS#11 PIN: environment variable {var} is not set"))?,
        );
        let key_label = self
            .pkcs11_key_label
            .clone()
            .context("--pkcs11-module needs --pkcs11-key-label")?;
        Ok(Some(simkit_server::Pkcs11Config {
            module: module.clone(),
            slot,
            pin,
            key_label,
        }))
    }
}
