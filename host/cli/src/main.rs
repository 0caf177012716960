//! The `simkit` command-line tool: a thin layer over `simkit-core`, `simkit-card`,
//! `simkit-conformance` and `simkit-server`. Each subcommand lives in its own file under `cmd/`; this file only parses
//! arguments, dispatches, and turns errors into one clear line and a non-zero exit code.

mod cardarg;
mod cmd;
mod keyarg;
mod offline;
mod output;
mod remote;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// simkit — Java Card / SIM applet toolchain: MACs, key derivation, status words, message
/// decoding, and the credit-module reload protocol.
#[derive(Debug, Parser)]
#[command(name = "simkit", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Print machine-readable JSON instead of text (errors too, as {"error": …} on stdout).
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compute a MAC (ISO/IEC 9797-1 algorithms 1 and 3, DES-X CBC-MAC, AES-CMAC).
    Mac(cmd::mac::Args),
    /// Derive a credit module's request and grant keys from an issuer master key.
    Kdf(cmd::kdf::Args),
    /// Print the key check value of a key.
    Kcv(cmd::kcv::Args),
    /// Print the meaning of a status word.
    Sw(cmd::sw::Args),
    /// Recognise and decode a command APDU, a response APDU or a credit-module message.
    Decode(cmd::decode::Args),
    /// Personalise a card (by default a fresh simulated one) and play one full reload round
    /// against it with an in-process signer, printing every message decoded.
    Demo(cmd::demo::Args),
    /// Personalise a credit module from a profile file and write its registration record.
    Personalise(cmd::personalise::Args),
    /// The credit module: status, debit, fraud log, limits, reload.
    Credit(cmd::credit::Args),
    /// The backup store: push, restore, verify, auto, status, erase, passcodes.
    Backup(cmd::backup::Args),
    /// Run simulated cards that keep their state across commands (prints their URIs).
    Sim(cmd::sim::Args),
    /// Run the reload grant signer: HTTP API over a SQLite or PostgreSQL database.
    Serve(cmd::serve::Args),
    /// Tools around the grant signer: load benchmark, crash-consistency test.
    Server(cmd::server::Args),
    /// List the PC/SC readers (index for --card pcsc:INDEX, card present, ATR).
    Readers(cmd::readers::Args),
    /// Run .apdu conformance scripts against a card, checking every response.
    Test(cmd::test::Args),
    /// Convert a scriptor or apdutool script to the .apdu format.
    Import(cmd::import::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = output::Output::new(cli.json);
    let result = match cli.command {
        Command::Mac(args) => cmd::mac::run(args, &out),
        Command::Kdf(args) => cmd::kdf::run(args, &out),
        Command::Kcv(args) => cmd::kcv::run(args, &out),
        Command::Sw(args) => cmd::sw::run(args, &out),
        Command::Readers(args) => cmd::readers::run(args, &out),
        Command::Decode(args) => cmd::decode::run(args, &out),
        Command::Demo(args) => cmd::demo::run(args, &out),
        Command::Personalise(args) => cmd::personalise::run(args, &out),
        Command::Credit(args) => cmd::credit::run(args, &out),
        Command::Backup(args) => cmd::backup::run(args, &out),
        Command::Sim(args) => cmd::sim::run(args, &out),
        Command::Serve(args) => cmd::serve::run(args, &out),
        Command::Server(args) => cmd::server::run(args, &out),
        Command::Test(args) => cmd::test::run(args, &out),
        Command::Import(args) => cmd::import::run(args, &out),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            out.error(&err);
            ExitCode::from(2)
        }
    }
}
