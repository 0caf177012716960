//! The backup-store applet's command set: constants, one constructor per command, and parsers
//! for the responses that carry data.
//!
//! Every value here is defined in `applet-spec/backup-store.md` (cited per item as §n); the spec
//! is normative and this module follows it. Constructors only build [`Command`]s: sending them,
//! checking status words and handling retries belong to the card-access layer.
//!
//! Passcodes passed to the constructors end up in the returned `Command`'s data, which is a plain
//! `Vec<u8>`: callers holding passcodes should drop the command as soon as it is sent.

use std::fmt;

use super::BackupError;
use super::manifest::{ManifestEntry, RecordDigest, RecordId, take_array};
use super::plan::{OFFSET_LEN, ReadChunk, WriteChunk, WriteFraming};
use crate::apdu::Command;

// ---------------------------------------------------------------------------------------------
// Identifiers, classes, instructions (spec §2, §5.1)
// ---------------------------------------------------------------------------------------------

/// Applet (instance) AID: proprietary `F0`, ASCII `SIMKIT`, `02 01` (spec §2).
pub const AID: [u8; 9] = [0xF0, 0x53, 0x49, 0x4D, 0x4B, 0x49, 0x54, 0x02, 0x01];
/// Package (load file) AID (spec §2).
pub const PACKAGE_AID: [u8; 8] = [0xF0, 0x53, 0x49, 0x4D, 0x4B, 0x49, 0x54, 0x02];

/// CLA of the ISO commands (SELECT, VERIFY, CHANGE REFERENCE DATA).
pub const CLA_ISO: u8 = 0x00;
/// CLA of the proprietary commands.
pub const CLA_PROPRIETARY: u8 = 0x80;
/// CLA bit that marks "more segments of this command chain follow" (ISO 7816-4 §5.1.1.1).
pub const CLA_CHAINING: u8 = 0x10;

/// SELECT (by DF name).
pub const INS_SELECT: u8 = 0xA4;
/// VERIFY (spec §5.4).
pub const INS_VERIFY: u8 = 0x20;
/// CHANGE REFERENCE DATA (spec §5.5).
pub const INS_CHANGE_REFERENCE_DATA: u8 = 0x24;
/// GET STATUS (spec §5.2).
pub const INS_GET_STATUS: u8 = 0x30;
/// SET PASSCODE (spec §5.3).
pub const INS_SET_PASSCODE: u8 = 0x32;
/// GET MANIFEST (spec §5.6).
pub const INS_GET_MANIFEST: u8 = 0x34;
/// BEGIN SESSION (spec §5.7).
pub const INS_BEGIN_SESSION: u8 = 0x36;
/// BEGIN RECORD (spec §5.8).
pub const INS_BEGIN_RECORD: u8 = 0x38;
/// WRITE DATA (spec §5.9).
pub const INS_WRITE_DATA: u8 = 0x3A;
/// END RECORD (spec §5.10).
pub const INS_END_RECORD: u8 = 0x3C;
/// DELETE RECORD (spec §5.11).
pub const INS_DELETE_RECORD: u8 = 0x3E;
/// COMMIT (spec §5.12).
pub const INS_COMMIT: u8 = 0x40;
/// ABORT (spec §5.13).
pub const INS_ABORT: u8 = 0x42;
/// READ DATA (spec §5.14).
pub const INS_READ_DATA: u8 = 0x44;
/// ERASE (spec §5.15).
pub const INS_ERASE: u8 = 0x46;
/// GET MANIFEST DIGEST (spec §5.16).
pub const INS_GET_MANIFEST_DIGEST: u8 = 0x48;
/// WRITE RECORDS (spec §5.17, version `02`).
pub const INS_WRITE_RECORDS: u8 = 0x4A;

/// Every instruction of the applet with its spec name (for decoders and reports).
pub const INS_TABLE: [(u8, &str); 17] = [
    (INS_SELECT, "SELECT"),
    (INS_VERIFY, "VERIFY"),
    (INS_CHANGE_REFERENCE_DATA, "CHANGE REFERENCE DATA"),
    (INS_GET_STATUS, "GET STATUS"),
    (INS_SET_PASSCODE, "SET PASSCODE"),
    (INS_GET_MANIFEST, "GET MANIFEST"),
    (INS_BEGIN_SESSION, "BEGIN SESSION"),
    (INS_BEGIN_RECORD, "BEGIN RECORD"),
    (INS_WRITE_DATA, "WRITE DATA"),
    (INS_END_RECORD, "END RECORD"),
    (INS_DELETE_RECORD, "DELETE RECORD"),
    (INS_COMMIT, "COMMIT"),
    (INS_ABORT, "ABORT"),
    (INS_READ_DATA, "READ DATA"),
    (INS_ERASE, "ERASE"),
    (INS_GET_MANIFEST_DIGEST, "GET MANIFEST DIGEST"),
    (INS_WRITE_RECORDS, "WRITE RECORDS"),
];

