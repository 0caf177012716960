//! Secret key handling and key check values (KCVs).
//!
//! [`SecretKey`] is the only type that holds key bytes: it zeroizes them on drop, compares in
//! constant time, and shows only its length and KCV when debug-printed. The KCV conventions are
//! the ones operators already compare on key ceremony forms: the payment-industry DES/3DES KCV
//! and the GlobalPlatform SCP03 AES KCV.

use core::fmt;
use core::str::FromStr;

use zeroize::Zeroizing;

use super::block::{aes128_encrypt, des_encrypt, desx_encrypt};
use super::mac::ct_eq;
use super::{CryptoError, Profile};

/// Key bytes that are wiped on drop and never printed.
///
/// Equality is constant time in the contents (keys of different lengths are unequal). There is
/// no `Display`; `Debug` prints `SecretKey { len: 16, kcv: "8C1A2B" }`, with the DES KCV for
/// 8-byte keys and the 3DES KCV for 16- and 24-byte keys (whatever the key is used for), and no
/// KCV for other lengths.
#[derive(Clone)]
pub struct SecretKey {
    bytes: Zeroizing<Vec<u8>>,
}

impl SecretKey {
    /// Copies `bytes` into a new key. Any length is accepted here; each algorithm checks the
    /// length it needs.
    pub fn new(bytes: &[u8]) -> Self {
        SecretKey {
            bytes: Zeroizing::new(bytes.to_vec()),
        }
    }

    /// Parses a key written as hex digits (either case, no separators or whitespace).
    ///
    /// Decodes straight into zeroizing storage, so no stray copy of the key is left behind.
    pub fn from_hex(s: &str) -> Result<Self, CryptoError> {
        if s.len() % 2 != 0 {
            return Err(CryptoError::InvalidHex(format!(
                "odd number of hex digits ({})",
                s.len()
            )));
        }
        let mut bytes = Zeroizing::new(vec![0u8; s.len() / 2]);
        hex::decode_to_slice(s, bytes.as_mut_slice()).map_err(|e| {
            CryptoError::InvalidHex(match e {
                hex::FromHexError::InvalidHexCharacter { c, index } => {
                    format!("character {c:?} at position {index} is not a hex digit")
                }
                other => other.to_string(),
            })
        })?;
        Ok(SecretKey { bytes })
    }

    /// The key bytes. Named so that every use of the raw key is easy to find in review.
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes
    }

    /// Length of the key in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the key has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.bytes, &other.bytes)
    }
}

impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let alg = match self.len() {
            8 => Some(KeyAlg::Des),
            16 | 24 => Some(KeyAlg::Tdes),
            _ => None,
        };
        let mut s = f.debug_struct("SecretKey");
        s.field("len", &self.len());
        if let Some(Ok(k)) = alg.map(|a| kcv(&self.bytes, a)) {
            s.field("kcv", &hex::encode_upper(k));
        }
        s.finish()
    }
}

/// Which algorithm a key belongs to, for its key check value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlg {
    /// Single DES, 8 bytes.
    Des,
    /// Triple DES, 16 (2-key) or 24 (3-key) bytes. Parsed from `"3des"` or `"tdes"`.
    Tdes,
    /// DES-X, 24 bytes DESKEY‖PRE‖POST.
    Desx,
    /// AES-128, 16 bytes.
    Aes,
}

impl KeyAlg {
    /// Canonical lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            KeyAlg::Des => "des",
            KeyAlg::Tdes => "3des",
            KeyAlg::Desx => "desx",
            KeyAlg::Aes => "aes",
        }
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyAlg {
    type Err = CryptoError;

    /// Accepts `des`, `3des`, `tdes`, `desx`, `aes`, in any letter case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "des" => Ok(KeyAlg::Des),
            "3des" | "tdes" => Ok(KeyAlg::Tdes),
            "desx" => Ok(KeyAlg::Desx),
            "aes" => Ok(KeyAlg::Aes),
            _ => Err(CryptoError::UnknownAlgorithm(s.to_owned())),
        }
    }
}

