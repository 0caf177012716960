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