/// P2 naming the pairing passcode (SET PASSCODE, VERIFY, CHANGE REFERENCE DATA).
pub const P2_PAIRING: u8 = 0x01;
/// P2 naming the reprovisioning passcode.
pub const P2_REPROVISIONING: u8 = 0x02;
/// BEGIN SESSION P1: full session (staging starts empty).
pub const P1_SESSION_FULL: u8 = 0x00;
/// BEGIN SESSION P1: incremental session (staging starts as a copy of the active generation).
pub const P1_SESSION_INCREMENTAL: u8 = 0x01;
/// COMMIT P1: the verified form, whose data field is the expected staging-table digest (§5.12).
pub const P1_COMMIT_VERIFIED: u8 = 0x01;
/// CHANGE REFERENCE DATA P1: the data field holds the new passcode only (ISO 7816-4 P1 = 01).
pub const P1_CHANGE_NEW_ONLY: u8 = 0x01;
/// The data field ERASE requires, ASCII `ERASE`: a stray command cannot wipe the store.
pub const ERASE_CONFIRMATION: [u8; 5] = *b"ERASE";

/// Shortest passcode in bytes.
pub const PASSCODE_MIN_LEN: usize = 4;
/// Longest passcode in bytes.
pub const PASSCODE_MAX_LEN: usize = 16;

// ---------------------------------------------------------------------------------------------
// Status words (spec §4.2)
// ---------------------------------------------------------------------------------------------

/// `9D01` no backup session open.
pub const SW_NO_SESSION: u16 = 0x9D01;
/// `9D02` store capacity exceeded; previous generation kept.
pub const SW_CAPACITY_EXCEEDED: u16 = 0x9D02;
/// `9D03` record data does not match its declared SHA-256.
pub const SW_DIGEST_MISMATCH: u16 = 0x9D03;
/// `9D04` command not allowed in the current session state.
pub const SW_SESSION_STATE: u16 = 0x9D04;
/// `9D05` no backup generation stored.
pub const SW_STORE_EMPTY: u16 = 0x9D05;
/// `9D06` record table full.
pub const SW_TOO_MANY_RECORDS: u16 = 0x9D06;
/// `9D07` passcode not set.
pub const SW_PASSCODE_NOT_SET: u16 = 0x9D07;
/// `9D08` record data shorter than declared.
pub const SW_RECORD_INCOMPLETE: u16 = 0x9D08;
/// `9D09` COMMIT's expected digest differs from the staging table's; the session is ended.
pub const SW_TABLE_MISMATCH: u16 = 0x9D09;

/// The backup store's own status words: code, name in the shared status table, meaning.
pub const STATUS_WORDS: [(u16, &str, &str); 9] = [
    (SW_NO_SESSION, "NoSession", "no backup session open"),
    (
        SW_CAPACITY_EXCEEDED,
        "CapacityExceeded",
        "store capacity exceeded; previous generation kept",
    ),
    (
        SW_DIGEST_MISMATCH,
        "DigestMismatch",
        "record data does not match its declared SHA-256",
    ),
    (
        SW_SESSION_STATE,
        "SessionState",
        "command not allowed in the current session state",
    ),
    (SW_STORE_EMPTY, "StoreEmpty", "no backup generation stored"),
    (SW_TOO_MANY_RECORDS, "TooManyRecords", "record table full"),
    (SW_PASSCODE_NOT_SET, "PasscodeNotSet", "passcode not set"),
    (
        SW_RECORD_INCOMPLETE,
        "RecordIncomplete",
        "record data shorter than declared",
    ),
    (
        SW_TABLE_MISMATCH,
        "TableMismatch",
        "staging table does not match the expected digest; session ended",
    ),
];

// ---------------------------------------------------------------------------------------------
// Install parameters (spec §2.2)
// ---------------------------------------------------------------------------------------------

/// The applet's install parameters (spec §2.2): fixed for the life of the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallParams {
    /// Data capacity of the store in bytes (1 ..= 2³¹ − 1).
    pub capacity: u32,
    /// Largest number of records in one generation (1 ..= 32 767).
    pub max_records: u16,
    /// Tries of the pairing passcode (1 ..= 15).
    pub pairing_try_limit: u8,
    /// Tries of the reprovisioning passcode (1 ..= 15).
    pub reprovisioning_try_limit: u8,
}

impl InstallParams {
    /// Encoded length.
    pub const LEN: usize = 8;
    /// What the applet uses when installed with empty applet data (spec §2.2).
    pub const DEFAULT: InstallParams = InstallParams {
        capacity: 65_536,
        max_records: 128,
        pairing_try_limit: 5,
        reprovisioning_try_limit: 3,
    };

