//! §6.2 The push procedure of the backup client: the plan of a backup against the card's
//! manifest, and the pipelined engine that runs it (batches of record commands, WRITE RECORDS
//! packs, re-sends after `9D03`, the predicted table checked by a verified COMMIT).
//!
//! It must not touch files (record data comes in through the caller's closure) and must not
//! send anything but the one-command-per-APDU methods' bytes of [`BackupClient`].

use super::*;

impl<'c, C: Card> BackupClient<'c, C> {
    /// §6.2 The plan of a backup of `local` against the card's manifest: full when `full` is
    /// asked or the store is empty, otherwise incremental (new and changed records sent,
    /// removed ones deleted). A full plan asked for needs nothing from the card: the manifest is
    /// not read.
    ///
    /// # Errors
    /// [`BackupClientError::Request`] for a bad local tree (duplicate id, record too large),
    /// and those of [`manifest`](Self::manifest).
    pub fn plan_push(
        &mut self,
        local: &[LocalRecord],
        full: bool,
    ) -> Result<PushPlan, BackupClientError> {
        let card = if full { None } else { self.manifest()? };
        Self::plan_against(local, full, card)
    }

    /// [`plan_push`](Self::plan_push) reading the card's manifest through
    /// [`manifest_cached`](Self::manifest_cached): a kept copy saves the manifest read.
    ///
    /// # Errors
    /// Those of [`plan_push`](Self::plan_push) and [`manifest_cached`](Self::manifest_cached).
    pub fn plan_push_cached(
        &mut self,
        local: &[LocalRecord],
        full: bool,
        cache: &mut dyn FnMut(&ManifestDigest) -> Option<Vec<ManifestEntry>>,
    ) -> Result<PushPlan, BackupClientError> {
        let card = if full {
            None
        } else {
            self.manifest_cached(cache)?
        };
        Self::plan_against(local, full, card)
    }

    fn plan_against(
        local: &[LocalRecord],
        full: bool,
        card: Option<CardManifest>,
    ) -> Result<PushPlan, BackupClientError> {
        let expected = local_manifest(local)?;
        match card {
            Some(card) if !full => {
                let plan = incremental_plan(local, &card.manifest)?;
                Ok(PushPlan {
                    kind: SessionKind::Incremental {
                        base_generation: card.generation,
                    },
                    send: plan.send,
                    delete: plan.delete,
                    unchanged: plan.unchanged.len(),
                    expected,
                    base: card.entries,
                })
            }
            _ => Ok(PushPlan {
                kind: SessionKind::Full,
                send: expected.entries().to_vec(),
                delete: Vec::new(),
                unchanged: 0,
                expected,
                base: Vec::new(),
            }),
        }
    }

