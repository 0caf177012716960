//! `simkit backup auto`: back up when the tree changed and the minimum interval has passed,
//! remembering the last backup in a state file beside the directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use simkit_core::backup::diff::local_manifest;
use simkit_core::backup::manifest::digest;
use simkit_core::hexutil::to_hex;

use crate::cardarg::CardArg;
use crate::output::Output;

use super::PasscodeArgs;
use super::dir::{read_tree, records, write_atomic};
use super::push::{PushHow, push_json, push_text, push_tree};

/// What `backup auto` remembers between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct AutoState {
    /// SHA-256 of the tree's manifest at the last backup (hex).
    tree_digest: String,
    /// Seconds since the Unix epoch of the last backup.
    last_backup_unix: u64,
    /// Generation committed then (None: the card already held the tree).
    generation: Option<u32>,
}

pub(super) fn default_state_path(dir: &Path) -> PathBuf {
    beside(dir, ".simkit-auto.json")
}

/// `DIR<suffix>` next to DIR.
pub(super) fn beside(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "backup".into());
    name.push(suffix);
    dir.with_file_name(name)
}

pub(super) fn auto(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn state_file_sits_beside_the_directory() {
        assert_eq!(
            default_state_path(Path::new("/data/backup")),
            PathBuf::from("/data/backup.simkit-auto.json")
        );
    }
}
