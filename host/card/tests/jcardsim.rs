//! The jCardSim backend against the real card host jar (built by `tools/test.sh`, or by
//! `mvn -B -q -f applets/pom.xml package -DskipTests`). Without the jar these tests fail with
//! that command in the message.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use simkit_card::jcardsim::{CardHostProcess, StderrMode};
use simkit_card::{
    AppletSpec, Card, CardError, CardHostConfig, CardSpec, CardUri, Channel, ExchangeKind,
    JcardsimCard, JcardsimError, SimulatorControl, StartupFailure, TraceRecorder,
};
use simkit_core::apdu::Command;
use simkit_core::status::Sw;

const ECHO_AID: [u8; 7] = [0xF0, 0x53, 0x4D, 0x4B, 0x49, 0x54, 0xE1];
const COUNTER_AID: [u8; 7] = [0xF0, 0x53, 0x4D, 0x4B, 0x49, 0x54, 0xE2];
const ECHO_CLASS: &str = "dev.simkit.cardhost.testapplets.EchoApplet";

/// CounterApplet: UPDATE in a transaction (P1P2 = amount), 10 persistent writes.
const INS_UPDATE: u8 = 0x10;
/// CounterApplet: balance(2) counter(2) log(4) mirror(4) blob(8) tries(1).
const INS_GET_STATE: u8 = 0x40;
const UPDATE_WRITES: u32 = 10;

fn spawn(config: CardHostConfig) -> Arc<CardHostProcess> {
    CardHostProcess::spawn(config).unwrap_or_else(|e| panic!("{e}"))
}

fn select(aid: &[u8]) -> Command {
    Command::new(0x00, 0xA4, 0x04, 0x00).data(aid.to_vec())
}

fn echo(data: &[u8]) -> Command {
    Command::new(0x00, 0x01, 0x00, 0x00)
        .data(data.to_vec())
        .le(u32::try_from(data.len()).unwrap())
}

/// (balance, counter) of the CounterApplet, checking that log and mirror agree with them.
fn counter_state<C: Card>(ch: &mut Channel<C>) -> (i16, i16) {
    let s = ch
        .transmit_ok("GET STATE", &Command::new(0x80, INS_GET_STATE, 0, 0).le(21))
        .unwrap();
    assert_eq!(s.len(), 21);
    assert_eq!(s[4..8], s[0..4], "log agrees with the fields");
    for i in 0..4 {
        assert_eq!(s[8 + i], !s[4 + i], "mirror agrees with the log");
    }
    (
        i16::from_be_bytes([s[0], s[1]]),
        i16::from_be_bytes([s[2], s[3]]),
    )
}

fn update(amount: u16) -> Command {
    let [p1, p2] = amount.to_be_bytes();
    Command::new(0x80, INS_UPDATE, p1, p2)
}

#[test]
fn echo_short_and_extended() {
    let card = JcardsimCard::spawn(CardHostConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(!card.atr().as_bytes().is_empty());
    let mut ch = Channel::new(card);
    let recorder = TraceRecorder::new();
    ch.set_trace(recorder.hook());
    ch.transmit_ok("SELECT", &select(&ECHO_AID)).unwrap();

    let data: Vec<u8> = (0..16).collect();
    assert_eq!(ch.transmit_ok("ECHO", &echo(&data)).unwrap(), data);

    // Extended length: 1000 bytes each way.
    let big: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    assert_eq!(ch.transmit_ok("ECHO", &echo(&big)).unwrap(), big);
    let wire = recorder.exchanges();
    assert_eq!(wire.len(), 3);
    assert_eq!(wire[2].command[4..7], [0x00, 0x03, 0xE8], "extended Lc");
    assert_eq!(wire[2].response.len(), 1002);
    assert!(wire.iter().all(|x| x.kind == ExchangeKind::Command));

    // jCardSim does not enforce Le; the channel does.
    let e = ch
        .transmit(&Command::new(0x00, 0x01, 0, 0).data(data.clone()).le(8))
        .unwrap_err();
    assert!(
        matches!(e, CardError::ResponseTooLong { le: 8, got: 16 }),
        "{e}"
    );

    // Raw mode sees the same bytes without the check.
    ch.set_raw(true);
    let r = ch
        .transmit(&Command::new(0x00, 0x01, 0, 0).data(data.clone()).le(8))
        .unwrap();
    assert_eq!((r.data.len(), r.sw), (16, Sw::Success));
    ch.set_raw(false);

    // Status words keep their meaning.
    let e = ch
        .transmit_ok("ECHO", &Command::new(0x00, 0x02, 0, 0))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ECHO: 6D00 instruction code not supported or invalid"
    );

    // Transactions are no-ops here but borrow the card like everywhere else.
    let mut card = ch.into_inner();
    let mut tx = card.transaction().unwrap();
    let r = tx
        .transmit_raw(&[0x00, 0x01, 0x00, 0x00, 0x01, 0xAB, 0x01])
        .unwrap();
    assert_eq!(r, [0xAB, 0x90, 0x00]);
    tx.end(simkit_card::Disposition::Reset).unwrap();
    // After the reset nothing is selected.
    let r = card
        .transmit_raw(&[0x00, 0x01, 0x00, 0x00, 0x01, 0xAB, 0x01])
        .unwrap();
    assert_eq!(Sw::from_bytes(r[0], r[1]), Sw::NoCurrentEf);
}

