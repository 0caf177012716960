//! Finding tests (files and suite folders) and running many of them, in parallel on separate
//! cards with `jobs > 1`. Reports come back in discovery order whatever the number of jobs.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::pool::CardPool;
use crate::runner::{Outcome, RunOptions, TestReport, run_script, syntax_failure};
use crate::script::Script;

/// One test file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFile {
    /// The file on disk.
    pub path: PathBuf,
    /// As shown in reports: the path given on the command line joined with the file's path
    /// inside it.
    pub display: String,
    /// The suite: the folder part of `display`.
    pub suite: String,
    /// The file name without `.apdu`.
    pub stem: String,
}

/// A path that is neither a test file nor a folder.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct DiscoverError {
    /// The path.
    pub path: String,
    /// Why.
    pub reason: String,
}

fn test_file(path: &Path, display: String) -> TestFile {
    let suite = Path::new(&display)
        .parent()
        .map(|p| p.display().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| ".".to_owned());
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    TestFile {
        path: path.to_path_buf(),
        display,
        suite,
        stem,
    }
}

fn walk(dir: &Path, display: &str, out: &mut Vec<TestFile>) -> Result<(), DiscoverError> {
    let err = |e: std::io::Error| DiscoverError {
        path: display.to_owned(),
        reason: e.to_string(),
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        let shown = format!("{display}/{name}");
        if p.is_dir() {
            // `_name/` folders hold fragments only, like `_name.apdu` files.
            if !name.starts_with('_') {
                dirs.push((p, shown));
            }
        } else if name.ends_with(".apdu") && !name.starts_with('_') {
            files.push(test_file(&p, shown));
        }
    }
    // A suite's own tests first, then its sub-suites.
    out.extend(files);
    for (p, shown) in dirs {
        walk(&p, &shown, out)?;
    }
    Ok(())
}

/// The tests under `paths` (files or folders, folders searched recursively, `_` fragments
/// left out), keeping those whose display path contains `filter`.
///
/// # Errors
/// A path that does not exist or cannot be read, or a file that is not `.apdu`.
pub fn discover(paths: &[PathBuf], filter: Option<&str>) -> Result<Vec<TestFile>, DiscoverError> {
    let mut out = Vec::new();
    for p in paths {
        let display = p.display().to_string().trim_end_matches('/').to_owned();
        if p.is_dir() {
            walk(p, &display, &mut out)?;
        } else if p.is_file() {
            if p.extension().is_none_or(|e| e != "apdu") {
                return Err(DiscoverError {
                    path: display,
                    reason: "not a .apdu test file".into(),
                });
            }
            out.push(test_file(p, display));
        } else {
            return Err(DiscoverError {
                path: display,
                reason: "no such file or folder".into(),
            });
        }
    }
    if let Some(f) = filter {
        out.retain(|t| t.display.contains(f));
    }
    Ok(out)
}

/// Runs one test file on a card from `pool`.
pub fn run_file(t: &TestFile, pool: &mut dyn CardPool, opts: &RunOptions) -> TestReport {
    let script = match Script::load(&t.path, &t.display) {
        Ok(s) => s,
        Err(e) => return syntax_failure(&t.display, &t.suite, &t.stem, &e),
    };
    // Skip before opening a card when the test needs what the card lacks.
    let missing: Vec<String> = script
        .requires()
        .into_iter()
        .filter(|c| !opts.profile.has(c))
        .collect();
    if !missing.is_empty() {
        return TestReport {
            file: t.display.clone(),
            suite: t.suite.clone(),
            name: script.name().unwrap_or(&t.stem).to_owned(),
            outcome: Outcome::Skipped {
                reason: format!("card lacks capability {}", missing.join(", ")),
            },
            steps: Vec::new(),
            duration_us: 0,
        };
    }
    match pool.next_card() {
        Ok(card) => run_script(&script, &t.display, &t.suite, &t.stem, card, opts),
        Err(e) => TestReport {
            file: t.display.clone(),
            suite: t.suite.clone(),
            name: script.name().unwrap_or(&t.stem).to_owned(),
            outcome: Outcome::Failed {
                location: t.display.clone(),
                message: format!("cannot open a card: {e}"),
            },
            steps: Vec::new(),
            duration_us: 0,
        },
    }
}

/// A factory of card pools, one per worker thread.
pub type PoolFactory<'a> = dyn Fn() -> Box<dyn CardPool> + Sync + 'a;

/// Runs `tests` on `jobs` workers (each with its own pool from `make_pool`), calling `done`
/// after each test; returns the reports in the order of `tests`.
pub fn run_tests(
    tests: &[TestFile],
    jobs: usize,
    opts: &RunOptions,
    make_pool: &PoolFactory<'_>,
    done: &(dyn Fn(&TestReport) + Sync),
) -> Vec<TestReport> {
    let jobs = jobs.clamp(1, tests.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<TestReport>>> = Mutex::new(vec![None; tests.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                let mut pool = make_pool();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(t) = tests.get(i) else { break };
                    let r = run_file(t, pool.as_mut(), opts);
                    done(&r);
                    if let Ok(mut v) = results.lock()
                        && let Some(slot) = v.get_mut(i)
                    {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}
