//! The runner against simkit-card's scripted mock card: passes, failures with their exact
//! text, skips by capability, captures, quirks, tears, includes, and parallel runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use simkit_card::mock::ScriptedCard;
use simkit_card::{CardError, Channel};
use simkit_conformance::pool::CardPool;
use simkit_conformance::report::{Summary, json, junit, text_line};
use simkit_conformance::runner::{
    Outcome, RunOptions, ScriptCard, StepStatus, TestReport, run_script,
};
use simkit_conformance::suite::{discover, run_tests};
use simkit_conformance::{CardProfile, Script};

fn all_caps() -> RunOptions {
    RunOptions {
        profile: CardProfile::jcardsim().unwrap(),
        preset: Default::default(),
    }
}

fn run(text: &str, card: ScriptedCard, opts: &RunOptions) -> (TestReport, Channel<ScriptedCard>) {
    let script = Script::parse_str("t.apdu", text).unwrap();
    let mut ch = Channel::new(card);
    let r = run_script(&script, "t.apdu", ".", "t", &mut ch, opts);
    (r, ch)
}

#[test]
fn pass_with_captures_reused_in_later_commands() {
    let card = ScriptedCard::new([
        ("00A4040003 A00001", "9000"),
        ("8010000008", "00000064 00000007 9000"),
        ("8030000004 00000007", "9000"),
    ]);
    let (r, ch) = run(
        ".select A00001\n80 10 00 00 08 -> {balance:4} {n:4} 9000\n80 30 00 00 04 $n -> 9000\n",
        card,
        &all_caps(),
    );
    assert_eq!(r.outcome, Outcome::Passed, "{}", text_line(&r));
    assert_eq!(r.steps.len(), 3);
    assert_eq!(r.steps[1].sw.as_deref(), Some("9000 no error"));
    assert_eq!(r.steps[1].received.as_deref(), Some("0000006400000007"));
    ch.card().finish().unwrap();
}

#[test]
fn failure_shows_step_expected_and_received_with_meanings() {
    let card = ScriptedCard::new([("8022000001 00", "6982")]);
    let (r, _) = run("\n80 22 00 00 01 00 -> {b:4} * 9000\n", card, &all_caps());
    let Outcome::Failed { location, message } = &r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(location, "t.apdu:2");
    assert_eq!(
        message,
        "step t.apdu:2: 802200000100\n  expected data: {b:4} * \n  received data: (none)\n  expected sw:   9000 no error\n  received sw:   6982 security status not satisfied\n  status word differs"
            .replace("{b:4} * \n", "{b:4} *\n")
            .as_str()
    );
    assert_eq!(text_line(&r).lines().next(), Some("FAIL t.apdu"),);
}

#[test]
fn data_mismatch_names_the_byte() {
    let card = ScriptedCard::new([("80CA000000", "0102 9000")]);
    let (r, _) = run("80 CA 00 00 00 -> 01 03 9000|6A82\n", card, &all_caps());
    let Outcome::Failed { message, .. } = &r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(
        message,
        "step t.apdu:1: 80CA000000\n  expected data: 01 03\n  received data: 0102\n  expected sw:   9000 no error | 6A82 file or application not found\n  received sw:   9000 no error\n  data byte 1: expected 03, got 02"
    );
}

#[test]
fn stops_at_first_failure() {
    let card = ScriptedCard::new([("80CA000000", "6A82")]);
    let (r, ch) = run(
        "80 CA 00 00 00 -> 9000\n80 CA 00 00 00 -> 9000\n",
        card,
        &all_caps(),
    );
    assert!(matches!(r.outcome, Outcome::Failed { .. }));
    assert_eq!(ch.card().sent().len(), 1);
}

#[test]
fn skip_by_capability_sends_nothing() {
    let opts = RunOptions {
        profile: CardProfile::unknown("bare"),
        preset: Default::default(),
    };
    let (r, ch) = run(
        ".requires tear aes-cmac\n80 CA 00 00 00 -> 9000\n",
        ScriptedCard::empty(),
        &opts,
    );
    assert_eq!(
        r.outcome,
        Outcome::Skipped {
            reason: "card lacks capability tear, aes-cmac".into()
        }
    );
    assert!(ch.card().sent().is_empty());
    // A power directive on a card without the capability skips the test there.
    let card = ScriptedCard::new([("80CA000000", "9000")]);
    let (r, _) = run("80 CA 00 00 00 -> 9000\n.power off\n", card, &opts);
    assert_eq!(
        r.outcome,
        Outcome::Skipped {
            reason: "card lacks capability power (.power off at t.apdu:2)".into()
        }
    );
}

