//! The backup-store client against the applet in the card host (built by
//! `mvn -B -q -f applets/pom.xml package -DskipTests`): round trips through extended length
//! and through command chaining, incremental backups that send only what changed (counted on
//! the wire), passcodes that count down and block, and a capacity overflow that leaves the
//! previous generation readable. Tear tests are on the Java side.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use simkit_card::backup::{BackupClient, BackupClientError};
use simkit_card::{
    AppletSpec, CardHostConfig, CardSpec, Channel, ExchangeKind, JcardsimCard, TraceRecorder,
};
use simkit_core::backup::commands::{AID, InstallParams, Passcode, SessionKind};
use simkit_core::backup::diff::LocalRecord;
use simkit_core::backup::manifest::{Category, RecordId, RecordName, digest};
use simkit_core::backup::plan::Transport;
use simkit_core::status::Sw;

const PAIRING: &[u8] = b"123456";
const REPROVISIONING: &[u8] = b"87654321";

/// A fresh card host with one card holding the backup store installed with `params`.
fn card(params: InstallParams) -> Channel<JcardsimCard> {
    let applet = AppletSpec::new(AID.to_vec(), "dev.simkit.backup.BackupStore")
        .params(params.encode().to_vec());
    let config = CardHostConfig::with_cards([CardSpec::new([applet])]);
    Channel::new(JcardsimCard::spawn(config).unwrap_or_else(|e| panic!("{e}")))
}

fn params(capacity: u32, max_records: u16) -> InstallParams {
    InstallParams {
        capacity,
        max_records,
        ..InstallParams::DEFAULT
    }
}

/// A local tree: record id → data.
type Tree = BTreeMap<(Category, String), Vec<u8>>;

fn local(tree: &Tree) -> Vec<LocalRecord> {
    tree.iter()
        .map(|((category, name), data)| LocalRecord {
            category: *category,
            name: RecordName::new(name).unwrap(),
            data_len: data.len() as u64,
            digest: digest(data),
        })
        .collect()
}

fn bytes(n: usize, seed: u32) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (u32::try_from(i)
                .unwrap()
                .wrapping_mul(31)
                .wrapping_add(seed)
                % 251) as u8
        })
        .collect()
}

/// Empty, tiny and ≥ 32 KiB records, non-ASCII names, every category.
fn mixed_tree() -> Tree {
    let mut t = Tree::new();
    t.insert(
        (Category::ServiceBooks, "carrier.sb".into()),
        b"APN=x\n".to_vec(),
    );
    t.insert((Category::Keys, "empty.key".into()), Vec::new());
    t.insert((Category::Keys, "k".into()), vec![0x42]);
    t.insert(
        (Category::UserData, "photo-été.jpg".into()),
        bytes(40_000, 1),
    );
    t.insert(
        (Category::UserData, "日本語のメモ.txt".into()),
        bytes(300, 2),
    );
    t.insert((Category::Preferences, "ui 🎛.conf".into()), bytes(251, 3));
    t.insert((Category::Other, "Ä".into()), bytes(252, 4));
    t.insert((Category::Other, "ä".into()), bytes(33_000, 5));
    t
}

fn setup(ch: &mut Channel<JcardsimCard>) {
    let mut c = BackupClient::new(ch);
    c.select().unwrap();
    c.set_passcode(Passcode::Pairing, PAIRING).unwrap();
    c.set_passcode(Passcode::Reprovisioning, REPROVISIONING)
        .unwrap();
}

fn client<'c>(ch: &'c mut Channel<JcardsimCard>, short: bool) -> BackupClient<'c, JcardsimCard> {
    ch.set_extended_length(!short);
    let reader = if short {
        Transport::SHORT
    } else {
        Transport::extended(65_535, 65_536)
    };
    let mut c = BackupClient::new(ch).with_reader(reader);
    c.open(PAIRING).unwrap();
    c
}

fn push(
    c: &mut BackupClient<'_, JcardsimCard>,
    tree: &Tree,
    full: bool,
) -> Result<Option<u32>, BackupClientError> {
    let plan = c.plan_push(&local(tree), full)?;
    c.push(
        &plan,
        &mut |e| Ok(tree[&(e.category, e.name.as_str().to_owned())].clone()),
        &mut |_| {},
    )
}

