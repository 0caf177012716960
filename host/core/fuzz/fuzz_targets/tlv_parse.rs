//! Fuzz target: the BER-TLV and SIMPLE-TLV parsers (`simkit_core::tlv`).
//!
//! - No input panics, however deep its constructed objects nest.
//! - Whatever parses re-encodes (shortest length form) to bytes that parse to the same pairs and
//!   are never longer than the input; `*_find` agrees with the first pair of each tag.
//! - A BER value that parses as TLV in turn is descended, a bounded number of levels.
//! - Any tag and value the encoders accept parse back as exactly that one pair.

#![no_main]

use libfuzzer_sys::fuzz_target;
use simkit_core::tlv::{
    ber_encode, ber_find, ber_is_constructed, ber_parse_all, simple_encode, simple_find,
    simple_parse_all,
};

/// How many constructed levels are descended (the parser itself is one level at a time).
const MAX_DEPTH: usize = 16;

fn check_ber(data: &[u8], depth: usize) {
    let Ok(pairs) = ber_parse_all(data) else {
        // A malformed input is malformed for every lookup too.
        assert!(ber_find(data, &[0x80]).is_err());
        return;
    };
    let mut again = Vec::new();
    for (tag, value) in &pairs {
        again.extend(ber_encode(tag, value).expect("a parsed pair re-encodes"));
        let first = pairs
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, v)| v.as_slice());
        assert_eq!(ber_find(data, tag), Ok(first));
        if depth < MAX_DEPTH && ber_is_constructed(tag) {
            check_ber(value, depth + 1);
        }
    }
    assert!(again.len() <= data.len(), "shortest form is never longer");
    assert_eq!(ber_parse_all(&again).as_ref(), Ok(&pairs));
}

fn check_simple(data: &[u8]) {
    let Ok(pairs) = simple_parse_all(data) else {
        assert!(simple_find(data, 0x01).is_err());
        return;
    };
    let mut again = Vec::new();
    for (tag, value) in &pairs {
        again.extend(simple_encode(*tag, value).expect("a parsed pair re-encodes"));
        let first = pairs
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, v)| v.as_slice());
        assert_eq!(simple_find(data, *tag), Ok(first));
    }
    // `FF 00 05` is a valid but longer length 5, so the re-encoding may be shorter.
    assert!(again.len() <= data.len(), "shortest form is never longer");
    assert_eq!(simple_parse_all(&again).as_ref(), Ok(&pairs));
}

fuzz_target!(|data: &[u8]| {
    check_ber(data, 0);
    check_simple(data);

    // The first byte says how many of the next bytes (0..=3) are a BER tag; the rest is a value.
    if let Some((&n, rest)) = data.split_first() {
        let (tag, value) = rest.split_at(usize::from(n % 4).min(rest.len()));
        if let Ok(bytes) = ber_encode(tag, value) {
            assert_eq!(
                ber_parse_all(&bytes),
                Ok(vec![(tag.to_vec(), value.to_vec())])
            );
        }
        if let Ok(bytes) = simple_encode(n, rest) {
            assert_eq!(simple_parse_all(&bytes), Ok(vec![(n, rest.to_vec())]));
        }
    }
});
