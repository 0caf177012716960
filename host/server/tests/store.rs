//! The store directly, from many OS threads at once, on SQLite and on PostgreSQL (a throwaway
//! cluster from `common/pg.rs`; skipped with a message when PostgreSQL is not installed, except
//! under `CI=true`). Each SQLite transaction opens its own connection and each PostgreSQL one
//! takes its own pooled connection, so the requests really race in the database and only its
//! locking (`BEGIN IMMEDIATE`; `SELECT … FOR UPDATE`) keeps them apart. Several `Store`s over
//! one database stand for several `simkit serve` processes (the CLI's `serve_pg` test runs real
//! processes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::{Arc, Barrier};

use common::pg::{self, PgCluster};
use simkit_core::credit::ModuleId;
use simkit_core::credit::commands::PersonalisationData;
use simkit_core::credit::message::{GrantStatus, ReloadGrant};
use simkit_core::credit::module::Module;
use simkit_core::credit::registration::Registration;
use simkit_core::crypto::Profile;
use simkit_core::crypto::kdf::derive_module_keys;
use simkit_core::crypto::key::SecretKey;
use simkit_core::vectors::{EXAMPLE_LIMITS, EXAMPLE_MODULE_ID, example_master};
use simkit_server::{Answer, PgOptions, SoftwareKey, Store};

const PROFILE: Profile = Profile::AesCmac;

/// A database for one test: a SQLite file in a temp dir, or a fresh PostgreSQL database.
struct Db {
    url: String,
    _dir: tempfile::TempDir,
    cluster: Option<Arc<PgCluster>>,
}

impl Db {
    fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        Db {
            url: format!("sqlite:{}", dir.path().join("s.sqlite").display()),
            _dir: dir,
            cluster: None,
        }
    }

    fn postgres() -> Option<Db> {
        let cluster = pg::cluster()?;
        Some(Db {
            url: cluster.database(),
            _dir: tempfile::tempdir().unwrap(),
            cluster: Some(cluster),
        })
    }

    fn open(&self, master: &SecretKey) -> Store {
        let key = Box::new(SoftwareKey::new(master.clone()));
        match &self.cluster {
            // A small pool, so 64 threads also queue for connections.
            Some(_) => Store::open_postgres(
                &self.url,
                PgOptions {
                    pool_size: 8,
                    ..PgOptions::default()
                },
                key,
            )
            .unwrap(),
            None => Store::open_url(&self.url, key).unwrap(),
        }
    }

    /// Runs SQL behind the store's back; returns the first column of the first row as text.
    fn query(&self, sql: &str) -> String {
        match &self.cluster {
            Some(c) => c.psql(&self.url, sql),
            None => {
                let conn =
                    rusqlite::Connection::open(self.url.strip_prefix("sqlite:").unwrap()).unwrap();
                let mut st = conn.prepare(sql).unwrap();
                let mut rows = st.query([]).unwrap();
                match rows.next().unwrap() {
                    Some(r) => match r.get_ref(0).unwrap() {
                        rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        other => format!("{other:?}"),
                    },
                    None => String::new(),
                }
            }
        }
    }
}

/// Each scenario `fn name(db: Db)` as `sqlite::name` and `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Db::sqlite());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = super::Db::postgres() {
                        super::$name(db);
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    sixty_four_threads_racing_one_request_debit_once,
    a_newer_schema_is_refused_and_migrations_run_once,
    migration_2_moves_the_floats_credits_out_of_its_row,
    stores_opened_together_migrate_once,
    two_stores_on_one_database_under_load_never_debit_twice,
    a_bulk_import_is_all_or_nothing,
);

fn module_for(master: &SecretKey, id: ModuleId) -> (Registration, Module) {
    let reg =
        Registration::new(id, PROFILE, master, 0, 0, EXAMPLE_LIMITS, 3, String::new()).unwrap();
    let keys = derive_module_keys(PROFILE, master, &id).unwrap();
    let module = Module::personalised(&PersonalisationData::complete(
        PROFILE,
        id,
        &keys,
        EXAMPLE_LIMITS,
        3,
    ))
    .unwrap();
    (reg, module)
}