    /// `capacity(4) ‖ max_records(2) ‖ pairing_try_limit(1) ‖ reprovisioning_try_limit(1)`.
    #[must_use]
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        let mut bytes = self
            .capacity
            .to_be_bytes()
            .into_iter()
            .chain(self.max_records.to_be_bytes());
        for slot in out.iter_mut().take(6) {
            *slot = bytes.next().unwrap_or(0);
        }
        out[6] = self.pairing_try_limit;
        out[7] = self.reprovisioning_try_limit;
        out
    }

    /// Parses applet install data: empty (defaults) or exactly 8 bytes, every field in range.
    ///
    /// # Errors
    /// [`BackupError::Truncated`], [`BackupError::TrailingBytes`] or
    /// [`BackupError::InstallParam`].
    pub fn parse(bytes: &[u8]) -> Result<Self, BackupError> {
        if bytes.is_empty() {
            return Ok(Self::DEFAULT);
        }
        let (capacity, rest) = take_array(bytes, "install parameters")?;
        let (max_records, rest) = take_array(rest, "install parameters")?;
        let ([pairing, reprovisioning], rest) = take_array(rest, "install parameters")?;
        if !rest.is_empty() {
            return Err(BackupError::TrailingBytes {
                what: "install parameters",
                count: rest.len(),
            });
        }
        let params = Self {
            capacity: u32::from_be_bytes(capacity),
            max_records: u16::from_be_bytes(max_records),
            pairing_try_limit: pairing,
            reprovisioning_try_limit: reprovisioning,
        };
        params.validate()?;
        Ok(params)
    }

    /// Checks every field against its range (spec §2.2).
    ///
    /// # Errors
    /// [`BackupError::InstallParam`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), BackupError> {
        let bad = |what: &'static str, value: u32| Err(BackupError::InstallParam { what, value });
        if self.capacity == 0 || self.capacity > 0x7FFF_FFFF {
            return bad("capacity", self.capacity);
        }
        if self.max_records == 0 || self.max_records > 0x7FFF {
            return bad("max records", self.max_records.into());
        }
        if !(1..=15).contains(&self.pairing_try_limit) {
            return bad("pairing try limit", self.pairing_try_limit.into());
        }
        if !(1..=15).contains(&self.reprovisioning_try_limit) {
            return bad(
                "reprovisioning try limit",
                self.reprovisioning_try_limit.into(),
            );
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Command constructors (spec §5)
// ---------------------------------------------------------------------------------------------

/// Which of the two passcodes a command addresses (its P2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Passcode {
    /// The pairing passcode: opens the store (status details, manifest, backup sessions).
    Pairing,
    /// The reprovisioning passcode: also needed to read record data back.
    Reprovisioning,
}

impl Passcode {
    /// The P2 byte naming this passcode.
    #[must_use]
    pub const fn p2(self) -> u8 {
        match self {
            Passcode::Pairing => P2_PAIRING,
            Passcode::Reprovisioning => P2_REPROVISIONING,
        }
    }
}

impl fmt::Display for Passcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Passcode::Pairing => "pairing passcode",
            Passcode::Reprovisioning => "reprovisioning passcode",
        })
    }
}

/// The kind of a backup session (BEGIN SESSION P1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// Staging starts empty; every record of the new generation is sent.
    Full,
    /// Staging starts as a copy of the active generation, which must be `base_generation`;
    /// only new and changed records are sent and removed ones deleted.
    Incremental {
        /// The generation the host computed its plan against (from GET MANIFEST).
        base_generation: u32,
    },
}

fn check_passcode(passcode: &[u8]) -> Result<(), BackupError> {
    if (PASSCODE_MIN_LEN..=PASSCODE_MAX_LEN).contains(&passcode.len()) {
        Ok(())
    } else {
        Err(BackupError::PasscodeLength(passcode.len()))
    }
}

fn proprietary(ins: u8, p1: u8, p2: u8) -> Command {
    Command::new(CLA_PROPRIETARY, ins, p1, p2)
}

/// §5.1 SELECT the applet by AID: `00 A4 04 00 09 F0534D4B4954 0201`.
#[must_use]
pub fn select() -> Command {
    Command::new(CLA_ISO, INS_SELECT, 0x04, 0x00).data(AID.to_vec())
}

/// §5.2 GET STATUS, asking for the 28-byte status.
#[must_use]
pub fn get_status() -> Command {
    proprietary(INS_GET_STATUS, 0, 0).le(BackupStatus::LEN as u32)
}

/// §5.3 SET PASSCODE: sets a passcode that is not set yet.
///
/// # Errors
/// [`BackupError::PasscodeLength`] unless the passcode is 4 to 16 bytes.
pub fn set_passcode(which: Passcode, passcode: &[u8]) -> Result<Command, BackupError> {
    check_passcode(passcode)?;
    Ok(proprietary(INS_SET_PASSCODE, 0, which.p2()).data(passcode))
}

/// §5.4 VERIFY a passcode.
///
/// # Errors
/// [`BackupError::PasscodeLength`] unless the passcode is 4 to 16 bytes.
pub fn verify(which: Passcode, passcode: &[u8]) -> Result<Command, BackupError> {
    check_passcode(passcode)?;
    Ok(Command::new(CLA_ISO, INS_VERIFY, 0, which.p2()).data(passcode))
}

/// §5.4 VERIFY with an empty data field: asks whether the passcode is verified (`9000`) or how
/// many tries are left (`63Cx`), without using a try.
#[must_use]
pub fn verify_query(which: Passcode) -> Command {
    Command::new(CLA_ISO, INS_VERIFY, 0, which.p2())
}

/// §5.5 CHANGE REFERENCE DATA (P1 = 01, new passcode only; the passcode must be verified).
///
/// # Errors
/// [`BackupError::PasscodeLength`] unless the new passcode is 4 to 16 bytes.
pub fn change_reference_data(which: Passcode, new_passcode: &[u8]) -> Result<Command, BackupError> {
    check_passcode(new_passcode)?;
    Ok(Command::new(
        CLA_ISO,
        INS_CHANGE_REFERENCE_DATA,
        P1_CHANGE_NEW_ONLY,
        which.p2(),
    )
    .data(new_passcode))
}

/// §5.6 GET MANIFEST from entry `start`, asking for up to `max_response` bytes (Ne; use the
/// transport's response limit: 256 short, up to 65 536 extended).
#[must_use]
pub fn get_manifest(start: u16, max_response: u32) -> Command {
    let [p1, p2] = start.to_be_bytes();
    proprietary(INS_GET_MANIFEST, p1, p2).le(max_response)
}

