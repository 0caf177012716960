//! `simkit backup`: the device's side of the backup store (applet-spec/backup-store.md §6) —
//! push a backup directory to the card, restore it, verify it against the card's manifest, back
//! up automatically when it changed, and manage the store (status, erase, passcodes).
//!
//! A backup directory holds one subfolder per category (`service-books`, `keys`, `user-data`,
//! `preferences`, `other`) and one file per record in it. This file walks and writes that tree
//! and talks to the user; the card work is `simkit_card::backup::BackupClient`'s.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use simkit_card::backup::BackupClient;
use simkit_card::{AnyCard, Channel};
use simkit_core::backup::commands::{BackupStatus, Passcode};
use zeroize::Zeroizing;

use crate::cardarg::CardArg;
use crate::output::Output;

mod auto;
mod dir;
mod push;
mod restore;
mod verify;

use auto::{auto, beside};
use push::{PushHow, push};
use restore::{restore, verify_reprovisioning};
use verify::{VerifyOptions, verify_cmd};

/// Arguments of `simkit backup`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    card: CardArg,
    #[command(subcommand)]
    command: Sub,
}

/// Where the passcodes come from: an environment variable each, or a terminal prompt.
#[derive(Debug, Clone, clap::Args)]
struct PasscodeArgs {
    /// Read the pairing passcode from environment variable VAR (otherwise it is asked for on
    /// the terminal).
    #[arg(long, value_name = "VAR")]
    passcode_env: Option<String>,
    /// Read the reprovisioning passcode from environment variable VAR (otherwise it is asked
    /// for on the terminal when needed).
    #[arg(long, value_name = "VAR")]
    reprovisioning_env: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Back DIR up to the card: incremental when the card holds a generation (only new and
    /// changed records are sent, removed ones deleted), full otherwise.
    Push {
        /// The backup directory (one subfolder per category).
        dir: PathBuf,
        /// Send every record in a full session (needs room for the old and new generation).
        #[arg(long, conflicts_with = "incremental")]
        full: bool,
        /// Require an incremental session (fails when the card holds no generation).
        #[arg(long)]
        incremental: bool,
        /// Keep the card's manifest in FILE after the backup and, next time, skip reading it
        /// when the card's GET MANIFEST DIGEST says it is unchanged (applet-spec §5.16).
        #[arg(long, value_name = "FILE")]
        manifest_cache: Option<PathBuf>,
        #[command(flatten)]
        passcodes: PasscodeArgs,
    },
    /// Write the card's backup into DIR (needs both passcodes); DIR must be empty or absent
    /// unless --force.
    Restore {
        /// The directory to restore into.
        dir: PathBuf,
        /// Restore into a non-empty DIR, overwriting records of the same name.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        passcodes: PasscodeArgs,
    },
    /// Compare DIR with the card's manifest: erased, corrupted, changed and added records.
    /// Exits 1 when a record was erased or corrupted (a mismatch in service-books or keys;
    /// in the other categories it is a change, damage only with --strict).
    Verify {
        /// The backup directory.
        dir: PathBuf,
        /// Re-provision damaged records from the card (needs both passcodes).
        #[arg(long)]
        restore_if_damaged: bool,
        /// Count changed user-data, preferences and other records as damage too (by default a
        /// mismatch there is a change made since the backup; in service-books and keys it is
        /// corruption).
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        passcodes: PasscodeArgs,
    },
    /// Back DIR up only when it changed and at least --min-interval passed since the last
    /// backup made this way (state kept in a small file beside DIR).
    Auto {
        /// The backup directory.
        dir: PathBuf,
        /// Minimum time between two backups: `90s`, `15m`, `2h`, `1d` or seconds.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        min_interval: Duration,
        /// The state file (default: `DIR.simkit-auto.json` beside DIR).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        /// The card's manifest kept between runs, so that an incremental backup need not read
        /// it (default: `DIR.simkit-manifest` beside DIR; see `push --manifest-cache`).
        #[arg(long, value_name = "FILE")]
        manifest_cache: Option<PathBuf>,
        #[command(flatten)]
        passcodes: PasscodeArgs,
    },
    /// The store's parameters and passcode states; with --passcode-env also its content.
    Status {
        /// Read the pairing passcode from VAR and show generation, usage and record count.
        #[arg(long, value_name = "VAR")]
        passcode_env: Option<String>,
    },
    /// Erase the store: every record and both passcodes. The only way out of a locked store.
    Erase {
        /// Confirm: the backup on the card is destroyed.
        #[arg(long)]
        yes: bool,
    },
    /// Set or change the passcodes.
    Passcode {
        #[command(subcommand)]
        command: PasscodeSub,
    },
}

#[derive(Debug, clap::Subcommand)]
enum PasscodeSub {
    /// Set the passcodes that are not set yet (fresh card, or after erase).
    Set {
        #[command(flatten)]
        passcodes: PasscodeArgs,
    },
    /// Change one passcode (the pairing passcode is always needed; changing the
    /// reprovisioning passcode also needs its current value).
    Change {
        /// Which passcode: `pairing` or `reprovisioning`.
        #[arg(value_parser = parse_which)]
        which: Passcode,
        /// Read the new passcode from VAR (otherwise asked for twice on the terminal).
        #[arg(long, value_name = "VAR")]
        new_env: Option<String>,
        #[command(flatten)]
        passcodes: PasscodeArgs,
    },
}

fn parse_which(s: &str) -> Result<Passcode, String> {
    match s {
        "pairing" => Ok(Passcode::Pairing),
        "reprovisioning" => Ok(Passcode::Reprovisioning),
        _ => Err("expected `pairing` or `reprovisioning`".to_owned()),
    }
}

/// `90s`, `15m`, `2h`, `1d`, or a number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 90s, 15m, 2h or 1d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?} (use s, m, h or d)")),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

pub(crate) fn run(args: Args, out: &Output) -> Result<ExitCode> {
    // `auto` decides from the directory alone whether the card is needed at all.
    if let Sub::Auto {
        dir,
        min_interval,
        state,
        manifest_cache,
        passcodes,
    } = &args.command
    {
        let cache = manifest_cache
            .clone()
            .unwrap_or_else(|| beside(dir, ".simkit-manifest"));
        return auto(
            &args.card,
            dir,
            *min_interval,
            state.as_deref(),
            &cache,
            passcodes,
            out,
        );
    }
    let (mut channel, uri) = args.card.open()?;
    let note = CardArg::ephemeral_note(&uri);
    let code = match args.command {
        Sub::Push {
            dir,
            full,
            incremental,
            manifest_cache,
            passcodes,
        } => {
            let how = PushHow {
                full,
                incremental,
                cache: manifest_cache.as_deref(),
            };
            push(&mut channel, &dir, &how, &passcodes, out).map(|_| ExitCode::SUCCESS)
        }
        Sub::Restore {
            dir,
            force,
            passcodes,
        } => restore(&mut channel, &dir, force, &passcodes, out),
        Sub::Verify {
            dir,
            restore_if_damaged,
            strict,
            passcodes,
        } => verify_cmd(
            &mut channel,
            &dir,
            VerifyOptions {
                restore_if_damaged,
                strict,
            },
            &passcodes,
            out,
        ),
        Sub::Auto { .. } => Ok(ExitCode::SUCCESS),
        Sub::Status { passcode_env } => status(&mut channel, passcode_env.as_deref(), out),
        Sub::Erase { yes } => erase(&mut channel, yes, out),
        Sub::Passcode { command } => passcode(&mut channel, command, out),
    }?;
    if let (Some(note), false) = (note, out.is_json()) {
        eprintln!("{note}");
    }
    Ok(code)
}

// --- passcodes ----------------------------------------------------------------------------------

/// A passcode from environment variable `env`, or asked for on the terminal.
fn read_passcode(env: Option<&str>, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    if let Some(var) = env {
        let value = std::env::var_os(var)
            .ok_or_else(|| anyhow!("environment variable {var} (the {what}) is not set"))?;
        return Ok(Zeroizing::new(value.into_encoded_bytes()));
    }
    if !std::io::stdin().is_terminal() {
        bail!("the {what} is needed: run on a terminal or pass it with the --…-env option");
    }
    let text = rpassword::prompt_password(format!("{what}: "))
        .with_context(|| format!("reading the {what}"))?;
    Ok(Zeroizing::new(text.into_bytes()))
}

/// A new passcode: from `env`, or asked for twice on the terminal.
fn read_new_passcode(env: Option<&str>, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let first = read_passcode(env, what)?;
    if env.is_none() {
        let again = read_passcode(None, &format!("{what} (again)"))?;
        if *again != *first {
            bail!("the two entries of the {what} differ");
        }
    }
    Ok(first)
}

impl PasscodeArgs {
    fn pairing(&self) -> Result<Zeroizing<Vec<u8>>> {
        read_passcode(self.passcode_env.as_deref(), "pairing passcode")
    }

