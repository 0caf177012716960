//! The card commands of `simkit` against the simulated card: the demo on a card matches the
//! in-memory reference byte for byte, personalisation profiles are checked field by field, and a
//! reload interrupted after any step finishes exactly once when run again.
//!
//! These tests start the bundled card host (built by `mvn -f applets/pom.xml package`, which
//! `tools/test.sh` runs first).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use simkit_card::uri::default_card;
use simkit_card::{CardHostConfig, CardHostProcess};

fn simkit(dir: &Path, card: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_simkit"));
    cmd.current_dir(dir)
        .env("SIMKIT_CARD", card)
        .env_remove("SIMKIT_INTERRUPT_AFTER")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run simkit")
}

fn ok(dir: &Path, card: &str, args: &[&str]) -> String {
    let o = simkit(dir, card, args, &[]);
    assert!(
        o.status.success(),
        "simkit {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn json(dir: &Path, card: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(dir, card, &all)).unwrap()
}

/// A card host with `n` credit-module cards; URIs of its cards.
fn host(n: u32) -> (Arc<CardHostProcess>, Vec<String>) {
    let mut config = CardHostConfig::with_cards([default_card()]);
    config.copies = n;
    let host = CardHostProcess::spawn(config).expect("start the card host (is the jar built?)");
    let uris = (0..n)
        .map(|i| format!("jcardsim://{}/{i}", host.addr()))
        .collect();
    (host, uris)
}

const PROFILE: &str = r#"
module_id = "0102030405060708"
profile = "PROFILE"
fraud_threshold = 5
server_address = "https://reload.example/v1"
[master_key]
file = "master.hex"
[limits]
min_reload = 100
max_reload = 50000
upper = 100000
credit_line = 2000
[initial]
balance = 1500
n = 0
"#;

fn setup(dir: &Path, profile: &str) {
    let master = match profile {
        "desx-cbc" => "0123456789ABCDEF1122334455667788A1A2A3A4A5A6A7A8",
        "retail-mac" => "0123456789ABCDEFFEDCBA9876543210",
        _ => "404142434445464748494A4B4C4D4E4F",
    };
    std::fs::write(dir.join("master.hex"), master).unwrap();
    std::fs::write(dir.join("perso.toml"), PROFILE.replace("PROFILE", profile)).unwrap();
}

#[test]
fn demo_on_the_card_matches_the_reference_model() {
    let dir = tempfile::tempdir().unwrap();
    for profile in ["aes-cmac", "retail-mac", "desx-cbc"] {
        let card = json(dir.path(), "jcardsim", &["demo", "--profile", profile]);
        let model = json(
            dir.path(),
            "jcardsim",
            &["demo", "--in-memory", "--profile", profile],
        );
        let hexes = |v: &serde_json::Value| -> Vec<String> {
            v["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|s| s["hex"].as_str().map(str::to_owned))
                .collect()
        };
        assert_eq!(
            hexes(&card).len(),
            3,
            "{profile}: request, grant, completion"
        );
        assert_eq!(
            hexes(&card),
            hexes(&model),
            "{profile}: the Java applet and the Rust model disagree"
        );
    }
}

#[test]
fn personalise_writes_a_registration_and_refuses_bad_profiles() {
    let (_host, uris) = host(1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, "aes-cmac");
    let v = json(
        d,
        &uris[0],
        &[
            "personalise",
            "--profile",
            "perso.toml",
            "--registration-out",
            "reg.json",
        ],
    );
    assert_eq!(v["lifecycle"], "Operational");
    let reg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("reg.json")).unwrap()).unwrap();
    assert_eq!(reg["module_id"], "0102030405060708");
    assert!(
        !std::fs::read_to_string(d.join("reg.json"))
            .unwrap()
            .contains("404142434445"),
        "no key in the record"
    );
    // A second personalisation of a locked card is refused with the status word's meaning.
    let o = simkit(
        d,
        &uris[0],
        &[
            "personalise",
            "--profile",
            "perso.toml",
            "--registration-out",
            "reg2.json",
        ],
        &[],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("6985 conditions of use not satisfied"),
        "{err}"
    );

    // Each broken field is named.
    let cases = [
        (
            "module_id = \"0102030405060708\"",
            "module_id = \"01020304050607\"",
            "module_id",
        ),
        ("min_reload = 100", "min_reload = 0", "limits"),
        ("balance = 1500", "balance = 200000", "[initial]"),
        (
            "fraud_threshold = 5",
            "fraud_threshold = 0",
            "fraud_threshold",
        ),
        ("profile = \"aes-cmac\"", "profile = \"rsa\"", "profile"),
        (
            "file = \"master.hex\"",
            "file = \"missing.hex\"",
            "master_key",
        ),
        ("n = 0", "n = 0\ncolour = \"red\"", "colour"),
    ];
    for (from, to, needle) in cases {
        std::fs::write(
            d.join("bad.toml"),
            PROFILE.replace("PROFILE", "aes-cmac").replace(from, to),
        )
        .unwrap();
        let o = simkit(
            d,
            "jcardsim",
            &["personalise", "--profile", "bad.toml"],
            &[],
        );
        assert!(!o.status.success(), "{to} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(needle),
            "error for {to:?} does not name {needle}: {err}"
        );
    }
}

