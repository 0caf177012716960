//! Fuzz target: request bodies of the grant signer, posted through the real router
//! (`simkit_server::router`) over a SQLite store in a temporary directory (in /dev/shm where there is one).
//!
//! The store holds the credit-module examples' module (`applet-spec/vectors/credit-module.json`,
//! AES-CMAC, N = 7, balance 1500, master key `example_master`), so the vectors' messages reach
//! the policy rather than stopping at "unknown module". The input's first byte picks the
//! endpoint, the second the module id of the path (that module's, or one made of input bytes);
//! the rest is the body. Admin requests carry the bearer token. The store lives for the whole
//! run, so one input can change what the next one sees (a reload debits, a bad tag counts
//! towards blocking, `unblock` and `resync` undo it).
//!
//! Checked: no body panics the router, and every answer is below 500 — a 5xx for a body is a
//! server bug (bad input is a 4xx naming what is wrong).

#![no_main]

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use simkit_core::credit::registration::Registration;
use simkit_core::crypto::Profile;
use simkit_core::vectors::{EXAMPLE_LIMITS, EXAMPLE_MODULE_ID, example_master};
use simkit_server::{AppState, SoftwareKey, Store, router};
use tower::ServiceExt;

const TOKEN: &str = "fuzz-admin-token";

struct Env {
    rt: tokio::runtime::Runtime,
    app: Router,
    _dir: tempfile::TempDir,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        // In memory where the machine has /dev/shm: every reload commits, and fsyncs to a disk
        // cut the executions per second twentyfold. libFuzzer leaves by `exit`, which drops no
        // static, so the directory is named by the process id and each run removes those of
        // runs that are gone.
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            remove_stale(shm);
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir_in(base)
            .expect("a temporary directory");
        let profile = Profile::AesCmac;
        let master = example_master(profile);
        let store = Store::open(
            &dir.path().join("signer.sqlite"),
            Box::new(SoftwareKey::new(master.clone())),
        )
        .expect("a SQLite store");
        let registration = Registration::new(
            EXAMPLE_MODULE_ID,
            profile,
            &master,
            7,
            1_500,
            EXAMPLE_LIMITS,
            5,
            "https://reload.example/v1/reload".into(),
        )
        .expect("the example registration");
        store
            .import(&registration, "fuzz-account", 1_000_000_000)
            .expect("the example module imports");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        Env {
            rt,
            app: router(AppState::new(store, Some(TOKEN.into()))),
            _dir: dir,
        }
    })
}

/// Prefix of the store directories, followed by the process id.
const PREFIX: &str = "simkit-fuzz-server-";

/// Removes the store directories of processes that no longer run.
fn remove_stale(base: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|r| r.split('-').next())
        else {
            continue;
        };
        if !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Percent-encodes every byte but unreserved ones, so any bytes make a valid path segment.
fn segment(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [op, id_sel, rest @ ..] = data else {
        return;
    };
    // Below 0x80: the registered module; else the next (id_sel & 0x0F) bytes are the id.
    let (id, body) = if *id_sel < 0x80 {
        (
            EXAMPLE_MODULE_ID
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect(),
            rest,
        )
    } else {
        let (id, body) = rest.split_at(usize::from(id_sel & 0x0F).min(rest.len()));
        (segment(id), body)
    };
    let (method, path, admin) = match op % 12 {
        0 => ("POST", "/v1/reload".to_owned(), false),
        1 => ("POST", "/v1/completion".to_owned(), false),
        2 => ("POST", "/v1/modules".to_owned(), true),
        3 => ("POST", format!("/v1/modules/{id}/resync"), true),
        4 => ("POST", format!("/v1/modules/{id}/limits"), true),
        5 => ("POST", format!("/v1/modules/{id}/limits/confirm"), true),
        6 => ("POST", format!("/v1/modules/{id}/unblock"), true),
        7 => ("GET", format!("/v1/modules/{id}"), true),
        8 => ("GET", format!("/v1/accounts/{}", segment(body)), true),
        9 => ("GET", format!("/v1/reload/{id}/{}", segment(body)), false),
        10 => ("GET", "/v1/ledger".to_owned(), true),
        _ => ("GET", "/v1/fraud".to_owned(), true),
    };
    let mut req = Request::builder().method(method).uri(&path);
    if admin {
        req = req
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json");
    } else {
        req = req.header("content-type", "application/octet-stream");
    }
    let req = req
        .body(Body::from(body.to_vec()))
        .expect("the request builds (the path is percent-encoded)");
    let env = env();
    let resp = env
        .rt
        .block_on(env.app.clone().oneshot(req))
        .expect("the router is infallible");
    let status = resp.status();
    assert!(
        status < StatusCode::INTERNAL_SERVER_ERROR,
        "{method} {path} with body {body:02X?} answered {status}"
    );
});
