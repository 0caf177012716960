//! The grant signer over HTTP (in-process router and a real listener), with simkit-core's pure
//! `Module` as the card — every scenario twice: on SQLite in a temp dir and on a fresh database
//! of a throwaway PostgreSQL cluster (`common/pg.rs`; skipped with a message when PostgreSQL is
//! not installed, except under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use simkit_core::credit::commands::{InitialCounters, PersonalisationData};
use simkit_core::credit::message::{CompletionAck, GrantStatus, ReloadGrant, ReloadRequest};
use simkit_core::credit::module::Module;
use simkit_core::credit::registration::Registration;
use simkit_core::credit::{DeclineReason, ModuleId};
use simkit_core::crypto::Profile;
use simkit_core::crypto::kdf::{ModuleKeys, derive_module_keys};
use simkit_core::crypto::key::SecretKey;
use simkit_core::vectors::{EXAMPLE_LIMITS, example_master};
use simkit_server::{AppState, Authority, SoftwareKey, Store, Webhook, WebhookConfig, router};
use tower::ServiceExt;

const TOKEN: &str = "test-admin-token";
const PROFILE: Profile = Profile::AesCmac;

mod common;

use std::sync::Arc;

use common::pg::{self, PgCluster};

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Where the scenario's database lives; kept alive (and the cluster running) by the `Env`.
struct Db {
    url: String,
    _dir: tempfile::TempDir,
    cluster: Option<Arc<PgCluster>>,
}

struct Env {
    db: Db,
    app: Router,
    master: SecretKey,
}

/// Runs `f` on a plain thread: the PostgreSQL client may not block inside an async task.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

impl Db {
    fn new(backend: Backend) -> Option<Db> {
        let dir = tempfile::tempdir().unwrap();
        Some(match backend {
            Backend::Sqlite => Db {
                url: format!("sqlite:{}", dir.path().join("signer.sqlite").display()),
                _dir: dir,
                cluster: None,
            },
            Backend::Postgres => {
                let cluster = pg::cluster()?;
                Db {
                    url: cluster.database(),
                    _dir: dir,
                    cluster: Some(cluster),
                }
            }
        })
    }

    /// A store over this database (a new one each call: another connection or pool).
    fn open(&self, master: &SecretKey) -> Store {
        let url = self.url.clone();
        let key = SoftwareKey::new(master.clone());
        off_runtime(move || Store::open_url(&url, Box::new(key)).unwrap())
    }

    /// Runs SQL directly in the database, behind the store's back.
    fn exec(&self, sql: &str) {
        match &self.cluster {
            Some(c) => {
                c.psql(&self.url, sql);
            }
            None => {
                let path = self.url.strip_prefix("sqlite:").unwrap();
                rusqlite::Connection::open(path)
                    .unwrap()
                    .execute(sql, [])
                    .unwrap();
            }
        }
    }
}

fn env(backend: Backend) -> Option<Env> {
    let db = Db::new(backend)?;
    let master = example_master(PROFILE);
    let store = db.open(&master);
    let app = router(AppState::new(store, Some(TOKEN.into())));
    Some(Env { db, app, master })
}

/// Each scenario `async fn name(e: Env)` as `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::env(super::Backend::Sqlite).unwrap()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(e) = super::env(super::Backend::Postgres) {
                        super::$name(e).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    registration_import_and_kcv_mismatch,
    full_reload_round_with_completion,
    lost_grant_retried_five_times_is_one_debit,
    sixty_four_concurrent_identical_requests_debit_once,
    replayed_old_request_is_409_and_registered,
    bad_tags_are_403_registered_and_block_at_the_threshold,
    another_modules_keys_are_a_bad_tag,
    reflected_grant_and_garbage_are_400_unregistered,
    counters_at_the_edge_block_at_the_last_number,
    insufficient_funds_is_a_macd_decline_without_a_ledger_row,
    completion_ack_is_accepted_once_and_checked,
    resync_moves_s_to_the_modules_number,
    healthz_and_metrics,
    state_survives_reopening_and_a_real_listener_shuts_down_gracefully,
    a_downgraded_algorithm_or_bad_admin_id_is_400,
    limit_updates_wait_for_the_ack_and_bind_grants_while_in_flight,
    a_corrupt_record_is_a_500_counted_as_a_db_error_and_nothing_is_debited,
    resync_refuses_n_at_or_below_s_and_keeps_the_last_grant,
    funds_past_i64_are_refused_and_change_nothing,
    a_database_failure_answers_without_sql_or_driver_text,
    a_limit_update_waits_for_a_debit_pending_at_the_bank,
    import_refuses_unknown_fields_and_every_out_of_range_value,
    a_completion_ack_must_match_the_grant_in_every_field,
    module_messages_must_be_octet_streams,
);

struct Card {
    keys: ModuleKeys,
    module: Module,
    registration: Registration,
}

fn card(master: &SecretKey, id: ModuleId, n: u32, balance: i32, threshold: u16) -> Card {
    let keys = derive_module_keys(PROFILE, master, &id).unwrap();
    let registration = Registration::new(
        id,
        PROFILE,
        master,
        n,
        balance,
        EXAMPLE_LIMITS,
        threshold,
        "http://127.0.0.1/v1".into(),
    )
    .unwrap();
    let data = PersonalisationData {
        initial: Some(InitialCounters { balance, n }),
        ..PersonalisationData::complete(PROFILE, id, &keys, EXAMPLE_LIMITS, threshold)
    };
    let module = Module::personalised(&data).unwrap();
    Card {
        keys,
        module,
        registration,
    }
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

async fn post_bytes(app: &Router, path: &str, bytes: &[u8]) -> (StatusCode, Vec<u8>) {
    let req = Request::post(path)
        .header("content-type", "application/octet-stream")
        .body(Body::from(bytes.to_vec()))
        .unwrap();
    call(app, req).await
}

async fn admin(app: &Router, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(match body {
            Some(v) => Body::from(v.to_string()),
            None => Body::empty(),
        })
        .unwrap();
    let (status, bytes) = call(app, req).await;
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, v)
}

