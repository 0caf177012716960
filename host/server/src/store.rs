//! The signer's database: SQLite through `rusqlite` (bundled, WAL mode).
//!
//! Why rusqlite rather than sqlx: SQLite has one writer at a time, so an async driver buys
//! nothing; rusqlite's synchronous API with `bundled` needs no system library, gives direct
//! control of `BEGIN IMMEDIATE`, and the HTTP layer runs each call on a blocking thread
//! (`tokio::task::spawn_blocking`). Each operation opens its own connection (cheap for SQLite),
//! so concurrent requests really race in the database and `BEGIN IMMEDIATE` plus the busy
//! timeout serialise them: the record is read and written inside one write transaction.
//!
//! Every message is handled in ONE transaction: load the record, run simkit-core's policy,
//! debit the ledger with idempotency key (module id, N), store the record, commit — and only
//! then are the grant bytes returned.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use simkit_core::credit::message::{CompletionAck, ReloadRequest};
use simkit_core::credit::registration::{Registration, RegistrationError};
use simkit_core::credit::server::{
    self, DebitOutcome, FinishError, FraudEvent, FreshDecision, Rejection, RequestAction,
    ServerRecord,
};
use simkit_core::credit::{Limits, ModuleId};
use simkit_core::crypto::CryptoError;
use simkit_core::crypto::kdf::{ModuleKeys, derive_module_keys};

use crate::keys::{KeyError, KeySource};

/// The account the ledger credits for every reload: the issuer's float.
pub const FLOAT_ACCOUNT: &str = "float";

/// Versioned migrations; `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: modules, accounts, the double-entry ledger, the fraud log.
    "CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        balance INTEGER NOT NULL
     );
     INSERT INTO accounts (id, balance) VALUES ('float', 0);
     CREATE TABLE modules (
        module_id TEXT PRIMARY KEY,
        registration TEXT NOT NULL,
        record TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts(id)
     );
     CREATE TABLE ledger (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        module_id TEXT NOT NULL REFERENCES modules(module_id),
        n INTEGER NOT NULL,
        debit_account TEXT NOT NULL REFERENCES accounts(id),
        credit_account TEXT NOT NULL REFERENCES accounts(id),
        amount INTEGER NOT NULL CHECK (amount > 0),
        at INTEGER NOT NULL,
        UNIQUE (module_id, n)
     );
     CREATE TABLE fraud_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        module_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        n INTEGER NOT NULL,
        s INTEGER NOT NULL,
        failure_count INTEGER NOT NULL,
        blocked INTEGER NOT NULL,
        at INTEGER NOT NULL
     );",
];

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The policy refused the message (already registered and committed).
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The database failed; nothing was committed.
    #[error("database: {0}")]
    Db(#[from] rusqlite::Error),
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
    /// Bad input to an admin endpoint.
    #[error("{0}")]
    BadInput(String),
}

impl StoreError {
    /// The HTTP status for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            StoreError::Rejected(r) => r.http_status(),
            StoreError::Registration(_) => 422,
            StoreError::AlreadyRegistered(_) => 409,
            StoreError::NoSuchModule(_) => 404,
            StoreError::BadInput(_) => 400,
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
            StoreError::Db(_) => "database",
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
            StoreError::BadInput(_) => "bad-input",
        }
    }

    /// Whether this is a database failure (for the metrics).
    pub fn is_db(&self) -> bool {
        matches!(self, StoreError::Db(_) | StoreError::Corrupt(_))
    }
}

/// The answer to a reload request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A fresh grant (granted or declined), committed.
    Fresh(Vec<u8>),
    /// The stored grant, resent byte for byte.
    Resent(Vec<u8>),
}

impl Answer {
    /// The grant bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Answer::Fresh(b) | Answer::Resent(b) => b,
        }
    }
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

