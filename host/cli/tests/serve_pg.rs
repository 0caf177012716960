//! Scale-out, as it runs in production: two `simkit serve` processes on one PostgreSQL database
//! (a throwaway cluster on loopback, from the server crate's test helper), taking concurrent
//! identical and distinct requests for many modules through both at once. No (module, N) is
//! debited twice, every copy of a request gets the identical grant, the ledger sums right and
//! every module's S equals the module's own N afterwards.
//!
//! Skipped with a message when PostgreSQL is not installed, except under `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../server/tests/common/pg.rs"]
#[allow(unreachable_pub, missing_docs)]
mod pg;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;

use simkit_core::credit::commands::PersonalisationData;
use simkit_core::credit::message::{GrantStatus, ReloadGrant};
use simkit_core::credit::module::Module;
use simkit_core::credit::registration::Registration;
use simkit_core::credit::{Limits, ModuleId};
use simkit_core::crypto::Profile;
use simkit_core::crypto::kdf::derive_module_keys;
use simkit_core::crypto::key::SecretKey;

const TOKEN: &str = "pg-admin-token";
const MASTER: &str = "404142434445464748494A4B4C4D4E4F";
const MODULES: u8 = 6;
const ROUNDS: u32 = 5;
const FUNDS: i64 = 1_000_000;

struct Serve {
    child: Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, db: &str, pool: &str) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_simkit"))
        .current_dir(dir)
        .env("PG_ADMIN_TOKEN", TOKEN)
        .args(["--json", "serve", "--db", db, "--db-pool-size", pool])
        .args(["--listen", "127.0.0.1:0"])
        .args(["--master-key-file", "master.hex"])
        .args(["--admin-token-env", "PG_ADMIN_TOKEN"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start simkit serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        !line.is_empty(),
        "simkit serve --db postgres://… did not start (its stderr is above)"
    );
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert!(
        !v["db"].as_str().unwrap().contains("sqlite"),
        "serving PostgreSQL: {v}"
    );
    Serve {
        child,
        url: format!("http://{}", v["listening"].as_str().unwrap()),
    }
}

fn admin_get(url: &str) -> serde_json::Value {
    ureq::get(url)
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap()
}

fn post(url: &str, body: &[u8]) -> Vec<u8> {
    let resp = ureq::post(url)
        .set("Content-Type", "application/octet-stream")
        .send_bytes(body)
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let mut out = Vec::new();
    resp.into_reader().read_to_end(&mut out).unwrap();
    out
}

fn id(i: u8) -> ModuleId {
    [0xD0, i, 0, 0, 0, 0, 0, 2]
}

#[test]
fn two_serve_processes_on_one_postgres_never_debit_twice() {
    let Some(cluster) = pg::cluster() else {
        return;
    };
    let db = cluster.database();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("master.hex"), MASTER).unwrap();
    let servers = [serve(dir.path(), &db, "4"), serve(dir.path(), &db, "16")];
    let master = SecretKey::from_hex(MASTER).unwrap();
    let profile = Profile::AesCmac;
    let limits = Limits {
        min_reload: 1,
        max_reload: 50_000,
        upper: 1_000_000,
        credit_line: 0,
    };

    let mut modules = Vec::new();
    for i in 0..MODULES {
        let keys = derive_module_keys(profile, &master, &id(i)).unwrap();
        let reg =
            Registration::new(id(i), profile, &master, 0, 0, limits, 3, String::new()).unwrap();
        // Imports through both processes; every module shares one account.
        let resp = ureq::post(&format!("{}/v1/modules", servers[usize::from(i % 2)].url))
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_json(serde_json::json!({
                "registration": reg, "account_id": "shared", "initial_funds": FUNDS
            }))
            .unwrap();
        assert_eq!(resp.status(), 201);
        modules.push(
            Module::personalised(&PersonalisationData::complete(
                profile,
                id(i),
                &keys,
                limits,
                3,
            ))
            .unwrap(),
        );
    }

    std::thread::scope(|s| {
        for (i, mut module) in modules.into_iter().enumerate() {
            let servers = &servers;
            s.spawn(move || {
                for round in 0..ROUNDS {
                    let request = module.initiate_reload(100 + round).unwrap();
                    // Eight copies of the request at once, four through each process.
                    let barrier = Barrier::new(8);
                    let answers: Vec<Vec<u8>> = std::thread::scope(|s| {
                        let hs: Vec<_> = (0..8)
                            .map(|t| {
                                let url = format!("{}/v1/reload", servers[t % 2].url);
                                let barrier = &barrier;
                                s.spawn(move || {
                                    barrier.wait();
                                    post(&url, &request)
                                })
                            })
                            .collect();
                        hs.into_iter().map(|h| h.join().unwrap()).collect()
                    });
                    assert!(
                        answers.iter().all(|a| *a == answers[0]),
                        "module {i} round {round}: identical answers from both processes"
                    );
                    let g = ReloadGrant::parse(&answers[0]).unwrap();
                    assert_eq!(g.status, GrantStatus::Granted);
                    let ack = module.apply_grant(&answers[0]).unwrap();
                    let url = format!("{}/v1/completion", servers[(i + 1) % 2].url);
                    post(&url, &ack);
                }
                assert_eq!(module.state().n, ROUNDS);
            });
        }
    });

    let ledger = admin_get(&format!("{}/v1/ledger", servers[1].url));
    let rows = ledger.as_array().unwrap();
    assert_eq!(rows.len(), usize::from(MODULES) * ROUNDS as usize);
    let mut keys: Vec<(String, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["module_id"].as_str().unwrap().to_owned(),
                r["n"].as_u64().unwrap(),
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), rows.len(), "no (module, N) debited twice");
    let total: i64 = rows.iter().map(|r| r["amount"].as_i64().unwrap()).sum();
    let per_module: i64 = (0..ROUNDS).map(|r| i64::from(100 + r)).sum();
    assert_eq!(total, per_module * i64::from(MODULES));
    for i in 0..MODULES {
        let m = admin_get(&format!(
            "{}/v1/modules/{}",
            servers[usize::from(i % 2)].url,
            hex::encode(id(i))
        ));
        assert_eq!(m["record"]["s"], ROUNDS, "S equals the module's N");
        assert_eq!(m["record"]["completed_through"], ROUNDS);
        assert_eq!(m["account_balance"], FUNDS * i64::from(MODULES) - total);
    }
    let fraud = admin_get(&format!("{}/v1/fraud", servers[0].url));
    assert_eq!(fraud.as_array().map_or(usize::MAX, Vec::len), 0);
    // The processes stop before the cluster (declared first, dropped last).
    drop(servers);
}
