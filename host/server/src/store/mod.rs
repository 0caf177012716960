//! The signer's database, behind one API ([`Store`]) over two backends: SQLite (embedded, the
//! default; `sqlite.rs`) and PostgreSQL (to scale out; `postgres.rs`), with one schema
//! (`schema.rs`).
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

use serde::Serialize;
use simkit_core::credit::message::{CompletionAck, GrantStatus, ReloadGrant, ReloadRequest};
use simkit_core::credit::registration::{Registration, RegistrationError};
use simkit_core::credit::server::{
    self, DebitOutcome, FinishError, FraudEvent, FreshDecision, Rejection, RequestAction,
    ServerRecord,
};
use simkit_core::credit::{Limits, ModuleId};
use simkit_core::crypto::CryptoError;

use crate::authority::{Authority, DebitAnswer, DebitKey, DebitRequest};
use crate::keys::{KeyError, KeySource, ModuleMacKeys};

mod postgres;
pub(crate) mod schema;
mod signer;
mod sqlite;

pub use self::postgres::PgOptions;
pub use self::signer::SignerError;

/// How many times a transaction aborted by a race (see [`StoreError::is_retryable`]) is run.
pub const MAX_ATTEMPTS: u32 = 8;

/// The account the ledger credits for every reload: the issuer's float. Its balance is its
/// stored balance plus the ledger's credits, summed when read, so no grant writes its row.
pub const FLOAT_ACCOUNT: &str = "float";

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The policy refused the message (already registered and committed).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The SQLite database failed; nothing was committed.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The PostgreSQL database failed; nothing was committed.
    #[error("database: {0}")]
    Postgres(#[from] ::postgres::Error),
    /// Every connection of the PostgreSQL pool is busy and none came free in time.
    #[error("database: no PostgreSQL connection came free within {0:?}")]
    PoolTimeout(Duration),
    /// The `--db` URL is not one this store understands.
    #[error("database URL {0}")]
    BadUrl(String),
    /// The SQLite database would not switch to WAL; it answered with this journal mode.
    #[error(
        "the SQLite database stays in journal mode {0:?}: simkit needs WAL, which needs a \
         local file system with shared memory and file locks"
    )]
    NoWal(String),
    /// A stored row does not parse.
    #[error("corrupt stored record: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// The database's schema is newer than this program.
    #[error("database schema version {0} is newer than this program's {1}")]
    SchemaTooNew(i64, usize),
    /// The policy refused to build a grant.
    #[error("policy: {0}")]
    Finish(#[from] FinishError),
    /// Key derivation failed.
    #[error("keys: {0}")]
    Crypto(#[from] CryptoError),
    /// The master key is not available.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The registration record does not fit this server's master key, or is invalid.
    #[error("registration refused: {0}")]
    Registration(#[from] RegistrationError),
    /// The module is already registered.
    #[error("module {0} is already registered")]
    AlreadyRegistered(String),
    /// No such module (admin endpoints).
    #[error("unknown module {0}")]
    NoSuchModule(String),
    /// `GET /v1/reload/{module_id}/{n}` for a reload the server neither stored nor holds as
    /// pending.
    #[error("module {module_id} has no stored or pending reload with N = {n}")]
    UnknownReload {
        /// Module id, hex.
        module_id: String,
        /// The N asked for.
        n: u32,
    },
    /// The external financial authority gave no confirmed answer (or the decision changed
    /// while it was asked): nothing was stored; the module retries the same request.
    #[error("the financial authority did not confirm the debit: {0}")]
    AuthorityUnavailable(String),
    /// Bad input to an admin endpoint.
    #[error("{0}")]
    BadInput(String),
    /// A registration record with a field outside its range (server-api.md, "The registration
    /// record"); nothing is stored.
    #[error("registration refused: {0}")]
    RegistrationField(String),
    /// `POST /v1/modules/{id}/resync` with an `n` at or below S: S only moves forward (a lower S
    /// would grant and debit again a request the module can no longer apply).
    #[error(
        "resync to n = {n} refused: the server's S is {s}; resync only moves S forward (n > S) and \
         changed nothing"
    )]
    ResyncNotForward {
        /// The n asked for.
        n: u32,
        /// S.
        s: u32,
    },
    /// Funds that would push an account, or all funds the signer holds, past 2^63−1.
    #[error(
        "adding {funds} to account {account:?} would make the funds held (every account plus the \
         float) exceed 2^63-1; nothing was stored"
    )]
    FundsOverflow {
        /// The account.
        account: String,
        /// The funds asked to add.
        funds: i64,
    },
    /// A limit update (or its confirmation), or a resync moving S, while the financial
    /// authority holds a pending debit for request `n`: the debit was decided with the limits
    /// in force, and changing them (or dropping the request from the window) would make its
    /// grant disagree with what the bank accepted.
    #[error(
        "request {n} has a debit pending at the financial authority; change the limits or S \
         after its grant has been collected"
    )]
    DebitPending {
        /// N of the pending request.
        n: u32,
    },
    /// An authenticated completion ack whose status or G differs from the stored grant's, or
    /// whose balance is above the request's B + G (registered as a window event).
    #[error(
        "completion ack for S' = {n} says {field} = {got}, but the grant the server signed has \
         {expected}"
    )]
    AckMismatch {
        /// N′.
        n: u32,
        /// `status`, `G` or `balance`.
        field: &'static str,
        /// What the ack says.
        got: String,
        /// What the stored grant says.
        expected: String,
    },
}