/// §5.16 GET MANIFEST DIGEST: the active generation, its record count and the SHA-256 of its
/// table (Le = 38).
#[must_use]
pub fn get_manifest_digest() -> Command {
    proprietary(INS_GET_MANIFEST_DIGEST, 0, 0).le(u32::try_from(ManifestDigest::LEN).unwrap_or(0))
}

/// §5.7 BEGIN SESSION.
#[must_use]
pub fn begin_session(kind: SessionKind) -> Command {
    match kind {
        SessionKind::Full => proprietary(INS_BEGIN_SESSION, P1_SESSION_FULL, 0),
        SessionKind::Incremental { base_generation } => {
            proprietary(INS_BEGIN_SESSION, P1_SESSION_INCREMENTAL, 0)
                .data(base_generation.to_be_bytes().to_vec())
        }
    }
}

/// §5.8 BEGIN RECORD: the data field is the record's manifest entry.
#[must_use]
pub fn begin_record(entry: &ManifestEntry) -> Command {
    proprietary(INS_BEGIN_RECORD, 0, 0).data(entry.encode())
}

/// §5.9 WRITE DATA as one unchained APDU: `offset(4) ‖ bytes`. Short or extended length follows
/// from the data length; see [`write_chunk`] for chains.
#[must_use]
pub fn write_data(offset: u32, bytes: &[u8]) -> Command {
    let mut data = Vec::with_capacity(OFFSET_LEN + bytes.len());
    data.extend_from_slice(&offset.to_be_bytes());
    data.extend_from_slice(bytes);
    proprietary(INS_WRITE_DATA, 0, 0).data(data)
}

/// §5.9 The APDUs of one planned WRITE DATA chunk of `record` (the whole record's data): one
/// APDU, or a chain whose segments carry CLA `0x90` except the last (CLA `0x80`).
///
/// # Errors
/// [`BackupError::DataLength`] when `record` does not reach the end of the chunk.
pub fn write_chunk(chunk: &WriteChunk, record: &[u8]) -> Result<Vec<Command>, BackupError> {
    let range = chunk.range();
    let expected = range.end;
    let bytes = usize::try_from(range.start)
        .ok()
        .zip(usize::try_from(range.end).ok())
        .and_then(|(start, end)| record.get(start..end))
        .ok_or(BackupError::DataLength {
            expected,
            actual: record.len() as u64,
        })?;
    let single = write_data(chunk.offset, bytes);
    match chunk.framing {
        WriteFraming::Short | WriteFraming::Extended => Ok(vec![single]),
        WriteFraming::Chained { segment_len } => {
            let segments: Vec<&[u8]> = single.data.chunks(segment_len.max(1)).collect();
            let last = segments.len().saturating_sub(1);
            Ok(segments
                .into_iter()
                .enumerate()
                .map(|(i, segment)| {
                    let cla = if i == last {
                        CLA_PROPRIETARY
                    } else {
                        CLA_PROPRIETARY | CLA_CHAINING
                    };
                    Command::new(cla, INS_WRITE_DATA, 0, 0).data(segment)
                })
                .collect())
        }
    }
}

/// §5.10 END RECORD: the card checks length and SHA-256 and stages the record.
#[must_use]
pub fn end_record() -> Command {
    proprietary(INS_END_RECORD, 0, 0)
}

/// §5.11 DELETE RECORD (incremental sessions only).
#[must_use]
pub fn delete_record(id: &RecordId) -> Command {
    let mut data = Vec::with_capacity(2 + id.name.len());
    id.encode_into(&mut data);
    proprietary(INS_DELETE_RECORD, 0, 0).data(data)
}

/// §5.12 COMMIT: the staged generation becomes active; the response is its number (4 bytes).
#[must_use]
pub fn commit() -> Command {
    proprietary(INS_COMMIT, 0, 0).le(4)
}

/// §5.12 verified COMMIT (version `02`): commits only if the staging table's digest
/// ([`table_digest`](super::manifest::table_digest) of its entries in table order) is
/// `expected`; otherwise the card answers `9D09` and ends the session.
#[must_use]
pub fn commit_verified(expected: &RecordDigest) -> Command {
    proprietary(INS_COMMIT, P1_COMMIT_VERIFIED, 0)
        .data(expected.to_vec())
        .le(4)
}

/// §5.17 WRITE RECORDS (version `02`): whole records, each its manifest entry followed by its
/// bytes, staged in order as BEGIN RECORD / WRITE DATA / END RECORD would stage them.
///
/// # Errors
/// [`BackupError::DataLength`] when a record's data is not as long as its entry declares (the
/// card would refuse the command and end the session).
pub fn write_records<'a>(
    records: impl IntoIterator<Item = (&'a ManifestEntry, &'a [u8])>,
) -> Result<Command, BackupError> {
    let mut data = Vec::new();
    for (entry, bytes) in records {
        if bytes.len() as u64 != u64::from(entry.length) {
            return Err(BackupError::DataLength {
                expected: u64::from(entry.length),
                actual: bytes.len() as u64,
            });
        }
        entry.encode_into(&mut data);
        data.extend_from_slice(bytes);
    }
    Ok(proprietary(INS_WRITE_RECORDS, 0, 0).data(data))
}

/// Bytes one record takes in WRITE RECORDS' data field: its entry (38 + name length) and its
/// data.
#[must_use]
pub fn write_records_len(entry: &ManifestEntry) -> u64 {
    entry.encoded_len() as u64 + u64::from(entry.length)
}

