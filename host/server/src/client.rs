//! The typed HTTP client of a running signer (`simkit server run`, applet-spec/server-api.md):
//! the appliance's three calls as a [`GrantSigner`], and the admin calls the load tools (bench,
//! crash test, fleet simulator) make.
//!
//! Error answers keep what the server said: the HTTP status and its JSON `{"error", "code"}`
//! ([`ClientError::Status`]). Transport failures keep their source.
//!
//! Plain `http://` only: TLS is not built into simkit yet. Put the signer behind a
//! TLS-terminating proxy, or reach it over a trusted link. This module must not hold policy:
//! it moves bytes and names what came back.

use std::io::Read;
use std::time::Duration;

use simkit_core::credit::ModuleId;
use simkit_core::credit::signer::{CompletionAnswer, GrantSigner, PendingReload, ReloadAnswer};

/// Largest protocol or error body the signer sends back (grants are 37 bytes; JSON errors are
/// short).
pub const MAX_BODY: u64 = 64 * 1024;

/// Largest admin answer read (the ledger of a long bench run is big).
pub const MAX_ADMIN_BODY: u64 = 1 << 30;

/// Why a call to the signer failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is `https://`: refused, TLS is not built in.
    #[error(
        "{url}: https is not built into this binary yet; use http:// on a trusted link or a TLS-terminating proxy"
    )]
    Https {
        /// The URL given.
        url: String,
    },
    /// The URL is not `http://`.
    #[error("{url}: expected an http:// URL")]
    NotHttp {
        /// The URL given.
        url: String,
    },
    /// The signer answered with an HTTP error status.
    #[error("the signer at {url} answered HTTP {status}: {}", detail(.error, .code, .body))]
    Status {
        /// The URL called.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's `error` text, when the body was its JSON error.
        error: Option<String>,
        /// The server's `code`, when the body was its JSON error.
        code: Option<String>,
        /// The body as text, when it was not the JSON error.
        body: String,
    },
    /// No HTTP answer (refused, reset, timeout), or the answer could not be read.
    #[error("reaching the signer at {url}")]
    Transport {
        /// The URL called.
        url: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An answer the API does not define (server-api.md), named.
    #[error("{0}")]
    Unexpected(String),
}

fn detail(error: &Option<String>, code: &Option<String>, body: &str) -> String {
    match (error, code) {
        (Some(e), Some(c)) => format!("{e} ({c})"),
        _ => body.to_owned(),
    }
}

impl ClientError {
    /// The HTTP status, for an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The server's error code, for an error answer that carried one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// A short kind for counting: `transport`, or `http-409-out-of-window`
    /// (`http-STATUS-unknown` without a code), or `unexpected`.
    pub fn kind(&self) -> String {
        match self {
            ClientError::Status { status, code, .. } => {
                format!("http-{status}-{}", code.as_deref().unwrap_or("unknown"))
            }
            ClientError::Transport { .. } => "transport".to_owned(),
            ClientError::Https { .. } | ClientError::NotHttp { .. } => "url".to_owned(),
            ClientError::Unexpected(_) => "unexpected".to_owned(),
        }
    }

    /// Whether sending the same message later can succeed (no answer, or a 5xx).
    pub fn retryable(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// A signer at a base URL, with an admin token when admin calls are made.
///
/// One ureq agent (a pool of kept-alive connections) inside; `&self` calls may come from many
/// threads.
#[derive(Clone)]
pub struct SignerClient {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl std::fmt::Debug for SignerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never printed.
        f.debug_struct("SignerClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "REDACTED"))
            .finish()
    }
}

/// The response headers the appliance uses.
struct Headers {
    location: Option<String>,
    retry_after: Option<u64>,
}

impl SignerClient {
    /// A signer at `url` (e.g. `http://127.0.0.1:8080`), with the connect timeout 10 s and the
    /// call timeout 60 s of an appliance.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        Self::with_timeouts(url, Duration::from_secs(10), Duration::from_secs(60))
    }

    /// A signer at `url` with the given connect and whole-call timeouts.
    pub fn with_timeouts(
        url: &str,
        connect: Duration,
        call: Duration,
    ) -> Result<Self, ClientError> {
        if url.starts_with("https://") {
            return Err(ClientError::Https {
                url: url.to_owned(),
            });
        }
        if !url.starts_with("http://") {
            return Err(ClientError::NotHttp {
                url: url.to_owned(),
            });
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(connect)
            .timeout(call)
            .build();
        Ok(SignerClient {
            base: url.trim_end_matches('/').to_owned(),
            agent,
            token: None,
        })
    }

    /// The same signer, with the admin bearer token sent on admin calls.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The base URL (no trailing `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    fn finish(
        &self,
        url: &str,
        sent: Result<ureq::Response, ureq::Error>,
        limit: u64,
    ) -> Result<(u16, Headers, Vec<u8>), ClientError> {
        match sent {
            Ok(resp) => {
                let status = resp.status();
                let headers = Headers {
                    location: resp.header("Location").map(str::to_owned),
                    retry_after: resp
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<u64>().ok()),
                };
                let body = read_body(resp, limit).map_err(|e| ClientError::Transport {
                    url: url.to_owned(),
                    source: Box::new(e),
                })?;
                Ok((status, headers, body))
            }
            Err(ureq::Error::Status(status, resp)) => {
                let body = read_body(resp, MAX_BODY).unwrap_or_default();
                let json = serde_json::from_slice::<serde_json::Value>(&body).ok();
                let field = |k: &str| {
                    json.as_ref()
                        .and_then(|v| v.get(k)?.as_str().map(str::to_owned))
                };
                Err(ClientError::Status {
                    url: url.to_owned(),
                    status,
                    error: field("error"),
                    code: field("code"),
                    body: String::from_utf8_lossy(&body).into_owned(),
                })
            }
            Err(e) => Err(ClientError::Transport {
                url: url.to_owned(),
                source: Box::new(e),
            }),
        }
    }

