//! The PC/SC backend through a genuine PC/SC stack: pcscd → vpcd → the simkit card host.
//!
//! Run under `tools/pcsc-sim.sh`, which starts that stack privately and exports
//! `SIMKIT_PCSC_READER` (and `PCSCLITE_CSOCK_NAME`):
//!
//! ```text
//! tools/pcsc-sim.sh run -- cargo test -p simkit-card --test pcsc
//! ```
//!
//! Without `SIMKIT_PCSC_READER` the tests that need a reader print a "skipped" line and pass;
//! `tools/test.sh` always runs them under the script. The no-service test needs no pcscd and
//! always runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/scriptor.rs"]
mod scriptor;

use std::process::Command as Process;
use std::sync::{Mutex, MutexGuard};

use scriptor::scriptor_responses;
use simkit_card::credit::CreditClient;
use simkit_card::pcsc::{ReaderSelector, ShareMode, list_readers};
use simkit_card::{
    Card, CardError, CardUri, Channel, Disposition, ExchangeKind, PcscCard, PcscError,
    SimulatorControl, TraceRecorder,
};
use simkit_core::apdu::Command;
use simkit_core::status::Sw;

const ECHO_AID: [u8; 7] = [0xF0, 0x53, 0x4D, 0x4B, 0x49, 0x54, 0xE1];
const COUNTER_AID: [u8; 7] = [0xF0, 0x53, 0x4D, 0x4B, 0x49, 0x54, 0xE2];
/// CounterApplet: UPDATE in a transaction (P1P2 = amount), 10 persistent writes.
const INS_UPDATE: u8 = 0x10;
const UPDATE_WRITES: u32 = 10;
/// CounterApplet: balance(2) counter(2) log(4) mirror(4) blob(8) tries(1).
const INS_GET_STATE: u8 = 0x40;

/// Every test uses the one simulated card; one at a time, or their SELECTs interleave.
static CARD_LOCK: Mutex<()> = Mutex::new(());

/// The reader under tools/pcsc-sim.sh, with the lock on its card; None (after saying so) when
/// not run under the script.
fn reader(test: &str) -> Option<(String, MutexGuard<'static, ()>)> {
    match std::env::var("SIMKIT_PCSC_READER") {
        Ok(r) if !r.is_empty() => Some((
            r,
            CARD_LOCK
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )),
        _ => {
            eprintln!(
                "{test}: skipped: run under tools/pcsc-sim.sh (SIMKIT_PCSC_READER is not set)"
            );
            None
        }
    }
}

fn open(reader: &str) -> Channel<PcscCard> {
    let card = PcscCard::connect(&ReaderSelector::Name(reader.to_owned()), ShareMode::Shared)
        .unwrap_or_else(|e| panic!("{e}"));
    Channel::new(card)
}

fn select(aid: &[u8]) -> Command {
    Command::new(0x00, 0xA4, 0x04, 0x00).data(aid.to_vec())
}

fn echo(data: &[u8]) -> Command {
    Command::new(0x00, 0x01, 0x00, 0x00)
        .data(data.to_vec())
        .le(u32::try_from(data.len()).unwrap())
}

fn counter_state<C: Card>(ch: &mut Channel<C>) -> Vec<u8> {
    ch.transmit_ok("GET STATE", &Command::new(0x80, INS_GET_STATE, 0, 0).le(21))
        .unwrap()
}

fn update(amount: u16) -> Command {
    let [p1, p2] = amount.to_be_bytes();
    Command::new(0x80, INS_UPDATE, p1, p2)
}

#[test]
fn readers_list_the_simulated_card() {
    let Some((reader, _lock)) = reader("readers_list_the_simulated_card") else {
        return;
    };
    let readers = list_readers().unwrap();
    let info = readers
        .iter()
        .find(|r| r.name == reader)
        .unwrap_or_else(|| panic!("{reader} not in {readers:?}"));
    assert!(info.card_present);
    let ch = open(&reader);
    assert_eq!(info.atr.as_ref(), Some(ch.card().atr()));
    assert!(!ch.card().atr().as_bytes().is_empty());
    // The same reader by index and by a case-insensitive unique substring.
    let by_index: CardUri = format!("pcsc:{}", info.index).parse().unwrap();
    let mut card = by_index.open().unwrap();
    assert_eq!(card.atr(), ch.card().atr());
    drop(ch);
    assert_eq!(
        card.transmit_raw(&[
            0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0, 0x53, 0x4D, 0x4B, 0x49, 0x54, 0xE1
        ])
        .unwrap(),
        [0x90, 0x00]
    );
    let lower = reader.to_lowercase();
    if readers
        .iter()
        .filter(|r| r.name.to_lowercase().contains(&lower))
        .count()
        == 1
    {
        let sub: CardUri = format!("pcsc:{lower}").parse().unwrap();
        sub.open().unwrap();
    }
}

