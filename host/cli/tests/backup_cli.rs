//! `simkit backup` against the backup store on a simulated card (the card host jar is built by
//! `mvn -B -q -f applets/pom.xml package -DskipTests`): passcodes, push, restore byte for byte,
//! verify with its exit codes and re-provisioning, the automatic mode, erase.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use simkit_card::uri::default_card;
use simkit_card::{CardHostConfig, CardHostProcess};

const ENV: [(&str, &str); 4] = [
    ("BK_PAIRING", "123456"),
    ("BK_REPROV", "87654321"),
    ("BK_NEW", "24682468"),
    ("BK_WRONG", "000000"),
];

fn simkit(card: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_simkit"));
    cmd.env("SIMKIT_CARD", card).stdin(Stdio::null()).args(args);
    for (k, v) in ENV {
        cmd.env(k, v);
    }
    cmd.output().expect("run simkit")
}

fn json(card: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let o = simkit(card, &all);
    assert!(
        o.status.success(),
        "simkit {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn host() -> (Arc<CardHostProcess>, String) {
    let host = CardHostProcess::spawn(CardHostConfig::with_cards([default_card()]))
        .expect("start the card host (is the jar built?)");
    let uri = format!("jcardsim://{}/0", host.addr());
    (host, uri)
}

fn write(dir: &Path, rel: &str, data: &[u8]) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// `backup passcode set` with both passcodes from `BK_PAIRING` and `BK_REPROV`; its JSON answer.
fn set_passcodes(card: &str) -> serde_json::Value {
    json(
        card,
        &[
            "backup",
            "passcode",
            "set",
            "--passcode-env",
            "BK_PAIRING",
            "--reprovisioning-env",
            "BK_REPROV",
        ],
    )
}

/// Every file under `dir`, relative path → content.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for folder in fs::read_dir(dir).unwrap() {
        let folder = folder.unwrap().path();
        for f in fs::read_dir(&folder).unwrap() {
            let f = f.unwrap().path();
            out.push((
                f.strip_prefix(dir).unwrap().to_path_buf(),
                fs::read(&f).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

fn tree(dir: &Path) {
    write(
        dir,
        "service-books/carrier.sb",
        b"APN=internet.simkit.example\n",
    );
    write(dir, "keys/empty.key", b"");
    write(dir, "keys/k", b"\x00");
    let big: Vec<u8> = (0..33_000u32).map(|i| (i % 253) as u8).collect();
    write(dir, "user-data/photo-été.jpg", &big);
    write(dir, "user-data/日本語.txt", "こんにちは\n".as_bytes());
    write(dir, "preferences/ui 🎛.conf", b"theme=dark\n");
}

#[test]
fn passcodes_push_restore_verify_auto_erase() {
    let (_host, card) = host();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("device");
    tree(&src);

    let s = json(&card, &["backup", "status"]);
    assert_eq!(s["state"], "unset");
    assert_eq!(s["generation"], serde_json::Value::Null);

    // No passcode and no terminal: a clear error, exit 2.
    let o = simkit(&card, &["backup", "push", src.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("pairing passcode is needed"), "{err}");

    let set = set_passcodes(&card);
    assert_eq!(set["set"].as_array().unwrap().len(), 2);

    let src_s = src.to_str().unwrap();
    let p = ["--passcode-env", "BK_PAIRING"];
    let both = [
        "--passcode-env",
        "BK_PAIRING",
        "--reprovisioning-env",
        "BK_REPROV",
    ];
    let with = |args: &[&str], extra: &[&str]| -> Vec<String> {
        args.iter().chain(extra).map(|s| (*s).to_owned()).collect()
    };
    let run = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        json(&card, &a)
    };

    let r = run(with(&["backup", "push", src_s], &p));
    assert_eq!(
        (r["session"].as_str(), r["generation"].as_u64()),
        (Some("full"), Some(1))
    );
    assert_eq!(r["sent"].as_array().unwrap().len(), 6);
    let r = run(with(&["backup", "push", src_s], &p));
    assert_eq!(r["generation"], serde_json::Value::Null, "{r}");

    let s = run(with(&["backup", "status"], &p));
    assert_eq!(
        (s["generation"].as_u64(), s["records"].as_u64()),
        (Some(1), Some(6))
    );

    // Restore: byte-identical, names included; a non-empty target needs --force.
    let dst = tmp.path().join("restored");
    let dst_s = dst.to_str().unwrap();
    let r = run(with(&["backup", "restore", dst_s], &both));
    assert_eq!(r["records"].as_u64(), Some(6));
    assert_eq!(snapshot(&dst), snapshot(&src));
    let o = simkit(
        &card,
        &with(&["backup", "restore", dst_s], &both)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    run(with(&["backup", "restore", dst_s, "--force"], &both));
    assert_eq!(snapshot(&dst), snapshot(&src));

    // Verify: clean; then a key erased, a service book corrupted, user data changed and a
    // record added: exit 1, and only the damage (erased, corrupted) is re-provisioned.
    let v = run(with(&["backup", "verify", dst_s], &p));
    assert_eq!(v["damaged"], false);
    fs::remove_file(dst.join("keys/k")).unwrap();
    write(
        &dst,
        "service-books/carrier.sb",
        b"APN=internet.simkit.examplf\n",
    );
    write(&dst, "user-data/日本語.txt", b"edited since");
    write(&dst, "other/new.txt", b"added since");
    let mut args = vec!["--json", "backup", "verify", dst_s];
    args.extend_from_slice(&p);
    let o = simkit(&card, &args);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let counts = &v["counts"];
    assert_eq!(
        ["ok", "erased", "corrupted", "changed", "added"].map(|k| counts[k].as_u64().unwrap()),
        [3, 1, 1, 1, 1],
        "{v}"
    );
    let v = run(with(
        &["backup", "verify", dst_s, "--restore-if-damaged"],
        &both,
    ));
    assert_eq!(v["restored"].as_u64(), Some(2));
    assert_eq!(
        fs::read(dst.join("user-data/日本語.txt")).unwrap(),
        b"edited since",
        "a change is not undone"
    );
    // A change alone is not damage; --strict makes it one.
    let v = run(with(&["backup", "verify", dst_s], &p));
    assert_eq!(
        (v["damaged"].as_bool(), v["counts"]["changed"].as_u64()),
        (Some(false), Some(1))
    );
    let v = run(with(
        &[
            "backup",
            "verify",
            dst_s,
            "--strict",
            "--restore-if-damaged",
        ],
        &both,
    ));
    assert_eq!(v["restored"].as_u64(), Some(1));
    fs::remove_file(dst.join("other/new.txt")).unwrap();
    fs::remove_dir(dst.join("other")).unwrap();
    assert_eq!(snapshot(&dst), snapshot(&src));

    // Automatic mode: backs up when changed and the interval passed, state beside DIR.
    let state = tmp.path().join("auto-state.json");
    let state_s = state.to_str().unwrap();
    let auto = |interval: &str| {
        run(with(
            &[
                "backup",
                "auto",
                src_s,
                "--min-interval",
                interval,
                "--state",
                state_s,
            ],
            &p,
        ))
    };
    let a = auto("1h");
    // The card already holds this tree: nothing committed, the state remembers it.
    assert_eq!(
        (a["backed_up"].as_bool(), a["generation"].as_u64()),
        (Some(false), None)
    );
    assert!(state.exists());
    let a = auto("1h");
    assert_eq!(a["backed_up"], false);
    assert_eq!(a["reason"], "unchanged since the last backup");
    write(&src, "user-data/diary.txt", b"day 1\n");
    let a = auto("1h");
    assert_eq!(a["backed_up"], false);
    assert!(
        a["reason"].as_str().unwrap().contains("minimum interval"),
        "{a}"
    );
    let a = auto("0s");
    assert_eq!(
        (
            a["backed_up"].as_bool(),
            a["session"].as_str(),
            a["generation"].as_u64()
        ),
        (Some(true), Some("incremental"), Some(2)),
        "{a}"
    );
    assert_eq!(a["sent"].as_array().unwrap().len(), 1);
    // The card's table is kept beside DIR for the next run (applet-spec §5.16).
    assert_eq!(
        cached_entries(&tmp.path().join("device.simkit-manifest")).len(),
        7
    );

    // Change the pairing passcode; the old one is now wrong and uses a try.
    run(with(
        &[
            "backup",
            "passcode",
            "change",
            "pairing",
            "--new-env",
            "BK_NEW",
        ],
        &p,
    ));
    let o = simkit(&card, &["backup", "status", "--passcode-env", "BK_PAIRING"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("63C4"), "{err}");
    let s = json(&card, &["backup", "status", "--passcode-env", "BK_NEW"]);
    assert_eq!(s["generation"].as_u64(), Some(2));

    // Erase needs --yes, then the store is empty and unset.
    let o = simkit(&card, &["backup", "erase"]);
    assert_eq!(o.status.code(), Some(2));
    json(&card, &["backup", "erase", "--yes"]);
    let s = json(&card, &["backup", "status"]);
    assert_eq!(s["state"], "unset");
}

/// The entries of a manifest cache file (entries concatenated in card order).
fn cached_entries(path: &Path) -> Vec<simkit_core::backup::manifest::ManifestEntry> {
    simkit_core::backup::manifest::parse_table(&fs::read(path).unwrap()).unwrap()
}

/// `push --manifest-cache`: the table is kept after each push; a damaged or stale file costs
/// nothing but the manifest read.
#[test]
fn push_keeps_the_manifest_in_a_cache_file() {
    let (_host, card) = host();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("device");
    tree(&src);
    let src_s = src.to_str().unwrap();
    let cache = tmp.path().join("manifest.bin");
    let cache_s = cache.to_str().unwrap();
    set_passcodes(&card);
    let push = |extra: &[&str]| {
        let mut args = vec!["backup", "push", src_s, "--passcode-env", "BK_PAIRING"];
        args.extend_from_slice(&["--manifest-cache", cache_s]);
        args.extend_from_slice(extra);
        json(&card, &args)
    };
    let r = push(&[]);
    assert_eq!(r["session"], "full");
    let first = cached_entries(&cache);
    assert_eq!(first.len(), 6);

    // A changed record: incremental, planned from the kept table; the cache follows.
    write(&src, "keys/k", b"\x01\x02");
    let r = push(&[]);
    assert_eq!(
        (r["session"].as_str(), r["sent"].as_array().unwrap().len()),
        (Some("incremental"), 1)
    );
    let second = cached_entries(&cache);
    assert_eq!(second.len(), 6);
    assert_ne!(first, second);
    assert_eq!(
        second.last().unwrap().name.as_str(),
        "k",
        "replaced records move to the end"
    );

    // A damaged cache file: the manifest is read instead, the push is right, the file repaired.
    fs::write(&cache, b"not a manifest").unwrap();
    write(&src, "keys/k", b"\x03");
    let r = push(&[]);
    assert_eq!(
        (r["session"].as_str(), r["sent"].as_array().unwrap().len()),
        (Some("incremental"), 1)
    );
    assert_eq!(cached_entries(&cache).len(), 6);
    // Nothing changed: no session, the file still holds the card's table.
    let r = push(&[]);
    assert_eq!(r["session"], serde_json::Value::Null);
    assert_eq!(cached_entries(&cache).len(), 6);
}

#[test]
fn a_blocked_store_refuses_everything_but_erase() {
    let (_host, card) = host();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("device");
    tree(&src);
    set_passcodes(&card);
    let src_s = src.to_str().unwrap();
    for left in (0..5).rev() {
        let o = simkit(
            &card,
            &["backup", "push", src_s, "--passcode-env", "BK_WRONG"],
        );
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&format!("63C{left}")), "{err}");
    }
    let o = simkit(
        &card,
        &["backup", "push", src_s, "--passcode-env", "BK_PAIRING"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("locked"), "{err}");
    let s = json(&card, &["backup", "status"]);
    assert_eq!(s["state"], "locked");
}
