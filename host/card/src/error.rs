//! The one error type of card access, [`CardError`].
//!
//! Status words are kept as [`Sw`] (whose `Display` carries the ISO or applet meaning), I/O
//! errors keep their source, and the only variant carrying free text is
//! [`CardError::CardHost`], which holds the card host's own message.

use std::io;

use simkit_core::apdu::ApduError;
use simkit_core::status::Sw;
use thiserror::Error;

// The backends' error modules import nothing of this crate, so no cycle: card error → them.
use crate::jcardsim::error::{HostProtocolError, JcardsimError};
use crate::pcsc::error::PcscError;

/// Everything that can go wrong between the host and a card.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CardError {
    /// The connection to the card (socket, reader) failed.
    #[error("card transport: {0}")]
    Transport(#[from] io::Error),

    /// The simulator's armed tear fired during the command: power was cut after the k-th
    /// persistent write. The card has been reset and is ready for the next command.
    #[error("card power lost during the command (armed tear fired); the card was reset")]
    PowerLost,

    /// A command was sent to a card that is powered off (until power on or reset).
    #[error("card is powered off")]
    PoweredOff,

    /// The card host refused a request (status 2); the message is the host's own.
    #[error("card host: {0}")]
    CardHost(String),

    /// A command could not be encoded, or a response was shorter than its status word.
    #[error("APDU: {0}")]
    Apdu(#[from] ApduError),

    /// The card answered a status word other than `9000`.
    #[error("{command}: {sw}")]
    Status {
        /// What the card answered.
        sw: Sw,
        /// The command's name, e.g. `APPLY GRANT`.
        command: &'static str,
    },

    /// The card sent more response data than the caller's Le allowed (`le` 0: the command had
    /// no Le field, so no data was expected).
    #[error("response of {got} data bytes exceeds Le {le}")]
    ResponseTooLong {
        /// The Ne of the caller's command (0 without an Le field).
        le: u32,
        /// How many data bytes came back, GET RESPONSE parts included.
        got: usize,
    },

    /// The card kept answering `61xx`.
    #[error("card still answered 61xx after {count} GET RESPONSE commands")]
    GetResponseLimit {
        /// How many GET RESPONSE commands were sent.
        count: usize,
    },

    /// A response whose length the applet specification does not allow.
    #[error("{command}: expected {expected} response bytes, got {got}")]
    UnexpectedResponse {
        /// The command's name.
        command: &'static str,
        /// What the specification allows, e.g. `"31"` or `"0..=64"`.
        expected: &'static str,
        /// The length received.
        got: usize,
    },

    /// A `--card` string that is not a card URI.
    #[error("invalid card URI {uri:?}: {reason}")]
    InvalidUri {
        /// The string given.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The jCardSim card host (finding its jar, starting it, its socket protocol, its cards)
    /// failed.
    #[error(transparent)]
    Jcardsim(#[from] JcardsimError),

    /// The PC/SC service, a reader, or the simulator behind it failed (no pcscd, no such
    /// reader, no card, sharing violation, not a simkit simulator, …).
    #[error(transparent)]
    Pcsc(#[from] PcscError),
}

impl From<HostProtocolError> for CardError {
    fn from(e: HostProtocolError) -> Self {
        CardError::Jcardsim(e.into())
    }
}

impl CardError {
    /// The status word, if the card answered one other than `9000`.
    pub fn sw(&self) -> Option<Sw> {
        match self {
            CardError::Status { sw, .. } => Some(*sw),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_display_carries_meaning() {
        let e = CardError::Status {
            sw: Sw::from_u16(0x6982),
            command: "APPLY GRANT",
        };
        assert_eq!(
            e.to_string(),
            "APPLY GRANT: 6982 security status not satisfied"
        );
        assert_eq!(e.sw(), Some(Sw::SecurityStatusNotSatisfied));
        let e = CardError::Status {
            sw: Sw::from_u16(0x9C04),
            command: "APPLY GRANT",
        };
        assert_eq!(
            e.to_string(),
            "APPLY GRANT: 9C04 grant already applied; nothing changed"
        );
    }
}
