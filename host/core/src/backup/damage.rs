//! The damage policy: which records `backup verify` reports as damaged, and so re-provisions.
//!
//! [`super::diff::verify`] can only say whether a record's bytes match the card's last backup
//! ([`RecordState`]); whether a mismatch is *damage* depends on the record's category (spec
//! §6.4): service books and keys do not change in normal use, so a mismatch there is corruption;
//! user data, preferences and other records do, so a mismatch there is reported as a change and
//! is damage only under `strict` (re-provisioning it would undo the user's edit). This module is
//! the one place that decides it; it must not read files or talk to cards.

use super::diff::{RecordState, RecordVerdict};
use super::manifest::Category;

/// How `verify` reports a record: the core's states, with a mismatch split by category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Same bytes as backed up.
    Ok,
    /// Backed up, missing locally.
    Erased,
    /// A service book or key that differs from the backup.
    Corrupted,
    /// User data, a preference or another record that differs from the backup.
    Changed,
    /// Local only: created since the last backup.
    Added,
}

impl Verdict {
    /// Every verdict, in the order `verify` prints its counts.
    pub const ALL: [Verdict; 5] = [
        Verdict::Ok,
        Verdict::Erased,
        Verdict::Corrupted,
        Verdict::Changed,
        Verdict::Added,
    ];

    /// The verdict for a record of `category` in `state`.
    #[must_use]
    pub const fn of(state: RecordState, category: Category) -> Verdict {
        match state {
            RecordState::Ok => Verdict::Ok,
            RecordState::Erased => Verdict::Erased,
            RecordState::Added => Verdict::Added,
            RecordState::Corrupted => match category {
                Category::ServiceBooks | Category::Keys => Verdict::Corrupted,
                _ => Verdict::Changed,
            },
        }
    }

    /// The verdict for one record of a [`super::diff::VerifyReport`].
    #[must_use]
    pub const fn of_record(r: &RecordVerdict) -> Verdict {
        Verdict::of(r.state, r.id.category)
    }

    /// The name printed and put in JSON.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Erased => "erased",
            Verdict::Corrupted => "corrupted",
            Verdict::Changed => "changed",
            Verdict::Added => "added",
        }
    }

    /// Whether the record is damage: erased and corrupted always, changed only when `strict`.
    #[must_use]
    pub const fn is_damage(self, strict: bool) -> bool {
        match self {
            Verdict::Erased | Verdict::Corrupted => true,
            Verdict::Changed => strict,
            Verdict::Ok | Verdict::Added => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_and_category() {
        for c in Category::ALL {
            assert_eq!(Verdict::of(RecordState::Ok, c), Verdict::Ok);
            assert_eq!(Verdict::of(RecordState::Erased, c), Verdict::Erased);
            assert_eq!(Verdict::of(RecordState::Added, c), Verdict::Added);
            let mismatch = Verdict::of(RecordState::Corrupted, c);
            let expected = match c {
                Category::ServiceBooks | Category::Keys => Verdict::Corrupted,
                Category::UserData | Category::Preferences | Category::Other => Verdict::Changed,
            };
            assert_eq!(mismatch, expected, "{c:?}");
        }
    }

    #[test]
    fn damage_by_verdict_and_strictness() {
        let table = [
            (Verdict::Ok, false, false),
            (Verdict::Erased, true, true),
            (Verdict::Corrupted, true, true),
            (Verdict::Changed, false, true),
            (Verdict::Added, false, false),
        ];
        for (v, lenient, strict) in table {
            assert_eq!(v.is_damage(false), lenient, "{v:?}");
            assert_eq!(v.is_damage(true), strict, "{v:?} strict");
        }
        let names: Vec<&str> = Verdict::ALL.iter().map(|v| v.name()).collect();
        assert_eq!(names, ["ok", "erased", "corrupted", "changed", "added"]);
    }
}