/// Key check value: the first 3 bytes of
///
/// - `Des` (8 bytes) / `Tdes` (16 or 24 bytes): DES / 3DES-ECB encryption of 8 zero bytes (the
///   payment-industry KCV);
/// - `Desx` (24 bytes DESKEY‖PRE‖POST): DES-X encryption of 8 zero bytes;
/// - `Aes` (16 bytes): AES-ECB encryption of sixteen `0x01` bytes (GlobalPlatform SCP03).
///
/// Any other length is [`CryptoError::WrongKeyLength`].
pub fn kcv(key: &[u8], alg: KeyAlg) -> Result<[u8; 3], CryptoError> {
    let wrong = |what, expected| CryptoError::WrongKeyLength {
        what,
        expected,
        got: key.len(),
    };
    match (alg, key.len()) {
        (KeyAlg::Des, 8) | (KeyAlg::Tdes, 16 | 24) => {
            let [a, b, c, ..] = des_encrypt(key, &[0; 8])?;
            Ok([a, b, c])
        }
        (KeyAlg::Desx, 24) => {
            let [a, b, c, ..] = desx_encrypt(key, &[0; 8])?;
            Ok([a, b, c])
        }
        (KeyAlg::Aes, 16) => {
            let [a, b, c, ..] = aes128_encrypt(key, &[0x01; 16])?;
            Ok([a, b, c])
        }
        (KeyAlg::Des, _) => Err(wrong("DES key", "8")),
        (KeyAlg::Tdes, _) => Err(wrong("3DES key", "16 or 24")),
        (KeyAlg::Desx, _) => Err(wrong("DES-X key (DESKEY‖PRE‖POST)", "24")),
        (KeyAlg::Aes, _) => Err(wrong("AES-128 key", "16")),
    }
}

