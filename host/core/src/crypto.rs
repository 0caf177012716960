//! Crypto profiles of the credit module.
//!
//! This module owns every cryptographic rule of the protocol: the three MAC profiles
//! ([`Profile`]), the single-block cipher primitives they are built on ([`block`]), the MAC
//! algorithms and ISO/IEC 9797-1 padding ([`mac`]), the derivation of per-module keys from a
//! master key ([`kdf`]), and key handling with key check values ([`key`]).
//!
//! The block ciphers and the standard MACs come from the RustCrypto crates; this module only
//! adds what no crate provides (ISO/IEC 9797-1 padding method 2, DES-X, the KDF glue) and the
//! profile rules that tie them together. It does no I/O and keeps secret bytes in
//! [`SecretKey`], which zeroizes on drop and never prints its bytes.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

pub mod block;
pub mod kdf;
pub mod key;
pub mod mac;

pub use block::{
    aes128_encrypt, des_decrypt, des_encrypt, desx_decrypt, desx_encrypt, has_odd_parity,
    set_odd_parity,
};
pub use kdf::{DC_GRANT, DC_REQUEST, LEGACY_GRANT_VARIANT, ModuleKeys, derive_module_keys};
pub use key::{KeyAlg, SecretKey, kcv, profile_kcv};
pub use mac::{
    MacKey, Padding, aes_cmac, ct_eq, desx_cbc_mac, iso9797_1_alg1, iso9797_1_alg3, pad,
    profile_tag, verify_profile_tag,
};

/// Length in bytes of the MAC tag every profile puts on the wire.
pub const TAG_LEN: usize = 8;

/// A crypto profile: which MAC, key derivation and key lengths a credit module uses.
///
/// Serialized as its [`name`](Profile::name) (`"aes-cmac"`, `"retail-mac"`, `"desx-cbc"`) and
/// carried on the wire as its one-byte [`id`](Profile::id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Profile {
    /// AES-128 CMAC (NIST SP 800-38B) truncated to 8 bytes; SCP03-style SP 800-108 KDF.
    #[serde(rename = "aes-cmac")]
    AesCmac,
    /// ISO/IEC 9797-1 MAC algorithm 3 (retail MAC) with padding method 2; EMV option A KDF.
    #[serde(rename = "retail-mac")]
    RetailMac,
    /// CBC-MAC over DES-X with padding method 2. Legacy: kept for modules already in the field.
    #[serde(rename = "desx-cbc")]
    DesxCbc,
}

impl Profile {
    /// Every profile, in wire-id order.
    pub const ALL: [Profile; 3] = [Profile::AesCmac, Profile::RetailMac, Profile::DesxCbc];

    /// Algorithm id on the wire.
    pub const fn id(self) -> u8 {
        match self {
            Profile::AesCmac => 0x01,
            Profile::RetailMac => 0x02,
            Profile::DesxCbc => 0x03,
        }
    }

    /// The profile with wire id `id`, if there is one.
    pub const fn from_id(id: u8) -> Option<Profile> {
        match id {
            0x01 => Some(Profile::AesCmac),
            0x02 => Some(Profile::RetailMac),
            0x03 => Some(Profile::DesxCbc),
            _ => None,
        }
    }

    /// Canonical name, as used in configuration, serde and messages.
    pub const fn name(self) -> &'static str {
        match self {
            Profile::AesCmac => "aes-cmac",
            Profile::RetailMac => "retail-mac",
            Profile::DesxCbc => "desx-cbc",
        }
    }

    /// Length in bytes of the master key the module keys are derived from.
    pub const fn master_key_len(self) -> usize {
        match self {
            Profile::AesCmac | Profile::RetailMac => 16,
            Profile::DesxCbc => 24,
        }
    }

    /// Length in bytes of each derived module key (request and grant).
    pub const fn module_key_len(self) -> usize {
        match self {
            Profile::AesCmac | Profile::RetailMac => 16,
            Profile::DesxCbc => 24,
        }
    }

    /// Whether the profile is only kept for modules already deployed (DES-X is).
    pub const fn is_legacy(self) -> bool {
        matches!(self, Profile::DesxCbc)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = CryptoError;

    /// Parses a profile [`name`](Profile::name), in any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| CryptoError::UnknownProfile(s.to_owned()))
    }
}

/// Everything that can go wrong in this module. Messages name the offending input so a user
/// can fix it without reading the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A key has the wrong length for its algorithm or role.
    #[error("{what} must be {expected} bytes, got {got}")]
    WrongKeyLength {
        /// Which key, e.g. `"aes-cmac master key"`.
        what: &'static str,
        /// The accepted length(s), e.g. `"16"` or `"8, 16 or 24"`.
        expected: &'static str,
        /// The length that was given.
        got: usize,
    },
    /// A profile name that is not one of [`Profile::ALL`].
    #[error("unknown crypto profile {0:?}; expected one of aes-cmac, retail-mac, desx-cbc")]
    UnknownProfile(String),
    /// A key algorithm name that [`KeyAlg`] does not know.
    #[error("unknown key algorithm {0:?}; expected one of des, 3des, tdes, desx, aes")]
    UnknownAlgorithm(String),
    /// A MAC tag has the wrong length.
    #[error("MAC tag must be {expected} bytes, got {got}")]
    WrongTagLength {
        /// The required tag length.
        expected: usize,
        /// The length that was given.
        got: usize,
    },
    /// A key given in hex could not be decoded; the payload says why (odd number of digits, or
    /// which character at which position is not a hex digit).
    #[error("key is not valid hex: {0}")]
    InvalidHex(String),
    /// A key held outside process memory (a PKCS#11 token) could not be used; the payload
    /// names the operation and the token's answer.
    #[error("key store: {0}")]
    KeyStore(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_ids_names_and_lengths() {
        for p in Profile::ALL {
            assert_eq!(Profile::from_id(p.id()), Some(p));
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
            assert_eq!(p.to_string(), p.name());
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.name())
            );
            let back: Profile = serde_json::from_str(&format!("\"{}\"", p.name())).unwrap();
            assert_eq!(back, p);
        }
        assert_eq!(
            Profile::ALL.map(Profile::id),
            [0x01, 0x02, 0x03],
            "wire ids are fixed by the spec"
        );
        assert_eq!(Profile::from_id(0x00), None);
        assert_eq!(Profile::from_id(0x04), None);
        assert_eq!(Profile::ALL.map(Profile::master_key_len), [16, 16, 24]);
        assert_eq!(Profile::ALL.map(Profile::module_key_len), [16, 16, 24]);
        assert_eq!(Profile::ALL.map(Profile::is_legacy), [false, false, true]);
    }

    #[test]
    fn unknown_profile_names_the_choices() {
        assert_eq!("AES-CMAC".parse::<Profile>().unwrap(), Profile::AesCmac);
        let e = "aes_cmac".parse::<Profile>().unwrap_err();
        assert_eq!(e, CryptoError::UnknownProfile("aes_cmac".into()));
        assert_eq!(
            e.to_string(),
            "unknown crypto profile \"aes_cmac\"; expected one of aes-cmac, retail-mac, desx-cbc"
        );
        assert!(serde_json::from_str::<Profile>("\"aes_cmac\"").is_err());
    }
}
