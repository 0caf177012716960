//! `simkit backup`: the device's side of the backup store (applet-spec/backup-store.md §6) —
//! push a backup directory to the card, restore it, verify it against the card's manifest, back
//! up automatically when it changed, and manage the store (status, erase, passcodes).
//!
//! A backup directory holds one subfolder per category (`service-books`, `keys`, `user-data`,
//! `preferences`, `other`) and one file per record in it. This file walks and writes that tree
//! and talks to the user; the card work is `simkit_card::backup::BackupClient`'s.

use std::collections::HashMap;
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use simkit_card::backup::{BackupClient, PushPlan};
use simkit_card::{AnyCard, Channel};
use simkit_core::backup::commands::{BackupStatus, Passcode, SessionKind};
use simkit_core::backup::diff::{LocalRecord, RecordState, local_manifest, verify};
use simkit_core::backup::manifest::{
    Category, ManifestEntry, RecordName, digest, encode_table, parse_table,
};
use simkit_core::hexutil::to_hex;
use zeroize::Zeroizing;

use crate::cardarg::CardArg;
use crate::output::Output;

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

// --- the local tree -----------------------------------------------------------------------------

/// One record file of the backup directory.
struct LocalFile {
    record: LocalRecord,
    path: PathBuf,
}

/// Walks DIR: category folders only, regular files only, names valid record names, no two
/// names differing only in case (they could not be restored on every file system).
fn read_tree(dir: &Path) -> Result<Vec<LocalFile>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        let known = name.to_str().is_some_and(|n| n.parse::<Category>().is_ok());
        if !known {
            bail!(
                "{}: not a category folder (expected service-books, keys, user-data, preferences, other)",
                entry.path().display()
            );
        }
    }
    for category in Category::ALL {
        let folder = dir.join(category.folder_name());
        if !folder.exists() {
            continue;
        }
        let mut seen: HashMap<String, String> = HashMap::new();
        let files =
            fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))?;
        for file in files {
            let file = file.with_context(|| format!("reading {}", folder.display()))?;
            let path = file.path();
            let meta =
                fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
            if !meta.is_file() {
                bail!("{}: not a regular file", path.display());
            }
            let os_name = file.file_name();
            let name = os_name
                .to_str()
                .ok_or_else(|| anyhow!("{}: file name is not UTF-8", path.display()))?;
            let name = RecordName::new(name).with_context(|| path.display().to_string())?;
            if let Some(other) = seen.insert(name.as_str().to_lowercase(), name.as_str().to_owned())
            {
                bail!(
                    "{}: {other:?} and {:?} differ only in case; they cannot both be restored on every file system",
                    folder.display(),
                    name.as_str()
                );
            }
            let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            out.push(LocalFile {
                record: LocalRecord {
                    category,
                    name,
                    data_len: data.len() as u64,
                    digest: digest(&data),
                },
                path,
            });
        }
    }
    Ok(out)
}

fn records(tree: &[LocalFile]) -> Vec<LocalRecord> {
    tree.iter().map(|f| f.record.clone()).collect()
}

fn record_path(dir: &Path, entry: &ManifestEntry) -> PathBuf {
    dir.join(entry.category.folder_name())
        .join(entry.name.as_str())
}

/// Writes `data` to `path` through a temporary file in the same folder and a rename, so a
/// record file is either the old one or the complete new one.
fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let folder = path
        .parent()
        .ok_or_else(|| anyhow!("{}: no parent folder", path.display()))?;
    fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(folder)
        .with_context(|| format!("creating a file in {}", folder.display()))?;
    std::io::Write::write_all(&mut tmp, data)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

// --- progress -----------------------------------------------------------------------------------

/// A byte progress bar with rate on stderr; hidden when stderr is not a terminal or with --json.
fn progress_bar(total: u64, what: &str, out: &Output) -> ProgressBar {
    if out.is_json() || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

// --- push ---------------------------------------------------------------------------------------

fn kind_name(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Full => "full",
        SessionKind::Incremental { .. } => "incremental",
    }
}

/// What a push did.
struct PushResult {
    plan: PushPlan,
    generation: Option<u32>,
}

fn push_json(r: &PushResult) -> Value {
    json!({
        "session": if r.generation.is_some() { Value::from(kind_name(r.plan.kind)) } else { Value::Null },
        "generation": r.generation,
        "sent": r.plan.send.iter().map(|e| e.id().to_string()).collect::<Vec<_>>(),
        "deleted": r.plan.delete.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "unchanged": r.plan.unchanged,
        "bytes_sent": r.plan.bytes_to_send(),
    })
}

