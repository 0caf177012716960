//! Derivation of a credit module's two keys (request and grant) from the issuer's master key
//! and the module's 8-byte id, one scheme per [`Profile`].
//!
//! - aes-cmac: NIST SP 800-108 counter-mode KDF with AES-CMAC as PRF, in the GlobalPlatform SCP03
//!   data layout, with a different derivation constant per key.
//! - retail-mac: EMV option A (2-key 3DES) gives the request key; the grant key is an ANSI X9.24
//!   style variant of it.
//! - desx-cbc: three chained DES-X encryptions of the id give a DES-X key; grant is a variant.
//!
//! The PRFs come from [`super::block`] and [`super::mac`]; only the data layout and the
//! chaining, which no crate does, are written here. Intermediate key material lives in
//! zeroizing buffers.

use zeroize::Zeroizing;

use super::block::{des_encrypt, desx_encrypt, set_odd_parity};
use super::key::SecretKey;
use super::mac::aes_cmac;
use super::{CryptoError, Profile};

/// SCP03-layout derivation constant for the request key (aes-cmac profile).
pub const DC_REQUEST: u8 = 0x10;
/// SCP03-layout derivation constant for the grant key (aes-cmac profile).
pub const DC_GRANT: u8 = 0x11;
/// Byte XORed into every byte of the request key to get the grant key in the DES-based
/// profiles. It has even weight, so keys with odd parity keep it.
pub const LEGACY_GRANT_VARIANT: u8 = 0x0F;

/// The two keys of one credit module. `Debug` shows each key's length and KCV, never its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleKeys {
    /// Key for MACs on requests from the module.
    pub request: SecretKey,
    /// Key for MACs on grants sent to the module.
    pub grant: SecretKey,
}

/// Derives a module's request and grant keys from the master key of `profile`.
///
/// The master key must be [`Profile::master_key_len`] bytes (for desx-cbc, DESKEY‖PRE‖POST);
/// otherwise the error names the profile, e.g. "retail-mac master key must be 16 bytes, got 24".
/// The derived keys are [`Profile::module_key_len`] bytes.
pub fn derive_module_keys(
    profile: Profile,
    master: &SecretKey,
    module_id: &[u8; 8],
) -> Result<ModuleKeys, CryptoError> {
    let mk = master.expose_secret();
    if mk.len() != profile.master_key_len() {
        let (what, expected) = match profile {
            Profile::AesCmac => ("aes-cmac master key", "16"),
            Profile::RetailMac => ("retail-mac master key", "16"),
            Profile::DesxCbc => ("desx-cbc master key (DESKEY‖PRE‖POST)", "24"),
        };
        return Err(CryptoError::WrongKeyLength {
            what,
            expected,
            got: mk.len(),
        });
    }
    match profile {
        Profile::AesCmac => Ok(ModuleKeys {
            request: scp03_kdf(mk, DC_REQUEST, module_id)?,
            grant: scp03_kdf(mk, DC_GRANT, module_id)?,
        }),
        Profile::RetailMac => {
            let request = emv_option_a(mk, module_id)?;
            let grant = variant(&request, LEGACY_GRANT_VARIANT);
            Ok(ModuleKeys { request, grant })
        }
        Profile::DesxCbc => {
            let request = desx_chain(mk, module_id)?;
            let grant = variant(&request, LEGACY_GRANT_VARIANT);
            Ok(ModuleKeys { request, grant })
        }
    }
}

/// The data the aes-cmac profile's KDF MACs with AES-CMAC under the master key to get one
/// module key: one 128-bit SP 800-108 counter-mode block in the SCP03 layout,
/// `00×11 ‖ dc ‖ 00 ‖ 0080 ‖ 01 ‖ context` ([`DC_REQUEST`] or [`DC_GRANT`], the module id).
///
/// Public so a key store that keeps the master key elsewhere (a PKCS#11 token computing the
/// CMAC) derives exactly what [`derive_module_keys`] derives.
pub fn scp03_derivation_data(dc: u8, context: &[u8; 8]) -> [u8; 24] {
    let mut data = [0u8; 24];
    data[11] = dc; // label: eleven zero bytes, then the derivation constant
    data[12] = 0x00; // separation indicator
    data[13..15].copy_from_slice(&128u16.to_be_bytes()); // L: output length in bits
    data[15] = 0x01; // counter i, one block suffices for 128 bits
    data[16..].copy_from_slice(context);
    data
}

