//! `simkit test` and `simkit import` end to end, against the real jCardSim card host: a passing
//! and an intentionally failing script (non-zero exit, JUnit report parsed back), `--jobs 2`
//! against `--jobs 1`, recording a live session, and the importer samples.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quick_xml::Reader;
use quick_xml::events::Event;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn simkit(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simkit"))
        .current_dir(dir)
        .env_remove("SIMKIT_CARD")
        .env_remove("SIMKIT_RECORD")
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const PASS: &str = ".name \"status before personalisation\"\n\
.select F053494D4B49540101\n\
80 10 00 00 31 -> 01 00 {id:8} * 9000\n\
80 10 00 00 31 -> 01 00 $id * 9000\n";

const FAIL: &str = ".select F053494D4B49540101\n\
80 5E 00 00 -> 9000   # LOCK before personalisation: the card says 9C0D\n";

const SKIP: &str = ".requires a-capability-no-card-has\n80 10 00 00 31 -> * 9000\n";

fn suite(dir: &Path) -> PathBuf {
    let s = dir.join("suite");
    std::fs::create_dir_all(s.join("sub")).unwrap();
    std::fs::write(s.join("a_pass.apdu"), PASS).unwrap();
    std::fs::write(s.join("b_fail.apdu"), FAIL).unwrap();
    std::fs::write(s.join("c_skip.apdu"), SKIP).unwrap();
    std::fs::write(s.join("sub/d_pass.apdu"), PASS).unwrap();
    s
}

/// (suite, test name, failure/skipped kind) of every testcase in a JUnit document.
fn junit_cases(xml: &str) -> Vec<(String, String, String)> {
    let mut r = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut suite = String::new();
    loop {
        match r.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => {
                let attr = |k: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == k)
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                        .unwrap_or_default()
                };
                match e.name().as_ref() {
                    b"testsuite" => suite = attr(b"name"),
                    b"testcase" => out.push((suite.clone(), attr(b"name"), "passed".to_owned())),
                    b"failure" => {
                        if let Some(last) = out.last_mut() {
                            last.2 = format!("failure: {}", attr(b"message"));
                        }
                    }
                    b"skipped" => {
                        if let Some(last) = out.last_mut() {
                            last.2 = format!("skipped: {}", attr(b"message"));
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn pass_fail_skip_exit_code_and_junit() {
    let dir = tempfile::tempdir().unwrap();
    suite(dir.path());
    let o = simkit(dir.path(), &["test", "suite", "--junit", "report.xml"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("ok   suite/a_pass.apdu (3 steps"), "{out}");
    assert!(
        out.contains(
            "FAIL suite/b_fail.apdu\n     step suite/b_fail.apdu:2: 805E0000\n       expected data: (none)\n       received data: (none)\n       expected sw:   9000 no error\n       received sw:   9C0D personalisation incomplete\n       status word differs\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("skip suite/c_skip.apdu: card lacks capability a-capability-no-card-has"),
        "{out}"
    );
    assert!(
        out.ends_with("2 passed, 1 failed, 1 skipped\n")
            || out.contains("2 passed, 1 failed, 1 skipped\n"),
        "{out}"
    );
    let xml = std::fs::read_to_string(dir.path().join("report.xml")).unwrap();
    assert_eq!(
        junit_cases(&xml),
        vec![
            (
                "suite".into(),
                "status before personalisation".into(),
                "passed".into()
            ),
            (
                "suite".into(),
                "b_fail".into(),
                "failure: failed at suite/b_fail.apdu:2".into()
            ),
            (
                "suite".into(),
                "c_skip".into(),
                "skipped: card lacks capability a-capability-no-card-has".into()
            ),
            (
                "suite/sub".into(),
                "status before personalisation".into(),
                "passed".into()
            ),
        ]
    );
    // Only the passing tests: exit 0.
    let o = simkit(dir.path(), &["test", "suite", "--filter", "pass"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("2 passed, 0 failed, 0 skipped"));
}

#[test]
fn jobs_2_gives_the_same_results_as_jobs_1() {
    let dir = tempfile::tempdir().unwrap();
    suite(dir.path());
    let outcomes = |jobs: &str| -> Vec<(String, serde_json::Value)> {
        let o = simkit(dir.path(), &["test", "suite", "--json", "--jobs", jobs]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["tests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["file"].as_str().unwrap().to_owned(), t["outcome"].clone()))
            .collect()
    };
    let one = outcomes("1");
    assert_eq!(one.len(), 4);
    assert_eq!(one[0].1["status"], "passed", "{one:?}");
    assert_eq!(one[1].1["status"], "failed", "{one:?}");
    assert_eq!(one, outcomes("2"));
}

#[test]
fn record_a_live_session_and_replay_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = simkit(
        dir.path(),
        &["test", "--record", "rec.apdu", "--", "credit", "status"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rec = std::fs::read_to_string(dir.path().join("rec.apdu")).unwrap();
    assert!(
        rec.contains("00 A4 04 00 09 F0 53 49 4D 4B 49 54 01 01 -> 9000\n"),
        "{rec}"
    );
    assert!(rec.contains("80 10 00 00 31 -> 01"), "{rec}");
    let o = simkit(dir.path(), &["test", "rec.apdu"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn import_samples_convert_and_pass_on_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let samples = repo().join("apdu-tests/import-samples");
    let s = |f: &str| samples.join(f).display().to_string();
    let o = simkit(
        dir.path(),
        &[
            "import",
            "scriptor",
            &s("credit-status.script"),
            "--expect-from",
            &s("credit-status.scriptor-output.txt"),
            "-o",
            "s.apdu",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = simkit(
        dir.path(),
        &[
            "import",
            "apdutool",
            &s("credit-status.scr"),
            "--expect-from",
            &s("credit-status.apdutool-output.txt"),
            "-o",
            "a.apdu",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let a = std::fs::read_to_string(dir.path().join("a.apdu")).unwrap();
    assert!(!a.contains("OPEN"), "{a}");
    let o = simkit(dir.path(), &["test", "s.apdu", "a.apdu"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("2 passed, 0 failed, 0 skipped"));
    // Without a run log the expectations stay open, and say so.
    let o = simkit(
        dir.path(),
        &["import", "scriptor", &s("credit-status.script")],
    );
    let script = String::from_utf8_lossy(&o.stdout);
    assert!(
        script.contains("80 10 00 00 31 -> any  # OPEN: no recorded response (line 4)"),
        "{script}"
    );
}

#[test]
fn syntax_errors_fail_the_test_with_the_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.apdu"),
        ".select F053494D4B49540101\n80 10 00 00 -> 90000\n",
    )
    .unwrap();
    let o = simkit(dir.path(), &["test", "bad.apdu"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("FAIL bad.apdu\n     bad.apdu:2:16: status word pattern \"90000\" must be 4 hex digits (x for any digit), any or torn"),
        "{}",
        text(&o)
    );
}
