//! Command chaining (ISO/IEC 7816-4 §5.1.1.1) and the follow-up commands of `61xx`.
//!
//! This module owns how one logical command too long for a single APDU becomes a chain: the
//! data is cut into pieces, every command but the last has the chaining bit (b5, `10`) set in
//! CLA, and only the last carries Le. [`reassemble`] is the exact inverse. It must not send
//! anything or decide when to chain; the caller picks the piece size (255 for short APDUs).
//!
//! CLA codings accepted for chaining: the first interindustry range `00`..=`0F`, the further
//! interindustry range `40`..=`7F`, and the proprietary range `80`..=`FE` (GlobalPlatform uses
//! b5 for chaining there too), in each case only without the chaining bit already set.
//! `20`..=`3F` (RFU) and `FF` (invalid) are rejected.

use super::ApduError;
use super::command::{Command, MAX_EXTENDED_DATA, le_from_short};

/// The chaining bit of CLA (b5): set on every command of a chain but the last.
pub const CHAINING_BIT: u8 = 0x10;

/// INS of GET RESPONSE.
const INS_GET_RESPONSE: u8 = 0xC0;

/// Checks that `cla` can carry the chaining bit and does not have it yet.
fn check_chainable(cla: u8) -> Result<(), ApduError> {
    if cla == 0xFF || (0x20..=0x3F).contains(&cla) {
        return Err(ApduError::ClaNotChainable { cla });
    }
    if cla & CHAINING_BIT != 0 {
        return Err(ApduError::ClaAlreadyChained { cla });
    }
    Ok(())
}

/// Splits `cmd` into a chain of commands with at most `max_data` data bytes each.
///
/// A command whose data fits (including one without data) comes back unchanged as a chain of
/// one. Otherwise every piece but the last is full, has the chaining bit set and no Le; the
/// last has the original CLA and Le. The data of `cmd` may exceed 65535 bytes (that is what
/// chaining is for), but `max_data` may not.
///
/// ```
/// # use simkit_core::apdu::{Command, chain, reassemble};
/// let cmd = Command::new(0x80, 0xE8, 0x00, 0x00).data(vec![0xAB; 600]).le(256);
/// let pieces = chain(&cmd, 255)?;
/// assert_eq!(pieces.iter().map(|c| (c.cla, c.data.len(), c.le)).collect::<Vec<_>>(),
///            [(0x90, 255, None), (0x90, 255, None), (0x80, 90, Some(256))]);
/// assert_eq!(reassemble(&pieces)?, cmd);
/// # Ok::<(), simkit_core::apdu::ApduError>(())
/// ```
///
/// # Errors
/// [`ApduError::ChainPieceSize`] unless `max_data` is 1..=65535;
/// [`ApduError::ClaNotChainable`] or [`ApduError::ClaAlreadyChained`] for an unsuitable CLA
/// (checked even when no split is needed).
pub fn chain(cmd: &Command, max_data: usize) -> Result<Vec<Command>, ApduError> {
    if !(1..=MAX_EXTENDED_DATA).contains(&max_data) {
        return Err(ApduError::ChainPieceSize { max: max_data });
    }
    check_chainable(cmd.cla)?;
    if cmd.data.len() <= max_data {
        return Ok(vec![cmd.clone()]);
    }
    let mut pieces: Vec<Command> = cmd
        .data
        .chunks(max_data)
        .map(|piece| Command {
            cla: cmd.cla | CHAINING_BIT,
            ins: cmd.ins,
            p1: cmd.p1,
            p2: cmd.p2,
            data: piece.to_vec(),
            le: None,
        })
        .collect();
    if let Some(last) = pieces.last_mut() {
        last.cla = cmd.cla;
        last.le = cmd.le;
    }
    Ok(pieces)
}