#[test]
fn tear_write_count_and_recovery() {
    let mut ch = Channel::new(
        JcardsimCard::spawn(CardHostConfig::default()).unwrap_or_else(|e| panic!("{e}")),
    );
    ch.transmit_ok("SELECT", &select(&COUNTER_AID)).unwrap();
    ch.transmit_ok("UPDATE", &update(7)).unwrap();
    assert_eq!(ch.card_mut().write_count().unwrap(), UPDATE_WRITES);
    assert_eq!(counter_state(&mut ch), (7, 1));

    // Tear after every possible write: old state each time, never a mix.
    for k in 1..=UPDATE_WRITES {
        ch.card_mut().tear_at(k).unwrap();
        let e = ch.transmit(&update(100)).unwrap_err();
        assert!(matches!(e, CardError::PowerLost), "k={k}: {e}");
        assert_eq!(ch.card_mut().write_count().unwrap(), k);
        // The card was reset: select again, then it answers.
        let e = ch
            .transmit_ok("GET STATE", &Command::new(0x80, INS_GET_STATE, 0, 0).le(21))
            .unwrap_err();
        assert_eq!(
            e.sw(),
            Some(Sw::NoCurrentEf),
            "nothing selected after a tear"
        );
        ch.transmit_ok("SELECT", &select(&COUNTER_AID)).unwrap();
        assert_eq!(counter_state(&mut ch), (7, 1), "k={k}: rolled back");
    }

    // A tear beyond the command's writes does not fire, and is consumed.
    ch.card_mut().tear_at(UPDATE_WRITES + 1).unwrap();
    ch.transmit_ok("UPDATE", &update(1)).unwrap();
    ch.transmit_ok("UPDATE", &update(1)).unwrap();
    assert_eq!(counter_state(&mut ch), (9, 3));

    // Disarming works.
    ch.card_mut().tear_at(3).unwrap();
    ch.card_mut().tear_at(0).unwrap();
    ch.transmit_ok("UPDATE", &update(1)).unwrap();
    assert_eq!(counter_state(&mut ch), (10, 4));

    // k ≥ 2^31 is the host's error, and the connection stays usable.
    let e = ch.card_mut().tear_at(1 << 31).unwrap_err();
    assert!(
        matches!(e, CardError::CardHost(ref m) if m.contains("TEAR_AT")),
        "{e}"
    );
    assert_eq!(counter_state(&mut ch), (10, 4));
}

