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
        let url = format!("{}{path}", self.base);
        match self
            .agent
            .post(&url)
            .set("Content-Type", "application/octet-stream")
            .send_bytes(body)
        {
            Ok(resp) => read_body(resp),
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

    /// `POST /v1/reload`: the grant for a request (a fresh one, or the stored one resent).
    pub(crate) fn reload(&self, request: &[u8]) -> Result<Vec<u8>> {
        self.post("/v1/reload", request)
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

fn read_body(resp: ureq::Response) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    resp.into_reader().take(MAX_BODY).read_to_end(&mut body)?;
    Ok(body)
}