/// §5.13 ABORT: discards the session; the active generation is untouched.
#[must_use]
pub fn abort() -> Command {
    proprietary(INS_ABORT, 0, 0)
}

/// §5.14 READ DATA: up to `le` bytes of record `id` from `offset`.
#[must_use]
pub fn read_data(id: &RecordId, offset: u32, le: u32) -> Command {
    let mut data = Vec::with_capacity(2 + id.name.len() + OFFSET_LEN);
    id.encode_into(&mut data);
    data.extend_from_slice(&offset.to_be_bytes());
    proprietary(INS_READ_DATA, 0, 0).data(data).le(le)
}

/// §5.14 READ DATA for one planned chunk (Le = the chunk length).
#[must_use]
pub fn read_chunk(id: &RecordId, chunk: &ReadChunk) -> Command {
    read_data(id, chunk.offset, chunk.len)
}

/// §5.15 ERASE: wipes every record and generation and returns both passcodes to "not set".
#[must_use]
pub fn erase() -> Command {
    proprietary(INS_ERASE, 0, 0).data(ERASE_CONFIRMATION.to_vec())
}

// ---------------------------------------------------------------------------------------------
// Responses (spec §5.2, §5.6, §5.12)
// ---------------------------------------------------------------------------------------------

/// The flags byte of GET STATUS (spec §5.2).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct StatusFlags(pub u8);

impl StatusFlags {
    /// The pairing passcode is set.
    pub const PAIRING_SET: u8 = 0x01;
    /// The reprovisioning passcode is set.
    pub const REPROVISIONING_SET: u8 = 0x02;
    /// The pairing passcode is verified in this selection.
    pub const PAIRING_VERIFIED: u8 = 0x04;
    /// The reprovisioning passcode is verified in this selection.
    pub const REPROVISIONING_VERIFIED: u8 = 0x08;
    /// A backup session is open.
    pub const SESSION_OPEN: u8 = 0x10;
    /// The open session is incremental.
    pub const SESSION_INCREMENTAL: u8 = 0x20;
    /// A record is open in the session (between BEGIN RECORD and a successful END RECORD).
    pub const RECORD_OPEN: u8 = 0x40;
    /// Bits that are reserved and must be zero.
    pub const RESERVED: u8 = 0x80;

    const fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// The passcode is set.
    #[must_use]
    pub const fn is_set(self, which: Passcode) -> bool {
        match which {
            Passcode::Pairing => self.has(Self::PAIRING_SET),
            Passcode::Reprovisioning => self.has(Self::REPROVISIONING_SET),
        }
    }

    /// The passcode is verified in this selection.
    #[must_use]
    pub const fn is_verified(self, which: Passcode) -> bool {
        match which {
            Passcode::Pairing => self.has(Self::PAIRING_VERIFIED),
            Passcode::Reprovisioning => self.has(Self::REPROVISIONING_VERIFIED),
        }
    }

    /// A session is open.
    #[must_use]
    pub const fn session_open(self) -> bool {
        self.has(Self::SESSION_OPEN)
    }

    /// The open session is incremental.
    #[must_use]
    pub const fn session_incremental(self) -> bool {
        self.has(Self::SESSION_INCREMENTAL)
    }

    /// A record is open.
    #[must_use]
    pub const fn record_open(self) -> bool {
        self.has(Self::RECORD_OPEN)
    }
}

impl fmt::Debug for StatusFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 7] = [
            "pairing-set",
            "reprovisioning-set",
            "pairing-verified",
            "reprovisioning-verified",
            "session-open",
            "incremental",
            "record-open",
        ];
        let names: Vec<&str> = NAMES
            .iter()
            .enumerate()
            .filter(|(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, n)| *n)
            .collect();
        write!(f, "StatusFlags({:02X}: {})", self.0, names.join(" "))
    }
}

/// The GET STATUS response (spec §5.2).
///
/// Until the pairing passcode is verified (and whenever a passcode is blocked) the card reports
/// `generation`, `used`, `free` and `record_count` as zero: it tells nothing about its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupStatus {
    /// Spec revision the applet implements, `01` or `02` (same layout; `02` adds WRITE RECORDS
    /// and the verified COMMIT, §5.2).
    pub version: u8,
    /// Number of the active generation; 0 when none is stored (or hidden).
    pub generation: u32,
    /// Data capacity in bytes (install parameter).
    pub capacity: u32,
    /// Bytes used by the active generation.
    pub used: u32,
    /// Bytes a session can still reserve (capacity minus active and staged bytes).
    pub free: u32,
    /// Records in the active generation.
    pub record_count: u16,
    /// Largest number of records per generation (install parameter).
    pub max_records: u16,
    /// Largest command data field the applet accepts in one APDU (255 without extended length).
    pub max_command_data: u16,
    /// Largest response data the applet returns in one APDU (256 without extended length).
    pub max_response_data: u16,
    /// Tries left for the pairing passcode (0: blocked).
    pub pairing_tries_left: u8,
    /// Tries left for the reprovisioning passcode (0: blocked).
    pub reprovisioning_tries_left: u8,
    /// State flags.
    pub flags: StatusFlags,
}

