//! The vector files in `applet-spec/vectors/` must be exactly what `simkit_core::vectors`
//! generates: a change to a byte layout or a rule shows up here until the files are regenerated
//! (`SIMKIT_BLESS=1 cargo test -p simkit-core --test spec_vectors`) and the diff reviewed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::Value;
use simkit_core::vectors;

fn check(file: &str, generated: &Value) {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "applet-spec",
        "vectors",
        file,
    ]
    .iter()
    .collect();
    let text = serde_json::to_string_pretty(generated).unwrap() + "\n";
    if std::env::var_os("SIMKIT_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; generate it with SIMKIT_BLESS=1", path.display()));
    assert!(
        on_disk == text,
        "{} differs from what simkit-core generates; if the change is intended, regenerate with \
         SIMKIT_BLESS=1 cargo test -p simkit-core --test spec_vectors and review the diff",
        path.display()
    );
}

#[test]
fn credit_module_vectors_match_the_code() {
    check("credit-module.json", &vectors::credit_module().unwrap());
}

#[test]
fn backup_store_vectors_match_the_code() {
    check("backup-store.json", &vectors::backup_store());
}

#[test]
fn credit_module_vectors_cover_every_profile_and_replay() {
    // Independent of the files: replaying the generated exchanges through a fresh reference
    // model reproduces every response (the generator is deterministic and stateless).
    let v = vectors::credit_module().unwrap();
    let profiles = v["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 3);
    for p in profiles {
        let mut module = simkit_core::credit::module::Module::new();
        for step in p["personalisation"]
            .as_array()
            .unwrap()
            .iter()
            .chain(p["exchanges"].as_array().unwrap())
        {
            let cmd = simkit_core::apdu::Command::parse(
                &hex::decode(step["command"].as_str().unwrap()).unwrap(),
            )
            .unwrap();
            let resp = simkit_core::credit::applet::process(&mut module, &cmd);
            assert_eq!(
                hex::encode_upper(resp.to_bytes()),
                step["response"].as_str().unwrap(),
                "{} / {}",
                p["profile"],
                step["name"]
            );
        }
    }
}
