//! What `simkit server bench` and `simkit server crashtest` share: a fleet of simulated credit
//! modules (simkit-core's module state machine, keys derived from the master key as
//! `simkit personalise` does), a `simkit serve` child process, and a small HTTP client that
//! sorts every failure into a kind.
//!
//! Decisions:
//! - Every run registers modules with fresh ids (a 4-byte run prefix ‖ a 4-byte index), so a
//!   database may be reused across runs without clashing with the modules' state on the server.
//! - Simulated modules use the `aes-cmac` profile, N = 0 and balance 0 at personalisation,
//!   minimum reload 1, maximum reload 1,000,000, upper limit 2^31−1, no credit line, fraud
//!   threshold 5; each module debits its own account (`acct-<module id>`).
//! - CPU time is read from `/proc/<pid>/stat` (Linux; elsewhere it is reported as absent).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use simkit_core::credit::commands::PersonalisationData;
use simkit_core::credit::module::Module;
use simkit_core::credit::registration::Registration;
use simkit_core::credit::{Limits, ModuleId};
use simkit_core::crypto::kdf::derive_module_keys;
use simkit_core::crypto::{Profile, SecretKey};

/// The environment variable the spawned `simkit serve` reads its admin token from.
pub(crate) const TOKEN_ENV: &str = "SIMKIT_SERVER_TOOL_ADMIN_TOKEN";

/// Largest protocol answer read back from the signer (grants are 37 bytes, errors short JSON).
const MAX_BODY: u64 = 64 * 1024;
/// Largest admin answer (the whole ledger of a long crash test).
const MAX_ADMIN_BODY: u64 = 1 << 30;

/// splitmix64: a small, seedable generator (reproducible runs; not for keys that matter).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; 0 gives 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }
}

/// A seed from the clock and the process id (for runs that need no reproducibility).
pub(crate) fn clock_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos as u64) ^ (u64::from(std::process::id()) << 32)
}

/// The simulated modules' master key, profile and id scheme.
pub(crate) struct Fleet {
    master: SecretKey,
    prefix: [u8; 4],
    /// The limits every module is personalised with.
    pub(crate) limits: Limits,
}

/// The fraud threshold of simulated modules.
const THRESHOLD: u16 = 5;
const PROFILE: Profile = Profile::AesCmac;

impl Fleet {
    /// A fleet under `master` (16 bytes: the aes-cmac profile) whose ids start with `prefix`.
    pub(crate) fn new(master: SecretKey, prefix: [u8; 4]) -> Result<Self> {
        if master.len() != PROFILE.master_key_len() {
            bail!(
                "the master key is {} bytes; simulated modules use the {} profile, which needs {}",
                master.len(),
                PROFILE.name(),
                PROFILE.master_key_len()
            );
        }
        Ok(Fleet {
            master,
            prefix,
            limits: Limits {
                min_reload: 1,
                max_reload: 1_000_000,
                upper: i32::MAX,
                credit_line: 0,
            },
        })
    }

    /// Module `index`'s id: the run prefix ‖ the index, big-endian.
    pub(crate) fn id(&self, index: u32) -> ModuleId {
        let mut id = [0u8; 8];
        id[..4].copy_from_slice(&self.prefix);
        id[4..].copy_from_slice(&index.to_be_bytes());
        id
    }

    /// The account module `index` is debited from.
    pub(crate) fn account(&self, index: u32) -> String {
        format!("acct-{}", hex::encode_upper(self.id(index)))
    }

    /// The registration record `simkit personalise` would write for module `index`.
    pub(crate) fn registration(&self, index: u32) -> Result<Registration> {
        Ok(Registration::new(
            self.id(index),
            PROFILE,
            &self.master,
            0,
            0,
            self.limits,
            THRESHOLD,
            String::new(),
        )?)
    }

    /// Module `index` as personalised and locked, before its first reload.
    pub(crate) fn module(&self, index: u32) -> Result<Module> {
        let id = self.id(index);
        let keys = derive_module_keys(PROFILE, &self.master, &id)?;
        let data = PersonalisationData::complete(PROFILE, id, &keys, self.limits, THRESHOLD);
        Module::personalised(&data).map_err(|e| anyhow::anyhow!("personalising {index}: {e}"))
    }
}

/// A throwaway 16-byte master key for a signer the tool starts itself.
pub(crate) fn throwaway_master(seed: u64) -> SecretKey {
    let mut rng = Rng::new(seed ^ 0x005E_ED0F_4B45_5900);
    let mut key = [0u8; 16];
    for chunk in key.chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_be_bytes());
    }
    SecretKey::new(&key)
}

