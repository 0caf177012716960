//! End-to-end tests of the `simkit` binary: outputs against published vectors, `--json` shape,
//! and that bad input exits non-zero with one clear line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

fn simkit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simkit"))
        .args(args)
        .env_remove("SIMKIT_TEST_KEY")
        .output()
        .expect("run simkit")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn ok(args: &[&str]) -> String {
    let o = simkit(args);
    assert!(o.status.success(), "simkit {args:?} failed: {}", stderr(&o));
    stdout(&o).trim().to_owned()
}

fn fails(args: &[&str]) -> String {
    let o = simkit(args);
    assert!(
        !o.status.success(),
        "simkit {args:?} should fail, printed {}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one line expected, got: {err}"
    );
    err
}

#[test]
fn mac_retail_iso9797_annex_b() {
    let mac = ok(&[
        "mac",
        "--alg",
        "iso9797-1-m3",
        "--padding",
        "1",
        "--key",
        "0123456789ABCDEFFEDCBA9876543210",
        "--data",
        "4E6F77206973207468652074696D6520666F7220616C6C20",
    ]);
    assert_eq!(mac, "A1C72E74EA3FA9B6");
}

#[test]
fn mac_des_cbc_fips113() {
    let mac = ok(&[
        "mac",
        "--alg",
        "iso9797-1-m1",
        "--padding",
        "1",
        "--key",
        "0123456789ABCDEF",
        "--data",
        "37363534333231204E6F77206973207468652074696D6520666F7220",
    ]);
    assert_eq!(mac, "F1D30F6849312CA4");
}

#[test]
fn mac_aes_cmac_rfc4493_and_truncation() {
    let key = "2b7e151628aed2a6abf7158809cf4f3c";
    let full = ok(&[
        "mac",
        "--alg",
        "aes-cmac",
        "--key",
        key,
        "--data",
        "6bc1bee22e409f96e93d7e117393172a",
    ]);
    assert_eq!(full, "070A16B46B4D4144F79BDD9DD04A287C");
    let short = ok(&[
        "mac",
        "--alg",
        "aes-cmac",
        "--key",
        key,
        "--data",
        "",
        "--tag-len",
        "8",
    ]);
    assert_eq!(short, "BB1D6929E9593728");
}

#[test]
fn mac_padding_method_changes_the_result() {
    let args = |p: &'static str| {
        ok(&[
            "mac",
            "--alg",
            "iso9797-1-m3",
            "--padding",
            p,
            "--key",
            "0123456789ABCDEFFEDCBA9876543210",
            "--data",
            "00112233",
        ])
    };
    assert_ne!(args("1"), args("2"));
}

#[test]
fn mac_key_from_environment() {
    let o = Command::new(env!("CARGO_BIN_EXE_simkit"))
        .args([
            "mac",
            "--alg",
            "iso9797-1-m1",
            "--padding",
            "1",
            "--key-env",
            "SIMKIT_TEST_KEY",
            "--data",
            "37363534333231204E6F77206973207468652074696D6520666F7220",
        ])
        .env("SIMKIT_TEST_KEY", "0123456789ABCDEF")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert_eq!(stdout(&o).trim(), "F1D30F6849312CA4");
}

