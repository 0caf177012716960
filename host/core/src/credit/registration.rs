//! The registration record: what personalising a module tells the reload server about it.
//!
//! `simkit personalise` writes one per module (JSON) and the grant signer imports it. It carries
//! everything the server needs to start keeping the module's transaction number — identity,
//! profile, initial N and balance, limits, fraud threshold — and the key check values of the
//! master key and of the derived keys, so the server can prove it holds the same master key
//! before it accepts the module. It never carries a key.

use serde::{Deserialize, Serialize};

use crate::credit::server::ServerRecord;
use crate::credit::{Limits, ModuleId, hex_array};
use crate::crypto::kdf::derive_module_keys;
use crate::crypto::key::{SecretKey, profile_kcv};
use crate::crypto::{CryptoError, Profile};
use crate::hexutil::to_hex;

/// The value of [`Registration::format`] this version writes and reads.
pub const REGISTRATION_FORMAT: &str = "simkit-registration/1";

/// A module's registration record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Always [`REGISTRATION_FORMAT`].
    pub format: String,
    /// The module id.
    #[serde(with = "hex_array")]
    pub module_id: ModuleId,
    /// The module's crypto profile.
    pub profile: Profile,
    /// N at personalisation: the server's initial S.
    pub initial_n: u32,
    /// Balance at personalisation.
    pub initial_balance: i32,
    /// Limits at personalisation.
    pub limits: Limits,
    /// The module's fraud threshold (the server uses it as its own blocking threshold).
    pub fraud_threshold: u16,
    /// The reload server address stored on the card.
    pub server_address: String,
    /// Key check value of the issuer master key (crypto.md §4), upper-case hex.
    pub master_key_kcv: String,
    /// Key check value of the module's request key.
    pub request_key_kcv: String,
    /// Key check value of the module's grant key.
    pub grant_key_kcv: String,
}

/// Why a registration record was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The record's `format` is not one this version reads.
    #[error("registration format {0:?} is not supported (expected {REGISTRATION_FORMAT:?})")]
    Format(String),
    /// The record's limits are inconsistent.
    #[error("registration limits: {0}")]
    Limits(#[from] crate::credit::LimitsError),
    /// The master key given does not produce the record's key check values.
    #[error(
        "{which} key check value mismatch: the record says {expected}, this master key gives {got}"
    )]
    KeyMismatch {
        /// Which key ("master", "request", "grant").
        which: &'static str,
        /// From the record.
        expected: String,
        /// From the key given.
        got: String,
    },
    /// A key had the wrong length for the profile.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl Registration {
    /// The record for a module personalised with keys derived from `master`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        module_id: ModuleId,
        profile: Profile,
        master: &SecretKey,
        initial_n: u32,
        initial_balance: i32,
        limits: Limits,
        fraud_threshold: u16,
        server_address: String,
    ) -> Result<Self, CryptoError> {
        let keys = derive_module_keys(profile, master, &module_id)?;
        Ok(Registration {
            format: REGISTRATION_FORMAT.to_owned(),
            module_id,
            profile,
            initial_n,
            initial_balance,
            limits,
            fraud_threshold,
            server_address,
            master_key_kcv: to_hex(&profile_kcv(profile, master)?),
            request_key_kcv: to_hex(&profile_kcv(profile, &keys.request)?),
            grant_key_kcv: to_hex(&profile_kcv(profile, &keys.grant)?),
        })
    }

    /// Checks the record is one this version reads, its limits are valid, and `master` is the
    /// master key it was made with (all three key check values match).
    pub fn check(&self, master: &SecretKey) -> Result<(), RegistrationError> {
        if self.format != REGISTRATION_FORMAT {
            return Err(RegistrationError::Format(self.format.clone()));
        }
        self.limits.validate()?;
        let keys = derive_module_keys(self.profile, master, &self.module_id)?;
        let pairs = [
            (
                "master",
                &self.master_key_kcv,
                profile_kcv(self.profile, master)?,
            ),
            (
                "request",
                &self.request_key_kcv,
                profile_kcv(self.profile, &keys.request)?,
            ),
            (
                "grant",
                &self.grant_key_kcv,
                profile_kcv(self.profile, &keys.grant)?,
            ),
        ];
        for (which, expected, got) in pairs {
            let got = to_hex(&got);
            if !expected.eq_ignore_ascii_case(&got) {
                return Err(RegistrationError::KeyMismatch {
                    which,
                    expected: expected.clone(),
                    got,
                });
            }
        }
        Ok(())
    }

    /// The server's initial record for this module: S = the initial N.
    pub fn server_record(&self) -> ServerRecord {
        ServerRecord::new(
            self.module_id,
            self.profile,
            self.initial_n,
            self.limits,
            u32::from(self.fraud_threshold),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::{EXAMPLE_LIMITS, EXAMPLE_MODULE_ID, example_master};

    fn record(profile: Profile) -> Registration {
        Registration::new(
            EXAMPLE_MODULE_ID,
            profile,
            &example_master(profile),
            7,
            1500,
            EXAMPLE_LIMITS,
            5,
            "https://reload.example/v1".into(),
        )
        .unwrap()
    }

    #[test]
    fn round_trips_through_json_and_checks_the_master() {
        for p in Profile::ALL {
            let r = record(p);
            let json = serde_json::to_string(&r).unwrap();
            assert!(
                !json.contains(&to_hex(example_master(p).expose_secret())),
                "no key in the record"
            );
            let back: Registration = serde_json::from_str(&json).unwrap();
            assert_eq!(back, r);
            back.check(&example_master(p)).unwrap();
            assert_eq!(back.server_record().s, 7);
        }
    }

    #[test]
    fn a_wrong_master_or_format_is_refused() {
        let r = record(Profile::AesCmac);
        let wrong = SecretKey::new(&[0x11; 16]);
        assert!(matches!(
            r.check(&wrong),
            Err(RegistrationError::KeyMismatch {
                which: "master",
                ..
            })
        ));
        let mut old = r.clone();
        old.format = "simkit-registration/0".into();
        assert!(matches!(
            old.check(&example_master(Profile::AesCmac)),
            Err(RegistrationError::Format(_))
        ));
        let mut bad = r;
        bad.limits.min_reload = 0;
        assert!(matches!(
            bad.check(&example_master(Profile::AesCmac)),
            Err(RegistrationError::Limits(_))
        ));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = serde_json::to_value(record(Profile::RetailMac)).unwrap();
        v["master_key"] = serde_json::json!("00");
        assert!(serde_json::from_value::<Registration>(v).is_err());
    }
}