#[test]
fn power_off_and_on() {
    let mut card = JcardsimCard::spawn(CardHostConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let atr = card.atr().clone();
    card.power_off().unwrap();
    let e = card.transmit_raw(&[0x00, 0xA4, 0x04, 0x00]).unwrap_err();
    assert!(matches!(e, CardError::PoweredOff), "{e}");
    assert_eq!(card.power_on().unwrap(), atr);
    assert_eq!(card.reset().unwrap(), atr);
    let mut ch = Channel::new(card);
    ch.transmit_ok("SELECT", &select(&ECHO_AID)).unwrap();
}

#[test]
fn two_cards_of_one_host_from_two_threads() {
    let process = spawn(CardHostConfig {
        copies: 2,
        ..CardHostConfig::default()
    });
    assert_eq!(process.cards().len(), 2);
    let rounds = 200;
    let handles: Vec<_> = [0u8, 1]
        .into_iter()
        .map(|index| {
            let card = process.card(index).unwrap();
            thread::spawn(move || {
                assert_eq!(card.index(), index);
                let mut ch = Channel::new(card);
                ch.transmit_ok("SELECT", &select(&COUNTER_AID)).unwrap();
                let amount = u16::from(index) + 1;
                for _ in 0..rounds {
                    ch.transmit_ok("UPDATE", &update(amount)).unwrap();
                }
                counter_state(&mut ch)
            })
        })
        .collect();
    let states: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(states, [(200, 200), (400, 200)]);
    assert!(matches!(
        process.card(2),
        Err(CardError::Jcardsim(JcardsimError::NoSuchCard {
            index: 2,
            count: 2
        }))
    ));
}

#[test]
fn attach_to_a_running_host() {
    let process = spawn(CardHostConfig {
        copies: 2,
        ..CardHostConfig::default()
    });
    let addr = process.addr();

    // Same card through two connections: state is the card's.
    let mut own = Channel::new(process.card(1).unwrap());
    own.transmit_ok("SELECT", &select(&COUNTER_AID)).unwrap();
    own.transmit_ok("UPDATE", &update(5)).unwrap();

    let uri: CardUri = format!("jcardsim://127.0.0.1:{}/1", addr.port())
        .parse()
        .unwrap();
    let mut attached = Channel::new(uri.open().unwrap());
    attached
        .transmit_ok("SELECT", &select(&COUNTER_AID))
        .unwrap();
    assert_eq!(counter_state(&mut attached), (5, 1));
    assert!(attached.card_mut().simulator().is_some());

    let mut by_addr = JcardsimCard::attach(addr, 0).unwrap();
    assert!(by_addr.process().is_none());
    let cards = by_addr.list_cards().unwrap();
    assert_eq!(cards.len(), 2);
    assert_eq!(cards[1].applets.len(), 2);
    assert_eq!(
        cards[1].applets[0],
        (ECHO_AID.to_vec(), ECHO_CLASS.to_owned())
    );

    assert!(matches!(
        JcardsimCard::attach(addr, 7),
        Err(CardError::Jcardsim(JcardsimError::NoSuchCard {
            index: 7,
            count: 2
        }))
    ));
    // An attached handle does not own the host: dropping it leaves the host running.
    drop(by_addr);
    assert!(process.is_running());
    assert!(TcpStream::connect(addr).is_ok());
}

#[test]
fn jcardsim_uri_starts_a_host_with_the_default_applets() {
    let uri: CardUri = "jcardsim".parse().unwrap();
    let mut card = uri.open().unwrap_or_else(|e| panic!("{e}"));
    let addr = {
        let simkit_card::AnyCard::Jcardsim(c) = &mut card else {
            panic!("not a jcardsim card")
        };
        let installed = &c.list_cards().unwrap()[0].applets;
        for (aid, class) in simkit_card::uri::DEFAULT_APPLETS {
            assert!(
                installed.contains(&(aid.to_vec(), (*class).to_owned())),
                "{class}"
            );
        }
        c.process().unwrap().addr()
    };
    let mut ch = Channel::new(card);
    let mut credit = simkit_card::credit::CreditClient::new(&mut ch);
    credit.select().unwrap();
    credit.status().unwrap();
    drop(ch);
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn host_stops_when_the_last_handle_is_dropped() {
    let card = JcardsimCard::spawn(CardHostConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let process = Arc::clone(card.process().unwrap());
    let addr = process.addr();
    let pid = process.pid();
    assert!(process.is_running());
    let second = process.card(0).unwrap();
    drop(process);
    drop(card);
    // `second` still holds the host.
    assert!(TcpStream::connect(addr).is_ok());
    drop(second);
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(refused.is_err(), "port {addr} still accepts after drop");
    if cfg!(target_os = "linux") {
        assert!(
            !PathBuf::from(format!("/proc/{pid}")).exists(),
            "process {pid} still exists (not reaped)"
        );
    }
}

#[test]
fn attach_to_a_stopped_host_fails() {
    let process = spawn(CardHostConfig::default());
    let addr = process.addr();
    assert!(process.shutdown().unwrap().unwrap().success());
    assert!(process.shutdown().unwrap().is_none());
    let e = JcardsimCard::attach(addr, 0).unwrap_err();
    assert!(matches!(e, CardError::Transport(_)), "{e}");
}

#[test]
fn wrong_jar_path_is_a_clear_error() {
    let e = JcardsimCard::spawn(CardHostConfig {
        jar: Some(PathBuf::from("/nonexistent/simkit-card-host.jar")),
        ..CardHostConfig::default()
    })
    .unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, CardError::Jcardsim(JcardsimError::JarNotFound { .. })),
        "{text}"
    );
    assert!(text.contains("/nonexistent/simkit-card-host.jar"), "{text}");
    assert!(
        text.contains("build it with `mvn -B -q -f applets/pom.xml package -DskipTests`"),
        "{text}"
    );
}

#[test]
fn missing_java_is_a_clear_error() {
    let e = JcardsimCard::spawn(CardHostConfig {
        java: Some(PathBuf::from("/nonexistent/bin/java")),
        ..CardHostConfig::default()
    })
    .unwrap_err();
    assert!(
        matches!(e, CardError::Jcardsim(JcardsimError::Spawn { .. })),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("could not start /nonexistent/bin/java"),
        "{e}"
    );
}

#[test]
fn host_that_fails_to_start_shows_its_stderr() {
    let e = JcardsimCard::spawn(CardHostConfig::with_cards([CardSpec::new([
        AppletSpec::new([0xF0, 0x01, 0x02, 0x03, 0x04], "dev.simkit.NoSuchApplet"),
    ])]))
    .unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(
            e,
            CardError::Jcardsim(JcardsimError::Startup {
                reason: StartupFailure::Exited(_),
                ..
            })
        ),
        "{text}"
    );
    assert!(text.contains("NoSuchApplet"), "{text}");
}

