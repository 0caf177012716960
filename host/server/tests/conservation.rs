//! Property test (proptest): random sequences of admin and module actions — imports with funds
//! up to 2^63−1, reloads, resends, tampered requests, completion acks, resyncs to any nearby
//! number, limit updates (valid or not), confirmations, unblocks — never get a 5xx answer, and
//! after every step funds are conserved: the accounts plus the float hold exactly the funds
//! imported, the float holds exactly the ledger's credits, and no account is negative. On
//! SQLite and on PostgreSQL (a throwaway cluster from `common/pg.rs`; skipped with a message
//! when PostgreSQL is not installed, except under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Value, json};
use simkit_core::credit::ModuleId;
use simkit_core::credit::commands::{InitialCounters, PersonalisationData};
use simkit_core::credit::module::Module;
use simkit_core::credit::registration::Registration;
use simkit_core::crypto::Profile;
use simkit_core::crypto::kdf::derive_module_keys;
use simkit_core::crypto::key::SecretKey;
use simkit_core::vectors::{EXAMPLE_LIMITS, example_master};
use simkit_server::{AppState, SoftwareKey, Store, router};
use tower::ServiceExt;

const TOKEN: &str = "prop-admin-token";
const PROFILE: Profile = Profile::AesCmac;
const MODULES: usize = 3;
const ACCOUNTS: [&str; 2] = ["acct-0", "acct-1"];

#[derive(Clone, Debug)]
enum Action {
    Import {
        module: usize,
        account: usize,
        funds: i64,
    },
    Reload {
        module: usize,
        amount: u32,
    },
    Resend {
        module: usize,
    },
    Tamper {
        module: usize,
    },
    Complete {
        module: usize,
    },
    Resync {
        module: usize,
        delta: i64,
    },
    Limits {
        module: usize,
        min: u32,
        max: u32,
        upper: i32,
        credit: i32,
        apply: bool,
    },
    Unblock {
        module: usize,
    },
}

fn funds() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0),
        1..5_000i64,
        Just(i64::MAX),
        Just(i64::MAX - 1),
        Just(i64::MAX / 2),
        Just(1),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let m = 0..MODULES;
    prop_oneof![
        1 => (m.clone(), 0..ACCOUNTS.len(), funds()).prop_map(|(module, account, funds)| {
            Action::Import {
                module,
                account,
                funds,
            }
        }),
        3 => (m.clone(), prop_oneof![1..3_000u32, Just(u32::MAX), Just(50_000)])
            .prop_map(|(module, amount)| Action::Reload { module, amount }),
        1 => m.clone().prop_map(|module| Action::Resend { module }),
        1 => m.clone().prop_map(|module| Action::Tamper { module }),
        2 => m.clone().prop_map(|module| Action::Complete { module }),
        1 => (m.clone(), -2..=2i64).prop_map(|(module, delta)| Action::Resync { module, delta }),
        1 => (
            m.clone(),
            prop_oneof![Just(0u32), 1..200u32],
            prop_oneof![Just(u32::MAX), 100..60_000u32],
            prop_oneof![Just(-1i32), 0..200_000i32, Just(i32::MAX)],
            prop_oneof![Just(-1i32), 0..5_000i32],
            any::<bool>(),
        )
            .prop_map(|(module, min, max, upper, credit, apply)| Action::Limits {
                module,
                min,
                max,
                upper,
                credit,
                apply,
            }),
        1 => m.prop_map(|module| Action::Unblock { module }),
    ]
}

struct Card {
    id: ModuleId,
    module: Module,
    registration: Registration,
    imported: bool,
    last_request: Option<Vec<u8>>,
    last_ack: Option<Vec<u8>>,
}