#[test]
fn tear_on_a_card_without_tear_is_noted_and_tear_only_steps_skip() {
    let opts = RunOptions {
        profile: CardProfile::unknown("bare"),
        preset: Default::default(),
    };
    let card = ScriptedCard::new([("8022000000", "9000")]);
    let (r, _) = run(".tear 2\n80 22 00 00 00 -> 9000|torn\n", card, &opts);
    assert_eq!(r.outcome, Outcome::Passed);
    assert_eq!(r.steps[0].status, StepStatus::Skipped);
    let (r, _) = run(
        ".tear 2\n80 22 00 00 00 -> torn\n",
        ScriptedCard::empty(),
        &opts,
    );
    assert!(matches!(r.outcome, Outcome::Skipped { .. }), "{r:?}");
}

#[test]
fn tear_on_the_simulator() {
    let card = ScriptedCard::empty().then_power_lost(vec![0x80, 0x22, 0x00, 0x00]);
    let (r, ch) = run(".tear 3\n80 22 00 00 -> torn\n", card, &all_caps());
    assert_eq!(r.outcome, Outcome::Passed, "{}", text_line(&r));
    assert_eq!(r.steps[1].status, StepStatus::Torn);
    assert_eq!(ch.card().tears(), &[3]);
    // A tear that was not expected fails.
    let card = ScriptedCard::empty().then_power_lost(vec![0x80, 0x22, 0x00, 0x00]);
    let (r, _) = run(".tear 3\n80 22 00 00 -> 9000\n", card, &all_caps());
    let Outcome::Failed { message, .. } = r.outcome else {
        panic!()
    };
    assert!(message.contains("card error: card power lost"), "{message}");
}

#[test]
fn fresh_before_the_first_command_is_a_note_and_after_it_asks_the_simulator() {
    // Before any command: nothing to do.
    let card = ScriptedCard::new([("80CA000000", "9000")]);
    let (r, ch) = run(".fresh\n80 CA 00 00 00 -> 9000\n", card, &all_caps());
    assert_eq!(r.outcome, Outcome::Passed, "{}", text_line(&r));
    assert_eq!(
        r.steps[0].note.as_deref(),
        Some("card is factory-fresh already")
    );
    ch.card().finish().unwrap();
    // After a command: the simulator must rebuild the card; the scripted card cannot, so the
    // step fails with the reason (never a silent pass on a card that kept its state).
    let card = ScriptedCard::new([("80CA000000", "9000")]);
    let (r, _) = run("80 CA 00 00 00 -> 9000\n.fresh\n", card, &all_caps());
    let Outcome::Failed { location, message } = &r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(location, "t.apdu:2");
    assert!(message.contains("factory reset failed"), "{message}");
}

#[test]
fn quirk_recorded_not_failed_on_cards_that_list_it() {
    let mut opts = all_caps();
    opts.profile.quirks.push("Q7".into());
    let card = ScriptedCard::new([("80CA000000", "6D00"), ("80CB000000", "9000")]);
    let (r, _) = run(
        ".quirk Q7 \"old firmware answers 6D00\"\n80 CA 00 00 00 -> 9000\n80 CB 00 00 00 -> 9000\n",
        card,
        &opts,
    );
    assert_eq!(r.outcome, Outcome::Passed);
    assert_eq!(r.steps[0].status, StepStatus::Quirk);
    assert!(text_line(&r).contains("quirk at t.apdu:2: known quirk Q7: old firmware answers 6D00"));
    // Without the quirk in the profile it fails.
    let card = ScriptedCard::new([("80CA000000", "6D00")]);
    let (r, _) = run(
        ".quirk Q7 \"x\"\n80 CA 00 00 00 -> 9000\n",
        card,
        &all_caps(),
    );
    assert!(matches!(r.outcome, Outcome::Failed { .. }));
}

