//! Comparing the host's local records with the card's manifest.
//!
//! Two questions, both answered from digests the caller computed (this crate reads no files):
//! - [`incremental_plan`]: what must an incremental session send and delete so that, after
//!   COMMIT, the card's manifest equals the local tree? (spec §6.2)
//! - [`verify`]: which local records were erased or corrupted since the last backup? This is the
//!   seed's trigger for reprovisioning a device from the card (spec §6.4).

use std::cmp::Ordering;

use super::BackupError;
use super::damage::Verdict;
use super::manifest::{Category, Manifest, ManifestEntry, RecordDigest, RecordId, RecordName};

/// One record of the local tree, as the host found it: category folder, file name, length and
/// SHA-256 of the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRecord {
    /// The category (the record's folder).
    pub category: Category,
    /// The record's name (its file name).
    pub name: RecordName,
    /// Length of the local data in bytes (`u64` because a local file may be larger than the
    /// card can ever store; such a record is reported, not truncated).
    pub data_len: u64,
    /// SHA-256 of the local data.
    pub digest: RecordDigest,
}

impl LocalRecord {
    /// The record's id.
    #[must_use]
    pub fn id(&self) -> RecordId {
        RecordId::new(self.category, self.name.clone())
    }

    /// The manifest entry this record would have on the card.
    ///
    /// # Errors
    /// [`BackupError::RecordTooLarge`] when `data_len` exceeds `u32::MAX`.
    pub fn to_entry(&self) -> Result<ManifestEntry, BackupError> {
        let length = u32::try_from(self.data_len).map_err(|_| BackupError::RecordTooLarge {
            id: self.id(),
            length: self.data_len,
        })?;
        Ok(ManifestEntry {
            category: self.category,
            name: self.name.clone(),
            length,
            digest: self.digest,
        })
    }
}

/// The manifest a full backup of `local` produces on the card.
///
/// # Errors
/// [`BackupError::RecordTooLarge`] or [`BackupError::DuplicateRecord`].
pub fn local_manifest(local: &[LocalRecord]) -> Result<Manifest, BackupError> {
    let entries = local
        .iter()
        .map(LocalRecord::to_entry)
        .collect::<Result<Vec<_>, _>>()?;
    Manifest::from_entries(entries)
}

/// What an incremental session must do (spec §6.2), each list in manifest order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncrementalPlan {
    /// Records to send with BEGIN RECORD / WRITE DATA / END RECORD: new locally, or with a
    /// different length or digest than on the card.
    pub send: Vec<ManifestEntry>,
    /// Records to remove with DELETE RECORD: on the card but no longer local.
    pub delete: Vec<RecordId>,
    /// Records identical on both sides: nothing is sent for them.
    pub unchanged: Vec<RecordId>,
}

impl IncrementalPlan {
    /// True when the card already matches the local tree (nothing to send or delete); the
    /// automatic mode then skips the session altogether.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.send.is_empty() && self.delete.is_empty()
    }

    /// Total record bytes the plan sends.
    #[must_use]
    pub fn bytes_to_send(&self) -> u64 {
        self.send.iter().map(|e| u64::from(e.length)).sum()
    }

    /// The manifest the card holds after this plan is applied to `card` and committed: the host's
    /// model of the card, used to check the result.
    #[must_use]
    pub fn apply(&self, card: &Manifest) -> Manifest {
        let mut out = card.clone();
        for id in &self.delete {
            out.remove(id.category, id.name.as_str());
        }
        for entry in &self.send {
            out.insert(entry.clone());
        }
        out
    }
}

/// Something with a record id, sortable in manifest order.
trait Keyed {
    fn key(&self) -> (Category, &[u8]);
}

impl Keyed for ManifestEntry {
    fn key(&self) -> (Category, &[u8]) {
        (self.category, self.name.as_bytes())
    }
}

impl Keyed for LocalRecord {
    fn key(&self) -> (Category, &[u8]) {
        (self.category, self.name.as_bytes())
    }
}

/// One step of a merge walk over two sorted sequences.
enum Pair<'a, L, C> {
    LocalOnly(&'a L),
    CardOnly(&'a C),
    Both(&'a L, &'a C),
}

/// Walks two sequences sorted by id, pairing entries with the same id.
fn merge<'a, L: Keyed, C: Keyed>(
    local: impl IntoIterator<Item = &'a L>,
    card: impl IntoIterator<Item = &'a C>,
) -> Vec<Pair<'a, L, C>> {
    let mut out = Vec::new();
    let mut l = local.into_iter().peekable();
    let mut c = card.into_iter().peekable();
    loop {
        let order = match (l.peek(), c.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(a), Some(b)) => a.key().cmp(&b.key()),
        };
        let pair = match order {
            Ordering::Less => l.next().map(Pair::LocalOnly),
            Ordering::Greater => c.next().map(Pair::CardOnly),
            Ordering::Equal => l.next().zip(c.next()).map(|(a, b)| Pair::Both(a, b)),
        };
        out.extend(pair);
    }
    out
}