    fn reprovisioning(&self) -> Result<Zeroizing<Vec<u8>>> {
        read_passcode(
            self.reprovisioning_env.as_deref(),
            "reprovisioning passcode",
        )
    }
}

fn open<'c>(
    channel: &'c mut Channel<AnyCard>,
    pairing: &[u8],
) -> Result<(BackupClient<'c, AnyCard>, BackupStatus)> {
    let mut client = BackupClient::new(channel);
    let status = client.open(pairing).context("opening the backup store")?;
    Ok((client, status))
}

// --- status, erase, passcodes -------------------------------------------------------------------

fn passcode_text(s: &BackupStatus, which: Passcode) -> String {
    if !s.flags.is_set(which) {
        "not set".to_owned()
    } else if s.tries_left(which) == 0 {
        "BLOCKED".to_owned()
    } else {
        format!(
            "set, {} tries left{}",
            s.tries_left(which),
            if s.flags.is_verified(which) {
                ", verified"
            } else {
                ""
            }
        )
    }
}

fn status(
    channel: &mut Channel<AnyCard>,
    passcode_env: Option<&str>,
    out: &Output,
) -> Result<ExitCode> {
    let mut client = BackupClient::new(channel);
    client.select().context("selecting the backup store")?;
    let mut s = client.status().context("GET STATUS")?;
    if let Some(var) = passcode_env {
        let pairing = read_passcode(Some(var), "pairing passcode")?;
        s = client.open(&pairing).context("opening the backup store")?;
    }
    let details = s.flags.is_verified(Passcode::Pairing);
    let state = if s.is_locked() {
        "locked"
    } else if !s.flags.is_set(Passcode::Pairing) || !s.flags.is_set(Passcode::Reprovisioning) {
        "unset"
    } else {
        "ready"
    };
    let mut text = vec![
        format!("state: {state}"),
        format!(
            "capacity: {} bytes, at most {} records",
            s.capacity, s.max_records
        ),
        format!("pairing passcode: {}", passcode_text(&s, Passcode::Pairing)),
        format!(
            "reprovisioning passcode: {}",
            passcode_text(&s, Passcode::Reprovisioning)
        ),
        format!(
            "APDU limits: {} command / {} response data bytes",
            s.max_command_data, s.max_response_data
        ),
        format!(
            "applet: spec version {:02X}{}",
            s.version,
            if s.packs_records() {
                " (packs records: WRITE RECORDS, verified COMMIT)"
            } else {
                " (one record at a time)"
            }
        ),
    ];
    if details {
        text.push(format!(
            "generation {}: {} records, {} bytes used, {} free",
            s.generation, s.record_count, s.used, s.free
        ));
    } else {
        text.push("content hidden: pass --passcode-env to see generation and usage".to_owned());
    }
    let value = json!({
        "state": state,
        "capacity": s.capacity,
        "max_records": s.max_records,
        "max_command_data": s.max_command_data,
        "max_response_data": s.max_response_data,
        "version": s.version,
        "pairing": { "set": s.flags.is_set(Passcode::Pairing), "tries_left": s.pairing_tries_left },
        "reprovisioning": { "set": s.flags.is_set(Passcode::Reprovisioning), "tries_left": s.reprovisioning_tries_left },
        "generation": details.then_some(s.generation),
        "records": details.then_some(s.record_count),
        "used": details.then_some(s.used),
        "free": details.then_some(s.free),
    });
    out.emit(&value, &text);
    Ok(ExitCode::SUCCESS)
}