#[test]
fn let_default_and_presets() {
    let mut opts = all_caps();
    opts.preset.insert("p".into(), vec![0xAA]);
    let card = ScriptedCard::new([("80CA000002 AA BB", "9000")]);
    let (r, _) = run(
        ".default p = 01\n.default q = BB\n80 CA 00 00 02 $p $q -> 9000\n",
        card,
        &opts,
    );
    assert_eq!(r.outcome, Outcome::Passed, "{}", text_line(&r));
    let (r, _) = run(
        "80 CA 00 00 $nope -> 9000\n",
        ScriptedCard::empty(),
        &all_caps(),
    );
    assert_eq!(
        r.outcome,
        Outcome::Failed {
            location: "t.apdu:1".into(),
            message: "t.apdu:1:13: variable $nope is not set".into()
        }
    );
}

struct MockPool {
    current: Option<Channel<ScriptedCard>>,
}

impl CardPool for MockPool {
    fn next_card(&mut self) -> Result<&mut dyn ScriptCard, CardError> {
        // Every test in the suite below sends the same two commands.
        let card = ScriptedCard::new([("00A4040002 F001", "9000"), ("80CA000000", "0102 9000")]);
        Ok(self.current.insert(Channel::new(card)))
    }
}

#[test]
fn suites_includes_cycles_reports_and_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("suite");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("_setup.apdu"), ".select F001\n").unwrap();
    std::fs::write(
        root.join("a_pass.apdu"),
        ".name \"passes\"\n.include _setup.apdu\n80 CA 00 00 00 -> 01 .. 9000\n",
    )
    .unwrap();
    std::fs::write(
        root.join("b_fail.apdu"),
        ".include _setup.apdu\n80 CA 00 00 00 -> 01 03 9000\n",
    )
    .unwrap();
    std::fs::write(
        root.join("c_skip.apdu"),
        ".requires pcsc-only\n80 CA 00 00 00 -> 9000\n",
    )
    .unwrap();
    std::fs::write(root.join("sub/_x.apdu"), ".include _y.apdu\n").unwrap();
    std::fs::write(root.join("sub/_y.apdu"), ".include _x.apdu\n").unwrap();
    std::fs::write(root.join("sub/d_cycle.apdu"), ".include _x.apdu\n").unwrap();
    let tests = discover(std::slice::from_ref(&root), None).unwrap();
    let names: Vec<&str> = tests.iter().map(|t| t.stem.as_str()).collect();
    assert_eq!(names, ["a_pass", "b_fail", "c_skip", "d_cycle"]);
    assert_eq!(
        discover(std::slice::from_ref(&root), Some("sub/"))
            .unwrap()
            .len(),
        1
    );

    let opts = all_caps();
    let factory = || -> Box<dyn CardPool> { Box::new(MockPool { current: None }) };
    let one = run_tests(&tests, 1, &opts, &factory, &|_| {});
    let two = run_tests(&tests, 2, &opts, &factory, &|_| {});
    let strip = |v: &[TestReport]| -> Vec<(String, Outcome)> {
        v.iter()
            .map(|r| (r.file.clone(), r.outcome.clone()))
            .collect()
    };
    assert_eq!(strip(&one), strip(&two));
    assert_eq!(Summary::of(&one).line(), "1 passed, 2 failed, 1 skipped");
    assert_eq!(one[0].name, "passes");
    let Outcome::Failed { message, .. } = &one[3].outcome else {
        panic!("{:?}", one[3])
    };
    assert!(
        message.ends_with("include cycle: _x.apdu -> _y.apdu -> _x.apdu"),
        "{message}"
    );

    let xml = junit(&one).unwrap();
    assert!(xml.contains("<testsuite name=\""), "{xml}");
    assert!(xml.contains("tests=\"3\""), "{xml}");
    assert!(xml.contains("<failure message=\"failed at "), "{xml}");
    assert!(
        xml.contains("<skipped message=\"card lacks capability pcsc-only\""),
        "{xml}"
    );
    let v: serde_json::Value = serde_json::from_str(&json(&one).unwrap()).unwrap();
    assert_eq!(v["summary"]["failed"], 2);
    assert_eq!(v["tests"][0]["outcome"]["status"], "passed");
    assert_eq!(v["tests"][0]["steps"][1]["sw"], "9000 no error");
}