/// Reads every record of the card's manifest back (both passcodes verified).
fn read_all(c: &mut BackupClient<'_, JcardsimCard>) -> Tree {
    let m = c.manifest().unwrap().unwrap();
    m.manifest
        .iter()
        .map(|e| {
            let data = c.read_record(e, &mut |_| {}).unwrap();
            ((e.category, e.name.as_str().to_owned()), data)
        })
        .collect()
}

fn round_trip(short: bool, packing: bool) {
    let mut ch = card(params(128 * 1024, 32));
    setup(&mut ch);
    let trace = TraceRecorder::new();
    ch.set_trace(trace.hook());
    let tree = mixed_tree();
    let mut c = client(&mut ch, short);
    c.set_packing(packing);
    assert_eq!(c.transport().extended_length, !short, "{:?}", c.transport());
    assert_eq!(push(&mut c, &tree, false).unwrap(), Some(1));
    c.verify(Passcode::Reprovisioning, REPROVISIONING).unwrap();
    assert_eq!(read_all(&mut c), tree, "byte-identical after restore");
    let status = c.status().unwrap();
    let total: usize = tree.values().map(Vec::len).sum();
    assert_eq!(
        (
            status.generation,
            status.used as usize,
            usize::from(status.record_count)
        ),
        (1, total, tree.len())
    );

    let exchanges = trace.take();
    let packs: Vec<_> = exchanges
        .iter()
        .filter(|x| x.command.get(1) == Some(&0x4A))
        .collect();
    if packing {
        // The small records travel packed, within the transport's limit.
        assert!(!packs.is_empty());
        let limit = if short { 5 + 255 } else { 7 + 0x7FFF };
        assert!(packs.iter().all(|x| x.command.len() <= limit));
    } else {
        assert!(packs.is_empty());
    }
    let writes: Vec<_> = exchanges
        .into_iter()
        .filter(|x| x.command.get(1) == Some(&0x3A))
        .collect();
    let chained = writes.iter().filter(|x| x.command[0] == 0x90).count();
    let extended = writes
        .iter()
        .filter(|x| x.command[4] == 0 && x.command.len() > 5 + 255)
        .count();
    if short {
        assert!(chained > 100, "chain segments: {chained}");
        assert_eq!(extended, 0);
        assert!(writes.iter().all(|x| x.command.len() <= 5 + 255));
        assert!(writes.iter().all(|x| x.kind == ExchangeKind::Command));
    } else {
        assert_eq!(chained, 0);
        // At the card's 7FFF limit (32 763 record bytes each): 40 000 bytes in two extended
        // APDUs, 33 000 in one and a short one (241 bytes); without packing 300 and 252 bytes
        // one each (over 255 with the offset); 251 bytes fit a short APDU.
        let expected = if packing { 3 } else { 5 };
        assert_eq!(extended, expected, "extended WRITE DATA APDUs");
    }
}

#[test]
fn round_trip_through_extended_length() {
    round_trip(false, true);
}

#[test]
fn round_trip_through_command_chaining() {
    round_trip(true, true);
}

#[test]
fn round_trip_one_record_at_a_time_extended() {
    round_trip(false, false);
}

#[test]
fn round_trip_one_record_at_a_time_chained() {
    round_trip(true, false);
}

#[test]
fn incremental_sends_only_what_changed() {
    incremental_sends_only_what_changed_with(true);
}

#[test]
fn incremental_sends_only_what_changed_one_record_at_a_time() {
    incremental_sends_only_what_changed_with(false);
}