/// Joins a chain made by [`chain`] back into one command.
///
/// Every command but the last must have the chaining bit and no Le; the last must not have
/// the chaining bit; all must share CLA (apart from the chaining bit), INS, P1 and P2.
///
/// # Errors
/// [`ApduError::EmptyChain`], [`ApduError::ChainBitMissing`],
/// [`ApduError::ChainNotTerminated`], [`ApduError::ChainHeaderMismatch`] or
/// [`ApduError::ChainLeNotLast`].
pub fn reassemble(cmds: &[Command]) -> Result<Command, ApduError> {
    let Some((last, init)) = cmds.split_last() else {
        return Err(ApduError::EmptyChain);
    };
    if last.cla & CHAINING_BIT != 0 {
        return Err(ApduError::ChainNotTerminated { cla: last.cla });
    }
    let unchained = |c: &Command| {
        let [cla, ins, p1, p2] = c.header();
        [cla & !CHAINING_BIT, ins, p1, p2]
    };
    let count = cmds.len();
    let mut data = Vec::with_capacity(cmds.iter().map(|c| c.data.len()).sum());
    for (index, c) in init.iter().enumerate() {
        if c.cla & CHAINING_BIT == 0 {
            return Err(ApduError::ChainBitMissing { index, count });
        }
        if let Some(le) = c.le {
            return Err(ApduError::ChainLeNotLast { index, le });
        }
        data.extend_from_slice(&c.data);
    }
    let first = unchained(init.first().unwrap_or(last));
    for (index, c) in cmds.iter().enumerate() {
        let found = unchained(c);
        if found != first {
            return Err(ApduError::ChainHeaderMismatch {
                index,
                expected: first,
                found,
            });
        }
    }
    data.extend_from_slice(&last.data);
    Ok(Command {
        data,
        ..last.clone()
    })
}

