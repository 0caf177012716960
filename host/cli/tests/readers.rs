//! `simkit readers` against a PC/SC service that is not there, and (under
//! `tools/pcsc-sim.sh`, which sets `SIMKIT_PCSC_READER`) against the simulated reader.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn no_pcscd_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("pcscd.comm");
    let out = Command::new(env!("CARGO_BIN_EXE_simkit"))
        .args(["--json", "readers"])
        .env("PCSCLITE_CSOCK_NAME", &dead)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "error: cannot list PC/SC readers: PC/SC service not running: no pcscd answers on {} (start pcscd, or run under tools/pcsc-sim.sh)",
        dead.display()
    );
    assert_eq!(stderr.trim_end(), expected);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("PC/SC service not running")
    );
}

#[test]
fn lists_the_simulated_reader() {
    let Ok(reader) = std::env::var("SIMKIT_PCSC_READER") else {
        eprintln!("lists_the_simulated_reader: skipped: run under tools/pcsc-sim.sh");
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_simkit"))
        .args(["--json", "readers"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = json["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == reader.as_str())
        .unwrap_or_else(|| panic!("{reader} not in {json}"));
    assert_eq!(r["card_present"], true);
    assert!(r["atr"].as_str().unwrap().starts_with("3B"), "{r}");
}