/// A `simkit serve` child process.
pub(crate) struct Serve {
    child: Child,
    /// Its base URL, `http://ADDR`.
    pub(crate) url: String,
}

/// How to start `simkit serve`.
#[derive(Clone)]
pub(crate) struct ServeConfig {
    /// `--db` as given.
    pub(crate) db: String,
    /// The master key file.
    pub(crate) key_file: PathBuf,
    /// The admin token.
    pub(crate) token: String,
    /// Where the server's stderr is appended.
    pub(crate) log: PathBuf,
    /// `--listen`.
    pub(crate) listen: String,
}

impl ServeConfig {
    /// Writes `master` as hex into `dir` and configures a server on `db` logging into `dir`.
    pub(crate) fn in_dir(dir: &Path, db: &str, master: &SecretKey, token: &str) -> Result<Self> {
        let key_file = dir.join("master.hex");
        std::fs::write(&key_file, hex::encode_upper(master.expose_secret()))
            .with_context(|| format!("writing {}", key_file.display()))?;
        Ok(ServeConfig {
            db: db.to_owned(),
            key_file,
            token: token.to_owned(),
            log: dir.join("serve.log"),
            listen: "127.0.0.1:0".to_owned(),
        })
    }
}

impl Serve {
    /// Starts `simkit serve` (this same binary) and waits for the address it listens on.
    pub(crate) fn start(cfg: &ServeConfig) -> Result<Self> {
        let exe = std::env::current_exe().context("finding the simkit binary")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cfg.log)
            .with_context(|| format!("opening {}", cfg.log.display()))?;
        let mut child = Command::new(exe)
            .env(TOKEN_ENV, &cfg.token)
            .args(["--json", "serve", "--db", &cfg.db, "--listen", &cfg.listen])
            .arg("--master-key-file")
            .arg(&cfg.key_file)
            .args(["--admin-token-env", TOKEN_ENV])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting simkit serve")?;
        let Some(stdout) = child.stdout.take() else {
            bail!("simkit serve: no stdout");
        };
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .context("reading simkit serve's first line")?;
        let addr = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v.get("listening")?.as_str().map(str::to_owned));
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&cfg.log).unwrap_or_default();
            let last = log.lines().last().unwrap_or("");
            bail!(
                "simkit serve --db {} did not start: {last} (log: {})",
                cfg.db,
                cfg.log.display()
            );
        };
        // Keep draining stdout so the server never writes into a closed pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        Ok(Serve {
            child,
            url: format!("http://{addr}"),
        })
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// kill -9, and reap it.
    pub(crate) fn kill9(&mut self) -> Result<()> {
        self.child.kill().context("killing simkit serve")?;
        self.child.wait().context("reaping simkit serve")?;
        Ok(())
    }

    /// SIGTERM (graceful shutdown), and wait up to `grace` before kill -9.
    pub(crate) fn stop(mut self, grace: Duration) -> Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Why a call to the signer failed, sorted for counting.
#[derive(Debug, Clone)]
pub(crate) enum CallError {
    /// No HTTP answer (refused, reset, timeout).
    Transport(String),
    /// An HTTP error answer with the server's `code`.
    Status(u16, String),
}

impl CallError {
    /// A short kind for the error table: `transport` or `http-409-out-of-window`.
    pub(crate) fn kind(&self) -> String {
        match self {
            CallError::Transport(_) => "transport".to_owned(),
            CallError::Status(s, code) => format!("http-{s}-{code}"),
        }
    }

    /// Whether retrying the same message later can succeed (the server was down or failing).
    pub(crate) fn retryable(&self) -> bool {
        match self {
            CallError::Transport(_) => true,
            CallError::Status(s, _) => *s >= 500,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transport(e) => write!(f, "no answer: {e}"),
            CallError::Status(s, code) => write!(f, "HTTP {s} ({code})"),
        }
    }
}

/// One HTTP client (a ureq agent: a pool of kept-alive connections); one per worker thread.
pub(crate) struct Client {
    agent: ureq::Agent,
    token: Option<String>,
}