/// The signer's database and master key.
pub struct Store {
    path: PathBuf,
    keys: Box<dyn KeySource>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
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

impl Store {
    /// Opens (creating if needed) the database at `path`, switches it to WAL mode and runs the
    /// migrations it lacks.
    pub fn open(path: &Path, keys: Box<dyn KeySource>) -> Result<Self, StoreError> {
        let store = Store {
            path: path.to_owned(),
            keys,
        };
        let mut conn = store.connect()?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let version: Option<i64> = tx
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .optional()?
            .flatten();
        let version = version.unwrap_or(0);
        let current = usize::try_from(version).unwrap_or(usize::MAX);
        if current > MIGRATIONS.len() {
            return Err(StoreError::SchemaTooNew(version, MIGRATIONS.len()));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                params![i64::try_from(i + 1).unwrap_or(i64::MAX)],
            )?;
        }
        tx.commit()?;
        Ok(store)
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let conn = self.connect()?;
        Ok(conn.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))?)
    }

    /// The master key source (for logging its check values).
    pub fn key_source(&self) -> &dyn KeySource {
        self.keys.as_ref()
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(conn)
    }

    fn module_keys(&self, record: &ServerRecord) -> Result<ModuleKeys, StoreError> {
        let master = self.keys.master_key()?;
        Ok(derive_module_keys(
            record.profile,
            &master,
            &record.module_id,
        )?)
    }

    /// Imports a registration record (refused unless its KCVs match this server's master key),
    /// creating `account_id` with `initial_funds` if it does not exist (adding them if it does).
    pub fn import(
        &self,
        registration: &Registration,
        account_id: &str,
        initial_funds: i64,
    ) -> Result<ServerRecord, StoreError> {
        registration.check(&self.keys.master_key()?)?;
        if account_id.is_empty() || account_id == FLOAT_ACCOUNT {
            return Err(StoreError::BadInput(format!(
                "account id {account_id:?} is not allowed"
            )));
        }
        if initial_funds < 0 {
            return Err(StoreError::BadInput("initial funds must be ≥ 0".into()));
        }
        let record = registration.server_record();
        let mut conn = self.connect()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = id_hex(&registration.module_id);
        let exists: Option<String> = tx
            .query_row(
                "SELECT module_id FROM modules WHERE module_id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Err(StoreError::AlreadyRegistered(id));
        }
        tx.execute(
            "INSERT INTO accounts (id, balance) VALUES (?1, ?2)
             ON CONFLICT(id) DO UPDATE SET balance = balance + excluded.balance",
            params![account_id, initial_funds],
        )?;
        tx.execute(
            "INSERT INTO modules (module_id, registration, record, account_id)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                id,
                serde_json::to_string(registration)?,
                serde_json::to_string(&record)?,
                account_id
            ],
        )?;
        tx.commit()?;
        Ok(record)
    }

    fn load(
        tx: &rusqlite::Transaction<'_>,
        id: &ModuleId,
    ) -> Result<Option<(ServerRecord, String)>, StoreError> {
        let row: Option<(String, String)> = tx
            .query_row(
                "SELECT record, account_id FROM modules WHERE module_id = ?1",
                params![id_hex(id)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match row {
            None => Ok(None),
            Some((json, account)) => Ok(Some((serde_json::from_str(&json)?, account))),
        }
    }

    fn save(tx: &rusqlite::Transaction<'_>, record: &ServerRecord) -> Result<(), StoreError> {
        tx.execute(
            "UPDATE modules SET record = ?2 WHERE module_id = ?1",
            params![id_hex(&record.module_id), serde_json::to_string(record)?],
        )?;
        Ok(())
    }

    fn log_fraud(
        tx: &rusqlite::Transaction<'_>,
        id: &ModuleId,
        e: &FraudEvent,
    ) -> Result<(), StoreError> {
        let kind = serde_json::to_value(e.kind)?;
        tx.execute(
            "INSERT INTO fraud_log (module_id, kind, n, s, failure_count, blocked, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id_hex(id),
                kind.as_str().unwrap_or("unknown"),
                e.carried,
                e.s,
                e.failure_count,
                e.blocked,
                now()
            ],
        )?;
        Ok(())
    }

    /// The built-in financial authority: debits `account` by `amount` for (module, n), once.
    fn debit(
        tx: &rusqlite::Transaction<'_>,
        id: &ModuleId,
        n: u32,
        account: &str,
        amount: u32,
    ) -> Result<DebitOutcome, StoreError> {
        let existing: Option<u32> = tx
            .query_row(
                "SELECT amount FROM ledger WHERE module_id = ?1 AND n = ?2",
                params![id_hex(id), n],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(a) = existing {
            // Idempotency: this (module, N) was debited already; never twice.
            return Ok(DebitOutcome::Debited { amount: a });
        }
        let balance: i64 = tx.query_row(
            "SELECT balance FROM accounts WHERE id = ?1",
            params![account],
            |r| r.get(0),
        )?;
        if balance < i64::from(amount) {
            return Ok(DebitOutcome::InsufficientFunds);
        }
        tx.execute(
            "UPDATE accounts SET balance = balance - ?2 WHERE id = ?1",
            params![account, amount],
        )?;
        tx.execute(
            "UPDATE accounts SET balance = balance + ?2 WHERE id = ?1",
            params![FLOAT_ACCOUNT, amount],
        )?;
        tx.execute(
            "INSERT INTO ledger (module_id, n, debit_account, credit_account, amount, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id_hex(id), n, account, FLOAT_ACCOUNT, amount, now()],
        )?;
        Ok(DebitOutcome::Debited { amount })
    }

    /// Commits a registered rejection and returns it as the error.
    fn reject(
        tx: rusqlite::Transaction<'_>,
        mut record: ServerRecord,
        rejection: Rejection,
    ) -> Result<(Answer, Option<FraudEvent>), (StoreError, Option<FraudEvent>)> {
        let event = server::register_rejection(&mut record, &rejection);
        let commit = (|| {
            if let Some(e) = &event {
                Self::log_fraud(&tx, &record.module_id, e)?;
            }
            Self::save(&tx, &record)?;
            tx.commit()?;
            Ok::<_, StoreError>(())
        })();
        match commit {
            Ok(()) => Err((StoreError::Rejected(rejection), event)),
            Err(e) => Err((e, None)),
        }
    }

    /// Handles a reload request in one transaction. On `Err`, the fraud event registered (if
    /// any) comes with the error.
    pub fn reload(
        &self,
        bytes: &[u8],
    ) -> Result<(Answer, Option<FraudEvent>), (StoreError, Option<FraudEvent>)> {
        let plain = |e: StoreError| (e, None);
        let parsed = ReloadRequest::parse(bytes)
            .map_err(|e| plain(StoreError::Rejected(Rejection::Malformed(e))))?;
        let mut conn = self.connect().map_err(plain)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| plain(e.into()))?;
        let (mut record, account) = Self::load(&tx, &parsed.module_id)
            .map_err(plain)?
            .ok_or_else(|| {
                plain(StoreError::Rejected(Rejection::UnknownModule(
                    parsed.module_id,
                )))
            })?;
        let keys = self.module_keys(&record).map_err(plain)?;
        match server::classify_request(&record, bytes, &keys.request) {
            Err(r) => Self::reject(tx, record, r),
            Ok(RequestAction::Resend { grant }) => {
                tx.commit().map_err(|e| plain(e.into()))?;
                Ok((Answer::Resent(grant.to_vec()), None))
            }
            Ok(RequestAction::Fresh { request, decision }) => {
                let outcome = match decision {
                    FreshDecision::Debit { amount } => {
                        Self::debit(&tx, &request.module_id, request.n, &account, amount)
                            .map_err(plain)?
                    }
                    FreshDecision::Decline(reason) => DebitOutcome::Declined(reason),
                };
                let grant = server::finish_fresh(&mut record, &request, outcome, &keys.grant)
                    .map_err(|e| plain(e.into()))?;
                Self::save(&tx, &record).map_err(plain)?;
                tx.commit().map_err(|e| plain(e.into()))?;
                Ok((Answer::Fresh(grant.to_vec()), None))
            }
        }
    }

    /// Handles a completion ack in one transaction.
    pub fn completion(&self, bytes: &[u8]) -> Result<Completion, (StoreError, Option<FraudEvent>)> {
        let plain = |e: StoreError| (e, None);
        let parsed = CompletionAck::parse(bytes)
            .map_err(|e| plain(StoreError::Rejected(Rejection::Malformed(e))))?;
        let mut conn = self.connect().map_err(plain)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| plain(e.into()))?;
        let (mut record, _) = Self::load(&tx, &parsed.module_id)
            .map_err(plain)?
            .ok_or_else(|| {
                plain(StoreError::Rejected(Rejection::UnknownModule(
                    parsed.module_id,
                )))
            })?;
        let keys = self.module_keys(&record).map_err(plain)?;
        let before = record.completed_through;
        match server::handle_completion(&mut record, bytes, &keys.request) {
            Err(r) => Self::reject(tx, record, r).map(|_| Completion::AlreadyAccepted),
            Ok(_) => {
                Self::save(&tx, &record).map_err(plain)?;
                tx.commit().map_err(|e| plain(e.into()))?;
                Ok(if before == record.completed_through {
                    Completion::AlreadyAccepted
                } else {
                    Completion::Accepted
                })
            }
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
        f: impl FnOnce(&Self, &mut ServerRecord) -> Result<T, StoreError>,
    ) -> Result<(ServerRecord, T), StoreError> {
        let mid = Self::parse_id(id)?;
        let mut conn = self.connect()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (mut record, _) =
            Self::load(&tx, &mid)?.ok_or_else(|| StoreError::NoSuchModule(id_hex(&mid)))?;
        let out = f(self, &mut record)?;
        Self::save(&tx, &record)?;
        tx.commit()?;
        Ok((record, out))
    }

    /// Operator unblock (simkit-core's `unblock`).
    pub fn unblock(&self, id: &str) -> Result<ServerRecord, StoreError> {
        self.operate(id, |_, r| {
            server::unblock(r);
            Ok(())
        })
        .map(|(r, ())| r)
    }

    /// Operator resynchronisation to the module's N (simkit-core's `resynchronise`).
    pub fn resync(&self, id: &str, module_n: u32) -> Result<ServerRecord, StoreError> {
        self.operate(id, |_, r| {
            server::resynchronise(r, module_n);
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
            let keys = s.module_keys(r)?;
            Ok(server::build_limit_update(r, limits, &keys.grant)?.to_vec())
        })
    }

    /// Records the limit sequence the module reports (simkit-core's `confirm_limit_update`).
    pub fn confirm_limits(&self, id: &str, sequence: u32) -> Result<ServerRecord, StoreError> {
        self.operate(id, |_, r| {
            server::confirm_limit_update(r, sequence);
            Ok(())
        })
        .map(|(r, ())| r)
    }

    /// A module's registration, record and account.
    pub fn module(&self, id: &str) -> Result<ModuleView, StoreError> {
        let mid = Self::parse_id(id)?;
        let conn = self.connect()?;
        let row: Option<(String, String, String, i64)> = conn
            .query_row(
                "SELECT m.registration, m.record, m.account_id, a.balance
                 FROM modules m JOIN accounts a ON a.id = m.account_id
                 WHERE m.module_id = ?1",
                params![id_hex(&mid)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let (reg, rec, account_id, account_balance) =
            row.ok_or_else(|| StoreError::NoSuchModule(id_hex(&mid)))?;
        Ok(ModuleView {
            registration: serde_json::from_str(&reg)?,
            record: serde_json::from_str(&rec)?,
            account_id,
            account_balance,
        })
    }

    /// The balance of an account, if it exists.
    pub fn account_balance(&self, id: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.connect()?;
        Ok(conn
            .query_row(
                "SELECT balance FROM accounts WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The whole ledger, oldest first.
    pub fn ledger(&self) -> Result<Vec<LedgerEntry>, StoreError> {
        let conn = self.connect()?;
        let mut st = conn.prepare(
            "SELECT module_id, n, debit_account, credit_account, amount, at
             FROM ledger ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(LedgerEntry {
                module_id: r.get(0)?,
                n: r.get(1)?,
                debit_account: r.get(2)?,
                credit_account: r.get(3)?,
                amount: r.get(4)?,
                at: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The whole fraud log, oldest first.
    pub fn fraud_log(&self) -> Result<Vec<FraudRow>, StoreError> {
        let conn = self.connect()?;
        let mut st = conn.prepare(
            "SELECT module_id, kind, n, s, failure_count, blocked, at
             FROM fraud_log ORDER BY id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(FraudRow {
                module_id: r.get(0)?,
                kind: r.get(1)?,
                n: r.get(2)?,
                s: r.get(3)?,
                failure_count: r.get(4)?,
                blocked: r.get(5)?,
                at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
