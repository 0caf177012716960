//! Command APDUs: building, encoding with short or extended length fields, and parsing.
//!
//! This module owns the ISO/IEC 7816-4 §5.1 layout of a command APDU:
//!
//! | case | body after CLA INS P1 P2                      |
//! |------|-----------------------------------------------|
//! | 1    | (empty)                                       |
//! | 2S   | Le (1 byte, `00` = 256)                       |
//! | 2E   | `00` Le (2 bytes, `0000` = 65536)             |
//! | 3S   | Lc (1 byte, 1..=255) data                     |
//! | 3E   | `00` Lc (2 bytes, 1..=65535) data             |
//! | 4S   | Lc data Le (1 byte)                           |
//! | 4E   | `00` Lc (2 bytes) data Le (2 bytes)           |
//!
//! A [`Command`] holds the logical content (header, data, Ne); the length encoding is chosen
//! when serialising ([`LengthEncoding`]). It must not hold card state or do I/O.

use std::fmt;

use super::ApduError;
use crate::hexutil::to_hex_spaced;

/// Most data bytes a short Lc can announce.
pub const MAX_SHORT_DATA: usize = 255;
/// Most data bytes an extended Lc can announce.
pub const MAX_EXTENDED_DATA: usize = 65_535;
/// Largest Le a short Le byte can ask for (encoded as `00`).
pub const MAX_SHORT_LE: u32 = 256;
/// Largest Le an extended Le field can ask for (encoded as `00 00`).
pub const MAX_EXTENDED_LE: u32 = 65_536;

/// A command APDU: header, command data and the expected response length.
///
/// Build one with [`Command::new`] and the [`data`](Command::data) and [`le`](Command::le)
/// builders, then serialise with [`Command::to_bytes`]:
///
/// ```
/// # use simkit_core::apdu::{Command, LengthEncoding};
/// let select = Command::new(0x00, 0xA4, 0x04, 0x00).data([0xA0, 0x00, 0x00, 0x01, 0x51]).le(256);
/// assert_eq!(
///     select.to_bytes(LengthEncoding::Auto)?,
///     [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00]
/// );
/// # Ok::<(), simkit_core::apdu::ApduError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (Nc = its length); empty means no Lc field.
    pub data: Vec<u8>,
    /// Ne, the maximum number of response data bytes expected: `None` means no Le field;
    /// `Some(n)` must be 1..=65536 (256 is encoded as short `00`, 65536 as extended `00 00`).
    pub le: Option<u32>,
}

/// The ISO 7816-4 case of a command: which of Lc and Le are present, and in which form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Case {
    /// No data, no Le.
    Case1,
    /// No data, short Le.
    Case2Short,
    /// No data, extended Le.
    Case2Extended,
    /// Data with a short Lc, no Le.
    Case3Short,
    /// Data with an extended Lc, no Le.
    Case3Extended,
    /// Data and Le, both short.
    Case4Short,
    /// Data and Le, both extended.
    Case4Extended,
}

/// How to encode the length fields of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LengthEncoding {
    /// Short when the data is at most 255 bytes and Le at most 256, extended otherwise
    /// (ISO 7816-4 forbids mixing: both fields take the same form).
    #[default]
    Auto,
    /// Always short; an error if the command does not fit.
    Short,
    /// Always extended (a case 1 command has no length fields and is unaffected).
    Extended,
}

/// The Ne for a one-byte Le (or the SW2 of `61xx`/`6Cxx`): `00` means 256.
pub const fn le_from_short(byte: u8) -> u32 {
    if byte == 0 { 256 } else { byte as u32 }
}

/// The Ne for a two-byte extended Le: `00 00` means 65536.
const fn le_from_extended(hi: u8, lo: u8) -> u32 {
    match u16::from_be_bytes([hi, lo]) {
        0 => 65_536,
        n => n as u32,
    }
}