async fn import(app: &Router, c: &Card, account: &str, funds: i64) -> (StatusCode, Value) {
    admin(
        app,
        "POST",
        "/v1/modules",
        Some(
            json!({"registration": c.registration, "account_id": account, "initial_funds": funds}),
        ),
    )
    .await
}

async fn module_view(app: &Router, id: &ModuleId) -> Value {
    let (status, v) = admin(
        app,
        "GET",
        &format!("/v1/modules/{}", hex::encode(id)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

async fn ledger(app: &Router) -> Vec<Value> {
    let (status, v) = admin(app, "GET", "/v1/ledger", None).await;
    assert_eq!(status, StatusCode::OK);
    v.as_array().unwrap().clone()
}

async fn fraud(app: &Router) -> Vec<Value> {
    let (status, v) = admin(app, "GET", "/v1/fraud", None).await;
    assert_eq!(status, StatusCode::OK);
    v.as_array().unwrap().clone()
}

/// The `status` of a successful completion answer.
fn error_free(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    v["status"].as_str().unwrap().to_owned()
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap();
    assert!(v["error"].is_string(), "{v}");
    v["code"].as_str().unwrap().to_owned()
}

const ID_A: ModuleId = [0xA0, 1, 2, 3, 4, 5, 6, 7];
const ID_B: ModuleId = [0xB0, 1, 2, 3, 4, 5, 6, 7];

async fn registration_import_and_kcv_mismatch(e: Env) {
    let c = card(&e.master, ID_A, 0, 0, 3);
    let (status, v) = import(&e.app, &c, "acct-a", 10_000).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["s"], 0);
    let view = module_view(&e.app, &ID_A).await;
    assert_eq!(view["account_balance"], 10_000);
    assert_eq!(view["record"]["state"], "active");
    // Twice: refused.
    let (status, v) = import(&e.app, &c, "acct-a", 0).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    // A record personalised under another master key: refused, nothing stored.
    let other = SecretKey::new(&[0x11; 16]);
    let foreign = card(&other, ID_B, 0, 0, 3);
    let (status, v) = import(&e.app, &foreign, "acct-b", 10).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "registration-refused");
    let (status, _) = admin(
        &e.app,
        "GET",
        &format!("/v1/modules/{}", hex::encode(ID_B)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Without the token: 401.
    let req = Request::post("/v1/modules")
        .header("authorization", "Bearer wrong")
        .body(Body::from(
            json!({"registration": c.registration, "account_id": "x"}).to_string(),
        ))
        .unwrap();
    assert_eq!(call(&e.app, req).await.0, StatusCode::UNAUTHORIZED);
    let req = Request::get("/v1/ledger").body(Body::empty()).unwrap();
    assert_eq!(call(&e.app, req).await.0, StatusCode::UNAUTHORIZED);
}

async fn full_reload_round_with_completion(e: Env) {
    let mut c = card(&e.master, ID_A, 7, 1_500, 3);
    import(&e.app, &c, "acct-a", 10_000).await;
    let request = c.module.initiate_reload(1_000).unwrap();
    let (status, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    assert_eq!(status, StatusCode::OK);
    let g = ReloadGrant::parse(&grant).unwrap();
    assert!(g.verify(&c.keys.grant).unwrap());
    assert_eq!(
        (g.s_next, g.status, g.granted),
        (8, GrantStatus::Granted, 1_000)
    );
    let ack = c.module.apply_grant(&grant).unwrap();
    assert_eq!((c.module.state().balance, c.module.state().n), (2_500, 8));
    let (status, body) = post_bytes(&e.app, "/v1/completion", &ack).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let view = module_view(&e.app, &ID_A).await;
    assert_eq!(view["record"]["s"], 8);
    assert_eq!(view["record"]["completed_through"], 8);
    assert_eq!(view["account_balance"], 9_000);
    let l = ledger(&e.app).await;
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["amount"], 1_000);
    assert_eq!(l[0]["n"], 7);
    assert_eq!(l[0]["debit_account"], "acct-a");
    assert_eq!(l[0]["credit_account"], "float");
    // A second round works too.
    let request = c.module.initiate_reload(200).unwrap();
    let (status, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    assert_eq!(status, StatusCode::OK);
    c.module.apply_grant(&grant).unwrap();
    assert_eq!(c.module.state().balance, 2_700);
    assert_eq!(ledger(&e.app).await.len(), 2);
    assert!(fraud(&e.app).await.is_empty());
}

async fn lost_grant_retried_five_times_is_one_debit(e: Env) {
    let mut c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 10_000).await;
    let request = c.module.initiate_reload(500).unwrap();
    let (status, first) = post_bytes(&e.app, "/v1/reload", &request).await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..5 {
        // The grant is lost: the module re-issues the same request.
        let again = c.module.initiate_reload(500).unwrap();
        assert_eq!(again, request);
        let (status, grant) = post_bytes(&e.app, "/v1/reload", &again).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(grant, first, "resent byte for byte");
    }
    c.module.apply_grant(&first).unwrap();
    assert_eq!(c.module.state().balance, 500);
    assert_eq!(ledger(&e.app).await.len(), 1);
    assert_eq!(module_view(&e.app, &ID_A).await["account_balance"], 9_500);
}

async fn sixty_four_concurrent_identical_requests_debit_once(e: Env) {
    let mut c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 10_000).await;
    let request = c.module.initiate_reload(700).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let app = e.app.clone();
        tasks.push(tokio::spawn(async move {
            post_bytes(&app, "/v1/reload", &request).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        answers.push(body);
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "all answers identical"
    );
    let l = ledger(&e.app).await;
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["amount"], 700);
    assert_eq!(module_view(&e.app, &ID_A).await["account_balance"], 9_300);
    c.module.apply_grant(&answers[0]).unwrap();
    assert_eq!(c.module.state().balance, 700);
}

async fn replayed_old_request_is_409_and_registered(e: Env) {
    let mut c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 10_000).await;
    let old = c.module.initiate_reload(100).unwrap();
    let (_, g) = post_bytes(&e.app, "/v1/reload", &old).await;
    c.module.apply_grant(&g).unwrap();
    let second = c.module.initiate_reload(100).unwrap();
    let (_, g) = post_bytes(&e.app, "/v1/reload", &second).await;
    c.module.apply_grant(&g).unwrap();
    // N = 0 while S = 2: outside the window.
    let (status, body) = post_bytes(&e.app, "/v1/reload", &old).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "out-of-window");
    let f = fraud(&e.app).await;
    assert_eq!(f.len(), 1);
    assert_eq!(
        (
            f[0]["kind"].as_str(),
            f[0]["n"].as_u64(),
            f[0]["s"].as_u64()
        ),
        (Some("window"), Some(0), Some(2))
    );
    let view = module_view(&e.app, &ID_A).await;
    assert_eq!(view["record"]["failure_count"], 1);
    assert_eq!(ledger(&e.app).await.len(), 2, "no debit for the replay");
    // N = S − 1 but not the stored request: 409 too.
    let forged = ReloadRequest::build(PROFILE, ID_A, 1, 200, 100, &c.keys.request)
        .unwrap()
        .to_bytes();
    let (status, body) = post_bytes(&e.app, "/v1/reload", &forged).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "replay-mismatch");
    assert_eq!(
        module_view(&e.app, &ID_A).await["record"]["failure_count"],
        2
    );
}

