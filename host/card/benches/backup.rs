//! Backup-store throughput through the card-host socket: fixed counts, figures on stdout.
//! `cargo bench -p simkit-card --bench backup` (the card host jar must be built:
//! `mvn -B -q -f applets/pom.xml package -DskipTests`).
//!
//! For trees of 64 KiB and 256 KiB (100 records each, so that one record is 1 %):
//! - `full`: a whole full backup as `simkit backup push --full` plays it with a version-02
//!   applet (GET MANIFEST DIGEST, then one pipeline: BEGIN SESSION, the records packed into
//!   WRITE RECORDS of up to 32 767 bytes, a verified COMMIT), in record bytes/s;
//! - `full_rev1`: the same with packing off (per record BEGIN RECORD / WRITE DATA / END
//!   RECORD, COMMIT after their answers), as with a version-01 applet;
//! - `raw` (the baseline of the goal full / raw ≥ 0.8): the same payload in maximum-size APDUs
//!   (the card's 32 767-byte limit) to the card host's `StoreSinkApplet` on a second card of the
//!   same host, which copies each command's data into a persistent array — the least any store
//!   must do with data it keeps — sent the way the backup sends (pipelined,
//!   `Channel::transmit_batch`);
//! - `host_prep`: the host's share of `full` alone, no card: the plan, the records fetched,
//!   packed and encoded as the client does before the pipeline is sent;
//! - `raw_refused`: the old baseline, kept for comparison: the same APDUs one by one to an
//!   instruction the backup store refuses at once (6D00), so the card does nothing with the
//!   data. It is not a fair "raw rate": no store can beat doing nothing;
//! - `incremental_1pct`: one record of the 100 changed, then an incremental backup (plan from
//!   the manifest, one record sent, COMMIT; the local tree hashed in advance, as for `full`).
//!   The goal is at most 5 % of a full backup; the
//!   bytes on the wire of both are printed (deterministic, unlike the times), also for an
//!   incremental backup without a kept manifest.
//!
//! Every backup plans as `push --manifest-cache` does: GET MANIFEST DIGEST, and the manifest
//! kept from the previous push when it matches (applet-spec §5.16).
//!
//! Record data is in memory and hashed in advance: the figures are the card path's, not the
//! disk's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use simkit_card::backup::BackupClient;
use simkit_card::{AppletSpec, CardHostConfig, CardSpec, Channel, JcardsimCard, TraceRecorder};
use simkit_core::apdu::Command;
use simkit_core::apdu::{LengthEncoding, Response};
use simkit_core::backup::commands::{self, AID, InstallParams, Passcode};
use simkit_core::backup::diff::LocalRecord;
use simkit_core::backup::manifest::{Category, RecordName, digest};

const RECORDS: usize = 100;
/// Untimed runs before each measurement (JIT warm-up of the card host).
const WARMUP: usize = 10;
/// Least warm-up time before each measurement.
const WARMUP_TIME: Duration = Duration::from_secs(2);
const PAIRING: &[u8] = b"123456";

type Tree = BTreeMap<String, Vec<u8>>;

const SINK_AID: [u8; 9] = [0xF0, 0x53, 0x49, 0x4D, 0x4B, 0x49, 0x54, 0xFF, 0x01];
const SINK_STORE: u8 = 0x02;