impl StoreError {
    /// The HTTP status for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            StoreError::Rejected(r) => r.http_status(),
            StoreError::Registration(_) => 422,
            StoreError::AlreadyRegistered(_) => 409,
            StoreError::NoSuchModule(_) | StoreError::UnknownReload { .. } => 404,
            StoreError::BadInput(_) => 400,
            StoreError::RegistrationField(_) | StoreError::FundsOverflow { .. } => 422,
            StoreError::ResyncNotForward { .. }
            | StoreError::DebitPending { .. }
            | StoreError::AckMismatch { .. } => 409,
            StoreError::AuthorityUnavailable(_) => 503,
            // Every pooled connection stayed busy: the server is overloaded, try again later.
            StoreError::PoolTimeout(_) => 503,
            StoreError::Finish(FinishError::InvalidLimits(_)) => 400,
            StoreError::Finish(FinishError::GrantOutstanding | FinishError::SequenceExhausted) => {
                409
            }
            _ => 500,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Rejected(r) => match r {
                Rejection::Malformed(_) => "malformed",
                Rejection::UnknownModule(_) => "unknown-module",
                Rejection::UnknownAlgorithm { .. } => "unknown-algorithm",
                Rejection::Blocked => "blocked",
                Rejection::BadTag { .. } => "bad-tag",
                Rejection::OutOfWindow { .. } => "out-of-window",
                Rejection::ReplayMismatch { .. } => "replay-mismatch",
                Rejection::CounterExhausted => "counter-exhausted",
                Rejection::Crypto(_) => "server-key",
            },
            StoreError::Db(_)
            | StoreError::Postgres(_)
            | StoreError::PoolTimeout(_)
            | StoreError::BadUrl(_)
            | StoreError::NoWal(_) => "database",
            StoreError::Corrupt(_) => "corrupt-record",
            StoreError::SchemaTooNew(..) => "schema",
            StoreError::Finish(FinishError::InvalidLimits(_)) => "invalid-limits",
            StoreError::Finish(FinishError::GrantOutstanding) => "grant-outstanding",
            StoreError::Finish(FinishError::SequenceExhausted) => "sequence-exhausted",
            StoreError::Finish(_) => "policy",
            StoreError::Crypto(_) | StoreError::Key(_) => "server-key",
            StoreError::Registration(_) => "registration-refused",
            StoreError::AlreadyRegistered(_) => "already-registered",
            StoreError::NoSuchModule(_) => "unknown-module",
            StoreError::UnknownReload { .. } => "unknown-reload",
            StoreError::AuthorityUnavailable(_) => "authority-unavailable",
            StoreError::BadInput(_) => "bad-input",
            StoreError::RegistrationField(_) => "registration-refused",
            StoreError::ResyncNotForward { .. } => "resync-not-forward",
            StoreError::FundsOverflow { .. } => "funds-overflow",
            StoreError::DebitPending { .. } => "debit-pending",
            StoreError::AckMismatch { .. } => "ack-mismatch",
        }
    }

    /// Whether this is a database failure (for the metrics).
    pub fn is_db(&self) -> bool {
        matches!(
            self,
            StoreError::Db(_)
                | StoreError::Postgres(_)
                | StoreError::PoolTimeout(_)
                | StoreError::Corrupt(_)
        )
    }

    /// Whether the transaction lost a race the database resolved by aborting it (PostgreSQL
    /// serialization failure or deadlock): running the whole transaction again is safe and may
    /// succeed. SQLite is not retried here: its writers already wait for each other up to the
    /// 30 s busy timeout, and a transaction still busy after that is an overloaded database.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Postgres(e) => e.code().is_some_and(|c| {
                *c == ::postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == ::postgres::error::SqlState::T_R_DEADLOCK_DETECTED
            }),
            _ => false,
        }
    }
}

