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
