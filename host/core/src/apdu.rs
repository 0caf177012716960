//! ISO/IEC 7816-4 APDUs: command and response byte layouts, and command chaining.
//!
//! This module owns the bytes of an APDU: how a [`Command`] is encoded with short or extended
//! length fields and parsed back in all seven cases of ISO 7816-4 §5.1, how a [`Response`]
//! splits into data and status word, and how a long command is split into a chain (§5.1.1.1)
//! and reassembled.
//!
//! It must not talk to a card or decide on retries: sending, GET RESPONSE loops and 6Cxx
//! re-issues are the card-access layer's job; this module only provides the commands for them
//! ([`get_response`], [`Command::with_le`]). Every parser returns an [`ApduError`] instead of
//! panicking, whatever the input.

pub mod chain;
pub mod command;
pub mod response;

pub use chain::{CHAINING_BIT, chain, get_response, reassemble};
pub use command::{Case, Command, LengthEncoding, le_from_short};
pub use response::Response;

use thiserror::Error;

/// What was wrong with an APDU, or why one cannot be built or chained.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApduError {
    /// Fewer than the four header bytes CLA INS P1 P2.
    #[error("command APDU too short: {len} bytes, a header needs 4")]
    CommandTooShort {
        /// How many bytes there were.
        len: usize,
    },
    /// A short Lc byte of `00`, which ISO 7816-4 does not allow (no data means no Lc field).
    #[error("short Lc of 0 is invalid: a command without data has no Lc field")]
    ShortLcZero,
    /// An extended Lc of `00 00 00`, which ISO 7816-4 does not allow.
    #[error("extended Lc of 0 is invalid: a command without data has no Lc field")]
    ExtendedLcZero,
    /// The bytes after a short Lc are neither Lc data bytes nor Lc data bytes and one Le byte.
    #[error(
        "Lc says {lc} data bytes but {follow} follow (expected {lc}, or {} with a short Le)",
        lc + 1
    )]
    ShortLcMismatch {
        /// The data length announced by Lc.
        lc: usize,
        /// How many bytes follow the Lc byte.
        follow: usize,
    },
    /// The bytes after an extended Lc are neither Lc data bytes nor Lc data bytes and two Le
    /// bytes.
    #[error(
        "extended Lc says {lc} data bytes but {follow} follow (expected {lc}, or {} with an extended Le)",
        lc + 2
    )]
    ExtendedLcMismatch {
        /// The data length announced by Lc.
        lc: usize,
        /// How many bytes follow the three Lc bytes.
        follow: usize,
    },
    /// Command data longer than any Lc field can announce.
    #[error("command data of {len} bytes is too long: an extended Lc allows at most 65535")]
    DataTooLong {
        /// The data length.
        len: usize,
    },
    /// An Le outside 1..=65536 (`le: None` is how to ask for no response data).
    #[error("Le of {le} is out of range: it must be 1..=65536, or absent")]
    LeOutOfRange {
        /// The requested Le.
        le: u32,
    },
    /// Short length fields were forced but the data does not fit a one-byte Lc.
    #[error("short length encoding cannot carry {len} data bytes (at most 255)")]
    ShortDataTooLong {
        /// The data length.
        len: usize,
    },
    /// Short length fields were forced but the Le does not fit a one-byte Le.
    #[error("short length encoding cannot carry Le {le} (at most 256)")]
    ShortLeTooLarge {
        /// The requested Le.
        le: u32,
    },
    /// Fewer than the two status-word bytes of a response.
    #[error("response APDU too short: {len} bytes, SW1-SW2 needs 2")]
    ResponseTooShort {
        /// How many bytes there were.
        len: usize,
    },
    /// More response data than an extended Le can ask for.
    #[error("response APDU too long: {len} bytes, at most 65536 data bytes and SW1-SW2")]
    ResponseTooLong {
        /// How many bytes there were.
        len: usize,
    },
    /// A chain piece size of 0 or above the extended maximum.
    #[error(
        "chain piece size {max} is out of range: it must be 1..=65535 (1..=255 for short APDUs)"
    )]
    ChainPieceSize {
        /// The requested piece size.
        max: usize,
    },
    /// A CLA that already has the chaining bit set.
    #[error("CLA {cla:02X} already has the chaining bit (10) set")]
    ClaAlreadyChained {
        /// The CLA.
        cla: u8,
    },
    /// A CLA whose coding has no chaining bit: `20`..=`3F` (RFU in ISO 7816-4) or `FF`
    /// (invalid).
    #[error("CLA {cla:02X} cannot be chained: its coding is reserved or invalid")]
    ClaNotChainable {
        /// The CLA.
        cla: u8,
    },
    /// `reassemble` was given no commands.
    #[error("no commands to reassemble")]
    EmptyChain,
    /// A command before the last one of a chain lacks the chaining bit.
    #[error("command {index} of a chain of {count} lacks the chaining bit")]
    ChainBitMissing {
        /// Its position (from 0).
        index: usize,
        /// How many commands the chain has.
        count: usize,
    },
    /// The last command of a chain has the chaining bit set.
    #[error("the last command of a chain has the chaining bit set (CLA {cla:02X})")]
    ChainNotTerminated {
        /// Its CLA.
        cla: u8,
    },
    /// A command of a chain has a different CLA (apart from the chaining bit), INS, P1 or P2
    /// than the first.
    #[error(
        "command {index} of a chain has header {found:02X?}, but the first has {expected:02X?} (chaining bit ignored)"
    )]
    ChainHeaderMismatch {
        /// Its position (from 0).
        index: usize,
        /// CLA INS P1 P2 of the first command, chaining bit cleared.
        expected: [u8; 4],
        /// CLA INS P1 P2 of this one, chaining bit cleared.
        found: [u8; 4],
    },
    /// A command before the last one of a chain carries an Le.
    #[error("command {index} of a chain carries Le {le}; only the last one may")]
    ChainLeNotLast {
        /// Its position (from 0).
        index: usize,
        /// The Le it carries.
        le: u32,
    },
}