/// The KCV of a module or master key of `profile`: AES for aes-cmac, 3DES for retail-mac,
/// DES-X for desx-cbc.
pub fn profile_kcv(profile: Profile, key: &SecretKey) -> Result<[u8; 3], CryptoError> {
    let alg = match profile {
        Profile::AesCmac => KeyAlg::Aes,
        Profile::RetailMac => KeyAlg::Tdes,
        Profile::DesxCbc => KeyAlg::Desx,
    };
    kcv(key.expose_secret(), alg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn des_kcv_of_known_key() {
        assert_eq!(
            kcv(&hex!("0123456789ABCDEF"), KeyAlg::Des).unwrap(),
            hex!("D5D44F")
        );
    }

    #[test]
    fn tdes_kcv_is_des_ecb_of_zero() {
        let k = hex!("0123456789ABCDEF FEDCBA9876543210");
        let full = des_encrypt(&k, &[0; 8]).unwrap();
        assert_eq!(kcv(&k, KeyAlg::Tdes).unwrap(), full[..3]);
        // 2-key 3DES with K1 = K2 is single DES, so the KCVs agree.
        let same = hex!("0123456789ABCDEF 0123456789ABCDEF");
        assert_eq!(kcv(&same, KeyAlg::Tdes).unwrap(), hex!("D5D44F"));
    }

    #[test]
    fn aes_kcv_is_scp03_convention() {
        let k = hex!("2b7e151628aed2a6abf7158809cf4f3c");
        let full = aes128_encrypt(&k, &[0x01; 16]).unwrap();
        assert_eq!(kcv(&k, KeyAlg::Aes).unwrap(), full[..3]);
        // Cross-checked with `openssl enc -aes-128-ecb -nopad` of sixteen 0x01 bytes.
        assert_eq!(kcv(&k, KeyAlg::Aes).unwrap(), hex!("2CF6A4"));
    }

    #[test]
    fn desx_kcv_is_desx_of_zero() {
        let k = hex!("0123456789ABCDEF 1122334455667788 A1A2A3A4A5A6A7A8");
        let full = desx_encrypt(&k, &[0; 8]).unwrap();
        assert_eq!(kcv(&k, KeyAlg::Desx).unwrap(), full[..3]);
    }

    #[test]
    fn kcv_wrong_lengths() {
        let e = kcv(&[0; 15], KeyAlg::Aes).unwrap_err();
        assert_eq!(e.to_string(), "AES-128 key must be 16 bytes, got 15");
        assert!(kcv(&[0; 16], KeyAlg::Des).is_err());
        assert!(kcv(&[0; 8], KeyAlg::Tdes).is_err());
        assert!(kcv(&[0; 16], KeyAlg::Desx).is_err());
    }

    #[test]
    fn profile_kcv_picks_algorithm() {
        let k16 = SecretKey::new(&hex!("0123456789ABCDEF FEDCBA9876543210"));
        assert_eq!(
            profile_kcv(Profile::RetailMac, &k16).unwrap(),
            kcv(k16.expose_secret(), KeyAlg::Tdes).unwrap()
        );
        assert_eq!(
            profile_kcv(Profile::AesCmac, &k16).unwrap(),
            kcv(k16.expose_secret(), KeyAlg::Aes).unwrap()
        );
        assert!(profile_kcv(Profile::DesxCbc, &k16).is_err());
    }

    #[test]
    fn debug_shows_len_and_kcv_only() {
        let k = SecretKey::from_hex("0123456789abcdef").unwrap();
        assert_eq!(format!("{k:?}"), r#"SecretKey { len: 8, kcv: "D5D44F" }"#);
        let k = SecretKey::new(&[0x42; 5]);
        assert_eq!(format!("{k:?}"), "SecretKey { len: 5 }");
        let k = SecretKey::new(&hex!("0123456789ABCDEF FEDCBA9876543210"));
        let dbg = format!("{k:?}");
        assert!(!dbg.to_uppercase().contains("0123456789ABCDEF"), "{dbg}");
        assert!(!dbg.contains("[1, 35"), "{dbg}");
    }

    #[test]
    fn from_hex_errors_name_the_problem() {
        assert_eq!(
            SecretKey::from_hex("ABC").unwrap_err().to_string(),
            "key is not valid hex: odd number of hex digits (3)"
        );
        assert_eq!(
            SecretKey::from_hex("01g3").unwrap_err().to_string(),
            "key is not valid hex: character 'g' at position 2 is not a hex digit"
        );
        assert_eq!(SecretKey::from_hex("").unwrap().len(), 0);
        assert!(SecretKey::from_hex("").unwrap().is_empty());
        assert_eq!(
            SecretKey::from_hex("0A0b").unwrap().expose_secret(),
            &[0x0A, 0x0B]
        );
    }

    #[test]
    fn equality_is_by_contents() {
        let a = SecretKey::new(&[1, 2, 3]);
        assert_eq!(a, a.clone());
        assert_ne!(a, SecretKey::new(&[1, 2, 4]));
        assert_ne!(a, SecretKey::new(&[1, 2]));
    }

    #[test]
    fn key_alg_parsing() {
        assert_eq!("des".parse::<KeyAlg>().unwrap(), KeyAlg::Des);
        assert_eq!("3des".parse::<KeyAlg>().unwrap(), KeyAlg::Tdes);
        assert_eq!("TDES".parse::<KeyAlg>().unwrap(), KeyAlg::Tdes);
        assert_eq!("desx".parse::<KeyAlg>().unwrap(), KeyAlg::Desx);
        assert_eq!("aes".parse::<KeyAlg>().unwrap(), KeyAlg::Aes);
        assert_eq!(
            "rc4".parse::<KeyAlg>().unwrap_err(),
            CryptoError::UnknownAlgorithm("rc4".into())
        );
        for a in [KeyAlg::Des, KeyAlg::Tdes, KeyAlg::Desx, KeyAlg::Aes] {
            assert_eq!(a.to_string().parse::<KeyAlg>().unwrap(), a);
        }
    }
}
