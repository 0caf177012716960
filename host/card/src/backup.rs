//! The backup-store client: one method per command of `applet-spec/backup-store.md` §5, typed
//! results, and the host procedures of §6 (open, push, read back) built from them.
//!
//! Commands, response parsers, manifests, plans and the incremental diff live in
//! `simkit_core::backup`; this module adds only what needs a card: sending through a
//! [`Channel`], checking response lengths, paging the manifest, cutting record data by the
//! transfer plan of §7 for the negotiated [`Transport`], and checking what comes back against the
//! manifest's SHA-256 before anyone writes it to disk.
//!
//! It must not touch files: the caller hands record data in (a closure per record) and gets
//! record data out.
//!
//! The transport: the client assumes the reader does what the [`Channel`] does. A channel with
//! extended length switched off ([`Channel::set_extended_length`]) must be paired with
//! [`BackupClient::with_reader`]`(Transport::SHORT)`, so that records are written as one chained
//! WRITE DATA and read 256 bytes at a time (§7).

use std::collections::HashSet;
use std::fmt;
use std::io;

use simkit_core::apdu::{Command, Response};
use simkit_core::backup::BackupError;
use simkit_core::backup::commands::{
    self, BackupStatus, INS_TABLE, ManifestDigest, ManifestPage, Passcode, SessionKind,
};
use simkit_core::backup::diff::{LocalRecord, incremental_plan, local_manifest};
use simkit_core::backup::manifest::{
    Manifest, ManifestEntry, RecordDigest, RecordId, digest, table_digest,
};
use simkit_core::backup::plan::{
    EXTENDED_MAX_COMMAND_DATA, EXTENDED_MAX_RESPONSE_DATA, Transport, read_plan, write_plan,
};
use simkit_core::status::Sw;

use crate::channel::Channel;
use crate::error::CardError;
use crate::transport::Card;

mod error;
mod push;

pub use error::BackupClientError;

/// Most record commands [`BackupClient::push`] has in flight at once (one batch).
pub const PIPELINE_APDUS: usize = 64;
/// Most command bytes in one batch: what the client holds in memory at once and the grain of
/// its error checks. (The answers to record commands are status words only, and the jCardSim
/// backend keeps a bounded window in flight, so a large batch cannot dead-lock the socket.)
pub const PIPELINE_BYTES: usize = 1024 * 1024;
/// How many times [`BackupClient::push`] re-reads and sends again a record the card refused
/// with `9D03` (its data changed while being sent, §6.2 step 4) before giving up.
pub const MAX_RESENDS: usize = 3;

/// How many times [`BackupClient::manifest`] restarts when the generation changes between pages
/// before giving up (another host committing in a loop).
const MANIFEST_RESTARTS: usize = 4;

/// The answer to a VERIFY without data (§5.4): no try is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasscodeState {
    /// Verified in this selection.
    Verified,
    /// Not verified; this many tries left (0: blocked).
    TriesLeft(u8),
}

/// The card's active generation as read with GET MANIFEST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardManifest {
    /// Generation number (never 0: a store with no generation answers `9D05`).
    pub generation: u32,
    /// Entries in the card's table order (§3.4).
    pub entries: Vec<ManifestEntry>,
    /// The same entries as a sorted [`Manifest`].
    pub manifest: Manifest,
}

/// What a push will do, decided before any byte is sent (it drives the progress bar).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPlan {
    /// Full or incremental (on the card's current generation).
    pub kind: SessionKind,
    /// Records to send, in manifest order.
    pub send: Vec<ManifestEntry>,
    /// Records to delete (incremental only).
    pub delete: Vec<RecordId>,
    /// Records already on the card unchanged (incremental only).
    pub unchanged: usize,
    /// The manifest the card holds after the commit (with the planned digests; a record
    /// re-read after `9D03` is committed with what was re-read, see
    /// [`BackupClient::pushed_manifest`]).
    pub expected: Manifest,
    /// The card's table the plan was made against, in card order (incremental only; empty
    /// for a full plan): the start of the staging table (§3.4).
    pub base: Vec<ManifestEntry>,
}

impl PushPlan {
    /// Record bytes the plan sends.
    pub fn bytes_to_send(&self) -> u64 {
        self.send.iter().map(|e| u64::from(e.length)).sum()
    }

    /// False when the card already holds the local tree (an incremental plan with nothing to
    /// send or delete): no session is opened. A full plan always needs one.
    pub fn needs_session(&self) -> bool {
        matches!(self.kind, SessionKind::Full) || !self.send.is_empty() || !self.delete.is_empty()
    }
}

/// A backup-store session over a [`Channel`]. Select the applet first ([`select`](Self::select)).
pub struct BackupClient<'c, C: Card> {
    channel: &'c mut Channel<C>,
    reader: Transport,
    transport: Transport,
    pushed: Option<CardManifest>,
    /// The last GET STATUS said version `02` (WRITE RECORDS, verified COMMIT).
    card_packs: bool,
    /// The caller allows packing (default); off forces the revision-1 commands.
    packing: bool,
}

impl<C: Card> fmt::Debug for BackupClient<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupClient")
            .field("reader", &self.reader)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

/// The spec's name of a command, from the core INS table (one source for the names).
fn name(ins: u8) -> &'static str {
    INS_TABLE
        .iter()
        .find(|(i, _)| *i == ins)
        .map_or("backup-store command", |(_, n)| *n)
}

fn malformed(cmd: &Command, source: BackupError) -> BackupClientError {
    BackupClientError::Malformed {
        command: name(cmd.ins),
        source,
    }
}

impl<'c, C: Card> BackupClient<'c, C> {
    /// A client sending through `channel`, assuming a reader with extended length (the
    /// channel's default). The transport is narrowed to the card's limits by
    /// [`status`](Self::status).
    pub fn new(channel: &'c mut Channel<C>) -> Self {
        let reader = Transport::extended(EXTENDED_MAX_COMMAND_DATA, EXTENDED_MAX_RESPONSE_DATA);
        BackupClient {
            channel,
            reader,
            transport: reader,
            pushed: None,
            card_packs: false,
            packing: true,
        }
    }

    /// Sets the reader's limits (e.g. [`Transport::SHORT`] for a channel without extended
    /// length). Takes effect now and is narrowed again by the next [`status`](Self::status).
    #[must_use]
    pub fn with_reader(mut self, reader: Transport) -> Self {
        self.reader = reader;
        self.transport = reader;
        self
    }

    /// The transport used for record data: the reader's limits, narrowed to the card's by the
    /// last [`status`](Self::status).
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The channel, e.g. to reach the card's simulator controls or the trace.
    pub fn channel(&mut self) -> &mut Channel<C> {
        self.channel
    }

    fn send(&mut self, cmd: &Command) -> Result<Vec<u8>, CardError> {
        self.channel.transmit_ok(name(cmd.ins), cmd)
    }

    fn send_empty(&mut self, cmd: &Command) -> Result<(), BackupClientError> {
        let data = self.send(cmd)?;
        if data.is_empty() {
            Ok(())
        } else {
            Err(CardError::UnexpectedResponse {
                command: name(cmd.ins),
                expected: "0",
                got: data.len(),
            }
            .into())
        }
    }

