//! Record categories, record names and the manifest: what the card says it holds.
//!
//! This module owns the byte layout of one manifest entry
//! (`category(1) ‖ name_len(1) ‖ name ‖ length(4, big-endian) ‖ sha256(32)`,
//! `applet-spec/backup-store.md` §3) and the naming rules a record name must follow on the card and
//! on the host. The same layout is the data field of BEGIN RECORD, so the card's manifest and the
//! host's plan are compared byte for byte.
//!
//! Parsers return [`BackupError`] naming what is wrong and never panic on any input.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use super::BackupError;

/// Length of a record digest (SHA-256) in bytes.
pub const DIGEST_LEN: usize = 32;

/// A SHA-256 digest of a record's data.
pub type RecordDigest = [u8; DIGEST_LEN];

/// SHA-256 of `data`: the digest the manifest and BEGIN RECORD carry for a record.
#[must_use]
pub fn digest(data: &[u8]) -> RecordDigest {
    Sha256::digest(data).into()
}

/// A record table as bytes: its entries' encodings concatenated in table order, with nothing
/// between them (the bytes [`table_digest`] hashes; a host keeps a card's table this way).
#[must_use]
pub fn encode_table(entries: &[ManifestEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.iter().map(ManifestEntry::encoded_len).sum());
    for entry in entries {
        entry.encode_into(&mut out);
    }
    out
}

/// Parses a concatenation of encoded entries, keeping their order (possibly empty); the inverse
/// of [`encode_table`]. Duplicates are not checked here ([`Manifest::from_entries`] does).
///
/// # Errors
/// The first entry's error.
pub fn parse_table(mut bytes: &[u8]) -> Result<Vec<ManifestEntry>, BackupError> {
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        let (entry, rest) = ManifestEntry::parse(bytes)?;
        entries.push(entry);
        bytes = rest;
    }
    Ok(entries)
}

/// SHA-256 over the encoded entries of a record table, in table order, with nothing between
/// them (spec §5.16 GET MANIFEST DIGEST): what the card reports for its active table, so a host
/// that kept a manifest can tell whether it still is the card's without reading it.
#[must_use]
pub fn table_digest(entries: &[ManifestEntry]) -> RecordDigest {
    let mut sha = Sha256::new();
    let mut buf = Vec::with_capacity(ManifestEntry::MAX_ENCODED_LEN);
    for entry in entries {
        buf.clear();
        entry.encode_into(&mut buf);
        sha.update(&buf);
    }
    sha.finalize().into()
}

/// The category of a record (spec §3.1). The code is the byte on the card; the folder name is the
/// subfolder of a host backup directory that holds the category's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// `0x01`, `service-books`: routing and service records that let the device reach its
    /// network and data services.
    ServiceBooks,
    /// `0x02`, `keys`: encryption keys and certificates.
    Keys,
    /// `0x03`, `user-data`: the user's own data (contacts, messages, files).
    UserData,
    /// `0x04`, `preferences`: settings and preferences.
    Preferences,
    /// `0x05`, `other`: anything else.
    Other,
}

impl Category {
    /// Every category, in code order (which is also the manifest's sort order).
    pub const ALL: [Category; 5] = [
        Category::ServiceBooks,
        Category::Keys,
        Category::UserData,
        Category::Preferences,
        Category::Other,
    ];

    /// The one-byte code used on the card.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Category::ServiceBooks => 0x01,
            Category::Keys => 0x02,
            Category::UserData => 0x03,
            Category::Preferences => 0x04,
            Category::Other => 0x05,
        }
    }

    /// The category with card code `code`.
    ///
    /// # Errors
    /// [`BackupError::UnknownCategory`] for any code other than `0x01..=0x05`.
    pub const fn from_code(code: u8) -> Result<Self, BackupError> {
        match code {
            0x01 => Ok(Category::ServiceBooks),
            0x02 => Ok(Category::Keys),
            0x03 => Ok(Category::UserData),
            0x04 => Ok(Category::Preferences),
            0x05 => Ok(Category::Other),
            other => Err(BackupError::UnknownCategory(other)),
        }
    }

    /// The name of the category's subfolder in a host backup directory.
    #[must_use]
    pub const fn folder_name(self) -> &'static str {
        match self {
            Category::ServiceBooks => "service-books",
            Category::Keys => "keys",
            Category::UserData => "user-data",
            Category::Preferences => "preferences",
            Category::Other => "other",
        }
    }
}

impl TryFrom<u8> for Category {
    type Error = BackupError;

    fn try_from(code: u8) -> Result<Self, Self::Error> {
        Category::from_code(code)
    }
}

