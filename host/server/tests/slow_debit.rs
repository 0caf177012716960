//! An external financial authority in the store's reload flow: the authority is asked between
//! two transactions; a slow bank ("pending") gets the module a MAC'd provisional ack (HTTP 202)
//! and the appliance collects the grant later with `GET /v1/reload/{module_id}/{n}`; an
//! unavailable bank stores nothing (503); every answer is keyed (module id, N) so the bank is
//! asked again with the same key and never debits twice. Both with a scripted in-process
//! authority and with the real HTTP webhook against a local bank.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use simkit_core::credit::commands::{InitialCounters, PersonalisationData};
use simkit_core::credit::message::{GrantStatus, ProvisionalAck, ReloadGrant};
use simkit_core::credit::module::Module;
use simkit_core::credit::registration::Registration;
use simkit_core::credit::{DeclineReason, ModuleId};
use simkit_core::crypto::Profile;
use simkit_core::crypto::kdf::{ModuleKeys, derive_module_keys};
use simkit_core::crypto::key::SecretKey;
use simkit_core::vectors::{EXAMPLE_LIMITS, example_master};
use simkit_server::{
    AppState, Authority, DebitAnswer, DebitRequest, FinancialAuthority, SoftwareKey, Store,
    Webhook, WebhookConfig, router,
};
use tower::ServiceExt;

const TOKEN: &str = "test-admin-token";
const PROFILE: Profile = Profile::AesCmac;
const ID: ModuleId = [0xC0, 1, 2, 3, 4, 5, 6, 7];

/// An authority that answers from a script (then `Debited`), debits each key at most once and
/// remembers every key it was asked.
#[derive(Debug, Default)]
struct Scripted {
    script: Mutex<Vec<DebitAnswer>>,
    asked: Mutex<Vec<String>>,
    debited: Mutex<HashMap<String, u32>>,
}

impl FinancialAuthority for Scripted {
    fn debit(&self, request: &DebitRequest) -> DebitAnswer {
        let key = request.key.to_string();
        self.asked.lock().unwrap().push(key.clone());
        let mut script = self.script.lock().unwrap();
        let answer = if script.is_empty() {
            DebitAnswer::Debited
        } else {
            script.remove(0)
        };
        if answer == DebitAnswer::Debited {
            let mut d = self.debited.lock().unwrap();
            let first = *d.entry(key).or_insert(request.amount);
            assert_eq!(first, request.amount, "same key, other amount");
        }
        answer
    }
}

struct Env {
    app: Router,
    keys: ModuleKeys,
    module: Module,
    _dir: tempfile::TempDir,
}

async fn env(authority: Arc<dyn FinancialAuthority>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let master: SecretKey = example_master(PROFILE);
    let store = Store::open(
        &dir.path().join("signer.db"),
        Box::new(SoftwareKey::new(master.clone())),
    )
    .unwrap()
    .with_authority(Authority::External(authority));
    let app = router(AppState::new(store, Some(TOKEN.into())));
    let keys = derive_module_keys(PROFILE, &master, &ID).unwrap();
    let registration = Registration::new(
        ID,
        PROFILE,
        &master,
        5,
        0,
        EXAMPLE_LIMITS,
        3,
        "http://127.0.0.1/v1".into(),
    )
    .unwrap();
    let data = PersonalisationData {
        initial: Some(InitialCounters { balance: 0, n: 5 }),
        ..PersonalisationData::complete(PROFILE, ID, &keys, EXAMPLE_LIMITS, 3)
    };
    let module = Module::personalised(&data).unwrap();
    let (status, body) = admin(
        &app,
        "POST",
        "/v1/modules",
        Some(json!({"registration": registration, "account_id": "acct", "initial_funds": 0})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Env {
        app,
        keys,
        module,
        _dir: dir,
    }
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, Option<String>, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, location, body)
}

async fn post(app: &Router, bytes: &[u8]) -> (StatusCode, Option<String>, Vec<u8>) {
    let req = Request::post("/v1/reload")
        .header("content-type", "application/octet-stream")
        .body(Body::from(bytes.to_vec()))
        .unwrap();
    call(app, req).await
}

async fn get(app: &Router, path: &str) -> (StatusCode, Option<String>, Vec<u8>) {
    call(app, Request::get(path).body(Body::empty()).unwrap()).await
}

async fn admin(app: &Router, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |v| Body::from(v.to_string())))
        .unwrap();
    let (status, _, bytes) = call(app, req).await;
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

