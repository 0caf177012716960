//! The webhook financial authority against a small local bank (axum on 127.0.0.1:0) that can be
//! told to time out, fail, answer for another key or twice: never a debit reported without a
//! confirmed answer, never two debits for one key, `Unavailable` after bounded retries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use simkit_server::{
    DebitAnswer, DebitKey, DebitRequest, FinancialAuthority, Webhook, WebhookConfig,
};

/// What the bank does with the next attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Normal,
    /// Debit, then answer too late (the client has timed out: the answer is lost).
    DebitThenStall,
    /// Answer 500 without debiting.
    Fail,
    /// Stall without debiting.
    Stall,
    /// Answer 200 naming another idempotency key.
    WrongKey,
    /// Answer 400.
    BadRequest,
}

#[derive(Default)]
struct Bank {
    /// Modes for the next attempts, in order; `Normal` once empty.
    script: Vec<Mode>,
    balances: HashMap<String, i64>,
    /// key → (account, amount, status answered)
    debits: HashMap<String, (String, u32, String)>,
    attempts: Vec<Value>,
    debit_count: u32,
    auth: Vec<Option<String>>,
}

type Shared = Arc<Mutex<Bank>>;

/// The client's per-attempt timeout. Generous, because tests count attempts: an answer that
/// came late on a loaded CI machine would be retried and counted once too often.
const TIMEOUT: Duration = Duration::from_secs(1);
/// A stalled answer comes well after the client gave up on it.
const STALL: Duration = Duration::from_secs(3);

async fn debit(
    State(bank): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let mode = {
        let mut b = bank.lock().unwrap();
        b.attempts.push(body.clone());
        b.auth.push(
            headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned()),
        );
        if b.script.is_empty() {
            Mode::Normal
        } else {
            b.script.remove(0)
        }
    };
    let key = body["idempotency_key"].as_str().unwrap().to_owned();
    match mode {
        Mode::Fail => return (StatusCode::INTERNAL_SERVER_ERROR, "down").into_response(),
        Mode::Stall => {
            tokio::time::sleep(STALL).await;
            return (StatusCode::INTERNAL_SERVER_ERROR, "late").into_response();
        }
        Mode::WrongKey => {
            return Json(json!({"idempotency_key": "FFFFFFFFFFFFFFFF:1", "status": "debited"}))
                .into_response();
        }
        Mode::BadRequest => return (StatusCode::BAD_REQUEST, "what?").into_response(),
        Mode::Normal | Mode::DebitThenStall => {}
    }
    let account = body["account"].as_str().unwrap().to_owned();
    let amount = u32::try_from(body["amount"].as_u64().unwrap()).unwrap();
    let answer = {
        let mut b = bank.lock().unwrap();
        match b.debits.get(&key) {
            Some((a, m, status)) if *a == account && *m == amount => status.clone(),
            Some(_) => {
                return (StatusCode::CONFLICT, "key reused with another request").into_response();
            }
            None => {
                let balance = b.balances.get(&account).copied().unwrap_or(0);
                let status = if balance >= i64::from(amount) {
                    b.balances
                        .insert(account.clone(), balance - i64::from(amount));
                    b.debit_count += 1;
                    "debited"
                } else {
                    "insufficient-funds"
                };
                b.debits
                    .insert(key.clone(), (account, amount, status.to_owned()));
                status.to_owned()
            }
        }
    };
    if mode == Mode::DebitThenStall {
        tokio::time::sleep(STALL).await;
    }
    Json(json!({"idempotency_key": key, "status": answer})).into_response()
}

struct TestBank {
    bank: Shared,
    url: String,
    _runtime: tokio::runtime::Runtime,
}

fn bank(balance: i64) -> TestBank {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bank: Shared = Arc::default();
    bank.lock().unwrap().balances.insert("acct".into(), balance);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/v1/debit", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/v1/debit", post(debit))
        .with_state(bank.clone());
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestBank {
        bank,
        url,
        _runtime: runtime,
    }
}

fn webhook(url: &str, attempts: u32) -> Webhook {
    Webhook::new(WebhookConfig {
        timeout: TIMEOUT,
        max_attempts: attempts,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        bearer_token: Some("bank-token".into()),
        ..WebhookConfig::new(url)
    })
    .unwrap()
}

fn request(n: u32, amount: u32) -> DebitRequest {
    DebitRequest {
        key: DebitKey {
            module_id: [0xA0, 1, 2, 3, 4, 5, 6, 7],
            n,
        },
        account: "acct".into(),
        amount,
    }
}

