//! The financial authority: who says whether an account may be debited for a reload.
//!
//! Two kinds exist:
//!
//! - the **built-in ledger** ([`Authority::BuiltIn`]): accounts with funds in the signer's own
//!   database. Its SQL lives in the store (`Store::debit`), because it must run *inside* the
//!   store's transaction: the debit row, S and the stored grant then commit together or not at
//!   all, which is the strongest guarantee there is;
//! - an **external authority** ([`FinancialAuthority`], e.g. the bank's [`Webhook`]): reached
//!   over the network, so it is called *outside* the store's transaction.
//!
//! # How the store must call an external authority (integration point)
//!
//! A network call of up to seconds must not run while the store holds a row lock (PostgreSQL)
//! or the write lock (SQLite): every other request to that module — or, on SQLite, to every
//! module — would wait behind the bank. And it does not need to, because the idempotency key
//! (module id, N) makes the debit safe to repeat:
//!
//! 1. transaction 1: load and lock the record, `classify_request`; a rejection is registered
//!    and committed as today; `Resend` answers the stored grant; `Fresh` with a
//!    `FreshDecision::Debit { amount }` ends the transaction *without changing anything*;
//! 2. no transaction: [`FinancialAuthority::debit`] with key (module id, N), the module's
//!    account and G = `amount`;
//!    - [`DebitAnswer::Unavailable`]: answer 503 and store nothing. The module retries the same
//!      request (same N), which hits the same idempotency key, so the bank debits at most once;
//! 3. transaction 2: load and lock the record again and `classify_request` again.
//!    - still `Fresh` with the same decision: `finish_fresh` with the answer's outcome, write
//!      the ledger row (module id, N, amount: a mirror of the bank's debit, unique on
//!      (module id, N)) and the record, commit, answer the grant;
//!    - now `Resend` (a concurrent request or another server process won the race and stored
//!      the grant): answer the stored grant. The bank saw the same key twice and debited once;
//!    - anything else (the operator changed the limits in between): answer 503 and store
//!      nothing; the retry asks again, and an authority that sees the same key with another
//!      amount answers a conflict, which is never taken for a debit.
//!
//! A crash between step 2 and the commit of step 3 leaves a debit at the bank without a stored
//! grant; the module's retry with the same N is answered by the bank's idempotent replay and
//! the grant is stored then. Reconciliation compares the bank's debits with the ledger rows by
//! key. **Never** is a grant built from anything but a confirmed [`DebitAnswer::Debited`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use simkit_core::credit::ModuleId;
use simkit_core::credit::server::DebitOutcome;

/// The idempotency key of a debit: one per (module id, N), so a retried request can never be
/// debited twice. Written `MODULEIDHEX:N`, e.g. `A001020304050607:42`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DebitKey {
    /// The module.
    pub module_id: ModuleId,
    /// The request's transaction number N.
    pub n: u32,
}

impl std::fmt::Display for DebitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", hex::encode_upper(self.module_id), self.n)
    }
}

/// One debit to ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebitRequest {
    /// Idempotency key.
    pub key: DebitKey,
    /// The account the module's reloads are paid from.
    pub account: String,
    /// G, the amount the policy decided (> 0).
    pub amount: u32,
}

/// What the authority answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DebitAnswer {
    /// The account was debited `amount` (confirmed; a repeated key confirms the first debit).
    Debited,
    /// Not enough funds: the module gets a MAC'd decline `03`.
    InsufficientFunds,
    /// The authority refused for another reason (account closed, fraud hold): decline `04`.
    Refused,
    /// Accepted but not settled yet (a slow bank): the signer answers a MAC'd provisional ack
    /// that opens the module's credit line, and asks again (same key) when the appliance
    /// collects the grant.
    Pending,
    /// No confirmed answer (timeouts, errors, a conflict): answer 503 and store nothing. The
    /// text says why, for the log.
    Unavailable(String),
}

impl DebitAnswer {
    /// The outcome to hand to `finish_fresh`, or `None` for [`DebitAnswer::Unavailable`] (no
    /// grant may be built).
    pub fn outcome(&self, amount: u32) -> Option<DebitOutcome> {
        match self {
            DebitAnswer::Debited => Some(DebitOutcome::Debited { amount }),
            DebitAnswer::InsufficientFunds => Some(DebitOutcome::InsufficientFunds),
            DebitAnswer::Refused => Some(DebitOutcome::Refused),
            DebitAnswer::Pending | DebitAnswer::Unavailable(_) => None,
        }
    }
}

/// An external financial authority. Called outside the store's transaction (see the module
/// documentation for the exact sequence and why). Blocking: the store calls it from its
/// blocking worker threads.
pub trait FinancialAuthority: Send + Sync + std::fmt::Debug {
    /// Debits `request.amount` from `request.account` once per `request.key`. A repeated key
    /// must give the first answer again and debit nothing more.
    fn debit(&self, request: &DebitRequest) -> DebitAnswer;
}

