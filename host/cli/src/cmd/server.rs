//! `simkit server …`: tools around a running grant signer — load (`bench`) and crash
//! consistency (`crashtest`). The signer itself is `simkit serve`.

use std::process::ExitCode;

use anyhow::Result;

use crate::output::Output;

/// Arguments of `simkit server`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Load a signer with full reload rounds from simulated modules; grants/s and latency per
    /// concurrency.
    Bench(super::server_bench::Args),
    /// kill -9 a signer at random moments under load, restart it, and reconcile what the
    /// modules received with the ledger.
    Crashtest(super::server_crash::Args),
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    match args.command {
        Command::Bench(a) => super::server_bench::run(a, out),
        Command::Crashtest(a) => super::server_crash::run(a, out),
    }
}
