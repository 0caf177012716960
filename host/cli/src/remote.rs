//! The network grant signer as the appliance sees it: `simkit credit reload --server URL` posts
//! the card's messages to a running `simkit serve` (applet-spec/server-api.md) and hands back its
//! answers. Error bodies are the server's JSON `{"error", "code"}`; they reach the user with the
//! HTTP status.
//!
//! Plain `http://` only: TLS is not built into this binary yet. Put the signer behind a
//! TLS-terminating proxy on the network, or reach it over a trusted link.

use std::io::Read;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// What the signer said to a completion ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompletionAnswer {
    /// Accepted now: this finished a reload.
    Accepted,
    /// Accepted before: nothing new.
    AlreadyAccepted,
}

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

/// A `simkit serve` at a base URL.
pub(crate) struct RemoteSigner {
    base: String,
    agent: ureq::Agent,
}

/// Largest body the signer sends back (grants are 37 bytes; JSON errors are short).
const MAX_BODY: u64 = 64 * 1024;

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
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build();
        Ok(RemoteSigner {
            base: url.trim_end_matches('/').to_owned(),
            agent,
        })
    }

    fn post(&self, path: &str, body: &[u8]) -> Result<Vec<u8>> {
        let (_, _, body) = self.exchange(path, Some(body))?;
        Ok(body)
    }

    /// One request: a POST with `body`, or a GET. Returns the HTTP status, the response (for its
    /// headers) and the body; HTTP errors become the server's JSON error in the message.
    fn exchange(&self, path: &str, body: Option<&[u8]>) -> Result<(u16, Headers, Vec<u8>)> {
        let url = format!("{}{path}", self.base);
        let sent = match body {
            Some(b) => self
                .agent
                .post(&url)
                .set("Content-Type", "application/octet-stream")
                .send_bytes(b),
            None => self.agent.get(&url).call(),
        };
        match sent {
            Ok(resp) => {
                let status = resp.status();
                let headers = Headers {
                    location: resp.header("Location").map(str::to_owned),
                    retry_after: resp
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<u64>().ok()),
                };
                Ok((status, headers, read_body(resp)?))
            }
            Err(ureq::Error::Status(code, resp)) => {
                let body = read_body(resp).unwrap_or_default();
                let detail = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| {
                        Some(format!(
                            "{} ({})",
                            v.get("error")?.as_str()?,
                            v.get("code")?.as_str()?
                        ))
                    })
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
                bail!("the signer at {url} answered HTTP {code}: {detail}")
            }
            Err(e) => Err(e).with_context(|| format!("reaching the signer at {url}")),
        }
    }

    /// `POST /v1/reload`: the grant for a request (a fresh one, or the stored one resent), or a
    /// provisional ack while the debit is pending.
    pub(crate) fn reload(&self, request: &[u8]) -> Result<ReloadAnswer> {
        let (status, headers, body) = self.exchange("/v1/reload", Some(request))?;
        Self::reload_answer(status, headers, body)
    }

    /// `GET /v1/reload/{module_id}/{n}` (the `Location` of a pending answer): the grant once the
    /// debit is settled, the provisional ack again while it is pending.
    pub(crate) fn poll(&self, location: &str) -> Result<ReloadAnswer> {
        if !location.starts_with("/v1/reload/") {
            bail!("the signer gave an unexpected location to poll: {location:?}");
        }
        let (status, headers, body) = self.exchange(location, None)?;
        Self::reload_answer(status, headers, body)
    }

    fn reload_answer(status: u16, headers: Headers, body: Vec<u8>) -> Result<ReloadAnswer> {
        match status {
            200 => Ok(ReloadAnswer::Grant(body)),
            202 => Ok(ReloadAnswer::Pending {
                provisional_ack: body,
                location: headers
                    .location
                    .context("the signer answered 202 (debit pending) without a Location")?,
                retry_after: Duration::from_secs(headers.retry_after.unwrap_or(1).clamp(1, 60)),
            }),
            other => bail!("the signer answered an unexpected HTTP {other} to a reload request"),
        }
    }

    /// `POST /v1/completion`.
    pub(crate) fn completion(&self, ack: &[u8]) -> Result<CompletionAnswer> {
        let body = self.post("/v1/completion", ack)?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).context("the signer's completion answer is not JSON")?;
        match v.get("status").and_then(|s| s.as_str()) {
            Some("accepted") => Ok(CompletionAnswer::Accepted),
            Some("already-accepted") => Ok(CompletionAnswer::AlreadyAccepted),
            other => bail!("the signer answered the completion ack with status {other:?}"),
        }
    }
}

/// The response headers the appliance uses.
struct Headers {
    location: Option<String>,
    retry_after: Option<u64>,
}

fn read_body(resp: ureq::Response) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    resp.into_reader().take(MAX_BODY).read_to_end(&mut body)?;
    Ok(body)
}
