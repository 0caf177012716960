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

/// `simkit` with no `SIMKIT_CARD` in the environment: the card comes from `--card` alone.
fn simkit_no_env(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simkit"))
        .current_dir(dir)
        .env_remove("SIMKIT_CARD")
        .env_remove("SIMKIT_INTERRUPT_AFTER")
        .args(args)
        .output()
        .expect("run simkit")
}

#[test]
fn card_is_taken_before_and_after_the_subcommand() {
    let (_host, uris) = host(1);
    let card = uris[0].as_str();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, "aes-cmac");
    let o = simkit_no_env(
        d,
        &[
            "personalise",
            "--profile",
            "perso.toml",
            "--registration-out",
            "reg.json",
            "--card",
            card,
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The same persistent card in every position, so every answer shows the personalised
    // balance (a fresh `jcardsim` card would say lifecycle personalisation, balance 0).
    for args in [
        vec!["--json", "credit", "--card", card, "status"],
        vec!["--json", "credit", "status", "--card", card],
        vec!["credit", "status", "--json", "--card", card],
        vec!["credit", "--json", "status", "--card", card],
    ] {
        let o = simkit_no_env(d, &args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["balance"], 1500, "{args:?}");
        assert_eq!(v["lifecycle"], "Operational", "{args:?}");
    }
    // Two levels down (`backup passcode set`) too.
    let o = simkit_no_env(d, &["backup", "status", "--card", card, "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pairing"]["set"], false, "{v}");
    let o = Command::new(env!("CARGO_BIN_EXE_simkit"))
        .current_dir(d)
        .env_remove("SIMKIT_CARD")
        .env("P", "123456")
        .env("R", "654321")
        .args([
            "backup",
            "passcode",
            "set",
            "--passcode-env",
            "P",
            "--reprovisioning-env",
            "R",
            "--card",
            card,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = simkit_no_env(d, &["--json", "backup", "--card", card, "status"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["pairing"]["set"], true, "{v}");
    // A command that talks to no card does not take the option.
    let o = simkit_no_env(d, &["sw", "9000", "--card", card]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("unexpected argument '--card'"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A limit update with `sequence`, MAC'd for the module of [`PROFILE`] (aes-cmac, master key
/// of `setup`), as hex.
fn limit_update_hex(sequence: u32) -> String {
    use simkit_core::credit::Limits;
    use simkit_core::credit::message::LimitUpdate;
    use simkit_core::crypto::{Profile, SecretKey, derive_module_keys};
    let master = SecretKey::from_hex("404142434445464748494A4B4C4D4E4F").unwrap();
    let id = [1, 2, 3, 4, 5, 6, 7, 8];
    let keys = derive_module_keys(Profile::AesCmac, &master, &id).unwrap();
    let limits = Limits {
        min_reload: 100,
        max_reload: 50000,
        upper: 100_000,
        credit_line: 2000,
    };
    let update = LimitUpdate::build(Profile::AesCmac, id, sequence, limits, &keys.grant).unwrap();
    hex::encode_upper(update.to_bytes())
}

/// The one error line of a failed command, and its `--json` form, must name the command once,
/// then the status word with its meaning (issue 11: `APPLY LIMIT UPDATE: APPLY LIMIT UPDATE:
/// 9C09`); the fraud log names each kind as the spec does (credit-module.md §4.10).
#[test]
fn errors_name_the_command_once_and_the_fraud_log_uses_the_spec_names() {
    let (_host, uris) = host(1);
    let card = uris[0].as_str();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, "aes-cmac");
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
    let fail = |args: &[&str]| {
        let o = simkit(d, card, args, &[]);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        String::from_utf8(o.stderr).unwrap()
    };
    // Sequence 0 is not above the stored 0: a replay, registered as fraud.
    let replay = limit_update_hex(0);
    assert_eq!(
        fail(&["credit", "limits", "--apply", &replay]),
        "error: APPLY LIMIT UPDATE: 9C09 limit update not newer than the last one (registered as fraud)\n"
    );
    assert_eq!(
        fail(&["credit", "debit", "999999"]),
        "error: DEBIT: 9C07 balance insufficient for the debit\n"
    );
    assert_eq!(
        fail(&["credit", "limits", "--apply", "00"]),
        "error: APPLY LIMIT UPDATE: 6700 wrong length\n"
    );
    // The appliance checks the range before the module does (BRIEF §2, claims 9–10).
    assert_eq!(
        fail(&[
            "credit",
            "reload",
            "1",
            "--offline-master-key",
            "master.hex",
            "--registration",
            "reg.json"
        ]),
        "error: amount 1 is outside the module's allowed range 100..=50000\n"
    );
    let o = simkit(
        d,
        card,
        &["--json", "credit", "limits", "--apply", &replay],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["error"],
        "APPLY LIMIT UPDATE: 9C09 limit update not newer than the last one (registered as fraud)"
    );
    // A forged tag: a bad tag, also registered.
    let mut forged = limit_update_hex(1);
    forged.replace_range(forged.len() - 2.., "00");
    assert_eq!(
        fail(&["credit", "limits", "--apply", &forged]),
        "error: APPLY LIMIT UPDATE: 6982 security status not satisfied\n"
    );
    // Newest first; kind code and the spec's name, N at the time, the number carried.
    assert_eq!(
        ok(d, card, &["credit", "fraud-log"]),
        "01 bad tag: module N 0, message number 1\n\
         03 limit update replay: module N 0, message number 0\n\
         03 limit update replay: module N 0, message number 0\n"
    );
    let v = json(d, card, &["credit", "fraud-log"]);
    assert_eq!(v["entries"][0]["code"], 1);
    assert_eq!(v["entries"][0]["name"], "bad tag");
    assert_eq!(v["entries"][0]["kind"], "bad-tag");
    assert_eq!(v["entries"][1]["name"], "limit update replay");
    assert_eq!(v["entries"][1]["carried"], 0);
}