    /// §5.1 SELECT the backup store.
    ///
    /// # Errors
    /// [`CardError::Status`] (`6A82`/`6999` when the applet is not installed), transport errors.
    pub fn select(&mut self) -> Result<(), BackupClientError> {
        self.send_empty(&commands::select())
    }

    /// §5.2 GET STATUS; also narrows [`transport`](Self::transport) to the card's limits.
    ///
    /// # Errors
    /// [`CardError::UnexpectedResponse`] unless 28 bytes, [`BackupClientError::Malformed`]
    /// (unknown format version), [`CardError::Status`], transport errors.
    pub fn status(&mut self) -> Result<BackupStatus, BackupClientError> {
        let cmd = commands::get_status();
        let data = self.send(&cmd)?;
        if data.len() != BackupStatus::LEN {
            return Err(CardError::UnexpectedResponse {
                command: name(cmd.ins),
                expected: "28",
                got: data.len(),
            }
            .into());
        }
        let status = BackupStatus::parse(&data).map_err(|e| malformed(&cmd, e))?;
        self.transport = self.reader.negotiate(&status);
        self.card_packs = status.packs_records();
        Ok(status)
    }

    /// Allows (the default) or forbids [`push`](Self::push) to use WRITE RECORDS and the
    /// verified COMMIT (§5.17, §5.12) with a card whose GET STATUS reports version `02`; with
    /// packing off, or a version-`01` card, every record goes as BEGIN RECORD / WRITE DATA /
    /// END RECORD and COMMIT waits for their answers.
    pub fn set_packing(&mut self, allowed: bool) {
        self.packing = allowed;
    }

    /// True when [`push`](Self::push) packs records: allowed, and the last
    /// [`status`](Self::status) reported version `02`.
    pub fn packs(&self) -> bool {
        self.packing && self.card_packs
    }

    /// §5.3 SET PASSCODE of a passcode that is not set.
    ///
    /// # Errors
    /// [`BackupClientError::Request`] for a length outside 4..=16; [`CardError::Status`]
    /// (`6985` already set, `6983` locked), transport errors.
    pub fn set_passcode(
        &mut self,
        which: Passcode,
        passcode: &[u8],
    ) -> Result<(), BackupClientError> {
        self.send_empty(&commands::set_passcode(which, passcode)?)
    }

    /// §5.4 VERIFY a passcode.
    ///
    /// # Errors
    /// [`CardError::Status`]: `63Cx` wrong passcode with x tries left (see
    /// [`BackupClientError::tries_left`]; `63C0` blocked the store), `6982` reprovisioning
    /// before pairing, `6983` locked, `9D07` not set; [`BackupClientError::Request`] for a
    /// length outside 4..=16; transport errors.
    pub fn verify(&mut self, which: Passcode, passcode: &[u8]) -> Result<(), BackupClientError> {
        self.send_empty(&commands::verify(which, passcode)?)
    }

    /// §5.4 VERIFY without data: verified, or the tries left, without using a try.
    ///
    /// # Errors
    /// [`CardError::Status`] (`6983` locked, `9D07` not set), transport errors.
    pub fn passcode_state(&mut self, which: Passcode) -> Result<PasscodeState, BackupClientError> {
        match self.send_empty(&commands::verify_query(which)) {
            Ok(()) => Ok(PasscodeState::Verified),
            Err(e) => match e.tries_left() {
                Some(n) => Ok(PasscodeState::TriesLeft(n)),
                None => Err(e),
            },
        }
    }

    /// §5.5 CHANGE REFERENCE DATA: a verified passcode gets a new value and full tries.
    ///
    /// # Errors
    /// [`CardError::Status`] (`6982` not verified, `9D07` not set, `6983` locked),
    /// [`BackupClientError::Request`] for a length outside 4..=16, transport errors.
    pub fn change_passcode(
        &mut self,
        which: Passcode,
        new_passcode: &[u8],
    ) -> Result<(), BackupClientError> {
        self.send_empty(&commands::change_reference_data(which, new_passcode)?)
    }

    /// §5.6 GET MANIFEST: one page from entry `start`, as large as the transport allows.
    ///
    /// # Errors
    /// [`CardError::Status`] (`9D05` store empty, `6A86` start beyond the count, `6982`),
    /// [`BackupClientError::Malformed`], transport errors.
    pub fn manifest_page(&mut self, start: u16) -> Result<ManifestPage, BackupClientError> {
        let le = u32::try_from(self.transport.response_limit()).unwrap_or(u32::MAX);
        let cmd = commands::get_manifest(start, le);
        let data = self.send(&cmd)?;
        ManifestPage::parse(&data).map_err(|e| malformed(&cmd, e))
    }