/// With packing (version 02) the two records go in one WRITE RECORDS; without, as BEGIN
/// RECORD / WRITE DATA / END RECORD each.
fn incremental_sends_only_what_changed_with(packing: bool) {
    let mut ch = card(params(128 * 1024, 128));
    setup(&mut ch);
    let trace = TraceRecorder::new();
    ch.set_trace(trace.hook());
    let mut tree = Tree::new();
    for i in 0..40u32 {
        tree.insert((Category::UserData, format!("rec{i:02}")), bytes(1000, i));
    }
    let mut c = client(&mut ch, false);
    c.set_packing(packing);
    assert_eq!(push(&mut c, &tree, false).unwrap(), Some(1));
    let full_wire: usize = trace.take().iter().map(|x| x.command.len()).sum();

    // Nothing changed: no session at all.
    assert_eq!(push(&mut c, &tree, false).unwrap(), None);
    trace.take();

    tree.insert((Category::UserData, "rec07".into()), bytes(1000, 999));
    tree.remove(&(Category::UserData, "rec08".into()));
    tree.insert((Category::Keys, "new".into()), bytes(10, 7));
    let plan = c.plan_push(&local(&tree), false).unwrap();
    assert_eq!(plan.kind, SessionKind::Incremental { base_generation: 1 });
    assert_eq!(
        (plan.send.len(), plan.delete.len(), plan.unchanged),
        (2, 1, 38)
    );
    trace.take();
    assert_eq!(push(&mut c, &tree, false).unwrap(), Some(2));
    let exchanges = trace.take();
    let wire: usize = exchanges.iter().map(|x| x.command.len()).sum();
    let ins = |i: u8| exchanges.iter().filter(|x| x.command[1] == i).count();
    let (packs, begins) = if packing { (1, 0) } else { (0, 2) };
    assert_eq!(
        (ins(0x4A), ins(0x38), ins(0x3E), ins(0x40)),
        (packs, begins, 1, 1)
    );
    // 1010 record bytes plus the manifest read and per-command overheads.
    assert!(wire < 1010 + 6000, "incremental wire bytes {wire}");
    assert!(wire * 10 < full_wire, "{wire} vs full {full_wire}");

    c.verify(Passcode::Reprovisioning, REPROVISIONING).unwrap();
    assert_eq!(read_all(&mut c), tree);
}

#[test]
fn wrong_pairing_passcodes_count_down_and_block() {
    let mut ch = card(InstallParams::DEFAULT);
    setup(&mut ch);
    {
        let mut c = client(&mut ch, false);
        assert_eq!(push(&mut c, &mixed_tree_small(), false).unwrap(), Some(1));
    }
    let mut c = BackupClient::new(&mut ch);
    c.select().unwrap();
    for left in (0..5).rev() {
        let e = c.verify(Passcode::Pairing, b"000000").unwrap_err();
        assert_eq!(e.tries_left(), Some(left), "{e}");
    }
    let s = c.status().unwrap();
    assert!(s.is_locked());
    assert_eq!((s.generation, s.used, s.record_count), (0, 0, 0));
    assert!(matches!(
        c.open(PAIRING).unwrap_err(),
        BackupClientError::Locked
    ));
    // Even the right passcode: locked.
    let e = c.verify(Passcode::Pairing, PAIRING).unwrap_err();
    assert_eq!(e.sw(), Some(Sw::from_u16(0x6983)), "{e}");
    let e = c.manifest().unwrap_err();
    assert_eq!(e.sw(), Some(Sw::from_u16(0x6983)), "{e}");
    let id = RecordId::new(Category::Keys, RecordName::new("k").unwrap());
    let e = c.read_data(&id, 0, 1).unwrap_err();
    assert_eq!(e.sw(), Some(Sw::from_u16(0x6983)), "{e}");
    // ERASE is the way on: empty store, passcodes unset.
    c.erase().unwrap();
    let s = c.status().unwrap();
    assert!(!s.is_locked());
    assert!(!s.flags.is_set(Passcode::Pairing));
    c.set_passcode(Passcode::Pairing, PAIRING).unwrap();
    c.set_passcode(Passcode::Reprovisioning, REPROVISIONING)
        .unwrap();
    c.open(PAIRING).unwrap();
    assert_eq!(c.manifest().unwrap(), None);
}

fn mixed_tree_small() -> Tree {
    let mut t = Tree::new();
    t.insert((Category::Keys, "k".into()), vec![0x42]);
    t.insert((Category::UserData, "notes".into()), bytes(500, 9));
    t
}

#[test]
fn wrong_reprovisioning_passcodes_block_and_yield_no_data() {
    let mut ch = card(InstallParams::DEFAULT);
    setup(&mut ch);
    let tree = mixed_tree_small();
    let mut c = client(&mut ch, false);
    push(&mut c, &tree, false).unwrap();
    let id = RecordId::new(Category::Keys, RecordName::new("k").unwrap());
    let e = c.read_data(&id, 0, 1).unwrap_err();
    assert_eq!(e.sw(), Some(Sw::SecurityStatusNotSatisfied), "{e}");
    for left in (0..3).rev() {
        let e = c.verify(Passcode::Reprovisioning, b"0000").unwrap_err();
        assert_eq!(e.tries_left(), Some(left), "{e}");
    }
    let e = c.read_data(&id, 0, 1).unwrap_err();
    assert_eq!(e.sw(), Some(Sw::from_u16(0x6983)), "{e}");
    let e = c.verify(Passcode::Pairing, PAIRING).unwrap_err();
    assert_eq!(e.sw(), Some(Sw::from_u16(0x6983)), "{e}");
    let e = c
        .verify(Passcode::Reprovisioning, REPROVISIONING)
        .unwrap_err();
    assert_eq!(e.sw(), Some(Sw::from_u16(0x6983)), "{e}");
    let e = c.manifest().unwrap_err();
    assert_eq!(e.sw(), Some(Sw::from_u16(0x6983)), "{e}");
}