/// The answer to a reload request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A fresh grant (granted or declined), committed.
    Fresh(Vec<u8>),
    /// The stored grant, resent byte for byte.
    Resent(Vec<u8>),
    /// The external financial authority has not settled the debit yet: a MAC'd provisional
    /// ack (spec §3.4) for request `n`; the grant is collected later with
    /// `GET /v1/reload/{module_id}/{n}` (or by sending the same request again).
    Pending {
        /// The provisional ack bytes.
        provisional_ack: Vec<u8>,
        /// Module id, upper-case hex.
        module_id: String,
        /// The request's N.
        n: u32,
    },
}

impl Answer {
    /// The message bytes: the grant, or the provisional ack.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Answer::Fresh(b) | Answer::Resent(b) => b,
            Answer::Pending {
                provisional_ack, ..
            } => provisional_ack,
        }
    }
}

/// How far the first transaction of a reload got.
enum Step {
    /// Answered (committed, or nothing to commit).
    Done(Answer),
    /// A fresh request whose debit must be asked of the external authority between two
    /// transactions.
    AskAuthority {
        /// G.
        amount: u32,
        /// The module's account.
        account: String,
    },
}

/// A module as the admin API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ModuleView {
    /// The registration record it was imported with.
    pub registration: Registration,
    /// The server's record: S, last request and grant, failure count, state.
    pub record: ServerRecord,
    /// The account reloads are debited from.
    pub account_id: String,
    /// That account's balance.
    pub account_balance: i64,
}

/// One ledger entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    /// Module id, hex.
    pub module_id: String,
    /// The request's N (idempotency key with the module id).
    pub n: u32,
    /// Debited account.
    pub debit_account: String,
    /// Credited account (the float).
    pub credit_account: String,
    /// Amount G.
    pub amount: u32,
    /// Unix seconds.
    pub at: i64,
}

/// One fraud-log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FraudRow {
    /// Module id, hex.
    pub module_id: String,
    /// `bad-tag` or `window`.
    pub kind: String,
    /// The number carried.
    pub n: u32,
    /// S at the time.
    pub s: u32,
    /// Failure count after the event.
    pub failure_count: u32,
    /// Whether the event blocked the module.
    pub blocked: bool,
    /// Unix seconds.
    pub at: i64,
}

/// What a completion ack came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// The first time: the record is now completed through S.
    Accepted,
    /// This ack was accepted before; nothing changed (the appliance retried).
    AlreadyAccepted,
}

/// Whether a transaction writes (SQLite takes its write lock up front for those).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Reads only.
    Read,
    /// Reads and writes.
    Write,
}

