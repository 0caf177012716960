//! `simkit backup push`: plan and send the tree, print what was done; the progress bar.

use std::collections::HashMap;
use std::fs;
use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use simkit_card::backup::PushPlan;
use simkit_card::{AnyCard, Channel};
use simkit_core::backup::commands::SessionKind;
use simkit_core::backup::manifest::ManifestEntry;

use crate::output::Output;

use super::dir::{LocalFile, read_manifest_cache, read_tree, records, write_manifest_cache};
use super::{PasscodeArgs, open};

pub(super) fn kind_name(kind: SessionKind) -> &'static str {
    match kind {
        SessionKind::Full => "full",
        SessionKind::Incremental { .. } => "incremental",
    }
}

/// What a push did.
pub(super) struct PushResult {
    pub(super) plan: PushPlan,
    pub(super) generation: Option<u32>,
}

pub(super) fn push_json(r: &PushResult) -> Value {
    json!({
        "session": if r.generation.is_some() { Value::from(kind_name(r.plan.kind)) } else { Value::Null },
        "generation": r.generation,
        "sent": r.plan.send.iter().map(|e| e.id().to_string()).collect::<Vec<_>>(),
        "deleted": r.plan.delete.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "unchanged": r.plan.unchanged,
        "bytes_sent": r.plan.bytes_to_send(),
    })
}

pub(super) fn push_text(r: &PushResult) -> Vec<String> {
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
pub(super) struct PushHow<'a> {
    pub(super) full: bool,
    pub(super) incremental: bool,
    pub(super) cache: Option<&'a Path>,
}

pub(super) fn push(
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

pub(super) fn push_tree(
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

/// A byte progress bar with rate on stderr; hidden when stderr is not a terminal or with --json.
pub(super) fn progress_bar(total: u64, what: &str, out: &Output) -> ProgressBar {
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
