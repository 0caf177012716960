//! Load harness for the credit module through the card-host socket: fixed counts, figures on
//! stdout. `cargo bench -p simkit-card --bench reload_round` (the card host jar must be built:
//! `mvn -B -q -f applets/pom.xml package -DskipTests`).
//!
//! - `startup`: spawning the card host until its first card answers (median and minimum of 5);
//! - `round/sequential`: INITIATE RELOAD + APPLY GRANT per round, one APDU per round trip;
//! - `round/pipelined_w32`: the same rounds with up to 32 APDUs in flight;
//! - `round/appliance`: the whole appliance round — GET STATUS, INITIATE RELOAD, the server
//!   policy deciding and signing the grant in this process, APPLY GRANT, the completion ack
//!   checked by the server — as `simkit credit reload` plays it (latency per round).
//!
//! Grants are computed in advance by running the same session through the pure reference model
//! (`simkit_core::credit::module::Module`), which answers byte for byte what the applet answers,
//! so the card does only its own work. Compare with the in-JVM rate of the same rounds:
//! `java -cp applets/card-host/target/simkit-card-host.jar dev.simkit.cardhost.bench.CreditBench`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use simkit_card::credit::CreditClient;
use simkit_card::{AppletSpec, CardHostConfig, CardSpec, Channel, JcardsimCard};
use simkit_core::apdu::{Command, LengthEncoding};
use simkit_core::credit::Limits;
use simkit_core::credit::commands::{self, APPLET_AID, InitialCounters, PersonalisationData};
use simkit_core::credit::module::Module;
use simkit_core::credit::server::{self, DebitOutcome, FreshDecision, RequestAction, ServerRecord};
use simkit_core::crypto::{ModuleKeys, Profile, SecretKey, derive_module_keys};

const ID: [u8; 8] = [0x42; 8];
/// Untimed rounds before each measurement (JIT warm-up of the card host).
const WARMUP: usize = 3_000;
const LIMITS: Limits = Limits {
    min_reload: 1,
    max_reload: 1000,
    upper: 2_000_000_000,
    credit_line: 0,
};

fn config() -> CardHostConfig {
    CardHostConfig {
        cards: vec![CardSpec::new([AppletSpec::new(
            APPLET_AID.to_vec(),
            "dev.simkit.credit.CreditModule",
        )])],
        ..CardHostConfig::default()
    }
}

fn keys() -> ModuleKeys {
    derive_module_keys(Profile::AesCmac, &SecretKey::new(&[0x40; 16]), &ID).unwrap()
}

fn data(keys: &ModuleKeys) -> PersonalisationData {
    let mut d = PersonalisationData::complete(Profile::AesCmac, ID, keys, LIMITS, 5);
    d.initial = Some(InitialCounters { balance: 0, n: 0 });
    d
}

fn wire(cmd: &Command) -> Vec<u8> {
    cmd.to_bytes(LengthEncoding::Auto).unwrap()
}

/// `rounds` reload rounds of 1 credit as APDUs: [INITIATE, APPLY GRANT] per round, with the
/// grants the server policy signs for the requests the reference model predicts.
fn precompute(keys: &ModuleKeys, rounds: usize) -> Vec<Vec<u8>> {
    let mut model = Module::personalised(&data(keys)).unwrap();
    let mut record = ServerRecord::new(ID, Profile::AesCmac, 0, LIMITS, 5);
    let mut apdus = Vec::with_capacity(rounds * 2);
    for _ in 0..rounds {
        let request = model.initiate_reload(1).unwrap();
        let grant = sign(&mut record, keys, &request);
        model.apply_grant(&grant).unwrap();
        apdus.push(wire(&commands::initiate_reload(1)));
        apdus.push(wire(&commands::apply_grant(&grant)));
    }
    apdus
}

