//! The backend seam: the steps of the store's transactions as one trait ([`Tx`]), one SQL
//! statement each, implemented by `sqlite.rs` and `postgres.rs`. No policy here.

use super::{FraudRow, LedgerEntry, StoreError};

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