#[test]
fn capacity_overflow_keeps_the_previous_generation() {
    let mut ch = card(params(4096, 16));
    setup(&mut ch);
    let mut gen1 = Tree::new();
    gen1.insert((Category::Keys, "a".into()), bytes(1500, 1));
    gen1.insert((Category::Keys, "b".into()), bytes(1500, 2));
    let mut c = client(&mut ch, false);
    assert_eq!(push(&mut c, &gen1, false).unwrap(), Some(1));

    // A full backup needs room for both generations: 3000 + 2000 > 4096.
    let mut other = Tree::new();
    other.insert((Category::UserData, "c".into()), bytes(2000, 3));
    let e = push(&mut c, &other, true).unwrap_err();
    assert_eq!(e.sw(), Some(Sw::CapacityExceeded), "{e}");
    assert_eq!(
        e.to_string(),
        "record user-data/c: WRITE RECORDS: 9D02 store capacity exceeded; previous generation kept",
        "a pack of one record is reported as that record"
    );
    // An incremental one too big for the free space.
    let mut more = gen1.clone();
    more.insert((Category::UserData, "big".into()), bytes(1200, 4));
    let e = push(&mut c, &more, false).unwrap_err();
    assert_eq!(e.sw(), Some(Sw::CapacityExceeded), "{e}");

    let s = c.status().unwrap();
    assert_eq!((s.generation, s.used, s.free), (1, 3000, 1096));
    assert!(!s.flags.session_open());
    c.verify(Passcode::Reprovisioning, REPROVISIONING).unwrap();
    assert_eq!(read_all(&mut c), gen1);

    // What fits still goes.
    let mut fits = gen1.clone();
    fits.insert((Category::UserData, "small".into()), bytes(1000, 5));
    assert_eq!(push(&mut c, &fits, false).unwrap(), Some(2));
    assert_eq!(read_all(&mut c), fits);
}

#[test]
fn too_many_records_ends_the_session_cleanly() {
    let mut ch = card(params(4096, 2));
    setup(&mut ch);
    let mut tree = Tree::new();
    for n in ["a", "b", "c"] {
        tree.insert((Category::Other, n.into()), vec![1, 2, 3]);
    }
    let mut c = client(&mut ch, false);
    let e = push(&mut c, &tree, false).unwrap_err();
    assert_eq!(e.sw(), Some(Sw::TooManyRecords), "{e}");
    assert_eq!(c.manifest().unwrap(), None);
}

#[test]
fn changed_passcodes_take_effect_and_keep_the_data() {
    let mut ch = card(InstallParams::DEFAULT);
    setup(&mut ch);
    let tree = mixed_tree_small();
    let mut c = client(&mut ch, false);
    push(&mut c, &tree, false).unwrap();
    // CHANGE REFERENCE DATA of the reprovisioning passcode needs it verified.
    let e = c
        .change_passcode(Passcode::Reprovisioning, b"13579")
        .unwrap_err();
    assert_eq!(e.sw(), Some(Sw::SecurityStatusNotSatisfied), "{e}");
    c.change_passcode(Passcode::Pairing, b"pairing-2").unwrap();
    c.verify(Passcode::Reprovisioning, REPROVISIONING).unwrap();
    c.change_passcode(Passcode::Reprovisioning, b"13579")
        .unwrap();
    // A new selection starts with nothing verified; the old values are wrong now.
    c.select().unwrap();
    assert_eq!(
        c.passcode_state(Passcode::Pairing).unwrap(),
        simkit_card::backup::PasscodeState::TriesLeft(5)
    );
    let e = c.open(PAIRING).unwrap_err();
    assert_eq!(e.tries_left(), Some(4), "{e}");
    c.open(b"pairing-2").unwrap();
    let e = c
        .verify(Passcode::Reprovisioning, REPROVISIONING)
        .unwrap_err();
    assert_eq!(e.tries_left(), Some(2), "{e}");
    c.verify(Passcode::Reprovisioning, b"13579").unwrap();
    assert_eq!(read_all(&mut c), tree);
}

