//! `simkit server bench`: load on the grant signer — full reload rounds (request → grant →
//! module applies it → completion ack) from simulated modules at several concurrencies.
//!
//! Each worker thread has its own HTTP agent (kept-alive connections) and owns the modules whose
//! index is congruent to its number, so no module is ever used by two clients at once; it picks
//! one of them at random for every round, so the database is hit across all registered modules.
//! Module state lives only for modules used so far (a map), so a million registered modules cost
//! memory only for those touched.
//!
//! Reported per concurrency: completed rounds per second (each round is one grant), the latency
//! of `POST /v1/reload` (the grant) and of the whole round, errors by kind, and the CPU time of
//! this client and of the server (when the tool started it) — so a client bottleneck shows.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use simkit_core::credit::module::Module;
use simkit_core::crypto::SecretKey;
use simkit_server::{KeySource, SoftwareKey, Store};

use super::server_sim::{
    Client, Fleet, Rng, Serve, ServeConfig, clock_seed, count, cpu_seconds, parse_duration,
    percentiles, throwaway_master,
};
use crate::output::Output;

/// Arguments of `simkit server bench`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").args(["url", "db"])))]
pub(crate) struct Args {
    /// A running signer to load (needs --master-key-file or --master-key-env and
    /// --admin-token-env).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Start `simkit serve` on this database (`sqlite:PATH` or `postgres://…`); default: a new
    /// SQLite file in a temporary directory.
    #[arg(long, value_name = "DB")]
    db: Option<String>,
    /// The issuer master key (hex file); default with --db: a throwaway key.
    #[arg(long, value_name = "FILE")]
    master_key_file: Option<std::path::PathBuf>,
    /// Environment variable holding the master key as hex.
    #[arg(long, value_name = "VAR")]
    master_key_env: Option<String>,
    /// Environment variable holding the admin token of the --url signer.
    #[arg(long, value_name = "VAR")]
    admin_token_env: Option<String>,
    /// Modules to register before the rounds.
    #[arg(long, default_value_t = 1000)]
    modules: u32,
    /// Concurrencies to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<u32>,
    /// How long to run each concurrency (e.g. 10s, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Run exactly this many rounds per concurrency instead of --duration.
    #[arg(long)]
    rounds: Option<u64>,
    /// Credits asked for in every reload.
    #[arg(long, default_value_t = 100)]
    amount: u32,
    /// Register the modules straight into the database (`--db` mode only), 1,000 per
    /// transaction (`Store::import_many`), before the signer starts — instead of one HTTP
    /// import per module. For 100,000 to 1,000,000 modules.
    #[arg(long, conflicts_with = "url")]
    bulk_import: bool,
    /// Parallel connections for the import.
    #[arg(long, default_value_t = 16)]
    import_concurrency: u32,
    /// Seed of the module choice (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
}

/// What one concurrency level measured.
struct Level {
    concurrency: u32,
    rounds: u64,
    seconds: f64,
    reload_us: Vec<u64>,
    round_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
    client_cpu: Option<f64>,
    server_cpu: Option<f64>,
}

/// Shared between the workers of one level.
struct Shared {
    url: String,
    fleet: Arc<Fleet>,
    modules: Arc<Mutex<HashMap<u32, Module>>>,
    total: u32,
    amount: u32,
    stop: AtomicBool,
    claimed: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    limit: Option<u64>,
    deadline: Instant,
}

