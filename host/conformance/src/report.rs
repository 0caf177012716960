//! Reports of a run: the summary line, the text shown on a terminal, JUnit XML (via
//! `quick-junit`) and JSON (via serde).

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::Serialize;

use crate::runner::{Outcome, StepStatus, TestReport};

/// Counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests skipped.
    pub skipped: usize,
}

impl Summary {
    /// Counts the outcomes.
    pub fn of(reports: &[TestReport]) -> Summary {
        let mut s = Summary::default();
        for r in reports {
            match r.outcome {
                Outcome::Passed => s.passed += 1,
                Outcome::Failed { .. } => s.failed += 1,
                Outcome::Skipped { .. } => s.skipped += 1,
            }
        }
        s
    }

    /// `N passed, N failed, N skipped`.
    pub fn line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// One line per test (`ok`, `FAIL`, `skip`), with the failure text and quirk notes indented.
pub fn text_line(r: &TestReport) -> String {
    let ms = r.duration_us as f64 / 1000.0;
    let quirks: Vec<String> = r
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Quirk)
        .map(|s| {
            format!(
                "\n     quirk at {}: {}",
                s.location,
                s.note.as_deref().unwrap_or("")
            )
        })
        .collect();
    match &r.outcome {
        Outcome::Passed => format!(
            "ok   {} ({} steps, {ms:.1} ms){}",
            r.file,
            r.steps.len(),
            quirks.concat()
        ),
        Outcome::Skipped { reason } => format!("skip {}: {reason}", r.file),
        Outcome::Failed { message, .. } => {
            let body = message.replace('\n', "\n     ");
            format!("FAIL {}\n     {body}{}", r.file, quirks.concat())
        }
    }
}

/// Per-step timing of a test, one line per step.
pub fn step_lines(r: &TestReport) -> Vec<String> {
    r.steps
        .iter()
        .map(|s| {
            format!(
                "     {:>8.3} ms {:<8} {} {}{}",
                s.duration_us as f64 / 1000.0,
                format!("{:?}", s.status).to_lowercase(),
                s.location,
                s.action,
                s.sw.as_deref()
                    .map(|w| format!(" -> {w}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// The JUnit XML document: one `testsuite` per suite (in order of first appearance), one
/// `testcase` per test.
///
/// # Errors
/// Serialisation errors of quick-junit.
pub fn junit(reports: &[TestReport]) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new("simkit test");
    let mut suites: Vec<TestSuite> = Vec::new();
    for r in reports {
        let idx = match suites.iter().position(|s| s.name.as_str() == r.suite) {
            Some(i) => i,
            None => {
                suites.push(TestSuite::new(r.suite.as_str()));
                suites.len() - 1
            }
        };
        let status = match &r.outcome {
            Outcome::Passed => TestCaseStatus::success(),
            Outcome::Failed { location, message } => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                st.set_message(format!("failed at {location}"));
                st.set_description(message.as_str());
                st
            }
            Outcome::Skipped { reason } => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(reason.as_str());
                st
            }
        };
        let mut case = TestCase::new(r.name.as_str(), status);
        case.set_classname(r.file.as_str());
        case.set_time(Duration::from_micros(r.duration_us));
        if let Some(s) = suites.get_mut(idx) {
            s.add_test_case(case);
        }
    }
    report.add_test_suites(suites);
    report.to_string()
}

/// The JSON document: summary and every test with its steps.
///
/// # Errors
/// Serialisation errors of serde_json.
pub fn json(reports: &[TestReport]) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Doc<'a> {
        summary: Summary,
        tests: &'a [TestReport],
    }
    serde_json::to_string_pretty(&Doc {
        summary: Summary::of(reports),
        tests: reports,
    })
}