/// Sixty small records pipelined in one batch; the card runs out of room at the 41st. The push
/// names that record and its status word, aborts, and the previous generation is untouched —
/// including the 40 records staged before the refusal and the commands sent behind it.
#[test]
fn failure_in_the_middle_of_a_pipelined_batch_commits_nothing() {
    failure_in_the_middle_of_a_pipelined_batch_commits_nothing_with(false);
}

#[test]
fn failure_in_a_pack_commits_nothing() {
    failure_in_the_middle_of_a_pipelined_batch_commits_nothing_with(true);
}

/// Revision 1: BEGIN RECORD of r40 is refused, the commands behind it too, COMMIT never goes.
/// Revision 2: the one WRITE RECORDS carrying all 60 records is refused at r40 and the session
/// ends; the verified COMMIT pipelined behind it is refused (9D01).
fn failure_in_the_middle_of_a_pipelined_batch_commits_nothing_with(packing: bool) {
    let mut ch = card(params(7_900, 128));
    setup(&mut ch);
    let mut gen1 = Tree::new();
    gen1.insert((Category::Keys, "a".into()), bytes(1_000, 1));
    let mut c = client(&mut ch, false);
    c.set_packing(packing);
    assert_eq!(push(&mut c, &gen1, false).unwrap(), Some(1));

    let mut many = gen1.clone();
    for i in 0..60 {
        many.insert((Category::UserData, format!("r{i:02}")), bytes(170, i));
    }
    // 1000 + 40 × 170 = 7800 fits in 7900; the 41st record (r40) does not.
    let trace = TraceRecorder::new();
    c.channel().set_trace(trace.hook());
    let e = push(&mut c, &many, false).unwrap_err();
    assert_eq!(e.sw(), Some(Sw::CapacityExceeded), "{e}");
    let expected = if packing {
        "records user-data/r00 and 59 more (one WRITE RECORDS): WRITE RECORDS: 9D02 store capacity exceeded; previous generation kept"
    } else {
        "record user-data/r40: BEGIN RECORD: 9D02 store capacity exceeded; previous generation kept"
    };
    assert_eq!(e.to_string(), expected);
    let sent = trace.take();
    // The commands queued behind the refusal reached the card (pipelined) and were refused.
    let after: Vec<u16> = sent
        .iter()
        .skip_while(|x| !x.response.ends_with(&[0x9D, 0x02]))
        .skip(1)
        .map(|x| {
            u16::from_be_bytes([
                x.response[x.response.len() - 2],
                x.response[x.response.len() - 1],
            ])
        })
        .collect();
    assert!(after.len() >= 2, "{after:?}");
    assert!(after.iter().all(|&sw| sw == 0x9D01), "{after:X?}");
    let commits: Vec<_> = sent.iter().filter(|x| x.command[1] == 0x40).collect();
    if packing {
        // The verified COMMIT went in the same pipeline and was refused.
        assert_eq!(commits.len(), 1);
        assert_eq!(commits[0].command[2], 0x01, "verified form");
        assert!(commits[0].response.ends_with(&[0x9D, 0x01]));
    } else {
        assert!(commits.is_empty(), "no COMMIT was sent");
    }
    c.channel().clear_trace();

    let s = c.status().unwrap();
    assert_eq!((s.generation, s.used, s.record_count), (1, 1_000, 1));
    c.verify(Passcode::Reprovisioning, REPROVISIONING).unwrap();
    assert_eq!(read_all(&mut c), gen1);
}

/// §6.2 step 4: a record whose file changed after it was hashed (same length, other bytes) is
/// refused with 9D03, re-read and sent again with what was re-read; the commit holds the new
/// content and the predicted manifest is the card's.
#[test]
fn digest_mismatch_rereads_and_resends_the_record() {
    digest_mismatch_rereads_and_resends_with(false);
}

/// Revision 2: the pack is refused with 9D03 (session ended, verified COMMIT refused); the
/// whole session runs again with every record hashed as read.
#[test]
fn digest_mismatch_in_a_pack_runs_the_session_again() {
    digest_mismatch_rereads_and_resends_with(true);
}

