//! Hex text to bytes and back, for test vectors, key material on the command line and logs.
//!
//! This module owns the one hex syntax simkit accepts: upper- or lower-case digits, an optional
//! leading `0x`, and whitespace or `:` between bytes (never inside one). Errors say what was
//! wrong and where. It must not know what the bytes mean; callers name them (see
//! [`parse_hex_array`]).

use thiserror::Error;

/// What was wrong with a hex string. Positions count characters from 0 in the original string.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HexError {
    /// A character that is neither a hex digit nor a separator.
    #[error("not a hex digit {ch:?} at position {position}")]
    NotHexDigit {
        /// The offending character.
        ch: char,
        /// Its position (in characters).
        position: usize,
    },
    /// A separator between the two digits of one byte.
    #[error("separator {ch:?} at position {position} splits a byte")]
    SplitByte {
        /// The separator.
        ch: char,
        /// Its position (in characters).
        position: usize,
    },
    /// The digits do not pair up into bytes.
    #[error("odd number of hex digits ({digits})")]
    OddDigits {
        /// How many digits there were.
        digits: usize,
    },
    /// The bytes were fine but there were not as many as the caller needs.
    #[error("{what} must be {expected} bytes, got {got}")]
    WrongLength {
        /// What the bytes are, as named by the caller (e.g. "module id").
        what: &'static str,
        /// How many bytes it must have.
        expected: usize,
        /// How many the string held.
        got: usize,
    },
}

/// Parses hex text into bytes.
///
/// Accepts upper- and lower-case digits, an optional `0x`/`0X` prefix (after any leading
/// whitespace) and whitespace or `:` between bytes. An empty string (or a bare `0x`) is zero
/// bytes.
///
/// ```
/// # use simkit_core::hexutil::parse_hex;
/// assert_eq!(parse_hex("0x90 00")?, [0x90, 0x00]);
/// assert_eq!(parse_hex("a0:00:00:01:51")?, [0xA0, 0x00, 0x00, 0x01, 0x51]);
/// assert_eq!(parse_hex("9 000").unwrap_err().to_string(), "separator ' ' at position 1 splits a byte");
/// # Ok::<(), simkit_core::hexutil::HexError>(())
/// ```
///
/// # Errors
/// [`HexError::NotHexDigit`], [`HexError::SplitByte`] or [`HexError::OddDigits`].
pub fn parse_hex(s: &str) -> Result<Vec<u8>, HexError> {
    let mut chars = s.chars().enumerate().peekable();
    // Skip leading whitespace, then an optional 0x prefix.
    while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
    let mut lookahead = chars.clone();
    if matches!(lookahead.next(), Some((_, '0')))
        && matches!(lookahead.next(), Some((_, 'x' | 'X')))
    {
        chars = lookahead;
    }

    let mut out = Vec::with_capacity(s.len() / 2);
    let mut high: Option<u8> = None;
    let mut digits = 0_usize;
    for (position, ch) in chars {
        if ch.is_whitespace() || ch == ':' {
            if high.is_some() {
                return Err(HexError::SplitByte { ch, position });
            }
            continue;
        }
        let nibble = ch
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or(HexError::NotHexDigit { ch, position })?;
        digits += 1;
        match high.take() {
            None => high = Some(nibble),
            Some(h) => out.push(h << 4 | nibble),
        }
    }
    if high.is_some() {
        return Err(HexError::OddDigits { digits });
    }
    Ok(out)
}

/// Parses hex text into exactly `N` bytes; `what` names them in the error.
///
/// ```
/// # use simkit_core::hexutil::parse_hex_array;
/// let err = parse_hex_array::<8>("01020304050607", "module id").unwrap_err();
/// assert_eq!(err.to_string(), "module id must be 8 bytes, got 7");
/// ```
///
/// # Errors
/// Any error of [`parse_hex`], or [`HexError::WrongLength`].
pub fn parse_hex_array<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N], HexError> {
    let bytes = parse_hex(s)?;
    let got = bytes.len();
    <[u8; N]>::try_from(bytes).map_err(|_| HexError::WrongLength {
        what,
        expected: N,
        got,
    })
}

