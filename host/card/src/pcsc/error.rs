//! The PC/SC backend's own errors, [`PcscError`]: everything that can fail on the way to a
//! reader beyond the card's status words.
//!
//! This module depends on nothing of this crate; [`CardError`](crate::CardError) wraps it with
//! `#[from]`. It must not import the card error back (no cycle inside `simkit-card`).

use simkit_core::status::Sw;
use thiserror::Error;

/// What went wrong on the PC/SC path, beyond the card's own status words.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PcscError {
    /// `SCARD_E_NO_SERVICE`: no PC/SC daemon answers.
    #[error(
        "PC/SC service not running: no pcscd answers on {socket} (start pcscd, or run under tools/pcsc-sim.sh)"
    )]
    NoService {
        /// The socket tried (`PCSCLITE_CSOCK_NAME`, or pcsc-lite's default).
        socket: String,
    },
    /// The service has no reader at all.
    #[error("no PC/SC reader is connected")]
    NoReaders,
    /// No reader matches the name or index asked for.
    #[error("no PC/SC reader matches {wanted}; readers: {}", numbered(available))]
    ReaderNotFound {
        /// What was asked for (a name, a substring or `#index`).
        wanted: String,
        /// The readers there are.
        available: Vec<String>,
    },
    /// A substring that matches several readers.
    #[error(
        "{wanted:?} matches several PC/SC readers: {}; give the full name or an index",
        numbered(matches)
    )]
    AmbiguousReader {
        /// The substring.
        wanted: String,
        /// The readers it matches.
        matches: Vec<String>,
    },
    /// `SCARD_E_NO_SMARTCARD` / `SCARD_W_REMOVED_CARD`: the reader is empty.
    #[error("no card in PC/SC reader {reader:?}")]
    NoCard {
        /// The reader.
        reader: String,
    },
    /// `SCARD_E_SHARING_VIOLATION`: another application has the card exclusively (or has a
    /// transaction open), or we asked for exclusive use of a card others are using.
    #[error(
        "PC/SC reader {reader:?}: sharing violation (another application uses the card exclusively, or we asked for exclusive use of a card in use)"
    )]
    SharingViolation {
        /// The reader.
        reader: String,
    },
    /// A simulator pseudo-APDU was refused: the reader and card are not a simkit simulator.
    #[error("PC/SC reader {reader:?} is not a simkit simulator: {command} answered {sw}")]
    NotSimulator {
        /// The reader.
        reader: String,
        /// The pseudo-APDU's name.
        command: &'static str,
        /// The status word (`6E00` or `6D00` from real hardware).
        sw: Sw,
    },
    /// Any other PC/SC failure.
    #[error("PC/SC {op} on {reader:?}: {source}")]
    Call {
        /// The PC/SC call, e.g. `SCardTransmit`.
        op: &'static str,
        /// The reader (empty before one was chosen).
        reader: String,
        /// pcsc-lite's error.
        #[source]
        source: pcsc::Error,
    },
    /// The worker thread holding the card handle is gone (it panicked).
    #[error("PC/SC worker thread for {reader:?} stopped")]
    WorkerGone {
        /// The reader.
        reader: String,
    },
}

fn numbered(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{i}: {n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