fn push_text(r: &PushResult) -> Vec<String> {
    match r.generation {
        None => vec![format!(
            "nothing to do: the card already holds these {} records",
            r.plan.unchanged
        )],
        Some(g) => vec![format!(
            "{} backup committed as generation {g}: {} records sent ({} bytes), {} deleted, {} unchanged",
            kind_name(r.plan.kind),
            r.plan.send.len(),
            r.plan.bytes_to_send(),
            r.plan.delete.len(),
            r.plan.unchanged
        )],
    }
}

/// How to push: forced session kind and the manifest cache file.
struct PushHow<'a> {
    full: bool,
    incremental: bool,
    cache: Option<&'a Path>,
}

/// The card's table kept in a file: its entries (§3.3) concatenated in card order, the bytes
/// whose SHA-256 GET MANIFEST DIGEST reports (§5.16). The client checks what is read here
/// against the card's digest, so a stale, foreign or damaged file only costs the manifest read.
fn read_manifest_cache(path: &Path) -> Option<Vec<ManifestEntry>> {
    parse_table(&fs::read(path).ok()?).ok()
}

fn write_manifest_cache(path: &Path, entries: &[ManifestEntry]) -> Result<()> {
    write_atomic(path, &encode_table(entries))
        .with_context(|| format!("writing manifest cache {}", path.display()))
}

fn push(
    channel: &mut Channel<AnyCard>,
    dir: &Path,
    how: &PushHow<'_>,
    passcodes: &PasscodeArgs,
    out: &Output,
) -> Result<PushResult> {
    let tree = read_tree(dir)?;
    let pairing = passcodes.pairing()?;
    let result = push_tree(channel, &tree, how, &pairing, out)?;
    out.emit(&push_json(&result), &push_text(&result));
    Ok(result)
}

fn push_tree(
    channel: &mut Channel<AnyCard>,
    tree: &[LocalFile],
    how: &PushHow<'_>,
    pairing: &[u8],
    out: &Output,
) -> Result<PushResult> {
    let (mut client, _) = open(channel, pairing)?;
    let plan = match how.cache {
        Some(path) => {
            client.plan_push_cached(&records(tree), how.full, &mut |_| read_manifest_cache(path))
        }
        None => client.plan_push(&records(tree), how.full),
    }
    .context("planning the backup")?;
    if how.incremental && plan.kind == SessionKind::Full {
        bail!("--incremental: the card holds no generation yet (9D05); run a full backup first");
    }
    let paths: HashMap<_, _> = tree.iter().map(|f| (f.record.id(), &f.path)).collect();
    let bar = progress_bar(plan.bytes_to_send(), "backup", out);
    let mut source = |e: &ManifestEntry| -> std::io::Result<Vec<u8>> {
        let path = paths
            .get(&e.id())
            .ok_or_else(|| std::io::Error::other("record vanished from the tree"))?;
        fs::read(path)
    };
    let generation = client.push(&plan, &mut source, &mut |n| bar.inc(n));
    bar.finish_and_clear();
    let generation = generation.with_context(|| {
        format!(
            "{} backup failed; the card keeps its previous generation",
            kind_name(plan.kind)
        )
    })?;
    if let Some(path) = how.cache {
        // The table after the commit, or the one the plan found unchanged.
        let table = match (client.pushed_manifest(), plan.kind) {
            (Some(m), _) => Some(m.entries.clone()),
            (None, SessionKind::Incremental { .. }) => Some(plan.base.clone()),
            (None, SessionKind::Full) => None,
        };
        if let Some(table) = table {
            write_manifest_cache(path, &table)?;
        }
    }
    Ok(PushResult { plan, generation })
}

// --- restore ------------------------------------------------------------------------------------

