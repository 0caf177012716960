//! Single-block cipher primitives: DES / 3DES, DES-X and AES-128, one block at a time, plus the
//! DES odd-parity helpers.
//!
//! The MACs, the key derivations, the key check values and the tests are all built on these.
//! DES, 3DES and AES come from the RustCrypto `des` and `aes` crates; DES-X is hand-rolled here
//! (two XORs around the `des` crate's DES) because no RustCrypto crate implements it.

use des::cipher::{Block, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use des::{Des, TdesEde2, TdesEde3};
use zeroize::Zeroize;

use super::CryptoError;

/// Accepted DES / 3DES key lengths, for error messages.
const DES_LENGTHS: &str = "8, 16 or 24";

fn des_len_error(got: usize) -> CryptoError {
    CryptoError::WrongKeyLength {
        what: "DES/3DES key",
        expected: DES_LENGTHS,
        got,
    }
}

fn desx_len_error(got: usize) -> CryptoError {
    CryptoError::WrongKeyLength {
        what: "DES-X key (DESKEY‖PRE‖POST)",
        expected: "24",
        got,
    }
}

/// Builds a cipher from a key whose length the caller has already checked; the fallback error
/// keeps this panic-free should the two ever disagree.
fn new_cipher<C: KeyInit>(key: &[u8]) -> Result<C, CryptoError> {
    C::new_from_slice(key).map_err(|_| des_len_error(key.len()))
}

fn encrypt_with<C: KeyInit + BlockCipherEncrypt>(
    key: &[u8],
    block: &[u8; 8],
) -> Result<[u8; 8], CryptoError>
where
    Block<C>: From<[u8; 8]> + Into<[u8; 8]>,
{
    let cipher: C = new_cipher(key)?;
    let mut b = Block::<C>::from(*block);
    cipher.encrypt_block(&mut b);
    Ok(b.into())
}

fn decrypt_with<C: KeyInit + BlockCipherDecrypt>(
    key: &[u8],
    block: &[u8; 8],
) -> Result<[u8; 8], CryptoError>
where
    Block<C>: From<[u8; 8]> + Into<[u8; 8]>,
{
    let cipher: C = new_cipher(key)?;
    let mut b = Block::<C>::from(*block);
    cipher.decrypt_block(&mut b);
    Ok(b.into())
}

/// Encrypts one block with DES (8-byte key), 2-key 3DES EDE (16 bytes, K1‖K2, K3 = K1) or 3-key
/// 3DES EDE (24 bytes, K1‖K2‖K3). Parity bits are ignored, as DES specifies.
pub fn des_encrypt(key: &[u8], block: &[u8; 8]) -> Result<[u8; 8], CryptoError> {
    match key.len() {
        8 => encrypt_with::<Des>(key, block),
        16 => encrypt_with::<TdesEde2>(key, block),
        24 => encrypt_with::<TdesEde3>(key, block),
        got => Err(des_len_error(got)),
    }
}

/// Decrypts one block; the inverse of [`des_encrypt`] with the same key layouts.
pub fn des_decrypt(key: &[u8], block: &[u8; 8]) -> Result<[u8; 8], CryptoError> {
    match key.len() {
        8 => decrypt_with::<Des>(key, block),
        16 => decrypt_with::<TdesEde2>(key, block),
        24 => decrypt_with::<TdesEde3>(key, block),
        got => Err(des_len_error(got)),
    }
}

/// DES-X with the key schedule expanded once, so that CBC-MAC over many blocks does not redo it.
///
/// Hand-rolled because no RustCrypto crate implements DES-X. Key layout is OpenSSL's
/// (`desx-cbc`): DESKEY‖PRE‖POST, and `C = POST ⊕ DES_DESKEY(P ⊕ PRE)`.
pub(super) struct DesX {
    des: Des,
    pre: u64,
    post: u64,
}

impl DesX {
    /// Expands a 24-byte DESKEY‖PRE‖POST key.
    pub(super) fn new(key: &[u8]) -> Result<Self, CryptoError> {
        let err = || desx_len_error(key.len());
        if key.len() != 24 {
            return Err(err());
        }
        let (des_key, whitening) = key.split_at(8);
        let (pre, post) = whitening.split_at(8);
        Ok(DesX {
            des: Des::new_from_slice(des_key).map_err(|_| err())?,
            pre: be_u64(pre).ok_or_else(err)?,
            post: be_u64(post).ok_or_else(err)?,
        })
    }

    /// Encrypts one block in place.
    pub(super) fn encrypt(&self, block: &mut [u8; 8]) {
        let mut b = Block::<Des>::from((u64::from_be_bytes(*block) ^ self.pre).to_be_bytes());
        self.des.encrypt_block(&mut b);
        let c: [u8; 8] = b.into();
        *block = (u64::from_be_bytes(c) ^ self.post).to_be_bytes();
    }

    /// Decrypts one block in place.
    pub(super) fn decrypt(&self, block: &mut [u8; 8]) {
        let mut b = Block::<Des>::from((u64::from_be_bytes(*block) ^ self.post).to_be_bytes());
        self.des.decrypt_block(&mut b);
        let p: [u8; 8] = b.into();
        *block = (u64::from_be_bytes(p) ^ self.pre).to_be_bytes();
    }
}

impl Drop for DesX {
    fn drop(&mut self) {
        // The whitening keys are two thirds of the key; the DES schedule is the `des` crate's
        // to wipe (its `zeroize` feature).
        self.pre.zeroize();
        self.post.zeroize();
    }
}

fn be_u64(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

/// Encrypts one block with DES-X. `key` is 24 bytes DESKEY‖PRE‖POST (OpenSSL's order; Crypto++'s
/// `DES_XEX3` takes PRE‖DESKEY‖POST instead) and `C = POST ⊕ DES_DESKEY(P ⊕ PRE)`.
pub fn desx_encrypt(key: &[u8], block: &[u8; 8]) -> Result<[u8; 8], CryptoError> {
    let x = DesX::new(key)?;
    let mut b = *block;
    x.encrypt(&mut b);
    Ok(b)
}

/// Decrypts one block with DES-X: `P = PRE ⊕ DES⁻¹_DESKEY(C ⊕ POST)`; same key layout as
/// [`desx_encrypt`].
pub fn desx_decrypt(key: &[u8], block: &[u8; 8]) -> Result<[u8; 8], CryptoError> {
    let x = DesX::new(key)?;
    let mut b = *block;
    x.decrypt(&mut b);
    Ok(b)
}

/// Encrypts one block with AES-128 (16-byte key).
pub fn aes128_encrypt(key: &[u8], block: &[u8; 16]) -> Result<[u8; 16], CryptoError> {
    let cipher = aes::Aes128::new_from_slice(key).map_err(|_| CryptoError::WrongKeyLength {
        what: "AES-128 key",
        expected: "16",
        got: key.len(),
    })?;
    let mut b = Block::<aes::Aes128>::from(*block);
    cipher.encrypt_block(&mut b);
    Ok(b.into())
}

/// Sets the least significant bit of every byte so that each byte has an odd number of one
/// bits, the DES parity convention. Works on any length (DES, 3DES, or a DES-X DESKEY part).
pub fn set_odd_parity(key: &mut [u8]) {
    for b in key {
        if b.count_ones() % 2 == 0 {
            *b ^= 0x01;
        }
    }
}

/// Whether every byte has an odd number of one bits (true for the empty slice).
pub fn has_odd_parity(key: &[u8]) -> bool {
    key.iter().all(|b| b.count_ones() % 2 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn parity_helpers() {
        let mut k = hex!("0023456789ABCDEF FE");
        assert!(!has_odd_parity(&k));
        set_odd_parity(&mut k);
        assert_eq!(k, hex!("0123456789ABCDEF FE"));
        assert!(has_odd_parity(&k));
        // Setting parity twice changes nothing.
        set_odd_parity(&mut k);
        assert_eq!(k, hex!("0123456789ABCDEF FE"));
        assert!(has_odd_parity(&[]));
        assert!(!has_odd_parity(&hex!("01 00")));
        for b in 0..=255u8 {
            let mut x = [b];
            set_odd_parity(&mut x);
            assert!(has_odd_parity(&x));
            // Only the parity bit (LSB) may change.
            assert_eq!(x[0] & 0xFE, b & 0xFE);
        }
    }

    #[test]
    fn des_round_trips_all_key_lengths() {
        let p = hex!("0123456789ABCDE7");
        for key in [
            &hex!("0123456789ABCDEF")[..],
            &hex!("0123456789ABCDEF FEDCBA9876543210")[..],
            &hex!("0123456789ABCDEF FEDCBA9876543210 89ABCDEF01234567")[..],
        ] {
            let c = des_encrypt(key, &p).unwrap();
            assert_ne!(c, p);
            assert_eq!(des_decrypt(key, &c).unwrap(), p);
        }
    }

    #[test]
    fn two_key_tdes_equals_three_key_with_k3_eq_k1() {
        let p = hex!("4E6F772069732074");
        let k2 = hex!("0123456789ABCDEF FEDCBA9876543210");
        let k3 = hex!("0123456789ABCDEF FEDCBA9876543210 0123456789ABCDEF");
        assert_eq!(des_encrypt(&k2, &p).unwrap(), des_encrypt(&k3, &p).unwrap());
    }

    #[test]
    fn desx_matches_definition_and_round_trips() {
        let key = hex!("0123456789ABCDEF 1122334455667788 A1A2A3A4A5A6A7A8");
        let p = hex!("4E6F772069732074");
        let c = desx_encrypt(&key, &p).unwrap();
        let mut inner = p;
        for (x, w) in inner.iter_mut().zip(&key[8..16]) {
            *x ^= w;
        }
        let mut expected = des_encrypt(&key[..8], &inner).unwrap();
        for (x, w) in expected.iter_mut().zip(&key[16..24]) {
            *x ^= w;
        }
        assert_eq!(c, expected);
        assert_eq!(desx_decrypt(&key, &c).unwrap(), p);
    }

    #[test]
    fn desx_matches_openssl() {
        // `openssl enc -provider legacy -provider default -desx-cbc -nopad -iv 00..00
        //  -K 0123456789ABCDEF1122334455667788A1A2A3A4A5A6A7A8` of "Now is t".
        let key = hex!("0123456789ABCDEF 1122334455667788 A1A2A3A4A5A6A7A8");
        assert_eq!(
            desx_encrypt(&key, b"Now is t").unwrap(),
            hex!("B8329DC4C33CD533")
        );
    }

    #[test]
    fn wrong_lengths_are_errors() {
        for len in [0, 7, 9, 15, 17, 23, 25, 32] {
            let key = vec![0x01; len];
            assert!(matches!(
                des_encrypt(&key, &[0; 8]),
                Err(CryptoError::WrongKeyLength { got, .. }) if got == len
            ));
            assert!(des_decrypt(&key, &[0; 8]).is_err());
            assert!(desx_encrypt(&key, &[0; 8]).is_err());
            assert!(desx_decrypt(&key, &[0; 8]).is_err());
            assert!(aes128_encrypt(&key, &[0; 16]).is_err());
        }
        assert!(desx_encrypt(&[0; 16], &[0; 8]).is_err());
        assert!(aes128_encrypt(&[0; 24], &[0; 16]).is_err());
        assert_eq!(
            des_encrypt(&[0; 7], &[0; 8]).unwrap_err().to_string(),
            "DES/3DES key must be 8, 16 or 24 bytes, got 7"
        );
    }

    #[test]
    fn aes_fips197_vector() {
        // FIPS 197 appendix C.1.
        assert_eq!(
            aes128_encrypt(
                &hex!("000102030405060708090a0b0c0d0e0f"),
                &hex!("00112233445566778899aabbccddeeff")
            )
            .unwrap(),
            hex!("69c4e0d86a7b0430d8cdb78070b4c55a")
        );
    }
}