fn card(master: &SecretKey, index: usize) -> Card {
    let id: ModuleId = [0xE0, 0, 0, 0, 0, 0, 0, u8::try_from(index).unwrap()];
    let keys = derive_module_keys(PROFILE, master, &id).unwrap();
    let registration = Registration::new(
        id,
        PROFILE,
        master,
        0,
        0,
        EXAMPLE_LIMITS,
        4,
        "http://127.0.0.1/v1".into(),
    )
    .unwrap();
    let data = PersonalisationData {
        initial: Some(InitialCounters { balance: 0, n: 0 }),
        ..PersonalisationData::complete(PROFILE, id, &keys, EXAMPLE_LIMITS, 4)
    };
    Card {
        id,
        module: Module::personalised(&data).unwrap(),
        registration,
        imported: false,
        last_request: None,
        last_ack: None,
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

async fn octets(app: &Router, path: &str, bytes: &[u8]) -> (StatusCode, Vec<u8>) {
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
        .body(body.map_or_else(Body::empty, |v| Body::from(v.to_string())))
        .unwrap();
    let (status, bytes) = call(app, req).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Fails the case on any 5xx.
fn no_5xx(
    what: &str,
    status: StatusCode,
    body: &dyn std::fmt::Display,
) -> Result<(), TestCaseError> {
    prop_assert!(
        !status.is_server_error(),
        "{what} answered {status}: {body}"
    );
    Ok(())
}

/// Runs one action against the signer (and the card it concerns).
async fn step(
    app: &Router,
    cards: &mut [Card],
    imported: &mut i128,
    action: &Action,
) -> Result<(), TestCaseError> {
    match *action {
        Action::Import {
            module,
            account,
            funds,
        } => {
            let c = &mut cards[module];
            let body = json!({"registration": c.registration, "account_id": ACCOUNTS[account], "initial_funds": funds});
            let (status, v) = admin(app, "POST", "/v1/modules", Some(body)).await;
            no_5xx("import", status, &v)?;
            if status == StatusCode::CREATED {
                prop_assert!(!c.imported, "imported twice");
                c.imported = true;
                *imported += i128::from(funds);
            }
        }
        Action::Reload { module, amount } => {
            let c = &mut cards[module];
            let Ok(request) = c.module.initiate_reload(amount) else {
                return Ok(());
            };
            c.last_request = Some(request.to_vec());
            let (status, body) = octets(app, "/v1/reload", &request).await;
            no_5xx("reload", status, &String::from_utf8_lossy(&body))?;
            if status == StatusCode::OK {
                if let Ok(ack) = c.module.apply_grant(&body) {
                    c.last_ack = Some(ack.to_vec());
                }
            }
        }
        Action::Resend { module } => {
            let c = &mut cards[module];
            if let Some(request) = c.last_request.clone() {
                let (status, body) = octets(app, "/v1/reload", &request).await;
                no_5xx("resend", status, &String::from_utf8_lossy(&body))?;
            }
        }
        Action::Tamper { module } => {
            let c = &mut cards[module];
            if let Some(mut request) = c.last_request.clone() {
                request[15] ^= 0x01;
                let (status, body) = octets(app, "/v1/reload", &request).await;
                no_5xx("tampered", status, &String::from_utf8_lossy(&body))?;
                prop_assert!(status.is_client_error(), "a tampered request got {status}");
            }
        }
        Action::Complete { module } => {
            let c = &mut cards[module];
            if let Some(ack) = c.last_ack.clone() {
                let (status, body) = octets(app, "/v1/completion", &ack).await;
                no_5xx("completion", status, &String::from_utf8_lossy(&body))?;
            }
        }
        Action::Resync { module, delta } => {
            let c = &cards[module];
            let n = (i64::from(c.module.state().n) + delta).clamp(0, i64::from(u32::MAX));
            let path = format!("/v1/modules/{}/resync", hex::encode(c.id));
            let (status, v) = admin(app, "POST", &path, Some(json!({ "n": n }))).await;
            no_5xx("resync", status, &v)?;
        }
        Action::Limits {
            module,
            min,
            max,
            upper,
            credit,
            apply,
        } => {
            let c = &mut cards[module];
            let hex_id = hex::encode(c.id);
            let body = json!({"limits": {"min_reload": min, "max_reload": max, "upper": upper, "credit_line": credit}});
            let path = format!("/v1/modules/{hex_id}/limits");
            let (status, v) = admin(app, "POST", &path, Some(body)).await;
            no_5xx("limits", status, &v)?;
            if status == StatusCode::OK && apply {
                let update = hex::decode(v["update"].as_str().unwrap()).unwrap();
                if c.module.apply_limit_update(&update).is_ok() {
                    let sequence = c.module.state().limit_sequence;
                    let path = format!("/v1/modules/{hex_id}/limits/confirm");
                    let (status, v) =
                        admin(app, "POST", &path, Some(json!({ "sequence": sequence }))).await;
                    no_5xx("confirm", status, &v)?;
                }
            }
        }
        Action::Unblock { module } => {
            let path = format!("/v1/modules/{}/unblock", hex::encode(cards[module].id));
            let (status, v) = admin(app, "POST", &path, None).await;
            no_5xx("unblock", status, &v)?;
        }
    }
    Ok(())
}

/// Funds are conserved and every read answers.
async fn check_funds(app: &Router, cards: &[Card], imported: i128) -> Result<(), TestCaseError> {
    let mut held = 0i128;
    for account in ACCOUNTS {
        let (status, v) = admin(app, "GET", &format!("/v1/accounts/{account}"), None).await;
        no_5xx("account", status, &v)?;
        if status == StatusCode::OK {
            let b = v["balance"].as_i64().unwrap();
            prop_assert!(b >= 0, "{account} is negative: {b}");
            held += i128::from(b);
        }
    }
    let (status, v) = admin(app, "GET", "/v1/accounts/float", None).await;
    no_5xx("float", status, &v)?;
    let float = i128::from(v["balance"].as_i64().unwrap());
    let (status, v) = admin(app, "GET", "/v1/ledger", None).await;
    no_5xx("ledger", status, &v)?;
    let credits: i128 = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| i128::from(e["amount"].as_u64().unwrap()))
        .sum();
    prop_assert_eq!(float, credits, "the float holds the ledger's credits");
    prop_assert_eq!(held + float, imported, "accounts + float = funds imported");
    // Every credit a card applied was debited (a card never holds unpaid money).
    let mut by_module: BTreeMap<String, i128> = BTreeMap::new();
    for e in v.as_array().unwrap() {
        *by_module
            .entry(e["module_id"].as_str().unwrap().to_owned())
            .or_default() += i128::from(e["amount"].as_u64().unwrap());
    }
    for c in cards.iter().filter(|c| c.imported) {
        let (status, v) = admin(
            app,
            "GET",
            &format!("/v1/modules/{}", hex::encode(c.id)),
            None,
        )
        .await;
        no_5xx("module", status, &v)?;
        let paid = by_module
            .get(&hex::encode_upper(c.id))
            .copied()
            .unwrap_or(0);
        prop_assert!(
            i128::from(c.module.state().balance) <= paid,
            "module {} holds {} but was debited {paid}",
            hex::encode(c.id),
            c.module.state().balance
        );
    }
    Ok(())
}

fn run_case(store: Store, master: &SecretKey, actions: &[Action]) -> Result<(), TestCaseError> {
    let app = router(AppState::new(store, Some(TOKEN.into())));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut cards: Vec<Card> = (0..MODULES).map(|i| card(master, i)).collect();
    rt.block_on(async {
        let mut imported = 0i128;
        for a in actions {
            step(&app, &mut cards, &mut imported, a).await?;
            check_funds(&app, &cards, imported).await?;
        }
        Ok(())
    })
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[test]
fn sqlite_random_actions_never_5xx_and_conserve_funds() {
    let master = example_master(PROFILE);
    proptest!(config(48), |(actions in prop::collection::vec(action(), 1..28))| {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("p.sqlite").display());
        let store = Store::open_url(&url, Box::new(SoftwareKey::new(master.clone()))).unwrap();
        run_case(store, &master, &actions)?;
    });
}

#[test]
fn postgres_random_actions_never_5xx_and_conserve_funds() {
    let Some(cluster) = common::pg::cluster() else {
        return;
    };
    let master = example_master(PROFILE);
    proptest!(config(16), |(actions in prop::collection::vec(action(), 1..28))| {
        let url = cluster.database();
        let store = Store::open_url(&url, Box::new(SoftwareKey::new(master.clone()))).unwrap();
        run_case(store, &master, &actions)?;
    });
}
