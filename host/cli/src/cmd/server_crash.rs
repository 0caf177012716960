//! `simkit server crashtest`: crash consistency of the grant signer.
//!
//! Starts `simkit serve` on a database, registers simulated modules, and drives concurrent
//! reload rounds from them while the main thread kill -9s the server at random moments
//! (`--seed` makes the kill schedule and every choice of the clients reproducible; the moment a
//! kill lands relative to the load is up to the scheduler) and restarts it on the same
//! database. Clients retry whatever got no answer with the same message — as an appliance
//! would — and a seeded fraction of rounds also "lose" a received grant and ask again, which must
//! bring the identical stored bytes. After the kills every module finishes its round, and the
//! run is reconciled over the admin API:
//!
//! - every granted grant a module received is in the ledger exactly once, with its amount and
//!   the module's account; a declined grant has no ledger row;
//! - no ledger row without a grant the module received (no debit without a delivered, stored
//!   grant), and every ledger N is below the server's S;
//! - the server's S equals the module's N (every round was finished), the last stored grant is
//!   the one the module applied, the completion of it arrived, the module is active and the
//!   fraud log holds nothing about it;
//! - each account's balance is its initial funds minus its ledger debits, the module's balance is
//!   the sum of its grants, and the accounts plus the float add up to the funds imported.
//!
//! Any violation is listed precisely and the exit status is 1; the working directory (database,
//! server log) is then kept and printed.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use simkit_core::credit::message::{GrantStatus, ReloadGrant};
use simkit_core::credit::module::Module;

use super::server_sim::{
    CallError, Client, Fleet, Rng, Serve, ServeConfig, clock_seed, parse_duration, throwaway_master,
};
use crate::output::Output;

/// Arguments of `simkit server crashtest`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The database for `simkit serve` (`sqlite:PATH` or `postgres://…`); default: a new SQLite
    /// file in a temporary directory.
    #[arg(long, value_name = "DB")]
    db: Option<String>,
    /// Simulated modules.
    #[arg(long, default_value_t = 16)]
    modules: u32,
    /// Client threads driving rounds (each owns a share of the modules).
    #[arg(long, default_value_t = 8)]
    concurrency: u32,
    /// How many times to kill -9 the server.
    #[arg(long, default_value_t = 5)]
    kills: u32,
    /// Seed of the kill schedule and of the clients' choices (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Shortest server uptime between kills.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    min_uptime: Duration,
    /// Longest server uptime between kills.
    #[arg(long, default_value = "700ms", value_parser = parse_duration)]
    max_uptime: Duration,
    /// Give up on a message the server has not answered for this long.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    give_up: Duration,
}

/// One grant as the module received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Received {
    /// The request's N (the grant carries N + 1).
    pub(crate) n: u32,
    /// G, when granted; `None` when declined.
    pub(crate) granted: Option<u32>,
    /// The grant, byte for byte.
    pub(crate) bytes: Vec<u8>,
}

/// A simulated module and what it received.
struct Sim {
    index: u32,
    module: Module,
    received: Vec<Received>,
    /// A violation made this module unusable; it is left out of further rounds.
    broken: bool,
}

/// What the clients counted.
#[derive(Default)]
struct Counters {
    rounds: AtomicU64,
    granted: AtomicU64,
    declined: AtomicU64,
    retries: AtomicU64,
    lost_and_resent: AtomicU64,
}

struct Shared {
    url: RwLock<String>,
    stop: AtomicBool,
    abort: AtomicBool,
    violations: Mutex<Vec<String>>,
    counters: Counters,
    give_up: Duration,
}

impl Shared {
    fn url(&self) -> String {
        self.url.read().map(|u| u.clone()).unwrap_or_default()
    }

    fn violation(&self, text: String) {
        if let Ok(mut v) = self.violations.lock() {
            v.push(text);
        }
    }
}