#[test]
fn mac_json_output() {
    let out = ok(&[
        "--json",
        "mac",
        "--alg",
        "aes-cmac",
        "--key",
        "2b7e151628aed2a6abf7158809cf4f3c",
        "--data",
        "",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["mac"], "BB1D6929E95937287FA37D129B756746");
    assert_eq!(v["alg"], "aes-cmac");
}

#[test]
fn mac_bad_input_is_one_clear_line() {
    let e = fails(&[
        "mac", "--alg", "aes-cmac", "--key", "2b7e15", "--data", "00",
    ]);
    assert!(e.contains("16"), "{e}");
    let e = fails(&[
        "mac",
        "--alg",
        "aes-cmac",
        "--key",
        "2b7e151628aed2a6abf7158809cf4f3",
        "--data",
        "00",
    ]);
    assert!(e.to_lowercase().contains("odd"), "{e}");
    let e = fails(&[
        "mac",
        "--alg",
        "aes-cmac",
        "--key",
        "2b7e151628aed2a6abf7158809cf4f3c",
        "--data",
        "0g",
    ]);
    assert!(e.contains("--data"), "{e}");
    let e = fails(&[
        "mac",
        "--alg",
        "aes-cmac",
        "--padding",
        "2",
        "--key",
        "2b7e151628aed2a6abf7158809cf4f3c",
        "--data",
        "00",
    ]);
    assert!(e.contains("padding"), "{e}");
    let e = fails(&[
        "mac",
        "--alg",
        "aes-cmac",
        "--key",
        "2b7e151628aed2a6abf7158809cf4f3c",
        "--data",
        "00",
        "--tag-len",
        "17",
    ]);
    assert!(e.contains("tag-len"), "{e}");
    let o = simkit(&["mac", "--alg", "sha1", "--key", "00", "--data", "00"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("sha1"));
}

#[test]
fn kcv_values() {
    assert_eq!(ok(&["kcv", "--key", "0123456789ABCDEF"]), "D5D44F");
    // 2-key 3DES with K1 = K2 degenerates to single DES: same KCV.
    assert_eq!(
        ok(&["kcv", "--key", "0123456789ABCDEF0123456789ABCDEF"]),
        "D5D44F"
    );
    let aes = ok(&[
        "kcv",
        "--alg",
        "aes",
        "--key",
        "2b7e151628aed2a6abf7158809cf4f3c",
    ]);
    assert_eq!(aes.len(), 6);
    fails(&["kcv", "--alg", "aes", "--key", "0123456789ABCDEF"]);
}

#[test]
fn kdf_prints_kcvs_not_keys_unless_asked() {
    let master = "000102030405060708090A0B0C0D0E0F";
    let out = ok(&[
        "--json",
        "kdf",
        "--profile",
        "aes-cmac",
        "--master",
        master,
        "--module-id",
        "0102030405060708",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v.get("request_key").is_none());
    assert_eq!(v["request_key_kcv"].as_str().unwrap().len(), 6);
    assert_ne!(v["request_key_kcv"], v["grant_key_kcv"]);
    let shown = ok(&[
        "--json",
        "kdf",
        "--profile",
        "aes-cmac",
        "--master",
        master,
        "--module-id",
        "0102030405060708",
        "--show-keys",
    ]);
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["request_key"].as_str().unwrap().len(), 32);
    let text = ok(&[
        "kdf",
        "--profile",
        "retail-mac",
        "--master",
        master,
        "--module-id",
        "0102030405060708",
    ]);
    assert!(text.contains("request key KCV"));
    assert!(
        !text.contains("request key      "),
        "keys must not be printed without --show-keys"
    );
}

#[test]
fn kdf_bad_input() {
    let e = fails(&[
        "kdf",
        "--profile",
        "desx-cbc",
        "--master",
        "000102030405060708090A0B0C0D0E0F",
        "--module-id",
        "0102030405060708",
    ]);
    assert!(e.contains("24"), "{e}");
    let e = fails(&[
        "kdf",
        "--profile",
        "aes-cmac",
        "--master",
        "000102030405060708090A0B0C0D0E0F",
        "--module-id",
        "01020304050607",
    ]);
    assert!(e.contains("module id"), "{e}");
    let o = simkit(&[
        "kdf",
        "--profile",
        "rsa",
        "--master",
        "00",
        "--module-id",
        "0102030405060708",
    ]);
    assert!(!o.status.success());
    let e = fails(&[
        "kdf",
        "--profile",
        "aes-cmac",
        "--module-id",
        "0102030405060708",
    ]);
    assert!(e.contains("master key missing"), "{e}");
}

#[test]
fn sw_meanings() {
    assert_eq!(ok(&["sw", "6982"]), "6982 security status not satisfied");
    assert_eq!(ok(&["sw", "90 00"]).split_once(' ').unwrap().0, "9000");
    assert!(ok(&["sw", "63C2"]).contains('2'));
    assert!(ok(&["sw", "9C05"]).contains("fraud"));
    fails(&["sw", "698"]);
    fails(&["sw", "698200"]);
}

/// The demo's JSON transcript, for one profile.
fn demo(profile: &str) -> serde_json::Value {
    let out = ok(&["--json", "demo", "--in-memory", "--profile", profile]);
    serde_json::from_str(&out).unwrap()
}

fn demo_message(v: &serde_json::Value, step: &str) -> String {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step)
        .unwrap_or_else(|| panic!("no step {step}"))["hex"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn demo_plays_a_full_round_for_every_profile() {
    for profile in ["aes-cmac", "retail-mac", "desx-cbc"] {
        let v = demo(profile);
        assert_eq!(v["profile"], profile);
        assert_eq!(demo_message(&v, "request").len(), 31 * 2);
        assert_eq!(demo_message(&v, "grant").len(), 37 * 2);
        assert_eq!(demo_message(&v, "completion").len(), 40 * 2);
        let done = v["steps"].as_array().unwrap().last().unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(done.contains("balance 1500 → 4000"), "{done}");
        assert!(done.contains("N 0 → 1"), "{done}");
    }
}

#[test]
fn demo_refuses_an_amount_outside_the_range() {
    let e = fails(&["demo", "--in-memory", "--amount", "99"]);
    assert!(e.contains("outside the module's allowed range"), "{e}");
}

#[test]
fn decode_verifies_messages_with_the_master_key() {
    let master = "404142434445464748494A4B4C4D4E4F";
    let grant = demo_message(&demo("aes-cmac"), "grant");
    let out = ok(&["--json", "decode", &grant, "--master", master]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "message");
    assert_eq!(v["type"], "reload grant");
    assert_eq!(v["tag_valid"], true);

    // One flipped bit in the tag: exit code 1 and "INVALID".
    let mut bytes = hex::decode(&grant).unwrap();
    *bytes.last_mut().unwrap() ^= 0x01;
    let o = simkit(&["decode", &hex::encode(&bytes), "--master", master]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("tag INVALID"));

    // The wrong profile is reported.
    let o = simkit(&["decode", &grant, "--profile", "retail-mac"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("profile mismatch"));
}

#[test]
fn decode_commands_and_responses() {
    let status = ok(&["decode", "8010000031"]);
    assert!(status.contains("GET STATUS (credit module)"), "{status}");
    assert!(status.contains("Le  49"), "{status}");
    let grant = demo_message(&demo("aes-cmac"), "grant");
    let apply = ok(&["decode", &format!("8022000025{grant}28")]);
    assert!(apply.contains("APPLY GRANT"), "{apply}");
    assert!(apply.contains("reload grant"), "{apply}");
    let resp = ok(&["decode", "--as", "response", "6982"]);
    assert!(
        resp.contains("6982 security status not satisfied"),
        "{resp}"
    );
    let resp = ok(&["decode", "00000FA09000"]);
    assert!(resp.contains("9000"), "{resp}");
    fails(&["decode", "0"]);
    fails(&["decode", "--as", "message", "0101"]);
}

/// applet-spec/crypto.md §5.1, step by step, as the spec tells a reader to reproduce it.
#[test]
fn crypto_spec_worked_example_holds() {
    let master = "404142434445464748494A4B4C4D4E4F";
    let k_req = ok(&[
        "mac",
        "--alg",
        "aes-cmac",
        "--key",
        master,
        "--data",
        "000000000000000000000010000080010102030405060708",
    ]);
    assert_eq!(k_req, "A05A6BF831CCEAEB49FD1C1C309416C2");
    assert_eq!(ok(&["kcv", "--alg", "aes", "--key", &k_req]), "62A371");
    let tag = ok(&[
        "mac",
        "--alg",
        "aes-cmac",
        "--key",
        &k_req,
        "--data",
        "010101010203040506070800000000000009C4000005DC",
        "--tag-len",
        "8",
    ]);
    assert_eq!(tag, "04392E6CC1487D82");
    assert_eq!(
        demo_message(&demo("aes-cmac"), "request"),
        "010101010203040506070800000000000009C4000005DC04392E6CC1487D82"
    );
}
