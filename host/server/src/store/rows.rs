//! The rows and answers the store hands out: reload and completion answers, the admin view
//! of a module, ledger and fraud-log entries. Data only.

use serde::Serialize;
use simkit_core::credit::registration::Registration;
use simkit_core::credit::server::ServerRecord;

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
