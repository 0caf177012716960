//! The credit-module client's error, [`CreditClientError`]: the twin of
//! [`BackupClientError`](crate::backup::BackupClientError).
//!
//! A refusal or a transport failure stays a [`CardError`] (with its status word and meaning);
//! what only the credit client can find — a response the core codecs reject — is its own
//! variant. This module must not decide anything about the protocol.

use simkit_core::credit::message::MessageError;
use simkit_core::credit::module::StatusError;
use simkit_core::status::Sw;
use thiserror::Error;

use crate::error::CardError;

/// Everything the credit-module client can fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CreditClientError {
    /// The card (or the way to it) failed; a refusal keeps its status word and meaning, a
    /// response of a length the spec does not allow is [`CardError::UnexpectedResponse`].
    #[error(transparent)]
    Card(#[from] CardError),

    /// A response of the right length that the core codecs reject.
    #[error("{command}: malformed response: {source}")]
    Malformed {
        /// The command's name.
        command: &'static str,
        /// What the codec found.
        #[source]
        source: ResponseFormatError,
    },
}

impl CreditClientError {
    /// The status word, if the card answered one other than `9000`.
    pub fn sw(&self) -> Option<Sw> {
        match self {
            CreditClientError::Card(e) => e.sw(),
            CreditClientError::Malformed { .. } => None,
        }
    }

    /// The card error underneath, if it is one (not a malformed response).
    pub fn card(&self) -> Option<&CardError> {
        match self {
            CreditClientError::Card(e) => Some(e),
            CreditClientError::Malformed { .. } => None,
        }
    }
}

/// Which core codec rejected a response, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResponseFormatError {
    /// A credit-module message (request, completion ack).
    #[error(transparent)]
    Message(#[from] MessageError),
    /// A GET STATUS or GET FRAUD LOG response.
    #[error(transparent)]
    Status(#[from] StatusError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_refusal_reads_as_the_card_error_and_keeps_its_sw() {
        let e = CreditClientError::from(CardError::Status {
            sw: Sw::from_u16(0x9C04),
            command: "APPLY GRANT",
        });
        assert_eq!(
            e.to_string(),
            "APPLY GRANT: 9C04 grant already applied; nothing changed"
        );
        assert_eq!(e.sw(), Some(Sw::from_u16(0x9C04)));
        assert!(matches!(e.card(), Some(CardError::Status { .. })));
    }
}