fn dir_is_empty(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Reads `entries` from the card (both passcodes verified) and writes them under `dir`, each
/// checked against its manifest digest before it is written.
fn restore_entries(
    client: &mut BackupClient<'_, AnyCard>,
    dir: &Path,
    entries: &[ManifestEntry],
    out: &Output,
) -> Result<u64> {
    let total: u64 = entries.iter().map(|e| u64::from(e.length)).sum();
    let bar = progress_bar(total, "restore", out);
    for entry in entries {
        let data = client
            .read_record(entry, &mut |n| bar.inc(n))
            .with_context(|| format!("reading {}", entry.id()));
        let data = match data {
            Ok(d) => d,
            Err(e) => {
                bar.finish_and_clear();
                return Err(e);
            }
        };
        write_atomic(&record_path(dir, entry), &data)?;
    }
    bar.finish_and_clear();
    Ok(total)
}

fn verify_reprovisioning(
    client: &mut BackupClient<'_, AnyCard>,
    passcodes: &PasscodeArgs,
) -> Result<()> {
    let reprov = passcodes.reprovisioning()?;
    client
        .verify(Passcode::Reprovisioning, &reprov)
        .context("verifying the reprovisioning passcode")?;
    Ok(())
}

fn restore(
    channel: &mut Channel<AnyCard>,
    dir: &Path,
    force: bool,
    passcodes: &PasscodeArgs,
    out: &Output,
) -> Result<ExitCode> {
    if !force && !dir_is_empty(dir)? {
        bail!(
            "{} is not empty; restore into an empty directory or pass --force",
            dir.display()
        );
    }
    let pairing = passcodes.pairing()?;
    let (mut client, _) = open(channel, &pairing)?;
    verify_reprovisioning(&mut client, passcodes)?;
    let manifest = client
        .manifest()
        .context("GET MANIFEST")?
        .ok_or_else(|| anyhow!("the card holds no backup (9D05 no backup generation stored)"))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let entries = manifest.manifest.entries().to_vec();
    let bytes = restore_entries(&mut client, dir, &entries, out)?;
    out.emit(
        &json!({
            "generation": manifest.generation,
            "records": entries.len(),
            "bytes": bytes,
        }),
        &[format!(
            "restored generation {}: {} records, {bytes} bytes into {}",
            manifest.generation,
            entries.len(),
            dir.display()
        )],
    );
    Ok(ExitCode::SUCCESS)
}

// --- verify -------------------------------------------------------------------------------------

/// How `verify` reports a record: the core's states, with a mismatch split by category as
/// spec §6.4 suggests. Service books and keys do not change in normal use, so a mismatch there
/// is corruption; user data, preferences and other records do, so a mismatch there is reported
/// as a change and is not damage unless `--strict` (re-provisioning it would undo the user's
/// edit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Erased,
    Corrupted,
    Changed,
    Added,
}

impl Verdict {
    const ALL: [Verdict; 5] = [
        Verdict::Ok,
        Verdict::Erased,
        Verdict::Corrupted,
        Verdict::Changed,
        Verdict::Added,
    ];

    fn of(state: RecordState, category: Category) -> Verdict {
        match state {
            RecordState::Ok => Verdict::Ok,
            RecordState::Erased => Verdict::Erased,
            RecordState::Added => Verdict::Added,
            RecordState::Corrupted => match category {
                Category::ServiceBooks | Category::Keys => Verdict::Corrupted,
                _ => Verdict::Changed,
            },
        }
    }

    fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Erased => "erased",
            Verdict::Corrupted => "corrupted",
            Verdict::Changed => "changed",
            Verdict::Added => "added",
        }
    }

    fn is_damage(self, strict: bool) -> bool {
        match self {
            Verdict::Erased | Verdict::Corrupted => true,
            Verdict::Changed => strict,
            Verdict::Ok | Verdict::Added => false,
        }
    }
}