/// Which authority a store uses.
#[derive(Clone, Debug, Default)]
pub enum Authority {
    /// The store's own ledger, debited inside the store's transaction (`Store::debit`).
    #[default]
    BuiltIn,
    /// An external authority, called between two transactions.
    External(std::sync::Arc<dyn FinancialAuthority>),
}

/// How the [`Webhook`] reaches the bank and how hard it tries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `http://HOST:PORT/PATH`. Plain HTTP only: put a TLS-terminating proxy on loopback in
    /// front of an HTTPS endpoint (HTTPS in-process is not built yet).
    pub url: String,
    /// Bearer token sent as `Authorization: Bearer …`, if any.
    pub bearer_token: Option<String>,
    /// Connect, write and read timeout of one attempt.
    pub timeout: Duration,
    /// Attempts in all (≥ 1), each with the same idempotency key.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled each time up to [`WebhookConfig::max_backoff`].
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl WebhookConfig {
    /// Defaults for `url`: 2 s per attempt, 4 attempts, backoff 100 ms doubling up to 1 s
    /// (worst case about 9.7 s before [`DebitAnswer::Unavailable`]).
    pub fn new(url: &str) -> Self {
        WebhookConfig {
            url: url.to_owned(),
            bearer_token: None,
            timeout: Duration::from_secs(2),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        }
    }
}

/// Why a webhook URL is not usable.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Not `http://HOST[:PORT]/PATH`.
    #[error("webhook URL {url:?}: {why}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// The body the webhook POSTs (see `applet-spec/server-api.md`, "Financial authority webhook").
#[derive(Debug, Serialize)]
struct WireRequest<'a> {
    idempotency_key: String,
    module_id: String,
    n: u32,
    account: &'a str,
    amount: u32,
}

/// The bank's answer body.
#[derive(Debug, Deserialize)]
struct WireAnswer {
    idempotency_key: String,
    status: String,
}

/// One attempt's result.
enum Attempt {
    /// A final answer: stop.
    Final(DebitAnswer),
    /// Worth retrying with the same key; the text says what happened.
    Retry(String),
}

/// An external authority reached by an HTTP POST per debit (blocking, one connection per
/// attempt). See the module documentation and `applet-spec/server-api.md` for the contract.
#[derive(Debug)]
pub struct Webhook {
    config: WebhookConfig,
    host_header: String,
    addr: String,
    path: String,
}

impl Webhook {
    /// Checks the URL; nothing is connected yet.
    pub fn new(config: WebhookConfig) -> Result<Self, WebhookError> {
        let url = config.url.clone();
        let bad = |why| WebhookError::Url {
            url: url.clone(),
            why,
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains('@') {
            return Err(bad(
                "credentials in the URL are not supported; use the bearer token",
            ));
        }
        let addr = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| !p.contains(']'))
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Webhook {
            host_header: authority.to_owned(),
            addr,
            path: path.to_owned(),
            config,
        })
    }

    fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        self.addr
            .to_socket_addrs()
            .map(|a| a.collect())
            .map_err(|e| format!("resolving {}: {e}", self.addr))
    }

    /// One POST; never reports a debit without a 200 whose body names this key.
    fn attempt(&self, body: &[u8], key: &str) -> Attempt {
        let response = match self.post(body) {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(e),
        };
        let (status, payload) = response;
        match status {
            200 | 202 => match serde_json::from_slice::<WireAnswer>(&payload) {
                Ok(a) if a.idempotency_key != key => Attempt::Retry(format!(
                    "the answer is for key {:?}, not {key:?}",
                    a.idempotency_key
                )),
                Ok(a) => match a.status.as_str() {
                    "debited" => Attempt::Final(DebitAnswer::Debited),
                    "insufficient-funds" => Attempt::Final(DebitAnswer::InsufficientFunds),
                    "refused" => Attempt::Final(DebitAnswer::Refused),
                    "pending" => Attempt::Final(DebitAnswer::Pending),
                    other => Attempt::Final(DebitAnswer::Unavailable(format!(
                        "unknown status {other:?} in the answer"
                    ))),
                },
                Err(e) => Attempt::Retry(format!("unreadable answer: {e}")),
            },
            409 => Attempt::Final(DebitAnswer::Unavailable(format!(
                "the authority reports a conflict for key {key} (same key, other request): {}",
                String::from_utf8_lossy(&payload)
            ))),
            408 | 425 | 429 | 500..=599 => Attempt::Retry(format!("HTTP {status}")),
            other => Attempt::Final(DebitAnswer::Unavailable(format!(
                "HTTP {other} from the authority (not retried): {}",
                String::from_utf8_lossy(&payload)
            ))),
        }
    }

    /// Sends the POST and reads the whole answer (status, body).
    fn post(&self, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let t = self.config.timeout;
        let addrs = self.resolve()?;
        let mut last = format!("{} resolves to no address", self.addr);
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, t) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = format!("connecting to {a}: {e}"),
            }
        }
        let mut stream = stream.ok_or(last)?;
        let io = |e: std::io::Error| format!("talking to {}: {e}", self.addr);
        stream.set_read_timeout(Some(t)).map_err(io)?;
        stream.set_write_timeout(Some(t)).map_err(io)?;
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.path,
            self.host_header,
            body.len()
        );
        if let Some(token) = &self.config.bearer_token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(body).map_err(io)?;
        stream.flush().map_err(io)?;
        read_response(BufReader::new(stream)).map_err(io)
    }
}