impl BackupStatus {
    /// Encoded length.
    pub const LEN: usize = 28;
    /// The first version: no WRITE RECORDS, no verified COMMIT.
    pub const VERSION_1: u8 = 1;
    /// The current version (the reference applet's): adds WRITE RECORDS (§5.17) and the
    /// verified COMMIT (§5.12).
    pub const VERSION: u8 = 2;

    /// Parses the 28-byte GET STATUS response data.
    ///
    /// # Errors
    /// [`BackupError::Truncated`], [`BackupError::TrailingBytes`],
    /// [`BackupError::StatusVersion`] for a version other than 1 and 2.
    pub fn parse(bytes: &[u8]) -> Result<Self, BackupError> {
        const WHAT: &str = "GET STATUS response";
        let ([version], rest) = take_array(bytes, WHAT)?;
        if version != Self::VERSION && version != Self::VERSION_1 {
            return Err(BackupError::StatusVersion(version));
        }
        let (generation, rest) = take_array(rest, WHAT)?;
        let (capacity, rest) = take_array(rest, WHAT)?;
        let (used, rest) = take_array(rest, WHAT)?;
        let (free, rest) = take_array(rest, WHAT)?;
        let (record_count, rest) = take_array(rest, WHAT)?;
        let (max_records, rest) = take_array(rest, WHAT)?;
        let (max_command_data, rest) = take_array(rest, WHAT)?;
        let (max_response_data, rest) = take_array(rest, WHAT)?;
        let ([pairing, reprovisioning, flags], rest) = take_array(rest, WHAT)?;
        if !rest.is_empty() {
            return Err(BackupError::TrailingBytes {
                what: WHAT,
                count: rest.len(),
            });
        }
        Ok(Self {
            version,
            generation: u32::from_be_bytes(generation),
            capacity: u32::from_be_bytes(capacity),
            used: u32::from_be_bytes(used),
            free: u32::from_be_bytes(free),
            record_count: u16::from_be_bytes(record_count),
            max_records: u16::from_be_bytes(max_records),
            max_command_data: u16::from_be_bytes(max_command_data),
            max_response_data: u16::from_be_bytes(max_response_data),
            pairing_tries_left: pairing,
            reprovisioning_tries_left: reprovisioning,
            flags: StatusFlags(flags),
        })
    }

    /// The 28-byte encoding (what the card sends).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.push(self.version);
        for word in [self.generation, self.capacity, self.used, self.free] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        for half in [
            self.record_count,
            self.max_records,
            self.max_command_data,
            self.max_response_data,
        ] {
            out.extend_from_slice(&half.to_be_bytes());
        }
        out.extend_from_slice(&[
            self.pairing_tries_left,
            self.reprovisioning_tries_left,
            self.flags.0,
        ]);
        out
    }

    /// True when the applet implements WRITE RECORDS and the verified COMMIT (version `02`).
    #[must_use]
    pub const fn packs_records(&self) -> bool {
        self.version >= Self::VERSION
    }

    /// Tries left for `which`.
    #[must_use]
    pub const fn tries_left(&self, which: Passcode) -> u8 {
        match which {
            Passcode::Pairing => self.pairing_tries_left,
            Passcode::Reprovisioning => self.reprovisioning_tries_left,
        }
    }

    /// True when a set passcode has no tries left: the store is locked until ERASE.
    #[must_use]
    pub const fn is_locked(&self) -> bool {
        (self.flags.is_set(Passcode::Pairing) && self.pairing_tries_left == 0)
            || (self.flags.is_set(Passcode::Reprovisioning) && self.reprovisioning_tries_left == 0)
    }
}

/// One GET MANIFEST response (spec §5.6): `generation(4) ‖ total(2) ‖ count(2) ‖ entries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestPage {
    /// The active generation the entries belong to; a host paging through a manifest checks that
    /// it does not change between pages.
    pub generation: u32,
    /// Number of records in the generation.
    pub total: u16,
    /// The entries of this page, in the card's table order.
    pub entries: Vec<ManifestEntry>,
}

impl ManifestPage {
    /// Length of the page header.
    pub const HEADER_LEN: usize = 8;

    /// Parses one GET MANIFEST response.
    ///
    /// # Errors
    /// [`BackupError::Truncated`], an entry error, [`BackupError::TrailingBytes`] when bytes
    /// follow the `count` entries.
    pub fn parse(bytes: &[u8]) -> Result<Self, BackupError> {
        const WHAT: &str = "GET MANIFEST header";
        let (generation, rest) = take_array(bytes, WHAT)?;
        let (total, rest) = take_array(rest, WHAT)?;
        let (count, mut rest) = take_array(rest, WHAT)?;
        let count = u16::from_be_bytes(count);
        let mut entries = Vec::new();
        for _ in 0..count {
            let (entry, tail) = ManifestEntry::parse(rest)?;
            entries.push(entry);
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(BackupError::TrailingBytes {
                what: "GET MANIFEST response",
                count: rest.len(),
            });
        }
        Ok(Self {
            generation: u32::from_be_bytes(generation),
            total: u16::from_be_bytes(total),
            entries,
        })
    }

    /// The encoding (what the card sends).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.generation.to_be_bytes());
        out.extend_from_slice(&self.total.to_be_bytes());
        out.extend_from_slice(
            &u16::try_from(self.entries.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        for entry in &self.entries {
            entry.encode_into(&mut out);
        }
        out
    }
}

/// The GET MANIFEST DIGEST response (spec §5.16): `generation(4) ‖ count(2) ‖ sha256(32)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestDigest {
    /// The active generation.
    pub generation: u32,
    /// Its number of records.
    pub count: u16,
    /// [`table_digest`](super::manifest::table_digest) of its table, in table order.
    pub digest: RecordDigest,
}