#[test]
fn credit_module_round_trip() {
    let Some((reader, _lock)) = reader("credit_module_round_trip") else {
        return;
    };
    let mut ch = open(&reader);
    let mut credit = CreditClient::new(&mut ch);
    credit.select().unwrap();
    let status = credit.status().unwrap();
    // GET STATUS works in every lifecycle state, personalised or not.
    // An identical card over the card host's socket answers the same.
    if let Ok(uri) = std::env::var("SIMKIT_PCSC_SOCKET_CARD") {
        let mut other = Channel::new(uri.parse::<CardUri>().unwrap().open().unwrap());
        let mut credit2 = CreditClient::new(&mut other);
        credit2.select().unwrap();
        assert_eq!(
            format!("{:?}", credit2.status().unwrap()),
            format!("{status:?}")
        );
    }
}

#[test]
fn extended_and_chained_apdus() {
    let Some((reader, _lock)) = reader("extended_and_chained_apdus") else {
        return;
    };
    let mut ch = open(&reader);
    ch.transmit_ok("SELECT", &select(&ECHO_AID)).unwrap();
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    // Extended length: one APDU each way.
    assert_eq!(ch.transmit_ok("ECHO", &echo(&data)).unwrap(), data);

    // Extended length off: 300 bytes go as a chain of 255 + 45 bytes. jCardSim does not let the
    // echo applet take part in chaining (it answers the chained piece itself), so the check is that
    // PC/SC carries the chain exactly as the card host's socket does: same APDUs on the wire,
    // same answers.
    let chained = |ch: &mut Channel<&mut dyn Card>| {
        let trace = TraceRecorder::new();
        ch.set_extended_length(false).set_trace(trace.hook());
        ch.transmit_ok("SELECT", &select(&ECHO_AID)).unwrap();
        let r = ch.transmit(&echo(&data[..300])).unwrap();
        ch.clear_trace();
        (r, trace.take())
    };
    let (r, wire) = chained(&mut Channel::new(ch.card_mut() as &mut dyn Card));
    let kinds: Vec<ExchangeKind> = wire.iter().map(|e| e.kind).collect();
    // jCardSim refuses the chained piece (6F00), which ends the chain: the channel returns
    // that answer.
    assert_eq!(kinds, [ExchangeKind::Command, ExchangeKind::ChainPiece]);
    assert_eq!(r.to_bytes(), wire[1].response);
    assert_eq!(
        wire[1].command[0], 0x10,
        "chaining bit set on the first piece"
    );
    assert_eq!(wire[1].command.len(), 5 + 255);
    if let Ok(uri) = std::env::var("SIMKIT_PCSC_SOCKET_CARD") {
        let mut socket = uri.parse::<CardUri>().unwrap().open().unwrap();
        let (r2, wire2) = chained(&mut Channel::new(&mut socket as &mut dyn Card));
        assert_eq!(r2, r);
        let pairs = |w: &[simkit_card::RecordedExchange]| {
            w.iter()
                .map(|e| (e.command.clone(), e.response.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&wire2), pairs(&wire));
    }
    // The T=0 GET RESPONSE path (61xx) is not reachable here: vpcd speaks T=1 and the card
    // host does not emulate 61xx. Channel's GET RESPONSE handling is tested over the scripted
    // card (channel.rs).
}

#[test]
fn tear_write_count_and_factory_reset() {
    let Some((reader, _lock)) = reader("tear_write_count_and_factory_reset") else {
        return;
    };
    let mut ch = open(&reader);
    ch.card_mut().factory_reset().unwrap();
    ch.transmit_ok("SELECT", &select(&COUNTER_AID)).unwrap();
    let fresh = counter_state(&mut ch);
    ch.transmit_ok("UPDATE", &update(5)).unwrap();
    assert_eq!(ch.card_mut().write_count().unwrap(), UPDATE_WRITES);
    let after_update = counter_state(&mut ch);
    assert_ne!(after_update, fresh);

    // Tear after the 3rd write of the next UPDATE: PowerLost, 3 writes, nothing changed.
    ch.card_mut().tear_at(3).unwrap();
    let e = ch.transmit(&update(7)).unwrap_err();
    assert!(matches!(e, CardError::PowerLost), "{e}");
    assert_eq!(ch.card_mut().write_count().unwrap(), 3);
    ch.transmit_ok("SELECT", &select(&COUNTER_AID)).unwrap();
    assert_eq!(
        counter_state(&mut ch),
        after_update,
        "torn UPDATE rolled back"
    );

    // A tear armed past the command's writes does not fire; the command is answered normally.
    ch.card_mut().tear_at(UPDATE_WRITES + 5).unwrap();
    ch.transmit_ok("UPDATE", &update(1)).unwrap();

    // Power off: commands fail until power on (a cold reset through pcscd).
    ch.card_mut().power_off().unwrap();
    let e = ch.transmit(&select(&COUNTER_AID)).unwrap_err();
    assert!(matches!(e, CardError::PoweredOff), "{e}");
    let atr = ch.card_mut().power_on().unwrap();
    assert_eq!(&atr, ch.card().atr());
    ch.transmit_ok("SELECT", &select(&COUNTER_AID)).unwrap();

    // Factory reset: the state of a new card.
    ch.card_mut().factory_reset().unwrap();
    ch.transmit_ok("SELECT", &select(&COUNTER_AID)).unwrap();
    assert_eq!(counter_state(&mut ch), fresh);
}

#[test]
fn reset_and_transactions() {
    let Some((reader, _lock)) = reader("reset_and_transactions") else {
        return;
    };
    let mut ch = open(&reader);
    ch.transmit_ok("SELECT", &select(&ECHO_AID)).unwrap();
    ch.card_mut().reset().unwrap();
    // After a reset no applet is selected (jCardSim: 6986).
    let r = ch.transmit(&echo(&[1])).unwrap();
    assert_eq!(r.sw, Sw::from_u16(0x6986));

    ch.transmit_ok("SELECT", &select(&ECHO_AID)).unwrap();
    {
        let mut tx = ch.card_mut().transaction().unwrap();
        assert_eq!(
            tx.transmit_raw(&[0x00, 0x01, 0x00, 0x00, 0x01, 0x2A])
                .unwrap(),
            [0x2A, 0x90, 0x00]
        );
        tx.end(Disposition::Leave).unwrap();
    }
    assert_eq!(ch.transmit_ok("ECHO", &echo(&[7])).unwrap(), [7]);
    let tx = ch.card_mut().transaction().unwrap();
    tx.end(Disposition::Reset).unwrap();
    let r = ch.transmit(&echo(&[1])).unwrap();
    assert_eq!(
        r.sw,
        Sw::from_u16(0x6986),
        "ending with Reset deselected the applet"
    );
}

#[test]
fn exclusive_use_is_a_sharing_violation_for_others() {
    let Some((reader, _lock)) = reader("exclusive_use_is_a_sharing_violation_for_others") else {
        return;
    };
    let selector = ReaderSelector::Name(reader.clone());
    let first = PcscCard::connect(&selector, ShareMode::Exclusive).unwrap();
    assert_eq!(first.share_mode(), ShareMode::Exclusive);
    let e = PcscCard::connect(&selector, ShareMode::Shared).unwrap_err();
    assert!(
        matches!(e, CardError::Pcsc(PcscError::SharingViolation { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("sharing violation"), "{e}");
    drop(first);
    PcscCard::connect(&selector, ShareMode::Shared).unwrap();
}

#[test]
fn wrong_reader_lists_the_readers() {
    let Some((reader, _lock)) = reader("wrong_reader_lists_the_readers") else {
        return;
    };
    let e = "pcsc:No Such Reader 99"
        .parse::<CardUri>()
        .unwrap()
        .open()
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("no PC/SC reader matches \"No Such Reader 99\"; readers: 0: "),
        "{msg}"
    );
    assert!(msg.contains(&format!("{reader:?}")), "{msg}");
    let e = "pcsc:99".parse::<CardUri>().unwrap().open().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("no PC/SC reader matches index 99"),
        "{e}"
    );
}

#[test]
fn empty_reader_is_no_card() {
    // vpcd's second slot ("Virtual PCD 00 01") has no card behind it.
    let Some((reader, _lock)) = reader("empty_reader_is_no_card") else {
        return;
    };
    let Some(empty) = list_readers()
        .unwrap()
        .into_iter()
        .find(|r| !r.card_present && r.name != reader)
    else {
        eprintln!("empty_reader_is_no_card: skipped: no empty reader");
        return;
    };
    let e = PcscCard::connect(&ReaderSelector::Name(empty.name.clone()), ShareMode::Shared)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("no card in PC/SC reader {:?}", empty.name)
    );
}

/// libpcsclite reads PCSCLITE_CSOCK_NAME once per process, so this runs itself as a child
/// process with the variable pointing at a socket nobody listens on.
#[test]
fn no_service_is_a_clear_error() {
    if std::env::var_os("SIMKIT_PCSC_NO_SERVICE_CHILD").is_some() {
        let e = list_readers().unwrap_err();
        assert!(
            matches!(e, CardError::Pcsc(PcscError::NoService { .. })),
            "{e}"
        );
        let e = "pcsc:0".parse::<CardUri>().unwrap().open().unwrap_err();
        println!("CHILD-ERROR: {e}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("pcscd.comm");
    let out = Process::new(std::env::current_exe().unwrap())
        .args(["--exact", "no_service_is_a_clear_error", "--nocapture"])
        .env("SIMKIT_PCSC_NO_SERVICE_CHILD", "1")
        .env("PCSCLITE_CSOCK_NAME", &dead)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = format!(
        "CHILD-ERROR: PC/SC service not running: no pcscd answers on {} (start pcscd, or run under tools/pcsc-sim.sh)",
        dead.display()
    );
    assert!(stdout.contains(&expected), "{stdout}");
}

/// FACTORY_RESET over the card host's own socket (the jCardSim backend), which needs no pcscd.
#[test]
fn factory_reset_over_the_socket() {
    use simkit_card::{AppletSpec, CardHostConfig, CardSpec, JcardsimCard};
    let config = CardHostConfig::with_cards([CardSpec::new([AppletSpec::new(
        COUNTER_AID.to_vec(),
        "dev.simkit.cardhost.testapplets.CounterApplet",
    )])]);
    let mut ch = Channel::new(JcardsimCard::spawn(config).unwrap_or_else(|e| panic!("{e}")));
    ch.transmit_ok("SELECT", &select(&COUNTER_AID)).unwrap();
    let fresh = counter_state(&mut ch);
    ch.transmit_ok("UPDATE", &update(9)).unwrap();
    assert_ne!(counter_state(&mut ch), fresh);
    ch.card_mut().tear_at(2).unwrap();
    let atr = ch.card_mut().factory_reset().unwrap();
    assert_eq!(&atr, ch.card().atr());
    ch.transmit_ok("SELECT", &select(&COUNTER_AID)).unwrap();
    assert_eq!(counter_state(&mut ch), fresh);
    // The armed tear went with the old card: this UPDATE is not torn.
    ch.transmit_ok("UPDATE", &update(9)).unwrap();
    assert_eq!(ch.card_mut().write_count().unwrap(), UPDATE_WRITES);
}

/// An independent PC/SC client, pcsc-tools' `scriptor`, gets the same answers as we do for
/// the same commands on the same reader (after a factory reset each time, so both start from
/// the same card).
#[test]
fn scriptor_answers_like_us() {
    let Some((reader, _lock)) = reader("scriptor_answers_like_us") else {
        return;
    };
    let script: [&[u8]; 7] = [
        &[
            0x00, 0xA4, 0x04, 0x00, 0x09, 0xF0, 0x53, 0x49, 0x4D, 0x4B, 0x49, 0x54, 0x01, 0x01,
        ],
        &[0x80, 0x10, 0x00, 0x00, 0x31], // GET STATUS, 49 bytes
        &[0x80, 0x5E, 0x00, 0x00],       // LOCK before personalisation: 9C0D
        &[0x80, 0x7F, 0x00, 0x00],       // unknown INS
        &[
            0x00, 0xA4, 0x04, 0x00, 0x07, 0xF0, 0x53, 0x4D, 0x4B, 0x49, 0x54, 0xE1,
        ],
        &[0x00, 0x01, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03, 0x03], // ECHO
        &[0xFF, 0xE2, 0x00, 0x00, 0x00], // SIM_STATUS: the reader pseudo-APDU too
    ];
    let mut ch = open(&reader);
    ch.card_mut().factory_reset().unwrap();
    let ours: Vec<String> = script
        .iter()
        .map(|apdu| simkit_core::hexutil::to_hex(&ch.card_mut().transmit_raw(apdu).unwrap()))
        .collect();
    ch.card_mut().factory_reset().unwrap();
    drop(ch);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.txt");
    let text: String = script
        .iter()
        .map(|apdu| {
            let hex: Vec<String> = apdu.iter().map(|b| format!("{b:02X}")).collect();
            hex.join(" ") + "\n"
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    let out = match Process::new("scriptor")
        .arg("-r")
        .arg(&reader)
        .arg(&file)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("scriptor (Debian pcsc-tools) cannot run: {e}"),
    };
    assert!(out.status.success(), "scriptor: {out:?}");
    let theirs = scriptor_responses(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(theirs, ours);
    assert_eq!(ours[2], "9C0D");
    assert_eq!(ours[5], "0102039000");
}