impl Command {
    /// A case 1 command with the given header; add data and Le with the builders.
    pub const fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Command {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
        }
    }

    /// Sets the command data (replacing any).
    #[must_use]
    pub fn data(mut self, data: impl Into<Vec<u8>>) -> Command {
        self.data = data.into();
        self
    }

    /// Sets Ne, the number of response bytes expected (1..=65536; checked when encoding).
    #[must_use]
    pub fn le(mut self, le: u32) -> Command {
        self.le = Some(le);
        self
    }

    /// A copy of this command with Ne replaced, e.g. to re-issue it after `6Cxx` with
    /// `le_from_short(sw2)`.
    #[must_use]
    pub fn with_le(&self, le: u32) -> Command {
        Command {
            le: Some(le),
            ..self.clone()
        }
    }

    /// The four header bytes CLA INS P1 P2.
    pub const fn header(&self) -> [u8; 4] {
        [self.cla, self.ins, self.p1, self.p2]
    }

    /// Whether the command needs extended length fields: data over 255 bytes or Le over 256.
    /// (A parsed command does not remember its encoding; this is what `Auto` would choose.)
    pub fn is_extended(&self) -> bool {
        self.data.len() > MAX_SHORT_DATA || self.le.is_some_and(|le| le > MAX_SHORT_LE)
    }

    /// The ISO 7816-4 case this command is encoded as with [`LengthEncoding::Auto`].
    pub fn case(&self) -> Case {
        let extended = self.is_extended();
        match (self.data.is_empty(), self.le.is_some(), extended) {
            (true, false, _) => Case::Case1,
            (true, true, false) => Case::Case2Short,
            (true, true, true) => Case::Case2Extended,
            (false, false, false) => Case::Case3Short,
            (false, false, true) => Case::Case3Extended,
            (false, true, false) => Case::Case4Short,
            (false, true, true) => Case::Case4Extended,
        }
    }

    /// Checks the lengths and decides whether the encoding is extended.
    fn resolve(&self, enc: LengthEncoding) -> Result<bool, ApduError> {
        let len = self.data.len();
        if len > MAX_EXTENDED_DATA {
            return Err(ApduError::DataTooLong { len });
        }
        match self.le {
            Some(le) if !(1..=MAX_EXTENDED_LE).contains(&le) => {
                return Err(ApduError::LeOutOfRange { le });
            }
            _ => {}
        }
        match enc {
            LengthEncoding::Auto => Ok(self.is_extended()),
            LengthEncoding::Extended => Ok(true),
            LengthEncoding::Short => {
                if len > MAX_SHORT_DATA {
                    return Err(ApduError::ShortDataTooLong { len });
                }
                match self.le {
                    Some(le) if le > MAX_SHORT_LE => Err(ApduError::ShortLeTooLarge { le }),
                    _ => Ok(false),
                }
            }
        }
    }

    /// The number of bytes [`to_bytes`](Command::to_bytes) would produce.
    ///
    /// # Errors
    /// As for [`to_bytes`](Command::to_bytes).
    pub fn encoded_len(&self, enc: LengthEncoding) -> Result<usize, ApduError> {
        let extended = self.resolve(enc)?;
        let lc_len = match (self.data.is_empty(), extended) {
            (true, _) => 0,
            (false, false) => 1,
            (false, true) => 3,
        };
        let le_len = match (self.le.is_some(), extended, self.data.is_empty()) {
            (false, _, _) => 0,
            (true, false, _) => 1,
            (true, true, true) => 3,
            (true, true, false) => 2,
        };
        Ok(4 + lc_len + self.data.len() + le_len)
    }

    /// Serialises the command.
    ///
    /// # Errors
    /// [`ApduError::DataTooLong`] or [`ApduError::LeOutOfRange`] for any encoding;
    /// [`ApduError::ShortDataTooLong`] or [`ApduError::ShortLeTooLarge`] when
    /// [`LengthEncoding::Short`] is forced and the command does not fit.
    pub fn to_bytes(&self, enc: LengthEncoding) -> Result<Vec<u8>, ApduError> {
        let mut out = Vec::with_capacity(self.encoded_len(enc)?);
        self.write_into(enc, &mut out)?;
        Ok(out)
    }

    /// Appends the serialised command to `out` (which is left untouched on error), to reuse a
    /// buffer on hot paths.
    ///
    /// # Errors
    /// As for [`to_bytes`](Command::to_bytes).
    pub fn write_into(&self, enc: LengthEncoding, out: &mut Vec<u8>) -> Result<(), ApduError> {
        let extended = self.resolve(enc)?;
        out.extend_from_slice(&self.header());
        if !self.data.is_empty() {
            if extended {
                let [_, _, hi, lo] = u32_len(self.data.len()).to_be_bytes();
                out.extend_from_slice(&[0x00, hi, lo]);
            } else {
                let [.., lc] = u32_len(self.data.len()).to_be_bytes();
                out.push(lc);
            }
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            // 256 (short) and 65536 (extended) wrap to all-zero bytes, as ISO 7816-4 wants.
            let [_, _, hi, lo] = le.to_be_bytes();
            if extended {
                if self.data.is_empty() {
                    out.push(0x00);
                }
                out.extend_from_slice(&[hi, lo]);
            } else {
                out.push(lo);
            }
        }
        Ok(())
    }

    /// Parses a command APDU, recognising the seven cases of ISO 7816-4 §5.1 exactly.
    ///
    /// After the header: no bytes is case 1; one byte is case 2S (the Le); a first byte `00`
    /// with two more is case 2E; a first byte `00` with more is an extended Lc (cases 3E/4E);
    /// any other first byte is a short Lc (cases 3S/4S). A short Lc of 0 and an extended Lc of
    /// 0 are rejected, and so is any byte count that matches no case.
    ///
    /// # Errors
    /// [`ApduError::CommandTooShort`], [`ApduError::ShortLcZero`],
    /// [`ApduError::ExtendedLcZero`], [`ApduError::ShortLcMismatch`] or
    /// [`ApduError::ExtendedLcMismatch`].
    pub fn parse(bytes: &[u8]) -> Result<Command, ApduError> {
        let Some(([cla, ins, p1, p2], body)) = bytes.split_first_chunk::<4>() else {
            return Err(ApduError::CommandTooShort { len: bytes.len() });
        };
        let mut cmd = Command::new(*cla, *ins, *p1, *p2);
        match body {
            // Case 1.
            [] => {}
            // Case 2S.
            [le] => cmd.le = Some(le_from_short(*le)),
            // Case 2E.
            [0x00, hi, lo] => cmd.le = Some(le_from_extended(*hi, *lo)),
            // `00 xx`: neither 2E nor a valid extended Lc; as a short Lc it is 0.
            [0x00, _] => return Err(ApduError::ShortLcZero),
            // Cases 3E and 4E.
            [0x00, hi, lo, rest @ ..] => {
                let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
                if lc == 0 {
                    return Err(ApduError::ExtendedLcZero);
                }
                let mismatch = ApduError::ExtendedLcMismatch {
                    lc,
                    follow: rest.len(),
                };
                let (data, le) = rest.split_at_checked(lc).ok_or(mismatch.clone())?;
                cmd.data = data.to_vec();
                match le {
                    [] => {}
                    [hi, lo] => cmd.le = Some(le_from_extended(*hi, *lo)),
                    _ => return Err(mismatch),
                }
            }
            // Cases 3S and 4S (the first byte is not 00 here).
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                let mismatch = ApduError::ShortLcMismatch {
                    lc,
                    follow: rest.len(),
                };
                let (data, le) = rest.split_at_checked(lc).ok_or(mismatch.clone())?;
                cmd.data = data.to_vec();
                match le {
                    [] => {}
                    [le] => cmd.le = Some(le_from_short(*le)),
                    _ => return Err(mismatch),
                }
            }
        }
        Ok(cmd)
    }
}