/// The steps of the store's transactions, one SQL statement each, in a backend's dialect.
/// Ids are upper-case hex; records and registrations are JSON text.
pub(crate) trait Tx {
    /// The module's record and account, its row locked until the transaction ends.
    fn module_for_update(&mut self, id: &str) -> Result<Option<(String, String)>, StoreError>;
    /// Replaces the module's record.
    fn update_record(&mut self, id: &str, record: &str) -> Result<(), StoreError>;
    /// Creates the account with `funds`, or adds `funds` to it.
    fn add_funds(&mut self, account: &str, funds: i64) -> Result<(), StoreError>;
    /// Inserts a module; `false` (and nothing changed) if it exists.
    fn insert_module(
        &mut self,
        id: &str,
        registration: &str,
        record: &str,
        account: &str,
    ) -> Result<bool, StoreError>;
    /// Appends to the fraud log.
    fn insert_fraud(&mut self, row: &FraudRow) -> Result<(), StoreError>;
    /// The amount already debited for (module, n), if any.
    fn ledger_amount(&mut self, id: &str, n: u32) -> Result<Option<u32>, StoreError>;
    /// Compare-and-set: takes `amount` from `account` if its balance covers it.
    fn take_funds(&mut self, account: &str, amount: u32) -> Result<bool, StoreError>;
    /// Appends to the ledger (unique on (module, n)).
    fn insert_ledger(&mut self, entry: &LedgerEntry) -> Result<(), StoreError>;
    /// Registration, record, account id and balance of a module.
    fn module_view(
        &mut self,
        id: &str,
    ) -> Result<Option<(String, String, String, i64)>, StoreError>;
    /// An account's balance.
    fn account_balance(&mut self, account: &str) -> Result<Option<i64>, StoreError>;
    /// The whole ledger, oldest first.
    fn ledger(&mut self) -> Result<Vec<LedgerEntry>, StoreError>;
    /// The whole fraud log, oldest first.
    fn fraud_log(&mut self) -> Result<Vec<FraudRow>, StoreError>;
    /// The schema version.
    fn schema_version(&mut self) -> Result<i64, StoreError>;
    /// All funds held: every account's stored balance plus the ledger's credits to the float;
    /// `None` when that is past `i64::MAX` (only a database written by an older signer can
    /// hold that). On PostgreSQL it also takes the lock that makes imports take turns.
    fn total_funds(&mut self) -> Result<Option<i64>, StoreError>;
}

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

/// The first field of an authenticated completion ack (N′ and grant tag already matched) that
/// differs from the stored grant and request it answers: status, then G, then the balance.
/// The balance cannot be known exactly — the module may have debited between its request and
/// the grant — but nothing but a grant raises it, so it is at most the request's B + G (wide
/// arithmetic). server-api.md, `POST /v1/completion`.
fn ack_mismatch(record: &ServerRecord, ack: &CompletionAck) -> Option<StoreError> {
    let grant = record
        .last_grant
        .and_then(|g| ReloadGrant::parse(&g).ok())?;
    let granted = grant.status == GrantStatus::Granted;
    let word = |declined: bool| {
        if declined {
            "declined (01)"
        } else {
            "granted (00)"
        }
    };
    if ack.declined == granted {
        return Some(StoreError::AckMismatch {
            n: ack.n_next,
            field: "status",
            got: word(ack.declined).into(),
            expected: format!("status {}", word(!granted)),
        });
    }
    if ack.granted != grant.granted {
        return Some(StoreError::AckMismatch {
            n: ack.n_next,
            field: "G",
            got: ack.granted.to_string(),
            expected: format!("G = {}", grant.granted),
        });
    }
    let request = record
        .last_request
        .and_then(|r| ReloadRequest::parse(&r).ok())?;
    let most = i64::from(request.balance) + i64::from(grant.granted);
    if i64::from(ack.balance) > most {
        return Some(StoreError::AckMismatch {
            n: ack.n_next,
            field: "balance",
            got: ack.balance.to_string(),
            expected: format!(
                "at most B + G = {} + {} = {most}",
                request.balance, grant.granted
            ),
        });
    }
    None
}

/// A registered rejection as the API answers it.
fn settle_registered((rejection, event): Registered) -> (StoreError, Option<FraudEvent>) {
    (StoreError::Rejected(rejection), event)
}

/// A rejection the transaction registered (and committed), with the fraud event it logged.
type Registered = (Rejection, Option<FraudEvent>);

