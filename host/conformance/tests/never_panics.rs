//! Property tests: the parser, the evaluator, the matcher and the importers never panic,
//! whatever the input; a hex step always round-trips to its bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use simkit_conformance::Script;
use simkit_conformance::expr::{Vars, parse_expr_line};
use simkit_conformance::import::{Format, convert};
use simkit_conformance::pattern::Expectation;
use simkit_conformance::script::Action;
use simkit_conformance::source::LogicalLine;

/// Text made of the script language's own characters, so the parser gets past the first byte.
fn scriptish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("80".to_owned()),
            Just(" ".to_owned()),
            Just("->".to_owned()),
            Just("9000".to_owned()),
            Just("$x".to_owned()),
            Just("{a:2}".to_owned()),
            Just("{b:*}".to_owned()),
            Just("*".to_owned()),
            Just("..".to_owned()),
            Just("|".to_owned()),
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just(",".to_owned()),
            Just("=".to_owned()),
            Just("\"".to_owned()),
            Just("\\\n".to_owned()),
            Just("\n".to_owned()),
            Just("#".to_owned()),
            Just(".let x = ".to_owned()),
            Just(".select ".to_owned()),
            Just(".tear ".to_owned()),
            Just("u8(".to_owned()),
            Just("slice(".to_owned()),
            Just("grant(".to_owned()),
            Just("mac(aes-cmac, ".to_owned()),
            Just("-5".to_owned()),
            Just("0x".to_owned()),
            Just("é".to_owned()),
            "[ -~]{0,3}".prop_map(|s| s),
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn parser_and_evaluator_never_panic(text in scriptish()) {
        if let Ok(script) = Script::parse_str("p.apdu", &text) {
            let mut vars = Vars::new();
            vars.insert("x".into(), vec![1, 2, 3]);
            for item in &script.items {
                match &item.action {
                    Action::Step { command, expect } => {
                        let _ = command.eval(&vars);
                        let _ = expect.match_data(&[1, 2, 3, 4], &vars);
                        let _ = expect.match_data(&[], &vars);
                    }
                    Action::Let { value, .. } => {
                        let _ = value.eval(&vars);
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn arbitrary_unicode_never_panics(text in "\\PC{0,80}") {
        let _ = Script::parse_str("p.apdu", &text);
        let line = LogicalLine::single("p", 1, &text);
        if let Ok(e) = parse_expr_line(&line) {
            let _ = e.eval(&Vars::new());
        }
        let _ = Expectation::parse(&line, 0);
        let _ = convert(Format::Scriptor, "s", &text, Some(&text));
        let _ = convert(Format::Apdutool, "s", &text, Some(&text));
    }

    #[test]
    fn hex_steps_round_trip(bytes in proptest::collection::vec(any::<u8>(), 4..40), spaced in any::<bool>()) {
        let hex = if spaced {
            bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
        } else {
            hex::encode(&bytes)
        };
        let script = Script::parse_str("p.apdu", &format!("{hex} -> 9000\n")).unwrap();
        let Action::Step { command, .. } = &script.items[0].action else { panic!() };
        prop_assert_eq!(command.eval(&Vars::new()).unwrap(), bytes);
    }
}
