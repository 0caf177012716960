//! Every fenced `sh` block of the READMEs runs, as a reader following the page would run it: the
//! blocks of one README in order, in one `sh -eu` session (so a variable exported or a file
//! written by one block is there for the next), in a temporary directory that holds links to the
//! repository's `examples/`, `apdu-tests/` and `applet-spec/` and an empty `target/`, with the
//! freshly built `simkit` first on `PATH` and against simulated cards (the card host jar is built
//! by `mvn -B -q -f applets/pom.xml package -DskipTests`). A block that fails fails the test,
//! naming the README line where it starts.
//!
//! A block that cannot run here — it needs a real reader, a real bank, a PostgreSQL host, a
//! PKCS#11 token, installs the machine — is marked in the README by the line
//! `<!-- not-run: REASON -->` just before its fence; a marker without a reason, or not followed
//! by an `sh` block, is an error. [`READMES`] lists the pages; `every_readme_with_sh_blocks_is_listed`
//! keeps a new page from being missed.
//!
//! Three rewrites make the pages scriptable while they stay readable (nothing else is changed):
//! - A command line ending in `&` (`simkit sim &`, `simkit serve … &`) runs in the background
//!   with its output in a log file, and the session waits until it printed its ready line (a
//!   `jcardsim://` URI or `listening on http://`); a `jcardsim://127.0.0.1:N/…` URI sets `PORT`
//!   to N.
//! - `127.0.0.1:PORT` (the port `simkit sim` printed, in the README's words) becomes
//!   `127.0.0.1:$PORT`.
//! - `127.0.0.1:8080` (the signer's port in the README) becomes a port free on this machine.
//!
//! Background jobs are stopped (SIGTERM to the session's process group, then SIGKILL) when the
//! session ends, also when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The pages whose `sh` blocks are run, relative to the workspace root.
const READMES: &[&str] = &[
    "README.md",
    "apdu-tests/README.md",
    "apdu-tests/credit-module/README.md",
    "apdu-tests/backup-store/README.md",
    "apdu-tests/import-samples/README.md",
    "examples/README.md",
];

/// The marker before a block that is not run, up to its reason.
const NOT_RUN: &str = "<!-- not-run:";

/// How long one README's session may take (the conformance suites it runs included).
const SESSION_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// One `sh` block of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    /// Line of the opening fence (1-based).
    line: usize,
    /// The block's text, without the fences.
    text: String,
    /// `Some(reason)` when the page marks it not-run.
    not_run: Option<String>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// The `sh` blocks of a page, or what is wrong with its markers.
fn blocks(page: &str) -> Result<Vec<Block>, String> {
    let lines: Vec<&str> = page.lines().collect();
    let mut out = Vec::new();
    let mut pending_marker: Option<(usize, String)> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if let Some(rest) = line.trim_start().strip_prefix(NOT_RUN) {
            let reason = rest.trim().strip_suffix("-->").unwrap_or("").trim();
            if reason.is_empty() {
                return Err(format!(
                    "line {}: a not-run marker needs a reason: `<!-- not-run: REASON -->`",
                    i + 1
                ));
            }
            pending_marker = Some((i + 1, reason.to_owned()));
            i += 1;
            continue;
        }
        if let Some(fence) = line.strip_prefix("```") {
            let info = fence.trim();
            let start = i + 1;
            let mut text = String::new();
            i += 1;
            while i < lines.len() && lines[i].trim_end() != "```" {
                text.push_str(lines[i]);
                text.push('\n');
                i += 1;
            }
            if i == lines.len() {
                return Err(format!("line {start}: the block is never closed"));
            }
            if info == "sh" {
                out.push(Block {
                    line: start,
                    text,
                    not_run: pending_marker.take().map(|(_, r)| r),
                });
            } else if let Some((at, _)) = pending_marker {
                return Err(format!(
                    "line {at}: a not-run marker before a block that is not `sh`"
                ));
            }
            i += 1;
            continue;
        }
        if let (Some((at, _)), false) = (&pending_marker, line.trim().is_empty()) {
            return Err(format!(
                "line {at}: a not-run marker must stand just before an `sh` block"
            ));
        }
        i += 1;
    }
    if let Some((at, _)) = pending_marker {
        return Err(format!(
            "line {at}: a not-run marker at the end of the page"
        ));
    }
    Ok(out)
}

/// Shell functions every session starts with.
const PRELUDE: &str = r#"
readme_wait_ready() { # LOG PID: wait for a background command's ready line
    n=0
    while ! grep -q -e 'jcardsim://' -e 'listening on http://' "$1" 2>/dev/null; do
        if ! kill -0 "$2" 2>/dev/null; then
            cat "$1" >&2
            echo "readme test: the background command exited before it was ready" >&2
            exit 1
        fi
        n=$((n + 1))
        if [ "$n" -gt 600 ]; then
            echo "readme test: the background command printed no ready line within 60 s" >&2
            exit 1
        fi
        sleep 0.1
    done
    cat "$1" >&2
    p=$(sed -n 's|.*jcardsim://127\.0\.0\.1:\([0-9][0-9]*\)/.*|\1|p' "$1" | head -n 1)
    if [ -n "$p" ]; then PORT=$p; fi
}
"#;