impl Client {
    pub(crate) fn new(token: Option<String>) -> Self {
        Client {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(5))
                .timeout(Duration::from_secs(60))
                .build(),
            token,
        }
    }

    fn finish(result: Result<ureq::Response, ureq::Error>) -> Result<Vec<u8>, CallError> {
        Self::finish_with(result, MAX_BODY)
    }

    fn finish_with(
        result: Result<ureq::Response, ureq::Error>,
        limit: u64,
    ) -> Result<Vec<u8>, CallError> {
        match result {
            Ok(resp) => read_body(resp, limit).map_err(|e| CallError::Transport(e.to_string())),
            Err(ureq::Error::Status(code, resp)) => {
                let body = read_body(resp, MAX_BODY).unwrap_or_default();
                let c = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("code")?.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "unknown".to_owned());
                Err(CallError::Status(code, c))
            }
            Err(e) => Err(CallError::Transport(e.to_string())),
        }
    }

    /// POSTs a protocol message (octet-stream) to `base` + `path`.
    pub(crate) fn post_bytes(
        &self,
        base: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        Self::finish(
            self.agent
                .post(&format!("{base}{path}"))
                .set("Content-Type", "application/octet-stream")
                .send_bytes(body),
        )
    }

    /// POSTs JSON to an admin endpoint.
    pub(crate) fn post_admin(
        &self,
        base: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Vec<u8>, CallError> {
        let bearer = format!("Bearer {}", self.token.as_deref().unwrap_or(""));
        Self::finish(
            self.agent
                .post(&format!("{base}{path}"))
                .set("Authorization", &bearer)
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
        )
    }

    /// GETs an admin endpoint as JSON.
    pub(crate) fn get_admin(&self, base: &str, path: &str) -> Result<serde_json::Value> {
        let bearer = format!("Bearer {}", self.token.as_deref().unwrap_or(""));
        let body = Self::finish_with(
            self.agent
                .get(&format!("{base}{path}"))
                .set("Authorization", &bearer)
                .call(),
            MAX_ADMIN_BODY,
        )
        .map_err(|e| anyhow::anyhow!("GET {path}: {e}"))?;
        serde_json::from_slice(&body).with_context(|| format!("GET {path}: not JSON"))
    }

    /// Imports module `index` of `fleet` with `funds` in its account.
    pub(crate) fn import(
        &self,
        base: &str,
        fleet: &Fleet,
        index: u32,
        funds: i64,
    ) -> Result<(), CallError> {
        let registration = fleet
            .registration(index)
            .map_err(|e| CallError::Transport(format!("building the registration: {e}")))?;
        let body = serde_json::json!({
            "registration": registration,
            "account_id": fleet.account(index),
            "initial_funds": funds,
        });
        self.post_admin(base, "/v1/modules", &body).map(|_| ())
    }
}

fn read_body(resp: ureq::Response, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    resp.into_reader().take(limit).read_to_end(&mut body)?;
    Ok(body)
}

/// User + system CPU seconds used so far by process `pid` (`None` for this process), from
/// `/proc/PID/stat`; `None` where that file does not exist.
pub(crate) fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = text.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux ABI.
    Some((utime + stime) / 100.0)
}

/// Latency percentiles (milliseconds) of a set of samples (microseconds).
pub(crate) fn percentiles(samples: &mut [u64]) -> serde_json::Value {
    samples.sort_unstable();
    let at = |q: f64| -> f64 {
        if samples.is_empty() {
            return 0.0;
        }
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples.get(rank - 1).copied().unwrap_or(0) as f64 / 1000.0
    };
    serde_json::json!({
        "p50": at(0.50),
        "p99": at(0.99),
        "max": samples.last().copied().unwrap_or(0) as f64 / 1000.0,
        "samples": samples.len(),
    })
}

/// Adds `n` to `kind` in an error table.
pub(crate) fn count(table: &mut BTreeMap<String, u64>, kind: String, n: u64) {
    *table.entry(kind).or_insert(0) += n;
}

/// Parses `10`, `10s`, `500ms`, `2m`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration like 10s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" | "min" => v * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s or m)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{text:?}: not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn percentiles_of_a_known_set() {
        let mut v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let p = percentiles(&mut v);
        assert_eq!(p["p50"], 50.0);
        assert_eq!(p["p99"], 99.0);
        assert_eq!(p["max"], 100.0);
    }

    #[test]
    fn a_fleet_module_and_its_registration_agree() {
        let fleet = Fleet::new(throwaway_master(1), [1, 2, 3, 4]).unwrap();
        let reg = fleet.registration(7).unwrap();
        assert_eq!(reg.module_id, [1, 2, 3, 4, 0, 0, 0, 7]);
        reg.check(&throwaway_master(1)).unwrap();
        assert!(reg.check(&throwaway_master(2)).is_err());
        let mut m = fleet.module(7).unwrap();
        assert_eq!(m.status().n, 0);
        assert_eq!(m.initiate_reload(100).unwrap().len(), 31);
    }

    #[test]
    fn the_generator_is_reproducible() {
        let a: Vec<u64> = (0..4)
            .scan(Rng::new(9), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .scan(Rng::new(9), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        let mut r = Rng::new(3);
        assert!((0..100).all(|_| (5..=7).contains(&r.between(5, 7))));
    }
}