/// Card 0: the backup store, passcodes set. Card 1: the store sink, selected.
fn cards() -> (Channel<JcardsimCard>, Channel<JcardsimCard>) {
    let params = InstallParams {
        capacity: 2 * 1024 * 1024,
        max_records: 256,
        ..InstallParams::DEFAULT
    };
    let applet = AppletSpec::new(AID.to_vec(), "dev.simkit.backup.BackupStore")
        .params(params.encode().to_vec());
    let sink = AppletSpec::new(
        SINK_AID.to_vec(),
        "dev.simkit.cardhost.testapplets.StoreSinkApplet",
    );
    let config = CardHostConfig::with_cards([CardSpec::new([applet]), CardSpec::new([sink])]);
    let card0 = JcardsimCard::spawn(config).unwrap_or_else(|e| panic!("{e}"));
    let mut sink_ch = Channel::new(card0.process().unwrap().card(1).unwrap());
    let select = Command::new(0x00, 0xA4, 0x04, 0x00).data(SINK_AID.to_vec());
    sink_ch.transmit_ok("SELECT", &select).unwrap();
    let mut ch = Channel::new(card0);
    let mut c = BackupClient::new(&mut ch);
    c.select().unwrap();
    c.set_passcode(Passcode::Pairing, PAIRING).unwrap();
    c.set_passcode(Passcode::Reprovisioning, b"87654321")
        .unwrap();
    (ch, sink_ch)
}

fn tree(total: usize, seed: u32) -> Tree {
    let each = total / RECORDS;
    (0..RECORDS)
        .map(|r| {
            let data = (0..each)
                .map(|i| ((i as u32).wrapping_mul(131).wrapping_add(seed + r as u32) % 251) as u8)
                .collect();
            (format!("record-{r:03}"), data)
        })
        .collect()
}

fn local(tree: &Tree) -> Vec<LocalRecord> {
    tree.iter()
        .map(|(name, data)| LocalRecord {
            category: Category::UserData,
            name: RecordName::new(name).unwrap(),
            data_len: data.len() as u64,
            digest: digest(data),
        })
        .collect()
}

/// One backup as `simkit backup push --manifest-cache` plays it (pairing already verified): plan
/// from the kept manifest when GET MANIFEST DIGEST says it is the card's (else the manifest is
/// read), push (pipelined).
fn backup(
    c: &mut BackupClient<'_, JcardsimCard>,
    tree: &Tree,
    records: &[LocalRecord],
    full: bool,
) -> usize {
    let kept = c.pushed_manifest().map(|m| m.entries.clone());
    let plan = c
        .plan_push_cached(records, full, &mut |_| kept.clone())
        .unwrap();
    c.push(
        &plan,
        &mut |e| Ok(tree[e.name.as_str()].clone()),
        &mut |_| {},
    )
    .unwrap();
    plan.send.len()
}