/// The server policy's grant for a fresh request, debited in full.
fn sign(record: &mut ServerRecord, keys: &ModuleKeys, request: &[u8]) -> [u8; 37] {
    let RequestAction::Fresh {
        request,
        decision: FreshDecision::Debit { amount },
    } = server::classify_request(record, request, &keys.request).unwrap()
    else {
        panic!("the policy did not grant");
    };
    server::finish_fresh(
        record,
        &request,
        DebitOutcome::Debited { amount },
        &keys.grant,
    )
    .unwrap()
}

fn fresh_card(keys: &ModuleKeys) -> JcardsimCard {
    let card = JcardsimCard::spawn(config()).unwrap();
    let mut ch = Channel::new(card);
    let mut c = CreditClient::new(&mut ch);
    c.select().unwrap();
    c.personalise(&data(keys)).unwrap();
    c.lock().unwrap();
    ch.into_inner()
}

fn report(name: &str, count: usize, unit: &str, elapsed: Duration) {
    let per = elapsed.as_secs_f64() / count as f64;
    println!(
        "{name:<22} {count:>7} {unit:<7} {:>10.0} {unit}/s {:>9.1} µs/{unit}",
        1.0 / per,
        per * 1e6
    );
}

fn main() {
    // Start-up.
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let card = JcardsimCard::spawn(config()).unwrap();
        times.push(t.elapsed());
        drop(card);
    }
    times.sort();
    println!(
        "startup                median {:.0} ms, min {:.0} ms (spawn to first ATR, 5 runs)",
        times[2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );

    let keys = keys();

    // Sequential rounds: one APDU per round trip. The first WARMUP rounds let the card host's
    // JIT compile the applet and the runtime; only the rest is timed.
    let rounds = 5_000;
    let apdus = precompute(&keys, WARMUP + rounds);
    let mut card = fresh_card(&keys);
    let sel = wire(&commands::select());
    simkit_card::Card::transmit_raw(&mut card, &sel).unwrap();
    let (warm, timed) = apdus.split_at(WARMUP * 2);
    for a in warm {
        simkit_card::Card::transmit_raw(&mut card, a).unwrap();
    }
    let t = Instant::now();
    for a in timed {
        let r = simkit_card::Card::transmit_raw(&mut card, a).unwrap();
        assert_eq!(r[r.len() - 2..], [0x90, 0x00]);
    }
    report("round/sequential", rounds, "round", t.elapsed());

    // Pipelined rounds.
    let rounds = 20_000;
    let apdus = precompute(&keys, WARMUP + rounds);
    let mut card = fresh_card(&keys);
    simkit_card::Card::transmit_raw(&mut card, &sel).unwrap();
    let (warm, timed) = apdus.split_at(WARMUP * 2);
    for chunk in warm.chunks(64) {
        card.transmit_pipelined(chunk, 32).unwrap();
    }
    let t = Instant::now();
    for chunk in timed.chunks(64) {
        for r in card.transmit_pipelined(chunk, 32).unwrap() {
            let r = r.unwrap();
            assert_eq!(r[r.len() - 2..], [0x90, 0x00]);
        }
    }
    report("round/pipelined_w32", rounds, "round", t.elapsed());

    // The appliance round with the server policy in the loop.
    let rounds = 2_000;
    let mut ch = Channel::new(fresh_card(&keys));
    let mut client = CreditClient::new(&mut ch);
    client.select().unwrap();
    let mut record = ServerRecord::new(ID, Profile::AesCmac, 0, LIMITS, 5);
    let mut t = Instant::now();
    for i in 0..WARMUP + rounds {
        if i == WARMUP {
            t = Instant::now();
        }
        let status = client.status().unwrap();
        assert!(status.allowed_range().is_some());
        let request = client.initiate_reload(1).unwrap().to_bytes();
        let grant = sign(&mut record, &keys, &request);
        let ack = client.apply_grant(&grant).unwrap();
        server::handle_completion(&mut record, &ack.ack().to_bytes(), &keys.request).unwrap();
    }
    report("round/appliance", rounds, "round", t.elapsed());
    assert_eq!(
        client.status().unwrap().balance,
        i32::try_from(WARMUP + rounds).unwrap()
    );
}