/// A message transaction's result as the API takes it: a registered rejection becomes the
/// error, with the fraud event it registered.
fn settle<T>(
    result: Result<Result<T, Registered>, StoreError>,
) -> Result<T, (StoreError, Option<FraudEvent>)> {
    match result {
        Ok(Ok(done)) => Ok(done),
        Ok(Err((rejection, event))) => Err((StoreError::Rejected(rejection), event)),
        Err(e) => Err((e, None)),
    }
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

    /// Handles a reload request: one transaction with the built-in ledger; with an external
    /// authority, two transactions around the authority's answer (module documentation of
    /// [`crate::authority`]). On `Err`, the fraud event registered (if any) comes with the
    /// error.
    pub fn reload(
        &self,
        bytes: &[u8],
    ) -> Result<(Answer, Option<FraudEvent>), (StoreError, Option<FraudEvent>)> {
        let parsed = ReloadRequest::parse(bytes)
            .map_err(|e| (StoreError::Rejected(Rejection::Malformed(e)), None))?;
        let id = id_hex(&parsed.module_id);
        let external = match &self.authority {
            Authority::BuiltIn => None,
            Authority::External(a) => Some(a.clone()),
        };
        let first = self.transact(Mode::Write, |tx| {
            let (mut record, account) = Self::load_named(tx, &id, parsed.module_id)?;
            let keys = self.module_keys(&record)?;
            match server::classify_request(&record, bytes, &keys.request) {
                Err(r) => Ok(Err(Self::register(tx, record, r)?)),
                Ok(RequestAction::Resend { grant }) => {
                    Ok(Ok(Step::Done(Answer::Resent(grant.to_vec()))))
                }
                Ok(RequestAction::Fresh { request, decision }) => {
                    let outcome = match decision {
                        FreshDecision::Debit { amount } if external.is_some() => {
                            // Nothing changes in this transaction: the authority is asked
                            // outside it.
                            return Ok(Ok(Step::AskAuthority { amount, account }));
                        }
                        FreshDecision::Debit { amount } => {
                            Self::debit(tx, &request.module_id, request.n, &account, amount)?
                        }
                        FreshDecision::Decline(reason) => DebitOutcome::Declined(reason),
                    };
                    let grant = server::finish_fresh(&mut record, &request, outcome, &keys.grant)?;
                    Self::save(tx, &record)?;
                    Ok(Ok(Step::Done(Answer::Fresh(grant.to_vec()))))
                }
            }
        });
        let (amount, account) = match settle(first)? {
            Step::Done(answer) => return Ok((answer, None)),
            Step::AskAuthority { amount, account } => (amount, account),
        };
        let Some(authority) = external else {
            return Err((
                StoreError::AuthorityUnavailable("no external authority configured".into()),
                None,
            ));
        };
        let asked = DebitRequest {
            key: DebitKey {
                module_id: parsed.module_id,
                n: parsed.n,
            },
            account,
            amount,
        };
        let answer = authority.debit(&asked);
        if let DebitAnswer::Unavailable(why) = &answer {
            return Err((StoreError::AuthorityUnavailable(why.clone()), None));
        }
        let second = self.transact(Mode::Write, |tx| {
            let (mut record, _) = Self::load_named(tx, &id, parsed.module_id)?;
            let keys = self.module_keys(&record)?;
            match server::classify_request(&record, bytes, &keys.request) {
                Err(r) => Ok(Err(Self::register(tx, record, r)?)),
                // Another request or server process stored the grant meanwhile; the authority
                // saw the same key twice and debited once.
                Ok(RequestAction::Resend { grant }) => Ok(Ok(Answer::Resent(grant.to_vec()))),
                Ok(RequestAction::Fresh { request, decision }) => {
                    if decision != (FreshDecision::Debit { amount }) {
                        return Err(StoreError::AuthorityUnavailable(format!(
                            "the decision changed while the authority was asked ({decision:?}); send the request again"
                        )));
                    }
                    let outcome = match &answer {
                        DebitAnswer::Debited => {
                            // The ledger mirrors the authority's debit, unique on (module, N).
                            let hex_id = id_hex(&request.module_id);
                            if tx.ledger_amount(&hex_id, request.n)?.is_none() {
                                tx.insert_ledger(&LedgerEntry {
                                    module_id: hex_id,
                                    n: request.n,
                                    debit_account: asked.account.clone(),
                                    credit_account: FLOAT_ACCOUNT.to_owned(),
                                    amount,
                                    at: now(),
                                })?;
                            }
                            DebitOutcome::Debited { amount }
                        }
                        DebitAnswer::InsufficientFunds => DebitOutcome::InsufficientFunds,
                        DebitAnswer::Refused => DebitOutcome::Refused,
                        DebitAnswer::Pending => {
                            let ack =
                                server::build_provisional_ack(&record, &request, &keys.grant)?;
                            record.pending_request = Some(request.to_bytes());
                            Self::save(tx, &record)?;
                            return Ok(Ok(Answer::Pending {
                                provisional_ack: ack.to_vec(),
                                module_id: id_hex(&request.module_id),
                                n: request.n,
                            }));
                        }
                        DebitAnswer::Unavailable(why) => {
                            return Err(StoreError::AuthorityUnavailable(why.clone()));
                        }
                    };
                    let grant = server::finish_fresh(&mut record, &request, outcome, &keys.grant)?;
                    Self::save(tx, &record)?;
                    Ok(Ok(Answer::Fresh(grant.to_vec())))
                }
            }
        });
        settle(second).map(|answer| (answer, None))
    }

    /// `GET /v1/reload/{module_id}/{n}`: the answer to request `n` of module `id` — the stored
    /// grant when it is the last one answered, or (for a request left pending at the
    /// authority) the authority asked again: the grant once the debit settled, else the
    /// provisional ack again. The request is replayed exactly as the module sent it, so every
    /// rule of [`Store::reload`] applies.
    pub fn reload_result(
        &self,
        id: &str,
        n: u32,
    ) -> Result<(Answer, Option<FraudEvent>), (StoreError, Option<FraudEvent>)> {
        let module_id = Self::parse_id(id).map_err(|e| (e, None))?;
        let hex_id = id_hex(&module_id);
        let found = self.transact(Mode::Read, |tx| {
            let Some((record, _)) = Self::load(tx, &hex_id)? else {
                return Err(StoreError::NoSuchModule(hex_id.clone()));
            };
            let with_n = |r: &Option<[u8; ReloadRequest::LEN]>| {
                r.filter(|b| ReloadRequest::parse(b).is_ok_and(|q| q.n == n))
            };
            // A pending request is replayed only while it is still fresh (N = S): after an
            // operator's resync it would be out of the window, and a poll must never register
            // a fraud event.
            let pending = with_n(&record.pending_request).filter(|_| n == record.s);
            Ok(with_n(&record.last_request).or(pending))
        });
        match found {
            Ok(Some(request)) => self.reload(&request),
            Ok(None) => Err((
                StoreError::UnknownReload {
                    module_id: hex_id,
                    n,
                },
                None,
            )),
            Err(e) => Err((e, None)),
        }
    }

    /// Handles a completion ack in one transaction.
    pub fn completion(&self, bytes: &[u8]) -> Result<Completion, (StoreError, Option<FraudEvent>)> {
        let parsed = CompletionAck::parse(bytes)
            .map_err(|e| (StoreError::Rejected(Rejection::Malformed(e)), None))?;
        let id = id_hex(&parsed.module_id);
        let result = self.transact(Mode::Write, |tx| {
            let (record, _) = Self::load_named(tx, &id, parsed.module_id)?;
            let keys = self.module_keys(&record)?;
            let before = record.completed_through;
            let mut checked = record.clone();
            match server::handle_completion(&mut checked, bytes, &keys.request) {
                Err(r) => Ok(Err(settle_registered(Self::register(tx, record, r)?))),
                Ok(ack) => {
                    if let Some(mismatch) = ack_mismatch(&record, &ack) {
                        // Authenticated, but not the grant the server signed: registered as a
                        // window event, like a request that differs from the one answered.
                        let rejection = Rejection::ReplayMismatch { n: ack.n_next };
                        let (_, event) = Self::register(tx, record, rejection)?;
                        return Ok(Err((mismatch, event)));
                    }
                    Self::save(tx, &checked)?;
                    Ok(Ok(if before == checked.completed_through {
                        Completion::AlreadyAccepted
                    } else {
                        Completion::Accepted
                    }))
                }
            }
        });
        match result {
            Ok(done) => done,
            Err(e) => Err((e, None)),
        }
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