/// One worker's results.
#[derive(Default)]
struct WorkerOut {
    reload_us: Vec<u64>,
    round_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn worker(sh: &Shared, me: u32, concurrency: u32, seed: u64) -> WorkerOut {
    let client = Client::new(None);
    let mut rng = Rng::new(seed);
    let mut out = WorkerOut::default();
    // The modules this worker owns: me, me + c, me + 2c, …
    let owned = u64::from(sh.total.saturating_sub(me).div_ceil(concurrency));
    if owned == 0 {
        return out;
    }
    loop {
        if sh.stop.load(Ordering::Relaxed) || Instant::now() >= sh.deadline {
            break;
        }
        if let Some(limit) = sh.limit {
            if sh.claimed.fetch_add(1, Ordering::Relaxed) >= limit {
                break;
            }
        }
        let index = me + concurrency * u32::try_from(rng.below(owned)).unwrap_or(0);
        let taken = sh.modules.lock().ok().and_then(|mut m| m.remove(&index));
        let mut module = match taken {
            Some(m) => m,
            None => match sh.fleet.module(index) {
                Ok(m) => m,
                Err(e) => {
                    count(&mut out.errors, format!("client: {e}"), 1);
                    continue;
                }
            },
        };
        let ok = round(sh, &client, &mut module, &mut out);
        if ok {
            sh.done.fetch_add(1, Ordering::Relaxed);
        } else {
            sh.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut m) = sh.modules.lock() {
            m.insert(index, module);
        }
    }
    out
}

/// One reload round; errors are counted, the module keeps any pending request for later.
fn round(sh: &Shared, client: &Client, module: &mut Module, out: &mut WorkerOut) -> bool {
    // A request left pending by an earlier failure is re-issued with its own amount.
    let amount = module.state().pending_r().unwrap_or(sh.amount);
    let request = match module.initiate_reload(amount) {
        Ok(r) => r,
        Err(e) => {
            count(&mut out.errors, format!("module: {e}"), 1);
            return false;
        }
    };
    let start = Instant::now();
    let grant = match client.post_bytes(&sh.url, "/v1/reload", &request) {
        Ok(g) => g,
        Err(e) => {
            count(&mut out.errors, format!("reload {}", e.kind()), 1);
            return false;
        }
    };
    out.reload_us.push(micros(start.elapsed()));
    let ack = match module.apply_grant(&grant) {
        Ok(a) => a,
        Err(e) => {
            count(&mut out.errors, format!("module refused the grant: {e}"), 1);
            return false;
        }
    };
    if let Err(e) = client.post_bytes(&sh.url, "/v1/completion", &ack) {
        count(&mut out.errors, format!("completion {}", e.kind()), 1);
        return false;
    }
    out.round_us.push(micros(start.elapsed()));
    true
}

fn spinner(out: &Output) -> ProgressBar {
    if out.is_json() || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[allow(clippy::too_many_arguments)]
fn run_level(
    url: &str,
    fleet: &Arc<Fleet>,
    modules: &Arc<Mutex<HashMap<u32, Module>>>,
    args: &Args,
    concurrency: u32,
    seed: u64,
    server_pid: Option<u32>,
    out: &Output,
) -> Level {
    let sh = Arc::new(Shared {
        url: url.to_owned(),
        fleet: fleet.clone(),
        modules: modules.clone(),
        total: args.modules,
        amount: args.amount,
        stop: AtomicBool::new(false),
        claimed: AtomicU64::new(0),
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        limit: args.rounds,
        deadline: if args.rounds.is_some() {
            Instant::now() + Duration::from_secs(365 * 24 * 3600)
        } else {
            Instant::now() + args.duration
        },
    });
    let bar = spinner(out);
    let cpu0 = cpu_seconds(None);
    let server0 = server_pid.and_then(|p| cpu_seconds(Some(p)));
    let start = Instant::now();
    let handles: Vec<_> = (0..concurrency)
        .map(|w| {
            let sh = sh.clone();
            let s = seed ^ (u64::from(w) << 40) ^ u64::from(concurrency);
            std::thread::spawn(move || worker(&sh, w, concurrency, s))
        })
        .collect();
    while handles.iter().any(|h| !h.is_finished()) {
        let done = sh.done.load(Ordering::Relaxed);
        let secs = start.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "concurrency {concurrency}: {done} rounds, {:.0}/s, {} failed",
            done as f64 / secs,
            sh.failed.load(Ordering::Relaxed)
        ));
        std::thread::sleep(Duration::from_millis(100));
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut level = Level {
        concurrency,
        rounds: sh.done.load(Ordering::Relaxed),
        seconds,
        reload_us: Vec::new(),
        round_us: Vec::new(),
        errors: BTreeMap::new(),
        client_cpu: cpu_seconds(None).zip(cpu0).map(|(b, a)| b - a),
        server_cpu: server_pid
            .and_then(|p| cpu_seconds(Some(p)))
            .zip(server0)
            .map(|(b, a)| b - a),
    };
    for h in handles {
        match h.join() {
            Ok(w) => {
                level.reload_us.extend(w.reload_us);
                level.round_us.extend(w.round_us);
                for (k, v) in w.errors {
                    count(&mut level.errors, k, v);
                }
            }
            Err(_) => count(&mut level.errors, "client: worker panicked".to_owned(), 1),
        }
    }
    level
}

/// Registers modules `0..n` over the admin API, `parallel` at a time.
fn import(
    url: &str,
    token: &str,
    fleet: &Arc<Fleet>,
    n: u32,
    parallel: u32,
    out: &Output,
) -> Result<f64> {
    let next = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let bar = if out.is_json() || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(u64::from(n));
        if let Ok(style) =
            ProgressStyle::with_template("importing [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
        {
            b.set_style(style.progress_chars("=> "));
        }
        b
    };
    let start = Instant::now();
    let handles: Vec<_> = (0..parallel.max(1))
        .map(|_| {
            let (next, done, fleet) = (next.clone(), done.clone(), fleet.clone());
            let (url, token) = (url.to_owned(), token.to_owned());
            std::thread::spawn(move || -> Result<()> {
                let client = Client::new(Some(token));
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return Ok(());
                    }
                    client
                        .import(&url, &fleet, i, 1_000_000_000_000)
                        .map_err(|e| anyhow::anyhow!("importing module {i}: {e}"))?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    while handles.iter().any(|h| !h.is_finished()) {
        bar.set_position(done.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
    for h in handles {
        match h.join() {
            Ok(r) => r?,
            Err(_) => bail!("an import thread panicked"),
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Registers modules `0..n` straight into the database `db`, 1,000 per transaction; returns
/// the seconds it took.
fn bulk_import(db: &str, master: &SecretKey, fleet: &Fleet, n: u32, out: &Output) -> Result<f64> {
    const CHUNK: u32 = 1_000;
    let store = Store::open_url(db, Box::new(SoftwareKey::new(master.clone())))
        .with_context(|| format!("opening {db} for the bulk import"))?;
    let bar = if out.is_json() || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(u64::from(n));
        if let Ok(style) = ProgressStyle::with_template(
            "importing (bulk) [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b
    };
    let start = Instant::now();
    let mut first = 0;
    while first < n {
        let last = first.saturating_add(CHUNK).min(n);
        let batch = (first..last)
            .map(|i| Ok((fleet.registration(i)?, fleet.account(i), 1_000_000_000_000)))
            .collect::<Result<Vec<_>>>()?;
        store
            .import_many(&batch)
            .with_context(|| format!("importing modules {first}..{last}"))?;
        bar.set_position(u64::from(last));
        first = last;
    }
    bar.finish_and_clear();
    Ok(start.elapsed().as_secs_f64())
}

fn master_key(args: &Args, seed: u64) -> Result<SecretKey> {
    Ok(match (&args.master_key_file, &args.master_key_env) {
        (Some(f), _) => SoftwareKey::from_file(f)?.master_key()?,
        (None, Some(v)) => SoftwareKey::from_env(v)?.master_key()?,
        (None, None) if args.url.is_none() => throwaway_master(seed),
        (None, None) => {
            bail!("--url needs the signer's master key: --master-key-file or --master-key-env")
        }
    })
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency: give positive numbers, e.g. 1,16,64");
    }
    if args.modules == 0 {
        bail!("--modules must be at least 1");
    }
    let seed = args.seed.unwrap_or_else(clock_seed);
    let master = master_key(&args, seed)?;
    let mut prefix_rng = Rng::new(clock_seed());
    let prefix = u32::try_from(prefix_rng.next_u64() >> 32)
        .unwrap_or(0)
        .to_be_bytes();
    let fleet = Arc::new(Fleet::new(master.clone(), prefix)?);

    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let mut bulk_s = None;
    let (server, url, token) = match &args.url {
        Some(url) => {
            let var = args
                .admin_token_env
                .as_deref()
                .context("--url needs --admin-token-env to register the modules")?;
            let token = std::env::var(var)
                .with_context(|| format!("environment variable {var} is not set"))?;
            (None, url.trim_end_matches('/').to_owned(), token)
        }
        None => {
            let db = args
                .db
                .clone()
                .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("bench.db").display()));
            let token = format!("bench-{:016x}", Rng::new(seed ^ 0xAD).next_u64());
            if args.bulk_import {
                bulk_s = Some(bulk_import(&db, &master, &fleet, args.modules, out)?);
            }
            let cfg = ServeConfig::in_dir(dir.path(), &db, &master, &token)?;
            let s = Serve::start(&cfg)?;
            let url = s.url.clone();
            (Some(s), url, token)
        }
    };

    let import_s = match bulk_s {
        Some(s) => s,
        None => import(
            &url,
            &token,
            &fleet,
            args.modules,
            args.import_concurrency,
            out,
        )?,
    };
    let import_rate = f64::from(args.modules) / import_s.max(1e-6);
    if !out.is_json() {
        println!(
            "registered {} modules in {import_s:.1} s ({import_rate:.0}/s, {} connections)",
            args.modules, args.import_concurrency
        );
    }

    let modules = Arc::new(Mutex::new(HashMap::new()));
    let server_pid = server.as_ref().map(Serve::pid);
    let mut levels = Vec::new();
    let mut any_error = false;
    for &c in &args.concurrency {
        let mut level = run_level(&url, &fleet, &modules, &args, c, seed, server_pid, out);
        any_error |= !level.errors.is_empty();
        let rate = level.rounds as f64 / level.seconds.max(1e-6);
        let reload = percentiles(&mut level.reload_us);
        let round = percentiles(&mut level.round_us);
        let pct = |cpu: Option<f64>| cpu.map(|c| 100.0 * c / level.seconds.max(1e-6));
        let v = json!({
            "concurrency": level.concurrency,
            "rounds": level.rounds,
            "seconds": level.seconds,
            "grants_per_s": rate,
            "reload_latency_ms": reload,
            "round_latency_ms": round,
            "errors": level.errors,
            "client_cpu_percent": pct(level.client_cpu),
            "server_cpu_percent": pct(level.server_cpu),
        });
        if !out.is_json() {
            let errors = if level.errors.is_empty() {
                "none".to_owned()
            } else {
                level
                    .errors
                    .iter()
                    .map(|(k, n)| format!("{k} ×{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let cpu = |c: Option<f64>| c.map_or("n/a".to_owned(), |c| format!("{c:.0}%"));
            println!(
                "concurrency {:>3}: {:>7.1} grants/s  reload p50 {:.2} ms p99 {:.2} ms max {:.2} ms  round p50 {:.2} ms p99 {:.2} ms  client CPU {} server CPU {}  errors: {errors}",
                level.concurrency,
                rate,
                reload["p50"].as_f64().unwrap_or(0.0),
                reload["p99"].as_f64().unwrap_or(0.0),
                reload["max"].as_f64().unwrap_or(0.0),
                round["p50"].as_f64().unwrap_or(0.0),
                round["p99"].as_f64().unwrap_or(0.0),
                cpu(pct(level.client_cpu)),
                cpu(pct(level.server_cpu)),
            );
        }
        levels.push(v);
    }
    if out.is_json() {
        println!(
            "{}",
            json!({
                "url": url,
                "db": args.db,
                "modules": args.modules,
                "import_seconds": import_s,
                "import_per_s": import_rate,
                "seed": seed,
                "levels": levels,
            })
        );
    }
    if let Some(s) = server {
        s.stop(Duration::from_secs(10))?;
    }
    Ok(if any_error {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
