//! `simkit backup verify`: compare the tree with the card's manifest and report each record
//! by its `Verdict` (the damage policy is `simkit_core::backup::damage`'s, not this file's).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use simkit_card::{AnyCard, Channel};
use simkit_core::backup::damage::Verdict;
use simkit_core::backup::diff::verify;
use simkit_core::backup::manifest::ManifestEntry;

use crate::output::Output;

use super::dir::{read_tree, records};
use super::restore::{restore_entries, verify_reprovisioning};
use super::{PasscodeArgs, open};

pub(super) fn verify_cmd(
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
pub(super) struct VerifyOptions {
    pub(super) restore_if_damaged: bool,
    pub(super) strict: bool,
}
