//! BER-TLV and SIMPLE-TLV (ISO/IEC 7816-4 §5.2 and §5.3), as used in personalisation data.
//!
//! This module owns the byte layout of one level of TLV data objects: splitting a byte string
//! into `(tag, value)` pairs, encoding one pair, and finding a tag. It works one level at a
//! time: the value of a constructed BER-TLV object is returned as its raw bytes, and callers
//! descend by parsing that value again. It must not know what any tag means.
//!
//! Rules, the same for parsing and encoding:
//! - BER tags are 1 to 3 bytes with the usual continuation bits; a first byte of `00` or `FF`
//!   is not a tag (ISO 7816-4), so padding bytes between objects are rejected, not skipped.
//! - BER lengths are parsed in any definite form (`00`..=`7F`, or `81`..=`84` followed by 1 to 4
//!   bytes, non-minimal forms included) and encoded in the shortest form. Indefinite length
//!   (`80`) is not part of ISO 7816 and is rejected.
//! - SIMPLE-TLV tags are `01`..=`FE`; lengths are one byte `00`..=`FE` or `FF` and two bytes,
//!   so values hold at most 65535 bytes.
//! - Every byte of the input must belong to an object: trailing or truncated bytes are an
//!   error, never silently dropped.
//!
//! Why this does not call the `iso7816-tlv` crate (0.4.4), although it is a dependency: its
//! BER parser recurses into constructed objects without a depth limit (a few hundred kilobytes
//! of nested `A0 7F` abort the process with a stack overflow, which no `Result` can catch); its
//! encoder writes a 127-byte value's length as `81 7F` but counts it as one byte, so a
//! constructed object holding one gets a wrong length; its SIMPLE-TLV encoder writes a
//! 65536-byte value with length `FF 00 00`; `parse_all` stops silently at the first error; and
//! it does not give the raw value bytes of a constructed object. The tests use it as an oracle
//! where it is right.

use thiserror::Error;

use crate::hexutil::to_hex;

/// What was wrong with TLV data, or why a pair cannot be encoded. Offsets count bytes from the
/// start of the input (0 for the tag passed to an encoder).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TlvError {
    /// A BER tag that breaks the encoding rules.
    #[error("invalid BER tag {tag} at offset {offset}: {reason}")]
    InvalidBerTag {
        /// Where the tag starts.
        offset: usize,
        /// The tag bytes seen, in hex.
        tag: String,
        /// What rule it breaks.
        reason: &'static str,
    },
    /// A SIMPLE-TLV tag of `00` or `FF`.
    #[error("invalid SIMPLE-TLV tag {tag:02X} at offset {offset}: 00 and FF are not tags")]
    InvalidSimpleTag {
        /// Where the tag is.
        offset: usize,
        /// The tag byte.
        tag: u8,
    },
    /// The input ends inside a length field.
    #[error("length field at offset {offset} is truncated")]
    LengthTruncated {
        /// Where the length field starts.
        offset: usize,
    },
    /// A BER length field starting `80` (indefinite) or `85`..=`FF` (more than 4 bytes).
    #[error(
        "BER length field at offset {offset} starts {first:02X}: indefinite length (80) and lengths over 4 bytes are not supported"
    )]
    UnsupportedLength {
        /// Where the length field starts.
        offset: usize,
        /// Its first byte.
        first: u8,
    },
    /// The input ends before the value does.
    #[error("value at offset {offset} declares {declared} bytes but {available} remain")]
    ValueTruncated {
        /// Where the value starts.
        offset: usize,
        /// The length the length field declares.
        declared: usize,
        /// The bytes left in the input.
        available: usize,
    },
    /// A value too long to encode.
    #[error("{form} value of {len} bytes is too long: at most {max}")]
    ValueTooLong {
        /// "BER-TLV" or "SIMPLE-TLV".
        form: &'static str,
        /// The value length.
        len: usize,
        /// The most the form can carry.
        max: usize,
    },
}

/// Most value bytes a BER length field of at most 4 bytes can announce.
const MAX_BER_VALUE: usize = 0xFFFF_FFFF;
/// Most value bytes a SIMPLE-TLV length field can announce.
const MAX_SIMPLE_VALUE: usize = 0xFFFF;

/// One parsed BER-TLV object: `(tag bytes, value bytes)`.
pub type BerPair = (Vec<u8>, Vec<u8>);

/// One BER-TLV object as slices of the input: `(tag bytes, value bytes)`.
type BerObject<'a> = (&'a [u8], &'a [u8]);

