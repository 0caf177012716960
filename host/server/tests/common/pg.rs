//! A throwaway PostgreSQL cluster on loopback for tests.
//!
//! [`cluster`] finds the PostgreSQL binaries (`SIMKIT_PG_BIN`, else the newest
//! `/usr/lib/postgresql/<version>/bin`, else `PATH`), runs `initdb` in a temp dir (as the
//! `postgres` user when running as root, which initdb requires; the dir is handed to that user),
//! starts the server with `pg_ctl` on 127.0.0.1 and a free port with its socket in the temp dir,
//! waits for `pg_isready`, and hands out one fresh database per test ([`PgCluster::database`]).
//! The cluster is shared by the tests of one test binary running at the same time and stopped
//! and deleted when the last of them drops its handle — also when a test panics, since
//! unwinding drops the handle.
//!
//! Without PostgreSQL binaries the tests skip with a message, except under `CI=true`, where they
//! fail: CI installs PostgreSQL and must run them.
//!
//! The cluster runs with `fsync=off`: these tests check the signer's transactions and locking,
//! not PostgreSQL's durability, and the machine is shared.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A running throwaway cluster; stopped and deleted on drop.
pub(crate) struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
    next_db: AtomicUsize,
}

static SHARED: Mutex<Weak<PgCluster>> = Mutex::new(Weak::new());

/// Whether this run must not skip (CI).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The directory holding `initdb`, `pg_ctl` and `pg_isready`, if any.
pub(crate) fn find_bin() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os("SIMKIT_PG_BIN") {
        let d = PathBuf::from(d);
        return has(&d).then_some(d);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).find(|d| has(d)))
}

/// The shared cluster, started if no test holds it; `None` (after saying why) when PostgreSQL is
/// not installed and this is not CI.
pub(crate) fn cluster() -> Option<Arc<PgCluster>> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = shared.upgrade() {
        return Some(c);
    }
    let Some(bin) = find_bin() else {
        let msg = "PostgreSQL binaries not found (looked at $SIMKIT_PG_BIN, \
                   /usr/lib/postgresql/*/bin and PATH): install the Debian package postgresql";
        if in_ci() {
            panic!("{msg} — CI=true, so the PostgreSQL tests may not be skipped");
        }
        eprintln!("SKIPPING PostgreSQL test: {msg}");
        return None;
    };
    let c = Arc::new(PgCluster::start(bin));
    *shared = Arc::downgrade(&c);
    Some(c)
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl PgCluster {
    /// `bin/prog` as a command, run as `postgres` when we are root.
    fn cmd(&self, prog: &str) -> Command {
        let path = self.bin.join(prog);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start(bin: PathBuf) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("simkit-pg-")
            .tempdir()
            .expect("temp dir for the cluster");
        let as_postgres = is_root();
        if as_postgres {
            run(
                Command::new("chown").arg("postgres:").arg(dir.path()),
                "chown the cluster dir to postgres",
            );
        }
        let mut c = PgCluster {
            bin,
            dir,
            port: 0,
            as_postgres,
            next_db: AtomicUsize::new(0),
        };
        run(
            c.cmd("initdb")
                .arg("-D")
                .arg(c.data())
                .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
                .arg("--no-locale"),
            "initdb",
        );
        // The port is free when we look; another process may take it before the server binds,
        // so try a few.
        let mut last = String::new();
        for _ in 0..5 {
            c.port = free_port();
            let opts = format!(
                "-k {} -c listen_addresses=127.0.0.1 -p {} -c fsync=off \
                 -c synchronous_commit=off -c max_connections=400",
                c.dir.path().display(),
                c.port
            );
            let out = c
                .cmd("pg_ctl")
                .arg("-D")
                .arg(c.data())
                .arg("-l")
                .arg(c.dir.path().join("server.log"))
                .args(["-w", "-t", "60", "-o", &opts, "start"])
                .output()
                .expect("run pg_ctl");
            if out.status.success() {
                c.wait_ready();
                return c;
            }
            last = format!(
                "{}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(c.dir.path().join("server.log")).unwrap_or_default()
            );
        }
        panic!("pg_ctl start failed five times:\n{last}");
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = self
                .cmd("pg_isready")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL on port {} not ready after 60 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The port the server listens on (127.0.0.1).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name`.
    pub(crate) fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a fresh, empty database and returns its URL.
    pub(crate) fn database(&self) -> String {
        let name = format!(
            "t{}_{}",
            std::process::id(),
            self.next_db.fetch_add(1, Ordering::Relaxed)
        );
        run(
            self.cmd("createdb")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "postgres", &name]),
            "createdb",
        );
        self.url(&name)
    }

    /// Runs SQL in database `url` with `psql` (test set-up and tampering).
    pub(crate) fn psql(&self, url: &str, sql: &str) -> String {
        let out = run(
            self.cmd("psql")
                .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
                .args(["-d", url, "-c", sql]),
            "psql",
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        // The temp dir is deleted after this, by its own drop.
    }
}
