//! The backup-store client's error, [`BackupClientError`]: a card refusal keeps its status
//! word and meaning; the rest is what only the backup client can find.
//!
//! It must not decide anything about the store: the applet and `simkit_core::backup` do.

use std::io;

use simkit_core::backup::BackupError;
use simkit_core::backup::commands::Passcode;
use simkit_core::backup::manifest::RecordId;
use simkit_core::status::Sw;

#[allow(unused_imports)] // named by the doc comments
use super::{BackupClient, MAX_RESENDS};
use crate::error::CardError;

/// Everything that can go wrong driving the backup store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupClientError {
    /// The card (or the way to it) failed; a refusal keeps its status word and meaning.
    #[error(transparent)]
    Card(#[from] CardError),
    /// A request the host cannot build (a passcode of the wrong length, a transport too small).
    #[error(transparent)]
    Request(#[from] BackupError),
    /// A response of the right shape that the core codecs reject.
    #[error("{command}: malformed response: {source}")]
    Malformed {
        /// The command's name.
        command: &'static str,
        /// What the codec found.
        #[source]
        source: BackupError,
    },
    /// The store is locked: a passcode is blocked (§4.1). Only ERASE helps.
    #[error(
        "the backup store is locked (a passcode is blocked, 6983); only `erase` helps, and it destroys the backup"
    )]
    Locked,
    /// A passcode the operation needs is not set (§4.3 UNSET).
    #[error("the {0} is not set (9D07); set it first")]
    NotSet(Passcode),
    /// READ DATA returned fewer bytes than asked for.
    #[error("READ DATA {id}: asked for {asked} bytes at offset {offset}, got {got}")]
    ShortRead {
        /// The record.
        id: RecordId,
        /// Offset asked for.
        offset: u32,
        /// Bytes asked for.
        asked: u32,
        /// Bytes received.
        got: usize,
    },
    /// The bytes read back do not hash to the manifest's SHA-256: nothing may be written.
    #[error("record {0}: data read from the card does not match its manifest SHA-256")]
    ReadDigestMismatch(RecordId),
    /// The local data handed in for a record does not match the length or digest it was
    /// declared with, also after re-reading it [`MAX_RESENDS`] times (push), or at all
    /// ([`send_record`](BackupClient::send_record)).
    #[error("record {0}: local data changed while it was being sent; run the backup again")]
    LocalChanged(RecordId),
    /// The card refused one command of a record (or of its DELETE RECORD) during a push; the
    /// session was aborted, the previous generation is intact.
    #[error("record {id}: {source}")]
    RecordRefused {
        /// The record.
        id: RecordId,
        /// The refusal: the command and its status word with meaning.
        #[source]
        source: CardError,
    },
    /// The card refused a WRITE RECORDS (§5.17) carrying several records; its status word
    /// does not say which one. The session ended; the previous generation is intact.
    #[error("records {first} and {more} more (one WRITE RECORDS): {source}")]
    PackRefused {
        /// The first record of the command.
        first: RecordId,
        /// How many other records it carried.
        more: usize,
        /// The refusal: the command and its status word with meaning.
        #[source]
        source: CardError,
    },
    /// The local data of a record could not be read.
    #[error("record {id}: {source}")]
    Source {
        /// The record.
        id: RecordId,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// GET MANIFEST kept reporting a different generation between pages.
    #[error("the card's generation kept changing while reading the manifest")]
    ManifestUnstable,
    /// GET MANIFEST returned a page with no entry before the total was reached.
    #[error("GET MANIFEST: empty page at index {start} of {total}")]
    ManifestStalled {
        /// Start index asked for.
        start: u16,
        /// Total the card reported.
        total: u16,
    },
}

impl BackupClientError {
    /// The status word, if the card refused a command.
    pub fn sw(&self) -> Option<Sw> {
        match self {
            BackupClientError::Card(e)
            | BackupClientError::RecordRefused { source: e, .. }
            | BackupClientError::PackRefused { source: e, .. } => e.sw(),
            _ => None,
        }
    }

    /// Tries left when the card answered a wrong passcode (`63Cx`).
    pub fn tries_left(&self) -> Option<u8> {
        match self.sw() {
            Some(Sw::RemainingRetries(n)) => Some(n),
            _ => None,
        }
    }
}
