//! `simkit backup restore`: read every record back from the card into an empty directory.

use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use simkit_card::backup::BackupClient;
use simkit_card::{AnyCard, Channel};
use simkit_core::backup::commands::Passcode;
use simkit_core::backup::manifest::ManifestEntry;

use crate::output::Output;

use super::dir::{dir_is_empty, record_path, write_atomic};
use super::push::progress_bar;
use super::{PasscodeArgs, open};

/// Reads `entries` from the card (both passcodes verified) and writes them under `dir`, each
/// checked against its manifest digest before it is written.
pub(super) fn restore_entries(
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

pub(super) fn verify_reprovisioning(
    client: &mut BackupClient<'_, AnyCard>,
    passcodes: &PasscodeArgs,
) -> Result<()> {
    let reprov = passcodes.reprovisioning()?;
    client
        .verify(Passcode::Reprovisioning, &reprov)
        .context("verifying the reprovisioning passcode")?;
    Ok(())
}

pub(super) fn restore(
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