/// Splits a block into logical lines (a line ending in `\` continues on the next).
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        cur.push_str(line);
        if line.ends_with('\\') {
            cur.push('\n');
        } else {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `Some(command)` when a logical line runs `command` in the background (`command &`, maybe
/// followed by a comment).
fn background(line: &str) -> Option<&str> {
    let code = match line.find(" #") {
        Some(i) if line[..i].trim_end().ends_with('&') => &line[..i],
        _ => line,
    };
    let code = code.trim_end();
    let cmd = code.strip_suffix('&')?;
    (!cmd.ends_with('&') && !cmd.trim().is_empty()).then_some(cmd.trim_end())
}

/// The session script of a page's runnable blocks.
fn script(page_name: &str, blocks: &[Block], signer_port: u16) -> String {
    let mut s = String::from("set -eu\n");
    s.push_str(PRELUDE);
    let mut bg = 0;
    for b in blocks.iter().filter(|b| b.not_run.is_none()) {
        writeln!(s, "echo '==> {page_name}:{}' >&2", b.line).unwrap();
        let text = b
            .text
            .replace("127.0.0.1:PORT", "127.0.0.1:$PORT")
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{signer_port}"));
        for line in logical_lines(&text) {
            match background(&line) {
                Some(cmd) => {
                    bg += 1;
                    writeln!(s, "( {cmd} ) > \"bg{bg}.log\" 2>&1 &").unwrap();
                    writeln!(s, "readme_wait_ready \"bg{bg}.log\" $!").unwrap();
                }
                None => {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        }
    }
    s.push_str("echo '==> end' >&2\n");
    s
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `script` in `dir` as one `sh` session; its combined output, or the output and why it
/// failed.
fn run_session(dir: &Path, script: &str) -> Result<String, String> {
    let bin = Path::new(env!("CARGO_BIN_EXE_simkit")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    fs::write(dir.join("readme-session.sh"), script).unwrap();
    let log = fs::File::create(dir.join("readme-session.log")).unwrap();
    let mut child = Command::new("sh")
        .arg("readme-session.sh")
        .current_dir(dir)
        .env("PATH", path)
        .env_remove("SIMKIT_CARD")
        .env_remove("SIMKIT_INTERRUPT_AFTER")
        .env_remove("SIMKIT_RECORD")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("start sh");
    let pgid = child.id();
    let deadline = Instant::now() + SESSION_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Background jobs (simkit sim, simkit serve) go with the session.
    let kill = |sig: &str| {
        let _ = Command::new("kill")
            .args([sig, "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
    };
    kill("-TERM");
    std::thread::sleep(Duration::from_millis(500));
    kill("-KILL");
    let _ = child.wait();
    let output = fs::read_to_string(dir.join("readme-session.log")).unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(output),
        Some(s) => Err(format!("{output}\nsession failed: {s}")),
        None => Err(format!(
            "{output}\nsession timed out after {SESSION_TIMEOUT:?}"
        )),
    }
}

/// A temporary directory set up as the README's commands expect the repository root to be.
fn session_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ws = workspace();
    for name in ["examples", "apdu-tests", "applet-spec"] {
        std::os::unix::fs::symlink(ws.join(name), dir.path().join(name)).unwrap();
    }
    fs::create_dir(dir.path().join("target")).unwrap();
    dir
}

/// Card hosts are JVMs: one session at a time keeps a small machine usable.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs the runnable blocks of one page; panics with the session's output when one fails.
fn run_readme(rel: &str) {
    let page = fs::read_to_string(workspace().join(rel)).unwrap();
    let blocks = blocks(&page).unwrap_or_else(|e| panic!("{rel}: {e}"));
    if blocks.iter().all(|b| b.not_run.is_some()) {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = session_dir();
    let script = script(rel, &blocks, free_port());
    let result = run_session(dir.path(), &script);
    if let Ok(out) = &result {
        // Shown with `--nocapture`: what the page's commands printed.
        eprintln!("{rel}:\n{out}");
    }
    if let Err(e) = result {
        let last_block = e
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("==> "))
            .unwrap_or("?")
            .to_owned();
        panic!("{rel}: the block at {last_block} failed:\n{e}");
    }
}

#[test]
fn readme() {
    run_readme("README.md");
}

#[test]
fn apdu_tests_readme() {
    run_readme("apdu-tests/README.md");
}

#[test]
fn credit_module_suite_readme() {
    run_readme("apdu-tests/credit-module/README.md");
}

#[test]
fn backup_store_suite_readme() {
    run_readme("apdu-tests/backup-store/README.md");
}

#[test]
fn import_samples_readme() {
    run_readme("apdu-tests/import-samples/README.md");
}

#[test]
fn examples_readme() {
    run_readme("examples/README.md");
}

/// Every `README.md` of the repository with an `sh` block is in [`READMES`], and every listed
/// page has a test above.
#[test]
fn every_readme_with_sh_blocks_is_listed() {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if !matches!(name.as_str(), "target" | "node_modules") && !name.starts_with('.') {
                    walk(&p, found);
                }
            } else if name == "README.md" {
                found.push(p);
            }
        }
    }
    let ws = workspace();
    let mut found = Vec::new();
    walk(&ws, &mut found);
    for p in found {
        let rel = p
            .strip_prefix(&ws)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let page = fs::read_to_string(&p).unwrap();
        let has_sh = blocks(&page).map(|b| !b.is_empty()).unwrap_or(true);
        assert!(
            !has_sh || READMES.contains(&rel.as_str()),
            "{rel} has `sh` blocks: add it to READMES in host/cli/tests/readme_blocks.rs"
        );
    }
    let me = include_str!("readme_blocks.rs");
    for rel in READMES {
        assert!(
            me.contains(&format!("run_readme(\"{rel}\")")),
            "{rel} is listed but no test runs it"
        );
    }
}

// The harness itself: a failing block fails, a marked one is skipped, markers are checked.

#[test]
fn a_failing_unmarked_block_fails_the_session_and_is_named() {
    let page = "# t\n\n```sh\ntrue\n```\n\ntext\n\n```sh\necho one\nfalse\necho never\n```\n";
    let b = blocks(page).unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!(b[1].line, 9);
    let dir = tempfile::tempdir().unwrap();
    let err = run_session(dir.path(), &script("t.md", &b, 1)).unwrap_err();
    assert!(err.contains("==> t.md:9"), "{err}");
    assert!(err.contains("one"), "{err}");
    assert!(!err.contains("never"), "{err}");
    assert!(!err.contains("==> end"), "{err}");
}

#[test]
fn a_marked_block_is_not_run_and_the_rest_is() {
    let page = "```sh\necho first\n```\n<!-- not-run: needs a real reader -->\n```sh\nfalse\n```\n```sh\necho last\n```\n";
    let b = blocks(page).unwrap();
    assert_eq!(b[1].not_run.as_deref(), Some("needs a real reader"));
    assert_eq!(b[0].not_run, None);
    assert_eq!(b[2].not_run, None);
    let dir = tempfile::tempdir().unwrap();
    let out = run_session(dir.path(), &script("t.md", &b, 1)).unwrap();
    assert!(
        out.contains("first") && out.contains("last") && out.contains("==> end"),
        "{out}"
    );
}

#[test]
fn markers_are_checked() {
    assert!(
        blocks("<!-- not-run: -->\n```sh\ntrue\n```\n")
            .unwrap_err()
            .contains("reason")
    );
    assert!(
        blocks("<!-- not-run: x -->\nsome text\n```sh\ntrue\n```\n")
            .unwrap_err()
            .contains("just before")
    );
    assert!(
        blocks("<!-- not-run: x -->\n```text\nA -> B\n```\n")
            .unwrap_err()
            .contains("not `sh`")
    );
    assert!(
        blocks("```sh\ntrue\n")
            .unwrap_err()
            .contains("never closed")
    );
    assert!(
        blocks("text\n<!-- not-run: x -->\n")
            .unwrap_err()
            .contains("end of the page")
    );
}

#[test]
fn an_unset_variable_fails_the_session() {
    // `VAR=… cmd` sets VAR for cmd only: a later `$VAR` is unset, which sh -u refuses.
    let b = blocks("```sh\nTOKEN=x true\necho \"$TOKEN\"\n```\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert!(run_session(dir.path(), &script("t.md", &b, 1)).is_err());
}

#[test]
fn background_lines_are_recognised() {
    assert_eq!(background("simkit sim &"), Some("simkit sim"));
    assert_eq!(
        background("simkit sim &                 # prints jcardsim://127.0.0.1:PORT/0"),
        Some("simkit sim")
    );
    assert_eq!(background("a && b"), None);
    assert_eq!(background("echo '#' x"), None);
    assert_eq!(
        background("X=1 simkit serve --db a \\\n    --b c &"),
        Some("X=1 simkit serve --db a \\\n    --b c")
    );
}

#[test]
fn a_background_command_is_waited_for_and_sets_port() {
    let b = blocks(
        "```sh\n(echo jcardsim://127.0.0.1:4321/0; sleep 30) &  # prints a URI\nexport X=jcardsim://127.0.0.1:PORT/0\necho \"got $X\"\n```\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = run_session(dir.path(), &script("t.md", &b, 1)).unwrap();
    assert!(out.contains("got jcardsim://127.0.0.1:4321/0"), "{out}");
    // The background job was stopped with the session, not waited for.
    assert!(started.elapsed() < Duration::from_secs(20));
}
