//! Property tests for the byte-level modules: APDU encode/parse and chaining round trips, parsers
//! that never panic on arbitrary input, hex round trips and TLV parsing.

use proptest::prelude::*;
use simkit_core::apdu::{ApduError, Command, LengthEncoding, Response, chain, reassemble};
use simkit_core::hexutil::{parse_hex, to_hex, to_hex_spaced};
use simkit_core::status::Sw;
use simkit_core::tlv;

const ENCODINGS: [LengthEncoding; 3] = [
    LengthEncoding::Auto,
    LengthEncoding::Short,
    LengthEncoding::Extended,
];

/// Data lengths weighted towards the short/extended boundaries, with a few beyond 65535.
fn data_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0..=300_usize,
        1 => 65_530..=65_535_usize,
        1 => 65_536..=70_000_usize,
        1 => 300..=65_535_usize,
    ]
}

/// Le values weighted towards the edges, including the invalid 0 and 65537.
fn le() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![
        3 => Just(None),
        2 => prop::sample::select(vec![1_u32, 255, 256, 257, 65_535, 65_536]).prop_map(Some),
        3 => (1..=65_536_u32).prop_map(Some),
        1 => prop::sample::select(vec![0_u32, 65_537, u32::MAX]).prop_map(Some),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    (
        any::<[u8; 4]>(),
        data_len().prop_flat_map(|n| prop::collection::vec(any::<u8>(), n)),
        le(),
    )
        .prop_map(|([cla, ins, p1, p2], data, le)| Command {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
        })
}