fn sixty_four_threads_racing_one_request_debit_once(db: Db) {
    let master = example_master(PROFILE);
    let store = Arc::new(db.open(&master));
    let (reg, mut module) = module_for(&master, EXAMPLE_MODULE_ID);
    store.import(&reg, "acct", 1_000_000).unwrap();
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

fn a_newer_schema_is_refused_and_migrations_run_once(db: Db) {
    let master = example_master(PROFILE);
    drop(db.open(&master));
    let store = db.open(&master);
    assert_eq!(store.schema_version().unwrap(), 2);
    drop(store);
    assert_eq!(
        db.query("SELECT COUNT(*) FROM schema_version"),
        "2",
        "migrations 1 and 2 ran once each"
    );
    if db.cluster.is_none() {
        assert_eq!(db.query("PRAGMA journal_mode"), "wal");
    }
    db.query("INSERT INTO schema_version (version) VALUES (99)");
    let key = Box::new(SoftwareKey::new(master));
    let err = Store::open_url(&db.url, key).unwrap_err();
    assert!(err.to_string().contains("99"), "{err}");
}

/// A version-1 database credited the float's row on every grant; migration 2 moves those
/// credits out of the row (the ledger holds them), and the float's balance reads the same.
fn migration_2_moves_the_floats_credits_out_of_its_row(db: Db) {
    let master = example_master(PROFILE);
    let store = db.open(&master);
    let (reg, mut module) = module_for(&master, EXAMPLE_MODULE_ID);
    store.import(&reg, "acct", 10_000).unwrap();
    for amount in [300, 400] {
        let request = module.initiate_reload(amount).unwrap();
        let (answer, _) = store.reload(&request).unwrap();
        module.apply_grant(answer.bytes()).unwrap();
    }
    drop(store);
    // What version 1 left: the credits on the row, and no migration 2.
    db.query("UPDATE accounts SET balance = balance + 700 WHERE id = 'float'");
    db.query("DELETE FROM schema_version WHERE version = 2");
    let store = db.open(&master);
    assert_eq!(store.schema_version().unwrap(), 2);
    assert_eq!(store.account_balance("float").unwrap(), Some(700));
    assert_eq!(
        db.query("SELECT balance FROM accounts WHERE id = 'float'"),
        "0"
    );
    assert_eq!(store.account_balance("acct").unwrap(), Some(9_300));
}

fn stores_opened_together_migrate_once(db: Db) {
    // Several `simkit serve` processes started at once against an empty database.
    let master = example_master(PROFILE);
    let barrier = Barrier::new(8);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                barrier.wait();
                let store = db.open(&master);
                assert_eq!(store.schema_version().unwrap(), 2);
            });
        }
    });
    assert_eq!(db.query("SELECT COUNT(*) FROM schema_version"), "2");
    assert_eq!(
        db.query("SELECT COUNT(*) FROM accounts WHERE id = 'float'"),
        "1"
    );
}

