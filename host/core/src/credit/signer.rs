//! The grant signer as the appliance sees it (BRIEF §2, applet-spec/server-api.md): one trait,
//! one answer type, whoever signs.
//!
//! The reload procedure (`simkit-card`'s credit client) talks to a [`GrantSigner`] and never
//! knows whether the grants come from a `simkit server run` across the network
//! (`simkit_server::client::SignerClient`) or from a signer database opened in the same
//! process (`simkit_server::store::Store` on a SQLite file). Both answer with the same
//! [`ReloadAnswer`] and [`CompletionAnswer`]; the transport's failures stay in the
//! implementation's own error type.
//!
//! This module holds types only: no I/O, no policy. The policy is [`super::server`].

use std::time::Duration;

use super::ModuleId;

/// What a signer answered to a reload request (server-api.md `POST /v1/reload`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadAnswer {
    /// A grant message (granted or declined, credit-module.md §3.3).
    Grant {
        /// The grant bytes, exactly as the module must see them.
        grant: Vec<u8>,
        /// `true` when this is the stored grant of a retransmitted request, byte for byte, and
        /// no new debit was made; `false` for a grant made now.
        resent: bool,
    },
    /// The debit is still pending at the financial authority: a MAC'd provisional ack
    /// (credit-module.md §3.4) the module can apply, and where to collect the grant later.
    Pending(PendingReload),
}

/// A reload whose debit the financial authority has not settled yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingReload {
    /// The provisional ack bytes.
    pub provisional_ack: Vec<u8>,
    /// The module the request came from.
    pub module_id: ModuleId,
    /// The request's N: with the module id, the key to collect the grant by
    /// (`GET /v1/reload/{module_id}/{n}`, [`GrantSigner::collect`]).
    pub n: u32,
    /// How long the signer asks the appliance to wait before asking again, if it said.
    pub retry_after: Option<Duration>,
}

/// What a signer answered to a completion ack (server-api.md `POST /v1/completion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionAnswer {
    /// Accepted now: this ack finished a reload.
    Accepted,
    /// Accepted before: nothing changed (the appliance retried).
    AlreadyAccepted,
}

/// A grant signer: the three calls of the reload round the appliance makes.
///
/// Methods take `&self` so one signer can serve many appliances at once (the fleet simulator
/// shares one client across threads); implementations synchronise inside.
pub trait GrantSigner {
    /// Why a call failed: the transport's, or the signer's refusal with its reason. Refusals
    /// must name what was wrong (the HTTP status and the server's error code, or the store's
    /// rejection), never a bare number.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Sends a reload request (credit-module.md §3.2) and returns the signer's answer.
    fn reload(&self, request: &[u8]) -> Result<ReloadAnswer, Self::Error>;

    /// Asks again for the answer to a pending reload (server-api.md
    /// `GET /v1/reload/{module_id}/{n}`): the grant once the debit settled, else the
    /// provisional ack again.
    fn collect(&self, pending: &PendingReload) -> Result<ReloadAnswer, Self::Error>;

    /// Sends a completion ack (credit-module.md §3.5).
    fn complete(&self, ack: &[u8]) -> Result<CompletionAnswer, Self::Error>;
}

impl<S: GrantSigner + ?Sized> GrantSigner for &S {
    type Error = S::Error;

    fn reload(&self, request: &[u8]) -> Result<ReloadAnswer, Self::Error> {
        (**self).reload(request)
    }

    fn collect(&self, pending: &PendingReload) -> Result<ReloadAnswer, Self::Error> {
        (**self).collect(pending)
    }

    fn complete(&self, ack: &[u8]) -> Result<CompletionAnswer, Self::Error> {
        (**self).complete(ack)
    }
}