/// The incremental plan that turns the card's manifest into the local tree's.
///
/// # Errors
/// [`BackupError::RecordTooLarge`] or [`BackupError::DuplicateRecord`] for a bad local tree.
pub fn incremental_plan(
    local: &[LocalRecord],
    card: &Manifest,
) -> Result<IncrementalPlan, BackupError> {
    let local = local_manifest(local)?;
    let mut plan = IncrementalPlan::default();
    for pair in merge(&local, card) {
        match pair {
            Pair::LocalOnly(l) => plan.send.push(l.clone()),
            Pair::CardOnly(c) => plan.delete.push(c.id()),
            Pair::Both(l, c) if l.same_content(c) => plan.unchanged.push(l.id()),
            Pair::Both(l, _) => plan.send.push(l.clone()),
        }
    }
    Ok(plan)
}

/// How one record compares between the local tree and the card's last backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordState {
    /// Same length and digest on both sides.
    Ok,
    /// On the card, missing locally: erased on the device.
    Erased,
    /// Same id on both sides, different length or digest: corrupted on the device, or changed
    /// since the last backup (the card cannot tell which; [`Verdict`] decides by category).
    Corrupted,
    /// Local only: created since the last backup. Not damage.
    Added,
}

/// One record's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordVerdict {
    /// The record.
    pub id: RecordId,
    /// How it compares.
    pub state: RecordState,
}

/// The result of [`verify`]: every record of either side, in manifest order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// One verdict per record id found on either side.
    pub records: Vec<RecordVerdict>,
}

impl VerifyReport {
    /// True when any record is damage under the strict [`Verdict`] policy: erased, or differing
    /// from the backup in any category. `backup verify --strict` uses the same rule; without
    /// `--strict` it asks [`Verdict::is_damage`] per category instead.
    #[must_use]
    pub fn is_damaged(&self) -> bool {
        self.damaged().next().is_some()
    }

    /// The records that are damage under the strict [`Verdict`] policy (erased or corrupted).
    pub fn damaged(&self) -> impl Iterator<Item = &RecordVerdict> {
        self.damaged_under(true)
    }

    /// The records that are damage under [`Verdict::is_damage`] with `strict`.
    pub fn damaged_under(&self, strict: bool) -> impl Iterator<Item = &RecordVerdict> {
        self.records
            .iter()
            .filter(move |r| Verdict::of_record(r).is_damage(strict))
    }

    /// Number of records in `state`.
    #[must_use]
    pub fn count(&self, state: RecordState) -> usize {
        self.records.iter().filter(|r| r.state == state).count()
    }
}

