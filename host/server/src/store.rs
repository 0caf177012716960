//! The signer's database, behind one API ([`Store`]) over two backends: SQLite (embedded, the
//! default; `sqlite.rs`) and PostgreSQL (to scale out; `postgres.rs`), with one schema
//! (`schema.rs`). The rest is split by job: why a call failed and its HTTP mapping
//! (`error.rs`), the rows and answers handed out (`rows.rs`), the backend seam (`tx.rs`), the
//! message flow of reload, collect and completion (`reload.rs`), and the store as a
//! `GrantSigner` (`signer.rs`); this file holds opening, imports and operator actions.
//!
//! Every message is handled in ONE database transaction: load and lock the module's row, run
//! simkit-core's policy, debit through the financial authority with idempotency key
//! (module id, N), store the record, commit — and only then are the grant bytes returned. The
//! policy and the order of these steps live here, once; a backend only supplies the SQL of each
//! step (the `Tx` trait) and the transaction around them.
//!
//! **Concurrency.** On SQLite the transaction is `BEGIN IMMEDIATE`: one writer at a time per
//! database file. On PostgreSQL it is READ COMMITTED with `SELECT … FOR UPDATE` on the module's
//! row, so two requests for one module — from this process or from any other `simkit serve`
//! sharing the database — take turns, and the second sees what the first committed (the stored
//! grant, answered byte for byte); requests for different modules run in parallel. The ledger's
//! `UNIQUE (module_id, n)` is the backstop: even a bug in the locking could not debit twice.
//! A transaction PostgreSQL aborts to resolve a race (serialization failure, deadlock) is run
//! again from the start, at most [`MAX_ATTEMPTS`] times.
//!
//! **Threading.** The store is synchronous and blocking: call it from a blocking thread (the
//! HTTP layer uses `tokio::task::spawn_blocking`), never directly from an async task — the
//! PostgreSQL client drives its own small runtime and refuses to run inside another.
//!
//! **Financial authority.** The built-in one ([`Store`]'s private `debit`) is a separate step
//! called from exactly one place in [`Store::reload`], with the (module id, N) key; a webhook
//! authority replaces that one call.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use simkit_core::credit::message::ReloadRequest;
use simkit_core::credit::registration::{Registration, RegistrationError};
use simkit_core::credit::server::{self, DebitOutcome, FraudEvent, Rejection, ServerRecord};
use simkit_core::credit::{Limits, ModuleId};

use crate::authority::Authority;
use crate::keys::{KeySource, ModuleMacKeys};

mod error;
mod postgres;
mod reload;
mod rows;
pub(crate) mod schema;
mod signer;
mod sqlite;
mod tx;

pub use self::error::StoreError;
pub use self::postgres::PgOptions;
pub use self::rows::{Answer, Completion, FraudRow, LedgerEntry, ModuleView};
pub use self::signer::SignerError;
pub(crate) use self::tx::{Mode, Tx};

/// How many times a transaction aborted by a race (see [`StoreError::is_retryable`]) is run.
pub const MAX_ATTEMPTS: u32 = 8;

/// The account the ledger credits for every reload: the issuer's float. Its balance is its
/// stored balance plus the ledger's credits, summed when read, so no grant writes its row.
pub const FLOAT_ACCOUNT: &str = "float";

/// A rejection the transaction registered (and committed), with the fraud event it logged.
type Registered = (Rejection, Option<FraudEvent>);

/// The database behind a [`Store`].
enum Db {
    Sqlite(sqlite::SqliteDb),
    Postgres(Box<postgres::PgDb>),
}

