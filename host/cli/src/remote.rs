//! The network grant signer as `simkit credit reload --server URL` sees it: a thin wrapper over
//! [`simkit_server::client::SignerClient`] (the one typed client of applet-spec/server-api.md)
//! that keeps the answer shape the reload command polls with (a `Location` and a clamped
//! `Retry-After`). Error bodies are the server's JSON `{"error", "code"}`; they reach the user
//! with the HTTP status.
//!
//! Plain `http://` only: TLS is not built into this binary yet. Put the signer behind a
//! TLS-terminating proxy on the network, or reach it over a trusted link.

use std::time::Duration;

use anyhow::{Result, bail};
use simkit_core::credit::signer::{self, GrantSigner, PendingReload};
use simkit_server::client::{self, SignerClient};

pub(crate) use simkit_core::credit::signer::CompletionAnswer;

/// What the signer answered to a reload request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReloadAnswer {
    /// `200`: the grant (granted or declined), fresh or the stored one resent.
    Grant(Vec<u8>),
    /// `202`: the debit is still pending at the financial authority. The body is a MAC'd
    /// provisional ack for the request (applet-spec/credit-module.md §3.4) and `location` the
    /// path to collect the grant from (`GET /v1/reload/{module_id}/{n}`).
    Pending {
        /// The provisional ack message bytes.
        provisional_ack: Vec<u8>,
        /// Where to poll (a path on the same signer).
        location: String,
        /// How long the signer asks us to wait before polling.
        retry_after: Duration,
    },
}

impl From<signer::ReloadAnswer> for ReloadAnswer {
    fn from(a: signer::ReloadAnswer) -> Self {
        match a {
            signer::ReloadAnswer::Grant { grant, .. } => ReloadAnswer::Grant(grant),
            signer::ReloadAnswer::Pending(p) => ReloadAnswer::Pending {
                location: client::location(&p.module_id, p.n),
                retry_after: p
                    .retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .clamp(Duration::from_secs(1), Duration::from_secs(60)),
                provisional_ack: p.provisional_ack,
            },
        }
    }
}

/// A `simkit server run` at a base URL.
pub(crate) struct RemoteSigner {
    client: SignerClient,
}

impl RemoteSigner {
    /// A signer at `url` (e.g. `http://127.0.0.1:8080`).
    pub(crate) fn new(url: &str) -> Result<Self> {
        if url.starts_with("https://") {
            bail!(
                "--server {url}: https is not built into this binary yet; use http:// on a trusted link or a TLS-terminating proxy"
            );
        }
        if !url.starts_with("http://") {
            bail!("--server {url}: expected an http:// URL");
        }
        Ok(RemoteSigner {
            client: SignerClient::new(url)?,
        })
    }

    /// `POST /v1/reload`: the grant for a request (a fresh one, or the stored one resent), or a
    /// provisional ack while the debit is pending.
    pub(crate) fn reload(&self, request: &[u8]) -> Result<ReloadAnswer> {
        Ok(self.client.reload(request)?.into())
    }

    /// `GET /v1/reload/{module_id}/{n}` (the `Location` of a pending answer): the grant once the
    /// debit is settled, the provisional ack again while it is pending.
    pub(crate) fn poll(&self, location: &str) -> Result<ReloadAnswer> {
        let Some((module_id, n)) = client::parse_location(location) else {
            bail!("the signer gave an unexpected location to poll: {location:?}");
        };
        let pending = PendingReload {
            provisional_ack: Vec::new(),
            module_id,
            n,
            retry_after: None,
        };
        Ok(self.client.collect(&pending)?.into())
    }

    /// `POST /v1/completion`.
    pub(crate) fn completion(&self, ack: &[u8]) -> Result<CompletionAnswer> {
        Ok(self.client.complete(ack)?)
    }
}
