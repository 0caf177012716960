//! `simkit sim`: run the bundled jCardSim card host in the foreground so simulated cards keep
//! their state across commands. Prints one `jcardsim://127.0.0.1:PORT/N` URI per card; pass one
//! to `--card` (or set `SIMKIT_CARD`). Stops on Ctrl-C or SIGTERM, and takes the card host down
//! with it. The host listens on loopback only.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;
use simkit_card::jcardsim::StderrMode;
use simkit_card::uri::default_card;
use simkit_card::{CardHostConfig, CardHostProcess};

use crate::output::Output;

/// Arguments of `simkit sim`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// How many identical cards (each with the credit module and the backup store installed).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    cards: u32,
    /// Plain jCardSim semantics: transactions do not roll back (for demonstrating tears).
    #[arg(long)]
    no_rollback: bool,
    /// Print the card host's own log on stderr.
    #[arg(long)]
    verbose: bool,
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C/SIGTERM handler")?;
    let mut config = CardHostConfig::with_cards([default_card()]);
    config.copies = args.cards;
    config.no_rollback = args.no_rollback;
    config.io_timeout = None;
    if args.verbose {
        config.stderr = StderrMode::Inherit;
    }
    let host = CardHostProcess::spawn(config).context("starting the card host")?;
    let addr = host.addr();
    let uris: Vec<String> = (0..args.cards)
        .map(|i| format!("jcardsim://{addr}/{i}"))
        .collect();
    let mut lines: Vec<String> = uris.clone();
    lines.push(format!(
        "card host pid {} on {addr}; Ctrl-C stops it",
        host.pid()
    ));
    out.emit(
        &json!({ "pid": host.pid(), "addr": addr.to_string(), "cards": uris }),
        &lines,
    );
    while !stop.load(Ordering::SeqCst) {
        if !host.is_running() {
            bail!("the card host exited on its own:\n{}", host.stderr_tail());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    host.shutdown().context("stopping the card host")?;
    Ok(ExitCode::SUCCESS)
}