async fn bad_tags_are_403_registered_and_block_at_the_threshold(e: Env) {
    let mut c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 10_000).await;
    let good = c.module.initiate_reload(100).unwrap();
    let mut bad = good;
    bad[ReloadRequest::LEN - 1] ^= 0x01;
    for i in 1..=3u64 {
        let (status, body) = post_bytes(&e.app, "/v1/reload", &bad).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(error_code(&body), "bad-tag");
        assert_eq!(
            module_view(&e.app, &ID_A).await["record"]["failure_count"],
            i
        );
    }
    let f = fraud(&e.app).await;
    assert_eq!(f.len(), 3);
    assert!(f.iter().all(|x| x["kind"] == "bad-tag"));
    assert_eq!(f[2]["blocked"], true);
    // Blocked: even the genuine request is 423, and nothing is debited.
    let (status, body) = post_bytes(&e.app, "/v1/reload", &good).await;
    assert_eq!(status, StatusCode::LOCKED);
    assert_eq!(error_code(&body), "blocked");
    assert!(ledger(&e.app).await.is_empty());
    // The operator unblocks; the genuine request goes through.
    let (status, v) = admin(
        &e.app,
        "POST",
        &format!("/v1/modules/{}/unblock", hex::encode(ID_A)),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "active");
    let (status, grant) = post_bytes(&e.app, "/v1/reload", &good).await;
    assert_eq!(status, StatusCode::OK);
    c.module.apply_grant(&grant).unwrap();
    assert_eq!(ledger(&e.app).await.len(), 1);
}

async fn another_modules_keys_are_a_bad_tag(e: Env) {
    let a = card(&e.master, ID_A, 0, 0, 3);
    let b = card(&e.master, ID_B, 0, 0, 3);
    import(&e.app, &a, "acct-a", 10_000).await;
    import(&e.app, &b, "acct-b", 10_000).await;
    // B's id, A's key.
    let cross = ReloadRequest::build(PROFILE, ID_B, 0, 100, 0, &a.keys.request)
        .unwrap()
        .to_bytes();
    let (status, body) = post_bytes(&e.app, "/v1/reload", &cross).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "bad-tag");
    assert_eq!(
        module_view(&e.app, &ID_B).await["record"]["failure_count"],
        1
    );
    assert_eq!(
        module_view(&e.app, &ID_A).await["record"]["failure_count"],
        0
    );
    assert!(ledger(&e.app).await.is_empty());
    // An unknown module: 404, nothing registered.
    let unknown = ReloadRequest::build(PROFILE, [9; 8], 0, 100, 0, &a.keys.request)
        .unwrap()
        .to_bytes();
    let (status, body) = post_bytes(&e.app, "/v1/reload", &unknown).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "unknown-module");
    assert_eq!(fraud(&e.app).await.len(), 1);
}