/// Median time of `runs` timed calls, after at least `warmup` untimed calls and
/// [`WARMUP_TIME`]. The median, not the mean: on a shared 2-core VM a run now and then waits
/// tens of milliseconds for a CPU (or the card host's JVM for a collection), and one such run
/// would move a mean of 50 by more than the difference being measured.
fn time<F: FnMut()>(warmup: usize, runs: usize, mut f: F) -> Duration {
    let start = Instant::now();
    let mut done = 0;
    while done < warmup || start.elapsed() < WARMUP_TIME {
        f();
        done += 1;
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

/// Command and response bytes recorded since the last call, and the number of commands.
fn wire_bytes(trace: &TraceRecorder) -> (usize, usize) {
    let exchanges = trace.take();
    let bytes = exchanges
        .iter()
        .map(|x| x.command.len() + x.response.len())
        .sum();
    (bytes, exchanges.len())
}

fn rate(bytes: usize, per: Duration) -> f64 {
    bytes as f64 / per.as_secs_f64()
}

fn main() {
    println!("backup store through the card host ({RECORDS} records per tree)");
    for (label, total, runs) in [("64KiB", 64 * 1024, 201), ("256KiB", 256 * 1024, 101)] {
        let (mut ch, mut sink) = cards();
        let mut c = BackupClient::new(&mut ch);
        c.open(PAIRING).unwrap();
        let max = usize::from(c.status().unwrap().max_command_data);
        let t = tree(total, 0);
        let records = local(&t);
        let bytes: usize = t.values().map(Vec::len).sum();

        // Bytes on the wire (commands and responses), traced outside the timed runs: a full
        // backup, then an incremental one after one record changed.
        let trace = TraceRecorder::new();
        c.channel().set_trace(trace.hook());
        backup(&mut c, &t, &records, true);
        let (full_wire, full_apdus) = wire_bytes(&trace);
        c.set_packing(false);
        backup(&mut c, &t, &records, true);
        let (full_rev1_wire, full_rev1_apdus) = wire_bytes(&trace);
        c.set_packing(true);
        let mut one_changed = t.clone();
        one_changed.insert("record-042".into(), vec![0xEE; bytes / RECORDS]);
        backup(&mut c, &one_changed, &local(&one_changed), false);
        let (incremental_wire, _) = wire_bytes(&trace);
        // The same without a kept manifest (GET MANIFEST read in full), for comparison.
        backup(&mut c, &t, &records, false);
        trace.take();
        let plan = c.plan_push(&local(&one_changed), false).unwrap();
        c.push(
            &plan,
            &mut |e| Ok(one_changed[e.name.as_str()].clone()),
            &mut |_| {},
        )
        .unwrap();
        let (incremental_uncached_wire, _) = wire_bytes(&trace);
        backup(&mut c, &t, &records, false);
        c.channel().clear_trace();

        let full = time(WARMUP, runs, || {
            assert_eq!(backup(&mut c, &t, &records, true), RECORDS);
        });
        c.set_packing(false);
        let full_rev1 = time(WARMUP, runs, || {
            assert_eq!(backup(&mut c, &t, &records, true), RECORDS);
        });
        c.set_packing(true);

        // The same payload in maximum-size APDUs: stored by the sink, pipelined (the baseline).
        let count = bytes.div_ceil(max);
        let payload = |ins: u8| -> Vec<Command> {
            (0..count)
                .map(|i| {
                    let n = if i + 1 == count {
                        bytes - max * (count - 1)
                    } else {
                        max
                    };
                    Command::new(0x80, ins, 0, 0).data(vec![0x5A; n])
                })
                .collect()
        };
        let stores = payload(SINK_STORE);
        let raw = time(WARMUP, runs, || {
            let answers: Vec<Response> = sink.transmit_batch(&stores).unwrap();
            assert!(answers.iter().all(|r| r.sw.to_u16() == 0x9000));
        });
        // The old baseline: one by one to an INS the backup store refuses (6D00).
        let refused = payload(0x50);
        let raw_refused = time(WARMUP, runs, || {
            for cmd in &refused {
                let r = c.channel().transmit(cmd).unwrap();
                assert_eq!(r.sw.to_u16(), 0x6D00);
            }
        });

        // Incremental after changing 1 % of the records: the tree alternates between two states
        // that differ in one record, both built and hashed before the timing (as the full
        // backup's tree is), so each run sends exactly one record and the time is the push's.
        let mut changed = t.clone();
        changed.insert(
            "record-042".into(),
            tree(total, 1000).remove("record-000").unwrap(),
        );
        let states = [(local(&changed), &changed), (records.clone(), &t)];
        backup(&mut c, &t, &records, false);
        let mut round = 0usize;
        let incremental = time(WARMUP, runs, || {
            let (records, tree) = &states[round % 2];
            round += 1;
            assert_eq!(backup(&mut c, tree, records, false), 1);
        });

        // The same bytes as records of one maximum-size WRITE RECORDS each (entry of 38 bytes
        // plus the 5-byte name): the store's own per-byte work (SHA-256 on the card, block
        // writes) without the cost of 100 small records.
        let per = max - 38 - 5;
        let big_count = bytes.div_ceil(per);
        let big: Tree = (0..big_count)
            .map(|i| {
                let len = if i + 1 == big_count {
                    bytes - per * i
                } else {
                    per
                };
                (
                    format!("big-{i}"),
                    vec![u8::try_from(i % 256).unwrap(); len.min(bytes)],
                )
            })
            .collect();
        let big_records = local(&big);
        let big_bytes: usize = big.values().map(Vec::len).sum();
        let big_full = time(WARMUP, runs, || {
            backup(&mut c, &big, &big_records, true);
        });

        // The host's share of a full push, without the card: the plan, each record's bytes
        // fetched (cloned from memory, as in `backup`), packed into WRITE RECORDS up to the
        // card's limit and encoded as APDUs, as `BackupClient::push` does before it sends.
        let host_prep = time(WARMUP, runs, || {
            let plan = c.plan_push(&records, true).unwrap();
            let mut apdus = Vec::new();
            let mut pack: Vec<(_, Vec<u8>)> = Vec::new();
            let mut len = 0usize;
            let flush = |pack: &mut Vec<(_, Vec<u8>)>, apdus: &mut Vec<Vec<u8>>| {
                let cmd = commands::write_records(pack.iter().map(|(e, d)| (e, d.as_slice())));
                apdus.push(cmd.unwrap().to_bytes(LengthEncoding::Auto).unwrap());
                pack.clear();
            };
            for entry in &plan.send {
                let need = usize::try_from(commands::write_records_len(entry)).unwrap();
                if len + need > max {
                    flush(&mut pack, &mut apdus);
                    len = 0;
                }
                len += need;
                pack.push((entry.clone(), t[entry.name.as_str()].clone()));
            }
            flush(&mut pack, &mut apdus);
            assert_eq!(apdus.len(), full_apdus - 2);
        });

        let full_rate = rate(bytes, full);
        let raw_rate = rate(bytes, raw);
        println!(
            "{label:>7} full            {:>9.3} ms  {:>10.0} B/s  ({runs} runs)",
            full.as_secs_f64() * 1e3,
            full_rate
        );
        println!(
            "{label:>7} raw             {:>9.3} ms  {:>10.0} B/s  ({count} STOREs of <= {max} bytes, pipelined)",
            raw.as_secs_f64() * 1e3,
            raw_rate
        );
        println!(
            "{label:>7} full / raw      {:>9.3}       (goal >= 0.8; {full_apdus} commands, {full_wire} B on the wire)",
            full_rate / raw_rate
        );
        println!(
            "{label:>7} host_prep       {:>9.3} ms  = {:.1} % of full (the host's work before sending, no card)",
            host_prep.as_secs_f64() * 1e3,
            100.0 * host_prep.as_secs_f64() / full.as_secs_f64()
        );
        println!(
            "{label:>7} full_rev1       {:>9.3} ms  {:>10.0} B/s  = {:.3} of raw ({full_rev1_apdus} commands, {full_rev1_wire} B)",
            full_rev1.as_secs_f64() * 1e3,
            rate(bytes, full_rev1),
            rate(bytes, full_rev1) / raw_rate
        );
        println!(
            "{label:>7} raw_refused     {:>9.3} ms  {:>10.0} B/s  (6D00, one by one; full / it = {:.3})",
            raw_refused.as_secs_f64() * 1e3,
            rate(bytes, raw_refused),
            full_rate / rate(bytes, raw_refused)
        );
        println!(
            "{label:>7} full, {} records of <= {} bytes {:>9.3} ms  {:>10.0} B/s  = {:.3} of raw",
            big.len(),
            per,
            big_full.as_secs_f64() * 1e3,
            rate(big_bytes, big_full),
            rate(big_bytes, big_full) / raw_rate
        );
        println!(
            "{label:>7} wire bytes: full {full_wire}, incremental_1pct {incremental_wire} = {:.2} % \
             (without a kept manifest {incremental_uncached_wire} = {:.2} %)",
            100.0 * incremental_wire as f64 / full_wire as f64,
            100.0 * incremental_uncached_wire as f64 / full_wire as f64
        );
        println!(
            "{label:>7} incremental_1pct {:>8.3} ms  = {:.2} % of full (goal <= 5 %)",
            incremental.as_secs_f64() * 1e3,
            100.0 * incremental.as_secs_f64() / full.as_secs_f64()
        );
    }
}