impl ManifestDigest {
    /// Length of the response.
    pub const LEN: usize = 38;

    /// Parses the response.
    ///
    /// # Errors
    /// [`BackupError::Truncated`] or [`BackupError::TrailingBytes`].
    pub fn parse(bytes: &[u8]) -> Result<Self, BackupError> {
        const WHAT: &str = "GET MANIFEST DIGEST response";
        let (generation, rest) = take_array(bytes, WHAT)?;
        let (count, rest) = take_array(rest, WHAT)?;
        let (digest, rest) = take_array(rest, WHAT)?;
        if !rest.is_empty() {
            return Err(BackupError::TrailingBytes {
                what: WHAT,
                count: rest.len(),
            });
        }
        Ok(Self {
            generation: u32::from_be_bytes(generation),
            count: u16::from_be_bytes(count),
            digest,
        })
    }

    /// The encoding (what the card sends).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.extend_from_slice(&self.generation.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.digest);
        out
    }

    /// True when `entries` (in table order) are the table this digest describes.
    #[must_use]
    pub fn matches(&self, entries: &[ManifestEntry]) -> bool {
        usize::from(self.count) == entries.len()
            && super::manifest::table_digest(entries) == self.digest
    }
}

/// Parses COMMIT's response: the new generation number (4 bytes, big-endian).
///
/// # Errors
/// [`BackupError::Truncated`] or [`BackupError::TrailingBytes`].
pub fn parse_commit_response(bytes: &[u8]) -> Result<u32, BackupError> {
    let (generation, rest) = take_array(bytes, "COMMIT response")?;
    if !rest.is_empty() {
        return Err(BackupError::TrailingBytes {
            what: "COMMIT response",
            count: rest.len(),
        });
    }
    Ok(u32::from_be_bytes(generation))
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::*;
    use crate::backup::manifest::{Category, RecordName};
    use crate::backup::plan::{Transport, write_plan};

    fn header(c: &Command) -> [u8; 4] {
        [c.cla, c.ins, c.p1, c.p2]
    }

    #[test]
    fn aids() {
        assert_eq!(AID, hex!("F0 53494D4B4954 0201"));
        assert_eq!(PACKAGE_AID, hex!("F0 53494D4B4954 02"));
        assert_eq!(&AID[1..7], b"SIMKIT");
    }

    #[test]
    fn fixed_commands() {
        let s = select();
        assert_eq!(
            (header(&s), s.data.as_slice(), s.le),
            (hex!("00A40400"), AID.as_slice(), None)
        );
        assert_eq!(
            (header(&get_status()), get_status().le),
            (hex!("80300000"), Some(28))
        );
        assert_eq!(header(&end_record()), hex!("803C0000"));
        assert_eq!(
            (header(&commit()), commit().le),
            (hex!("80400000"), Some(4))
        );
        assert_eq!(header(&abort()), hex!("80420000"));
        assert_eq!(
            (header(&erase()), erase().data),
            (hex!("80460000"), b"ERASE".to_vec())
        );
        let m = get_manifest(0x0102, 256);
        assert_eq!((header(&m), m.le), (hex!("80340102"), Some(256)));
        assert_eq!(header(&begin_session(SessionKind::Full)), hex!("80360000"));
        let inc = begin_session(SessionKind::Incremental { base_generation: 7 });
        assert_eq!(
            (header(&inc), inc.data),
            (hex!("80360100"), hex!("00000007").to_vec())
        );
    }

    #[test]
    fn passcode_commands_check_length() {
        let v = verify(Passcode::Reprovisioning, b"1234").unwrap();
        assert_eq!((header(&v), v.data), (hex!("00200002"), b"1234".to_vec()));
        assert_eq!(header(&verify_query(Passcode::Pairing)), hex!("00200001"));
        assert!(verify_query(Passcode::Pairing).data.is_empty());
        assert_eq!(
            header(&set_passcode(Passcode::Pairing, &[0; 16]).unwrap()),
            hex!("80320001")
        );
        assert_eq!(
            header(&change_reference_data(Passcode::Pairing, b"abcd").unwrap()),
            hex!("00240101")
        );
        assert_eq!(
            verify(Passcode::Pairing, b"123"),
            Err(BackupError::PasscodeLength(3))
        );
        assert_eq!(
            set_passcode(Passcode::Pairing, &[0; 17]),
            Err(BackupError::PasscodeLength(17))
        );
        assert_eq!(
            change_reference_data(Passcode::Reprovisioning, b""),
            Err(BackupError::PasscodeLength(0))
        );
    }

    #[test]
    fn record_commands() {
        let id = RecordId::new(Category::Keys, RecordName::new("k").unwrap());
        assert_eq!(delete_record(&id).data, hex!("02 01 6B"));
        let r = read_data(&id, 0x0102_0304, 256);
        assert_eq!(
            (header(&r), r.data, r.le),
            (
                hex!("80440000"),
                hex!("02016B 01020304").to_vec(),
                Some(256)
            )
        );
        assert_eq!(write_data(5, b"ab").data, hex!("00000005 6162"));
    }

    #[test]
    fn chained_write_segments_reassemble() {
        let data: Vec<u8> = (0..=255u8).cycle().take(600).collect();
        let plan = write_plan(600, &Transport::SHORT).unwrap();
        let apdus = write_chunk(&plan[0], &data).unwrap();
        assert_eq!(apdus.len(), 3);
        assert_eq!(
            apdus.iter().map(|a| a.cla).collect::<Vec<_>>(),
            [0x90, 0x90, 0x80]
        );
        assert!(
            apdus
                .iter()
                .all(|a| a.data.len() <= 255 && a.ins == INS_WRITE_DATA)
        );
        let joined: Vec<u8> = apdus.iter().flat_map(|a| a.data.clone()).collect();
        assert_eq!(&joined[..4], &[0, 0, 0, 0]);
        assert_eq!(&joined[4..], data.as_slice());
        assert_eq!(
            write_chunk(&plan[0], &data[..599]),
            Err(BackupError::DataLength {
                expected: 600,
                actual: 599
            })
        );
    }

    #[test]
    fn install_params() {
        let p = InstallParams {
            capacity: 0x0008_0000,
            max_records: 256,
            pairing_try_limit: 5,
            reprovisioning_try_limit: 3,
        };
        assert_eq!(p.encode(), hex!("00080000 0100 05 03"));
        assert_eq!(InstallParams::parse(&p.encode()).unwrap(), p);
        assert_eq!(InstallParams::parse(&[]).unwrap(), InstallParams::DEFAULT);
        assert!(matches!(
            InstallParams::parse(&hex!("00080000 0100 05")),
            Err(BackupError::Truncated { .. })
        ));
        assert!(matches!(
            InstallParams::parse(&hex!("00080000 0100 05 03 00")),
            Err(BackupError::TrailingBytes { .. })
        ));
        let bad = |bytes: &[u8], what: &str| match InstallParams::parse(bytes) {
            Err(BackupError::InstallParam { what: w, .. }) => assert_eq!(w, what),
            other => panic!("{other:?}"),
        };
        bad(&hex!("00000000 0100 05 03"), "capacity");
        bad(&hex!("80000000 0100 05 03"), "capacity");
        bad(&hex!("00080000 0000 05 03"), "max records");
        bad(&hex!("00080000 8000 05 03"), "max records");
        bad(&hex!("00080000 0100 00 03"), "pairing try limit");
        bad(&hex!("00080000 0100 05 10"), "reprovisioning try limit");
    }

    #[test]
    fn status_round_trip_and_errors() {
        let bytes = hex!("01 00000002 00010000 00000148 0000FEB8 0002 0010 7FFF 7FFF 05 00 17");
        let s = BackupStatus::parse(&bytes).unwrap();
        assert_eq!(s.generation, 2);
        assert_eq!(s.free, 0xFEB8);
        assert_eq!(s.record_count, 2);
        assert_eq!(s.tries_left(Passcode::Reprovisioning), 0);
        assert!(s.flags.is_set(Passcode::Pairing) && s.flags.is_set(Passcode::Reprovisioning));
        assert!(
            s.flags.is_verified(Passcode::Pairing)
                && !s.flags.is_verified(Passcode::Reprovisioning)
        );
        assert!(s.flags.session_open() && !s.flags.session_incremental() && !s.flags.record_open());
        assert!(s.is_locked());
        assert_eq!(s.encode(), bytes);
        assert_eq!(
            format!("{:?}", s.flags),
            "StatusFlags(17: pairing-set reprovisioning-set pairing-verified session-open)"
        );
        assert_eq!(
            BackupStatus::parse(&bytes[..27]).unwrap_err(),
            BackupError::Truncated {
                what: "GET STATUS response",
                needed: 3,
                available: 2
            }
        );
        let mut v1 = bytes;
        v1[0] = 1;
        let old = BackupStatus::parse(&v1).unwrap();
        assert!(!old.packs_records());
        assert!(BackupStatus::parse(&bytes).unwrap().packs_records() == (bytes[0] == 2));
        let mut v3 = bytes;
        v3[0] = 3;
        assert_eq!(BackupStatus::parse(&v3), Err(BackupError::StatusVersion(3)));
    }

    #[test]
    fn manifest_pages() {
        let e =
            ManifestEntry::for_data(Category::Keys, RecordName::new("k").unwrap(), b"abc").unwrap();
        let page = ManifestPage {
            generation: 3,
            total: 5,
            entries: vec![e.clone()],
        };
        let bytes = page.encode();
        assert_eq!(&bytes[..8], &hex!("00000003 0005 0001"));
        assert_eq!(ManifestPage::parse(&bytes).unwrap(), page);
        assert_eq!(
            ManifestPage::parse(&hex!("00000003 0005 0000"))
                .unwrap()
                .entries,
            vec![]
        );
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(matches!(
            ManifestPage::parse(&extra),
            Err(BackupError::TrailingBytes { count: 1, .. })
        ));
        assert!(matches!(
            ManifestPage::parse(&bytes[..20]),
            Err(BackupError::Truncated { .. })
        ));
        assert_eq!(parse_commit_response(&hex!("00000002")), Ok(2));
        assert!(parse_commit_response(&hex!("000002")).is_err());
    }

    #[test]
    fn status_word_table_is_consistent() {
        for (i, (code, _, _)) in STATUS_WORDS.iter().enumerate() {
            assert_eq!(*code, 0x9D01 + i as u16);
        }
    }
}
