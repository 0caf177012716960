//! The backup directory on disk: one folder per category, one file per record; atomic
//! writes; the manifest cache file. Must not talk to the card.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use simkit_core::backup::diff::LocalRecord;
use simkit_core::backup::manifest::{
    Category, ManifestEntry, RecordName, digest, encode_table, parse_table,
};

/// One record file of the backup directory.
pub(super) struct LocalFile {
    pub(super) record: LocalRecord,
    pub(super) path: PathBuf,
}

/// Walks DIR: category folders only, regular files only, names valid record names, no two
/// names differing only in case (they could not be restored on every file system).
pub(super) fn read_tree(dir: &Path) -> Result<Vec<LocalFile>> {
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

pub(super) fn records(tree: &[LocalFile]) -> Vec<LocalRecord> {
    tree.iter().map(|f| f.record.clone()).collect()
}

pub(super) fn record_path(dir: &Path, entry: &ManifestEntry) -> PathBuf {
    dir.join(entry.category.folder_name())
        .join(entry.name.as_str())
}

/// Writes `data` to `path` through a temporary file in the same folder and a rename, so a
/// record file is either the old one or the complete new one.
pub(super) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
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

/// The card's table kept in a file: its entries (§3.3) concatenated in card order, the bytes
/// whose SHA-256 GET MANIFEST DIGEST reports (§5.16). The client checks what is read here
/// against the card's digest, so a stale, foreign or damaged file only costs the manifest read.
pub(super) fn read_manifest_cache(path: &Path) -> Option<Vec<ManifestEntry>> {
    parse_table(&fs::read(path).ok()?).ok()
}

pub(super) fn write_manifest_cache(path: &Path, entries: &[ManifestEntry]) -> Result<()> {
    write_atomic(path, &encode_table(entries))
        .with_context(|| format!("writing manifest cache {}", path.display()))
}

pub(super) fn dir_is_empty(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}