/// Reads a BER tag at the start of `bytes`; `offset` is where `bytes` starts in the input.
/// Returns the tag and the rest.
fn read_ber_tag(bytes: &[u8], offset: usize) -> Result<(&[u8], &[u8]), TlvError> {
    let bad = |len: usize, reason| TlvError::InvalidBerTag {
        offset,
        tag: to_hex(bytes.get(..len).unwrap_or(bytes)),
        reason,
    };
    let Some(&first) = bytes.first() else {
        return Err(bad(0, "no bytes left for a tag"));
    };
    if first == 0x00 || first == 0xFF {
        return Err(bad(1, "a first byte of 00 or FF is not a tag"));
    }
    let mut len = 1;
    if first & 0x1F == 0x1F {
        loop {
            let Some(&b) = bytes.get(len) else {
                return Err(bad(len, "truncated: the last byte read has bit 8 set"));
            };
            len += 1;
            if len > 3 {
                return Err(bad(len, "longer than 3 bytes"));
            }
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    Ok(bytes.split_at(len))
}

/// Checks that `tag` is exactly one valid BER tag.
fn check_ber_tag(tag: &[u8]) -> Result<(), TlvError> {
    let (_, rest) = read_ber_tag(tag, 0)?;
    if rest.is_empty() {
        Ok(())
    } else {
        Err(TlvError::InvalidBerTag {
            offset: 0,
            tag: to_hex(tag),
            reason: "bytes after the end of the tag",
        })
    }
}

/// Reads a big-endian length of `n` bytes from the start of `bytes`.
fn read_be(bytes: &[u8], n: usize, offset: usize) -> Result<(usize, &[u8]), TlvError> {
    let (len_bytes, rest) = bytes
        .split_at_checked(n)
        .ok_or(TlvError::LengthTruncated { offset })?;
    let len = len_bytes
        .iter()
        .fold(0_usize, |acc, b| acc << 8 | usize::from(*b));
    Ok((len, rest))
}

/// Splits `len` bytes of value off `bytes`.
fn take_value(bytes: &[u8], len: usize, offset: usize) -> Result<(&[u8], &[u8]), TlvError> {
    bytes.split_at_checked(len).ok_or(TlvError::ValueTruncated {
        offset,
        declared: len,
        available: bytes.len(),
    })
}

/// Parses one level of BER-TLV objects, borrowing from the input.
fn ber_objects(bytes: &[u8]) -> Result<Vec<BerObject<'_>>, TlvError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let at = |r: &[u8]| bytes.len() - r.len();
        let (tag, after_tag) = read_ber_tag(rest, at(rest))?;
        let len_offset = at(after_tag);
        let Some((&first, after_first)) = after_tag.split_first() else {
            return Err(TlvError::LengthTruncated { offset: len_offset });
        };
        let (len, after_len) = match first {
            0x00..=0x7F => (usize::from(first), after_first),
            0x81..=0x84 => read_be(after_first, usize::from(first & 0x7F), len_offset)?,
            _ => {
                return Err(TlvError::UnsupportedLength {
                    offset: len_offset,
                    first,
                });
            }
        };
        let (value, after_value) = take_value(after_len, len, at(after_len))?;
        out.push((tag, value));
        rest = after_value;
    }
    Ok(out)
}

/// Encodes one BER-TLV object with the shortest length field.
///
/// ```
/// # use simkit_core::tlv::ber_encode;
/// assert_eq!(ber_encode(&[0x9F, 0x02], &[0x01, 0x00])?, [0x9F, 0x02, 0x02, 0x01, 0x00]);
/// assert_eq!(ber_encode(&[0x80], &[0xAA; 128])?[..3], [0x80, 0x81, 0x80]);
/// # Ok::<(), simkit_core::tlv::TlvError>(())
/// ```
///
/// # Errors
/// [`TlvError::InvalidBerTag`] unless `tag` is exactly one valid tag;
/// [`TlvError::ValueTooLong`] above 4 GiB − 1.
pub fn ber_encode(tag: &[u8], value: &[u8]) -> Result<Vec<u8>, TlvError> {
    check_ber_tag(tag)?;
    let len = value.len();
    let Ok(len32) = u32::try_from(len) else {
        return Err(TlvError::ValueTooLong {
            form: "BER-TLV",
            len,
            max: MAX_BER_VALUE,
        });
    };
    let mut out = Vec::with_capacity(tag.len() + 5 + len);
    out.extend_from_slice(tag);
    match u8::try_from(len32) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let be = len32.to_be_bytes();
            let significant = be.iter().skip_while(|&&b| b == 0).count();
            // 1..=4 significant bytes, so the 81..=84 form.
            out.push(0x80 | u8::try_from(significant).unwrap_or(4));
            out.extend_from_slice(be.get(be.len() - significant..).unwrap_or(&be));
        }
    }
    out.extend_from_slice(value);
    Ok(out)
}