/// Bytes that look like a command: a header and a short body, so that the valid cases are hit
/// often, not only by chance.
fn command_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<[u8; 4]>(),
        prop::sample::select(vec![0_u8, 1, 2, 3, 0xFF]),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(h, first, rest)| {
            let mut v = h.to_vec();
            v.push(first);
            v.extend(rest);
            v
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn command_build_parse_round_trip(cmd in command()) {
        let valid_len = cmd.data.len() <= 65_535;
        let valid_le = cmd.le.is_none_or(|le| (1..=65_536).contains(&le));
        for enc in ENCODINGS {
            match cmd.to_bytes(enc) {
                Ok(bytes) => {
                    prop_assert!(valid_len && valid_le);
                    prop_assert_eq!(Command::parse(&bytes)?, cmd.clone());
                    prop_assert_eq!(cmd.encoded_len(enc)?, bytes.len());
                    let mut buf = vec![0xEE];
                    cmd.write_into(enc, &mut buf)?;
                    prop_assert_eq!(&buf[1..], &bytes[..]);
                }
                Err(ApduError::DataTooLong { .. }) => prop_assert!(!valid_len),
                Err(ApduError::LeOutOfRange { .. }) => prop_assert!(valid_len && !valid_le),
                Err(ApduError::ShortDataTooLong { .. } | ApduError::ShortLeTooLarge { .. }) => {
                    prop_assert_eq!(enc, LengthEncoding::Short);
                    prop_assert!(cmd.is_extended());
                }
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
        }
        if valid_len && valid_le {
            // Auto is short exactly when the command fits.
            let auto = cmd.to_bytes(LengthEncoding::Auto)?;
            let short = cmd.to_bytes(LengthEncoding::Short);
            prop_assert_eq!(short.is_ok(), !cmd.is_extended());
            if let Ok(short) = short {
                prop_assert_eq!(auto, short);
            }
        }
    }

    #[test]
    fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(cmd) = Command::parse(&bytes) {
            for enc in [LengthEncoding::Auto, LengthEncoding::Extended] {
                let again = cmd.to_bytes(enc)?;
                prop_assert_eq!(Command::parse(&again)?, cmd.clone());
            }
        }
        match Response::parse(&bytes) {
            Ok(resp) => prop_assert_eq!(&resp.to_bytes(), &bytes),
            Err(_) => prop_assert!(bytes.len() < 2),
        }
        let _ = tlv::ber_parse_all(&bytes);
        let _ = tlv::simple_parse_all(&bytes);
    }

    #[test]
    fn command_like_bytes_reparse(bytes in command_like_bytes()) {
        if let Ok(cmd) = Command::parse(&bytes) {
            let again = cmd.to_bytes(LengthEncoding::Auto)?;
            prop_assert_eq!(Command::parse(&again)?, cmd.clone());
            // Short-form inputs are canonical: they re-encode to the same bytes.
            if bytes.get(4) != Some(&0) || bytes.len() == 5 {
                prop_assert_eq!(again, bytes);
            }
        }
    }

    #[test]
    fn chain_reassemble_round_trip(
        cla in prop::sample::select(vec![0x00_u8, 0x01, 0x0C, 0x40, 0x6F, 0x80, 0x84, 0xE3]),
        ins in any::<u8>(),
        data in prop::collection::vec(any::<u8>(), 0..2_000),
        le in prop::option::of(1..=256_u32),
        max in 1..=300_usize,
    ) {
        let cmd = Command::new(cla, ins, 0x12, 0x34).data(data);
        let cmd = Command { le, ..cmd };
        let pieces = chain(&cmd, max)?;
        prop_assert_eq!(pieces.len(), cmd.data.len().div_ceil(max).max(1));
        let (last, init) = pieces.split_last().ok_or_else(|| TestCaseError::fail("empty"))?;
        prop_assert_eq!(last.cla, cla);
        prop_assert_eq!(last.le, le);
        for piece in init {
            prop_assert_eq!(piece.cla, cla | 0x10);
            prop_assert_eq!(piece.le, None);
            prop_assert_eq!(piece.data.len(), max);
        }
        for piece in &pieces {
            prop_assert!(piece.data.len() <= max);
            if max <= 255 {
                prop_assert!(piece.to_bytes(LengthEncoding::Short).is_ok());
            }
        }
        prop_assert_eq!(reassemble(&pieces)?, cmd);
    }

    #[test]
    fn hex_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let plain = to_hex(&bytes);
        prop_assert_eq!(plain.len(), bytes.len() * 2);
        prop_assert_eq!(&parse_hex(&plain)?, &bytes);
        prop_assert_eq!(&parse_hex(&plain.to_lowercase())?, &bytes);
        prop_assert_eq!(&parse_hex(&format!(" 0x{plain}\n"))?, &bytes);
        prop_assert_eq!(&parse_hex(&to_hex_spaced(&bytes))?, &bytes);
        prop_assert_eq!(&parse_hex(&to_hex_spaced(&bytes).replace(' ', ":"))?, &bytes);
    }

    #[test]
    fn parse_hex_never_panics(s in "\\PC{0,40}", t in "[0-9a-fA-Fx: \t]{0,40}") {
        let _ = parse_hex(&s);
        let _ = parse_hex(&t);
    }

    #[test]
    fn sw_bytes_round_trip(sw1 in any::<u8>(), sw2 in any::<u8>()) {
        let sw = Sw::from_bytes(sw1, sw2);
        prop_assert_eq!(sw.to_bytes(), [sw1, sw2]);
        let prefix = format!("{sw1:02X}{sw2:02X} ");
        prop_assert!(sw.to_string().starts_with(&prefix));
    }

    #[test]
    fn ber_encode_parse_round_trip(
        objs in prop::collection::vec(
            (
                prop_oneof![
                    any::<u8>().prop_filter("single-byte tag", |b| *b != 0 && *b != 0xFF && b & 0x1F != 0x1F)
                        .prop_map(|b| vec![b]),
                    (0..=0x7F_u8).prop_map(|b| vec![0x9F, b]),
                    (0x80..=0xFF_u8, 0..=0x7F_u8).prop_map(|(b, c)| vec![0xDF, b, c]),
                ],
                prop::collection::vec(any::<u8>(), 0..300),
            ),
            0..5,
        )
    ) {
        let mut bytes = Vec::new();
        for (tag, value) in &objs {
            bytes.extend(tlv::ber_encode(tag, value)?);
        }
        prop_assert_eq!(tlv::ber_parse_all(&bytes)?, objs.clone());
        if let Some((tag, value)) = objs.first() {
            prop_assert_eq!(tlv::ber_find(&bytes, tag)?, Some(&value[..]));
        }
    }

    #[test]
    fn simple_encode_parse_round_trip(
        objs in prop::collection::vec((1..=0xFE_u8, prop::collection::vec(any::<u8>(), 0..600)), 0..5)
    ) {
        let mut bytes = Vec::new();
        for (tag, value) in &objs {
            bytes.extend(tlv::simple_encode(*tag, value)?);
        }
        prop_assert_eq!(tlv::simple_parse_all(&bytes)?, objs);
    }

    /// Differential check against the `iso7816-tlv` crate where it is right (see `tlv` docs).
    #[test]
    fn tlv_matches_iso7816_tlv_crate(
        tag in any::<u8>().prop_filter("primitive single-byte tag", |b| *b != 0 && *b != 0xFF && b & 0x1F != 0x1F && b & 0x20 == 0),
        value in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        use iso7816_tlv::{ber, simple};
        let oops = |e: iso7816_tlv::TlvError| TestCaseError::fail(format!("iso7816-tlv: {e}"));
        let theirs = ber::Tlv::new(ber::Tag::try_from(tag).map_err(oops)?, ber::Value::Primitive(value.clone()))
            .map_err(oops)?
            .to_vec();
        // They write a 127-byte length as 81 7F; we write the shortest form.
        if value.len() != 127 {
            prop_assert_eq!(tlv::ber_encode(&[tag], &value)?, theirs.clone());
        }
        prop_assert_eq!(tlv::ber_parse_all(&theirs)?, vec![(vec![tag], value.clone())]);
        let theirs = simple::Tlv::new(simple::Tag::try_from(tag).map_err(oops)?, value.clone())
            .map_err(oops)?
            .to_vec();
        prop_assert_eq!(tlv::simple_encode(tag, &value)?, theirs);
    }
}

#[test]
fn deeply_nested_ber_does_not_overflow() {
    // 200 000 levels of constructed A0 objects: the parser works one level at a time.
    let bytes: Vec<u8> = std::iter::repeat_n([0xA0_u8, 0x7F], 200_000)
        .flatten()
        .collect();
    assert!(tlv::ber_parse_all(&bytes).is_err());
}
