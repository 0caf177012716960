//! MAC algorithms, ISO/IEC 9797-1 padding, and the per-profile tag and its constant-time check.
//!
//! The standard MACs come from RustCrypto: ISO/IEC 9797-1 MAC algorithm 1 is `cbc-mac`, algorithm
//! 3 (the retail MAC) is `retail-mac`, AES-CMAC is `cmac`. Both 9797-1 crates pad with zeros on
//! their own, which is only method 1 and gets the empty message wrong, so this module always pads
//! first (see [`pad`]) and hands the crates whole blocks, on which their padding adds nothing.
//! The DES-X CBC-MAC of the legacy profile has no crate and is hand-rolled on [`super::block`].

use cbc_mac::CbcMac;
use cmac::Cmac;
use cmac::digest::{KeyInit, Mac, OutputSizeUser};
use des::cipher::consts::U8;
use des::{Des, TdesEde2, TdesEde3};
use retail_mac::RetailMac;
use subtle::ConstantTimeEq;

use super::block::DesX;
use super::key::SecretKey;
use super::{CryptoError, Profile, TAG_LEN};

/// ISO/IEC 9797-1 padding methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Method 1: zero bytes up to a multiple of the block length; nothing is added to data that
    /// is already a multiple, and the empty string becomes one zero block. Ambiguous: `m` and
    /// `m‖00` pad to the same string, so they share a MAC.
    Method1,
    /// Method 2: one `0x80` byte, then zero bytes up to a multiple of the block length. Always
    /// adds at least one byte, and is unambiguous.
    Method2,
}

/// Pads `data` to a multiple of `block` bytes with the given ISO/IEC 9797-1 method.
///
/// Method 2 is hand-written here because no RustCrypto MAC crate offers it. A `block` of 0 is
/// treated as 1, so this never divides by zero.
pub fn pad(data: &[u8], padding: Padding, block: usize) -> Vec<u8> {
    let block = block.max(1);
    let mut out = Vec::with_capacity(data.len() + block);
    out.extend_from_slice(data);
    match padding {
        Padding::Method1 if out.is_empty() => out.resize(block, 0),
        Padding::Method1 => out.resize(out.len().next_multiple_of(block), 0),
        Padding::Method2 => {
            out.push(0x80);
            out.resize(out.len().next_multiple_of(block), 0);
        }
    }
    out
}

