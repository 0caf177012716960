//! `simkit server bench` end to end, small: it starts `simkit serve` on a temporary SQLite file,
//! registers modules and runs an exact number of full reload rounds per concurrency. Checks the
//! report's shape and counts, not speed (speed is in BENCHMARKS.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn a_fixed_number_of_rounds_per_concurrency_all_succeed_and_are_reported() {
    let o = Command::new(env!("CARGO_BIN_EXE_simkit"))
        .args(["--json", "server", "bench", "--modules", "10"])
        .args(["--concurrency", "1,3", "--rounds", "25", "--seed", "7"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {:?} stderr {:?}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    assert!(o.status.success(), "{v:#}");
    assert_eq!(v["modules"], 10);
    let levels = v["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 2, "{v:#}");
    for (level, c) in levels.iter().zip([1, 3]) {
        assert_eq!(level["concurrency"], c, "{v:#}");
        assert_eq!(level["rounds"], 25, "{v:#}");
        assert_eq!(level["errors"], serde_json::json!({}), "{v:#}");
        // One reload latency and one round latency per round.
        assert_eq!(level["reload_latency_ms"]["samples"], 25, "{v:#}");
        assert_eq!(level["round_latency_ms"]["samples"], 25, "{v:#}");
        let p = &level["reload_latency_ms"];
        assert!(p["p50"].as_f64().unwrap() <= p["p99"].as_f64().unwrap());
        assert!(p["p99"].as_f64().unwrap() <= p["max"].as_f64().unwrap());
    }
}

#[test]
fn a_url_without_the_master_key_is_refused_clearly() {
    let o = Command::new(env!("CARGO_BIN_EXE_simkit"))
        .args(["server", "bench", "--url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--master-key-file"), "{err}");
}

#[test]
fn bulk_imported_modules_are_served() {
    // 2,500 modules straight into the database (three import transactions), then rounds: every
    // round must succeed, so every module the workers pick was registered correctly.
    let o = Command::new(env!("CARGO_BIN_EXE_simkit"))
        .args([
            "--json",
            "server",
            "bench",
            "--modules",
            "2500",
            "--bulk-import",
        ])
        .args(["--concurrency", "4", "--rounds", "200", "--seed", "3"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: stderr {:?}", String::from_utf8_lossy(&o.stderr)));
    assert!(o.status.success(), "{v:#}");
    assert_eq!(v["modules"], 2500);
    let level = &v["levels"][0];
    assert_eq!(
        (level["rounds"].clone(), level["errors"].clone()),
        (200.into(), serde_json::json!({})),
        "{v:#}"
    );
}
