//! Crash consistency of the grant signer, a few kills in CI: `simkit server crashtest` starts
//! `simkit serve` on a SQLite file, kill -9s it under load from simulated modules, restarts it,
//! and reconciles what the modules received with the ledger (see `cmd/server_crash.rs`). The
//! tool runs many more kills by hand (BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

fn crashtest(args: &[&str]) -> (std::process::Output, serde_json::Value) {
    let o = Command::new(env!("CARGO_BIN_EXE_simkit"))
        .args(["--json", "server", "crashtest"])
        .args(args)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?} stderr {:?}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o, v)
}

#[test]
fn kill_9_under_load_loses_nothing_and_debits_nothing_twice_on_sqlite() {
    let (o, v) = crashtest(&[
        "--kills",
        "4",
        "--modules",
        "12",
        "--concurrency",
        "6",
        "--seed",
        "20261122",
    ]);
    assert!(o.status.success(), "{v:#}");
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["violations"].as_array().unwrap().len(), 0, "{v:#}");
    assert_eq!(v["kills"], 4, "{v:#}");
    // The run did real work through the kills: grants to reconcile, retries across restarts.
    assert!(v["granted"].as_u64().unwrap() > 0, "{v:#}");
    assert_eq!(
        v["ledger_rows_checked"], v["granted"],
        "one ledger row per grant received: {v:#}"
    );
    assert!(
        v["retries"].as_u64().unwrap() > 0,
        "no request met a dead server: {v:#}"
    );
}

#[test]
fn bad_arguments_are_named() {
    let o = Command::new(env!("CARGO_BIN_EXE_simkit"))
        .args([
            "server",
            "crashtest",
            "--min-uptime",
            "2s",
            "--max-uptime",
            "1s",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--min-uptime is above --max-uptime"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