/// GET RESPONSE (INS `C0`), to fetch the rest after `61xx`: pass SW2 as `le` (`00` asks for
/// 256 bytes). The caller chooses the CLA (normally the original command's, without the
/// chaining bit).
pub fn get_response(cla: u8, le: u8) -> Command {
    Command::new(cla, INS_GET_RESPONSE, 0x00, 0x00).le(le_from_short(le))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apdu::LengthEncoding;
    use hex_literal::hex;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 253) as u8).collect()
    }

    fn shape(pieces: &[Command]) -> Vec<(u8, usize, Option<u32>)> {
        pieces.iter().map(|c| (c.cla, c.data.len(), c.le)).collect()
    }

    #[test]
    fn exact_multiple() {
        let cmd = Command::new(0x00, 0xDA, 0x01, 0x02).data(data(510)).le(16);
        let pieces = chain(&cmd, 255).unwrap();
        assert_eq!(shape(&pieces), [(0x10, 255, None), (0x00, 255, Some(16))]);
        assert_eq!(pieces[0].data, data(510)[..255]);
        assert_eq!(pieces[1].data, data(510)[255..]);
        assert!(pieces.iter().all(|c| c.header()[1..] == hex!("DA0102")));
        assert_eq!(reassemble(&pieces).unwrap(), cmd);
    }

    #[test]
    fn with_remainder() {
        let cmd = Command::new(0x84, 0xE8, 0x00, 0x00).data(data(11));
        let pieces = chain(&cmd, 4).unwrap();
        assert_eq!(
            shape(&pieces),
            [(0x94, 4, None), (0x94, 4, None), (0x84, 3, None)]
        );
        assert_eq!(reassemble(&pieces).unwrap(), cmd);
        // Every piece is a short APDU on the wire.
        assert_eq!(
            pieces[0].to_bytes(LengthEncoding::Short).unwrap(),
            hex!("94E80000 04 00010203")
        );
    }

    #[test]
    fn no_split_needed() {
        for cmd in [
            Command::new(0x00, 0xCA, 0x00, 0x00).le(256),
            Command::new(0x00, 0xCA, 0x00, 0x00),
            Command::new(0x80, 0xDA, 0x00, 0x00).data(data(255)).le(1),
        ] {
            let pieces = chain(&cmd, 255).unwrap();
            assert_eq!(pieces, std::slice::from_ref(&cmd));
            assert_eq!(reassemble(&pieces).unwrap(), cmd);
        }
        // One more byte than fits: two pieces, the second with one byte.
        let cmd = Command::new(0x00, 0xDA, 0x00, 0x00).data(data(256));
        assert_eq!(
            shape(&chain(&cmd, 255).unwrap()),
            [(0x10, 255, None), (0x00, 1, None)]
        );
        // Chains longer than an extended Lc are fine.
        let cmd = Command::new(0x00, 0xDA, 0x00, 0x00).data(data(70_000));
        let pieces = chain(&cmd, 65535).unwrap();
        assert_eq!(shape(&pieces), [(0x10, 65535, None), (0x00, 4465, None)]);
        assert_eq!(reassemble(&pieces).unwrap(), cmd);
    }

    #[test]
    fn cla_bits() {
        let cmd = |cla| Command::new(cla, 0xDA, 0, 0).data(data(3));
        for cla in [
            0x00, 0x03, 0x0F, 0x40, 0x4F, 0x60, 0x6F, 0x80, 0x84, 0xE0, 0xEF,
        ] {
            let pieces = chain(&cmd(cla), 1).unwrap();
            assert_eq!(
                shape(&pieces),
                [(cla | 0x10, 1, None), (cla | 0x10, 1, None), (cla, 1, None)]
            );
            // Logical channel and secure-messaging bits are kept.
            assert!(pieces.iter().all(|c| c.cla & !CHAINING_BIT == cla));
        }
        for cla in [0x10, 0x1F, 0x50, 0x90, 0xF0, 0xFE] {
            assert_eq!(
                chain(&cmd(cla), 1).unwrap_err(),
                ApduError::ClaAlreadyChained { cla }
            );
        }
        for cla in [0x20, 0x2F, 0x30, 0x3F, 0xFF] {
            assert_eq!(
                chain(&cmd(cla), 1).unwrap_err(),
                ApduError::ClaNotChainable { cla }
            );
        }
        // Checked even without a split.
        assert_eq!(
            chain(&Command::new(0x10, 0xCA, 0, 0), 255).unwrap_err(),
            ApduError::ClaAlreadyChained { cla: 0x10 }
        );
    }

    #[test]
    fn piece_size_bounds() {
        let cmd = Command::new(0x00, 0xDA, 0, 0).data(data(3));
        assert_eq!(
            chain(&cmd, 0).unwrap_err(),
            ApduError::ChainPieceSize { max: 0 }
        );
        assert_eq!(
            chain(&cmd, 65536).unwrap_err(),
            ApduError::ChainPieceSize { max: 65536 }
        );
        assert_eq!(chain(&cmd, 65535).unwrap(), [cmd]);
    }

    #[test]
    fn reassemble_errors() {
        let c = |cla, ins, data: &[u8], le: Option<u32>| Command {
            cla,
            ins,
            p1: 0,
            p2: 0,
            data: data.to_vec(),
            le,
        };
        assert_eq!(reassemble(&[]).unwrap_err(), ApduError::EmptyChain);
        assert_eq!(
            reassemble(&[c(0x10, 0xDA, &[1], None)]).unwrap_err(),
            ApduError::ChainNotTerminated { cla: 0x10 }
        );
        assert_eq!(
            reassemble(&[
                c(0x10, 0xDA, &[1], None),
                c(0x00, 0xDA, &[2], None),
                c(0x00, 0xDA, &[3], None)
            ])
            .unwrap_err(),
            ApduError::ChainBitMissing { index: 1, count: 3 }
        );
        assert_eq!(
            reassemble(&[c(0x10, 0xDA, &[1], Some(5)), c(0x00, 0xDA, &[2], None)]).unwrap_err(),
            ApduError::ChainLeNotLast { index: 0, le: 5 }
        );
        assert_eq!(
            reassemble(&[c(0x10, 0xDA, &[1], None), c(0x00, 0xDB, &[2], None)]).unwrap_err(),
            ApduError::ChainHeaderMismatch {
                index: 1,
                expected: hex!("00DA0000"),
                found: hex!("00DB0000"),
            }
        );
        assert_eq!(
            reassemble(&[c(0x11, 0xDA, &[1], None), c(0x00, 0xDA, &[2], None)]).unwrap_err(),
            ApduError::ChainHeaderMismatch {
                index: 1,
                expected: hex!("01DA0000"),
                found: hex!("00DA0000"),
            }
        );
    }

    #[test]
    fn get_response_and_reissue() {
        assert_eq!(
            get_response(0x00, 0x10)
                .to_bytes(LengthEncoding::Auto)
                .unwrap(),
            hex!("00C00000 10")
        );
        assert_eq!(
            get_response(0x80, 0x00)
                .to_bytes(LengthEncoding::Auto)
                .unwrap(),
            hex!("80C00000 00")
        );
        assert_eq!(get_response(0x80, 0x00).le, Some(256));
        let cmd = Command::new(0x00, 0xB0, 0, 0).le(256);
        assert_eq!(
            cmd.with_le(le_from_short(0x20))
                .to_bytes(LengthEncoding::Auto)
                .unwrap(),
            hex!("00B00000 20")
        );
    }
}