/// Classifies every record of the local tree and of the card's manifest.
///
/// # Errors
/// [`BackupError::DuplicateRecord`] for a local tree naming a record twice. A local record too
/// large for the card is not an error here: it cannot match the card, so it is `Corrupted` or
/// `Added`.
pub fn verify(local: &[LocalRecord], card: &Manifest) -> Result<VerifyReport, BackupError> {
    let mut sorted: Vec<&LocalRecord> = local.iter().collect();
    sorted.sort_by(|a, b| a.key().cmp(&b.key()));
    let duplicate = sorted.windows(2).find_map(|w| match w {
        [a, b] if a.key() == b.key() => Some(b.id()),
        _ => None,
    });
    if let Some(id) = duplicate {
        return Err(BackupError::DuplicateRecord(id));
    }
    let mut report = VerifyReport::default();
    for pair in merge(sorted.iter().copied(), card) {
        let (id, state) = match pair {
            Pair::LocalOnly(l) => (l.id(), RecordState::Added),
            Pair::CardOnly(c) => (c.id(), RecordState::Erased),
            Pair::Both(l, c) if l.data_len == u64::from(c.length) && l.digest == c.digest => {
                (l.id(), RecordState::Ok)
            }
            Pair::Both(l, _) => (l.id(), RecordState::Corrupted),
        };
        report.records.push(RecordVerdict { id, state });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::manifest::digest;

    fn local(category: Category, name: &str, data: &[u8]) -> LocalRecord {
        LocalRecord {
            category,
            name: RecordName::new(name).unwrap(),
            data_len: data.len() as u64,
            digest: digest(data),
        }
    }

    fn id(category: Category, name: &str) -> RecordId {
        RecordId::new(category, RecordName::new(name).unwrap())
    }

    #[test]
    fn plan_sends_new_and_changed_deletes_removed_skips_unchanged() {
        let card = local_manifest(&[
            local(Category::Keys, "same", b"k"),
            local(Category::UserData, "changed", b"old"),
            local(Category::Other, "gone", b"x"),
        ])
        .unwrap();
        let tree = [
            local(Category::Keys, "same", b"k"),
            local(Category::UserData, "changed", b"new"),
            local(Category::Preferences, "added", b"p"),
        ];
        let plan = incremental_plan(&tree, &card).unwrap();
        let sent: Vec<RecordId> = plan.send.iter().map(ManifestEntry::id).collect();
        assert_eq!(
            sent,
            [
                id(Category::UserData, "changed"),
                id(Category::Preferences, "added")
            ]
        );
        assert_eq!(plan.delete, [id(Category::Other, "gone")]);
        assert_eq!(plan.unchanged, [id(Category::Keys, "same")]);
        assert_eq!(plan.bytes_to_send(), 4);
        assert_eq!(plan.apply(&card), local_manifest(&tree).unwrap());
        assert!(
            incremental_plan(&tree, &plan.apply(&card))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn same_digest_different_length_is_a_change() {
        let card = local_manifest(&[local(Category::Keys, "k", b"abc")]).unwrap();
        let mut tree = [local(Category::Keys, "k", b"abc")];
        tree[0].data_len = 4;
        assert_eq!(incremental_plan(&tree, &card).unwrap().send.len(), 1);
        assert_eq!(
            verify(&tree, &card).unwrap().records[0].state,
            RecordState::Corrupted
        );
    }

    #[test]
    fn verify_classifies_every_record() {
        let card = local_manifest(&[
            local(Category::ServiceBooks, "ok", b"1"),
            local(Category::ServiceBooks, "erased", b"2"),
            local(Category::Keys, "corrupt", b"3"),
        ])
        .unwrap();
        let tree = [
            local(Category::ServiceBooks, "ok", b"1"),
            local(Category::Keys, "corrupt", b"3!"),
            local(Category::Other, "new", b"4"),
        ];
        let report = verify(&tree, &card).unwrap();
        let states: Vec<(String, RecordState)> = report
            .records
            .iter()
            .map(|r| (r.id.to_string(), r.state))
            .collect();
        assert_eq!(
            states,
            [
                ("service-books/erased".to_owned(), RecordState::Erased),
                ("service-books/ok".to_owned(), RecordState::Ok),
                ("keys/corrupt".to_owned(), RecordState::Corrupted),
                ("other/new".to_owned(), RecordState::Added),
            ]
        );
        assert!(report.is_damaged());
        assert_eq!(report.damaged().count(), 2);
        assert_eq!(report.count(RecordState::Added), 1);
        let only_added = verify(&[local(Category::Other, "new", b"4")], &Manifest::new()).unwrap();
        assert!(!only_added.is_damaged());
    }

    #[test]
    fn changed_user_data_is_damage_only_when_strict() {
        let card = local_manifest(&[local(Category::UserData, "notes", b"1")]).unwrap();
        let report = verify(&[local(Category::UserData, "notes", b"2")], &card).unwrap();
        assert_eq!(report.records[0].state, RecordState::Corrupted);
        assert!(report.is_damaged());
        assert_eq!(report.damaged_under(true).count(), 1);
        assert_eq!(report.damaged_under(false).count(), 0);
        let keys = local_manifest(&[local(Category::Keys, "k", b"1")]).unwrap();
        let report = verify(&[local(Category::Keys, "k", b"2")], &keys).unwrap();
        assert_eq!(report.damaged_under(false).count(), 1);
    }

    #[test]
    fn bad_local_trees_are_reported() {
        let dup = [
            local(Category::Keys, "k", b"1"),
            local(Category::Keys, "k", b"2"),
        ];
        assert_eq!(
            incremental_plan(&dup, &Manifest::new()),
            Err(BackupError::DuplicateRecord(id(Category::Keys, "k")))
        );
        assert_eq!(
            verify(&dup, &Manifest::new()),
            Err(BackupError::DuplicateRecord(id(Category::Keys, "k")))
        );
        let mut huge = local(Category::UserData, "big", b"");
        huge.data_len = u64::from(u32::MAX) + 1;
        assert!(matches!(
            incremental_plan(std::slice::from_ref(&huge), &Manifest::new()),
            Err(BackupError::RecordTooLarge { .. })
        ));
        // verify does not refuse it: it simply cannot match the card.
        assert_eq!(
            verify(&[huge], &Manifest::new()).unwrap().records[0].state,
            RecordState::Added
        );
    }
}