impl From<Category> for u8 {
    fn from(category: Category) -> u8 {
        category.code()
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.folder_name())
    }
}

impl FromStr for Category {
    type Err = BackupError;

    /// Parses a folder name (`service-books`, `keys`, `user-data`, `preferences`, `other`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.folder_name() == s)
            .ok_or_else(|| BackupError::UnknownCategoryName(s.to_owned()))
    }
}

/// A validated record name (spec §3.2).
///
/// Rules, checked identically by the card:
/// - well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF),
///   1 to 64 bytes long;
/// - none of the bytes `0x00..=0x1F` (NUL and C0 controls), `0x2F` (`/`), `0x5C` (`\`) or `0x7F`
///   (DEL): a name is one file name in the category's folder on any host file system;
/// - not `.` or `..`.
///
/// Names compare bytewise (which is how the manifest is ordered), so `"B" < "a"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordName(String);

impl RecordName {
    /// Largest name length in bytes.
    pub const MAX_LEN: usize = 64;

    /// Validates `name`.
    ///
    /// # Errors
    /// [`BackupError::NameEmpty`], [`BackupError::NameTooLong`],
    /// [`BackupError::NameForbiddenChar`] or [`BackupError::NameReserved`].
    pub fn new(name: &str) -> Result<Self, BackupError> {
        if name.is_empty() {
            return Err(BackupError::NameEmpty);
        }
        if name.len() > Self::MAX_LEN {
            return Err(BackupError::NameTooLong(name.len()));
        }
        if let Some(ch) = name.chars().find(|&c| Self::forbidden(c)) {
            return Err(BackupError::NameForbiddenChar(ch));
        }
        if name == "." || name == ".." {
            return Err(BackupError::NameReserved);
        }
        Ok(Self(name.to_owned()))
    }

    /// Validates a name received as bytes (from the card or a file system).
    ///
    /// # Errors
    /// As [`RecordName::new`], plus [`BackupError::NameNotUtf8`]. The length is checked before
    /// the encoding, so an over-long name is reported as such whatever its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BackupError> {
        if bytes.len() > Self::MAX_LEN {
            return Err(BackupError::NameTooLong(bytes.len()));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| BackupError::NameNotUtf8)?;
        Self::new(s)
    }

    const fn forbidden(c: char) -> bool {
        matches!(c, '\u{0}'..='\u{1F}' | '/' | '\\' | '\u{7F}')
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name's UTF-8 bytes, as they travel to the card.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Length in bytes (1..=64).
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a valid name is never empty. Present because `len` is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for RecordName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RecordName {
    type Err = BackupError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RecordName::new(s)
    }
}

impl AsRef<str> for RecordName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What identifies a record: its category and name, unique within one generation.
/// Ordered by category code, then name bytes: the manifest's order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId {
    /// The record's category.
    pub category: Category,
    /// The record's name.
    pub name: RecordName,
}

impl RecordId {
    /// A record id.
    #[must_use]
    pub fn new(category: Category, name: RecordName) -> Self {
        Self { category, name }
    }

    /// Encodes `category(1) ‖ name_len(1) ‖ name`, the data field of DELETE RECORD and the head
    /// of READ DATA's.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.category.code());
        // A RecordName is at most 64 bytes, so its length always fits one byte.
        out.push(u8::try_from(self.name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.name.as_bytes());
    }

    /// Parses `category(1) ‖ name_len(1) ‖ name` at the start of `bytes`; returns the id and the
    /// bytes after it.
    ///
    /// # Errors
    /// [`BackupError::Truncated`], [`BackupError::UnknownCategory`] or a name error.
    pub fn parse(bytes: &[u8]) -> Result<(Self, &[u8]), BackupError> {
        let ([code, name_len], rest) = take_array(bytes, "record id header")?;
        let category = Category::from_code(code)?;
        let (name, rest) = take(rest, usize::from(name_len), "record name")?;
        let name = RecordName::from_bytes(name)?;
        Ok((Self { category, name }, rest))
    }
}

impl fmt::Display for RecordId {
    /// `folder/name`, as the record's path relative to a backup directory.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.category, self.name)
    }
}

/// Splits `n` bytes off the front of `bytes`, or reports what was truncated.
pub(crate) fn take<'a>(
    bytes: &'a [u8],
    n: usize,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), BackupError> {
    if bytes.len() < n {
        return Err(BackupError::Truncated {
            what,
            needed: n,
            available: bytes.len(),
        });
    }
    Ok(bytes.split_at(n))
}