    /// POSTs a protocol message (`application/octet-stream`) to `path`; returns the status and
    /// body of a success answer.
    pub fn post_bytes(&self, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), ClientError> {
        let (status, _, body) = self.octets(path, Some(body))?;
        Ok((status, body))
    }

    fn octets(
        &self,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<(u16, Headers, Vec<u8>), ClientError> {
        let url = format!("{}{path}", self.base);
        let sent = match body {
            Some(b) => self
                .agent
                .post(&url)
                .set("Content-Type", "application/octet-stream")
                .send_bytes(b),
            None => self.agent.get(&url).call(),
        };
        self.finish(&url, sent, MAX_BODY)
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token.as_deref().unwrap_or(""))
    }

    /// POSTs JSON to an admin endpoint with the bearer token; returns the answer's body.
    pub fn post_admin(&self, path: &str, body: &serde_json::Value) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}{path}", self.base);
        let sent = self
            .agent
            .post(&url)
            .set("Authorization", &self.bearer())
            .set("Content-Type", "application/json")
            .send_string(&body.to_string());
        self.finish(&url, sent, MAX_BODY).map(|(_, _, b)| b)
    }

    /// GETs an admin endpoint with the bearer token and parses its JSON (up to
    /// [`MAX_ADMIN_BODY`] bytes).
    pub fn get_admin(&self, path: &str) -> Result<serde_json::Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let sent = self
            .agent
            .get(&url)
            .set("Authorization", &self.bearer())
            .call();
        let (_, _, body) = self.finish(&url, sent, MAX_ADMIN_BODY)?;
        serde_json::from_slice(&body)
            .map_err(|e| ClientError::Unexpected(format!("GET {path}: not JSON: {e}")))
    }

    /// GETs an admin endpoint and parses its JSON as `T` (a typed row list such as
    /// `Vec<LedgerEntry>`).
    pub fn get_admin_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, ClientError> {
        let value = self.get_admin(path)?;
        serde_json::from_value(value)
            .map_err(|e| ClientError::Unexpected(format!("GET {path}: unexpected JSON: {e}")))
    }

    fn reload_answer(
        status: u16,
        headers: Headers,
        body: Vec<u8>,
    ) -> Result<ReloadAnswer, ClientError> {
        match status {
            // The HTTP API does not say whether a 200 was fresh or resent.
            200 => Ok(ReloadAnswer::Grant {
                grant: body,
                resent: false,
            }),
            202 => {
                let location = headers.location.ok_or_else(|| {
                    ClientError::Unexpected(
                        "the signer answered 202 (debit pending) without a Location".to_owned(),
                    )
                })?;
                let (module_id, n) = parse_location(&location).ok_or_else(|| {
                    ClientError::Unexpected(format!(
                        "the signer gave an unexpected location to poll: {location:?}"
                    ))
                })?;
                Ok(ReloadAnswer::Pending(PendingReload {
                    provisional_ack: body,
                    module_id,
                    n,
                    retry_after: headers.retry_after.map(Duration::from_secs),
                }))
            }
            other => Err(ClientError::Unexpected(format!(
                "the signer answered an unexpected HTTP {other} to a reload request"
            ))),
        }
    }
}