fn digest_mismatch_rereads_and_resends_with(packing: bool) {
    let mut ch = card(params(65_536, 16));
    setup(&mut ch);
    let mut tree = Tree::new();
    tree.insert((Category::UserData, "a".into()), bytes(500, 1));
    tree.insert((Category::UserData, "b".into()), bytes(700, 2));
    tree.insert((Category::UserData, "c".into()), bytes(900, 3));
    let mut c = client(&mut ch, false);
    c.set_packing(packing);
    let plan = c.plan_push(&local(&tree), false).unwrap();
    // The file of "b" changes between the plan and the send.
    let mut changed = tree.clone();
    changed.insert((Category::UserData, "b".into()), bytes(700, 99));
    let mut reads = 0;
    let trace = TraceRecorder::new();
    c.channel().set_trace(trace.hook());
    let generation = c
        .push(
            &plan,
            &mut |e| {
                reads += 1;
                Ok(changed[&(e.category, e.name.as_str().to_owned())].clone())
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(generation, Some(1));
    if packing {
        assert_eq!(reads, 6, "every record read once per session");
    } else {
        assert_eq!(reads, 4, "b read twice");
    }
    let mismatches = trace
        .take()
        .iter()
        .filter(|x| x.response.ends_with(&[0x9D, 0x03]))
        .count();
    assert_eq!(mismatches, 1);
    c.channel().clear_trace();
    let card = c.manifest().unwrap().unwrap();
    assert_eq!(Some(&card), c.pushed_manifest());
    c.verify(Passcode::Reprovisioning, REPROVISIONING).unwrap();
    assert_eq!(read_all(&mut c), changed);

    // A file that also changes length is re-read the same way.
    let mut grown = changed.clone();
    grown.insert((Category::UserData, "c".into()), bytes(950, 4));
    let mut next = changed.clone();
    next.insert((Category::UserData, "c".into()), bytes(901, 5));
    let plan = c.plan_push(&local(&next), false).unwrap();
    assert_eq!(plan.send.len(), 1);
    c.push(
        &plan,
        &mut |e| Ok(grown[&(e.category, e.name.as_str().to_owned())].clone()),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(read_all(&mut c), grown);
}

/// §5.16: after a push the client knows the card's table; the next plan with that copy sends
/// GET MANIFEST DIGEST instead of reading the manifest, and a wrong copy is caught.
#[test]
fn a_kept_manifest_saves_the_manifest_read() {
    let mut ch = card(params(65_536, 128));
    setup(&mut ch);
    let mut tree = Tree::new();
    for i in 0..50 {
        tree.insert((Category::Other, format!("record-{i:02}")), bytes(100, i));
    }
    let mut c = client(&mut ch, false);
    assert_eq!(push(&mut c, &tree, false).unwrap(), Some(1));
    let kept = c.pushed_manifest().unwrap().clone();
    assert_eq!(Some(kept.clone()), c.manifest().unwrap());
    let d = c.manifest_digest().unwrap().unwrap();
    assert_eq!((d.generation, d.count), (1, 50));
    assert!(d.matches(&kept.entries));

    tree.insert((Category::Other, "record-07".into()), bytes(100, 1000));
    let trace = TraceRecorder::new();
    c.channel().set_trace(trace.hook());
    let mut asked = 0;
    let plan = c
        .plan_push_cached(&local(&tree), false, &mut |digest| {
            asked += 1;
            (digest.digest == d.digest).then(|| kept.entries.clone())
        })
        .unwrap();
    assert_eq!(asked, 1);
    assert_eq!(plan.send.len(), 1);
    let ins: Vec<u8> = trace.take().iter().map(|x| x.command[1]).collect();
    assert_eq!(ins, [0x48], "only GET MANIFEST DIGEST");
    c.push(
        &plan,
        &mut |e| Ok(tree[&(e.category, e.name.as_str().to_owned())].clone()),
        &mut |_| {},
    )
    .unwrap();
    // The replaced record moved to the end of the card's table (§3.4); the prediction knows.
    let predicted = c.pushed_manifest().unwrap().clone();
    assert_eq!(predicted.entries.last().unwrap().name.as_str(), "record-07");
    assert_eq!(Some(predicted.clone()), c.manifest().unwrap());

    // A copy that is not the card's (the old one) is refused: the manifest is read.
    trace.take();
    let m = c
        .manifest_cached(&mut |_| Some(kept.entries.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(m, predicted);
    let ins: Vec<u8> = trace.take().iter().map(|x| x.command[1]).collect();
    assert_eq!(ins[0], 0x48);
    assert!(ins[1..].iter().all(|&i| i == 0x34), "{ins:X?}");
}