/// Splits a fixed-size array off the front of `bytes`, or reports what was truncated.
pub(crate) fn take_array<'a, const N: usize>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<([u8; N], &'a [u8]), BackupError> {
    match bytes.split_first_chunk::<N>() {
        Some((head, rest)) => Ok((*head, rest)),
        None => Err(BackupError::Truncated {
            what,
            needed: N,
            available: bytes.len(),
        }),
    }
}

/// One manifest entry: a record's id, length and SHA-256 digest (spec §3.3).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ManifestEntry {
    /// The record's category.
    pub category: Category,
    /// The record's name.
    pub name: RecordName,
    /// Data length in bytes.
    pub length: u32,
    /// SHA-256 of the data.
    pub digest: RecordDigest,
}

impl fmt::Debug for ManifestEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestEntry")
            .field("category", &self.category)
            .field("name", &self.name.as_str())
            .field("length", &self.length)
            .field("digest", &hex::encode(self.digest))
            .finish()
    }
}

impl ManifestEntry {
    /// Fixed part of an encoded entry: category, name length, length and digest.
    pub const FIXED_LEN: usize = 1 + 1 + 4 + DIGEST_LEN;
    /// Largest encoded entry (a 64-byte name).
    pub const MAX_ENCODED_LEN: usize = Self::FIXED_LEN + RecordName::MAX_LEN;

    /// The entry describing `data` stored as `category`/`name`.
    ///
    /// # Errors
    /// [`BackupError::RecordTooLarge`] when `data` is longer than `u32::MAX` bytes.
    pub fn for_data(
        category: Category,
        name: RecordName,
        data: &[u8],
    ) -> Result<Self, BackupError> {
        let length = u32::try_from(data.len()).map_err(|_| BackupError::RecordTooLarge {
            id: RecordId::new(category, name.clone()),
            length: u64::try_from(data.len()).unwrap_or(u64::MAX),
        })?;
        Ok(Self {
            category,
            name,
            length,
            digest: digest(data),
        })
    }

    /// The record's id.
    #[must_use]
    pub fn id(&self) -> RecordId {
        RecordId::new(self.category, self.name.clone())
    }

    /// Length of the encoding in bytes (38 + name length).
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        Self::FIXED_LEN + self.name.len()
    }

    /// Appends `category ‖ name_len ‖ name ‖ length ‖ sha256` to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.category.code());
        out.push(u8::try_from(self.name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
        out.extend_from_slice(&self.digest);
    }

    /// The encoding `category ‖ name_len ‖ name ‖ length ‖ sha256`.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Parses one entry at the start of `bytes`; returns it and the bytes after it.
    ///
    /// # Errors
    /// [`BackupError::Truncated`], [`BackupError::UnknownCategory`] or a name error.
    pub fn parse(bytes: &[u8]) -> Result<(Self, &[u8]), BackupError> {
        let (id, rest) = RecordId::parse(bytes)?;
        let (length, rest) = take_array(rest, "record length")?;
        let (digest, rest) = take_array(rest, "record digest")?;
        let entry = Self {
            category: id.category,
            name: id.name,
            length: u32::from_be_bytes(length),
            digest,
        };
        Ok((entry, rest))
    }

    /// Parses exactly one entry filling all of `bytes`.
    ///
    /// # Errors
    /// As [`ManifestEntry::parse`], plus [`BackupError::TrailingBytes`].
    pub fn parse_exact(bytes: &[u8]) -> Result<Self, BackupError> {
        let (entry, rest) = Self::parse(bytes)?;
        if !rest.is_empty() {
            return Err(BackupError::TrailingBytes {
                what: "manifest entry",
                count: rest.len(),
            });
        }
        Ok(entry)
    }

    /// True when `other` describes the same data: same length and digest.
    #[must_use]
    pub fn same_content(&self, other: &ManifestEntry) -> bool {
        self.length == other.length && self.digest == other.digest
    }
}

/// The records of one generation, ordered by (category code, name bytes), each id at most once.
///
/// The card returns entries in its own table order (spec §3.4); building a `Manifest` sorts them,
/// so two manifests with the same records are equal whatever order the card used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Sorted by `(category, name)`, no duplicate ids.
    entries: Vec<ManifestEntry>,
}

impl Manifest {
    /// An empty manifest.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A manifest of `entries`, in any order.
    ///
    /// # Errors
    /// [`BackupError::DuplicateRecord`] when an id appears twice.
    pub fn from_entries(
        entries: impl IntoIterator<Item = ManifestEntry>,
    ) -> Result<Self, BackupError> {
        let mut entries: Vec<ManifestEntry> = entries.into_iter().collect();
        entries.sort_by(|a, b| key(a).cmp(&key(b)));
        let duplicate = entries.windows(2).find_map(|w| match w {
            [a, b] if key(a) == key(b) => Some(b.id()),
            _ => None,
        });
        if let Some(id) = duplicate {
            return Err(BackupError::DuplicateRecord(id));
        }
        Ok(Self { entries })
    }