fn verify_cmd(
    channel: &mut Channel<AnyCard>,
    dir: &Path,
    options: VerifyOptions,
    passcodes: &PasscodeArgs,
    out: &Output,
) -> Result<ExitCode> {
    let tree = if dir.exists() {
        read_tree(dir)?
    } else {
        Vec::new()
    };
    let pairing = passcodes.pairing()?;
    let (mut client, _) = open(channel, &pairing)?;
    let manifest = client
        .manifest()
        .context("GET MANIFEST")?
        .ok_or_else(|| anyhow!("the card holds no backup (9D05 no backup generation stored)"))?;
    let report = verify(&records(&tree), &manifest.manifest).context("comparing with the card")?;
    let verdicts: Vec<(String, Verdict, Option<&ManifestEntry>)> = report
        .records
        .iter()
        .map(|r| {
            (
                r.id.to_string(),
                Verdict::of(r.state, r.id.category),
                manifest.manifest.get_id(&r.id),
            )
        })
        .collect();
    let damaged: Vec<ManifestEntry> = verdicts
        .iter()
        .filter(|(_, v, _)| v.is_damage(options.strict))
        .filter_map(|(_, _, e)| (*e).cloned())
        .collect();
    let mut restored = 0;
    if options.restore_if_damaged && !damaged.is_empty() {
        verify_reprovisioning(&mut client, passcodes)?;
        restore_entries(&mut client, dir, &damaged, out)?;
        restored = damaged.len();
    }
    let count = |v: Verdict| verdicts.iter().filter(|(_, x, _)| *x == v).count();
    let counts: serde_json::Map<String, Value> = Verdict::ALL
        .into_iter()
        .map(|v| (v.name().to_owned(), Value::from(count(v))))
        .collect();
    let listed = verdicts.iter().filter(|(_, v, _)| *v != Verdict::Ok);
    let records: Vec<Value> = listed
        .clone()
        .map(|(id, v, _)| json!({ "record": id, "state": v.name() }))
        .collect();
    let mut text: Vec<String> = listed
        .map(|(id, v, _)| format!("{:<9} {id}", v.name()))
        .collect();
    text.push(format!(
        "generation {}: {} ok, {} erased, {} corrupted, {} changed, {} added",
        manifest.generation,
        count(Verdict::Ok),
        count(Verdict::Erased),
        count(Verdict::Corrupted),
        count(Verdict::Changed),
        count(Verdict::Added)
    ));
    let is_damaged = !damaged.is_empty();
    if restored > 0 {
        text.push(format!("re-provisioned {restored} records from the card"));
    } else if is_damaged {
        text.push(
            "damaged: run `simkit backup verify --restore-if-damaged` to re-provision".into(),
        );
    }
    out.emit(
        &json!({
            "generation": manifest.generation,
            "damaged": is_damaged,
            "counts": counts,
            "records": records,
            "restored": restored,
        }),
        &text,
    );
    Ok(if is_damaged && restored == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The switches of `simkit backup verify`.
#[derive(Debug, Clone, Copy)]
struct VerifyOptions {
    restore_if_damaged: bool,
    strict: bool,
}

// --- auto ---------------------------------------------------------------------------------------

/// What `backup auto` remembers between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AutoState {
    /// SHA-256 of the tree's manifest at the last backup (hex).
    tree_digest: String,
    /// Seconds since the Unix epoch of the last backup.
    last_backup_unix: u64,
    /// Generation committed then (None: the card already held the tree).
    generation: Option<u32>,
}

fn default_state_path(dir: &Path) -> PathBuf {
    beside(dir, ".simkit-auto.json")
}

/// `DIR<suffix>` next to DIR.
fn beside(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "backup".into());
    name.push(suffix);
    dir.with_file_name(name)
}

fn auto(
    card: &CardArg,
    dir: &Path,
    min_interval: Duration,
    state_path: Option<&Path>,
    cache: &Path,
    passcodes: &PasscodeArgs,
    out: &Output,
) -> Result<ExitCode> {
    let state_path = state_path.map_or_else(|| default_state_path(dir), Path::to_path_buf);
    let tree = read_tree(dir)?;
    let tree_digest = to_hex(&digest(
        &local_manifest(&records(&tree))
            .context("reading the backup directory")?
            .encode(),
    ));
    let state: Option<AutoState> = match fs::read(&state_path) {
        Ok(bytes) => Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("reading state file {}", state_path.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", state_path.display())),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let skip = |reason: String| {
        out.emit(
            &json!({ "backed_up": false, "reason": reason }),
            &[format!("skipped: {reason}")],
        );
        Ok(ExitCode::SUCCESS)
    };
    if let Some(s) = &state {
        if s.tree_digest == tree_digest {
            return skip("unchanged since the last backup".to_owned());
        }
        let since = now.saturating_sub(s.last_backup_unix);
        if since < min_interval.as_secs() {
            return skip(format!(
                "last backup {since}s ago; the minimum interval is {}s",
                min_interval.as_secs()
            ));
        }
    }
    let pairing = passcodes.pairing()?;
    let (mut channel, _) = card.open()?;
    let how = PushHow {
        full: false,
        incremental: false,
        cache: Some(cache),
    };
    let result = push_tree(&mut channel, &tree, &how, &pairing, out)?;
    // When the card already held the tree nothing was committed: the interval keeps running
    // from the last backup this state knows of (from now on a first run, when the card was
    // found in step with DIR).
    let committed = result.generation.is_some();
    let new_state = AutoState {
        tree_digest,
        last_backup_unix: if committed {
            now
        } else {
            state.as_ref().map_or(now, |s| s.last_backup_unix)
        },
        generation: result.generation.or(state.and_then(|s| s.generation)),
    };
    let bytes = serde_json::to_vec_pretty(&new_state).context("encoding the state")?;
    write_atomic(&state_path, &bytes)?;
    let mut value = push_json(&result);
    if let Value::Object(map) = &mut value {
        map.insert("backed_up".into(), Value::from(committed));
    }
    out.emit(&value, &push_text(&result));
    Ok(ExitCode::SUCCESS)
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

    #[test]
    fn state_file_sits_beside_the_directory() {
        assert_eq!(
            default_state_path(Path::new("/data/backup")),
            PathBuf::from("/data/backup.simkit-auto.json")
        );
    }
}