/// The path a pending reload is collected from (server-api.md): `/v1/reload/{ID}/{n}`, the id
/// upper-case hex.
pub fn location(module_id: &ModuleId, n: u32) -> String {
    format!("/v1/reload/{}/{n}", hex::encode_upper(module_id))
}

/// Parses a `Location` of a pending answer: `/v1/reload/{16 hex digits}/{decimal n}`.
pub fn parse_location(location: &str) -> Option<(ModuleId, u32)> {
    let rest = location.strip_prefix("/v1/reload/")?;
    let (id, n) = rest.split_once('/')?;
    let mut module_id = [0u8; 8];
    hex::decode_to_slice(id, &mut module_id).ok()?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((module_id, n.parse().ok()?))
}

impl GrantSigner for SignerClient {
    type Error = ClientError;

    /// `POST /v1/reload`.
    fn reload(&self, request: &[u8]) -> Result<ReloadAnswer, ClientError> {
        let (status, headers, body) = self.octets("/v1/reload", Some(request))?;
        Self::reload_answer(status, headers, body)
    }

    /// `GET /v1/reload/{module_id}/{n}`.
    fn collect(&self, pending: &PendingReload) -> Result<ReloadAnswer, ClientError> {
        let path = location(&pending.module_id, pending.n);
        let (status, headers, body) = self.octets(&path, None)?;
        Self::reload_answer(status, headers, body)
    }

    /// `POST /v1/completion`.
    fn complete(&self, ack: &[u8]) -> Result<CompletionAnswer, ClientError> {
        let (_, body) = self.post_bytes("/v1/completion", ack)?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            ClientError::Unexpected("the signer's completion answer is not JSON".to_owned())
        })?;
        match v.get("status").and_then(|s| s.as_str()) {
            Some("accepted") => Ok(CompletionAnswer::Accepted),
            Some("already-accepted") => Ok(CompletionAnswer::AlreadyAccepted),
            other => Err(ClientError::Unexpected(format!(
                "the signer answered the completion ack with status {other:?}"
            ))),
        }
    }
}

fn read_body(resp: ureq::Response, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    resp.into_reader().take(limit).read_to_end(&mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_other_than_http_are_refused_by_name() {
        let e = SignerClient::new("https://signer.example").unwrap_err();
        assert!(matches!(e, ClientError::Https { .. }));
        assert_eq!(
            e.to_string(),
            "https://signer.example: https is not built into this binary yet; use http:// on a trusted link or a TLS-terminating proxy"
        );
        let e = SignerClient::new("ftp://x").unwrap_err();
        assert_eq!(e.to_string(), "ftp://x: expected an http:// URL");
        assert_eq!(
            SignerClient::new("http://h:1/").unwrap().base(),
            "http://h:1"
        );
    }

    #[test]
    fn locations_round_trip_and_bad_ones_are_refused() {
        let id = [0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF];
        assert_eq!(location(&id, 7), "/v1/reload/0123456789ABCDEF/7");
        assert_eq!(
            parse_location("/v1/reload/0123456789ABCDEF/7"),
            Some((id, 7))
        );
        for bad in [
            "/v1/reload/0123456789ABCDEF/",
            "/v1/reload/0123456789ABCDEF/-1",
            "/v1/reload/0123456789ABCDEF/4294967296",
            "/v1/reload/0123/7",
            "/v1/other/0123456789ABCDEF/7",
            "/v1/reload/0123456789ABCDEF/7/x",
        ] {
            assert_eq!(parse_location(bad), None, "{bad}");
        }
    }

    #[test]
    fn error_kinds_and_messages_keep_the_servers_code() {
        let e = ClientError::Status {
            url: "http://h/v1/reload".into(),
            status: 409,
            error: Some("out of window".into()),
            code: Some("out-of-window".into()),
            body: String::new(),
        };
        assert_eq!(e.kind(), "http-409-out-of-window");
        assert_eq!(e.code(), Some("out-of-window"));
        assert_eq!(e.status(), Some(409));
        assert!(!e.retryable());
        assert_eq!(
            e.to_string(),
            "the signer at http://h/v1/reload answered HTTP 409: out of window (out-of-window)"
        );
        let e = ClientError::Status {
            url: "http://h/x".into(),
            status: 503,
            error: None,
            code: None,
            body: "busy".into(),
        };
        assert_eq!(e.kind(), "http-503-unknown");
        assert!(e.retryable());
        assert_eq!(
            e.to_string(),
            "the signer at http://h/x answered HTTP 503: busy"
        );
    }
}
