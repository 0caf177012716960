//! [`Store`] as a [`GrantSigner`]: the same reload round as over HTTP, in-process (the offline
//! signer of `simkit credit reload`, `simkit demo`). The store's own answers convert to the one
//! answer type of simkit-core; a fraud event registered on a refusal stays with the error.
//!
//! Must not add policy: every call is [`Store::reload`], [`Store::reload_result`] or
//! [`Store::completion`], unchanged.

use simkit_core::credit::server::FraudEvent;
use simkit_core::credit::signer::{CompletionAnswer, GrantSigner, PendingReload, ReloadAnswer};

use super::{Answer, Completion, Store, StoreError};

/// Why the store refused a call, with the fraud event it registered, if any (the HTTP layer
/// counts it; a caller in-process may report it).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct SignerError {
    /// The store's reason.
    pub error: StoreError,
    /// The fraud event registered and committed with the refusal.
    pub fraud: Option<FraudEvent>,
}

impl From<(StoreError, Option<FraudEvent>)> for SignerError {
    fn from((error, fraud): (StoreError, Option<FraudEvent>)) -> Self {
        SignerError { error, fraud }
    }
}

impl Answer {
    /// The answer in simkit-core's one type. A pending answer's module id is the store's
    /// upper-case hex; it is always 8 bytes, so the conversion cannot fail on the store's own
    /// answers, and refuses (naming the id) anything else.
    pub fn into_reload_answer(self) -> Result<ReloadAnswer, StoreError> {
        Ok(match self {
            Answer::Fresh(grant) => ReloadAnswer::Grant {
                grant,
                resent: false,
            },
            Answer::Resent(grant) => ReloadAnswer::Grant {
                grant,
                resent: true,
            },
            Answer::Pending {
                provisional_ack,
                module_id,
                n,
            } => {
                let module_id = Store::parse_id(&module_id)?;
                ReloadAnswer::Pending(PendingReload {
                    provisional_ack,
                    module_id,
                    n,
                    retry_after: None,
                })
            }
        })
    }
}

impl From<Completion> for CompletionAnswer {
    fn from(c: Completion) -> Self {
        match c {
            Completion::Accepted => CompletionAnswer::Accepted,
            Completion::AlreadyAccepted => CompletionAnswer::AlreadyAccepted,
        }
    }
}

impl GrantSigner for Store {
    type Error = SignerError;

    fn reload(&self, request: &[u8]) -> Result<ReloadAnswer, SignerError> {
        let (answer, _) = Store::reload(self, request)?;
        Ok(answer.into_reload_answer().map_err(|e| (e, None))?)
    }

    fn collect(&self, pending: &PendingReload) -> Result<ReloadAnswer, SignerError> {
        let id = hex::encode_upper(pending.module_id);
        let (answer, _) = self.reload_result(&id, pending.n)?;
        Ok(answer.into_reload_answer().map_err(|e| (e, None))?)
    }

    fn complete(&self, ack: &[u8]) -> Result<CompletionAnswer, SignerError> {
        Ok(self.completion(ack)?.into())
    }
}