    /// §5.6 The whole manifest, page by page, restarting if the generation changes; `None` when
    /// the store holds no generation (`9D05`).
    ///
    /// # Errors
    /// Those of [`manifest_page`](Self::manifest_page) but `9D05`;
    /// [`BackupClientError::ManifestUnstable`], [`BackupClientError::ManifestStalled`],
    /// [`BackupClientError::Malformed`] for duplicate ids.
    pub fn manifest(&mut self) -> Result<Option<CardManifest>, BackupClientError> {
        'restart: for _ in 0..MANIFEST_RESTARTS {
            let first = match self.manifest_page(0) {
                Ok(page) => page,
                Err(e) if e.sw() == Some(Sw::StoreEmpty) => return Ok(None),
                Err(e) => return Err(e),
            };
            let generation = first.generation;
            let total = first.total;
            let mut entries = first.entries;
            while entries.len() < usize::from(total) {
                let start = u16::try_from(entries.len()).unwrap_or(u16::MAX);
                let page = self.manifest_page(start)?;
                if page.generation != generation {
                    continue 'restart;
                }
                if page.entries.is_empty() {
                    return Err(BackupClientError::ManifestStalled { start, total });
                }
                entries.extend(page.entries);
            }
            let manifest = Manifest::from_entries(entries.iter().cloned())
                .map_err(|e| malformed(&commands::get_manifest(0, 0), e))?;
            return Ok(Some(CardManifest {
                generation,
                entries,
                manifest,
            }));
        }
        Err(BackupClientError::ManifestUnstable)
    }

    /// §5.16 GET MANIFEST DIGEST: generation, record count and SHA-256 of the active table;
    /// `None` when the store holds no generation (`9D05`).
    ///
    /// # Errors
    /// [`CardError::Status`] (`6982`, `6D00` from an applet older than §5.16),
    /// [`BackupClientError::Malformed`], transport errors.
    pub fn manifest_digest(&mut self) -> Result<Option<ManifestDigest>, BackupClientError> {
        let cmd = commands::get_manifest_digest();
        match self.send(&cmd) {
            Ok(data) => Ok(Some(
                ManifestDigest::parse(&data).map_err(|e| malformed(&cmd, e))?,
            )),
            Err(e) if e.sw() == Some(Sw::StoreEmpty) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// §5.16 + §5.6 The card's manifest, from a kept copy when it is still the card's: GET
    /// MANIFEST DIGEST, then `cache` is asked for the entries (card order) of a table with that
    /// digest; when it has them and they hash to the card's digest they are the manifest,
    /// otherwise (or when the applet predates §5.16: `6D00`) the manifest is read as by
    /// [`manifest`](Self::manifest). A cache can be wrong without harm: its answer is checked.
    ///
    /// # Errors
    /// Those of [`manifest_digest`](Self::manifest_digest) but `6D00`, and of
    /// [`manifest`](Self::manifest).
    pub fn manifest_cached(
        &mut self,
        cache: &mut dyn FnMut(&ManifestDigest) -> Option<Vec<ManifestEntry>>,
    ) -> Result<Option<CardManifest>, BackupClientError> {
        let digest = match self.manifest_digest() {
            Ok(None) => return Ok(None),
            Ok(Some(d)) => d,
            Err(e) if e.sw() == Some(Sw::InsNotSupported) => return self.manifest(),
            Err(e) => return Err(e),
        };
        if let Some(entries) = cache(&digest).filter(|e| digest.matches(e)) {
            if let Ok(manifest) = Manifest::from_entries(entries.iter().cloned()) {
                return Ok(Some(CardManifest {
                    generation: digest.generation,
                    entries,
                    manifest,
                }));
            }
        }
        self.manifest()
    }

    /// The card's manifest after the last successful [`push`](Self::push), predicted from the
    /// table order rules of §3.4 and the entries actually declared (re-read records included),
    /// so that it can be kept for [`manifest_cached`](Self::manifest_cached); `None` before.
    pub fn pushed_manifest(&self) -> Option<&CardManifest> {
        self.pushed.as_ref()
    }

    /// §5.7 BEGIN SESSION, full or incremental on a base generation.
    ///
    /// # Errors
    /// [`CardError::Status`] (`9D04` a session is open, `9D05` incremental on an empty store,
    /// `6985` base is not the active generation), transport errors.
    pub fn begin_session(&mut self, kind: SessionKind) -> Result<(), BackupClientError> {
        self.send_empty(&commands::begin_session(kind))
    }

    /// §5.8 BEGIN RECORD: declares the record's id, length and SHA-256.
    ///
    /// # Errors
    /// [`CardError::Status`] (`9D01` no session, `9D04` a record open, `6A80` bad name,
    /// `9D06` table full and `9D02` capacity exceeded — both end the session), transport errors.
    pub fn begin_record(&mut self, entry: &ManifestEntry) -> Result<(), BackupClientError> {
        self.send_empty(&commands::begin_record(entry))
    }

    /// §5.9 WRITE DATA: `bytes` at `offset` in one logical command (the channel chains it when
    /// extended length is off).
    ///
    /// # Errors
    /// [`CardError::Status`] (`6A80` offset ≠ bytes written or past the declared length,
    /// `9D04` no record open), transport errors.
    pub fn write_data(&mut self, offset: u32, bytes: &[u8]) -> Result<(), BackupClientError> {
        self.send_empty(&commands::write_data(offset, bytes))
    }

    /// §5.9 + §7 All of a record's data, by the write plan of the current transport: extended
    /// APDUs of the largest size, or one chain of 255-byte segments. `progress` gets the record
    /// bytes of each chunk once the card accepted it.
    ///
    /// # Errors
    /// [`BackupClientError::LocalChanged`] when `data` is not as long as `entry` declares;
    /// [`BackupClientError::Request`] for a transport too small; those of
    /// [`write_data`](Self::write_data).
    pub fn write_record_data(
        &mut self,
        entry: &ManifestEntry,
        data: &[u8],
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), BackupClientError> {
        if data.len() as u64 != u64::from(entry.length) {
            return Err(BackupClientError::LocalChanged(entry.id()));
        }
        for chunk in write_plan(entry.length, &self.transport)? {
            for cmd in commands::write_chunk(&chunk, data)? {
                self.send_empty(&cmd)?;
            }
            progress(u64::from(chunk.len));
        }
        Ok(())
    }

    /// §5.10 END RECORD: the card checks length and SHA-256 and stages the record.
    ///
    /// # Errors
    /// [`CardError::Status`] (`9D08` incomplete — the record stays open; `9D03` digest
    /// mismatch — the record is discarded; `9D04` no record open), transport errors.
    pub fn end_record(&mut self) -> Result<(), BackupClientError> {
        self.send_empty(&commands::end_record())
    }

    /// §5.8–5.10 One whole record: BEGIN RECORD, its WRITE DATA, END RECORD.
    ///
    /// # Errors
    /// [`BackupClientError::LocalChanged`] when `data` has not the entry's length, or when the
    /// card finds its SHA-256 is not the entry's (`9D03`: the card discarded the record, the
    /// session stays open); those of the three commands and of
    /// [`write_record_data`](Self::write_record_data).
    pub fn send_record(
        &mut self,
        entry: &ManifestEntry,
        data: &[u8],
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), BackupClientError> {
        if data.len() as u64 != u64::from(entry.length) {
            return Err(BackupClientError::LocalChanged(entry.id()));
        }
        self.begin_record(entry)?;
        self.write_record_data(entry, data, progress)?;
        // The card hashes what it received (END RECORD); hashing here again would cost a second
        // SHA-256 pass for nothing. The transport is checked, so a 9D03 means the data handed in
        // is not what the entry was planned with.
        match self.end_record() {
            Err(e) if e.sw() == Some(Sw::DigestMismatch) => {
                Err(BackupClientError::LocalChanged(entry.id()))
            }
            other => other,
        }
    }

    /// §5.11 DELETE RECORD from an incremental session's staging table.
    ///
    /// # Errors
    /// [`CardError::Status`] (`6A88` no such record, `9D04` full session or record open,
    /// `9D01` no session), transport errors.
    pub fn delete_record(&mut self, id: &RecordId) -> Result<(), BackupClientError> {
        self.send_empty(&commands::delete_record(id))
    }

    /// §5.12 COMMIT: the staging table becomes the active generation; returns its number.
    ///
    /// # Errors
    /// [`CardError::Status`] (`9D01` no session, `9D04` a record open),
    /// [`BackupClientError::Malformed`] unless 4 bytes, transport errors.
    pub fn commit(&mut self) -> Result<u32, BackupClientError> {
        let cmd = commands::commit();
        let data = self.send(&cmd)?;
        commands::parse_commit_response(&data).map_err(|e| malformed(&cmd, e))
    }

    /// §5.12 verified COMMIT (version `02`): commits only if the staging table's digest is
    /// `expected`; returns the new generation.
    ///
    /// # Errors
    /// [`CardError::Status`] (`9D09` the table differs — the session has ended, `9D01`,
    /// `9D04`), [`BackupClientError::Malformed`] unless 4 bytes, transport errors.
    pub fn commit_verified(&mut self, expected: &RecordDigest) -> Result<u32, BackupClientError> {
        let cmd = commands::commit_verified(expected);
        let data = self.send(&cmd)?;
        commands::parse_commit_response(&data).map_err(|e| malformed(&cmd, e))
    }

    /// §5.17 WRITE RECORDS (version `02`): whole records in one APDU, staged in order.
    ///
    /// # Errors
    /// [`BackupClientError::Request`] when a record's data is not as long as its entry says;
    /// [`CardError::Status`] (`9D02`, `9D03`, `9D06`, `6A80`, … — the session has ended),
    /// transport errors.
    pub fn write_records(
        &mut self,
        records: &[(&ManifestEntry, &[u8])],
    ) -> Result<(), BackupClientError> {
        self.send_empty(&commands::write_records(records.iter().copied())?)
    }

    /// §5.13 ABORT: the session is discarded; the active generation is untouched.
    ///
    /// # Errors
    /// [`CardError::Status`] (`9D01` no session), transport errors.
    pub fn abort(&mut self) -> Result<(), BackupClientError> {
        self.send_empty(&commands::abort())
    }

    /// §5.14 READ DATA: up to `len` bytes of a record from `offset`.
    ///
    /// # Errors
    /// [`CardError::Status`] (`6982` both passcodes needed, `6A88` no such record, `6A80`
    /// offset past the end, `9D05` store empty), transport errors.
    pub fn read_data(
        &mut self,
        id: &RecordId,
        offset: u32,
        len: u32,
    ) -> Result<Vec<u8>, BackupClientError> {
        Ok(self.send(&commands::read_data(id, offset, len))?)
    }

    /// §5.14 + §6.3 + §7 A whole record by the read plan, checked against the entry's length
    /// and SHA-256 before it is returned. `progress` gets the bytes of each chunk.
    ///
    /// # Errors
    /// [`BackupClientError::ShortRead`], [`BackupClientError::ReadDigestMismatch`], those of
    /// [`read_data`](Self::read_data).
    pub fn read_record(
        &mut self,
        entry: &ManifestEntry,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Vec<u8>, BackupClientError> {
        let id = entry.id();
        let mut out = Vec::with_capacity(usize::try_from(entry.length).unwrap_or(0));
        for chunk in read_plan(entry.length, &self.transport)? {
            let part = self.read_data(&id, chunk.offset, chunk.len)?;
            if part.len() as u64 != u64::from(chunk.len) {
                return Err(BackupClientError::ShortRead {
                    id,
                    offset: chunk.offset,
                    asked: chunk.len,
                    got: part.len(),
                });
            }
            out.extend_from_slice(&part);
            progress(u64::from(chunk.len));
        }
        if digest(&out) != entry.digest {
            return Err(BackupClientError::ReadDigestMismatch(id));
        }
        Ok(out)
    }

    /// §5.15 ERASE: empties the store and unsets both passcodes; works in every state.
    ///
    /// # Errors
    /// [`CardError::Status`], transport errors.
    pub fn erase(&mut self) -> Result<(), BackupClientError> {
        self.send_empty(&commands::erase())
    }

    /// §6.1 Opening: SELECT, GET STATUS (refusing a locked store or an unset pairing passcode
    /// with a clear error), VERIFY the pairing passcode. Returns the status read after VERIFY
    /// (with its details).
    ///
    /// # Errors
    /// [`BackupClientError::Locked`], [`BackupClientError::NotSet`], a wrong passcode as
    /// [`CardError::Status`] `63Cx`, and the errors of the commands.
    pub fn open(&mut self, pairing: &[u8]) -> Result<BackupStatus, BackupClientError> {
        self.select()?;
        let status = self.status()?;
        if status.is_locked() {
            return Err(BackupClientError::Locked);
        }
        for which in [Passcode::Pairing, Passcode::Reprovisioning] {
            if !status.flags.is_set(which) {
                return Err(BackupClientError::NotSet(which));
            }
        }
        self.verify(Passcode::Pairing, pairing)?;
        self.status()
    }
}

#[cfg(test)]
mod tests {
    use super::push::predicted_entries;
    use super::*;
    use crate::mock::ScriptedCard;
    use simkit_core::apdu::LengthEncoding;
    use simkit_core::backup::manifest::{Category, RecordName};
    use simkit_core::hexutil::{parse_hex as from_hex, to_hex};

    fn local(entries: &[&(ManifestEntry, Vec<u8>)]) -> Vec<LocalRecord> {
        entries
            .iter()
            .map(|(e, d)| LocalRecord {
                category: e.category,
                name: e.name.clone(),
                data_len: d.len() as u64,
                digest: e.digest,
            })
            .collect()
    }

    /// The whole worked example (§9) through the client's typed methods and its push / read
    /// procedures, over short APDUs: every byte on the wire is the spec's.
    #[test]
    fn worked_example_step_by_step() {
        // The core builds the example; `applet-spec/vectors/backup-store.json` holds the same
        // bytes (a core test keeps the two equal).
        let v = simkit_core::backup::worked_example();
        let record = |name: &str| {
            let r = v["records"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .unwrap();
            let data = from_hex(r["data"].as_str().unwrap()).unwrap();
            let category: Category = r["category"].as_str().unwrap().parse().unwrap();
            let entry =
                ManifestEntry::for_data(category, RecordName::new(name).unwrap(), &data).unwrap();
            assert_eq!(to_hex(&entry.digest), r["sha256"].as_str().unwrap());
            (entry, data)
        };
        let mut card = ScriptedCard::empty();
        for step in v["steps"].as_array().unwrap() {
            card = card.then_bytes(
                from_hex(step["command"].as_str().unwrap()).unwrap(),
                from_hex(step["response"].as_str().unwrap()).unwrap(),
            );
        }
        let pairing = from_hex(v["passcodes"]["pairing"].as_str().unwrap()).unwrap();
        let reprov = from_hex(v["passcodes"]["reprovisioning"].as_str().unwrap()).unwrap();
        let carrier = record("carrier.sb");
        let notes = record("notes.txt");
        let ui = record("ui.conf");

        let mut ch = Channel::new(card);
        ch.set_extended_length(false);
        let mut c = BackupClient::new(&mut ch).with_reader(Transport::SHORT);
        c.select().unwrap();
        let s = c.status().unwrap();
        assert_eq!((s.generation, s.capacity, s.max_records), (0, 65_536, 16));
        assert!(!s.flags.is_set(Passcode::Pairing));
        // The card reports 7FFF / 7FFF, the reader is short: short it stays.
        assert_eq!(c.transport(), Transport::SHORT);
        c.set_passcode(Passcode::Pairing, &pairing).unwrap();
        c.set_passcode(Passcode::Reprovisioning, &reprov).unwrap();
        let e = c.verify(Passcode::Pairing, b"000000").unwrap_err();
        assert_eq!(e.tries_left(), Some(4));
        assert_eq!(
            e.to_string(),
            "VERIFY: 63C4 verification failed, 4 retries left"
        );
        c.verify(Passcode::Pairing, &pairing).unwrap();
        // The card is version 02, but generations 1 and 2 of the example are sent the
        // revision-1 way (one record at a time, COMMIT after the answers).
        assert!(c.packs());
        c.set_packing(false);

        // Steps 7..15: plan (9D05: full) and push.
        let tree = local(&[&carrier, &notes]);
        let plan = c.plan_push(&tree, false).unwrap();
        assert_eq!(plan.kind, SessionKind::Full);
        assert_eq!(plan.bytes_to_send(), 37);
        let mut data = |e: &ManifestEntry| -> io::Result<Vec<u8>> {
            Ok([&carrier, &notes, &ui]
                .iter()
                .find(|(x, _)| x.id() == e.id())
                .map(|(_, d)| d.clone())
                .unwrap())
        };
        let mut sent = 0u64;
        let generation = c.push(&plan, &mut data, &mut |n| sent += n).unwrap();
        assert_eq!((generation, sent), (Some(1), 37));

        let s = c.status().unwrap();
        assert_eq!(
            (s.generation, s.used, s.free, s.record_count),
            (1, 37, 65_499, 2)
        );

        // Steps 17..24: incremental (delete notes.txt, add ui.conf through a chain).
        let tree = local(&[&carrier, &ui]);
        let plan = c.plan_push(&tree, false).unwrap();
        assert_eq!(plan.kind, SessionKind::Incremental { base_generation: 1 });
        assert_eq!(plan.delete, vec![notes.0.id()]);
        assert_eq!(plan.send, vec![ui.0.clone()]);
        assert_eq!(plan.unchanged, 1);
        assert_eq!(c.push(&plan, &mut data, &mut |_| {}).unwrap(), Some(2));

        // Steps 25..29: manifest in card order, READ DATA refused, then read back.
        let m = c.manifest().unwrap().unwrap();
        assert_eq!(m.generation, 2);
        assert_eq!(m.entries, vec![carrier.0.clone(), ui.0.clone()]);
        assert_eq!(m.manifest, plan.expected);
        let e = c.read_record(&ui.0, &mut |_| {}).unwrap_err();
        assert_eq!(e.sw(), Some(Sw::SecurityStatusNotSatisfied));
        c.verify(Passcode::Reprovisioning, &reprov).unwrap();
        let mut got = 0;
        assert_eq!(c.read_record(&ui.0, &mut |n| got += n).unwrap(), ui.1);
        assert_eq!(got, 300);
        // Step 30: the digest of the table read in step 25 — a kept copy is recognised.
        let d = c.manifest_digest().unwrap().unwrap();
        assert_eq!((d.generation, d.count), (2, 2));
        assert!(d.matches(&m.entries));
        assert!(
            !d.matches(&[ui.0.clone(), carrier.0.clone()]),
            "order counts"
        );

        // Steps 31..33: WRITE RECORDS by hand, then a verified COMMIT expecting the wrong
        // table: refused with 9D09 and the session is over.
        let hello = record("hello.txt");
        c.begin_session(SessionKind::Incremental { base_generation: 2 })
            .unwrap();
        c.write_records(&[(&notes.0, &notes.1), (&hello.0, &hello.1)])
            .unwrap();
        let e = c.commit_verified(&d.digest).unwrap_err();
        assert_eq!(e.sw(), Some(Sw::TableMismatch));
        assert_eq!(
            e.to_string(),
            "COMMIT: 9D09 staging table does not match the expected digest; session ended"
        );
        // Steps 34..36: the same as a packed push — BEGIN SESSION, one WRITE RECORDS, the
        // verified COMMIT with the predicted table's digest, all in one pipeline.
        c.set_packing(true);
        let plan = PushPlan {
            kind: SessionKind::Incremental { base_generation: 2 },
            send: vec![notes.0.clone(), hello.0.clone()],
            delete: Vec::new(),
            unchanged: 2,
            expected: Manifest::from_entries([&carrier, &ui, &notes, &hello].map(|r| r.0.clone()))
                .unwrap(),
            base: m.entries.clone(),
        };
        let mut data = |e: &ManifestEntry| -> io::Result<Vec<u8>> {
            Ok([&notes, &hello]
                .iter()
                .find(|(x, _)| x.id() == e.id())
                .map(|(_, d)| d.clone())
                .unwrap())
        };
        let mut sent = 0u64;
        assert_eq!(
            c.push(&plan, &mut data, &mut |n| sent += n).unwrap(),
            Some(3)
        );
        assert_eq!(sent, 15);
        // Step 37: the card's digest is the one of the table the client predicted.
        let kept = c.pushed_manifest().unwrap().clone();
        assert_eq!(kept.generation, 3);
        let d3 = c.manifest_digest().unwrap().unwrap();
        assert!(d3.matches(&kept.entries));
        ch.card().finish().unwrap();
    }

    fn wire(cmd: &Command) -> Vec<u8> {
        cmd.to_bytes(LengthEncoding::Auto).unwrap()
    }

    fn ok(data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.extend_from_slice(&[0x90, 0x00]);
        v
    }

    #[test]
    fn open_refuses_locked_and_unset_stores() {
        let mut status = BackupStatus::parse(
            &from_hex("0100000000000100000000000000010000000000107FFF7FFF050307").unwrap(),
        )
        .unwrap();
        status.pairing_tries_left = 0;
        let locked = status.encode();
        status.pairing_tries_left = 5;
        status.flags.0 = 0x01;
        let unset = status.encode();
        let card = ScriptedCard::empty()
            .then_bytes(wire(&commands::select()), [0x90, 0x00])
            .then_bytes(wire(&commands::get_status()), ok(&locked))
            .then_bytes(wire(&commands::select()), [0x90, 0x00])
            .then_bytes(wire(&commands::get_status()), ok(&unset));
        let mut ch = Channel::new(card);
        let mut c = BackupClient::new(&mut ch);
        assert!(matches!(
            c.open(b"123456").unwrap_err(),
            BackupClientError::Locked
        ));
        let e = c.open(b"123456").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the reprovisioning passcode is not set (9D07); set it first"
        );
        // Extended reader, card 7FFF: extended transport at the card's limits.
        assert_eq!(c.transport(), Transport::extended(0x7FFF, 0x7FFF));
        ch.card().finish().unwrap();
    }

    #[test]
    fn passcode_state_and_errors_keep_status_words() {
        let card = ScriptedCard::empty()
            .then_bytes(
                wire(&commands::verify_query(Passcode::Pairing)),
                [0x63, 0xC2],
            )
            .then_bytes(
                wire(&commands::verify_query(Passcode::Pairing)),
                [0x90, 0x00],
            )
            .then_bytes(
                wire(&commands::verify_query(Passcode::Pairing)),
                [0x69, 0x83],
            )
            .then_bytes(wire(&commands::commit()), ok(&[0, 0, 1]))
            .then_bytes(wire(&commands::abort()), [0x9D, 0x01]);
        let mut ch = Channel::new(card);
        let mut c = BackupClient::new(&mut ch);
        assert_eq!(
            c.passcode_state(Passcode::Pairing).unwrap(),
            PasscodeState::TriesLeft(2)
        );
        assert_eq!(
            c.passcode_state(Passcode::Pairing).unwrap(),
            PasscodeState::Verified
        );
        let e = c.passcode_state(Passcode::Pairing).unwrap_err();
        assert_eq!(e.sw(), Some(Sw::from_u16(0x6983)));
        let e = c.commit().unwrap_err();
        assert!(
            matches!(
                e,
                BackupClientError::Malformed {
                    command: "COMMIT",
                    ..
                }
            ),
            "{e}"
        );
        let e = c.abort().unwrap_err();
        assert_eq!(e.to_string(), "ABORT: 9D01 no backup session open");
        assert!(matches!(
            c.set_passcode(Passcode::Pairing, b"123").unwrap_err(),
            BackupClientError::Request(BackupError::PasscodeLength(3))
        ));
        ch.card().finish().unwrap();
    }

    /// A push that the card refuses with 9D02 is aborted and reports the status word; a read
    /// whose bytes do not match the manifest is refused.
    #[test]
    fn capacity_refusal_and_bad_read_back() {
        let data = vec![7u8; 10];
        let entry =
            ManifestEntry::for_data(Category::Keys, RecordName::new("k").unwrap(), &data).unwrap();
        let card = ScriptedCard::empty()
            .then_bytes(
                wire(&commands::begin_session(SessionKind::Full)),
                [0x90, 0x00],
            )
            .then_bytes(wire(&commands::begin_record(&entry)), [0x9D, 0x02])
            // Pipelined behind the refused BEGIN RECORD: sent, refused in turn, ignored.
            .then_bytes(wire(&commands::write_data(0, &data)), [0x9D, 0x01])
            .then_bytes(wire(&commands::end_record()), [0x9D, 0x01])
            .then_bytes(wire(&commands::abort()), [0x9D, 0x01])
            .then_bytes(
                wire(&commands::read_data(&entry.id(), 0, 10)),
                ok(&[8u8; 10]),
            )
            .then_bytes(
                wire(&commands::read_data(&entry.id(), 0, 10)),
                ok(&[7u8; 9]),
            )
            .then_bytes(wire(&commands::begin_record(&entry)), [0x90, 0x00])
            .then_bytes(wire(&commands::write_data(0, &[1u8; 10])), [0x90, 0x00])
            .then_bytes(wire(&commands::end_record()), [0x9D, 0x03]);
        let mut ch = Channel::new(card);
        let mut c = BackupClient::new(&mut ch);
        let plan = PushPlan {
            kind: SessionKind::Full,
            send: vec![entry.clone()],
            delete: vec![],
            unchanged: 0,
            expected: Manifest::from_entries([entry.clone()]).unwrap(),
            base: vec![],
        };
        let e = c
            .push(&plan, &mut |_| Ok(data.clone()), &mut |_| {})
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "record keys/k: BEGIN RECORD: 9D02 store capacity exceeded; previous generation kept"
        );
        assert!(matches!(
            c.read_record(&entry, &mut |_| {}).unwrap_err(),
            BackupClientError::ReadDigestMismatch(_)
        ));
        assert!(matches!(
            c.read_record(&entry, &mut |_| {}).unwrap_err(),
            BackupClientError::ShortRead { got: 9, .. }
        ));
        // Data that changed after hashing: the card refuses it at END RECORD (9D03).
        assert!(matches!(
            c.send_record(&entry, &[1u8; 10], &mut |_| {}).unwrap_err(),
            BackupClientError::LocalChanged(_)
        ));
        assert!(matches!(
            c.send_record(&entry, &[1u8; 9], &mut |_| {}).unwrap_err(),
            BackupClientError::LocalChanged(_)
        ));
        ch.card().finish().unwrap();
    }

    fn plan_of(entries: &[ManifestEntry]) -> PushPlan {
        PushPlan {
            kind: SessionKind::Full,
            send: entries.to_vec(),
            delete: vec![],
            unchanged: 0,
            expected: Manifest::from_entries(entries.iter().cloned()).unwrap(),
            base: vec![],
        }
    }

    /// A card that answers 9D03 to every END RECORD: the record is re-read and re-sent
    /// MAX_RESENDS times, then the push fails naming it, and the session is aborted.
    #[test]
    fn digest_mismatch_is_retried_a_bounded_number_of_times() {
        let data = vec![5u8; 10];
        let entry =
            ManifestEntry::for_data(Category::Keys, RecordName::new("k").unwrap(), &data).unwrap();
        let mut card = ScriptedCard::empty().then_bytes(
            wire(&commands::begin_session(SessionKind::Full)),
            [0x90, 0x00],
        );
        for _ in 0..=MAX_RESENDS {
            card = card
                .then_bytes(wire(&commands::begin_record(&entry)), [0x90, 0x00])
                .then_bytes(wire(&commands::write_data(0, &data)), [0x90, 0x00])
                .then_bytes(wire(&commands::end_record()), [0x9D, 0x03]);
        }
        card = card.then_bytes(wire(&commands::abort()), [0x90, 0x00]);
        let mut ch = Channel::new(card);
        let mut c = BackupClient::new(&mut ch);
        let mut reads = 0;
        let e = c
            .push(
                &plan_of(std::slice::from_ref(&entry)),
                &mut |_| {
                    reads += 1;
                    Ok(data.clone())
                },
                &mut |_| {},
            )
            .unwrap_err();
        assert!(matches!(e, BackupClientError::LocalChanged(_)), "{e}");
        assert_eq!(
            e.to_string(),
            "record keys/k: local data changed while it was being sent; run the backup again"
        );
        assert_eq!(reads, 1 + MAX_RESENDS);
        assert!(c.pushed_manifest().is_none());
        ch.card().finish().unwrap();
    }

    /// BEGIN SESSION travels in the first batch: refused (the card's generation moved), it is
    /// reported as itself, the records behind it were refused too, nothing commits.
    #[test]
    fn refused_begin_session_is_reported_as_itself() {
        let data = vec![1u8; 4];
        let entry =
            ManifestEntry::for_data(Category::Keys, RecordName::new("k").unwrap(), &data).unwrap();
        let mut plan = plan_of(std::slice::from_ref(&entry));
        plan.kind = SessionKind::Incremental { base_generation: 7 };
        let card = ScriptedCard::empty()
            .then_bytes(wire(&commands::begin_session(plan.kind)), [0x69, 0x85])
            .then_bytes(wire(&commands::begin_record(&entry)), [0x9D, 0x01])
            .then_bytes(wire(&commands::write_data(0, &data)), [0x9D, 0x01])
            .then_bytes(wire(&commands::end_record()), [0x9D, 0x01])
            .then_bytes(wire(&commands::abort()), [0x9D, 0x01]);
        let mut ch = Channel::new(card);
        let mut c = BackupClient::new(&mut ch);
        let e = c
            .push(&plan, &mut |_| Ok(data.clone()), &mut |_| {})
            .unwrap_err();
        assert!(matches!(e, BackupClientError::Card(_)), "{e}");
        assert_eq!(e.sw(), Some(Sw::from_u16(0x6985)));
        assert!(e.to_string().starts_with("BEGIN SESSION: 6985"), "{e}");
        ch.card().finish().unwrap();
    }

    /// A WRITE DATA refused in the middle of a batch: the rest of the batch was already on its
    /// way (and is refused in turn), the error names the record and the status word, ABORT
    /// follows, COMMIT never goes.
    #[test]
    fn refusal_in_the_middle_of_a_batch_names_the_record() {
        let records: Vec<(ManifestEntry, Vec<u8>)> = (0..3u8)
            .map(|i| {
                let data = vec![i; 20];
                let name = RecordName::new(&format!("r{i}")).unwrap();
                (
                    ManifestEntry::for_data(Category::Other, name, &data).unwrap(),
                    data,
                )
            })
            .collect();
        let mut card = ScriptedCard::empty().then_bytes(
            wire(&commands::begin_session(SessionKind::Full)),
            [0x90, 0x00],
        );
        for (i, (entry, data)) in records.iter().enumerate() {
            let write = if i == 1 { [0x6A, 0x80] } else { [0x90, 0x00] };
            let end = if i == 1 { [0x9D, 0x08] } else { [0x90, 0x00] };
            let begin = if i == 2 { [0x9D, 0x04] } else { [0x90, 0x00] };
            card = card
                .then_bytes(wire(&commands::begin_record(entry)), begin)
                .then_bytes(wire(&commands::write_data(0, data)), write)
                .then_bytes(wire(&commands::end_record()), end);
        }
        card = card.then_bytes(wire(&commands::abort()), [0x90, 0x00]);
        let mut ch = Channel::new(card);
        let mut c = BackupClient::new(&mut ch);
        let entries: Vec<_> = records.iter().map(|(e, _)| e.clone()).collect();
        let mut progress = 0;
        let e = c
            .push(
                &plan_of(&entries),
                &mut |e| Ok(records.iter().find(|(x, _)| x == e).unwrap().1.clone()),
                &mut |n| progress += n,
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "record other/r1: WRITE DATA: 6A80 incorrect parameters in the command data field"
        );
        assert_eq!(e.sw(), Some(Sw::from_u16(0x6A80)));
        assert_eq!(progress, 20, "only r0's bytes were accepted");
        ch.card().finish().unwrap();
    }

    /// With an extended reader a large record goes in maximum-size extended APDUs and is read
    /// back in maximum-size extended responses.
    #[test]
    fn extended_transport_uses_the_largest_apdus() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 253) as u8).collect();
        let entry =
            ManifestEntry::for_data(Category::UserData, RecordName::new("big").unwrap(), &data)
                .unwrap();
        let limit = 0x7FFF - 4;
        let card = ScriptedCard::empty()
            .then_bytes(wire(&commands::begin_record(&entry)), [0x90, 0x00])
            .then_bytes(wire(&commands::write_data(0, &data[..limit])), [0x90, 0x00])
            .then_bytes(
                wire(&commands::write_data(limit as u32, &data[limit..])),
                [0x90, 0x00],
            )
            .then_bytes(wire(&commands::end_record()), [0x90, 0x00])
            .then_bytes(
                wire(&commands::read_data(&entry.id(), 0, 0x7FFF)),
                ok(&data[..0x7FFF]),
            )
            .then_bytes(
                wire(&commands::read_data(&entry.id(), 0x7FFF, 40_000 - 0x7FFF)),
                ok(&data[0x7FFF..]),
            );
        let mut ch = Channel::new(card);
        let mut c = BackupClient::new(&mut ch);
        c.transport = c.reader.negotiate(
            &BackupStatus::parse(
                &from_hex("0100000000000100000000000000010000000000107FFF7FFF050307").unwrap(),
            )
            .unwrap(),
        );
        c.send_record(&entry, &data, &mut |_| {}).unwrap();
        assert_eq!(c.read_record(&entry, &mut |_| {}).unwrap(), data);
        ch.card().finish().unwrap();
    }

    /// A client that believes the last GET STATUS said version 02 with these command limits.
    fn packing_client<C: Card>(ch: &mut Channel<C>, max_command_data: u16) -> BackupClient<'_, C> {
        let mut status = BackupStatus::parse(
            &from_hex("0200000000000100000000000000010000000000107FFF7FFF050307").unwrap(),
        )
        .unwrap();
        status.max_command_data = max_command_data;
        let mut c = BackupClient::new(ch);
        c.transport = c.reader.negotiate(&status);
        c.card_packs = status.packs_records();
        c
    }

    fn records(sizes: &[usize]) -> Vec<(ManifestEntry, Vec<u8>)> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let data: Vec<u8> = (0..n).map(|j| (i * 7 + j) as u8).collect();
                let name = RecordName::new(&format!("r{i}")).unwrap();
                (
                    ManifestEntry::for_data(Category::Other, name, &data).unwrap(),
                    data,
                )
            })
            .collect()
    }

    fn pack(records: &[&(ManifestEntry, Vec<u8>)]) -> Vec<u8> {
        wire(&commands::write_records(records.iter().map(|(e, d)| (e, d.as_slice()))).unwrap())
    }

    /// Version 02: records are packed while entry + bytes fit the card's command limit (here
    /// 300 bytes; an entry is 40 bytes), a record too large for one APDU by itself goes as
    /// BEGIN RECORD / WRITE DATA / END RECORD in its place, and the verified COMMIT carries the
    /// digest of the table in sending order — all in one pipeline.
    #[test]
    fn packed_push_packs_by_the_limit_and_commits_verified() {
        let rs = records(&[100, 100, 0, 150, 400, 30]);
        let table: Vec<ManifestEntry> = rs.iter().map(|(e, _)| e.clone()).collect();
        let card = ScriptedCard::empty()
            .then_bytes(
                wire(&commands::begin_session(SessionKind::Full)),
                [0x90, 0x00],
            )
            // 140 + 140 + 40 = 320 > 300: r0 and r1 first, then r2 (empty) and r3 (190).
            .then_bytes(pack(&[&rs[0], &rs[1]]), [0x90, 0x00])
            .then_bytes(pack(&[&rs[2], &rs[3]]), [0x90, 0x00])
            // r4 needs 440 > 300 by itself: the three-command way, in its place.
            .then_bytes(wire(&commands::begin_record(&rs[4].0)), [0x90, 0x00])
            .then_bytes(
                wire(&commands::write_data(0, &rs[4].1[..296])),
                [0x90, 0x00],
            )
            .then_bytes(
                wire(&commands::write_data(296, &rs[4].1[296..])),
                [0x90, 0x00],
            )
            .then_bytes(wire(&commands::end_record()), [0x90, 0x00])
            .then_bytes(pack(&[&rs[5]]), [0x90, 0x00])
            .then_bytes(
                wire(&commands::commit_verified(&table_digest(&table))),
                ok(&[0, 0, 0, 7]),
            );
        let mut ch = Channel::new(card);
        let mut c = packing_client(&mut ch, 300);
        assert!(c.packs());
        let mut progress = 0;
        let generation = c
            .push(
                &plan_of(&table),
                &mut |e| Ok(rs.iter().find(|(x, _)| x == e).unwrap().1.clone()),
                &mut |n| progress += n,
            )
            .unwrap();
        assert_eq!(generation, Some(7));
        assert_eq!(progress, 780);
        assert_eq!(c.pushed_manifest().unwrap().entries, table);
        ch.card().finish().unwrap();
    }

    /// A pack the card refuses (9D02 here): the pipelined COMMIT behind it is refused too
    /// (9D01: the refusal ended the session), the error names the pack's records and keeps the
    /// status word, nothing is committed.
    #[test]
    fn refused_pack_names_its_records_and_nothing_commits() {
        let rs = records(&[10, 10, 10]);
        let table: Vec<ManifestEntry> = rs.iter().map(|(e, _)| e.clone()).collect();
        let card = ScriptedCard::empty()
            .then_bytes(
                wire(&commands::begin_session(SessionKind::Full)),
                [0x90, 0x00],
            )
            .then_bytes(pack(&[&rs[0], &rs[1], &rs[2]]), [0x9D, 0x02])
            .then_bytes(
                wire(&commands::commit_verified(&table_digest(&table))),
                [0x9D, 0x01],
            )
            .then_bytes(wire(&commands::abort()), [0x9D, 0x01]);
        let mut ch = Channel::new(card);
        let mut c = packing_client(&mut ch, 0x7FFF);
        let e = c
            .push(
                &plan_of(&table),
                &mut |e| Ok(rs.iter().find(|(x, _)| x == e).unwrap().1.clone()),
                &mut |_| {},
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "records other/r0 and 2 more (one WRITE RECORDS): WRITE RECORDS: 9D02 store capacity exceeded; previous generation kept"
        );
        assert_eq!(e.sw(), Some(Sw::CapacityExceeded));
        assert!(c.pushed_manifest().is_none());
        ch.card().finish().unwrap();
    }

    /// A file that changed after it was hashed: the card answers 9D03 to the pack (the session
    /// ends, the verified COMMIT is refused), the client aborts and runs the session again,
    /// now declaring the length and SHA-256 of what it reads, and commits that.
    #[test]
    fn changed_record_is_rehashed_and_the_session_run_again() {
        let rs = records(&[10, 12]);
        let planned: Vec<ManifestEntry> = rs.iter().map(|(e, _)| e.clone()).collect();
        // Same length, other bytes: only the card can tell.
        let now = vec![0xEE; 12];
        let fresh_same_len =
            ManifestEntry::for_data(Category::Other, rs[1].0.name.clone(), &now).unwrap();
        let table_then = [rs[0].0.clone(), fresh_same_len.clone()];
        let card = ScriptedCard::empty()
            .then_bytes(
                wire(&commands::begin_session(SessionKind::Full)),
                [0x90, 0x00],
            )
            // A 60-byte limit: one record per WRITE RECORDS (an entry is 40 bytes).
            .then_bytes(pack(&[&rs[0]]), [0x90, 0x00])
            .then_bytes(
                wire(&commands::write_records([(&rs[1].0, now.as_slice())]).unwrap()),
                [0x9D, 0x03],
            )
            .then_bytes(
                wire(&commands::commit_verified(&table_digest(&planned))),
                [0x9D, 0x01],
            )
            .then_bytes(wire(&commands::abort()), [0x9D, 0x01])
            .then_bytes(
                wire(&commands::begin_session(SessionKind::Full)),
                [0x90, 0x00],
            )
            .then_bytes(pack(&[&rs[0]]), [0x90, 0x00])
            .then_bytes(
                wire(&commands::write_records([(&fresh_same_len, now.as_slice())]).unwrap()),
                [0x90, 0x00],
            )
            .then_bytes(
                wire(&commands::commit_verified(&table_digest(&table_then))),
                ok(&[0, 0, 0, 1]),
            );
        let mut ch = Channel::new(card);
        let mut c = packing_client(&mut ch, 60);
        let mut progress = Vec::new();
        let generation = c
            .push(
                &plan_of(&planned),
                &mut |e| {
                    Ok(if e.name == rs[1].0.name {
                        now.clone()
                    } else {
                        rs[0].1.clone()
                    })
                },
                &mut |n| progress.push(n),
            )
            .unwrap();
        assert_eq!(generation, Some(1));
        // r0's 10 bytes once (the second session's r0 is not counted again), then r1's 12.
        progress.retain(|&n| n > 0);
        assert_eq!(progress, [10, 12]);
        assert_eq!(c.pushed_manifest().unwrap().entries, table_then);
        ch.card().finish().unwrap();
    }

    /// Packing switched off, or a version-01 card: the revision-1 commands, COMMIT after the
    /// answers.
    #[test]
    fn packing_off_uses_the_revision_1_commands() {
        let rs = records(&[5]);
        let table = vec![rs[0].0.clone()];
        let card = ScriptedCard::empty()
            .then_bytes(
                wire(&commands::begin_session(SessionKind::Full)),
                [0x90, 0x00],
            )
            .then_bytes(wire(&commands::begin_record(&rs[0].0)), [0x90, 0x00])
            .then_bytes(wire(&commands::write_data(0, &rs[0].1)), [0x90, 0x00])
            .then_bytes(wire(&commands::end_record()), [0x90, 0x00])
            .then_bytes(wire(&commands::commit()), ok(&[0, 0, 0, 2]));
        let mut ch = Channel::new(card);
        let mut c = packing_client(&mut ch, 0x7FFF);
        c.set_packing(false);
        assert!(!c.packs());
        let generation = c
            .push(&plan_of(&table), &mut |_| Ok(rs[0].1.clone()), &mut |_| {})
            .unwrap();
        assert_eq!(generation, Some(2));
        ch.card().finish().unwrap();
    }

    /// The linear prediction equals §3.4's rules applied one staging at a time: deletes first,
    /// then each staged record removes an entry of its id and is appended — also for an id
    /// staged twice and for base records replaced.
    #[test]
    fn predicted_table_follows_the_staging_rules() {
        let rs = records(&[1, 2, 3, 4, 5]);
        let e = |i: usize| rs[i].0.clone();
        let plan = PushPlan {
            kind: SessionKind::Incremental { base_generation: 1 },
            send: Vec::new(),
            delete: vec![e(1).id()],
            unchanged: 0,
            expected: Manifest::from_entries(Vec::new()).unwrap(),
            base: vec![e(0), e(1), e(2), e(3)],
        };
        let mut again = e(0);
        again.length += 1;
        let staged = vec![e(2), e(4), again.clone(), e(2)];
        let mut step_by_step: Vec<ManifestEntry> = plan
            .base
            .iter()
            .filter(|x| !plan.delete.contains(&x.id()))
            .cloned()
            .collect();
        for s in &staged {
            step_by_step.retain(|x| x.id() != s.id());
            step_by_step.push(s.clone());
        }
        assert_eq!(step_by_step, vec![e(3), e(4), again, e(2)]);
        assert_eq!(predicted_entries(&plan, staged), step_by_step);
    }
}