/// The signer's database and master key.
pub struct Store {
    db: Db,
    keys: Box<dyn KeySource>,
    authority: Authority,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.db {
            Db::Sqlite(d) => f.debug_struct("Store").field("sqlite", &d.path()).finish(),
            Db::Postgres(d) => f
                .debug_struct("Store")
                .field("postgres", &d.describe())
                .finish(),
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn id_hex(id: &ModuleId) -> String {
    hex::encode_upper(id)
}

/// The longest account id (bytes) `POST /v1/modules` accepts.
pub const ACCOUNT_ID_MAX: usize = 64;

/// The longest server address (bytes) of a registration record (credit-module.md §2).
pub const SERVER_ADDRESS_MAX: usize = 64;

/// An account id is 1..=[`ACCOUNT_ID_MAX`] visible ASCII characters (`!` to `~`), and not the
/// float's.
fn check_account_id(account_id: &str) -> Result<(), StoreError> {
    if account_id == FLOAT_ACCOUNT {
        return Err(StoreError::BadInput(format!(
            "account_id {FLOAT_ACCOUNT:?} is the issuer's float and cannot take a module"
        )));
    }
    if account_id.is_empty() || account_id.len() > ACCOUNT_ID_MAX {
        return Err(StoreError::BadInput(format!(
            "account_id must be 1 to {ACCOUNT_ID_MAX} characters, got {}",
            account_id.len()
        )));
    }
    if let Some(c) = account_id.chars().find(|c| !matches!(c, '!'..='~')) {
        return Err(StoreError::BadInput(format!(
            "account_id may hold only visible ASCII characters (! to ~), got {c:?}"
        )));
    }
    Ok(())
}

/// The registration record's own ranges (server-api.md, "The registration record";
/// credit-module.md §2, §3.6), checked in the documented order before its key check values.
fn check_registration_fields(r: &Registration) -> Result<(), StoreError> {
    if r.format != simkit_core::credit::registration::REGISTRATION_FORMAT {
        return Err(RegistrationError::Format(r.format.clone()).into());
    }
    r.limits.validate().map_err(RegistrationError::Limits)?;
    if r.fraud_threshold == 0 {
        return Err(StoreError::RegistrationField(
            "fraud_threshold must be 1 to 65535, got 0".into(),
        ));
    }
    let (lower, upper) = (-i64::from(r.limits.credit_line), i64::from(r.limits.upper));
    let balance = i64::from(r.initial_balance);
    if balance < lower || balance > upper {
        return Err(StoreError::RegistrationField(format!(
            "initial_balance {balance} is outside [-L, U] = [{lower}, {upper}]"
        )));
    }
    if r.server_address.len() > SERVER_ADDRESS_MAX {
        return Err(StoreError::RegistrationField(format!(
            "server_address is {} bytes; at most {SERVER_ADDRESS_MAX}",
            r.server_address.len()
        )));
    }
    Ok(())
}

/// Whether a request of this record waits for a debit the external authority has answered
/// `pending` (its request kept, still fresh: N = S).
fn debit_pending(record: &ServerRecord) -> Option<u32> {
    record
        .pending_request
        .and_then(|b| ReloadRequest::parse(&b).ok())
        .map(|q| q.n)
        .filter(|n| *n == record.s)
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`, switches it to WAL mode and
    /// runs the migrations it lacks.
    pub fn open(path: &Path, keys: Box<dyn KeySource>) -> Result<Self, StoreError> {
        Ok(Store {
            db: Db::Sqlite(sqlite::SqliteDb::open(path)?),
            keys,
            authority: Authority::BuiltIn,
        })
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://…` or `postgresql://…`, or a
    /// libpq key=value string), with a pool of `options.pool_size` connections, and runs the
    /// migrations it lacks (under an advisory lock, so processes starting together migrate once).
    pub fn open_postgres(
        url: &str,
        options: PgOptions,
        keys: Box<dyn KeySource>,
    ) -> Result<Self, StoreError> {
        Ok(Store {
            db: Db::Postgres(Box::new(postgres::PgDb::open(url, options)?)),
            keys,
            authority: Authority::BuiltIn,
        })
    }

    /// Opens the database a `--db` URL names: `sqlite:PATH` (also `sqlite://PATH`) or
    /// `postgres://…` / `postgresql://…` (default pool options).
    pub fn open_url(url: &str, keys: Box<dyn KeySource>) -> Result<Self, StoreError> {
        Self::open_url_with(url, PgOptions::default(), keys)
    }

    /// [`Store::open_url`] with the PostgreSQL pool options (ignored for SQLite).
    pub fn open_url_with(
        url: &str,
        options: PgOptions,
        keys: Box<dyn KeySource>,
    ) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::open_postgres(url, options, keys);
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                StoreError::BadUrl(format!(
                    "{:?}: expected sqlite:PATH or postgres://…",
                    postgres::redact(url)
                ))
            })?;
        if path.is_empty() {
            return Err(StoreError::BadUrl(format!("{url:?}: the path is empty")));
        }
        Self::open(Path::new(path), keys)
    }

    /// The database, for logs: the SQLite path or the PostgreSQL URL without its password.
    pub fn describe(&self) -> String {
        match &self.db {
            Db::Sqlite(d) => format!("sqlite:{}", d.path().display()),
            Db::Postgres(d) => d.describe(),
        }
    }

    /// Runs `f` in one transaction: committed when `f` returns `Ok`, rolled back when it returns
    /// `Err`. A transaction the database aborted to resolve a race is run again (from a fresh
    /// read), at most [`MAX_ATTEMPTS`] times, with a short growing pause.
    fn transact<T>(
        &self,
        mode: Mode,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut attempt = 1;
        loop {
            let result = match &self.db {
                Db::Sqlite(d) => d.transact(mode, &mut f),
                Db::Postgres(d) => d.transact(&mut f),
            };
            match result {
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    std::thread::sleep(Duration::from_millis(u64::from(attempt) * 5));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.transact(Mode::Read, |tx| tx.schema_version())
    }

    /// The master key source (for logging its check values).
    pub fn key_source(&self) -> &dyn KeySource {
        self.keys.as_ref()
    }

    fn module_keys(&self, record: &ServerRecord) -> Result<ModuleMacKeys, StoreError> {
        Ok(self.keys.module_keys(record.profile, &record.module_id)?)
    }

    /// Imports a registration record (refused unless its KCVs match this server's master key),
    /// creating `account_id` with `initial_funds` if it does not exist (adding them if it does).
    pub fn import(
        &self,
        registration: &Registration,
        account_id: &str,
        initial_funds: i64,
    ) -> Result<ServerRecord, StoreError> {
        self.import_many(&[(registration.clone(), account_id.to_owned(), initial_funds)])?;
        Ok(registration.server_record())
    }

    /// Imports many registration records in **one** transaction — the bulk path for operators
    /// (and `simkit server bench --bulk-import`) where one HTTP import per module would take
    /// hours for a million modules. Each item is (registration, account id, initial funds) and
    /// is checked exactly as [`Store::import`] checks one (KCVs against this server's key,
    /// account id, funds) before anything is written; if any module is already registered,
    /// nothing of the batch is stored. Returns how many were imported.
    ///
    /// The funds the signer holds — every account plus the float — never exceed 2^63−1
    /// (`i64::MAX`): an import that would pass it is refused with
    /// [`StoreError::FundsOverflow`] and stores nothing, so no balance (and no sum of them the
    /// float's balance is read as) can overflow.
    pub fn import_many(&self, items: &[(Registration, String, i64)]) -> Result<usize, StoreError> {
        let mut rows = Vec::with_capacity(items.len());
        for (registration, account_id, initial_funds) in items {
            check_account_id(account_id)?;
            if *initial_funds < 0 {
                return Err(StoreError::BadInput(format!(
                    "initial_funds must be ≥ 0, got {initial_funds}"
                )));
            }
            check_registration_fields(registration)?;
            self.keys.check_registration(registration)?;
            rows.push((
                id_hex(&registration.module_id),
                serde_json::to_string(registration)?,
                serde_json::to_string(&registration.server_record())?,
                account_id.as_str(),
                *initial_funds,
            ));
        }
        self.transact(Mode::Write, |tx| {
            let mut total = tx.total_funds()?;
            for (id, registration_json, record_json, account_id, funds) in &rows {
                total = total.and_then(|t| t.checked_add(*funds));
                if total.is_none() {
                    return Err(StoreError::FundsOverflow {
                        account: (*account_id).to_owned(),
                        funds: *funds,
                    });
                }
                tx.add_funds(account_id, *funds)?;
                if !tx.insert_module(id, registration_json, record_json, account_id)? {
                    return Err(StoreError::AlreadyRegistered(id.clone()));
                }
            }
            Ok(rows.len())
        })
    }

    /// The record and account of the module a message names; unknown → the policy's 404.
    fn load_named(
        tx: &mut dyn Tx,
        id: &str,
        module_id: ModuleId,
    ) -> Result<(ServerRecord, String), StoreError> {
        Self::load(tx, id)?.ok_or(StoreError::Rejected(Rejection::UnknownModule(module_id)))
    }

    fn load(tx: &mut dyn Tx, id: &str) -> Result<Option<(ServerRecord, String)>, StoreError> {
        match tx.module_for_update(id)? {
            None => Ok(None),
            Some((json, account)) => Ok(Some((serde_json::from_str(&json)?, account))),
        }
    }

    fn save(tx: &mut dyn Tx, record: &ServerRecord) -> Result<(), StoreError> {
        tx.update_record(&id_hex(&record.module_id), &serde_json::to_string(record)?)
    }

    fn log_fraud(tx: &mut dyn Tx, id: &ModuleId, e: &FraudEvent) -> Result<(), StoreError> {
        let kind = serde_json::to_value(e.kind)?;
        tx.insert_fraud(&FraudRow {
            module_id: id_hex(id),
            kind: kind.as_str().unwrap_or("unknown").to_owned(),
            n: e.carried,
            s: e.s,
            failure_count: e.failure_count,
            blocked: e.blocked,
            at: now(),
        })
    }

    /// The built-in financial authority: debits `account` by `amount` for (module, n), once.
    /// Runs inside the request's transaction, after the module's row is locked.
    fn debit(
        tx: &mut dyn Tx,
        id: &ModuleId,
        n: u32,
        account: &str,
        amount: u32,
    ) -> Result<DebitOutcome, StoreError> {
        let id = id_hex(id);
        if let Some(a) = tx.ledger_amount(&id, n)? {
            // Idempotency: this (module, N) was debited already; never twice.
            return Ok(DebitOutcome::Debited { amount: a });
        }
        if !tx.take_funds(account, amount)? {
            return Ok(DebitOutcome::InsufficientFunds);
        }
        // The credit side is the ledger row itself: the float's balance is its stored balance
        // plus the ledger's credits, summed when read (schema migration 2). Writing the float's
        // row here would make every grant of every module queue for that one row lock.
        tx.insert_ledger(&LedgerEntry {
            module_id: id,
            n,
            debit_account: account.to_owned(),
            credit_account: FLOAT_ACCOUNT.to_owned(),
            amount,
            at: now(),
        })?;
        Ok(DebitOutcome::Debited { amount })
    }

    /// Registers a rejection in `record` (and the fraud log), to be committed.
    fn register(
        tx: &mut dyn Tx,
        mut record: ServerRecord,
        rejection: Rejection,
    ) -> Result<Registered, StoreError> {
        let event = server::register_rejection(&mut record, &rejection);
        if let Some(e) = &event {
            Self::log_fraud(tx, &record.module_id, e)?;
        }
        Self::save(tx, &record)?;
        Ok((rejection, event))
    }

    /// Uses `authority` for debits instead of the built-in ledger (see [`crate::authority`]
    /// for how an external authority is called between two transactions).
    pub fn with_authority(mut self, authority: Authority) -> Self {
        self.authority = authority;
        self
    }

    fn parse_id(id: &str) -> Result<ModuleId, StoreError> {
        let mut out = [0u8; 8];
        hex::decode_to_slice(id, &mut out)
            .map_err(|_| StoreError::BadInput(format!("{id:?} is not an 8-byte hex module id")))?;
        Ok(out)
    }

    /// Applies an operator action to a module's record in one transaction.
    /// Nothing is stored when `f` fails.
    fn operate<T>(
        &self,
        id: &str,
        f: impl Fn(&Self, &mut ServerRecord) -> Result<T, StoreError>,
    ) -> Result<(ServerRecord, T), StoreError> {
        let id = id_hex(&Self::parse_id(id)?);
        self.transact(Mode::Write, |tx| {
            let (mut record, _) =
                Self::load(tx, &id)?.ok_or_else(|| StoreError::NoSuchModule(id.clone()))?;
            let out = f(self, &mut record)?;
            Self::save(tx, &record)?;
            Ok((record, out))
        })
    }

    /// Operator unblock (simkit-core's `unblock`).
    pub fn unblock(&self, id: &str) -> Result<ServerRecord, StoreError> {
        self.operate(id, |_, r| {
            server::unblock(r);
            Ok(())
        })
        .map(|(r, ())| r)
    }

    /// Operator resynchronisation to the module's N (simkit-core's `resynchronise`), forward
    /// only: `module_n > S` moves S; `module_n <= S` is refused with
    /// [`StoreError::ResyncNotForward`] and changes nothing — a lower S would make an
    /// already-answered request fresh again, granted and debited for a module that can never
    /// apply it, and at `module_n = S` the refusal keeps the last request and grant, so the
    /// module's honest resend is still answered.
    ///
    /// A move while a debit is pending at the authority is refused with
    /// [`StoreError::DebitPending`]: the pending request would fall out of the window, and the
    /// debit the bank accepted for it would never become a grant. An operator who has settled
    /// that debit with the bank uses [`Store::resync_abandoning_pending`].
    pub fn resync(&self, id: &str, module_n: u32) -> Result<ServerRecord, StoreError> {
        self.resync_with(id, module_n, false)
    }

    /// [`Store::resync`] that, when it moves S, also drops a request whose debit is pending at
    /// the authority (`"abandon_pending": true`): the escape for a bank that never settles. The
    /// signer will never collect that debit; the bank must cancel or reverse it by its key.
    pub fn resync_abandoning_pending(
        &self,
        id: &str,
        module_n: u32,
    ) -> Result<ServerRecord, StoreError> {
        self.resync_with(id, module_n, true)
    }

    fn resync_with(
        &self,
        id: &str,
        module_n: u32,
        abandon_pending: bool,
    ) -> Result<ServerRecord, StoreError> {
        self.operate(id, |_, r| {
            if module_n <= r.s {
                return Err(StoreError::ResyncNotForward {
                    n: module_n,
                    s: r.s,
                });
            }
            if let Some(n) = debit_pending(r).filter(|_| !abandon_pending) {
                return Err(StoreError::DebitPending { n });
            }
            server::resynchronise(r, module_n);
            r.pending_request = None;
            Ok(())
        })
        .map(|(r, ())| r)
    }

    /// Issues a limit update (simkit-core's `build_limit_update`): the 39 bytes to send to the
    /// module, and the record with the new limits in flight.
    pub fn limit_update(
        &self,
        id: &str,
        limits: Limits,
    ) -> Result<(ServerRecord, Vec<u8>), StoreError> {
        self.operate(id, |s, r| {
            // A debit pending at the authority was decided with the limits in force; changing
            // them now would make the collected grant disagree with what the bank accepted.
            if let Some(n) = debit_pending(r) {
                return Err(StoreError::DebitPending { n });
            }
            let keys = s.module_keys(r)?;
            Ok(server::build_limit_update(r, limits, &keys.grant)?.to_vec())
        })
    }

    /// Records the limit sequence the module reports (simkit-core's `confirm_limit_update`).
    /// Refused with [`StoreError::DebitPending`] when it would change the limits grants are
    /// decided with while a debit is pending (see [`Store::limit_update`]).
    pub fn confirm_limits(&self, id: &str, sequence: u32) -> Result<ServerRecord, StoreError> {
        self.operate(id, |_, r| {
            let takes_effect = r.limits_in_flight.is_some() && sequence >= r.limit_sequence;
            if let Some(n) = debit_pending(r).filter(|_| takes_effect) {
                return Err(StoreError::DebitPending { n });
            }
            server::confirm_limit_update(r, sequence);
            Ok(())
        })
        .map(|(r, ())| r)
    }

    /// A module's registration, record and account.
    pub fn module(&self, id: &str) -> Result<ModuleView, StoreError> {
        let id = id_hex(&Self::parse_id(id)?);
        let row = self.transact(Mode::Read, |tx| tx.module_view(&id))?;
        let (reg, rec, account_id, account_balance) =
            row.ok_or_else(|| StoreError::NoSuchModule(id.clone()))?;
        Ok(ModuleView {
            registration: serde_json::from_str(&reg)?,
            record: serde_json::from_str(&rec)?,
            account_id,
            account_balance,
        })
    }

    /// The balance of an account, if it exists.
    pub fn account_balance(&self, id: &str) -> Result<Option<i64>, StoreError> {
        self.transact(Mode::Read, |tx| tx.account_balance(id))
    }

    /// The whole ledger, oldest first.
    pub fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        self.transact(Mode::Read, |tx| tx.ledger())
    }

    /// The whole fraud log, oldest first.
    pub fn fraud_log(&self) -> Result<Vec<FraudRow>, StoreError> {
        self.transact(Mode::Read, |tx| tx.fraud_log())
    }
}
