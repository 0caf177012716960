//! Custody of the issuer master key.
//!
//! The server holds the master key behind a [`KeySource`]: a software key read from a file or an
//! environment variable now ([`SoftwareKey`]); a PKCS#11 token later. Only key check values are
//! ever shown or logged.

use std::path::Path;

use simkit_core::crypto::key::{SecretKey, profile_kcv};
use simkit_core::crypto::{CryptoError, Profile};
use zeroize::Zeroizing;

/// Why a master key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error("reading master key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The environment variable is not set or not Unicode.
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    /// The key text is not hex, or has the wrong length.
    #[error("master key: {0}")]
    Crypto(#[from] CryptoError),
    /// The key is empty.
    #[error("master key is empty")]
    Empty,
}

/// Where the server's issuer master key lives.
pub trait KeySource: Send + Sync {
    /// The master key. Callers derive module keys from it and drop it (zeroized) afterwards.
    fn master_key(&self) -> Result<SecretKey, KeyError>;

    /// The master key's check value for `profile`, upper-case hex: the only form ever logged.
    fn kcv_hex(&self, profile: Profile) -> Result<String, KeyError> {
        Ok(hex::encode_upper(profile_kcv(
            profile,
            &self.master_key()?,
        )?))
    }
}

/// A master key held in (zeroizing) process memory.
#[derive(Clone, Debug)]
pub struct SoftwareKey {
    key: SecretKey,
}

impl SoftwareKey {
    /// A key given directly (tests, the CLI).
    pub fn new(key: SecretKey) -> Self {
        SoftwareKey { key }
    }

    /// Parses hex text; surrounding whitespace is ignored.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let key = SecretKey::from_hex(text.trim())?;
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(SoftwareKey { key })
    }

    /// Reads a file holding the key as hex.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| KeyError::Io {
                    path: path.display().to_string(),
                    source,
                })?,
            );
        Self::from_hex(&text)
    }

    /// Reads an environment variable holding the key as hex.
    pub fn from_env(var: &str) -> Result<Self, KeyError> {
        let text =
            Zeroizing::new(std::env::var(var).map_err(|_| KeyError::MissingEnv(var.to_owned()))?);
        Self::from_hex(&text)
    }
}

impl KeySource for SoftwareKey {
    fn master_key(&self) -> Result<SecretKey, KeyError> {
        Ok(self.key.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hex_is_trimmed_and_debug_shows_no_key() {
        let k = SoftwareKey::from_hex(" 00112233445566778899AABBCCDDEEFF\n").unwrap();
        assert_eq!(k.master_key().unwrap().len(), 16);
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("00112233"), "{dbg}");
        assert!(SoftwareKey::from_hex("").is_err());
        assert!(SoftwareKey::from_hex("zz").is_err());
    }
}
