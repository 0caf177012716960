//! `simkit test`: run `.apdu` conformance scripts (apdu-tests/README.md) against a card and check
//! every response; `simkit test --record FILE -- COMMAND…` records a live session as a script.
//!
//! Everything but argument handling and printing lives in `simkit-conformance`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
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

use crate::cardarg::{CARD_ENV, CardArg};
use crate::output::Output;

/// Arguments of `simkit test`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Test files (`.apdu`) or suite folders (searched recursively).
    #[arg(required_unless_present = "record")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    card: CardArg,
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
    /// Record the card session of the simkit command after `--` as a script in FILE (the
    /// command's card is this command's `--card`).
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

/// Runs `simkit COMMAND…` with its card session recorded to `file`. The card given to `test`
/// (`--card` or `SIMKIT_CARD`) is the recorded command's default card.
fn record(file: &Path, card: &str, command: &[String]) -> Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the simkit executable")?;
    let status = std::process::Command::new(exe)
        .args(command)
        .env(RECORD_ENV, file)
        .env(CARD_ENV, card)
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
        return record(file, &args.card.card, &args.command);
    }
    let uri: CardUri = args
        .card
        .card
        .parse()
        .with_context(|| format!("--card {}", args.card.card))?;
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

    // One progress line per suite on a terminal; none with --json or when not a terminal.
    let show_progress = !out.is_json() && std::io::stderr().is_terminal();
    let multi = if show_progress {
        MultiProgress::new()
    } else {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    };
    let style = ProgressStyle::with_template("{prefix:.bold} [{pos}/{len}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let mut suite_bars: Vec<(String, ProgressBar)> = Vec::new();
    for t in &tests {
        match suite_bars.iter().find(|(s, _)| *s == t.suite) {
            Some((_, b)) => b.inc_length(1),
            None => {
                let b = multi.add(ProgressBar::new(1).with_style(style.clone()));
                b.set_prefix(t.suite.clone());
                suite_bars.push((t.suite.clone(), b));
            }
        }
    }
    let bar_of = |suite: &str| suite_bars.iter().find(|(s, _)| s == suite).map(|(_, b)| b);
    // Per-test lines are printed in discovery order as soon as all earlier ones are done, so the
    // output is the same whatever --jobs is.
    let printed = Mutex::new(0usize);
    let pending: Mutex<Vec<Option<TestReport>>> = Mutex::new(vec![None; tests.len()]);
    let index_of = |file: &str| tests.iter().position(|t| t.display == file);
    let json = out.is_json();
    let steps = args.steps;
    let done = |r: &TestReport| {
        if let Some(b) = bar_of(&r.suite) {
            b.inc(1);
            b.set_message(r.file.clone());
            if b.position() >= b.length().unwrap_or(0) {
                b.finish_with_message("done");
            }
        }
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
            multi.suspend(|| {
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
    let _ = multi.clear();

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