/// AES-CMAC under the master key over [`scp03_derivation_data`].
fn scp03_kdf(master: &[u8], dc: u8, context: &[u8; 8]) -> Result<SecretKey, CryptoError> {
    let out = Zeroizing::new(aes_cmac(master, &scp03_derivation_data(dc, context))?);
    Ok(SecretKey::new(out.as_slice()))
}

/// EMV option A: `ZL = 3DES(id)`, `ZR = 3DES(id ⊕ FF..FF)`, key `= ZL ‖ ZR` with odd parity.
fn emv_option_a(master: &[u8], id: &[u8; 8]) -> Result<SecretKey, CryptoError> {
    let mut key = Zeroizing::new([0u8; 16]);
    key[..8].copy_from_slice(Zeroizing::new(des_encrypt(master, id)?).as_slice());
    let inverted = id.map(|b| !b);
    key[8..].copy_from_slice(Zeroizing::new(des_encrypt(master, &inverted)?).as_slice());
    set_odd_parity(key.as_mut_slice());
    Ok(SecretKey::new(key.as_slice()))
}

/// `B1 = DESX(id)`, `B2 = DESX(B1)`, `B3 = DESX(B2)`; key `= odd-parity(B1) ‖ B2 ‖ B3`, a DES-X
/// key DESKEY‖PRE‖POST (parity only matters for the DES part).
fn desx_chain(master: &[u8], id: &[u8; 8]) -> Result<SecretKey, CryptoError> {
    let b1 = Zeroizing::new(desx_encrypt(master, id)?);
    let b2 = Zeroizing::new(desx_encrypt(master, &b1)?);
    let b3 = Zeroizing::new(desx_encrypt(master, &b2)?);
    let mut key = Zeroizing::new([0u8; 24]);
    key[..8].copy_from_slice(b1.as_slice());
    set_odd_parity(&mut key[..8]);
    key[8..16].copy_from_slice(b2.as_slice());
    key[16..].copy_from_slice(b3.as_slice());
    Ok(SecretKey::new(key.as_slice()))
}