    /// Parses a concatenation of encoded entries (any order, possibly empty).
    ///
    /// # Errors
    /// The first entry error, or [`BackupError::DuplicateRecord`].
    pub fn parse(bytes: &[u8]) -> Result<Self, BackupError> {
        Self::from_entries(parse_table(bytes)?)
    }

    /// The concatenation of all entries' encodings, in manifest order.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        encode_table(&self.entries)
    }

    fn position(&self, category: Category, name: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|e| key(e).cmp(&(category, name.as_bytes())))
    }

    /// The entry of record `category`/`name`, if present.
    #[must_use]
    pub fn get(&self, category: Category, name: &str) -> Option<&ManifestEntry> {
        self.position(category, name)
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// The entry with id `id`, if present.
    #[must_use]
    pub fn get_id(&self, id: &RecordId) -> Option<&ManifestEntry> {
        self.get(id.category, id.name.as_str())
    }

    /// Adds `entry`, replacing and returning an entry with the same id.
    pub fn insert(&mut self, entry: ManifestEntry) -> Option<ManifestEntry> {
        match self.position(entry.category, entry.name.as_str()) {
            Ok(i) => self
                .entries
                .get_mut(i)
                .map(|slot| std::mem::replace(slot, entry)),
            Err(i) => {
                self.entries.insert(i, entry);
                None
            }
        }
    }

    /// Removes and returns the entry of `category`/`name`, if present.
    pub fn remove(&mut self, category: Category, name: &str) -> Option<ManifestEntry> {
        self.position(category, name)
            .ok()
            .map(|i| self.entries.remove(i))
    }

    /// The entries in manifest order.
    pub fn iter(&self) -> std::slice::Iter<'_, ManifestEntry> {
        self.entries.iter()
    }

    /// The entries in manifest order.
    #[must_use]
    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    /// Number of records.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no records.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of all record lengths: the bytes the generation uses on the card.
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.entries.iter().map(|e| u64::from(e.length)).sum()
    }
}

