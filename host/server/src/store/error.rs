//! Why the store could not answer ([`StoreError`]), and how each reason maps to an HTTP
//! status and the API's error `code` (server-api.md, "Errors"). Must not decide anything: the
//! reasons are found elsewhere, this file only names and maps them.

use std::time::Duration;

use simkit_core::credit::registration::RegistrationError;
use simkit_core::credit::server::{FinishError, Rejection};
use simkit_core::crypto::CryptoError;

use crate::keys::KeyError;

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
