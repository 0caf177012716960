//! The store directly, from many OS threads at once: each call opens its own connection, so the
//! requests really race in SQLite and only `BEGIN IMMEDIATE` keeps them apart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::{Arc, Barrier};

use simkit_core::credit::commands::PersonalisationData;
use simkit_core::credit::module::Module;
use simkit_core::credit::registration::Registration;
use simkit_core::crypto::Profile;
use simkit_core::crypto::kdf::derive_module_keys;
use simkit_core::vectors::{EXAMPLE_LIMITS, EXAMPLE_MODULE_ID, example_master};
use simkit_server::{Answer, SoftwareKey, Store};

#[test]
fn sixty_four_threads_racing_one_request_debit_once() {
    let profile = Profile::AesCmac;
    let master = example_master(profile);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        Store::open(
            &dir.path().join("s.sqlite"),
            Box::new(SoftwareKey::new(master.clone())),
        )
        .unwrap(),
    );
    let id = EXAMPLE_MODULE_ID;
    let reg =
        Registration::new(id, profile, &master, 0, 0, EXAMPLE_LIMITS, 3, String::new()).unwrap();
    store.import(&reg, "acct", 1_000_000).unwrap();
    let keys = derive_module_keys(profile, &master, &id).unwrap();
    let mut module = Module::personalised(&PersonalisationData::complete(
        profile,
        id,
        &keys,
        EXAMPLE_LIMITS,
        3,
    ))
    .unwrap();
    for round in 0..3u32 {
        let request = module.initiate_reload(1_000 + round).unwrap();
        let barrier = Arc::new(Barrier::new(64));
        let threads: Vec<_> = (0..64)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    store
                        .reload(&request)
                        .map(|(a, _)| a)
                        .map_err(|(e, _)| e.to_string())
                })
            })
            .collect();
        let answers: Vec<Answer> = threads
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect();
        let fresh = answers
            .iter()
            .filter(|a| matches!(a, Answer::Fresh(_)))
            .count();
        assert_eq!(fresh, 1, "exactly one fresh answer");
        assert!(answers.iter().all(|a| a.bytes() == answers[0].bytes()));
        module.apply_grant(answers[0].bytes()).unwrap();
    }
    let ledger = store.ledger().unwrap();
    assert_eq!(ledger.len(), 3);
    assert_eq!(
        store.account_balance("acct").unwrap(),
        Some(1_000_000 - 3_003)
    );
    assert_eq!(store.account_balance("float").unwrap(), Some(3_003));
    assert_eq!(module.state().balance, 3_003);
}

#[test]
fn a_newer_schema_is_refused_and_migrations_run_once() {
    let master = example_master(Profile::AesCmac);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite");
    let open = || Store::open(&path, Box::new(SoftwareKey::new(master.clone())));
    open().unwrap();
    open().unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "migration 1 ran once");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute("INSERT INTO schema_version (version) VALUES (99)", [])
        .unwrap();
    let err = open().unwrap_err();
    assert!(err.to_string().contains("99"), "{err}");
}
