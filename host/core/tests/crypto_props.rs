//! Property tests for `simkit_core::crypto`: tag round trips, rejection of any modification,
//! padding method 2 being reversible, and KCV/key functions never panicking on odd lengths.

use proptest::prelude::*;
use simkit_core::crypto::{
    KeyAlg, Padding, Profile, SecretKey, TAG_LEN, derive_module_keys, kcv, pad, profile_tag,
    verify_profile_tag,
};

fn profile() -> impl Strategy<Value = Profile> {
    prop::sample::select(Profile::ALL.to_vec())
}

/// A profile and a random module key of the right length for it.
fn profile_and_key() -> impl Strategy<Value = (Profile, SecretKey)> {
    profile().prop_flat_map(|p| {
        prop::collection::vec(any::<u8>(), p.module_key_len())
            .prop_map(move |k| (p, SecretKey::new(&k)))
    })
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..100)
}

/// Inverse of padding method 2: strip trailing zeros, then exactly one 0x80.
fn unpad_method2(padded: &[u8]) -> Option<&[u8]> {
    let end = padded.iter().rposition(|&b| b != 0)?;
    (padded[end] == 0x80).then(|| &padded[..end])
}

proptest! {
    #[test]
    fn tag_round_trips((p, key) in profile_and_key(), data in data()) {
        let tag = profile_tag(p, &key, &data).unwrap();
        prop_assert_eq!(tag.len(), TAG_LEN);
        prop_assert!(verify_profile_tag(p, &key, &data, &tag).unwrap());
        // Deterministic.
        prop_assert_eq!(profile_tag(p, &key, &data).unwrap(), tag);
    }

    #[test]
    fn modified_data_fails(
        (p, key) in profile_and_key(),
        data in prop::collection::vec(any::<u8>(), 1..100),
        idx in any::<prop::sample::Index>(),
        flip in 1..=255u8,
    ) {
        let tag = profile_tag(p, &key, &data).unwrap();
        let mut bad = data.clone();
        bad[idx.index(data.len())] ^= flip;
        prop_assert!(!verify_profile_tag(p, &key, &bad, &tag).unwrap());
    }

    #[test]
    fn appended_or_truncated_data_fails(
        (p, key) in profile_and_key(),
        data in prop::collection::vec(any::<u8>(), 1..100),
        extra in prop::collection::vec(any::<u8>(), 1..10),
    ) {
        let tag = profile_tag(p, &key, &data).unwrap();
        let longer = [&data[..], &extra[..]].concat();
        prop_assert!(!verify_profile_tag(p, &key, &longer, &tag).unwrap());
        prop_assert!(!verify_profile_tag(p, &key, &data[..data.len() - 1], &tag).unwrap());
    }

    #[test]
    fn modified_tag_fails(
        (p, key) in profile_and_key(),
        data in data(),
        idx in 0..TAG_LEN,
        flip in 1..=255u8,
    ) {
        let mut tag = profile_tag(p, &key, &data).unwrap();
        tag[idx] ^= flip;
        prop_assert!(!verify_profile_tag(p, &key, &data, &tag).unwrap());
    }

    #[test]
    fn wrong_length_tag_fails(
        (p, key) in profile_and_key(),
        data in data(),
        len in (0usize..32).prop_filter("not the tag length", |l| *l != TAG_LEN),
    ) {
        let tag = profile_tag(p, &key, &data).unwrap();
        // Prefixes of the right tag, and the right tag followed by more bytes.
        let candidate: Vec<u8> = tag.iter().copied().cycle().take(len).collect();
        prop_assert!(!verify_profile_tag(p, &key, &data, &candidate).unwrap());
    }

    #[test]
    fn other_key_fails((p, key) in profile_and_key(), data in data(), idx in 0..16usize) {
        let tag = profile_tag(p, &key, &data).unwrap();
        let mut other = key.expose_secret().to_vec();
        // Flip a non-parity bit: DES ignores the parity bits, so flipping those is not a new key.
        other[idx] ^= 0x02;
        prop_assert!(!verify_profile_tag(p, &SecretKey::new(&other), &data, &tag).unwrap());
    }

    #[test]
    fn pad_method2_is_reversible(data in data(), block in 1usize..33) {
        let padded = pad(&data, Padding::Method2, block);
        prop_assert_eq!(padded.len() % block, 0);
        prop_assert!(padded.len() > data.len());
        prop_assert!(padded.len() <= data.len() + block);
        prop_assert_eq!(unpad_method2(&padded), Some(&data[..]));
    }

    #[test]
    fn pad_method1_shape(data in data(), block in 1usize..33) {
        let padded = pad(&data, Padding::Method1, block);
        prop_assert_eq!(padded.len() % block, 0);
        prop_assert!(!padded.is_empty());
        prop_assert_eq!(&padded[..data.len()], &data[..]);
        prop_assert!(padded[data.len()..].iter().all(|&b| b == 0));
        prop_assert!(padded.len() < data.len() + block || data.is_empty());
    }

    #[test]
    fn kcv_never_panics(key in prop::collection::vec(any::<u8>(), 0..40)) {
        for (alg, ok_lengths) in [
            (KeyAlg::Des, &[8][..]),
            (KeyAlg::Tdes, &[16, 24][..]),
            (KeyAlg::Desx, &[24][..]),
            (KeyAlg::Aes, &[16][..]),
        ] {
            prop_assert_eq!(kcv(&key, alg).is_ok(), ok_lengths.contains(&key.len()));
        }
    }

    #[test]
    fn wrong_key_lengths_are_errors_not_panics(
        p in profile(),
        key in prop::collection::vec(any::<u8>(), 0..40),
        data in data(),
        id in any::<[u8; 8]>(),
    ) {
        let key = SecretKey::new(&key);
        prop_assert_eq!(profile_tag(p, &key, &data).is_ok(), key.len() == p.module_key_len());
        prop_assert_eq!(
            verify_profile_tag(p, &key, &data, &[0; TAG_LEN]).is_ok(),
            key.len() == p.module_key_len()
        );
        prop_assert_eq!(
            derive_module_keys(p, &key, &id).is_ok(),
            key.len() == p.master_key_len()
        );
    }

    #[test]
    fn derived_keys_work_as_mac_keys(
        p in profile(),
        master in prop::collection::vec(any::<u8>(), 24),
        id in any::<[u8; 8]>(),
        data in data(),
    ) {
        let master = SecretKey::new(&master[..p.master_key_len()]);
        let keys = derive_module_keys(p, &master, &id).unwrap();
        prop_assert_ne!(&keys.request, &keys.grant);
        let tag = profile_tag(p, &keys.request, &data).unwrap();
        prop_assert!(verify_profile_tag(p, &keys.request, &data, &tag).unwrap());
        prop_assert!(!verify_profile_tag(p, &keys.grant, &data, &tag).unwrap());
    }
}