/// POSTs `body` until the server answers: transport failures and 5xx are retried (the server
/// may be dead or restarting); anything else is returned.
fn post_until_answered(
    sh: &Shared,
    client: &Client,
    path: &str,
    body: &[u8],
) -> Result<Vec<u8>, CallError> {
    let start = Instant::now();
    loop {
        match client.post_bytes(&sh.url(), path, body) {
            Err(e) if e.retryable() => {
                if start.elapsed() > sh.give_up || sh.abort.load(Ordering::Relaxed) {
                    return Err(e);
                }
                sh.counters.retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn id_hex(sim: &Sim) -> String {
    sim.module
        .state()
        .module_id
        .map(hex::encode_upper)
        .unwrap_or_default()
}

/// One full round for `sim`, retried through kills. Violations are registered in `sh`.
fn round(sh: &Shared, client: &Client, sim: &mut Sim, rng: &mut Rng) {
    let id = id_hex(sim);
    let amount = sim
        .module
        .state()
        .pending_r()
        .unwrap_or_else(|| u32::try_from(rng.between(100, 5000)).unwrap_or(100));
    let request = match sim.module.initiate_reload(amount) {
        Ok(r) => r,
        Err(e) => {
            sh.violation(format!("module {id}: INITIATE RELOAD refused: {e}"));
            sim.broken = true;
            return;
        }
    };
    let n = sim.module.state().n;
    let grant = match post_until_answered(sh, client, "/v1/reload", &request) {
        Ok(g) => g,
        Err(e) => {
            sh.violation(format!("module {id} N={n}: reload request answered {e}"));
            sim.broken = true;
            return;
        }
    };
    // Now and then the grant is "lost" on the way: the appliance asks again with the same
    // request, and must get the identical stored grant (no second debit).
    if rng.below(8) == 0 {
        match post_until_answered(sh, client, "/v1/reload", &request) {
            Ok(again) if again == grant => {
                sh.counters.lost_and_resent.fetch_add(1, Ordering::Relaxed);
            }
            Ok(again) => sh.violation(format!(
                "module {id} N={n}: the retried request got different bytes: {} then {}",
                hex::encode_upper(&grant),
                hex::encode_upper(&again)
            )),
            Err(e) => sh.violation(format!("module {id} N={n}: retried request answered {e}")),
        }
    }
    let granted = match ReloadGrant::parse(&grant) {
        Ok(g) => match g.status {
            GrantStatus::Granted => Some(g.granted),
            GrantStatus::Declined(_) => None,
        },
        Err(e) => {
            sh.violation(format!("module {id} N={n}: the answer is not a grant: {e}"));
            sim.broken = true;
            return;
        }
    };
    sim.received.push(Received {
        n,
        granted,
        bytes: grant.clone(),
    });
    let ack = match sim.module.apply_grant(&grant) {
        Ok(a) => a,
        Err(e) => {
            sh.violation(format!(
                "module {id} N={n}: the module refused its grant: {e}"
            ));
            sim.broken = true;
            return;
        }
    };
    if let Err(e) = post_until_answered(sh, client, "/v1/completion", &ack) {
        sh.violation(format!("module {id} N={n}: completion answered {e}"));
        sim.broken = true;
        return;
    }
    let c = &sh.counters;
    c.rounds.fetch_add(1, Ordering::Relaxed);
    match granted {
        Some(_) => c.granted.fetch_add(1, Ordering::Relaxed),
        None => c.declined.fetch_add(1, Ordering::Relaxed),
    };
}

fn worker(sh: &Shared, mut sims: Vec<Sim>, seed: u64) -> Vec<Sim> {
    let client = Client::new(None);
    let mut rng = Rng::new(seed);
    while !sh.stop.load(Ordering::Relaxed) && !sh.abort.load(Ordering::Relaxed) {
        let usable: Vec<usize> = (0..sims.len()).filter(|&i| !sims[i].broken).collect();
        if usable.is_empty() {
            break;
        }
        let pick = usable[usize::try_from(rng.below(usable.len() as u64)).unwrap_or(0)];
        if let Some(sim) = sims.get_mut(pick) {
            round(sh, &client, sim, &mut rng);
        }
    }
    sims
}

/// A module as the reconciliation sees it: the client's side and the server's.
pub(crate) struct ModuleFacts {
    /// Module id, hex.
    pub(crate) id: String,
    /// Its account.
    pub(crate) account: String,
    /// Funds imported into the account.
    pub(crate) funds: i64,
    /// The module's N.
    pub(crate) module_n: u32,
    /// The module's balance.
    pub(crate) module_balance: i64,
    /// Grants received, in order.
    pub(crate) received: Vec<Received>,
    /// `GET /v1/modules/{id}` (the server's view).
    pub(crate) server: serde_json::Value,
}

/// Checks the run's invariants; returns one line per violation.
pub(crate) fn reconcile(
    modules: &[ModuleFacts],
    ledger: &[serde_json::Value],
    fraud: &[serde_json::Value],
    float_delta: i64,
) -> Vec<String> {
    let mut v = Vec::new();
    // (module, N) → amounts debited.
    let mut debits: BTreeMap<(String, u32), Vec<(i64, String)>> = BTreeMap::new();
    for row in ledger {
        let (Some(id), Some(n), Some(amount)) = (
            row["module_id"].as_str(),
            row["n"].as_u64().and_then(|n| u32::try_from(n).ok()),
            row["amount"].as_i64(),
        ) else {
            v.push(format!("ledger row does not parse: {row}"));
            continue;
        };
        debits.entry((id.to_owned(), n)).or_default().push((
            amount,
            row["debit_account"].as_str().unwrap_or("").to_owned(),
        ));
    }
    let mut total_funds = 0i64;
    let mut total_balances = 0i64;
    for m in modules {
        let id = &m.id;
        total_funds += m.funds;
        let mine: BTreeMap<u32, &Vec<(i64, String)>> = debits
            .range((id.clone(), 0)..=(id.clone(), u32::MAX))
            .map(|((_, n), rows)| (*n, rows))
            .collect();
        let mut debited = 0i64;
        for (n, rows) in &mine {
            debited += rows.iter().map(|(a, _)| a).sum::<i64>();
            if rows.len() > 1 {
                v.push(format!(
                    "module {id} N={n}: debited {} times: {rows:?}",
                    rows.len()
                ));
            }
            if let Some((_, acct)) = rows.iter().find(|(_, a)| *a != m.account) {
                v.push(format!(
                    "module {id} N={n}: debited from {acct}, not its account {}",
                    m.account
                ));
            }
            match m.received.iter().find(|r| r.n == *n) {
                None => v.push(format!(
                    "module {id} N={n}: ledger debit of {} without a grant the module received",
                    rows.first().map_or(0, |r| r.0)
                )),
                Some(r) if r.granted.is_none() => v.push(format!(
                    "module {id} N={n}: ledger debit for a grant the module received as declined"
                )),
                Some(_) => {}
            }
        }
        let mut granted_sum = 0i64;
        let mut seen = BTreeMap::new();
        for r in &m.received {
            if let Some(prev) = seen.insert(r.n, &r.bytes) {
                if *prev != r.bytes {
                    v.push(format!(
                        "module {id} N={}: two different grants received",
                        r.n
                    ));
                }
            }
            match (r.granted, mine.get(&r.n)) {
                (Some(g), Some(rows)) => {
                    granted_sum += i64::from(g);
                    if rows.first().map(|x| x.0) != Some(i64::from(g)) {
                        v.push(format!(
                            "module {id} N={}: received a grant of {g}, the ledger debited {rows:?}",
                            r.n
                        ));
                    }
                }
                (Some(g), None) => {
                    granted_sum += i64::from(g);
                    v.push(format!(
                        "module {id} N={}: received a grant of {g} that is not in the ledger",
                        r.n
                    ));
                }
                (None, _) => {}
            }
        }
        if m.module_balance != granted_sum {
            v.push(format!(
                "module {id}: balance {} but its grants add up to {granted_sum}",
                m.module_balance
            ));
        }
        let rec = &m.server["record"];
        let s = rec["s"].as_u64();
        if s != Some(u64::from(m.module_n)) {
            v.push(format!(
                "module {id}: server S = {s:?}, module N = {} (every round was finished: they must be equal)",
                m.module_n
            ));
        }
        if let Some(max_n) = mine.keys().next_back() {
            if s.is_some_and(|s| u64::from(*max_n) >= s) {
                v.push(format!(
                    "module {id}: ledger debit at N={max_n} but the server's S is {s:?} (no stored grant)"
                ));
            }
        }
        if m.module_n > 0 {
            if rec["completed_through"].as_u64() != Some(u64::from(m.module_n)) {
                v.push(format!(
                    "module {id}: completed_through {} but the module acknowledged N={}",
                    rec["completed_through"], m.module_n
                ));
            }
            let last = m.received.last().map(|r| hex::encode_upper(&r.bytes));
            let stored = rec["last_grant"].as_str().map(str::to_uppercase);
            if last != stored {
                v.push(format!(
                    "module {id}: the server's stored grant {stored:?} is not the one the module applied {last:?}"
                ));
            }
        }
        if rec["state"].as_str() != Some("active") {
            v.push(format!("module {id}: server state {}", rec["state"]));
        }
        let balance = m.server["account_balance"].as_i64().unwrap_or(i64::MIN);
        total_balances += balance;
        if balance != m.funds - debited {
            v.push(format!(
                "account {}: balance {balance}, expected {} funds − {debited} debited",
                m.account, m.funds
            ));
        }
        for f in fraud.iter().filter(|f| f["module_id"].as_str() == Some(id)) {
            v.push(format!("module {id}: fraud event registered: {f}"));
        }
    }
    if total_balances + float_delta != total_funds {
        v.push(format!(
            "funds not conserved: accounts {total_balances} + float {float_delta} ≠ {total_funds} imported"
        ));
    }
    v
}

fn get_list(client: &Client, url: &str, path: &str) -> Result<Vec<serde_json::Value>> {
    let v = client.get_admin(url, path)?;
    match v {
        serde_json::Value::Array(a) => Ok(a),
        other => other
            .get("entries")
            .and_then(|e| e.as_array().cloned())
            .with_context(|| format!("GET {path}: not a list")),
    }
}

fn float_balance(client: &Client, url: &str) -> Result<i64> {
    client.get_admin(url, "/v1/accounts/float")?["balance"]
        .as_i64()
        .context("GET /v1/accounts/float: no balance")
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    if args.modules == 0 || args.concurrency == 0 {
        bail!("--modules and --concurrency must be at least 1");
    }
    if args.min_uptime > args.max_uptime {
        bail!("--min-uptime is above --max-uptime");
    }
    let seed = args.seed.unwrap_or_else(clock_seed);
    let mut rng = Rng::new(seed);
    let master = throwaway_master(seed);
    let prefix = u32::try_from(Rng::new(clock_seed()).next_u64() >> 32)
        .unwrap_or(0)
        .to_be_bytes();
    let fleet = Fleet::new(master.clone(), prefix)?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let db = args
        .db
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("crash.db").display()));
    let token = format!("crash-{:016x}", rng.next_u64());
    let cfg = ServeConfig::in_dir(dir.path(), &db, &master, &token)?;
    let mut server = Serve::start(&cfg)?;
    let admin = Client::new(Some(token));
    let float0 = float_balance(&admin, &server.url)?;

    // Register; a quarter of the accounts are small, so declines (insufficient funds) happen too.
    let mut funds = Vec::new();
    let mut per_worker: Vec<Vec<Sim>> = (0..args.concurrency).map(|_| Vec::new()).collect();
    for i in 0..args.modules {
        let f = if rng.below(4) == 0 {
            i64::try_from(rng.between(2_000, 20_000)).unwrap_or(2_000)
        } else {
            1_000_000_000
        };
        admin
            .import(&server.url, &fleet, i, f)
            .map_err(|e| anyhow::anyhow!("importing module {i}: {e}"))?;
        funds.push(f);
        let w = usize::try_from(i % args.concurrency).unwrap_or(0);
        if let Some(list) = per_worker.get_mut(w) {
            list.push(Sim {
                index: i,
                module: fleet.module(i)?,
                received: Vec::new(),
                broken: false,
            });
        }
    }

    let sh = Arc::new(Shared {
        url: RwLock::new(server.url.clone()),
        stop: AtomicBool::new(false),
        abort: AtomicBool::new(false),
        violations: Mutex::new(Vec::new()),
        counters: Counters::default(),
        give_up: args.give_up,
    });
    let start = Instant::now();
    let handles: Vec<_> = per_worker
        .into_iter()
        .enumerate()
        .map(|(w, sims)| {
            let sh = sh.clone();
            let s = seed ^ ((w as u64 + 1) << 32);
            std::thread::spawn(move || worker(&sh, sims, s))
        })
        .collect();

    let uptime = |rng: &mut Rng| {
        let lo = u64::try_from(args.min_uptime.as_millis()).unwrap_or(0);
        let hi = u64::try_from(args.max_uptime.as_millis()).unwrap_or(lo);
        Duration::from_millis(rng.between(lo, hi))
    };
    let mut kills = Vec::new();
    for k in 0..args.kills {
        std::thread::sleep(uptime(&mut rng));
        let rounds = sh.counters.rounds.load(Ordering::Relaxed);
        server.kill9()?;
        // Sometimes the server stays down a little while clients keep retrying.
        std::thread::sleep(Duration::from_millis(rng.below(50)));
        server = match Serve::start(&cfg) {
            Ok(s) => s,
            Err(e) => {
                sh.abort.store(true, Ordering::Relaxed);
                sh.violation(format!("restart after kill {}: {e:#}", k + 1));
                break;
            }
        };
        if let Ok(mut u) = sh.url.write() {
            u.clone_from(&server.url);
        }
        kills.push(rounds);
        if !out.is_json() && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprint!(
                "\rkill {}/{}: {} rounds done, {} retries   ",
                k + 1,
                args.kills,
                sh.counters.rounds.load(Ordering::Relaxed),
                sh.counters.retries.load(Ordering::Relaxed)
            );
        }
    }
    std::thread::sleep(uptime(&mut rng));
    sh.stop.store(true, Ordering::Relaxed);
    let mut sims = Vec::new();
    for h in handles {
        match h.join() {
            Ok(s) => sims.extend(s),
            Err(_) => sh.violation("a client thread panicked".to_owned()),
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if !out.is_json() && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!();
    }

    // Reconcile over the admin API of the (last restarted) server.
    let url = server.url.clone();
    let mut facts = Vec::new();
    sims.sort_by_key(|s| s.index);
    for sim in &sims {
        let id = hex::encode_upper(fleet.id(sim.index));
        let view = admin.get_admin(&url, &format!("/v1/modules/{id}"))?;
        facts.push(ModuleFacts {
            account: fleet.account(sim.index),
            funds: funds
                .get(usize::try_from(sim.index).unwrap_or(usize::MAX))
                .copied()
                .unwrap_or(0),
            module_n: sim.module.state().n,
            module_balance: i64::from(sim.module.state().balance),
            received: sim.received.clone(),
            server: view,
            id,
        });
    }
    let ledger = get_list(&admin, &url, "/v1/ledger")?;
    let fraud = get_list(&admin, &url, "/v1/fraud")?;
    let float_delta = float_balance(&admin, &url)? - float0;
    let mut violations = sh.violations.lock().map(|v| v.clone()).unwrap_or_default();
    violations.extend(reconcile(&facts, &ledger, &fraud, float_delta));
    server.stop(Duration::from_secs(10))?;

    let c = &sh.counters;
    let ok = violations.is_empty();
    let kept = if ok {
        None
    } else {
        Some(dir.keep().display().to_string())
    };
    let ledger_rows = facts
        .iter()
        .map(|f| f.received.iter().filter(|r| r.granted.is_some()).count())
        .sum::<usize>();
    let value = json!({
        "ok": ok,
        "seed": seed,
        "db": db,
        "modules": args.modules,
        "concurrency": args.concurrency,
        "kills": kills.len(),
        "seconds": elapsed,
        "rounds": c.rounds.load(Ordering::Relaxed),
        "granted": c.granted.load(Ordering::Relaxed),
        "declined": c.declined.load(Ordering::Relaxed),
        "lost_grants_resent_identically": c.lost_and_resent.load(Ordering::Relaxed),
        "retries": c.retries.load(Ordering::Relaxed),
        "ledger_rows_checked": ledger_rows,
        "violations": violations,
        "kept_dir": kept,
    });
    let mut text = vec![format!(
        "crashtest (seed {seed}, {db}): {} kills in {elapsed:.1} s; {} rounds ({} granted, {} declined), {} lost grants resent identically, {} retries through kills",
        kills.len(),
        c.rounds.load(Ordering::Relaxed),
        c.granted.load(Ordering::Relaxed),
        c.declined.load(Ordering::Relaxed),
        c.lost_and_resent.load(Ordering::Relaxed),
        c.retries.load(Ordering::Relaxed),
    )];
    if ok {
        text.push(format!(
            "reconciled {} modules, {ledger_rows} ledger rows: every received grant debited exactly once, no debit without a received grant, S = N everywhere, funds conserved",
            args.modules
        ));
    } else {
        text.push(format!("{} VIOLATIONS:", violations.len()));
        text.extend(violations.iter().map(|v| format!("  {v}")));
        if let Some(k) = &kept {
            text.push(format!("database and server log kept in {k}"));
        }
    }
    out.emit(&value, &text);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn facts() -> Vec<ModuleFacts> {
        vec![ModuleFacts {
            id: "0000000100000000".into(),
            account: "acct-a".into(),
            funds: 1000,
            module_n: 2,
            module_balance: 300,
            received: vec![
                Received {
                    n: 0,
                    granted: Some(300),
                    bytes: vec![1],
                },
                Received {
                    n: 1,
                    granted: None,
                    bytes: vec![2],
                },
            ],
            server: json!({
                "record": {"s": 2, "completed_through": 2, "last_grant": "02", "state": "active"},
                "account_balance": 700,
            }),
        }]
    }

    fn row(n: u32, amount: i64) -> serde_json::Value {
        json!({"module_id": "0000000100000000", "n": n, "amount": amount, "debit_account": "acct-a"})
    }

    #[test]
    fn a_consistent_run_reconciles() {
        assert_eq!(
            reconcile(&facts(), &[row(0, 300)], &[], 300),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_kind_of_inconsistency_is_named() {
        let f = facts();
        // A received grant that is not in the ledger (and funds then do not add up).
        let v = reconcile(&f, &[], &[], 300);
        assert!(v.iter().any(|l| l.contains("not in the ledger")), "{v:?}");
        // A debit for the declined round.
        let v = reconcile(&f, &[row(0, 300), row(1, 50)], &[], 350);
        assert!(
            v.iter().any(|l| l.contains("received as declined")),
            "{v:?}"
        );
        // A debit nobody received, beyond S.
        let v = reconcile(&f, &[row(0, 300), row(2, 50)], &[], 350);
        assert!(v.iter().any(|l| l.contains("without a grant")), "{v:?}");
        assert!(v.iter().any(|l| l.contains("no stored grant")), "{v:?}");
        // Money appearing from nowhere in the float.
        let v = reconcile(&f, &[row(0, 300)], &[], 301);
        assert!(v.iter().any(|l| l.contains("not conserved")), "{v:?}");
        // S ahead of the module, a fraud event.
        let mut g = facts();
        g[0].server["record"]["s"] = json!(3);
        let v = reconcile(
            &g,
            &[row(0, 300)],
            &[json!({"module_id": "0000000100000000"})],
            300,
        );
        assert!(v.iter().any(|l| l.contains("server S")), "{v:?}");
        assert!(v.iter().any(|l| l.contains("fraud event")), "{v:?}");
    }
}
