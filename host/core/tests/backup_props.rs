//! Property tests of the backup-store data model: manifest codec, incremental diff, verify, and
//! transfer plans.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use simkit_core::backup::commands::{self, BackupStatus, ManifestPage};
use simkit_core::backup::diff::{
    LocalRecord, RecordState, incremental_plan, local_manifest, verify,
};
use simkit_core::backup::manifest::{Category, Manifest, ManifestEntry, RecordName};
use simkit_core::backup::plan::{
    OFFSET_LEN, Transport, WriteFraming, read_plan, write_apdu_count, write_plan,
};

fn category() -> impl Strategy<Value = Category> {
    prop::sample::select(Category::ALL.to_vec())
}

fn name() -> impl Strategy<Value = RecordName> {
    // Mostly short ASCII names (so ids collide often enough to exercise changes), plus arbitrary
    // Unicode that the validator filters.
    prop_oneof!["[a-e]{1,3}(\\.[a-z]{1,3})?", any::<String>(),]
        .prop_filter_map("invalid record name", |s| RecordName::new(&s).ok())
}

fn entry() -> impl Strategy<Value = ManifestEntry> {
    (category(), name(), any::<u32>(), any::<[u8; 32]>()).prop_map(
        |(category, name, length, digest)| ManifestEntry {
            category,
            name,
            length,
            digest,
        },
    )
}