async fn s_and_ledger(app: &Router) -> (u64, usize) {
    let (_, view) = admin(
        app,
        "GET",
        &format!("/v1/modules/{}", hex::encode(ID)),
        None,
    )
    .await;
    let (_, ledger) = admin(app, "GET", "/v1/ledger", None).await;
    (
        view["record"]["s"].as_u64().unwrap(),
        ledger.as_array().unwrap().len(),
    )
}

fn code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["code"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_debit_gets_a_provisional_ack_and_the_grant_is_collected_later() {
    let bank = Arc::new(Scripted::default());
    *bank.script.lock().unwrap() = vec![DebitAnswer::Pending, DebitAnswer::Pending];
    let mut e = env(bank.clone()).await;
    let request = e.module.initiate_reload(1_000).unwrap();

    let (status, location, ack) = post(&e.app, &request).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let location = location.expect("a 202 names where to collect the grant");
    assert_eq!(location, format!("/v1/reload/{}/5", hex::encode_upper(ID)));
    let parsed = ProvisionalAck::parse(&ack).unwrap();
    assert_eq!(parsed.s_next, 6);
    // The module accepts it: its credit line opens (it may debit below zero).
    e.module.apply_provisional(&ack).unwrap();
    assert!(e.module.state().provisional);
    e.module.debit(100).unwrap();
    assert_eq!(e.module.state().balance, -100);
    // Nothing is debited or stored yet.
    assert_eq!(s_and_ledger(&e.app).await, (5, 0));

    // Still pending: the same provisional ack, byte for byte.
    let (status, _, again) = get(&e.app, &location).await;
    assert_eq!(
        (status, again.as_slice()),
        (StatusCode::ACCEPTED, ack.as_slice())
    );

    // Settled: the grant, S moves, one ledger row.
    let (status, _, grant) = get(&e.app, &location).await;
    assert_eq!(status, StatusCode::OK);
    let g = ReloadGrant::parse(&grant).unwrap();
    assert!(g.verify(&e.keys.grant).unwrap());
    assert_eq!(
        (g.status, g.granted, g.s_next),
        (GrantStatus::Granted, 1_000, 6)
    );
    assert_eq!(s_and_ledger(&e.app).await, (6, 1));
    e.module.apply_grant(&grant).unwrap();
    assert_eq!(e.module.state().balance, 900);
    assert!(!e.module.state().provisional);

    // Collecting again, or sending the request again, resends the stored grant; the bank is
    // not asked any more and debited the key once.
    let (status, _, resent) = get(&e.app, &location).await;
    assert_eq!(
        (status, resent.as_slice()),
        (StatusCode::OK, grant.as_slice())
    );
    let (status, _, resent) = post(&e.app, &request).await;
    assert_eq!(
        (status, resent.as_slice()),
        (StatusCode::OK, grant.as_slice())
    );
    let asked = bank.asked.lock().unwrap().clone();
    assert_eq!(asked, vec![format!("{}:5", hex::encode_upper(ID)); 3]);
    assert_eq!(bank.debited.lock().unwrap().len(), 1);
    assert_eq!(s_and_ledger(&e.app).await, (6, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_authority_is_503_and_stores_nothing_until_a_retry_succeeds() {
    let bank = Arc::new(Scripted::default());
    *bank.script.lock().unwrap() = vec![DebitAnswer::Unavailable("timed out".into())];
    let mut e = env(bank.clone()).await;
    let request = e.module.initiate_reload(700).unwrap();
    let (status, _, body) = post(&e.app, &request).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&body), "authority-unavailable");
    assert_eq!(s_and_ledger(&e.app).await, (5, 0));
    // The module retries the same request: same key, now debited, once.
    let (status, _, grant) = post(&e.app, &request).await;
    assert_eq!(status, StatusCode::OK);
    e.module.apply_grant(&grant).unwrap();
    assert_eq!(e.module.state().balance, 700);
    assert_eq!(s_and_ledger(&e.app).await, (6, 1));
    assert_eq!(bank.asked.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insufficient_funds_at_the_authority_is_a_macd_decline_without_a_ledger_row() {
    let bank = Arc::new(Scripted::default());
    *bank.script.lock().unwrap() = vec![DebitAnswer::InsufficientFunds];
    let mut e = env(bank).await;
    let request = e.module.initiate_reload(700).unwrap();
    let (status, _, grant) = post(&e.app, &request).await;
    assert_eq!(status, StatusCode::OK);
    let g = ReloadGrant::parse(&grant).unwrap();
    assert!(g.verify(&e.keys.grant).unwrap());
    assert_eq!(
        (g.status, g.granted),
        (GrantStatus::Declined(DeclineReason::InsufficientFunds), 0)
    );
    e.module.apply_grant(&grant).unwrap();
    assert_eq!(e.module.state().balance, 0);
    assert_eq!(s_and_ledger(&e.app).await, (6, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collecting_an_unknown_reload_is_404_and_a_bad_number_400() {
    let e = env(Arc::new(Scripted::default())).await;
    let hex_id = hex::encode_upper(ID);
    let (status, _, body) = get(&e.app, &format!("/v1/reload/{hex_id}/99")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "unknown-reload".into())
    );
    let (status, _, body) = get(&e.app, &format!("/v1/reload/{hex_id}/x")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "bad-input".into())
    );
    let (status, _, body) = get(&e.app, "/v1/reload/D000000000000000/5").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "unknown-module".into())
    );
}

/// A bank over HTTP that answers `pending` (202) to the first `pending` attempts per key.
async fn bank_server(pending: u32) -> (String, Arc<Mutex<HashMap<String, u32>>>) {
    use axum::Json;
    use axum::extract::State;
    use axum::response::IntoResponse;
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let app = Router::new()
        .route(
            "/debit",
            axum::routing::post(
                move |State(seen): State<Arc<Mutex<HashMap<String, u32>>>>,
                      Json(body): Json<Value>| async move {
                    let key = body["idempotency_key"].as_str().unwrap().to_owned();
                    let count = {
                        let mut s = seen.lock().unwrap();
                        let c = s.entry(key.clone()).or_insert(0);
                        *c += 1;
                        *c
                    };
                    if count <= pending {
                        (
                            StatusCode::ACCEPTED,
                            Json(json!({"idempotency_key": key, "status": "pending"})),
                        )
                            .into_response()
                    } else {
                        Json(json!({"idempotency_key": key, "status": "debited"})).into_response()
                    }
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/debit"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_webhook_drives_the_same_flow() {
    let (url, seen) = bank_server(1).await;
    let webhook = Webhook::new(WebhookConfig::new(&url)).unwrap();
    let mut e = env(Arc::new(webhook)).await;
    let request = e.module.initiate_reload(300).unwrap();
    let (status, location, ack) = post(&e.app, &request).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    e.module.apply_provisional(&ack).unwrap();
    let (status, _, grant) = get(&e.app, &location.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    e.module.apply_grant(&grant).unwrap();
    assert_eq!(e.module.state().balance, 300);
    assert_eq!(s_and_ledger(&e.app).await, (6, 1));
    assert_eq!(
        seen.lock().unwrap().clone(),
        HashMap::from([(format!("{}:5", hex::encode_upper(ID)), 2)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_request_made_stale_by_a_resync_is_not_replayed_as_fraud() {
    let bank = Arc::new(Scripted::default());
    *bank.script.lock().unwrap() = vec![DebitAnswer::Pending];
    let mut e = env(bank.clone()).await;
    let request = e.module.initiate_reload(400).unwrap();
    let (status, location, _) = post(&e.app, &request).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // Moving S past the pending request is refused unless the operator abandons it.
    let path = format!("/v1/modules/{}/resync", hex::encode(ID));
    let (status, body) = admin(&e.app, "POST", &path, Some(json!({"n": 6}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "debit-pending", "{body}");
    let body = json!({"n": 6, "abandon_pending": true});
    let (status, body) = admin(&e.app, "POST", &path, Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["s"], 6, "{body}");
    assert_eq!(body["pending_request"], Value::Null, "{body}");
    let (status, _, body) = get(&e.app, &location.unwrap()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "unknown-reload".into())
    );
    let (_, fraud) = admin(&e.app, "GET", "/v1/fraud", None).await;
    assert_eq!(fraud.as_array().unwrap().len(), 0, "{fraud}");
    assert_eq!(bank.asked.lock().unwrap().len(), 1);
}
