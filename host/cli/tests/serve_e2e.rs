//! End to end, as an operator and an appliance would run it: `simkit serve` (the grant signer,
//! on a SQLite file), a simulated card personalised with `simkit personalise`, the registration
//! imported over the admin API, and `simkit credit reload --server` — for every crypto profile,
//! with a reload interrupted after each step and resumed by running the same command again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use simkit_card::uri::default_card;
use simkit_card::{CardHostConfig, CardHostProcess};

const TOKEN: &str = "e2e-admin-token";

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

fn serve(dir: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_simkit"))
        .current_dir(dir)
        .env("E2E_ADMIN_TOKEN", TOKEN)
        .args([
            "--json",
            "serve",
            "--db",
            "sqlite:signer.db",
            "--listen",
            "127.0.0.1:0",
        ])
        .args([
            "--master-key-file",
            "master.hex",
            "--admin-token-env",
            "E2E_ADMIN_TOKEN",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start simkit serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let url = format!("http://{}", v["listening"].as_str().unwrap());
    Serve { child, url }
}

fn simkit(dir: &Path, card: &str, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_simkit"));
    cmd.current_dir(dir)
        .env("SIMKIT_CARD", card)
        .env_remove("SIMKIT_INTERRUPT_AFTER")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok_json(dir: &Path, card: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = simkit(dir, card, &all, &[]);
    assert!(
        o.status.success(),
        "simkit {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn admin_get(url: &str) -> serde_json::Value {
    ureq::get(url)
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap()
}

fn setup(dir: &Path, profile: &str, master: &str) {
    std::fs::write(dir.join("master.hex"), master).unwrap();
    std::fs::write(
        dir.join("perso.toml"),
        format!(
            "module_id = \"0102030405060708\"\nprofile = \"{profile}\"\nfraud_threshold = 5\n\
             [master_key]\nfile = \"master.hex\"\n\
             [limits]\nmin_reload = 100\nmax_reload = 50000\nupper = 100000\ncredit_line = 2000\n\
             [initial]\nbalance = 1500\nn = 0\n"
        ),
    )
    .unwrap();
}

#[test]
fn reload_through_the_network_signer_for_every_profile_resuming_interruptions() {
    let profiles = [
        ("aes-cmac", "404142434445464748494A4B4C4D4E4F"),
        ("retail-mac", "0123456789ABCDEFFEDCBA9876543210"),
        (
            "desx-cbc",
            "0123456789ABCDEF1122334455667788A1A2A3A4A5A6A7A8",
        ),
    ];
    let mut config = CardHostConfig::with_cards([default_card()]);
    config.copies = 3;
    let host = CardHostProcess::spawn(config).unwrap();
    for (i, (profile, master)) in profiles.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        setup(d, profile, master);
        let card = format!("jcardsim://{}/{i}", host.addr());
        let server = serve(d);

        ok_json(
            d,
            &card,
            &[
                "personalise",
                "--profile",
                "perso.toml",
                "--registration-out",
                "reg.json",
            ],
        );
        let registration: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("reg.json")).unwrap()).unwrap();
        let resp = ureq::post(&format!("{}/v1/modules", server.url))
            .set("Authorization", &format!("Bearer {TOKEN}"))
            .send_json(serde_json::json!({
                "registration": registration, "account_id": "acct-1", "initial_funds": 1_000_000
            }))
            .unwrap();
        assert_eq!(resp.status(), 201, "{profile}: import");

        let reload = ["credit", "reload", "2500", "--server", server.url.as_str()];
        // A plain round, then one interrupted after each step and run again.
        ok_json(d, &card, &reload);
        let mut expected_balance = 4000;
        for step in ["request", "grant", "apply"] {
            let o = simkit(d, &card, &reload, &[("SIMKIT_INTERRUPT_AFTER", step)]);
            assert!(!o.status.success(), "{profile}/{step}: not interrupted");
            let v = ok_json(d, &card, &reload);
            expected_balance += 2500;
            assert_eq!(
                v["status"]["balance"], expected_balance,
                "{profile}/{step}: credited once"
            );
        }
        let ledger = admin_get(&format!("{}/v1/ledger", server.url));
        let rows = ledger
            .as_array()
            .map_or_else(|| ledger["entries"].as_array().unwrap().len(), Vec::len);
        assert_eq!(
            rows, 4,
            "{profile}: one debit per reload, none twice: {ledger}"
        );
        let module = admin_get(&format!("{}/v1/modules/0102030405060708", server.url));
        assert_eq!(module["record"]["s"], 4, "{profile}");
        assert_eq!(
            module["record"]["completed_through"], 4,
            "{profile}: every completion arrived"
        );
        assert_eq!(module["account_balance"], 1_000_000 - 4 * 2500, "{profile}");
        assert_eq!(
            admin_get(&format!("{}/v1/fraud", server.url))
                .as_array()
                .map_or(0, Vec::len),
            0,
            "{profile}: nothing registered as fraud"
        );
    }
}

#[test]
fn https_and_unreachable_signers_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, "aes-cmac", "404142434445464748494A4B4C4D4E4F");
    let (_host, card) = {
        let host = CardHostProcess::spawn(CardHostConfig::with_cards([default_card()])).unwrap();
        let card = format!("jcardsim://{}/0", host.addr());
        (host, card)
    };
    ok_json(
        d,
        &card,
        &[
            "personalise",
            "--profile",
            "perso.toml",
            "--registration-out",
            "reg.json",
        ],
    );
    let o = simkit(
        d,
        &card,
        &[
            "credit",
            "reload",
            "2500",
            "--server",
            "https://signer.example",
        ],
        &[],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("https is not built"));
    let o = simkit(
        d,
        &card,
        &["credit", "reload", "2500", "--server", "http://127.0.0.1:9"],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("reaching the signer"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The card kept its pending request: nothing was lost.
    assert_eq!(ok_json(d, &card, &["credit", "status"])["pending"], true);
}
