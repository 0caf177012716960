//! `simkit test`: run `.apdu` conformance scripts (apdu-tests/README.md) against a card and check
//! every response; `simkit test --record FILE -- COMMAND…` records a live session as a script.
//!
//! Everything but argument handling and printing lives in `simkit-conformance`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use simkit_card::CardUri;
use simkit_card::jcardsim::CardHostConfig;
use simkit_conformance::CardProfile;
use simkit_conformance::expr::parse_expr_line;
use simkit_conformance::pool::{CardPool, JcardsimPool, SingleCardPool};
use simkit_conformance::record::RECORD_ENV;
use simkit_conformance::report::{self, Summary};
use simkit_conformance::runner::{Outcome, RunOptions, TestReport};
use simkit_conformance::source::LogicalLine;
use simkit_conformance::suite::{discover, run_tests};

use crate::cardarg::CARD_ENV;
use crate::output::Output;

/// Arguments of `simkit test`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Test files (`.apdu`) or suite folders (searched recursively).
    #[arg(required_unless_present = "record")]
    paths: Vec<PathBuf>,
    /// The card: `jcardsim` (a fresh simulated card per test), `jcardsim://HOST:PORT/N` or
    /// `pcsc:READER` (one card for every test, in turn).
    #[arg(long, env = CARD_ENV, default_value = "jcardsim")]
    card: String,
    /// The card profile (TOML): capabilities, quirks, variables. Default: the bundled
    /// simulator's for `jcardsim`, none for other cards.
    #[arg(long, value_name = "FILE")]
    cards_profile: Option<PathBuf>,
    /// Write a JUnit XML report.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Run only tests whose path contains PATTERN.
    #[arg(long, value_name = "PATTERN")]
    filter: Option<String>,
    /// Run test files on N simulated cards in parallel (jcardsim only).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Set a variable before every test (overrides the card profile's [vars]).
    #[arg(long = "set", value_name = "NAME=EXPR")]
    set: Vec<String>,
    /// Print every step with its timing, not only failures.
    #[arg(long)]
    steps: bool,
    /// Record the card session of the simkit command after `--` as a script in FILE.
    #[arg(long, value_name = "FILE", requires = "command")]
    record: Option<PathBuf>,
    /// With --record: the simkit command to run, e.g. `-- credit status`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Cards per card host: a JVM start (~0.5 s) per this many tests, and a quick host startup.
const CARDS_PER_HOST: usize = 32;

fn parse_set(s: &str) -> Result<(String, Vec<u8>)> {
    let Some((name, expr)) = s.split_once('=') else {
        bail!("--set {s:?}: expected NAME=EXPR");
    };
    let name = name.trim();
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        bail!("--set {s:?}: {name:?} is not a variable name");
    }
    let line = LogicalLine::single("--set", 1, expr);
    let value = parse_expr_line(&line)
        .map_err(|e| anyhow::anyhow!("--set {name}: {}", e.message))?
        .eval(&Default::default())
        .map_err(|e| anyhow::anyhow!("--set {name}: {}", e.message))?;
    Ok((name.to_owned(), value))
}

fn record(file: &Path, command: &[String]) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the simkit executable")?;
    let status = std::process::Command::new(exe)
        .args(command)
        .env(RECORD_ENV, file)
        .status()
        .context("running the recorded command")?;
    if !file.exists() {
        bail!(
            "the command opened no card, nothing was recorded to {}",
            file.display()
        );
    }
    eprintln!("recorded to {}", file.display());
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1))
    })
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    if let Some(file) = &args.record {
        return record(file, &args.command);
    }
    let uri: CardUri = args
        .card
        .parse()
        .with_context(|| format!("--card {}", args.card))?;
    let (profile, profile_name) = match (&args.cards_profile, &uri) {
        (Some(p), _) => (CardProfile::load(p)?, p.display().to_string()),
        (None, CardUri::Jcardsim) => (CardProfile::jcardsim()?, "jcardsim".to_owned()),
        (None, other) => (CardProfile::unknown(&other.to_string()), other.to_string()),
    };
    let mut preset = profile.eval_vars(&profile_name)?;
    for s in &args.set {
        let (k, v) = parse_set(s)?;
        preset.insert(k, v);
    }
    let tests = discover(&args.paths, args.filter.as_deref())?;
    if tests.is_empty() {
        bail!(
            "no tests found (paths: {:?}, filter: {:?})",
            args.paths,
            args.filter
        );
    }
    let jobs = usize::from(args.jobs);
    if jobs > 1 && !matches!(uri, CardUri::Jcardsim) {
        bail!("--jobs {jobs} needs --card jcardsim (one card cannot run tests in parallel)");
    }
    if matches!(uri, CardUri::Jcardsim) {
        // One clear error instead of the same failure for every test.
        simkit_card::jcardsim::locate_jar().context("--card jcardsim")?;
    }
    let opts = RunOptions { profile, preset };

    let show_progress = !out.is_json() && std::io::stderr().is_terminal();
    let bar = if show_progress {
        let b = ProgressBar::new(u64::try_from(tests.len()).unwrap_or(u64::MAX));
        b.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{pos}/{len}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    // Per-test lines are printed in discovery order as soon as all earlier ones are done, so the
    // output is the same whatever --jobs is.
    let printed = Mutex::new(0usize);
    let pending: Mutex<Vec<Option<TestReport>>> = Mutex::new(vec![None; tests.len()]);
    let index_of = |file: &str| tests.iter().position(|t| t.display == file);
    let json = out.is_json();
    let steps = args.steps;
    let done = |r: &TestReport| {
        bar.inc(1);
        bar.set_prefix(r.suite.clone());
        bar.set_message(r.file.clone());
        if json {
            return;
        }
        let (Ok(mut p), Ok(mut n)) = (pending.lock(), printed.lock()) else {
            return;
        };
        if let Some(slot) = index_of(&r.file).and_then(|i| p.get_mut(i)) {
            *slot = Some(r.clone());
        }
        while let Some(Some(r)) = p.get_mut(*n).map(Option::take) {
            bar.suspend(|| {
                println!("{}", report::text_line(&r));
                if steps || matches!(r.outcome, Outcome::Failed { .. }) {
                    for l in report::step_lines(&r) {
                        println!("{l}");
                    }
                }
            });
            *n += 1;
        }
    };
    // Every card of a host is created when it starts; hundreds make it slow to start (over the
    // 30 s startup limit for ~400), so a worker starts a new host every CARDS_PER_HOST tests.
    let per_host = tests.len().div_ceil(jobs).min(CARDS_PER_HOST);
    let profile = opts.profile.clone();
    let make_pool = || -> Box<dyn CardPool> {
        match &uri {
            CardUri::Jcardsim => Box::new(JcardsimPool::new(
                CardHostConfig::default(),
                profile.clone(),
                per_host,
            )),
            other => Box::new(SingleCardPool::new(other.clone(), profile.clone())),
        }
    };
    let reports = run_tests(&tests, jobs, &opts, &make_pool, &done);
    bar.finish_and_clear();

    if let Some(path) = &args.junit {
        let xml = report::junit(&reports).context("writing the JUnit report")?;
        std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))?;
    }
    let summary = Summary::of(&reports);
    if json {
        println!("{}", report::json(&reports)?);
    } else {
        println!("{}", summary.line());
    }
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
