//! Custody of the issuer master key.
//!
//! The server holds the master key behind a [`KeySource`]: a software key read from a file or an
//! environment variable ([`SoftwareKey`]), or a key object inside a PKCS#11 token
//! ([`crate::pkcs11::Pkcs11Key`]) that never leaves it. Either way the policy only sees module
//! keys as [`MacKey`]s ([`ModuleMacKeys`]), so it never needs key bytes. Only key check values
//! are ever shown or logged.
//!
//! **How the store uses a key source** (the integration point): per message it calls
//! [`KeySource::module_keys`] for the record's profile and module id and passes
//! `&keys.request` / `&keys.grant` to the policy functions; on import it calls
//! [`KeySource::check_registration`]. It must not call [`KeySource::master_key`], which a
//! PKCS#11 key refuses.

use std::path::Path;

use simkit_core::credit::ModuleId;
use simkit_core::credit::registration::{Registration, RegistrationError};
use simkit_core::crypto::kdf::derive_module_keys;
use simkit_core::crypto::key::{SecretKey, profile_kcv};
use simkit_core::crypto::{CryptoError, MacKey, Profile};
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
    /// The master key is held where it cannot be read (a PKCS#11 token).
    #[error("the master key cannot be exported: {0}")]
    NotExportable(String),
    /// The key source cannot serve a profile (e.g. a token without the retail MAC).
    #[error("{0}")]
    UnsupportedProfile(String),
    /// The PKCS#11 module, slot, token, PIN or key object failed; the text says which.
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
}

/// A module key as the server holds it: a [`MacKey`] that can also show its check value.
pub trait ModuleKey: MacKey + Send + Sync {
    /// The key check value for `profile` ([`profile_kcv`]'s convention).
    fn kcv(&self, profile: Profile) -> Result<[u8; 3], CryptoError>;
}

impl ModuleKey for SecretKey {
    fn kcv(&self, profile: Profile) -> Result<[u8; 3], CryptoError> {
        profile_kcv(profile, self)
    }
}

/// One module's request and grant keys, wherever they live. `&keys.request` is accepted where
/// the policy wants a `&dyn MacKey`.
pub struct ModuleMacKeys {
    /// Key for MACs on requests (and completion acks) from the module.
    pub request: Box<dyn ModuleKey>,
    /// Key for MACs on grants, provisional acks and limit updates.
    pub grant: Box<dyn ModuleKey>,
}

impl std::fmt::Debug for ModuleMacKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleMacKeys").finish_non_exhaustive()
    }
}

/// Compares a key check value with the one a registration record carries (`which`: master,
/// request or grant).
pub(crate) fn check_kcv(
    which: &'static str,
    expected: &str,
    got: [u8; 3],
) -> Result<(), RegistrationError> {
    let got = hex::encode_upper(got);
    if expected.eq_ignore_ascii_case(&got) {
        Ok(())
    } else {
        Err(RegistrationError::KeyMismatch {
            which,
            expected: expected.to_owned(),
            got,
        })
    }
}

/// Where the server's issuer master key lives.
///
/// The provided methods work from [`KeySource::master_key`] (software keys); a source whose key
/// cannot leave its store (PKCS#11) overrides all of them and refuses `master_key`.
pub trait KeySource: Send + Sync {
    /// The master key. Callers derive module keys from it and drop it (zeroized) afterwards.
    /// A PKCS#11 source answers [`KeyError::NotExportable`]: use the other methods.
    fn master_key(&self) -> Result<SecretKey, KeyError>;

    /// The master key's check value for `profile`, upper-case hex: the only form ever logged.
    fn kcv_hex(&self, profile: Profile) -> Result<String, KeyError> {
        Ok(hex::encode_upper(profile_kcv(
            profile,
            &self.master_key()?,
        )?))
    }

    /// The profiles this key can serve (software: those whose master key length fits).
    fn profiles(&self) -> Result<Vec<Profile>, KeyError> {
        let len = self.master_key()?.len();
        Ok(Profile::ALL
            .into_iter()
            .filter(|p| p.master_key_len() == len)
            .collect())
    }

    /// A module's request and grant keys for `profile` (spec §2 key derivation).
    fn module_keys(
        &self,
        profile: Profile,
        module_id: &ModuleId,
    ) -> Result<ModuleMacKeys, KeyError> {
        let keys = derive_module_keys(profile, &self.master_key()?, module_id)?;
        Ok(ModuleMacKeys {
            request: Box::new(keys.request),
            grant: Box::new(keys.grant),
        })
    }

    /// Checks a registration record against this key: its format and limits, and that all three
    /// key check values (master, request, grant) match. A profile this source cannot serve is
    /// refused here, at import, with a message saying what it needs.
    fn check_registration(&self, registration: &Registration) -> Result<(), RegistrationError> {
        let master = self
            .master_key()
            .map_err(|e| RegistrationError::Crypto(CryptoError::KeyStore(e.to_string())))?;
        registration.check(&master)
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