/// A key variant: every byte XORed with `v`.
fn variant(key: &SecretKey, v: u8) -> SecretKey {
    let mut bytes = Zeroizing::new(key.expose_secret().to_vec());
    for b in bytes.iter_mut() {
        *b ^= v;
    }
    SecretKey::new(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::block::has_odd_parity;
    use crate::crypto::mac::profile_tag;
    use hex_literal::hex;

    const ID: [u8; 8] = hex!("0102030405060708");

    fn master(p: Profile) -> SecretKey {
        SecretKey::new(match p {
            Profile::AesCmac => &hex!("404142434445464748494A4B4C4D4E4F")[..],
            Profile::RetailMac => &hex!("0123456789ABCDEF FEDCBA9876543210")[..],
            Profile::DesxCbc => &hex!("0123456789ABCDEF 1122334455667788 A1A2A3A4A5A6A7A8")[..],
        })
    }

    /// Expected keys computed outside this crate with the OpenSSL command line:
    /// aes-cmac with `openssl mac -cipher AES-128-CBC -macopt hexkey:MK CMAC` over the SCP03
    /// derivation data; retail-mac with `openssl enc -des-ede-ecb` of id and id ⊕ FF, parity
    /// set by hand; desx-cbc with `openssl enc -desx-cbc -iv 0` of id ‖ 00×16 (CBC with a zero
    /// IV chains exactly B1, B2 = DESX(B1), B3 = DESX(B2)).
    #[test]
    fn derived_keys_match_independent_computation() {
        let cases = [
            (
                Profile::AesCmac,
                &hex!("A05A6BF831CCEAEB49FD1C1C309416C2")[..],
                &hex!("090CAACFD9EE556EBFE9E8C286B3591C")[..],
            ),
            (
                Profile::RetailMac,
                &hex!("A85DEA8CDADFF80837B0D0C24CE031D6")[..],
                &hex!("A752E583D5D0F70738BFDFCD43EF3ED9")[..],
            ),
            (
                Profile::DesxCbc,
                &hex!("AB621A7F13DF6B490335F3B502D61ED4B71562F998C220D6")[..],
                &hex!("A46D15701CD064460C3AFCBA0DD911DBB81A6DF697CD2FD9")[..],
            ),
        ];
        for (p, req, grant) in cases {
            let k = derive_module_keys(p, &master(p), &ID).unwrap();
            assert_eq!(k.request.expose_secret(), req, "{p} request");
            assert_eq!(k.grant.expose_secret(), grant, "{p} grant");
            assert_eq!(k.request.len(), p.module_key_len());
        }
    }

    #[test]
    fn derived_keys_differ_by_role_module_and_profile() {
        let other = hex!("0102030405060709");
        let mut all = Vec::new();
        for p in Profile::ALL {
            let a = derive_module_keys(p, &master(p), &ID).unwrap();
            let b = derive_module_keys(p, &master(p), &other).unwrap();
            assert_ne!(a.request, a.grant, "{p}");
            assert_ne!(a.request, b.request, "{p}");
            assert_ne!(a.grant, b.grant, "{p}");
            // Differences must survive DES ignoring parity bits: the tags differ too.
            let t = |k: &SecretKey| profile_tag(p, k, b"probe").unwrap();
            assert_ne!(t(&a.request), t(&a.grant), "{p}");
            assert_ne!(t(&a.request), t(&b.request), "{p}");
            all.extend([a.request, a.grant]);
        }
        // Same 16-byte master used under both 16-byte profiles still gives different keys.
        let shared = master(Profile::RetailMac);
        let aes = derive_module_keys(Profile::AesCmac, &shared, &ID).unwrap();
        let retail = derive_module_keys(Profile::RetailMac, &shared, &ID).unwrap();
        assert_ne!(aes.request, retail.request);
        assert_ne!(aes.grant, retail.grant);
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }

    /// Known property of EMV option A, which the spec warns about: ids `id` and `id ⊕ FF..FF`
    /// get the same key halves swapped, so an issuer must not assign both.
    #[test]
    fn option_a_complement_id_swaps_halves() {
        let mk = master(Profile::RetailMac);
        let a = derive_module_keys(Profile::RetailMac, &mk, &ID).unwrap();
        let b = derive_module_keys(Profile::RetailMac, &mk, &ID.map(|x| !x)).unwrap();
        let (a, b) = (a.request.expose_secret(), b.request.expose_secret());
        assert_eq!(a[..8], b[8..]);
        assert_eq!(a[8..], b[..8]);
    }

    #[test]
    fn legacy_grant_variant_keeps_odd_parity() {
        assert_eq!(LEGACY_GRANT_VARIANT.count_ones() % 2, 0);
        let k = derive_module_keys(Profile::RetailMac, &master(Profile::RetailMac), &ID).unwrap();
        assert!(has_odd_parity(k.request.expose_secret()));
        assert!(has_odd_parity(k.grant.expose_secret()));
        let k = derive_module_keys(Profile::DesxCbc, &master(Profile::DesxCbc), &ID).unwrap();
        assert!(has_odd_parity(&k.request.expose_secret()[..8]));
        assert!(has_odd_parity(&k.grant.expose_secret()[..8]));
        for b in 0..=255u8 {
            let mut x = [b];
            set_odd_parity(&mut x);
            assert!(has_odd_parity(&[x[0] ^ LEGACY_GRANT_VARIANT]));
        }
    }

    #[test]
    fn wrong_master_lengths_name_profile_and_role() {
        let e = derive_module_keys(Profile::RetailMac, &SecretKey::new(&[0; 24]), &ID).unwrap_err();
        assert_eq!(
            e.to_string(),
            "retail-mac master key must be 16 bytes, got 24"
        );
        let e = derive_module_keys(Profile::AesCmac, &SecretKey::new(&[0; 15]), &ID).unwrap_err();
        assert_eq!(
            e.to_string(),
            "aes-cmac master key must be 16 bytes, got 15"
        );
        let e = derive_module_keys(Profile::DesxCbc, &SecretKey::new(&[0; 16]), &ID).unwrap_err();
        assert_eq!(
            e.to_string(),
            "desx-cbc master key (DESKEY‖PRE‖POST) must be 24 bytes, got 16"
        );
    }

    #[test]
    fn debug_prints_kcvs_not_keys() {
        let k = derive_module_keys(Profile::RetailMac, &master(Profile::RetailMac), &ID).unwrap();
        let dbg = format!("{k:?}");
        assert!(dbg.contains("kcv"), "{dbg}");
        let req = hex::encode_upper(k.request.expose_secret());
        assert!(!dbg.to_uppercase().contains(&req[..6]), "{dbg}");
    }
}