impl TestBank {
    fn script(&self, modes: &[Mode]) {
        self.bank.lock().unwrap().script = modes.to_vec();
    }
    fn attempts(&self) -> Vec<Value> {
        self.bank.lock().unwrap().attempts.clone()
    }
    fn debit_count(&self) -> u32 {
        self.bank.lock().unwrap().debit_count
    }
    fn balance(&self) -> i64 {
        self.bank.lock().unwrap().balances["acct"]
    }
}

#[test]
fn debits_once_and_sends_the_documented_body() {
    let b = bank(1_000);
    let w = webhook(&b.url, 3);
    assert_eq!(w.debit(&request(42, 300)), DebitAnswer::Debited);
    assert_eq!(b.balance(), 700);
    let sent = b.attempts();
    assert_eq!(
        sent,
        vec![json!({
            "idempotency_key": "A001020304050607:42",
            "module_id": "A001020304050607",
            "n": 42,
            "account": "acct",
            "amount": 300
        })]
    );
    assert_eq!(
        b.bank.lock().unwrap().auth,
        vec![Some("Bearer bank-token".to_owned())]
    );
    // The module retries the same N (lost grant): same key, the bank replays, no second debit.
    assert_eq!(w.debit(&request(42, 300)), DebitAnswer::Debited);
    assert_eq!(b.debit_count(), 1);
    assert_eq!(b.balance(), 700);
    // Next N: a new debit; then not enough left.
    assert_eq!(w.debit(&request(43, 600)), DebitAnswer::Debited);
    assert_eq!(w.debit(&request(44, 200)), DebitAnswer::InsufficientFunds);
    assert_eq!(b.balance(), 100);
    assert_eq!(b.debit_count(), 2);
}

#[test]
fn a_lost_answer_is_retried_with_the_same_key_and_debits_once() {
    let b = bank(1_000);
    b.script(&[Mode::DebitThenStall, Mode::Fail]);
    let w = webhook(&b.url, 4);
    assert_eq!(w.debit(&request(7, 250)), DebitAnswer::Debited);
    let sent = b.attempts();
    assert_eq!(sent.len(), 3, "stalled, failed, answered: {sent:?}");
    assert!(
        sent.iter().all(|a| a == &sent[0]),
        "same key and body each time"
    );
    assert_eq!(b.debit_count(), 1);
    assert_eq!(b.balance(), 750);
}

#[test]
fn no_confirmed_answer_is_unavailable_after_bounded_retries() {
    let b = bank(1_000);
    b.script(&[Mode::Stall, Mode::Fail, Mode::Stall]);
    let w = webhook(&b.url, 3);
    match w.debit(&request(9, 100)) {
        DebitAnswer::Unavailable(why) => {
            assert!(why.contains("after 3 attempts"), "{why}");
            assert!(why.contains("A001020304050607:9"), "{why}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(b.attempts().len(), 3);
    assert_eq!(b.debit_count(), 0);
    // The module's retry with the same N reaches the same key, which now goes through.
    assert_eq!(w.debit(&request(9, 100)), DebitAnswer::Debited);
    assert_eq!(b.debit_count(), 1);
}

#[test]
fn an_answer_for_another_key_is_never_taken_for_a_debit() {
    let b = bank(1_000);
    b.script(&[Mode::WrongKey, Mode::WrongKey]);
    let w = webhook(&b.url, 2);
    assert!(matches!(
        w.debit(&request(3, 100)),
        DebitAnswer::Unavailable(_)
    ));
    assert_eq!(b.debit_count(), 0);
}

#[test]
fn conflicts_and_client_errors_are_not_retried() {
    let b = bank(1_000);
    let w = webhook(&b.url, 4);
    assert_eq!(w.debit(&request(5, 100)), DebitAnswer::Debited);
    // Same key, another amount (the limits changed between two tries): a conflict, not a debit.
    match w.debit(&request(5, 200)) {
        DebitAnswer::Unavailable(why) => assert!(why.contains("conflict"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(b.attempts().len(), 2, "409 is final");
    b.script(&[Mode::BadRequest]);
    match w.debit(&request(6, 100)) {
        DebitAnswer::Unavailable(why) => assert!(why.contains("HTTP 400"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(b.attempts().len(), 3, "400 is final");
    assert_eq!(b.debit_count(), 1);
}

#[test]
fn an_unreachable_bank_is_unavailable() {
    // Bind a port, then free it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = webhook(&format!("http://127.0.0.1:{port}/v1/debit"), 2);
    match w.debit(&request(1, 100)) {
        DebitAnswer::Unavailable(why) => assert!(why.contains("connecting to"), "{why}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
