//! The 1,000-APDU comparison of BENCHMARKS.md: one fixed script — SELECT the credit module,
//! then 1,000 × GET STATUS (`80 F2 00 00 31`, 49 bytes back) — played in one session
//!
//! 1. by our host over the card host's socket (`jcardsim://…`), one command at a time and
//!    pipelined (`JcardsimCard::transmit_pipelined`, 32 in flight),
//! 2. by our host over genuine PC/SC (pcscd → vpcd → the same card host; the socket path uses
//!    its identical second card, since pcscd powers the idle card in the reader down),
//! 3. by pcsc-tools' `scriptor` over PC/SC on the same reader,
//!
//! checking that the three get the same responses. Run it under `tools/pcsc-sim.sh`:
//!
//! ```text
//! cargo build --release -p simkit-card --example apdu_1000
//! tools/pcsc-sim.sh run -- target/release/examples/apdu_1000 [RUNS]
//! ```
//!
//! Each path plays the script RUNS times (default 7) after one untimed warm-up run; the
//! median and the range are printed. For scriptor the time of a one-command script (perl start,
//! connect) is measured the same way and subtracted, so its figure is the 1,000 commands alone;
//! its whole-process time is printed too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/scriptor.rs"]
mod scriptor;

use std::process::Command as Process;
use std::time::{Duration, Instant};

use scriptor::scriptor_responses;
use simkit_card::{AnyCard, Card, CardUri, Channel};
use simkit_core::apdu::LengthEncoding;
use simkit_core::credit::commands;
use simkit_core::hexutil::to_hex;

const COUNT: usize = 1000;

fn script() -> (Vec<u8>, Vec<u8>) {
    let select = commands::select().to_bytes(LengthEncoding::Short).unwrap();
    let status = commands::get_status()
        .to_bytes(LengthEncoding::Short)
        .unwrap();
    (select, status)
}

/// Plays the script on `uri` once; returns the time of the 1,000 commands and the last response.
fn ours(uri: &CardUri) -> (Duration, Vec<u8>) {
    let (select, status) = script();
    let mut card = Channel::new(uri.open().unwrap_or_else(|e| panic!("{uri}: {e}")));
    let card = card.card_mut();
    card.reset().unwrap();
    assert_eq!(card.transmit_raw(&select).unwrap(), [0x90, 0x00]);
    let mut last = Vec::new();
    let start = Instant::now();
    for _ in 0..COUNT {
        last = card.transmit_raw(&status).unwrap();
    }
    let elapsed = start.elapsed();
    assert_eq!(
        last[last.len() - 2..],
        [0x90, 0x00],
        "{uri}: GET STATUS failed"
    );
    (elapsed, last)
}

/// The same on the card host's socket with the commands pipelined (up to 32 in flight), as a
/// runner may play a script whose commands do not depend on earlier responses.
fn ours_pipelined(uri: &CardUri) -> (Duration, Vec<u8>) {
    let (select, status) = script();
    let mut card = uri.open().unwrap_or_else(|e| panic!("{uri}: {e}"));
    let AnyCard::Jcardsim(card) = &mut card else {
        panic!("{uri} is not a card-host socket");
    };
    card.reset().unwrap();
    assert_eq!(card.transmit_raw(&select).unwrap(), [0x90, 0x00]);
    let script = vec![status; COUNT];
    let start = Instant::now();
    let responses = card.transmit_pipelined(&script, 32).unwrap();
    let elapsed = start.elapsed();
    let last = responses.into_iter().map(Result::unwrap).last().unwrap();
    (elapsed, last)
}