fn erase(channel: &mut Channel<AnyCard>, yes: bool, out: &Output) -> Result<ExitCode> {
    if !yes {
        bail!("erase destroys the backup and both passcodes; pass --yes to confirm");
    }
    let mut client = BackupClient::new(channel);
    client.select().context("selecting the backup store")?;
    client.erase().context("erasing the store")?;
    out.emit(
        &json!({ "erased": true }),
        &["store erased: no records, both passcodes unset".to_owned()],
    );
    Ok(ExitCode::SUCCESS)
}

fn passcode(
    channel: &mut Channel<AnyCard>,
    command: PasscodeSub,
    out: &Output,
) -> Result<ExitCode> {
    let mut client = BackupClient::new(channel);
    client.select().context("selecting the backup store")?;
    match command {
        PasscodeSub::Set { passcodes } => {
            let s = client.status().context("GET STATUS")?;
            let mut set = Vec::new();
            for (which, env) in [
                (Passcode::Pairing, passcodes.passcode_env.as_deref()),
                (
                    Passcode::Reprovisioning,
                    passcodes.reprovisioning_env.as_deref(),
                ),
            ] {
                if s.flags.is_set(which) {
                    continue;
                }
                let value = read_new_passcode(env, &format!("new {which}"))?;
                client
                    .set_passcode(which, &value)
                    .with_context(|| format!("setting the {which}"))?;
                set.push(which.to_string());
            }
            if set.is_empty() {
                bail!("both passcodes are already set; use `simkit backup passcode change`");
            }
            out.emit(
                &json!({ "set": set }),
                &[format!("set: {}", set.join(", "))],
            );
        }
        PasscodeSub::Change {
            which,
            new_env,
            passcodes,
        } => {
            let pairing = passcodes.pairing()?;
            client.open(&pairing).context("opening the backup store")?;
            if which == Passcode::Reprovisioning {
                verify_reprovisioning(&mut client, &passcodes)?;
            }
            let new = read_new_passcode(new_env.as_deref(), &format!("new {which}"))?;
            client
                .change_passcode(which, &new)
                .with_context(|| format!("changing the {which}"))?;
            out.emit(
                &json!({ "changed": which.to_string() }),
                &[format!("{which} changed")],
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("m").is_err());
    }
}
