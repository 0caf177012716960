#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
use simkit_core::credit::commands::PersonalisationData;
use simkit_core::credit::module::Module;
use simkit_core::credit::registration::Registration;
use simkit_core::crypto::Profile;
use simkit_core::crypto::kdf::derive_module_keys;
use simkit_core::vectors::{EXAMPLE_LIMITS, example_master};
use simkit_server::{PgOptions, SoftwareKey, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
#[ignore]
fn bench() {
    let url = std::env::var("SIMKIT_PG_URL").unwrap();
    let threads: usize = std::env::var("T").unwrap_or("16".into()).parse().unwrap();
    let master = example_master(Profile::AesCmac);
    let store = Arc::new(
        Store::open_postgres(
            &url,
            PgOptions {
                pool_size: threads,
                ..PgOptions::default()
            },
            Box::new(SoftwareKey::new(master.clone())),
        )
        .unwrap(),
    );
    let mut modules = Vec::new();
    for i in 0..threads {
        let id = [0xE0, i as u8, 0, 0, 0, 0, 0, 3];
        let reg = Registration::new(
            id,
            Profile::AesCmac,
            &master,
            0,
            0,
            EXAMPLE_LIMITS,
            3,
            String::new(),
        )
        .unwrap();
        store
            .import(&reg, &format!("acct{i}"), 1_000_000_000)
            .unwrap();
        let keys = derive_module_keys(Profile::AesCmac, &master, &id).unwrap();
        modules.push(
            Module::personalised(&PersonalisationData::complete(
                Profile::AesCmac,
                id,
                &keys,
                EXAMPLE_LIMITS,
                3,
            ))
            .unwrap(),
        );
    }
    let start = Instant::now();
    let total: usize = std::thread::scope(|s| {
        let hs: Vec<_> = modules
            .into_iter()
            .map(|mut m| {
                let store = &store;
                s.spawn(move || {
                    let mut n = 0;
                    while start.elapsed() < Duration::from_secs(5) {
                        let r = m.initiate_reload(100).unwrap();
                        let (a, _) = store.reload(&r).unwrap();
                        m.apply_grant(a.bytes()).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    println!(
        "threads {threads}: {} grants/s",
        total as f64 / start.elapsed().as_secs_f64()
    );
}