const MAX_ANSWER: u64 = 64 * 1024;

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// Reads an HTTP/1.1 response: status line, headers, then a body by Content-Length, chunked,
/// or up to the end of the connection (at most 64 KiB).
fn read_response(mut r: impl BufRead) -> std::io::Result<(u16, Vec<u8>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| line.starts_with("HTTP/1."))
        .ok_or_else(|| invalid("not an HTTP/1.x status line"))?;
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(invalid("the answer ends inside its headers"));
        }
        let h = line.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| invalid("bad Content-Length"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                break;
            }
            if body.len() as u64 + size > MAX_ANSWER {
                return Err(invalid("answer too long"));
            }
            (&mut r).take(size).read_to_end(&mut body)?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        if n > MAX_ANSWER {
            return Err(invalid("answer too long"));
        }
        (&mut r).take(n).read_to_end(&mut body)?;
        if body.len() as u64 != n {
            return Err(invalid("the answer is shorter than its Content-Length"));
        }
    } else {
        r.take(MAX_ANSWER).read_to_end(&mut body)?;
    }
    Ok((status, body))
}

impl FinancialAuthority for Webhook {
    fn debit(&self, request: &DebitRequest) -> DebitAnswer {
        let key = request.key.to_string();
        let wire = WireRequest {
            idempotency_key: key.clone(),
            module_id: hex::encode_upper(request.key.module_id),
            n: request.key.n,
            account: &request.account,
            amount: request.amount,
        };
        let body = match serde_json::to_vec(&wire) {
            Ok(b) => b,
            Err(e) => return DebitAnswer::Unavailable(format!("encoding the request: {e}")),
        };
        let attempts = self.config.max_attempts.max(1);
        let mut wait = self.config.initial_backoff;
        let mut last = String::new();
        for i in 1..=attempts {
            match self.attempt(&body, &key) {
                Attempt::Final(answer) => return answer,
                Attempt::Retry(why) => last = why,
            }
            if i < attempts {
                std::thread::sleep(wait);
                wait = (wait * 2).min(self.config.max_backoff);
            }
        }
        DebitAnswer::Unavailable(format!(
            "no confirmed answer for key {key} after {attempts} attempts; last: {last}"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls() {
        let w = Webhook::new(WebhookConfig::new("http://127.0.0.1:9/debit")).unwrap();
        assert_eq!(
            (w.addr.as_str(), w.path.as_str()),
            ("127.0.0.1:9", "/debit")
        );
        let w = Webhook::new(WebhookConfig::new("http://bank.example")).unwrap();
        assert_eq!((w.addr.as_str(), w.path.as_str()), ("bank.example:80", "/"));
        for bad in [
            "https://bank/x",
            "bank:80/x",
            "http:///x",
            "http://u:p@bank/x",
        ] {
            assert!(Webhook::new(WebhookConfig::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_parse() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(read_response(&r[..]).unwrap(), (200, b"{}".to_vec()));
        let r =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
        assert_eq!(read_response(&r[..]).unwrap(), (200, b"abc".to_vec()));
        let r = b"HTTP/1.0 503 Busy\r\n\r\nlater";
        assert_eq!(read_response(&r[..]).unwrap(), (503, b"later".to_vec()));
        assert!(read_response(&b"SMTP 200\r\n\r\n"[..]).is_err());
        assert!(read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"[..]).is_err());
    }

    #[test]
    fn key_text_and_outcomes() {
        let k = DebitKey {
            module_id: [0xA0, 1, 2, 3, 4, 5, 6, 7],
            n: 42,
        };
        assert_eq!(k.to_string(), "A001020304050607:42");
        assert_eq!(
            DebitAnswer::Debited.outcome(5),
            Some(DebitOutcome::Debited { amount: 5 })
        );
        assert_eq!(DebitAnswer::Unavailable("x".into()).outcome(5), None);
    }
}