/// Splits BER-TLV data into `(tag bytes, value bytes)` pairs, one level deep (a constructed
/// object's value is its raw content; parse it again to descend).
///
/// # Errors
/// Any [`TlvError`] except `ValueTooLong` and `InvalidSimpleTag`, for the first object that is
/// malformed or truncated.
pub fn ber_parse_all(bytes: &[u8]) -> Result<Vec<BerPair>, TlvError> {
    Ok(ber_objects(bytes)?
        .into_iter()
        .map(|(t, v)| (t.to_vec(), v.to_vec()))
        .collect())
}

/// The value of the first top-level BER-TLV object with tag `tag`, after checking that all of
/// `bytes` is well-formed. `None` if no object has that tag.
///
/// # Errors
/// As for [`ber_parse_all`].
pub fn ber_find<'a>(bytes: &'a [u8], tag: &[u8]) -> Result<Option<&'a [u8]>, TlvError> {
    Ok(ber_objects(bytes)?
        .into_iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v))
}

/// Whether a BER tag is constructed (bit 6 of its first byte), i.e. its value is BER-TLV
/// data in turn.
pub fn ber_is_constructed(tag: &[u8]) -> bool {
    tag.first().is_some_and(|b| b & 0x20 != 0)
}

/// Parses one level of SIMPLE-TLV objects, borrowing from the input.
fn simple_objects(bytes: &[u8]) -> Result<Vec<(u8, &[u8])>, TlvError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Some((&tag, after_tag)) = rest.split_first() {
        let at = |r: &[u8]| bytes.len() - r.len();
        if tag == 0x00 || tag == 0xFF {
            return Err(TlvError::InvalidSimpleTag {
                offset: at(rest),
                tag,
            });
        }
        let len_offset = at(after_tag);
        let (len, after_len) = match after_tag.split_first() {
            None => return Err(TlvError::LengthTruncated { offset: len_offset }),
            Some((0xFF, after_ff)) => read_be(after_ff, 2, len_offset)?,
            Some((&len, after_len)) => (usize::from(len), after_len),
        };
        let (value, after_value) = take_value(after_len, len, at(after_len))?;
        out.push((tag, value));
        rest = after_value;
    }
    Ok(out)
}

/// Encodes one SIMPLE-TLV object (one length byte below 255, else `FF` and two bytes).
///
/// # Errors
/// [`TlvError::InvalidSimpleTag`] for tag `00` or `FF`; [`TlvError::ValueTooLong`] above
/// 65535 bytes.
pub fn simple_encode(tag: u8, value: &[u8]) -> Result<Vec<u8>, TlvError> {
    if tag == 0x00 || tag == 0xFF {
        return Err(TlvError::InvalidSimpleTag { offset: 0, tag });
    }
    let len = value.len();
    let Ok(len16) = u16::try_from(len) else {
        return Err(TlvError::ValueTooLong {
            form: "SIMPLE-TLV",
            len,
            max: MAX_SIMPLE_VALUE,
        });
    };
    let mut out = Vec::with_capacity(4 + len);
    out.push(tag);
    match u8::try_from(len16) {
        Ok(short) if short != 0xFF => out.push(short),
        _ => {
            out.push(0xFF);
            out.extend_from_slice(&len16.to_be_bytes());
        }
    }
    out.extend_from_slice(value);
    Ok(out)
}

/// Splits SIMPLE-TLV data into `(tag, value)` pairs.
///
/// # Errors
/// [`TlvError::InvalidSimpleTag`], [`TlvError::LengthTruncated`] or
/// [`TlvError::ValueTruncated`] for the first malformed object.
pub fn simple_parse_all(bytes: &[u8]) -> Result<Vec<(u8, Vec<u8>)>, TlvError> {
    Ok(simple_objects(bytes)?
        .into_iter()
        .map(|(t, v)| (t, v.to_vec()))
        .collect())
}