#[test]
fn host_that_does_not_announce_times_out() {
    // No JVM starts within 1 ms: the child is killed and reaped, and the error says so.
    let e = JcardsimCard::spawn(CardHostConfig {
        startup_timeout: Duration::from_millis(1),
        stderr: StderrMode::Discard,
        ..CardHostConfig::default()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            CardError::Jcardsim(JcardsimError::Startup {
                reason: StartupFailure::TimedOut(_),
                ..
            })
        ),
        "{e}"
    );
}

#[test]
fn install_at_run_time_and_host_errors() {
    let mut card = JcardsimCard::spawn(CardHostConfig::with_cards([CardSpec::new([
        AppletSpec::new(ECHO_AID.to_vec(), ECHO_CLASS),
    ])]))
    .unwrap_or_else(|e| panic!("{e}"));
    card.install(&AppletSpec::new(
        COUNTER_AID.to_vec(),
        "dev.simkit.cardhost.testapplets.CounterApplet",
    ))
    .unwrap();
    assert!(
        card.write_count().unwrap() > 0,
        "install makes persistent writes"
    );
    let e = card
        .install(&AppletSpec::new([0xF0, 9, 9, 9, 9], "dev.simkit.Missing"))
        .unwrap_err();
    assert!(
        matches!(e, CardError::CardHost(ref m) if m.contains("Missing")),
        "{e}"
    );
    let mut ch = Channel::new(card);
    ch.transmit_ok("SELECT", &select(&COUNTER_AID)).unwrap();
    ch.transmit_ok("UPDATE", &update(2)).unwrap();
    assert_eq!(counter_state(&mut ch), (2, 1));
}

#[test]
fn pipelined_transmits_answer_in_order_like_single_ones() {
    let mut card = JcardsimCard::spawn(CardHostConfig::default()).unwrap();
    let wire = |c: &Command| c.to_bytes(simkit_core::apdu::LengthEncoding::Auto).unwrap();
    // Every APDU different, with an error (unknown INS) in the middle that must not disturb
    // the order of the others.
    let mut apdus: Vec<Vec<u8>> = vec![wire(&select(&ECHO_AID))];
    apdus.extend((0u8..100).map(|i| wire(&echo(&[i; 5]))));
    apdus.insert(50, wire(&Command::new(0x00, 0x02, 0, 0)));
    let one_by_one: Vec<Vec<u8>> = apdus
        .iter()
        .map(|a| card.transmit_raw(a).unwrap())
        .collect();
    for window in [1, 7, 32, 1000] {
        let piped: Vec<Vec<u8>> = card
            .transmit_pipelined(&apdus, window)
            .unwrap()
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(piped, one_by_one, "window {window}");
    }
    assert_eq!(one_by_one[50], [0x6D, 0x00]);
    // apdus[i] echoes i - 1, shifted by one after the inserted error.
    assert_eq!(
        one_by_one[51],
        [[49u8; 5].as_slice(), &[0x90, 0x00]].concat()
    );
}
