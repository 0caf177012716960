//! The backup store's data model and command set (host side, no I/O).
//!
//! A card running the backup-store applet (`applet-spec/backup-store.md`) keeps a device's
//! backup — service books, keys, user data, preferences — as named records in categories, behind
//! a pairing passcode and a reprovisioning passcode, committed atomically as numbered generations.
//! This module owns everything the host needs to drive it that is a pure function of its inputs:
//! - [`manifest`]: categories, record names, the manifest entry encoding, SHA-256 digests;
//! - [`diff`]: the incremental plan (send / delete / unchanged) and the record-by-record compare
//!   with the card's last backup;
//! - [`damage`]: which compared records are damage, by category (the policy `backup verify`
//!   ships);
//! - [`plan`]: how a record's bytes are cut into extended or chained APDUs;
//! - [`commands`]: INS / P1 / P2 / SW constants, one constructor per command, response parsers.
//!
//! It must not read files, talk to readers or keep time: the CLI walks the backup directory and
//! hashes files, the card-access layer sends the commands.

pub mod commands;
pub mod damage;
pub mod diff;
pub mod manifest;
pub mod plan;

use serde_json::Value;

use self::manifest::RecordId;

/// What is wrong with a backup-store value, encoding or request. Each variant names the problem;
/// none carries a free-form message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// A category code other than `0x01..=0x05`.
    #[error("unknown record category code 0x{0:02X}")]
    UnknownCategory(u8),
    /// A category folder name other than the five defined ones.
    #[error("unknown record category folder {0:?}")]
    UnknownCategoryName(String),
    /// A record name of zero bytes.
    #[error("record name is empty")]
    NameEmpty,
    /// A record name longer than 64 bytes.
    #[error("record name is {0} bytes long; at most 64 are allowed")]
    NameTooLong(usize),
    /// A record name that is not well-formed UTF-8.
    #[error("record name is not valid UTF-8")]
    NameNotUtf8,
    /// A record name containing `/`, `\`, NUL, a C0 control character or DEL.
    #[error("record name contains the forbidden character {0:?}")]
    NameForbiddenChar(char),
    /// A record name that is `.` or `..`.
    #[error("record name must not be \".\" or \"..\"")]
    NameReserved,
    /// Input ended inside a field.
    #[error("{what} truncated: {needed} bytes needed, {available} available")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// Bytes left over after a complete structure.
    #[error("{what}: {count} unexpected trailing bytes")]
    TrailingBytes {
        /// The structure parsed.
        what: &'static str,
        /// Bytes left over.
        count: usize,
    },
    /// The same (category, name) twice in one manifest or local tree.
    #[error("record {0} appears more than once")]
    DuplicateRecord(RecordId),
    /// A local record longer than a record length field (u32) can describe.
    #[error("record {id} is {length} bytes; the store's limit is 4294967295")]
    RecordTooLarge {
        /// The record.
        id: RecordId,
        /// Its local length.
        length: u64,
    },
    /// A passcode outside 4..=16 bytes.
    #[error("passcode is {0} bytes long; 4 to 16 are allowed")]
    PasscodeLength(usize),
    /// A GET STATUS response in a format version this host does not know.
    #[error("GET STATUS format version {0} is not supported (expected 1)")]
    StatusVersion(u8),
    /// Transport limits too small to drive the applet.
    #[error("transport limits too small: {0}")]
    InvalidTransport(&'static str),
    /// Record data shorter than a transfer plan needs.
    #[error("record data is {actual} bytes; the transfer plan needs {expected}")]
    DataLength {
        /// Bytes the plan needs.
        expected: u64,
        /// Bytes given.
        actual: u64,
    },
    /// An install parameter out of its range.
    #[error("install parameter {what} out of range: {value}")]
    InstallParam {
        /// The parameter.
        what: &'static str,
        /// Its value.
        value: u32,
    },
}

/// Serialises a command APDU (ISO 7816-4 §5.1): short form when Nc ≤ 255 and Ne ≤ 256,
/// extended form otherwise. Only the worked example needs bytes here; the card-access layer uses
/// the `apdu` module's own encoder.
fn apdu_bytes(c: &crate::apdu::Command) -> Vec<u8> {
    let mut out = vec![c.cla, c.ins, c.p1, c.p2];
    let nc = c.data.len();
    let short = nc <= 255 && c.le.is_none_or(|ne| ne <= 256);
    let be16 = |n: usize| u16::try_from(n % 65_536).unwrap_or(0).to_be_bytes();
    if short {
        if nc > 0 {
            out.push(u8::try_from(nc).unwrap_or(0));
            out.extend_from_slice(&c.data);
        }
        if let Some(ne) = c.le {
            out.push(u8::try_from(ne % 256).unwrap_or(0));
        }
    } else {
        out.push(0);
        if nc > 0 {
            out.extend_from_slice(&be16(nc));
            out.extend_from_slice(&c.data);
        }
        if let Some(ne) = c.le {
            out.extend_from_slice(&be16(usize::try_from(ne).unwrap_or(0)));
        }
    }
    out
}