    /// §6.2 Runs a plan: BEGIN SESSION, DELETE RECORD for each removed record, each record to
    /// send, COMMIT. `source` gives a record's data; `progress` gets record bytes as the card
    /// accepts them. Returns the new generation number, or `None` when the plan needs no
    /// session.
    ///
    /// The record commands are pipelined ([`Channel::transmit_batch`], at most
    /// [`PIPELINE_APDUS`] commands or [`PIPELINE_BYTES`] per batch) and every status word is
    /// checked in order. A record the card refuses with `9D03` (its data changed while being
    /// sent) is re-read and sent again with the length and SHA-256 of what was re-read, at
    /// most [`MAX_RESENDS`] times; a record whose data is not as long as planned is treated the
    /// same way. Any other refusal stops the push with [`BackupClientError::RecordRefused`]
    /// naming the record, the command and its status word. COMMIT goes only after every record
    /// was accepted; on any error after BEGIN SESSION the session is aborted, so the card keeps
    /// its previous generation.
    ///
    /// # Errors
    /// [`BackupClientError::Source`] when `source` fails, [`BackupClientError::LocalChanged`],
    /// [`BackupClientError::RecordRefused`] (`9D02` capacity, `9D06` too many records, …), the
    /// card's refusals of BEGIN SESSION (`6985`: the card's generation moved since the plan was
    /// made) and COMMIT.
    pub fn push(
        &mut self,
        plan: &PushPlan,
        source: &mut dyn FnMut(&ManifestEntry) -> io::Result<Vec<u8>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Option<u32>, BackupClientError> {
        if !plan.needs_session() {
            return Ok(None);
        }
        self.pushed = None;
        let result = if self.packs() {
            self.push_packed_retrying(plan, source, progress)
        } else {
            self.push_in_session(plan, source, progress)
        };
        match result {
            Ok((generation, entries)) => {
                self.pushed =
                    Manifest::from_entries(entries.iter().cloned())
                        .ok()
                        .map(|manifest| CardManifest {
                            generation,
                            entries,
                            manifest,
                        });
                Ok(Some(generation))
            }
            Err(e) => {
                // 9D02 / 9D06 already ended the session (9D01 then), a refused BEGIN SESSION
                // never opened one; the first error is the news. After a BEGIN SESSION refused
                // with 9D04 this discards whatever the pipelined records staged in the session
                // that was open.
                let _ = self.abort();
                Err(e)
            }
        }
    }

    /// The revision-2 push (§6.2): the first attempt trusts the plan's digests (the card checks
    /// every byte); if the card finds a record whose data changed since it was hashed (`9D03`,
    /// which ended the session or left the verified COMMIT refused), the session is aborted and
    /// the push runs once more hashing every record as it is read, so what is declared is what
    /// is sent.
    fn push_packed_retrying(
        &mut self,
        plan: &PushPlan,
        source: &mut dyn FnMut(&ManifestEntry) -> io::Result<Vec<u8>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(u32, Vec<ManifestEntry>), BackupClientError> {
        let mut reported = 0u64;
        let first = self.push_packed(
            plan,
            source,
            &mut |n| {
                reported += n;
                progress(n);
            },
            false,
        );
        match first {
            Err(e) if e.sw() == Some(Sw::DigestMismatch) => {
                let _ = self.abort();
                // The bytes the first attempt already reported are sent again: report only what
                // goes beyond them, so the progress bar neither stalls nor passes 100 %.
                let mut skip = reported;
                self.push_packed(
                    plan,
                    source,
                    &mut |n| {
                        let skipped = n.min(skip);
                        skip -= skipped;
                        if n > skipped {
                            progress(n - skipped);
                        }
                    },
                    true,
                )
            }
            other => other,
        }
    }

    /// One revision-2 session: BEGIN SESSION, DELETE RECORDs, the records packed into WRITE
    /// RECORDS (a record too large for one APDU by itself goes as BEGIN RECORD / WRITE DATA /
    /// END RECORD), and a verified COMMIT carrying the digest of the table this builds — all
    /// pipelined: if anything before it is refused, the card refuses COMMIT too (§5.12).
    /// Returns the generation and the table it committed.
    fn push_packed(
        &mut self,
        plan: &PushPlan,
        source: &mut dyn FnMut(&ManifestEntry) -> io::Result<Vec<u8>>,
        progress: &mut dyn FnMut(u64),
        rehash: bool,
    ) -> Result<(u32, Vec<ManifestEntry>), BackupClientError> {
        let mut batch = Batch {
            strict: true,
            ..Batch::default()
        };
        batch.push(commands::begin_session(plan.kind), Step::Session, 0);
        for id in &plan.delete {
            batch.push(commands::delete_record(id), Step::Delete(id.clone()), 0);
            if batch.full() {
                self.run_batch(&mut batch, progress)?;
            }
        }
        let limit = self.transport.max_command_data;
        let mut order = Vec::with_capacity(plan.send.len());
        let mut pack = Pack::default();
        for planned in &plan.send {
            let data = read_source(source, planned)?;
            let entry = if rehash || data.len() as u64 != u64::from(planned.length) {
                ManifestEntry::for_data(planned.category, planned.name.clone(), &data)?
            } else {
                planned.clone()
            };
            let need = usize::try_from(commands::write_records_len(&entry)).unwrap_or(usize::MAX);
            if pack.len + need > limit {
                self.flush_pack(&mut batch, &mut pack, progress)?;
            }
            if need > limit {
                let (mut staged, mut resend) = (Vec::new(), Vec::new());
                self.queue_record(
                    &mut batch,
                    &entry,
                    &data,
                    progress,
                    &mut staged,
                    &mut resend,
                )?;
            } else {
                pack.len += need;
                pack.records.push((entry.clone(), data));
            }
            order.push(entry);
        }
        self.flush_pack(&mut batch, &mut pack, progress)?;
        let table = predicted_entries(plan, order);
        batch.push(
            commands::commit_verified(&table_digest(&table)),
            Step::Commit,
            0,
        );
        let outcome = self.run_batch(&mut batch, progress)?;
        match outcome.generation {
            Some(generation) => Ok((generation, table)),
            // run_batch saw COMMIT answered 9000 with 4 bytes or failed: cannot happen.
            None => Err(CardError::UnexpectedResponse {
                command: "COMMIT",
                expected: "4",
                got: 0,
            }
            .into()),
        }
    }

    /// Moves the records gathered in `pack` into one WRITE RECORDS in `batch`.
    fn flush_pack(
        &mut self,
        batch: &mut Batch,
        pack: &mut Pack,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), BackupClientError> {
        if pack.records.is_empty() {
            return Ok(());
        }
        let records = std::mem::take(&mut pack.records);
        pack.len = 0;
        let cmd = commands::write_records(records.iter().map(|(e, d)| (e, d.as_slice())))?;
        let bytes = records.iter().map(|(e, _)| u64::from(e.length)).sum();
        let ids = records.into_iter().map(|(e, _)| e.id()).collect();
        batch.push(cmd, Step::Pack(ids), bytes);
        if batch.full() {
            self.run_batch(batch, progress)?;
        }
        Ok(())
    }

    /// Deletes, records, COMMIT; returns the generation and the table it committed (§3.4
    /// order, from the records in the order the card staged them).
    fn push_in_session(
        &mut self,
        plan: &PushPlan,
        source: &mut dyn FnMut(&ManifestEntry) -> io::Result<Vec<u8>>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(u32, Vec<ManifestEntry>), BackupClientError> {
        // BEGIN SESSION has no Le: it goes in the first batch, ahead of the records; if the
        // card refuses it, everything behind it is refused too (9D01) and nothing commits.
        let mut batch = Batch::default();
        batch.push(commands::begin_session(plan.kind), Step::Session, 0);
        for id in &plan.delete {
            batch.push(commands::delete_record(id), Step::Delete(id.clone()), 0);
            if batch.full() {
                self.run_batch(&mut batch, progress)?;
            }
        }

        let mut staged = Vec::with_capacity(plan.send.len());
        let mut resend = Vec::new();
        for entry in &plan.send {
            let data = read_source(source, entry)?;
            if data.len() as u64 == u64::from(entry.length) {
                self.queue_record(&mut batch, entry, &data, progress, &mut staged, &mut resend)?;
            } else {
                // Changed since it was hashed: send what is there now, like after a 9D03.
                resend.push(entry.clone());
            }
        }
        self.run_batch(&mut batch, progress)?
            .collect_into(&mut staged, &mut resend);

        // §6.2 step 4: re-read, re-hash, send again; a bounded number of rounds.
        for _ in 0..MAX_RESENDS {
            if resend.is_empty() {
                break;
            }
            for entry in std::mem::take(&mut resend) {
                let data = read_source(source, &entry)?;
                let fresh = ManifestEntry::for_data(entry.category, entry.name.clone(), &data)?;
                self.queue_record(
                    &mut batch,
                    &fresh,
                    &data,
                    &mut |_| {},
                    &mut staged,
                    &mut resend,
                )?;
            }
            self.run_batch(&mut batch, &mut |_| {})?
                .collect_into(&mut staged, &mut resend);
        }
        if let Some(entry) = resend.first() {
            return Err(BackupClientError::LocalChanged(entry.id()));
        }
        Ok((self.commit()?, predicted_entries(plan, staged)))
    }

    /// Adds one record's commands to `batch`, running the batch whenever it is full.
    fn queue_record(
        &mut self,
        batch: &mut Batch,
        entry: &ManifestEntry,
        data: &[u8],
        progress: &mut dyn FnMut(u64),
        staged: &mut Vec<ManifestEntry>,
        resend: &mut Vec<ManifestEntry>,
    ) -> Result<(), BackupClientError> {
        batch.push(commands::begin_record(entry), Step::Begin(entry.id()), 0);
        for chunk in write_plan(entry.length, &self.transport)? {
            let mut cmds = commands::write_chunk(&chunk, data)?;
            if cmds.len() > 1 {
                // A chain (§7, short APDUs): each piece needs the previous one's 9000, or the
                // card would read the next piece as a fresh WRITE DATA. Everything before it is
                // answered first, then the pieces go one by one.
                self.run_batch(batch, progress)?
                    .collect_into(staged, resend);
                for piece in &cmds {
                    let answer = self.channel.transmit(piece)?;
                    if answer.sw != Sw::Success || !answer.data.is_empty() {
                        return Err(refused(Step::Write(entry.id()), piece, &answer));
                    }
                }
                progress(u64::from(chunk.len));
                continue;
            }
            if let Some(cmd) = cmds.pop() {
                batch.push(cmd, Step::Write(entry.id()), u64::from(chunk.len));
            }
            if batch.full() {
                self.run_batch(batch, progress)?
                    .collect_into(staged, resend);
            }
        }
        batch.push(commands::end_record(), Step::End(entry.clone()), 0);
        if batch.full() {
            self.run_batch(batch, progress)?
                .collect_into(staged, resend);
        }
        Ok(())
    }

    /// Sends the batch and checks every answer in order: `9000` goes on (progress, staged
    /// records), `9D03` to END RECORD marks the record for re-sending (the card discarded it;
    /// the session goes on), anything else is the error.
    fn run_batch(
        &mut self,
        batch: &mut Batch,
        progress: &mut dyn FnMut(u64),
    ) -> Result<BatchOutcome, BackupClientError> {
        let mut outcome = BatchOutcome::default();
        if batch.cmds.is_empty() {
            return Ok(outcome);
        }
        let cmds = std::mem::take(&mut batch.cmds);
        let steps = std::mem::take(&mut batch.steps);
        batch.bytes = 0;
        let answers = self.channel.transmit_batch(&cmds)?;
        for ((cmd, (step, n)), answer) in cmds.iter().zip(steps).zip(answers) {
            match (answer.sw, step) {
                (Sw::Success, Step::End(entry)) if answer.data.is_empty() => {
                    outcome.staged.push(entry);
                }
                (Sw::Success, Step::Commit) => {
                    let generation = commands::parse_commit_response(&answer.data)
                        .map_err(|e| malformed(cmd, e))?;
                    outcome.generation = Some(generation);
                }
                (Sw::Success, _) if answer.data.is_empty() => progress(n),
                (Sw::DigestMismatch, Step::End(entry)) if !batch.strict => {
                    outcome.resend.push(entry);
                }
                (_, step) => return Err(refused(step, cmd, &answer)),
            }
        }
        Ok(outcome)
    }
}

/// What a batched command belongs to.
#[derive(Debug)]
enum Step {
    Session,
    Delete(RecordId),
    Begin(RecordId),
    Write(RecordId),
    End(ManifestEntry),
    /// WRITE RECORDS and the records it carries.
    Pack(Vec<RecordId>),
    /// The verified COMMIT ending a pipelined session.
    Commit,
}

/// Records gathered for one WRITE RECORDS, and the bytes they take in its data field.
#[derive(Debug, Default)]
struct Pack {
    records: Vec<(ManifestEntry, Vec<u8>)>,
    len: usize,
}

/// Commands waiting to be sent together, each with its step and the record bytes it carries
/// (reported as progress once accepted).
#[derive(Debug, Default)]
struct Batch {
    cmds: Vec<Command>,
    steps: Vec<(Step, u64)>,
    bytes: usize,
    /// Revision-2 push: `9D03` to END RECORD is an error like any other (the verified COMMIT
    /// behind it would be refused), not a record to re-send in the same session.
    strict: bool,
}

impl Batch {
    fn push(&mut self, cmd: Command, step: Step, progress: u64) {
        self.bytes += cmd.data.len() + 9;
        self.cmds.push(cmd);
        self.steps.push((step, progress));
    }

    fn full(&self) -> bool {
        self.cmds.len() >= PIPELINE_APDUS || self.bytes >= PIPELINE_BYTES
    }
}

/// The records a batch staged, those the card refused with `9D03`, and the generation a
/// pipelined COMMIT created.
#[derive(Debug, Default)]
struct BatchOutcome {
    staged: Vec<ManifestEntry>,
    resend: Vec<ManifestEntry>,
    generation: Option<u32>,
}

impl BatchOutcome {
    fn collect_into(self, staged: &mut Vec<ManifestEntry>, resend: &mut Vec<ManifestEntry>) {
        staged.extend(self.staged);
        resend.extend(self.resend);
    }
}

fn read_source(
    source: &mut dyn FnMut(&ManifestEntry) -> io::Result<Vec<u8>>,
    entry: &ManifestEntry,
) -> Result<Vec<u8>, BackupClientError> {
    source(entry).map_err(|source| BackupClientError::Source {
        id: entry.id(),
        source,
    })
}

/// The error for a record command answered with anything but a bare `9000`.
fn refused(step: Step, cmd: &Command, answer: &Response) -> BackupClientError {
    let source = if answer.sw == Sw::Success {
        CardError::UnexpectedResponse {
            command: name(cmd.ins),
            expected: "0",
            got: answer.data.len(),
        }
    } else {
        CardError::Status {
            sw: answer.sw,
            command: name(cmd.ins),
        }
    };
    match step {
        Step::Delete(id) | Step::Begin(id) | Step::Write(id) => {
            BackupClientError::RecordRefused { id, source }
        }
        Step::End(entry) => BackupClientError::RecordRefused {
            id: entry.id(),
            source,
        },
        Step::Pack(mut ids) if ids.len() == 1 => match ids.pop() {
            Some(id) => BackupClientError::RecordRefused { id, source },
            None => BackupClientError::Card(source),
        },
        Step::Pack(ids) => {
            let more = ids.len().saturating_sub(1);
            match ids.into_iter().next() {
                Some(first) => BackupClientError::PackRefused {
                    first,
                    more,
                    source,
                },
                None => BackupClientError::Card(source),
            }
        }
        Step::Session | Step::Commit => BackupClientError::Card(source),
    }
}

/// The card's table after a commit of `plan` that staged `staged` in this order (§3.4): a full
/// session's starts empty, an incremental one's as the base without the deleted records; each
/// staged record replaces an entry of its id and is appended. Linear in the table: the base
/// keeps the entries of ids never staged, in order, followed by the staged entries in the order
/// of each id's last staging.
pub(super) fn predicted_entries(plan: &PushPlan, staged: Vec<ManifestEntry>) -> Vec<ManifestEntry> {
    let mut last = HashSet::new();
    let mut appended: Vec<ManifestEntry> = staged
        .into_iter()
        .rev()
        .filter(|e| last.insert(e.id()))
        .collect();
    appended.reverse();
    let mut entries: Vec<ManifestEntry> = match plan.kind {
        SessionKind::Full => Vec::new(),
        SessionKind::Incremental { .. } => {
            let deleted: HashSet<&RecordId> = plan.delete.iter().collect();
            plan.base
                .iter()
                .filter(|e| {
                    let id = e.id();
                    !deleted.contains(&id) && !last.contains(&id)
                })
                .cloned()
                .collect()
        }
    };
    entries.extend(appended);
    entries
}