/// Two stores (two pools, as two processes would have) over one database; 8 modules sharing
/// one account; for every reload, both stores get the identical request from 4 threads each
/// at the same moment, and half the modules' grants are "lost" and retried once more.
fn two_stores_on_one_database_under_load_never_debit_twice(db: Db) {
    const MODULES: u8 = 8;
    const ROUNDS: u32 = 6;
    let master = example_master(PROFILE);
    let stores = [Arc::new(db.open(&master)), Arc::new(db.open(&master))];
    let mut modules = Vec::new();
    for i in 0..MODULES {
        let id = [0xC0, i, 0, 0, 0, 0, 0, 1];
        let (reg, module) = module_for(&master, id);
        // Alternate which "process" imports.
        stores[usize::from(i % 2)]
            .import(&reg, "shared", 10_000_000)
            .unwrap();
        modules.push(module);
    }
    std::thread::scope(|s| {
        for (i, mut module) in modules.into_iter().enumerate() {
            let stores = &stores;
            s.spawn(move || {
                for round in 0..ROUNDS {
                    let amount = 100 + round;
                    let request = module.initiate_reload(amount).unwrap();
                    let barrier = Barrier::new(8);
                    let answers: Vec<Answer> = std::thread::scope(|s| {
                        let hs: Vec<_> = (0..8)
                            .map(|t| {
                                let (store, barrier) = (&stores[t % 2], &barrier);
                                s.spawn(move || {
                                    barrier.wait();
                                    store.reload(&request).map(|(a, _)| a).unwrap()
                                })
                            })
                            .collect();
                        hs.into_iter().map(|h| h.join().unwrap()).collect()
                    });
                    assert_eq!(
                        answers
                            .iter()
                            .filter(|a| matches!(a, Answer::Fresh(_)))
                            .count(),
                        1,
                        "module {i} round {round}: exactly one fresh grant"
                    );
                    assert!(answers.iter().all(|a| a.bytes() == answers[0].bytes()));
                    if i % 2 == 0 {
                        // Lost grant: the retry through the other store is answered the same.
                        let again = stores[(i + 1) % 2].reload(&request).unwrap().0;
                        assert_eq!(again, Answer::Resent(answers[0].bytes().to_vec()));
                    }
                    let g = ReloadGrant::parse(answers[0].bytes()).unwrap();
                    assert_eq!(g.status, GrantStatus::Granted);
                    let ack = module.apply_grant(answers[0].bytes()).unwrap();
                    stores[round as usize % 2].completion(&ack).unwrap();
                }
                assert_eq!(module.state().n, ROUNDS);
            });
        }
    });
    let ledger = stores[0].ledger().unwrap();
    let per_module: u32 = (0..ROUNDS).map(|r| 100 + r).sum();
    assert_eq!(ledger.len(), usize::from(MODULES) * ROUNDS as usize);
    let total: i64 = ledger.iter().map(|e| i64::from(e.amount)).sum();
    assert_eq!(total, i64::from(per_module) * i64::from(MODULES));
    let mut keys: Vec<_> = ledger.iter().map(|e| (e.module_id.clone(), e.n)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), ledger.len(), "no (module, N) twice");
    assert_eq!(
        stores[1].account_balance("shared").unwrap(),
        Some(10_000_000 * i64::from(MODULES) - total)
    );
    assert_eq!(stores[1].account_balance("float").unwrap(), Some(total));
    for i in 0..MODULES {
        let view = stores[usize::from(i % 2)]
            .module(&hex::encode([0xC0, i, 0, 0, 0, 0, 0, 1]))
            .unwrap();
        assert_eq!(view.record.s, ROUNDS, "S consistent with the module");
        assert_eq!(view.record.completed_through, Some(ROUNDS));
        assert_eq!(view.record.failure_count, 0);
    }
    assert!(stores[0].fraud_log().unwrap().is_empty());
}

#[test]
fn database_urls_are_checked() {
    let key = || Box::new(SoftwareKey::new(example_master(PROFILE)));
    let err = Store::open_url("mysql://x/y", key()).unwrap_err();
    assert!(err.to_string().contains("expected sqlite:PATH"), "{err}");
    let err = Store::open_url("sqlite:", key()).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
    let err = Store::open_url("postgres://u:hunter2@127.0.0.1:1/x?bogus=1", key()).unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("x.db").display());
    let store = Store::open_url(&url, key()).unwrap();
    assert_eq!(
        store.describe(),
        format!("sqlite:{}", dir.path().join("x.db").display())
    );
}

