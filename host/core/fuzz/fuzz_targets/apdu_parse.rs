//! Fuzzes the APDU parsers and the chaining round trip.
//!
//! - Arbitrary bytes as a command: if they parse, re-serialising (auto and extended) and
//!   re-parsing gives the same command.
//! - Arbitrary bytes as a response: if they parse, re-serialising gives the same bytes.
//! - Build → chain split → reassemble gives the command back, and every piece survives its own
//!   encode/parse round trip.
//! - TLV and hex parsers must not panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use simkit_core::apdu::{ApduError, Command, LengthEncoding, Response, chain, reassemble};
use simkit_core::{hexutil, tlv};

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = Command::parse(data) {
        for enc in [LengthEncoding::Auto, LengthEncoding::Extended] {
            let bytes = cmd.to_bytes(enc).expect("a parsed command re-encodes");
            assert_eq!(Command::parse(&bytes), Ok(cmd.clone()), "{enc:?}");
        }
        assert_eq!(cmd.to_bytes(LengthEncoding::Short).is_ok(), !cmd.is_extended());
    }

    if let Ok(resp) = Response::parse(data) {
        let bytes = resp.to_bytes();
        assert_eq!(bytes, data);
        assert_eq!(Response::parse(&bytes), Ok(resp));
    }

    if let [cla, ins, p1, p2, max, le_hi, le_lo, rest @ ..] = data {
        let mut cmd = Command::new(cla & !0x10, *ins, *p1, *p2).data(rest.to_vec());
        cmd.le = match u16::from_be_bytes([*le_hi, *le_lo]) {
            0 => None,
            n => Some(u32::from(n)),
        };
        match chain(&cmd, usize::from(*max).max(1)) {
            Ok(pieces) => {
                for piece in &pieces {
                    let bytes = piece.to_bytes(LengthEncoding::Auto).expect("a piece encodes");
                    assert_eq!(Command::parse(&bytes).as_ref(), Ok(piece));
                }
                assert_eq!(reassemble(&pieces), Ok(cmd));
            }
            Err(ApduError::ClaNotChainable { .. }) => {}
            Err(e) => panic!("chain failed: {e}"),
        }
    }

    let _ = tlv::ber_parse_all(data);
    let _ = tlv::simple_parse_all(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hexutil::parse_hex(text);
    }
});