/// Upper-case hex without separators: `[0x90, 0x00]` → `"9000"`.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// Upper-case hex with a space between bytes: `[0x90, 0x00]` → `"90 00"`.
pub fn to_hex_spaced(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        push_hex_byte(&mut out, *b);
    }
    out
}

/// Appends the two upper-case hex digits of `b`.
fn push_hex_byte(out: &mut String, b: u8) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for nibble in [b >> 4, b & 0x0F] {
        out.push(char::from(DIGITS[usize::from(nibble)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    #[test]
    fn accepts_the_documented_syntax() {
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_hex("0x").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_hex("  \n ").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_hex("9000").unwrap(), hex!("9000"));
        assert_eq!(parse_hex("0x9000").unwrap(), hex!("9000"));
        assert_eq!(parse_hex("0X9000").unwrap(), hex!("9000"));
        assert_eq!(parse_hex("  0xab CD\tef\n01 ").unwrap(), hex!("ABCDEF01"));
        assert_eq!(parse_hex("a0:00:00:01:51").unwrap(), hex!("A000000151"));
        assert_eq!(parse_hex("00").unwrap(), hex!("00"));
        // A leading 00 is data, not a prefix.
        assert_eq!(parse_hex("0012").unwrap(), hex!("0012"));
    }

    #[test]
    fn errors_name_the_problem_and_position() {
        assert_eq!(
            parse_hex("1234567").unwrap_err().to_string(),
            "odd number of hex digits (7)"
        );
        assert_eq!(
            parse_hex("0011g2").unwrap_err().to_string(),
            "not a hex digit 'g' at position 4"
        );
        assert_eq!(
            parse_hex("0x0g").unwrap_err(),
            HexError::NotHexDigit {
                ch: 'g',
                position: 3
            }
        );
        assert_eq!(
            parse_hex("12 3 4").unwrap_err(),
            HexError::SplitByte {
                ch: ' ',
                position: 4
            }
        );
        assert_eq!(
            parse_hex("1:2").unwrap_err(),
            HexError::SplitByte {
                ch: ':',
                position: 1
            }
        );
        // A 0x in the middle is not a prefix.
        assert_eq!(
            parse_hex("12 0x34").unwrap_err(),
            HexError::NotHexDigit {
                ch: 'x',
                position: 4
            }
        );
        assert_eq!(
            parse_hex("ü1").unwrap_err(),
            HexError::NotHexDigit {
                ch: 'ü',
                position: 0
            }
        );
        assert_eq!(
            parse_hex("0").unwrap_err(),
            HexError::OddDigits { digits: 1 }
        );
    }

    #[test]
    fn arrays() {
        assert_eq!(
            parse_hex_array::<4>("DE AD BE EF", "key check value").unwrap(),
            hex!("DEADBEEF")
        );
        assert_eq!(
            parse_hex_array::<8>("01020304050607", "module id")
                .unwrap_err()
                .to_string(),
            "module id must be 8 bytes, got 7"
        );
        assert_eq!(
            parse_hex_array::<2>("zz", "x").unwrap_err(),
            HexError::NotHexDigit {
                ch: 'z',
                position: 0
            }
        );
    }

    #[test]
    fn printing() {
        assert_eq!(to_hex(&[]), "");
        assert_eq!(to_hex(&hex!("00A4040007")), "00A4040007");
        assert_eq!(to_hex_spaced(&[]), "");
        assert_eq!(to_hex_spaced(&hex!("0f")), "0F");
        assert_eq!(to_hex_spaced(&hex!("00A40400")), "00 A4 04 00");
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(parse_hex(&to_hex(&all)).unwrap(), all);
        assert_eq!(parse_hex(&to_hex_spaced(&all)).unwrap(), all);
    }
}
