//! Checks every entry of `applet-spec/vectors/published.json` (published DES, 3DES, DES-X,
//! ISO/IEC 9797-1 and AES-CMAC vectors) against `simkit_core::crypto`.
//!
//! Each section also asserts how many entries it checked, so a vector silently dropped from the
//! file (or a renamed field) fails here instead of passing with nothing tested.

// This whole crate is test code; clippy.toml's allow-*-in-tests does not reach helper functions
// outside `#[test]` functions, and a malformed vector file should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use simkit_core::crypto::{
    Padding, aes_cmac, aes128_encrypt, des_decrypt, des_encrypt, desx_decrypt, desx_encrypt,
    iso9797_1_alg1, iso9797_1_alg3,
};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../applet-spec/vectors/published.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

/// The entries of one section, each required to cite a source.
fn section(name: &str) -> Vec<Value> {
    let v = vectors();
    let entries = v[name]
        .as_array()
        .unwrap_or_else(|| panic!("section {name} missing or not a list"))
        .clone();
    for e in &entries {
        assert!(
            e["source"].as_str().is_some_and(|s| !s.is_empty()),
            "{name} entry without a source: {e}"
        );
    }
    entries
}

fn bytes(e: &Value, field: &str) -> Vec<u8> {
    let s = e[field]
        .as_str()
        .unwrap_or_else(|| panic!("field {field} missing in {e}"));
    hex::decode(s).unwrap_or_else(|err| panic!("field {field} not hex in {e}: {err}"))
}

fn block8(e: &Value, field: &str) -> [u8; 8] {
    bytes(e, field)
        .try_into()
        .unwrap_or_else(|_| panic!("field {field} is not 8 bytes in {e}"))
}

#[test]
fn des_ecb() {
    let entries = section("des_ecb");
    assert_eq!(entries.len(), 2);
    for e in &entries {
        let key = bytes(e, "key");
        assert_eq!(key.len(), 8);
        let (p, c) = (block8(e, "plaintext"), block8(e, "ciphertext"));
        assert_eq!(des_encrypt(&key, &p).unwrap(), c, "{e}");
        assert_eq!(des_decrypt(&key, &c).unwrap(), p, "{e}");
    }
}

#[test]
fn tdes_ecb() {
    let entries = section("tdes_ecb");
    let lengths: Vec<usize> = entries.iter().map(|e| bytes(e, "key").len()).collect();
    assert_eq!(lengths, [16, 24], "one 2-key and one 3-key vector");
    for e in &entries {
        let key = bytes(e, "key");
        let (p, c) = (block8(e, "plaintext"), block8(e, "ciphertext"));
        assert_eq!(des_encrypt(&key, &p).unwrap(), c, "{e}");
        assert_eq!(des_decrypt(&key, &c).unwrap(), p, "{e}");
    }
}

/// The file gives DES-X keys in Crypto++'s `DES_XEX3` layout PRE‖DESKEY‖POST (as separate
/// fields); simkit takes DESKEY‖PRE‖POST (OpenSSL's order), so the test reorders.
#[test]
fn desx_ecb() {
    let entries = section("desx_ecb");
    assert_eq!(entries.len(), 1);
    for e in &entries {
        let key = [
            bytes(e, "des_key"),
            bytes(e, "pre_whitening"),
            bytes(e, "post_whitening"),
        ]
        .concat();
        assert_eq!(key.len(), 24);
        let (p, c) = (block8(e, "plaintext"), block8(e, "ciphertext"));
        assert_eq!(desx_encrypt(&key, &p).unwrap(), c, "{e}");
        assert_eq!(desx_decrypt(&key, &c).unwrap(), p, "{e}");
        // Guard against the test passing with the wrong layout too.
        let crypto_pp = [
            bytes(e, "pre_whitening"),
            bytes(e, "des_key"),
            bytes(e, "post_whitening"),
        ]
        .concat();
        assert_ne!(desx_encrypt(&crypto_pp, &p).unwrap(), c);
    }
}

#[test]
fn iso9797_1_mac() {
    let entries = section("iso9797_1_mac");
    let mut algorithms = Vec::new();
    for e in &entries {
        let key = bytes(e, "key");
        let data = bytes(e, "data");
        let mac = block8(e, "mac");
        let padding = match e["padding"].as_u64() {
            Some(1) => Padding::Method1,
            Some(2) => Padding::Method2,
            other => panic!("unexpected padding {other:?} in {e}"),
        };
        let got = match e["algorithm"].as_u64() {
            Some(1) => iso9797_1_alg1(&key, padding, &data).unwrap(),
            Some(3) => iso9797_1_alg3(&key, padding, &data).unwrap(),
            other => panic!("unexpected algorithm {other:?} in {e}"),
        };
        assert_eq!(got, mac, "{e}");
        algorithms.push(e["algorithm"].as_u64());
    }
    assert_eq!(algorithms, [Some(1), Some(3), Some(3)]);
}

#[test]
fn aes_cmac_rfc4493() {
    let entries = section("aes_cmac");
    let lengths: Vec<usize> = entries.iter().map(|e| bytes(e, "data").len()).collect();
    assert_eq!(lengths, [0, 16, 40, 64], "all four RFC 4493 examples");
    for e in &entries {
        let mac: [u8; 16] = bytes(e, "mac").try_into().unwrap();
        assert_eq!(
            aes_cmac(&bytes(e, "key"), &bytes(e, "data")).unwrap(),
            mac,
            "{e}"
        );
    }
}

/// RFC 4493 §2.3 doubling in GF(2^128): shift left one bit, XOR `0x87` into the last byte if
/// the bit shifted out was set.
fn dbl(x: [u8; 16]) -> [u8; 16] {
    let v = u128::from_be_bytes(x);
    let r = (v << 1) ^ if v >> 127 == 1 { 0x87 } else { 0 };
    r.to_be_bytes()
}

#[test]
fn aes_cmac_subkeys() {
    let v = vectors();
    let e = &v["aes_cmac_subkeys"];
    assert!(e["source"].as_str().is_some_and(|s| !s.is_empty()));
    let key = bytes(e, "key");
    let l = aes128_encrypt(&key, &[0; 16]).unwrap();
    assert_eq!(l.to_vec(), bytes(e, "L"));
    let k1 = dbl(l);
    assert_eq!(k1.to_vec(), bytes(e, "K1"));
    let k2 = dbl(k1);
    assert_eq!(k2.to_vec(), bytes(e, "K2"));
}

/// Every section in the file is checked by a test above; a new section must get a test.
#[test]
fn no_unchecked_sections() {
    let v = vectors();
    let obj = v.as_object().unwrap();
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "about",
            "aes_cmac",
            "aes_cmac_subkeys",
            "des_ecb",
            "desx_ecb",
            "iso9797_1_mac",
            "tdes_ecb"
        ]
    );
}