/// Runs an 8-byte-output RustCrypto MAC over data the caller has already padded.
fn run_mac8<M>(key: &[u8], data: &[u8], what: &'static str) -> Result<[u8; 8], CryptoError>
where
    M: Mac + KeyInit + OutputSizeUser<OutputSize = U8>,
{
    let mut mac = <M as KeyInit>::new_from_slice(key).map_err(|_| CryptoError::WrongKeyLength {
        what,
        expected: "8, 16 or 24",
        got: key.len(),
    })?;
    Mac::update(&mut mac, data);
    Ok(mac.finalize().into_bytes().into())
}

/// ISO/IEC 9797-1 MAC algorithm 1 (plain CBC-MAC, zero IV, no output transformation), 8-byte
/// tag. `key` is 8 bytes (DES) or 16 / 24 bytes (2- or 3-key 3DES EDE as the block cipher).
///
/// Only secure for messages of one fixed length: see the splice test in this module.
pub fn iso9797_1_alg1(key: &[u8], padding: Padding, data: &[u8]) -> Result<[u8; 8], CryptoError> {
    let padded = pad(data, padding, 8);
    const WHAT: &str = "ISO 9797-1 algorithm 1 key";
    match key.len() {
        8 => run_mac8::<CbcMac<Des>>(key, &padded, WHAT),
        16 => run_mac8::<CbcMac<TdesEde2>>(key, &padded, WHAT),
        24 => run_mac8::<CbcMac<TdesEde3>>(key, &padded, WHAT),
        got => Err(CryptoError::WrongKeyLength {
            what: WHAT,
            expected: "8, 16 or 24",
            got,
        }),
    }
}

/// ISO/IEC 9797-1 MAC algorithm 3, the retail MAC: DES CBC-MAC under K, then the last block
/// decrypted under K' and encrypted again under K. `key` is K‖K' (16 bytes).
pub fn iso9797_1_alg3(key: &[u8], padding: Padding, data: &[u8]) -> Result<[u8; 8], CryptoError> {
    const WHAT: &str = "retail MAC (ISO 9797-1 algorithm 3) key K‖K'";
    if key.len() != 16 {
        return Err(CryptoError::WrongKeyLength {
            what: WHAT,
            expected: "16",
            got: key.len(),
        });
    }
    // `pad` always yields a non-empty multiple of 8, so the crate's own zero padding, which
    // only runs on a partial final block, never fires.
    run_mac8::<RetailMac<Des>>(key, &pad(data, padding, 8), WHAT)
}

/// CBC-MAC whose block function is DES-X: `H0 = 0`, `Hi = DESX(Di ⊕ Hi-1)`, tag `= Hq`, i.e.
/// the last block of OpenSSL `desx-cbc` encryption with a zero IV. `key` is 24 bytes
/// DESKEY‖PRE‖POST.
///
/// Hand-rolled because no crate implements DES-X. This is the seed patent's proposal: DES in CBC
/// mode with a 64-bit XOR pre- and post-whitening key on every block DES processes. Like every
/// plain CBC-MAC it is only secure for messages that are fixed-length or prefix-free.
pub fn desx_cbc_mac(key: &[u8], padding: Padding, data: &[u8]) -> Result<[u8; 8], CryptoError> {
    let desx = DesX::new(key)?;
    let padded = pad(data, padding, 8);
    let mut h = [0u8; 8];
    for chunk in padded.chunks_exact(8) {
        for (x, d) in h.iter_mut().zip(chunk) {
            *x ^= d;
        }
        desx.encrypt(&mut h);
    }
    Ok(h)
}

/// AES-128 CMAC (NIST SP 800-38B, RFC 4493), full 16-byte tag. `key` is 16 bytes.
pub fn aes_cmac(key: &[u8], data: &[u8]) -> Result<[u8; 16], CryptoError> {
    let mut mac = <Cmac<aes::Aes128> as KeyInit>::new_from_slice(key).map_err(|_| {
        CryptoError::WrongKeyLength {
            what: "AES-CMAC key",
            expected: "16",
            got: key.len(),
        }
    })?;
    Mac::update(&mut mac, data);
    Ok(mac.finalize().into_bytes().into())
}

/// Checks the MAC key length for a profile, so the error names the profile.
fn check_mac_key(profile: Profile, key: &[u8]) -> Result<(), CryptoError> {
    if key.len() == profile.module_key_len() {
        return Ok(());
    }
    let (what, expected) = match profile {
        Profile::AesCmac => ("aes-cmac MAC key", "16"),
        Profile::RetailMac => ("retail-mac MAC key", "16"),
        Profile::DesxCbc => ("desx-cbc MAC key (DESKEY‖PRE‖POST)", "24"),
    };
    Err(CryptoError::WrongKeyLength {
        what,
        expected,
        got: key.len(),
    })
}

/// The 8-byte tag a profile puts on `data` under a module key.
///
/// - aes-cmac: leftmost 8 bytes of AES-128 CMAC;
/// - retail-mac: ISO/IEC 9797-1 algorithm 3, padding method 2;
/// - desx-cbc: [`desx_cbc_mac`], padding method 2.
pub fn profile_tag(
    profile: Profile,
    key: &SecretKey,
    data: &[u8],
) -> Result<[u8; TAG_LEN], CryptoError> {
    let key = key.expose_secret();
    check_mac_key(profile, key)?;
    match profile {
        Profile::AesCmac => {
            let full = aes_cmac(key, data)?;
            let mut tag = [0u8; TAG_LEN];
            tag.copy_from_slice(&full[..TAG_LEN]);
            Ok(tag)
        }
        Profile::RetailMac => iso9797_1_alg3(key, Padding::Method2, data),
        Profile::DesxCbc => desx_cbc_mac(key, Padding::Method2, data),
    }
}

/// A module key that puts a profile's tag on data, wherever the key lives.
///
/// [`SecretKey`] implements it in process memory; the grant signer implements it with a key
/// object inside a PKCS#11 token, so the policy ([`crate::credit::server`]) and the message
/// codecs never need the key bytes, only this. Verification is [`verify_profile_tag`], which
/// compares in constant time whatever the implementation.
pub trait MacKey {
    /// The profile's 8-byte tag on `data` (see [`profile_tag`]). `Err` for a key that does not
    /// fit the profile, or a key store that failed ([`CryptoError::KeyStore`]).
    fn profile_tag(&self, profile: Profile, data: &[u8]) -> Result<[u8; TAG_LEN], CryptoError>;
}

impl MacKey for SecretKey {
    fn profile_tag(&self, profile: Profile, data: &[u8]) -> Result<[u8; TAG_LEN], CryptoError> {
        profile_tag(profile, self, data)
    }
}

impl<T: MacKey + ?Sized> MacKey for Box<T> {
    fn profile_tag(&self, profile: Profile, data: &[u8]) -> Result<[u8; TAG_LEN], CryptoError> {
        (**self).profile_tag(profile, data)
    }
}

/// Whether `tag` is the profile's tag on `data`.
///
/// Constant time in the tag contents: all 8 bytes are compared whatever differs. A tag whose
/// length is not [`TAG_LEN`] is `Ok(false)`; a prefix is never compared. `Err` only for a key of
/// the wrong length (or a key store that failed).
pub fn verify_profile_tag<K: MacKey + ?Sized>(
    profile: Profile,
    key: &K,
    data: &[u8],
    tag: &[u8],
) -> Result<bool, CryptoError> {
    let expected = key.profile_tag(profile, data)?;
    Ok(tag.len() == TAG_LEN && ct_eq(&expected, tag))
}

/// Constant-time equality of two byte strings (time depends only on the lengths). Different
/// lengths are unequal.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::block::{des_decrypt, des_encrypt, desx_encrypt};
    use hex_literal::hex;

    const K_DES: [u8; 8] = hex!("0123456789ABCDEF");
    const K_RETAIL: [u8; 16] = hex!("0123456789ABCDEF FEDCBA9876543210");
    const K_DESX: [u8; 24] = hex!("0123456789ABCDEF 1122334455667788 A1A2A3A4A5A6A7A8");
    const K_AES: [u8; 16] = hex!("2b7e151628aed2a6abf7158809cf4f3c");

    fn profile_key(p: Profile) -> SecretKey {
        match p {
            Profile::AesCmac => SecretKey::new(&K_AES),
            Profile::RetailMac => SecretKey::new(&K_RETAIL),
            Profile::DesxCbc => SecretKey::new(&K_DESX),
        }
    }

    fn xor(a: &mut [u8], b: &[u8]) {
        for (x, y) in a.iter_mut().zip(b) {
            *x ^= y;
        }
    }

    #[test]
    fn padding_edge_cases() {
        use Padding::*;
        let d = |n: usize| vec![0xAAu8; n];
        // Method 1.
        assert_eq!(pad(&[], Method1, 8), vec![0; 8]);
        assert_eq!(pad(&d(7), Method1, 8), [d(7), vec![0]].concat());
        assert_eq!(pad(&d(8), Method1, 8), d(8));
        assert_eq!(pad(&d(9), Method1, 8), [d(9), vec![0; 7]].concat());
        // Method 2.
        assert_eq!(pad(&[], Method2, 8), hex!("8000000000000000"));
        assert_eq!(pad(&d(7), Method2, 8), [d(7), vec![0x80]].concat());
        assert_eq!(
            pad(&d(8), Method2, 8),
            [d(8), hex!("8000000000000000").to_vec()].concat()
        );
        assert_eq!(
            pad(&d(9), Method2, 8),
            [d(9), hex!("80000000000000").to_vec()].concat()
        );
        // AES block size, and a degenerate block size that must not divide by zero.
        assert_eq!(pad(&d(15), Method2, 16).len(), 16);
        assert_eq!(pad(&d(16), Method2, 16).len(), 32);
        assert_eq!(pad(&d(3), Method2, 0), [d(3), vec![0x80]].concat());
        assert_eq!(pad(&[], Method1, 0), vec![0]);
    }

    /// Alg 1 and alg 3 computed from the block primitives, to check that the crates' own zero
    /// padding adds nothing once we have padded, including on exact multiples of 8 and on the
    /// empty message.
    #[test]
    fn crate_macs_match_hand_computation_over_our_padding() {
        for padding in [Padding::Method1, Padding::Method2] {
            for len in 0..=24 {
                let data: Vec<u8> = (0..len as u8).map(|i| i.wrapping_mul(37)).collect();
                let padded = pad(&data, padding, 8);
                let cbc = |key: &[u8]| {
                    let mut h = [0u8; 8];
                    for c in padded.chunks_exact(8) {
                        xor(&mut h, c);
                        h = des_encrypt(key, &h).unwrap();
                    }
                    h
                };
                assert_eq!(iso9797_1_alg1(&K_DES, padding, &data).unwrap(), cbc(&K_DES));
                assert_eq!(
                    iso9797_1_alg1(&K_RETAIL, padding, &data).unwrap(),
                    cbc(&K_RETAIL)
                );
                let h = cbc(&K_RETAIL[..8]);
                let h = des_decrypt(&K_RETAIL[8..], &h).unwrap();
                let h = des_encrypt(&K_RETAIL[..8], &h).unwrap();
                assert_eq!(iso9797_1_alg3(&K_RETAIL, padding, &data).unwrap(), h);
                // DES-X CBC-MAC from the single-block primitive.
                let mut h = [0u8; 8];
                for c in padded.chunks_exact(8) {
                    xor(&mut h, c);
                    h = desx_encrypt(&K_DESX, &h).unwrap();
                }
                assert_eq!(desx_cbc_mac(&K_DESX, padding, &data).unwrap(), h);
            }
        }
    }

    #[test]
    fn desx_cbc_mac_matches_openssl() {
        // Last block of `openssl enc -provider legacy -provider default -desx-cbc -nopad
        // -iv 0000000000000000 -K <K_DESX>` over "Now is the time for all " ‖ 80 00..00.
        assert_eq!(
            desx_cbc_mac(&K_DESX, Padding::Method2, b"Now is the time for all ").unwrap(),
            hex!("E14F986EE2CD2304")
        );
    }

    #[test]
    fn retail_mac_profile_matches_openssl() {
        // Retail MAC = last block of DES-CBC under K (`openssl enc -des-cbc`, legacy provider)
        // over the method-2-padded data, then D_K', E_K (`-des-ecb -d`, `-des-ecb`).
        assert_eq!(
            profile_tag(
                Profile::RetailMac,
                &SecretKey::new(&K_RETAIL),
                b"Now is the time for all "
            )
            .unwrap(),
            hex!("E9086230CA3BE796")
        );
    }

    #[test]
    fn padding_ambiguity_with_method1() {
        // Method 1 cannot tell m from m‖00: same padded string, same MAC. Demonstrated on the
        // 9797-1 algorithms (the profiles never use method 1).
        let m = b"credit 100".to_vec();
        let m00 = [m.clone(), vec![0]].concat();
        assert_eq!(
            iso9797_1_alg1(&K_DES, Padding::Method1, &m).unwrap(),
            iso9797_1_alg1(&K_DES, Padding::Method1, &m00).unwrap()
        );
        assert_eq!(
            iso9797_1_alg3(&K_RETAIL, Padding::Method1, &m).unwrap(),
            iso9797_1_alg3(&K_RETAIL, Padding::Method1, &m00).unwrap()
        );
        assert_eq!(
            desx_cbc_mac(&K_DESX, Padding::Method1, &m).unwrap(),
            desx_cbc_mac(&K_DESX, Padding::Method1, &m00).unwrap()
        );
        // Even the empty message collides with one zero block.
        assert_eq!(
            iso9797_1_alg1(&K_DES, Padding::Method1, &[]).unwrap(),
            iso9797_1_alg1(&K_DES, Padding::Method1, &[0; 8]).unwrap()
        );
    }

    #[test]
    fn padding_ambiguity_defeated_by_method2() {
        let m = b"credit 100".to_vec();
        let m00 = [m.clone(), vec![0]].concat();
        assert_ne!(
            iso9797_1_alg1(&K_DES, Padding::Method2, &m).unwrap(),
            iso9797_1_alg1(&K_DES, Padding::Method2, &m00).unwrap()
        );
        assert_ne!(
            iso9797_1_alg3(&K_RETAIL, Padding::Method2, &m).unwrap(),
            iso9797_1_alg3(&K_RETAIL, Padding::Method2, &m00).unwrap()
        );
        assert_ne!(
            desx_cbc_mac(&K_DESX, Padding::Method2, &m).unwrap(),
            desx_cbc_mac(&K_DESX, Padding::Method2, &m00).unwrap()
        );
        assert_ne!(
            iso9797_1_alg1(&K_DES, Padding::Method2, &[]).unwrap(),
            iso9797_1_alg1(&K_DES, Padding::Method2, &[0; 8]).unwrap()
        );
        for p in Profile::ALL {
            let k = profile_key(p);
            let t = profile_tag(p, &k, &m).unwrap();
            assert!(verify_profile_tag(p, &k, &m, &t).unwrap());
            assert!(!verify_profile_tag(p, &k, &m00, &t).unwrap(), "{p}");
        }
    }

    /// m1 ‖ (m2 ⊕ t1) spliced: the first block of m2 is XORed with m1's tag, so the CBC chain
    /// restarts from zero and the whole thing carries m2's tag.
    fn splice(m1: &[u8], m2: &[u8], t1: &[u8; 8]) -> Vec<u8> {
        let mut tail = m2.to_vec();
        xor(&mut tail[..8], t1);
        [m1, &tail].concat()
    }

    #[test]
    fn cbc_mac_splice_forgery_defeated() {
        let m1 = b"PAY 0000000000100".to_vec(); // not a multiple of 8: method 1 pads it
        let m1 = pad(&m1, Padding::Method1, 8);
        let m2 = b"PAY 9999999999999 TO MALLORY___".to_vec();
        // Raw CBC-MAC, one key, method 1: the forgery works.
        let t1 = iso9797_1_alg1(&K_DES, Padding::Method1, &m1).unwrap();
        let t2 = iso9797_1_alg1(&K_DES, Padding::Method1, &m2).unwrap();
        let forged = splice(&m1, &m2, &t1);
        assert_eq!(
            iso9797_1_alg1(&K_DES, Padding::Method1, &forged).unwrap(),
            t2,
            "raw CBC-MAC must be forgeable, or this test shows nothing"
        );
        // The same splice against each profile tag (and the retail MAC under method 1 too):
        // rejected.
        for p in Profile::ALL {
            let k = profile_key(p);
            let t1 = profile_tag(p, &k, &m1).unwrap();
            let t2 = profile_tag(p, &k, &m2).unwrap();
            let forged = splice(&m1, &m2, &t1);
            assert!(!verify_profile_tag(p, &k, &forged, &t2).unwrap(), "{p}");
        }
        let t1 = iso9797_1_alg3(&K_RETAIL, Padding::Method1, &m1).unwrap();
        let t2 = iso9797_1_alg3(&K_RETAIL, Padding::Method1, &m2).unwrap();
        assert_ne!(
            iso9797_1_alg3(&K_RETAIL, Padding::Method1, &splice(&m1, &m2, &t1)).unwrap(),
            t2
        );
    }

    /// Padding method 2 only stops the naive splice. An attacker who writes m1's padding block
    /// into the forged message (m1 ‖ 80 00.. ‖ (m2 ⊕ t1)) still forges the legacy desx-cbc tag,
    /// because it is a plain CBC-MAC whose tag is the chaining value. The retail MAC's output
    /// transformation and CMAC's final-block subkey stop this one too. So desx-cbc is only
    /// safe over fixed-length or prefix-free messages; this test pins that fact down.
    #[test]
    fn desx_cbc_padding_aware_splice_still_forges() {
        let m1 = b"PAY 0000000000100".to_vec();
        let m2 = b"PAY 9999999999999 TO MALLORY___".to_vec();
        for p in Profile::ALL {
            let k = profile_key(p);
            let t1 = profile_tag(p, &k, &m1).unwrap();
            let t2 = profile_tag(p, &k, &m2).unwrap();
            let forged = splice(&pad(&m1, Padding::Method2, 8), &m2, &t1);
            let accepted = verify_profile_tag(p, &k, &forged, &t2).unwrap();
            assert_eq!(accepted, p == Profile::DesxCbc, "{p}");
        }
    }

    #[test]
    fn verify_rejects_bit_flips_and_truncations() {
        let data = b"module 0102030405060708 grant 42";
        for p in Profile::ALL {
            let k = profile_key(p);
            let tag = profile_tag(p, &k, data).unwrap();
            assert!(verify_profile_tag(p, &k, data, &tag).unwrap());
            for bit in 0..TAG_LEN * 8 {
                let mut bad = tag;
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    !verify_profile_tag(p, &k, data, &bad).unwrap(),
                    "{p} bit {bit}"
                );
            }
            for len in 0..TAG_LEN {
                assert!(
                    !verify_profile_tag(p, &k, data, &tag[..len]).unwrap(),
                    "{p} len {len}"
                );
            }
            for extra in [0x00, 0x80, 0xFF] {
                let long = [&tag[..], &[extra]].concat();
                assert!(
                    !verify_profile_tag(p, &k, data, &long).unwrap(),
                    "{p} len 9"
                );
            }
            for bit in 0..data.len() * 8 {
                let mut bad = data.to_vec();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    !verify_profile_tag(p, &k, &bad, &tag).unwrap(),
                    "{p} data bit {bit}"
                );
            }
        }
    }

    #[test]
    fn aes_cmac_profile_tag_is_cmac_prefix() {
        let data = b"abc";
        let full = aes_cmac(&K_AES, data).unwrap();
        let tag = profile_tag(Profile::AesCmac, &SecretKey::new(&K_AES), data).unwrap();
        assert_eq!(tag, full[..8]);
    }

    #[test]
    fn wrong_mac_key_lengths_name_profile() {
        let e = profile_tag(Profile::RetailMac, &SecretKey::new(&[0; 24]), b"x").unwrap_err();
        assert_eq!(e.to_string(), "retail-mac MAC key must be 16 bytes, got 24");
        let e = verify_profile_tag(Profile::AesCmac, &SecretKey::new(&[0; 15]), b"x", &[0; 8])
            .unwrap_err();
        assert_eq!(e.to_string(), "aes-cmac MAC key must be 16 bytes, got 15");
        assert!(profile_tag(Profile::DesxCbc, &SecretKey::new(&[0; 16]), b"x").is_err());
        assert!(iso9797_1_alg1(&[0; 7], Padding::Method2, b"x").is_err());
        assert!(iso9797_1_alg3(&[0; 8], Padding::Method2, b"x").is_err());
        assert!(iso9797_1_alg3(&[0; 24], Padding::Method2, b"x").is_err());
        assert!(desx_cbc_mac(&[0; 16], Padding::Method2, b"x").is_err());
        assert!(aes_cmac(&[0; 24], b"x").is_err());
    }

    #[test]
    fn ct_eq_semantics() {
        assert!(ct_eq(b"", b""));
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(!ct_eq(b"", b"a"));
    }
}