#[test]
fn an_unreachable_postgres_is_a_clear_error_without_the_password() {
    // Port 1 on loopback: nothing listens.
    let err = Store::open_postgres(
        "postgres://u:hunter2@127.0.0.1:1/x",
        PgOptions::default(),
        Box::new(SoftwareKey::new(example_master(PROFILE))),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("database:"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// PostgreSQL aborts a transaction with a serialization failure (injected by a trigger on the
/// module row's update, counting attempts in a sequence, which no rollback undoes): the store
/// runs it again and succeeds, debiting once; when every attempt fails, it gives up after
/// `MAX_ATTEMPTS` with a database error and nothing is stored.
#[test]
fn postgres_serialization_failures_are_retried_a_bounded_number_of_times() {
    let Some(db) = Db::postgres() else {
        return;
    };
    let master = example_master(PROFILE);
    let store = db.open(&master);
    let (reg, mut module) = module_for(&master, EXAMPLE_MODULE_ID);
    store.import(&reg, "acct", 10_000).unwrap();
    db.query(
        "CREATE SEQUENCE attempts;
         CREATE TABLE knob (fail_until BIGINT NOT NULL);
         INSERT INTO knob VALUES (2);
         CREATE FUNCTION flaky() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF nextval('attempts') <= (SELECT fail_until FROM knob) THEN
             RAISE EXCEPTION 'injected' USING ERRCODE = '40001';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER flaky BEFORE UPDATE ON modules FOR EACH ROW EXECUTE FUNCTION flaky();",
    );
    let request = module.initiate_reload(500).unwrap();
    let (answer, _) = store.reload(&request).unwrap();
    assert!(matches!(answer, Answer::Fresh(_)));
    assert_eq!(
        db.query("SELECT last_value FROM attempts"),
        "3",
        "two retries"
    );
    module.apply_grant(answer.bytes()).unwrap();
    assert_eq!(store.ledger().unwrap().len(), 1);
    assert_eq!(store.account_balance("acct").unwrap(), Some(9_500));

    db.query("UPDATE knob SET fail_until = 1000000");
    let request = module.initiate_reload(700).unwrap();
    let (err, _) = store.reload(&request).unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert_eq!(err.code(), "database");
    assert_eq!(
        db.query("SELECT last_value FROM attempts"),
        (3 + simkit_server::store::MAX_ATTEMPTS).to_string()
    );
    assert_eq!(store.ledger().unwrap().len(), 1, "nothing stored");
    assert_eq!(store.account_balance("acct").unwrap(), Some(9_500));
    assert_eq!(
        store
            .module(&hex::encode(EXAMPLE_MODULE_ID))
            .unwrap()
            .record
            .s,
        1
    );
}

/// PostgreSQL restarts (here: every server process of the pool's connections is terminated):
/// the pool's dead connections are noticed at BEGIN and replaced, and the next request works.
#[test]
fn postgres_connections_that_died_in_the_pool_are_replaced() {
    let Some(db) = Db::postgres() else {
        return;
    };
    let master = example_master(PROFILE);
    let store = Arc::new(db.open(&master));
    let (reg, mut module) = module_for(&master, EXAMPLE_MODULE_ID);
    store.import(&reg, "acct", 10_000).unwrap();
    // Fill the pool with several connections.
    let barrier = Barrier::new(6);
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                barrier.wait();
                store.ledger().unwrap();
            });
        }
    });
    let killed: u32 = db
        .query(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .parse()
        .unwrap();
    assert!(killed >= 1, "the pool had connections");
    let request = module.initiate_reload(500).unwrap();
    let (answer, _) = store.reload(&request).unwrap();
    module.apply_grant(answer.bytes()).unwrap();
    assert_eq!(store.account_balance("acct").unwrap(), Some(9_500));
}

fn a_bulk_import_is_all_or_nothing(db: Db) {
    let master = example_master(PROFILE);
    let store = db.open(&master);
    let ids: Vec<ModuleId> = (0u8..50).map(|i| [0xB1, 0, 0, 0, 0, 0, 0, i]).collect();
    let batch: Vec<(Registration, String, i64)> = ids
        .iter()
        .map(|id| (module_for(&master, *id).0, format!("acct-{}", id[7]), 1_000))
        .collect();
    assert_eq!(store.import_many(&batch).unwrap(), 50);
    let view = store.module(&hex::encode_upper(ids[49])).unwrap();
    assert_eq!(
        (view.account_id.as_str(), view.account_balance),
        ("acct-49", 1_000)
    );
    // A second batch with one module already registered stores nothing of its new ones.
    let mut again: Vec<(Registration, String, i64)> = (50u8..60)
        .map(|i| {
            let id = [0xB1, 0, 0, 0, 0, 0, 0, i];
            (module_for(&master, id).0, format!("acct-{i}"), 5)
        })
        .collect();
    again.push(batch[3].clone());
    let err = store.import_many(&again).unwrap_err();
    assert_eq!(err.code(), "already-registered", "{err}");
    assert!(
        store
            .module(&hex::encode_upper([0xB1, 0, 0, 0, 0, 0, 0, 50]))
            .is_err()
    );
    assert_eq!(store.account_balance("acct-3").unwrap(), Some(1_000));
    // A registration made under another master key is refused before anything is written.
    let other = SecretKey::from_hex("000102030405060708090A0B0C0D0E0F").unwrap();
    let foreign = vec![(module_for(&other, [0xB2; 8]).0, "acct-x".to_owned(), 1)];
    assert_eq!(
        store.import_many(&foreign).unwrap_err().code(),
        "registration-refused"
    );
    assert_eq!(store.account_balance("acct-x").unwrap(), None);
}