impl<'a> IntoIterator for &'a Manifest {
    type Item = &'a ManifestEntry;
    type IntoIter = std::slice::Iter<'a, ManifestEntry>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

/// Sort key of an entry: category code, then name bytes.
fn key(e: &ManifestEntry) -> (Category, &[u8]) {
    (e.category, e.name.as_bytes())
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;

    use super::*;

    fn name(s: &str) -> RecordName {
        RecordName::new(s).unwrap()
    }

    #[test]
    fn category_codes_and_folders_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::from_code(c.code()).unwrap(), c);
            assert_eq!(c.folder_name().parse::<Category>().unwrap(), c);
            assert_eq!(c.to_string(), c.folder_name());
        }
        assert_eq!(Category::from_code(0), Err(BackupError::UnknownCategory(0)));
        assert_eq!(Category::from_code(6), Err(BackupError::UnknownCategory(6)));
        assert!("Keys".parse::<Category>().is_err());
        assert_eq!(u8::from(Category::Other), 5);
    }

    #[test]
    fn sha256_of_abc_is_the_fips_180_vector() {
        // FIPS 180-2 Appendix B.1.
        assert_eq!(
            digest(b"abc"),
            hex!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }

    #[test]
    fn name_rules() {
        assert_eq!(RecordName::new(""), Err(BackupError::NameEmpty));
        assert!(RecordName::new(&"a".repeat(64)).is_ok());
        assert_eq!(
            RecordName::new(&"a".repeat(65)),
            Err(BackupError::NameTooLong(65))
        );
        // 16 four-byte characters = 64 bytes: fine; one more byte is not.
        assert!(RecordName::new(&"😀".repeat(16)).is_ok());
        assert_eq!(
            RecordName::new(&"😀".repeat(17)),
            Err(BackupError::NameTooLong(68))
        );
        for bad in ["a/b", "a\\b", "a\0b", "tab\there", "del\u{7f}"] {
            assert!(
                matches!(RecordName::new(bad), Err(BackupError::NameForbiddenChar(_))),
                "{bad:?}"
            );
        }
        assert_eq!(RecordName::new("."), Err(BackupError::NameReserved));
        assert_eq!(RecordName::new(".."), Err(BackupError::NameReserved));
        assert!(RecordName::new("...").is_ok());
        assert!(RecordName::new(".hidden").is_ok());
        assert!(RecordName::new("résumé.txt").is_ok());
        assert_eq!(
            RecordName::from_bytes(&hex!("C0AF")),
            Err(BackupError::NameNotUtf8)
        ); // overlong '/'
        assert_eq!(
            RecordName::from_bytes(&hex!("EDA080")),
            Err(BackupError::NameNotUtf8)
        ); // surrogate
        assert_eq!(
            RecordName::from_bytes(&[0xFF; 65]),
            Err(BackupError::NameTooLong(65))
        );
    }

    #[test]
    fn entry_encoding_is_pinned() {
        let e = ManifestEntry::for_data(Category::Keys, name("k"), b"abc").unwrap();
        assert_eq!(
            e.encode(),
            hex!(
                "02 01 6B 00000003"
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            )
        );
        assert_eq!(e.encoded_len(), 39);
        assert_eq!(ManifestEntry::parse_exact(&e.encode()).unwrap(), e);
    }

    #[test]
    fn entry_parse_errors_name_the_problem() {
        let good = ManifestEntry::for_data(Category::Keys, name("k"), b"abc")
            .unwrap()
            .encode();
        assert_eq!(
            ManifestEntry::parse(&[]),
            Err(BackupError::Truncated {
                what: "record id header",
                needed: 2,
                available: 0
            })
        );
        assert_eq!(
            ManifestEntry::parse(&hex!("02 05 61")),
            Err(BackupError::Truncated {
                what: "record name",
                needed: 5,
                available: 1
            })
        );
        assert_eq!(
            ManifestEntry::parse(&good[..good.len() - 1]),
            Err(BackupError::Truncated {
                what: "record digest",
                needed: 32,
                available: 31
            })
        );
        let mut bad_cat = good.clone();
        bad_cat[0] = 0x09;
        assert_eq!(
            ManifestEntry::parse(&bad_cat),
            Err(BackupError::UnknownCategory(9))
        );
        let mut zero_name = good.clone();
        zero_name[1] = 0;
        assert_eq!(
            ManifestEntry::parse(&zero_name),
            Err(BackupError::NameEmpty)
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(
            ManifestEntry::parse_exact(&trailing),
            Err(BackupError::TrailingBytes {
                what: "manifest entry",
                count: 1
            })
        );
    }

    /// A table keeps the card's order (no sorting) and its digest is that of its bytes; a
    /// damaged table is an error, not a shorter table.
    #[test]
    fn table_bytes_keep_order_and_hash_to_the_table_digest() {
        let a = ManifestEntry::for_data(Category::UserData, name("b"), b"1").unwrap();
        let b = ManifestEntry::for_data(Category::Keys, name("z"), b"2").unwrap();
        let table = [a.clone(), b.clone(), a.clone()];
        let bytes = encode_table(&table);
        assert_eq!(bytes.len(), 2 * a.encoded_len() + b.encoded_len());
        assert_eq!(parse_table(&bytes).unwrap(), table);
        assert_eq!(digest(&bytes), table_digest(&table));
        assert_eq!(parse_table(&[]).unwrap(), []);
        assert!(parse_table(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn manifest_sorts_rejects_duplicates_and_looks_up() {
        let a = ManifestEntry::for_data(Category::UserData, name("b"), b"1").unwrap();
        let b = ManifestEntry::for_data(Category::Keys, name("z"), b"2").unwrap();
        let c = ManifestEntry::for_data(Category::UserData, name("B"), b"3").unwrap();
        let m = Manifest::from_entries([a.clone(), b.clone(), c.clone()]).unwrap();
        assert_eq!(m.entries(), &[b.clone(), c.clone(), a.clone()]);
        assert_eq!(m.get(Category::UserData, "b"), Some(&a));
        assert_eq!(m.get(Category::Keys, "b"), None);
        assert_eq!(m.total_bytes(), 3);
        assert_eq!(Manifest::parse(&m.encode()).unwrap(), m);
        let mut bytes = a.encode();
        bytes.extend(a.encode());
        assert_eq!(
            Manifest::parse(&bytes),
            Err(BackupError::DuplicateRecord(a.id()))
        );
        assert_eq!(Manifest::parse(&[]).unwrap(), Manifest::new());

        let mut m2 = m.clone();
        let a2 = ManifestEntry::for_data(Category::UserData, name("b"), b"changed").unwrap();
        assert_eq!(m2.insert(a2.clone()), Some(a));
        assert_eq!(m2.remove(Category::Keys, "z"), Some(b));
        assert_eq!(m2.entries(), &[c, a2]);
    }
}
