//! APDU round trips per second through the card host's loopback socket.
//!
//! `cargo bench -p simkit-card --bench roundtrip` (the card host jar must be built:
//! `mvn -B -q -f applets/pom.xml package -DskipTests`). Criterion's "thrpt" line is APDU/s.
//!
//! - `echo16/transmit_raw`: a 16-byte echo to EchoApplet, bytes straight through the backend;
//! - `echo16/channel`: the same through [`Channel`] (encoding, Le check, trace off);
//! - `credit/get_status`, `credit/debit`: GET STATUS (49 bytes out) and DEBIT (a persistent
//!   write in a transaction) on a locked credit module (shipped in the card host jar).
//!
//! Compare with the in-JVM rate: `java -cp applets/card-host/target/simkit-card-host.jar
//! dev.simkit.cardhost.bench.InJvmBench 200000 16`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use simkit_card::credit::{CreditClient, CreditClientError};
use simkit_card::{AppletSpec, Card, CardHostConfig, CardSpec, Channel, JcardsimCard};
use simkit_core::apdu::{Command, LengthEncoding};
use simkit_core::credit::Limits;
use simkit_core::credit::commands::{APPLET_AID, InitialCounters, PersonalisationData};
use simkit_core::crypto::{ModuleKeys, Profile, SecretKey};

const ECHO_AID: [u8; 7] = [0xF0, 0x53, 0x4D, 0x4B, 0x49, 0x54, 0xE1];

fn select(aid: &[u8]) -> Command {
    Command::new(0x00, 0xA4, 0x04, 0x00).data(aid.to_vec())
}

fn echo(c: &mut Criterion) {
    let card = match JcardsimCard::spawn(CardHostConfig::default()) {
        Ok(card) => card,
        Err(e) => {
            eprintln!("roundtrip bench skipped: {e}");
            return;
        }
    };
    let mut ch = Channel::new(card);
    if let Err(e) = ch.transmit_ok("SELECT", &select(&ECHO_AID)) {
        eprintln!("roundtrip bench skipped: {e}");
        return;
    }
    let cmd = Command::new(0x00, 0x01, 0x00, 0x00)
        .data((0u8..16).collect::<Vec<_>>())
        .le(16);
    let Ok(wire) = cmd.to_bytes(LengthEncoding::Auto) else {
        return;
    };

    let mut g = c.benchmark_group("echo16");
    g.throughput(Throughput::Elements(1));
    g.bench_function("transmit_raw", |b| {
        b.iter(|| black_box(ch.card_mut().transmit_raw(black_box(&wire))))
    });
    g.bench_function("channel", |b| {
        b.iter(|| black_box(ch.transmit(black_box(&cmd))))
    });
    g.finish();

    // The same APDU pipelined: 64 per iteration, 32 in flight.
    let batch = vec![wire.clone(); PIPELINE_BATCH];
    let mut g = c.benchmark_group("echo16");
    g.throughput(Throughput::Elements(PIPELINE_BATCH as u64));
    g.bench_function("pipelined_w32", |b| {
        b.iter(|| black_box(ch.card_mut().transmit_pipelined(black_box(&batch), 32)))
    });
    g.finish();
}

/// APDUs per pipelined iteration.
const PIPELINE_BATCH: usize = 64;

/// A locked aes-cmac module with a balance large enough for any number of 1-credit debits.
fn personalise<C: Card>(client: &mut CreditClient<'_, C>) -> Result<(), CreditClientError> {
    let id = [0x42; 8];
    let keys = ModuleKeys {
        request: SecretKey::new(&[0x11; 16]),
        grant: SecretKey::new(&[0x22; 16]),
    };
    let limits = Limits {
        min_reload: 1,
        max_reload: 1000,
        upper: 2_000_000_000,
        credit_line: 0,
    };
    let mut data = PersonalisationData::complete(Profile::AesCmac, id, &keys, limits, 3);
    data.initial = Some(InitialCounters {
        balance: 2_000_000_000,
        n: 0,
    });
    client.select()?;
    client.personalise(&data)?;
    client.lock()
}

fn credit(c: &mut Criterion) {
    let config = CardHostConfig {
        cards: vec![CardSpec::new([AppletSpec::new(
            APPLET_AID.to_vec(),
            "dev.simkit.credit.CreditModule",
        )])],
        ..CardHostConfig::default()
    };
    let card = match JcardsimCard::spawn(config) {
        Ok(card) => card,
        Err(e) => {
            eprintln!("credit bench skipped: {e}");
            return;
        }
    };
    let mut ch = Channel::new(card);
    let mut client = CreditClient::new(&mut ch);
    if let Err(e) = personalise(&mut client) {
        eprintln!("credit bench skipped: {e}");
        return;
    }
    let mut g = c.benchmark_group("credit");
    g.throughput(Throughput::Elements(1));
    g.bench_function("get_status", |b| b.iter(|| black_box(client.status())));
    g.bench_function("debit", |b| b.iter(|| black_box(client.debit(1))));
    g.finish();

    // Pipelined: the applet's own work per APDU, with the loopback round trip paid per window.
    let wire = |cmd: Command| cmd.to_bytes(LengthEncoding::Auto).unwrap_or_default();
    let status = vec![wire(simkit_core::credit::commands::get_status()); PIPELINE_BATCH];
    let debit = vec![wire(simkit_core::credit::commands::debit(1)); PIPELINE_BATCH];
    let card = client.channel().card_mut();
    let mut g = c.benchmark_group("credit");
    g.throughput(Throughput::Elements(PIPELINE_BATCH as u64));
    g.bench_function("get_status_pipelined_w32", |b| {
        b.iter(|| black_box(card.transmit_pipelined(black_box(&status), 32)))
    });
    g.bench_function("debit_pipelined_w32", |b| {
        b.iter(|| black_box(card.transmit_pipelined(black_box(&debit), 32)))
    });
    g.finish();
}

criterion_group!(benches, echo, credit);
criterion_main!(benches);