/// The spec's worked example (`applet-spec/backup-store.md` §9) as data: a fresh card, passcodes
/// set, a two-record full backup, an incremental backup (one record deleted, one 300-byte record
/// added through a command chain) and a read-back, over short APDUs.
///
/// Commands come from the constructors in [`commands`]; responses are the ones the spec
/// prescribes, built with the same encoders. The result is meant to be written to
/// `applet-spec/vectors/backup-store.json` and replayed against the applet.
#[must_use]
pub fn worked_example() -> Value {
    worked_example::build()
}

mod worked_example;

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::*;
    use crate::apdu::Command;

    #[test]
    fn apdu_encoding_cases() {
        assert_eq!(
            apdu_bytes(&Command::new(0x80, 0x3C, 0, 0)),
            hex!("803C0000")
        );
        assert_eq!(
            apdu_bytes(&Command::new(0x80, 0x40, 0, 0).le(4)),
            hex!("8040000004")
        );
        assert_eq!(
            apdu_bytes(&Command::new(0x80, 0x34, 0, 0).le(256)),
            hex!("8034000000")
        );
        assert_eq!(
            apdu_bytes(&Command::new(0x80, 0x34, 0, 0).le(257)),
            hex!("80340000000101")
        );
        assert_eq!(
            apdu_bytes(&Command::new(0x80, 0x34, 0, 0).le(65_536)),
            hex!("80340000000000")
        );
        assert_eq!(
            apdu_bytes(&Command::new(0, 0x20, 0, 1).data(vec![0x31; 4])),
            hex!("002000010431313131")
        );
        let ext = apdu_bytes(&Command::new(0x80, 0x3A, 0, 0).data(vec![0; 256]).le(300));
        assert_eq!(&ext[..7], &hex!("803A0000000100"));
        assert_eq!(ext.len(), 7 + 256 + 2);
        assert_eq!(&ext[263..], &hex!("012C"));
    }

    fn squashed_spec() -> String {
        include_str!("../../../applet-spec/backup-store.md")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()
    }

    #[test]
    fn spec_tables_match_the_constants() {
        use commands::*;
        let spec = squashed_spec();
        let rows = [
            ("SELECT", "00", INS_SELECT),
            ("GETSTATUS", "80", INS_GET_STATUS),
            ("SETPASSCODE", "80", INS_SET_PASSCODE),
            ("VERIFY", "00", INS_VERIFY),
            ("CHANGEREFERENCEDATA", "00", INS_CHANGE_REFERENCE_DATA),
            ("GETMANIFEST", "80", INS_GET_MANIFEST),
            ("BEGINSESSION", "80", INS_BEGIN_SESSION),
            ("BEGINRECORD", "80", INS_BEGIN_RECORD),
            ("WRITEDATA", "80/90", INS_WRITE_DATA),
            ("ENDRECORD", "80", INS_END_RECORD),
            ("DELETERECORD", "80", INS_DELETE_RECORD),
            ("COMMIT", "80", INS_COMMIT),
            ("ABORT", "80", INS_ABORT),
            ("READDATA", "80", INS_READ_DATA),
            ("ERASE", "80", INS_ERASE),
            ("GETMANIFESTDIGEST", "80", INS_GET_MANIFEST_DIGEST),
            ("WRITERECORDS", "80", INS_WRITE_RECORDS),
        ];
        for (name, cla, ins) in rows {
            let row = format!("|{name}|{cla}|{ins:02X}|");
            assert!(spec.contains(&row), "spec §5.0 lacks {row}");
        }
        for (code, name, meaning) in STATUS_WORDS {
            let row = format!("|`{code:04X}`|{name}|{}", meaning.replace(' ', ""));
            assert!(spec.contains(&row), "spec §4.2 lacks {row}");
        }
        let aid: String = AID.iter().map(|b| format!("{b:02X}")).collect();
        assert!(spec.contains(&format!("|applet(moduleandinstance)|`{aid}`|")));
    }

    #[test]
    fn worked_example_builds_and_matches_the_spec() {
        let v = worked_example();
        assert!(v.get("error").is_none(), "{v}");
        let squashed = squashed_spec();
        let steps = v["steps"].as_array().unwrap();
        assert!(steps.len() > 20);
        for step in steps {
            for field in ["command", "response"] {
                let hex = step[field].as_str().unwrap();
                assert!(
                    squashed.contains(hex),
                    "spec §9 lacks step {} {field} {hex}",
                    step["step"]
                );
            }
        }
    }
}

#[cfg(test)]
mod dump {
    /// Writes the worked example where the lead can pick it up; run with `--ignored`.
    #[test]
    #[ignore = "writes a file; run by hand when the example changes"]
    fn dump_worked_example() {
        let v = super::worked_example();
        std::fs::write(
            "/tmp/backup-store.json",
            serde_json::to_string_pretty(&v).unwrap(),
        )
        .unwrap();
    }
}