async fn reflected_grant_and_garbage_are_400_unregistered(e: Env) {
    let mut c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 10_000).await;
    let request = c.module.initiate_reload(100).unwrap();
    let (_, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    for (path, body) in [
        ("/v1/reload", grant.clone()),
        ("/v1/completion", grant.clone()),
        ("/v1/reload", request[..30].to_vec()),
        ("/v1/reload", Vec::new()),
        ("/v1/completion", request.to_vec()),
    ] {
        let (status, b) = post_bytes(&e.app, path, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(error_code(&b), "malformed");
    }
    assert!(fraud(&e.app).await.is_empty());
    assert_eq!(
        module_view(&e.app, &ID_A).await["record"]["failure_count"],
        0
    );
    assert_eq!(ledger(&e.app).await.len(), 1);
}

async fn counters_at_the_edge_block_at_the_last_number(e: Env) {
    let mut c = card(&e.master, ID_A, u32::MAX - 1, 0, 3);
    import(&e.app, &c, "acct-a", 10_000).await;
    // N = 2^32−2: the last grant, S′ = 2^32−1.
    let request = c.module.initiate_reload(100).unwrap();
    let (status, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ReloadGrant::parse(&grant).unwrap().s_next, u32::MAX);
    c.module.apply_grant(&grant).unwrap();
    assert_eq!(c.module.state().n, u32::MAX);
    // N = S = 2^32−1 (a genuine tag): the numbers are exhausted, the server blocks.
    let last = ReloadRequest::build(PROFILE, ID_A, u32::MAX, 100, 100, &c.keys.request)
        .unwrap()
        .to_bytes();
    let (status, body) = post_bytes(&e.app, "/v1/reload", &last).await;
    assert_eq!(status, StatusCode::LOCKED);
    assert_eq!(error_code(&body), "counter-exhausted");
    let view = module_view(&e.app, &ID_A).await;
    assert_eq!(view["record"]["state"], "blocked");
    assert_eq!(view["record"]["s"], u64::from(u32::MAX));
    let (status, body) = post_bytes(&e.app, "/v1/reload", &last).await;
    assert_eq!(status, StatusCode::LOCKED);
    assert_eq!(error_code(&body), "blocked");
    assert_eq!(ledger(&e.app).await.len(), 1);
}

async fn insufficient_funds_is_a_macd_decline_without_a_ledger_row(e: Env) {
    let mut c = card(&e.master, ID_A, 3, 0, 3);
    import(&e.app, &c, "acct-a", 500).await;
    let request = c.module.initiate_reload(1_000).unwrap();
    let (status, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    assert_eq!(status, StatusCode::OK);
    let g = ReloadGrant::parse(&grant).unwrap();
    assert!(g.verify(&c.keys.grant).unwrap(), "the decline is MAC'd");
    assert_eq!(
        (g.status, g.granted, g.s_next),
        (
            GrantStatus::Declined(DeclineReason::InsufficientFunds),
            0,
            4
        )
    );
    c.module.apply_grant(&grant).unwrap();
    assert_eq!((c.module.state().balance, c.module.state().n), (0, 4));
    let view = module_view(&e.app, &ID_A).await;
    assert_eq!(view["record"]["s"], 4);
    assert_eq!(view["account_balance"], 500);
    assert!(ledger(&e.app).await.is_empty());
    // A smaller reload that fits the funds is granted.
    let request = c.module.initiate_reload(400).unwrap();
    let (_, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    let g = ReloadGrant::parse(&grant).unwrap();
    assert_eq!((g.status, g.granted), (GrantStatus::Granted, 400));
    assert_eq!(module_view(&e.app, &ID_A).await["account_balance"], 100);
}

async fn completion_ack_is_accepted_once_and_checked(e: Env) {
    let mut c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 10_000).await;
    let request = c.module.initiate_reload(100).unwrap();
    let (_, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    let ack = c.module.apply_grant(&grant).unwrap();
    // A tampered ack: 403, registered, not marked completed.
    let mut bad = ack;
    bad[bad.len() - 1] ^= 0x80;
    let (status, body) = post_bytes(&e.app, "/v1/completion", &bad).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&body), "bad-tag");
    assert_eq!(
        module_view(&e.app, &ID_A).await["record"]["completed_through"],
        Value::Null
    );
    // The genuine one: accepted, completed through S.
    let (status, body) = post_bytes(&e.app, "/v1/completion", &ack).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["status"],
        "accepted"
    );
    let view = module_view(&e.app, &ID_A).await;
    assert_eq!(view["record"]["completed_through"], 1);
    // Again (the appliance retried): idempotent, nothing new registered or debited.
    let (status, body) = post_bytes(&e.app, "/v1/completion", &ack).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["status"],
        "already-accepted"
    );
    assert_eq!(module_view(&e.app, &ID_A).await["record"], view["record"]);
    assert_eq!(fraud(&e.app).await.len(), 1);
    assert_eq!(ledger(&e.app).await.len(), 1);
    // After the next round, the old ack is outside the window.
    let request = c.module.initiate_reload(100).unwrap();
    let (_, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    c.module.apply_grant(&grant).unwrap();
    let (status, body) = post_bytes(&e.app, "/v1/completion", &ack).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "out-of-window");
}