/// A length already checked to be at most 65535, as `u32` for byte splitting.
fn u32_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

impl fmt::Display for Command {
    /// Spaced upper-case hex of the header, then the data, then `Le=n` if there is one:
    /// `00 A4 04 00 A0 00 00 01 51 Le=256`. Length fields are not shown (they depend on the
    /// encoding).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex_spaced(&self.header()))?;
        if !self.data.is_empty() {
            write!(f, " {}", to_hex_spaced(&self.data))?;
        }
        if let Some(le) = self.le {
            write!(f, " Le={le}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    const AUTO: LengthEncoding = LengthEncoding::Auto;
    const SHORT: LengthEncoding = LengthEncoding::Short;
    const EXT: LengthEncoding = LengthEncoding::Extended;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    /// Checks the Auto encoding, the parse back and the case.
    fn pin(cmd: &Command, bytes: &[u8], case: Case) {
        assert_eq!(cmd.to_bytes(AUTO).unwrap(), bytes, "{cmd}");
        assert_eq!(cmd.encoded_len(AUTO).unwrap(), bytes.len());
        assert_eq!(&Command::parse(bytes).unwrap(), cmd);
        assert_eq!(cmd.case(), case);
        assert_eq!(
            cmd.is_extended(),
            matches!(
                case,
                Case::Case2Extended | Case::Case3Extended | Case::Case4Extended
            )
        );
    }

    fn concat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn case1() {
        let cmd = Command::new(0x00, 0xA4, 0x04, 0x00);
        pin(&cmd, &hex!("00A40400"), Case::Case1);
        assert_eq!(cmd.to_bytes(SHORT).unwrap(), hex!("00A40400"));
        assert_eq!(cmd.to_bytes(EXT).unwrap(), hex!("00A40400"));
    }

    #[test]
    fn case2_short() {
        let base = Command::new(0x80, 0xCA, 0x9F, 0x7F);
        pin(&base.clone().le(1), &hex!("80CA9F7F 01"), Case::Case2Short);
        pin(
            &base.clone().le(255),
            &hex!("80CA9F7F FF"),
            Case::Case2Short,
        );
        pin(
            &base.clone().le(256),
            &hex!("80CA9F7F 00"),
            Case::Case2Short,
        );
    }

    #[test]
    fn case2_extended() {
        let base = Command::new(0x80, 0xCA, 0x9F, 0x7F);
        pin(
            &base.clone().le(257),
            &hex!("80CA9F7F 00 0101"),
            Case::Case2Extended,
        );
        pin(
            &base.clone().le(65535),
            &hex!("80CA9F7F 00 FFFF"),
            Case::Case2Extended,
        );
        pin(
            &base.clone().le(65536),
            &hex!("80CA9F7F 00 0000"),
            Case::Case2Extended,
        );
        // Forced extended with a small Le.
        assert_eq!(
            base.clone().le(1).to_bytes(EXT).unwrap(),
            hex!("80CA9F7F 00 0001")
        );
        assert_eq!(
            base.clone().le(256).to_bytes(EXT).unwrap(),
            hex!("80CA9F7F 00 0100")
        );
        assert_eq!(
            Command::parse(&hex!("80CA9F7F 00 0100")).unwrap(),
            base.le(256)
        );
    }

    #[test]
    fn case3_short() {
        let base = Command::new(0x00, 0xDA, 0x01, 0x02);
        pin(
            &base.clone().data([0x42]),
            &hex!("00DA0102 01 42"),
            Case::Case3Short,
        );
        let d = data(255);
        pin(
            &base.clone().data(d.clone()),
            &concat(&[&hex!("00DA0102 FF"), &d]),
            Case::Case3Short,
        );
    }

    #[test]
    fn case3_extended() {
        let base = Command::new(0x00, 0xDA, 0x01, 0x02);
        let d = data(256);
        pin(
            &base.clone().data(d.clone()),
            &concat(&[&hex!("00DA0102 000100"), &d]),
            Case::Case3Extended,
        );
        let d = data(65535);
        pin(
            &base.clone().data(d.clone()),
            &concat(&[&hex!("00DA0102 00FFFF"), &d]),
            Case::Case3Extended,
        );
        // Forced extended with one byte of data.
        let cmd = base.data([0x42]);
        assert_eq!(cmd.to_bytes(EXT).unwrap(), hex!("00DA0102 000001 42"));
        assert_eq!(Command::parse(&hex!("00DA0102 000001 42")).unwrap(), cmd);
    }

    #[test]
    fn case4_short() {
        let base = Command::new(0x00, 0xA4, 0x04, 0x00);
        pin(
            &base.clone().data(hex!("A000000151")).le(256),
            &hex!("00A40400 05 A000000151 00"),
            Case::Case4Short,
        );
        pin(
            &base.clone().data([0x01]).le(1),
            &hex!("00A40400 01 01 01"),
            Case::Case4Short,
        );
        let d = data(255);
        pin(
            &base.data(d.clone()).le(255),
            &concat(&[&hex!("00A40400 FF"), &d, &hex!("FF")]),
            Case::Case4Short,
        );
    }

    #[test]
    fn case4_extended() {
        let base = Command::new(0x00, 0x2A, 0x80, 0x86);
        let d = data(256);
        pin(
            &base.clone().data(d.clone()).le(256),
            &concat(&[&hex!("002A8086 000100"), &d, &hex!("0100")]),
            Case::Case4Extended,
        );
        let d = data(65535);
        pin(
            &base.clone().data(d.clone()).le(65536),
            &concat(&[&hex!("002A8086 00FFFF"), &d, &hex!("0000")]),
            Case::Case4Extended,
        );
        // Mixed: data fits short but Le does not, so both fields are extended.
        pin(
            &base.clone().data(hex!("0102")).le(257),
            &hex!("002A8086 000002 0102 0101"),
            Case::Case4Extended,
        );
        // Mixed the other way: Le fits short but data does not.
        let d = data(300);
        pin(
            &base.clone().data(d.clone()).le(1),
            &concat(&[&hex!("002A8086 00012C"), &d, &hex!("0001")]),
            Case::Case4Extended,
        );
        // Forced extended on a small case 4.
        let cmd = base.data([0x42]).le(256);
        assert_eq!(cmd.to_bytes(EXT).unwrap(), hex!("002A8086 000001 42 0100"));
        assert_eq!(
            Command::parse(&hex!("002A8086 000001 42 0100")).unwrap(),
            cmd
        );
    }

    #[test]
    fn short_forced_errors() {
        let base = Command::new(0x00, 0xD6, 0x00, 0x00);
        assert_eq!(
            base.clone().data(data(256)).to_bytes(SHORT).unwrap_err(),
            ApduError::ShortDataTooLong { len: 256 }
        );
        assert_eq!(
            base.clone().le(257).to_bytes(SHORT).unwrap_err(),
            ApduError::ShortLeTooLarge { le: 257 }
        );
        assert_eq!(
            base.clone()
                .data([1])
                .le(65536)
                .to_bytes(SHORT)
                .unwrap_err(),
            ApduError::ShortLeTooLarge { le: 65536 }
        );
        assert_eq!(
            base.clone()
                .data(data(255))
                .le(256)
                .to_bytes(SHORT)
                .unwrap()
                .len(),
            4 + 1 + 255 + 1
        );
        assert_eq!(
            ApduError::ShortLeTooLarge { le: 257 }.to_string(),
            "short length encoding cannot carry Le 257 (at most 256)"
        );
    }

    #[test]
    fn unencodable_commands() {
        let base = Command::new(0x00, 0xD6, 0x00, 0x00);
        for enc in [AUTO, SHORT, EXT] {
            assert_eq!(
                base.clone().data(data(65536)).to_bytes(enc).unwrap_err(),
                ApduError::DataTooLong { len: 65536 }
            );
            assert_eq!(
                base.clone().le(0).to_bytes(enc).unwrap_err(),
                ApduError::LeOutOfRange { le: 0 }
            );
            assert_eq!(
                base.clone().le(65537).to_bytes(enc).unwrap_err(),
                ApduError::LeOutOfRange { le: 65537 }
            );
        }
        // write_into leaves the buffer alone on error.
        let mut out = vec![0xEE];
        assert!(base.le(0).write_into(AUTO, &mut out).is_err());
        assert_eq!(out, [0xEE]);
    }

    #[test]
    fn write_into_appends() {
        let mut out = hex!("AABB").to_vec();
        Command::new(0x00, 0xB0, 0x00, 0x00)
            .le(16)
            .write_into(AUTO, &mut out)
            .unwrap();
        assert_eq!(out, hex!("AABB 00B00000 10"));
    }

    #[test]
    fn parse_errors() {
        let cases: &[(&[u8], ApduError)] = &[
            (&[], ApduError::CommandTooShort { len: 0 }),
            (&hex!("00A404"), ApduError::CommandTooShort { len: 3 }),
            // Short Lc of 0, with or without more bytes that do not make a case 2E.
            (&hex!("00A40400 00 01"), ApduError::ShortLcZero),
            // Extended Lc of 0.
            (&hex!("00A40400 000000 01"), ApduError::ExtendedLcZero),
            (&hex!("00A40400 000000 0100"), ApduError::ExtendedLcZero),
            // Short Lc, truncated data.
            (
                &hex!("00A40400 05 A00000"),
                ApduError::ShortLcMismatch { lc: 5, follow: 3 },
            ),
            (
                &hex!("00A40400 02 A0"),
                ApduError::ShortLcMismatch { lc: 2, follow: 1 },
            ),
            // Short Lc, data then more than one Le byte.
            (
                &hex!("00A40400 01 A0 0000"),
                ApduError::ShortLcMismatch { lc: 1, follow: 3 },
            ),
            // Extended Lc, truncated data.
            (
                &hex!("00A40400 000005 A00000"),
                ApduError::ExtendedLcMismatch { lc: 5, follow: 3 },
            ),
            // Extended Lc, data then one Le byte (short Le after extended Lc).
            (
                &hex!("00A40400 000001 A0 00"),
                ApduError::ExtendedLcMismatch { lc: 1, follow: 2 },
            ),
            // Extended Lc, data then three bytes.
            (
                &hex!("00A40400 000001 A0 000000"),
                ApduError::ExtendedLcMismatch { lc: 1, follow: 4 },
            ),
        ];
        for (bytes, err) in cases {
            assert_eq!(&Command::parse(bytes).unwrap_err(), err, "{bytes:02X?}");
        }
        assert_eq!(
            ApduError::ShortLcMismatch { lc: 5, follow: 3 }.to_string(),
            "Lc says 5 data bytes but 3 follow (expected 5, or 6 with a short Le)"
        );
        assert_eq!(
            ApduError::CommandTooShort { len: 3 }.to_string(),
            "command APDU too short: 3 bytes, a header needs 4"
        );
    }

    #[test]
    fn ambiguous_lengths() {
        // 5 bytes: case 2S, even when the fifth byte is 00.
        assert_eq!(Command::parse(&hex!("00B00000 00")).unwrap().le, Some(256));
        // 7 bytes starting 00 after the header: case 2E, not a short Lc of 0.
        let cmd = Command::parse(&hex!("00B00000 00 0203")).unwrap();
        assert_eq!((cmd.data.len(), cmd.le), (0, Some(0x0203)));
        // 7 bytes not starting 00: case 3S with two data bytes or 4S with one.
        let cmd = Command::parse(&hex!("00B00000 02 0203")).unwrap();
        assert_eq!((cmd.data, cmd.le), (hex!("0203").to_vec(), None));
        let cmd = Command::parse(&hex!("00B00000 01 02 03")).unwrap();
        assert_eq!((cmd.data, cmd.le), (hex!("02").to_vec(), Some(3)));
        // Case 3S whose single data byte is 00.
        let cmd = Command::parse(&hex!("00B00000 01 00")).unwrap();
        assert_eq!((cmd.data, cmd.le), (hex!("00").to_vec(), None));
        // Case 4S with Le 00 = 256.
        let cmd = Command::parse(&hex!("00B00000 01 00 00")).unwrap();
        assert_eq!((cmd.data, cmd.le), (hex!("00").to_vec(), Some(256)));
    }

    #[test]
    fn builders_and_display() {
        let cmd = Command::new(0x00, 0xA4, 0x04, 0x00)
            .data(hex!("A000000151"))
            .le(256);
        assert_eq!(cmd.to_string(), "00 A4 04 00 A0 00 00 01 51 Le=256");
        assert_eq!(Command::new(0x80, 0x50, 0, 0).to_string(), "80 50 00 00");
        let again = cmd.with_le(le_from_short(0x10));
        assert_eq!(again.le, Some(16));
        assert_eq!(again.data, cmd.data);
        assert_eq!(le_from_short(0), 256);
        assert_eq!(cmd.header(), hex!("00A40400"));
    }
}