/// A set of records with distinct ids: (category, name) → (length, digest seed).
fn tree() -> impl Strategy<Value = Vec<LocalRecord>> {
    btree_map((category(), name()), (0u64..4, 0u8..4), 0..12).prop_map(|m| {
        m.into_iter()
            .map(|((category, name), (data_len, seed))| LocalRecord {
                category,
                name,
                data_len,
                digest: [seed; 32],
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn entry_round_trip(e in entry()) {
        let bytes = e.encode();
        prop_assert_eq!(bytes.len(), e.encoded_len());
        prop_assert_eq!(ManifestEntry::parse_exact(&bytes).unwrap(), e);
    }

    #[test]
    fn manifest_round_trip(entries in vec(entry(), 0..20)) {
        if let Ok(m) = Manifest::from_entries(entries) {
            let bytes = m.encode();
            let parsed = Manifest::parse(&bytes).unwrap();
            prop_assert_eq!(&parsed, &m);
            prop_assert_eq!(parsed.encode(), bytes);
            for e in &m {
                prop_assert_eq!(m.get(e.category, e.name.as_str()), Some(e));
            }
        }
    }

    #[test]
    fn parsers_never_panic(bytes in vec(any::<u8>(), 0..400)) {
        let _ = Manifest::parse(&bytes);
        let _ = ManifestEntry::parse(&bytes);
        let _ = ManifestPage::parse(&bytes);
        let _ = BackupStatus::parse(&bytes);
        let _ = commands::InstallParams::parse(&bytes);
        let _ = commands::parse_commit_response(&bytes);
    }

    #[test]
    fn parsers_never_panic_on_near_valid_manifests(
        entries in vec(entry(), 1..5),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes: Vec<u8> = entries.iter().flat_map(ManifestEntry::encode).collect();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = Manifest::parse(&bytes);
        let _ = Manifest::parse(&bytes[..cut.index(bytes.len())]);
    }

    #[test]
    fn applying_the_plan_yields_the_local_manifest(local in tree(), card in tree()) {
        let card = local_manifest(&card).unwrap();
        let plan = incremental_plan(&local, &card).unwrap();
        prop_assert_eq!(plan.apply(&card), local_manifest(&local).unwrap());
        // Every card record is exactly one of: unchanged, resent, deleted.
        prop_assert_eq!(
            plan.unchanged.len() + plan.delete.len()
                + plan.send.iter().filter(|e| card.get(e.category, e.name.as_str()).is_some()).count(),
            card.len()
        );
    }

    #[test]
    fn unchanged_records_are_never_sent(local in tree(), card in tree()) {
        let card = local_manifest(&card).unwrap();
        let plan = incremental_plan(&local, &card).unwrap();
        for e in &plan.send {
            let same = card.get(e.category, e.name.as_str()).is_some_and(|c| c.same_content(e));
            prop_assert!(!same, "{} sent although unchanged", e.id());
        }
        for id in &plan.unchanged {
            prop_assert!(plan.send.iter().all(|e| e.id() != *id));
        }
    }

    #[test]
    fn a_tree_matches_itself(local in tree()) {
        let card = local_manifest(&local).unwrap();
        let report = verify(&local, &card).unwrap();
        prop_assert!(!report.is_damaged());
        prop_assert_eq!(report.count(RecordState::Ok), local.len());
        prop_assert!(incremental_plan(&local, &card).unwrap().is_empty());
    }

    #[test]
    fn one_flipped_digest_is_corrupted(local in tree(), pick in any::<prop::sample::Index>(), bit in 0usize..256) {
        prop_assume!(!local.is_empty());
        let card = local_manifest(&local).unwrap();
        let mut damaged = local.clone();
        let i = pick.index(damaged.len());
        damaged[i].digest[bit / 8] ^= 1 << (bit % 8);
        let report = verify(&damaged, &card).unwrap();
        prop_assert!(report.is_damaged());
        let bad: Vec<_> = report.damaged().collect();
        prop_assert_eq!(bad.len(), 1);
        prop_assert_eq!(bad[0].state, RecordState::Corrupted);
        prop_assert_eq!(&bad[0].id, &damaged[i].id());
    }

    #[test]
    fn a_removed_local_record_is_erased(local in tree(), pick in any::<prop::sample::Index>()) {
        prop_assume!(!local.is_empty());
        let card = local_manifest(&local).unwrap();
        let mut rest = local.clone();
        let gone = rest.remove(pick.index(rest.len()));
        let report = verify(&rest, &card).unwrap();
        let bad: Vec<_> = report.damaged().collect();
        prop_assert_eq!(bad.len(), 1);
        prop_assert_eq!(bad[0].state, RecordState::Erased);
        prop_assert_eq!(&bad[0].id, &gone.id());
    }
}

fn transport() -> impl Strategy<Value = Transport> {
    prop_oneof![
        Just(Transport::SHORT),
        Just(Transport::extended(32_767, 32_767)),
        Just(Transport::extended(65_535, 65_536)),
        (102usize..=300, 110usize..=300).prop_map(|(c, r)| Transport {
            extended_length: false,
            max_command_data: c,
            max_response_data: r,
        }),
        (102usize..=70_000, 110usize..=70_000).prop_map(|(c, r)| Transport::extended(c, r)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn write_plans_cover_the_record_once_in_order_within_limits(
        len in 0u32..=300_000,
        t in transport(),
    ) {
        let plan = write_plan(len, &t).unwrap();
        let mut next = 0u64;
        for chunk in &plan {
            prop_assert_eq!(u64::from(chunk.offset), next);
            prop_assert!(chunk.len > 0);
            next += u64::from(chunk.len);
            match chunk.framing {
                WriteFraming::Short => prop_assert!(chunk.data_len() <= 255.min(t.command_limit())),
                WriteFraming::Extended => {
                    prop_assert!(t.extended_length);
                    prop_assert!(chunk.data_len() > 255 && chunk.data_len() <= t.command_limit());
                }
                WriteFraming::Chained { segment_len } => {
                    prop_assert!(segment_len <= 255 && segment_len <= t.command_limit());
                }
            }
        }
        prop_assert_eq!(next, u64::from(len));

        // The APDUs built from the plan carry exactly the record, each within the limits.
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut rebuilt = Vec::with_capacity(data.len());
        let mut apdus = 0usize;
        for chunk in &plan {
            let cmds = commands::write_chunk(chunk, &data).unwrap();
            let logical: Vec<u8> = cmds.iter().flat_map(|c| c.data.iter().copied()).collect();
            prop_assert_eq!(&logical[..OFFSET_LEN], &chunk.offset.to_be_bytes());
            rebuilt.extend_from_slice(&logical[OFFSET_LEN..]);
            for (i, c) in cmds.iter().enumerate() {
                prop_assert!(c.data.len() <= t.command_limit());
                prop_assert!(t.extended_length || c.data.len() <= 255);
                let last = i + 1 == cmds.len();
                prop_assert_eq!(c.cla, if last { 0x80 } else { 0x90 });
            }
            apdus += cmds.len();
        }
        prop_assert_eq!(rebuilt, data);
        prop_assert_eq!(apdus, write_apdu_count(&plan));

        // Fewest APDUs: the documented counts.
        let n = len as usize;
        let limit = t.command_limit();
        let expected = if n == 0 {
            0
        } else if t.extended_length && limit > 255 {
            n.div_ceil(limit - OFFSET_LEN)
        } else {
            (n + OFFSET_LEN).div_ceil(limit)
        };
        prop_assert_eq!(apdus, expected);
    }

    #[test]
    fn read_plans_cover_the_record_once_in_order_within_limits(
        len in 0u32..=300_000,
        t in transport(),
    ) {
        let plan = read_plan(len, &t).unwrap();
        let mut next = 0u64;
        for chunk in &plan {
            prop_assert_eq!(u64::from(chunk.offset), next);
            prop_assert!(chunk.len > 0 && chunk.len as usize <= t.response_limit());
            prop_assert!(t.extended_length || !chunk.extended());
            next += u64::from(chunk.len);
        }
        prop_assert_eq!(next, u64::from(len));
        prop_assert_eq!(plan.len(), (len as usize).div_ceil(t.response_limit()));
    }
}

#[test]
fn plans_for_every_length_sampled_densely_near_boundaries() {
    // Exhaustive over the region where framing decisions change.
    for t in [Transport::SHORT, Transport::extended(32_767, 32_767)] {
        for len in (0..=2_000).chain(32_700..=32_900).chain(65_400..=65_700) {
            let plan = write_plan(len, &t).unwrap();
            let covered: u64 = plan.iter().map(|c| u64::from(c.len)).sum();
            assert_eq!(covered, u64::from(len), "{t:?} {len}");
            let reads = read_plan(len, &t).unwrap();
            assert_eq!(
                reads.iter().map(|c| u64::from(c.len)).sum::<u64>(),
                u64::from(len)
            );
        }
    }
}