async fn resync_moves_s_to_the_modules_number(e: Env) {
    let mut c = card(&e.master, ID_A, 10, 0, 5);
    // The server was registered with a lower S than the module has.
    let mut reg = c.registration.clone();
    reg.initial_n = 5;
    let (status, v) = admin(
        &e.app,
        "POST",
        "/v1/modules",
        Some(json!({"registration": reg, "account_id": "acct-a", "initial_funds": 1000})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let request = c.module.initiate_reload(100).unwrap();
    let (status, _) = post_bytes(&e.app, "/v1/reload", &request).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, v) = admin(
        &e.app,
        "POST",
        &format!("/v1/modules/{}/resync", hex::encode(ID_A)),
        Some(json!({"n": 10})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["s"].as_u64(), v["failure_count"].as_u64()),
        (Some(10), Some(0))
    );
    let (status, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    assert_eq!(status, StatusCode::OK);
    c.module.apply_grant(&grant).unwrap();
    assert_eq!(c.module.state().balance, 100);
}

async fn healthz_and_metrics(e: Env) {
    let c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 10_000).await;
    let mut m = c.module;
    let request = m.initiate_reload(100).unwrap();
    post_bytes(&e.app, "/v1/reload", &request).await;
    post_bytes(&e.app, "/v1/reload", &request).await;
    let mut bad = request;
    bad[30] ^= 1;
    post_bytes(&e.app, "/v1/reload", &bad).await;
    let (status, body) = call(
        &e.app,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["schema_version"], 2);
    let (status, body) = call(
        &e.app,
        Request::get("/metrics").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    for line in [
        "simkit_requests_total{endpoint=\"reload\",outcome=\"fresh\"} 1",
        "simkit_requests_total{endpoint=\"reload\",outcome=\"resent\"} 1",
        "simkit_requests_total{endpoint=\"reload\",outcome=\"bad-tag\"} 1",
        "simkit_request_duration_seconds_count 3",
        "simkit_fraud_events_total 1",
        "simkit_db_errors_total 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
}

async fn state_survives_reopening_and_a_real_listener_shuts_down_gracefully(e: Env) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = card(&e.master, ID_A, 0, 0, 3);
    off_runtime(|| {
        let store = e.db.open(&e.master);
        store.import(&c.registration, "acct-a", 42).unwrap();
    });
    let store = e.db.open(&e.master);
    let store = off_runtime(move || {
        assert_eq!(store.schema_version().unwrap(), 2);
        assert_eq!(store.account_balance("acct-a").unwrap(), Some(42));
        store
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(simkit_server::api::serve(
        listener,
        AppState::new(store, None),
        async {
            let _ = rx.await;
        },
    ));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("\"status\":\"ok\""), "{out}");
    tx.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

async fn a_downgraded_algorithm_or_bad_admin_id_is_400(e: Env) {
    let c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 10_000).await;
    // The module's id and N, but the retail-mac profile (the module is aes-cmac).
    let downgraded = ReloadRequest::build(
        Profile::RetailMac,
        ID_A,
        0,
        100,
        0,
        &SecretKey::new(&[0x22; 16]),
    )
    .unwrap()
    .to_bytes();
    let (status, body) = post_bytes(&e.app, "/v1/reload", &downgraded).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "unknown-algorithm");
    assert_eq!(
        module_view(&e.app, &ID_A).await["record"]["failure_count"],
        0
    );
    let (status, v) = admin(&e.app, "GET", "/v1/modules/xyz", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], "bad-input");
    let (status, v) = admin(&e.app, "POST", "/v1/modules/0000000000000000/unblock", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(v["code"], "unknown-module");
}

async fn limit_updates_wait_for_the_ack_and_bind_grants_while_in_flight(e: Env) {
    let mut c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 100_000).await;
    let path = format!("/v1/modules/{}/limits", hex::encode(ID_A));
    let lower = json!({"limits": {"min_reload": 100, "max_reload": 50_000, "upper": 1_500, "credit_line": 2_000}});
    let request = c.module.initiate_reload(1_000).unwrap();
    let (_, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    let ack = c.module.apply_grant(&grant).unwrap();
    // The grant's ack has not arrived: lowering U must wait.
    let (status, v) = admin(&e.app, "POST", &path, Some(lower.clone())).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "grant-outstanding");
    // Invalid limits: 400.
    let (status, v) = admin(
        &e.app,
        "POST",
        &path,
        Some(json!({"limits": {"min_reload": 0, "max_reload": 50_000, "upper": 1_500, "credit_line": 0}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "invalid-limits");
    assert_eq!(
        post_bytes(&e.app, "/v1/completion", &ack).await.0,
        StatusCode::OK
    );
    let (status, v) = admin(&e.app, "POST", &path, Some(lower)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let update = hex::decode(v["update"].as_str().unwrap()).unwrap();
    assert_eq!(v["record"]["limit_sequence"], 1);
    // The module has not applied it yet: the server decides with the stricter U (1 500).
    let request = c.module.initiate_reload(1_000).unwrap();
    let (_, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    let g = ReloadGrant::parse(&grant).unwrap();
    assert_eq!((g.status, g.granted), (GrantStatus::Granted, 500));
    c.module.apply_grant(&grant).unwrap();
    c.module.apply_limit_update(&update).unwrap();
    assert_eq!(c.module.state().balance, 1_500);
    let (status, v) = admin(
        &e.app,
        "POST",
        &format!("/v1/modules/{}/limits/confirm", hex::encode(ID_A)),
        Some(json!({"sequence": c.module.state().limit_sequence})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["limits"]["upper"], 1_500);
    assert_eq!(v["limits_in_flight"], Value::Null);
}

async fn a_corrupt_record_is_a_500_counted_as_a_db_error_and_nothing_is_debited(e: Env) {
    let mut c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 1_000).await;
    let app = e.app.clone();
    e.db.exec("UPDATE modules SET record = '{\"not\": \"a record\"}'");
    let request = c.module.initiate_reload(100).unwrap();
    let (status, body) = post_bytes(&app, "/v1/reload", &request).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(&body), "corrupt-record");
    assert!(ledger(&app).await.is_empty());
    let (_, body) = call(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.lines().any(|l| l == "simkit_db_errors_total 1"),
        "{text}"
    );
}

/// Everything money and policy depend on, to show that a refusal changed none of it: the
/// module's record, its account, the float, the ledger and the fraud log.
async fn money_and_state(app: &Router, id: &ModuleId, account: &str) -> Value {
    let (_, view) = admin(
        app,
        "GET",
        &format!("/v1/modules/{}", hex::encode(id)),
        None,
    )
    .await;
    let (_, acct) = admin(app, "GET", &format!("/v1/accounts/{account}"), None).await;
    let (_, float) = admin(app, "GET", "/v1/accounts/float", None).await;
    json!({
        "module": view,
        "account": acct,
        "float": float,
        "ledger": ledger(app).await,
        "fraud": fraud(app).await,
    })
}

fn resync_path(id: &ModuleId) -> String {
    format!("/v1/modules/{}/resync", hex::encode(id))
}

async fn resync_refuses_n_at_or_below_s_and_keeps_the_last_grant(e: Env) {
    let mut c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 500).await;
    // Declined 03 (insufficient funds), applied, its ack accepted: completed through 1.
    let request = c.module.initiate_reload(1_000).unwrap();
    let (_, decline) = post_bytes(&e.app, "/v1/reload", &request).await;
    assert_eq!(
        ReloadGrant::parse(&decline).unwrap().status,
        GrantStatus::Declined(DeclineReason::InsufficientFunds)
    );
    let ack = c.module.apply_grant(&decline).unwrap();
    assert_eq!(
        post_bytes(&e.app, "/v1/completion", &ack).await.0,
        StatusCode::OK
    );
    // The account is topped up (a second module's import adds to it).
    let other = card(&e.master, ID_B, 0, 0, 3);
    assert_eq!(
        import(&e.app, &other, "acct-a", 10_000).await.0,
        StatusCode::CREATED
    );
    let before = money_and_state(&e.app, &ID_A, "acct-a").await;
    assert_eq!(before["module"]["record"]["s"], 1);
    assert_eq!(before["module"]["record"]["completed_through"], 1);
    // Backwards: refused, nothing changed.
    let (status, v) = admin(&e.app, "POST", &resync_path(&ID_A), Some(json!({"n": 0}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "resync-not-forward");
    assert!(v["error"].as_str().unwrap().contains("S is 1"), "{v}");
    assert_eq!(money_and_state(&e.app, &ID_A, "acct-a").await, before);
    // The captured old request is still only a resend of the stored decline: no debit.
    let (status, again) = post_bytes(&e.app, "/v1/reload", &request).await;
    assert_eq!(
        (status, again.as_slice()),
        (StatusCode::OK, decline.as_slice())
    );
    assert_eq!(money_and_state(&e.app, &ID_A, "acct-a").await, before);
    // n = S: refused too; the last request and grant are kept, so the honest resend still works.
    let (status, v) = admin(&e.app, "POST", &resync_path(&ID_A), Some(json!({"n": 1}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "resync-not-forward");
    assert_eq!(money_and_state(&e.app, &ID_A, "acct-a").await, before);
    let (status, again) = post_bytes(&e.app, "/v1/reload", &request).await;
    assert_eq!(
        (status, again.as_slice()),
        (StatusCode::OK, decline.as_slice())
    );
    assert_eq!(money_and_state(&e.app, &ID_A, "acct-a").await, before);
    // The module's next request (N = S = 1) is granted, once.
    let request = c.module.initiate_reload(1_000).unwrap();
    let (_, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    c.module.apply_grant(&grant).unwrap();
    assert_eq!(c.module.state().balance, 1_000);
    assert_eq!(ledger(&e.app).await.len(), 1);
}

async fn funds_past_i64_are_refused_and_change_nothing(e: Env) {
    let a = card(&e.master, ID_A, 0, 0, 3);
    let b = card(&e.master, ID_B, 0, 0, 3);
    let (status, v) = import(&e.app, &a, "acct-a", i64::MAX).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let before = money_and_state(&e.app, &ID_A, "acct-a").await;
    assert_eq!(before["account"]["balance"], i64::MAX);
    // Into the same account, or any other: the funds held would pass 2^63-1.
    for account in ["acct-a", "acct-b"] {
        let (status, v) = import(&e.app, &b, account, 1).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["code"], "funds-overflow");
        assert!(v["error"].as_str().unwrap().contains("2^63-1"), "{v}");
        assert_eq!(money_and_state(&e.app, &ID_A, "acct-a").await, before);
        let (status, _) = admin(
            &e.app,
            "GET",
            &format!("/v1/modules/{}", hex::encode(ID_B)),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "the module was not imported");
    }
    let (status, _) = admin(&e.app, "GET", "/v1/accounts/acct-b", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the account was not created");
    // Zero fits; reloads still work and every read still answers.
    let (status, v) = import(&e.app, &b, "acct-b", 0).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let mut m = a.module;
    let request = m.initiate_reload(1_000).unwrap();
    let (status, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ReloadGrant::parse(&grant).unwrap().granted, 1_000);
    let (_, float) = admin(&e.app, "GET", "/v1/accounts/float", None).await;
    let (_, acct) = admin(&e.app, "GET", "/v1/accounts/acct-a", None).await;
    assert_eq!(float["balance"], 1_000);
    assert_eq!(acct["balance"], i64::MAX - 1_000);
    assert_eq!(
        module_view(&e.app, &ID_A).await["account_balance"],
        i64::MAX - 1_000
    );
}

async fn a_database_failure_answers_without_sql_or_driver_text(e: Env) {
    let c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 1_000).await;
    e.db.exec("DROP TABLE fraud_log");
    let (status, v) = admin(&e.app, "GET", "/v1/fraud", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert_eq!(v["code"], "database");
    let text = v["error"].as_str().unwrap().to_ascii_lowercase();
    for leak in [
        "fraud_log",
        "select",
        "table",
        "relation",
        "sqlite",
        "postgres",
    ] {
        assert!(!text.contains(leak), "{leak:?} leaked in {text:?}");
    }
    assert!(text.contains("server's log"), "{text}");
}

/// A bank over HTTP that answers `pending` (202) to the first attempt of each key, then
/// `debited`; counts the attempts per key and the amount of each.
async fn pending_bank() -> (String, Arc<std::sync::Mutex<Vec<(String, u64)>>>) {
    use axum::response::IntoResponse;
    let seen: Arc<std::sync::Mutex<Vec<(String, u64)>>> = Arc::default();
    let log = seen.clone();
    let app = Router::new().route(
        "/debit",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let log = log.clone();
            async move {
                let key = body["idempotency_key"].as_str().unwrap().to_owned();
                let first = {
                    let mut l = log.lock().unwrap();
                    l.push((key.clone(), body["amount"].as_u64().unwrap()));
                    l.iter().filter(|(k, _)| *k == key).count() == 1
                };
                if first {
                    (
                        StatusCode::ACCEPTED,
                        axum::Json(json!({"idempotency_key": key, "status": "pending"})),
                    )
                        .into_response()
                } else {
                    axum::Json(json!({"idempotency_key": key, "status": "debited"})).into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/debit"), seen)
}

async fn a_limit_update_waits_for_a_debit_pending_at_the_bank(e: Env) {
    let (url, bank) = pending_bank().await;
    let webhook = Webhook::new(WebhookConfig::new(&url)).unwrap();
    let store =
        e.db.open(&e.master)
            .with_authority(Authority::External(Arc::new(webhook)));
    let app = router(AppState::new(store, Some(TOKEN.into())));
    let mut c = card(&e.master, ID_A, 0, 0, 3);
    import(&app, &c, "acct-a", 0).await;
    let limits = format!("/v1/modules/{}/limits", hex::encode(ID_A));
    let confirm = format!("/v1/modules/{}/limits/confirm", hex::encode(ID_A));
    // An update (raising U) is in flight before the request arrives.
    let raise = json!({"limits": {"min_reload": 100, "max_reload": 50_000, "upper": 200_000, "credit_line": 2_000}});
    let (status, v) = admin(&app, "POST", &limits, Some(raise)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // The bank answers pending for 2 500.
    let request = c.module.initiate_reload(2_500).unwrap();
    let (status, ack) = post_bytes(&app, "/v1/reload", &request).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    c.module.apply_provisional(&ack).unwrap();
    let before = money_and_state(&app, &ID_A, "acct-a").await;
    // M = 1 000 while the debit is pending: refused, nothing changed.
    let lower = json!({"limits": {"min_reload": 100, "max_reload": 1_000, "upper": 100_000, "credit_line": 2_000}});
    let (status, v) = admin(&app, "POST", &limits, Some(lower.clone())).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "debit-pending");
    assert_eq!(money_and_state(&app, &ID_A, "acct-a").await, before);
    // Confirming the update in flight would change the limits too: refused.
    let (status, v) = admin(&app, "POST", &confirm, Some(json!({"sequence": 1}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "debit-pending");
    assert_eq!(money_and_state(&app, &ID_A, "acct-a").await, before);
    // Moving S past the pending request would leave the bank's debit without a grant.
    let (status, v) = admin(&app, "POST", &resync_path(&ID_A), Some(json!({"n": 1}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "debit-pending");
    assert_eq!(money_and_state(&app, &ID_A, "acct-a").await, before);
    // The grant is collected with the limits the bank's debit was decided with.
    let location = format!("/v1/reload/{}/0", hex::encode_upper(ID_A));
    let (status, grant) = call(&app, Request::get(&location).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let g = ReloadGrant::parse(&grant).unwrap();
    assert_eq!((g.status, g.granted), (GrantStatus::Granted, 2_500));
    let l = ledger(&app).await;
    assert_eq!((l.len(), l[0]["amount"].as_u64()), (1, Some(2_500)));
    assert_eq!(
        bank.lock().unwrap().clone(),
        vec![(format!("{}:0", hex::encode_upper(ID_A)), 2_500); 2],
        "one key, one amount, asked twice"
    );
    let ack = c.module.apply_grant(&grant).unwrap();
    assert_eq!(
        post_bytes(&app, "/v1/completion", &ack).await.0,
        StatusCode::OK
    );
    // Nothing is pending any more: the limits can change.
    let (status, v) = admin(&app, "POST", &confirm, Some(json!({"sequence": 1}))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = admin(&app, "POST", &limits, Some(lower)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

async fn import_refuses_unknown_fields_and_every_out_of_range_value(e: Env) {
    let c = card(&e.master, ID_A, 0, 0, 3);
    let good = serde_json::to_value(&c.registration).unwrap();
    let with = |path: &[&str], v: Value| {
        let mut r = good.clone();
        let mut at = &mut r;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = v;
        r
    };
    let long_id = "a".repeat(10_000);
    let cases: Vec<(&str, Value, &str, u16, &str)> = vec![
        (
            "unknown limits field",
            with(&["limits", "extra"], json!(1)),
            "acct-a",
            400,
            "bad-input",
        ),
        (
            "min_reload 0",
            with(&["limits", "min_reload"], json!(0)),
            "acct-a",
            422,
            "registration-refused",
        ),
        (
            "negative upper",
            with(&["limits", "upper"], json!(-1)),
            "acct-a",
            422,
            "registration-refused",
        ),
        (
            "fraud_threshold 0",
            with(&["fraud_threshold"], json!(0)),
            "acct-a",
            422,
            "registration-refused",
        ),
        (
            "balance above U",
            with(&["initial_balance"], json!(100_001)),
            "acct-a",
            422,
            "registration-refused",
        ),
        (
            "balance below -L",
            with(&["initial_balance"], json!(-2_001)),
            "acct-a",
            422,
            "registration-refused",
        ),
        (
            "long server address",
            with(&["server_address"], json!("h".repeat(65))),
            "acct-a",
            422,
            "registration-refused",
        ),
        ("empty account id", good.clone(), "", 400, "bad-input"),
        (
            "10 000-character account id",
            good.clone(),
            &long_id,
            400,
            "bad-input",
        ),
        (
            "account id with a space",
            good.clone(),
            "acct a",
            400,
            "bad-input",
        ),
        ("the float", good.clone(), "float", 400, "bad-input"),
    ];
    for (what, registration, account, status, code) in cases {
        let (got, v) = admin(
            &e.app,
            "POST",
            "/v1/modules",
            Some(json!({"registration": registration, "account_id": account, "initial_funds": 10})),
        )
        .await;
        assert_eq!(got.as_u16(), status, "{what}: {v}");
        assert_eq!(v["code"], code, "{what}: {v}");
        let (got, _) = admin(
            &e.app,
            "GET",
            &format!("/v1/modules/{}", hex::encode(ID_A)),
            None,
        )
        .await;
        assert_eq!(got, StatusCode::NOT_FOUND, "{what}: nothing imported");
        let (got, _) = admin(&e.app, "GET", "/v1/accounts/acct-a", None).await;
        assert_eq!(got, StatusCode::NOT_FOUND, "{what}: no account created");
        let (_, float) = admin(&e.app, "GET", "/v1/accounts/float", None).await;
        assert_eq!(float["balance"], 0, "{what}");
    }
    // Balances at the edges of [-L, U] are fine.
    for (id, balance) in [(ID_A, 100_000), (ID_B, -2_000)] {
        let r = Registration::new(
            id,
            PROFILE,
            &e.master,
            0,
            balance,
            EXAMPLE_LIMITS,
            3,
            "x".into(),
        )
        .unwrap();
        let (status, v) = admin(
            &e.app,
            "POST",
            "/v1/modules",
            Some(json!({"registration": r, "account_id": "acct-a"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    // The limit-update body refuses unknown fields inside `limits` too; nothing changes.
    let before = money_and_state(&e.app, &ID_A, "acct-a").await;
    let (status, v) = admin(
        &e.app,
        "POST",
        &format!("/v1/modules/{}/limits", hex::encode(ID_A)),
        Some(json!({"limits": {"min_reload": 100, "max_reload": 50_000, "upper": 100_000, "credit_line": 0, "extra": 1}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["code"], "bad-input");
    assert!(v["error"].as_str().unwrap().contains("extra"), "{v}");
    assert_eq!(money_and_state(&e.app, &ID_A, "acct-a").await, before);
}

async fn a_completion_ack_must_match_the_grant_in_every_field(e: Env) {
    let mut c = card(&e.master, ID_A, 0, 0, 10);
    import(&e.app, &c, "acct-a", 10_000).await;
    let request = c.module.initiate_reload(100).unwrap();
    let (_, grant) = post_bytes(&e.app, "/v1/reload", &request).await;
    let g = ReloadGrant::parse(&grant).unwrap();
    let ack = c.module.apply_grant(&grant).unwrap();
    // MAC'd with the module's own key, but not what the grant said.
    let forged = |declined: bool, granted: u32, balance: i32| {
        CompletionAck::build(
            PROFILE,
            ID_A,
            1,
            declined,
            granted,
            balance,
            g.tag,
            &c.keys.request,
        )
        .unwrap()
        .to_bytes()
    };
    for (what, bytes, field) in [
        ("declined, G = 0", forged(true, 0, 100), "status"),
        ("granted, G = 99", forged(false, 99, 100), "G"),
        ("granted, G = 101", forged(false, 101, 100), "G"),
        ("balance above B + G", forged(false, 100, 101), "balance"),
    ] {
        let before = money_and_state(&e.app, &ID_A, "acct-a").await;
        let (status, body) = post_bytes(&e.app, "/v1/completion", &bytes).await;
        assert_eq!(status, StatusCode::CONFLICT, "{what}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "ack-mismatch", "{what}");
        assert!(v["error"].as_str().unwrap().contains(field), "{what}: {v}");
        let after = money_and_state(&e.app, &ID_A, "acct-a").await;
        assert_eq!(
            after["module"]["record"]["completed_through"],
            Value::Null,
            "{what}"
        );
        assert_eq!(after["ledger"], before["ledger"], "{what}");
        assert_eq!(after["account"], before["account"], "{what}");
        // Registered as a window event.
        let f = after["fraud"].as_array().unwrap();
        assert_eq!(
            f.len(),
            before["fraud"].as_array().unwrap().len() + 1,
            "{what}"
        );
        assert_eq!(f.last().unwrap()["kind"], "window", "{what}");
    }
    // A balance below B + G is possible (the card may debit between request and grant).
    let debited = forged(false, 100, 40);
    let before = money_and_state(&e.app, &ID_A, "acct-a").await;
    let (status, body) = post_bytes(&e.app, "/v1/completion", &debited).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        money_and_state(&e.app, &ID_A, "acct-a").await["ledger"],
        before["ledger"]
    );
    // The genuine ack is accepted too (same grant, completed already).
    let (status, body) = post_bytes(&e.app, "/v1/completion", &ack).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(error_free(&body), "already-accepted");
    assert_eq!(
        module_view(&e.app, &ID_A).await["record"]["completed_through"],
        1
    );
}

async fn module_messages_must_be_octet_streams(e: Env) {
    let mut c = card(&e.master, ID_A, 0, 0, 3);
    import(&e.app, &c, "acct-a", 10_000).await;
    let request = c.module.initiate_reload(100).unwrap();
    let send = |path: &'static str, bytes: Vec<u8>, ct: Option<&'static str>| {
        let app = e.app.clone();
        async move {
            let mut req = Request::post(path);
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            call(&app, req.body(Body::from(bytes)).unwrap()).await
        }
    };
    let before = money_and_state(&e.app, &ID_A, "acct-a").await;
    for ct in [
        None,
        Some("application/json"),
        Some("text/plain"),
        Some("application/octet-streamx"),
    ] {
        let (status, body) = send("/v1/reload", request.to_vec(), ct).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["code"], "unsupported-media-type", "{ct:?}");
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("application/octet-stream"),
            "{v}"
        );
        assert_eq!(
            money_and_state(&e.app, &ID_A, "acct-a").await,
            before,
            "{ct:?}"
        );
    }
    // Case and parameters do not matter.
    let (status, grant) = send(
        "/v1/reload",
        request.to_vec(),
        Some("Application/Octet-Stream; x=y"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ack = c.module.apply_grant(&grant).unwrap();
    let before = money_and_state(&e.app, &ID_A, "acct-a").await;
    let (status, body) = send("/v1/completion", ack.to_vec(), Some("application/json")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&body), "unsupported-media-type");
    assert_eq!(money_and_state(&e.app, &ID_A, "acct-a").await, before);
    let (status, _) = send(
        "/v1/completion",
        ack.to_vec(),
        Some("application/octet-stream"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