/// The value of the first SIMPLE-TLV object with tag `tag`, after checking that all of
/// `bytes` is well-formed. `None` if no object has that tag.
///
/// # Errors
/// As for [`simple_parse_all`].
pub fn simple_find(bytes: &[u8], tag: u8) -> Result<Option<&[u8]>, TlvError> {
    Ok(simple_objects(bytes)?
        .into_iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    fn pair(t: &[u8], v: &[u8]) -> (Vec<u8>, Vec<u8>) {
        (t.to_vec(), v.to_vec())
    }

    #[test]
    fn ber_length_forms() {
        assert_eq!(ber_encode(&hex!("80"), &[]).unwrap(), hex!("80 00"));
        assert_eq!(ber_encode(&hex!("80"), &[7]).unwrap(), hex!("80 01 07"));
        for (len, header) in [
            (127, &hex!("80 7F")[..]),
            (128, &hex!("80 81 80")[..]),
            (255, &hex!("80 81 FF")[..]),
            (256, &hex!("80 82 0100")[..]),
            (65535, &hex!("80 82 FFFF")[..]),
            (65536, &hex!("80 83 010000")[..]),
        ] {
            let value = vec![0x5A; len];
            let bytes = ber_encode(&hex!("80"), &value).unwrap();
            assert_eq!(&bytes[..header.len()], header, "{len}");
            assert_eq!(bytes.len(), header.len() + len);
            assert_eq!(ber_parse_all(&bytes).unwrap(), [pair(&hex!("80"), &value)]);
        }
        // Non-minimal lengths are valid BER and parse.
        assert_eq!(
            ber_parse_all(&hex!("80 8101 AA 81 8400000001 BB")).unwrap(),
            [
                pair(&hex!("80"), &hex!("AA")),
                pair(&hex!("81"), &hex!("BB"))
            ]
        );
    }

    #[test]
    fn ber_tags() {
        let v = hex!("01");
        for tag in [
            &hex!("5A")[..],
            &hex!("9F02"),
            &hex!("5F20"),
            &hex!("DF8101"),
            &hex!("1F7F"),
        ] {
            let bytes = ber_encode(tag, &v).unwrap();
            assert_eq!(ber_parse_all(&bytes).unwrap(), [pair(tag, &v)]);
        }
        let bad: &[(&[u8], &str)] = &[
            (&[], "no bytes left for a tag"),
            (&hex!("00"), "a first byte of 00 or FF is not a tag"),
            (&hex!("FF01"), "a first byte of 00 or FF is not a tag"),
            (&hex!("9F"), "truncated: the last byte read has bit 8 set"),
            (&hex!("9F81"), "truncated: the last byte read has bit 8 set"),
            (&hex!("9F818101"), "longer than 3 bytes"),
            (&hex!("5A01"), "bytes after the end of the tag"),
            (&hex!("9F0201"), "bytes after the end of the tag"),
        ];
        for (tag, reason) in bad {
            match ber_encode(tag, &v) {
                Err(TlvError::InvalidBerTag { reason: r, .. }) => {
                    assert_eq!(r, *reason, "{tag:02X?}")
                }
                other => panic!("{tag:02X?}: {other:?}"),
            }
        }
        assert!(ber_is_constructed(&hex!("A5")));
        assert!(ber_is_constructed(&hex!("BF0C")));
        assert!(!ber_is_constructed(&hex!("9F02")));
        assert!(!ber_is_constructed(&[]));
    }

    #[test]
    fn ber_one_level_and_find() {
        // A5 { 88 01 02, 5F2D 02 656E } 9F 02 ...
        let data = hex!("6F 0C 84 02 A000 A5 06 88 01 02 5F2D 00 9F02 01 33");
        let objs = ber_parse_all(&data).unwrap();
        assert_eq!(
            objs,
            [
                pair(&hex!("6F"), &hex!("84 02 A000 A5 06 88 01 02 5F2D 00")),
                pair(&hex!("9F02"), &hex!("33")),
            ]
        );
        let fci = ber_find(&data, &hex!("6F")).unwrap().unwrap();
        let prop = ber_find(fci, &hex!("A5")).unwrap().unwrap();
        assert_eq!(ber_find(prop, &hex!("88")).unwrap(), Some(&hex!("02")[..]));
        assert_eq!(ber_find(prop, &hex!("5F2D")).unwrap(), Some(&[][..]));
        assert_eq!(ber_find(&data, &hex!("88")).unwrap(), None);
        assert_eq!(ber_parse_all(&[]).unwrap(), []);
        // find checks the whole input, not just up to the match.
        assert!(ber_find(&hex!("80 01 AA 81 05"), &hex!("80")).is_err());
    }

    #[test]
    fn ber_errors() {
        let cases: &[(&[u8], TlvError)] = &[
            (&hex!("80"), TlvError::LengthTruncated { offset: 1 }),
            (&hex!("80 82 01"), TlvError::LengthTruncated { offset: 1 }),
            (
                &hex!("80 80 00 00"),
                TlvError::UnsupportedLength {
                    offset: 1,
                    first: 0x80,
                },
            ),
            (
                &hex!("80 85 0000000001 AA"),
                TlvError::UnsupportedLength {
                    offset: 1,
                    first: 0x85,
                },
            ),
            (
                &hex!("80 05 A000"),
                TlvError::ValueTruncated {
                    offset: 2,
                    declared: 5,
                    available: 2,
                },
            ),
            (
                &hex!("80 84 FFFFFFFF 00"),
                TlvError::ValueTruncated {
                    offset: 6,
                    declared: 0xFFFF_FFFF,
                    available: 1,
                },
            ),
            // Trailing padding or garbage after valid objects.
            (
                &hex!("80 01 AA 00"),
                TlvError::InvalidBerTag {
                    offset: 3,
                    tag: "00".into(),
                    reason: "a first byte of 00 or FF is not a tag",
                },
            ),
            (
                &hex!("80 01 AA 9F"),
                TlvError::InvalidBerTag {
                    offset: 3,
                    tag: "9F".into(),
                    reason: "truncated: the last byte read has bit 8 set",
                },
            ),
        ];
        for (bytes, err) in cases {
            assert_eq!(&ber_parse_all(bytes).unwrap_err(), err, "{bytes:02X?}");
        }
        assert_eq!(
            TlvError::ValueTruncated {
                offset: 2,
                declared: 5,
                available: 2
            }
            .to_string(),
            "value at offset 2 declares 5 bytes but 2 remain"
        );
    }

    #[test]
    fn simple_tlv() {
        assert_eq!(simple_encode(0x84, &hex!("2C")).unwrap(), hex!("84 01 2C"));
        assert_eq!(simple_encode(0x01, &[]).unwrap(), hex!("01 00"));
        for (len, header) in [
            (254, &hex!("01 FE")[..]),
            (255, &hex!("01 FF 00FF")[..]),
            (65535, &hex!("01 FF FFFF")[..]),
        ] {
            let value = vec![0x11; len];
            let bytes = simple_encode(0x01, &value).unwrap();
            assert_eq!(&bytes[..header.len()], header);
            assert_eq!(simple_parse_all(&bytes).unwrap(), [(0x01, value)]);
        }
        assert_eq!(
            simple_encode(0x01, &vec![0; 65536]).unwrap_err(),
            TlvError::ValueTooLong {
                form: "SIMPLE-TLV",
                len: 65536,
                max: 65535
            }
        );
        assert_eq!(
            simple_encode(0xFF, &[]).unwrap_err(),
            TlvError::InvalidSimpleTag {
                offset: 0,
                tag: 0xFF
            }
        );
        let data = hex!("84 01 2C 97 00 84 01 24 9E 01 42");
        assert_eq!(
            simple_parse_all(&data).unwrap(),
            [
                (0x84, hex!("2C").to_vec()),
                (0x97, vec![]),
                (0x84, hex!("24").to_vec()),
                (0x9E, hex!("42").to_vec())
            ]
        );
        assert_eq!(simple_find(&data, 0x9E).unwrap(), Some(&hex!("42")[..]));
        assert_eq!(simple_find(&data, 0x84).unwrap(), Some(&hex!("2C")[..]));
        assert_eq!(simple_find(&data, 0x01).unwrap(), None);
        let cases: &[(&[u8], TlvError)] = &[
            (
                &hex!("84 01 2C 00"),
                TlvError::InvalidSimpleTag { offset: 3, tag: 0 },
            ),
            (&hex!("84"), TlvError::LengthTruncated { offset: 1 }),
            (&hex!("84 FF 01"), TlvError::LengthTruncated { offset: 1 }),
            (
                &hex!("84 03 2C"),
                TlvError::ValueTruncated {
                    offset: 2,
                    declared: 3,
                    available: 1,
                },
            ),
        ];
        for (bytes, err) in cases {
            assert_eq!(&simple_parse_all(bytes).unwrap_err(), err, "{bytes:02X?}");
        }
    }
}