#[test]
fn a_reload_interrupted_after_any_step_finishes_exactly_once() {
    let (_host, uris) = host(3);
    for (step, card) in ["request", "grant", "apply"].iter().zip(&uris) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        setup(d, "retail-mac");
        ok(
            d,
            card,
            &[
                "personalise",
                "--profile",
                "perso.toml",
                "--registration-out",
                "reg.json",
            ],
        );
        let reload = [
            "credit",
            "reload",
            "2500",
            "--offline-master-key",
            "master.hex",
            "--registration",
            "reg.json",
        ];
        let o = simkit(d, card, &reload, &[("SIMKIT_INTERRUPT_AFTER", step)]);
        assert!(
            !o.status.success(),
            "{step}: the interruption did not happen"
        );
        ok(d, card, &reload);
        let status = json(d, card, &["credit", "status"]);
        assert_eq!(status["balance"], 4000, "{step}: credited exactly once");
        assert_eq!(status["n"], 1, "{step}");
        assert_eq!(status["pending"], false, "{step}");
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("reg.json.offline-state")).unwrap())
                .unwrap();
        assert_eq!(
            state["debits"].as_array().unwrap().len(),
            1,
            "{step}: debited exactly once"
        );
        assert_eq!(
            state["record"]["completed_through"], 1,
            "{step}: completion reached the signer"
        );
        // A further run is a new reload, not a replay of the old one.
        ok(d, card, &reload);
        assert_eq!(json(d, card, &["credit", "status"])["balance"], 6500);
    }
}

#[test]
fn credit_commands_report_status_words_with_their_meaning() {
    let (_host, uris) = host(1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, "aes-cmac");
    ok(
        d,
        &uris[0],
        &[
            "personalise",
            "--profile",
            "perso.toml",
            "--registration-out",
            "reg.json",
        ],
    );
    let o = simkit(d, &uris[0], &["credit", "debit", "999999"], &[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("9C07 balance insufficient for the debit"));
    assert_eq!(
        json(d, &uris[0], &["credit", "debit", "500"])["balance"],
        1000
    );
    let o = simkit(d, &uris[0], &["credit", "limits", "--apply", "00"], &[]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("6700"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v = json(
        d,
        &uris[0],
        &[
            "credit",
            "limits",
            "--set",
            "200,60000,120000,1000",
            "--offline-master-key",
            "master.hex",
            "--registration",
            "reg.json",
        ],
    );
    assert_eq!(v["limit_sequence"], 1);
    assert_eq!(v["limits"]["upper"], 120000);
    assert_eq!(
        json(d, &uris[0], &["credit", "fraud-log"])["entries"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}
