//! End to end, as an operator and an appliance would run it: `simkit serve` (the grant signer,
//! on a SQLite file), a simulated card personalised with `simkit personalise`, the registration
//! imported over the admin API, and `simkit credit reload --server` — for every crypto profile,
//! with a reload interrupted after each step and resumed by running the same command again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

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
    serve_with(dir, &[])
}

fn serve_with(dir: &Path, extra: &[&str]) -> Serve {
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
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start simkit serve");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "simkit serve exited"
        );
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        if let Some(addr) = v["listening"].as_str() {
            break format!("http://{addr}");
        }
    };
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

/// Personalises the card with `perso.toml` and imports its registration into the signer.
fn personalise_and_import(d: &Path, card: &str, server: &Serve, funds: i64) {
    ok_json(
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
    let registration: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("reg.json")).unwrap()).unwrap();
    let resp = ureq::post(&format!("{}/v1/modules", server.url))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .send_json(serde_json::json!({
            "registration": registration, "account_id": "acct-1", "initial_funds": funds
        }))
        .unwrap();
    assert_eq!(resp.status(), 201, "import");
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
        personalise_and_import(d, &card, &server, 1_000_000);

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

/// A bank on 127.0.0.1 speaking the webhook contract (applet-spec/server-api.md): answers
/// `pending` (HTTP 202) to the first `pending` attempts of each idempotency key, then `debited`.
/// Returns its URL and the number of attempts per key.
fn slow_bank(pending: u32) -> (String, Arc<Mutex<HashMap<String, u32>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/debit", listener.local_addr().unwrap());
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counts = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let key = v["idempotency_key"].as_str().unwrap().to_owned();
            let n = {
                let mut c = counts.lock().unwrap();
                let n = c.entry(key.clone()).or_insert(0);
                *n += 1;
                *n
            };
            let (code, status) = if n <= pending {
                ("202 Accepted", "pending")
            } else {
                ("200 OK", "debited")
            };
            let answer = serde_json::json!({"idempotency_key": key, "status": status}).to_string();
            write!(
                stream,
                "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .unwrap();
        }
    });
    (url, seen)
}

#[test]
fn a_slow_bank_opens_the_credit_line_and_the_grant_is_collected_later() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, "aes-cmac", "404142434445464748494A4B4C4D4E4F");
    let host = CardHostProcess::spawn(CardHostConfig::with_cards([default_card()])).unwrap();
    let card = format!("jcardsim://{}/0", host.addr());
    let (bank, seen) = slow_bank(3);
    let server = serve_with(d, &["--authority-webhook", &bank]);
    personalise_and_import(d, &card, &server, 0);

    // The bank is slow and we do not wait: the provisional ack is applied, exit 75.
    let o = simkit(
        d,
        &card,
        &[
            "--json",
            "credit",
            "reload",
            "2500",
            "--server",
            &server.url,
            "--wait",
            "0",
        ],
        &[],
    );
    assert_eq!(
        o.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let status = ok_json(d, &card, &["credit", "status"]);
    assert_eq!(
        (status["pending"].clone(), status["provisional"].clone()),
        (true.into(), true.into())
    );
    // The credit line is open: the handset may spend below zero meanwhile.
    let v = ok_json(d, &card, &["credit", "debit", "2000"]);
    assert_eq!(v["balance"], -500, "{v}");

    // Running the same command again waits for the bank and collects the grant.
    let v = ok_json(
        d,
        &card,
        &["credit", "reload", "2500", "--server", &server.url],
    );
    assert_eq!(v["status"]["balance"], 2000, "{v}");
    assert_eq!(v["status"]["pending"], false);
    let ledger = admin_get(&format!("{}/v1/ledger", server.url));
    assert_eq!(ledger.as_array().unwrap().len(), 1, "one debit: {ledger}");
    let module = admin_get(&format!("{}/v1/modules/0102030405060708", server.url));
    assert_eq!(module["record"]["completed_through"], 1);
    let asked = seen.lock().unwrap().clone();
    assert_eq!(asked, HashMap::from([("0102030405060708:0".to_owned(), 4)]));
}