fn spaced(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs scriptor on a script of SELECT + `n` GET STATUS; returns its wall time and its
/// responses (hex, no spaces).
fn scriptor(reader: &str, n: usize, dir: &std::path::Path) -> (Duration, Vec<String>) {
    let (select, status) = script();
    let mut text = format!("{}\n", spaced(&select));
    for _ in 0..n {
        text.push_str(&spaced(&status));
        text.push('\n');
    }
    let file = dir.join(format!("script-{n}.txt"));
    std::fs::write(&file, text).unwrap();
    let start = Instant::now();
    let out = Process::new("scriptor")
        .arg("-r")
        .arg(reader)
        .arg(&file)
        .output()
        .expect("scriptor (pcsc-tools) not found");
    let elapsed = start.elapsed();
    assert!(out.status.success(), "scriptor failed: {out:?}");
    (
        elapsed,
        scriptor_responses(&String::from_utf8_lossy(&out.stdout)),
    )
}

fn summary(name: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let median = times[times.len() / 2];
    let per = median / u32::try_from(COUNT).unwrap();
    println!(
        "| {name} | {:.1} ms | {:.1}–{:.1} ms | {:.0} µs |",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        per.as_secs_f64() * 1e6
    );
    median
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map_or(7, |s| s.parse().expect("RUNS must be a number"));
    let reader = std::env::var("SIMKIT_PCSC_READER")
        .expect("SIMKIT_PCSC_READER is not set: run under tools/pcsc-sim.sh");
    let socket: CardUri = std::env::var("SIMKIT_PCSC_SOCKET_CARD")
        .expect("SIMKIT_PCSC_SOCKET_CARD is not set: run under tools/pcsc-sim.sh")
        .parse()
        .unwrap();
    let pcsc: CardUri = format!("pcsc:{reader}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Warm-up (JIT in the card host, pcscd's threads), and the responses to compare.
    let (_, last_socket) = ours(&socket);
    let (_, last_pcsc) = ours(&pcsc);
    let (_, responses) = scriptor(&reader, COUNT, dir.path());
    assert_eq!(last_pcsc, last_socket, "PC/SC and socket answers differ");
    assert_eq!(
        ours_pipelined(&socket).1,
        last_socket,
        "pipelined answers differ"
    );
    assert_eq!(
        responses.len(),
        COUNT + 1,
        "scriptor answered {responses:?}"
    );
    assert_eq!(responses[0], "9000", "scriptor SELECT");
    let ours_hex = to_hex(&last_pcsc);
    for (i, r) in responses[1..].iter().enumerate() {
        assert_eq!(*r, ours_hex, "scriptor response {i} differs from ours");
    }

    let mut socket_t = Vec::new();
    let mut pipelined_t = Vec::new();
    let mut pcsc_t = Vec::new();
    let mut scriptor_t = Vec::new();
    let mut scriptor_whole = Vec::new();
    for _ in 0..runs {
        socket_t.push(ours(&socket).0);
        pipelined_t.push(ours_pipelined(&socket).0);
        pcsc_t.push(ours(&pcsc).0);
        let (one, _) = scriptor(&reader, 1, dir.path());
        let (all, _) = scriptor(&reader, COUNT, dir.path());
        scriptor_t.push(all.saturating_sub(one));
        scriptor_whole.push(all);
    }
    println!("{COUNT} × GET STATUS in one session, {runs} runs (median, range, per APDU):");
    println!();
    println!("| path | median | range | per APDU |");
    println!("|---|---|---|---|");
    let s = summary("simkit over the card-host socket", socket_t);
    let sp = summary(
        "simkit over the card-host socket, pipelined (32 in flight)",
        pipelined_t,
    );
    let p = summary("simkit over PC/SC (pcscd → vpcd)", pcsc_t);
    let c = summary("scriptor over PC/SC, minus a 1-command run", scriptor_t);
    summary("scriptor over PC/SC, whole process", scriptor_whole);
    println!();
    println!(
        "PC/SC / socket: {:.1}× one at a time, {:.1}× pipelined; scriptor / simkit over PC/SC: {:.2}×; responses identical",
        p.as_secs_f64() / s.as_secs_f64(),
        p.as_secs_f64() / sp.as_secs_f64(),
        c.as_secs_f64() / p.as_secs_f64()
    );
}
