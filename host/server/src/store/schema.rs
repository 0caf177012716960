//! The signer's schema: one logical schema, written once per SQL dialect, with versioned
//! migrations.
//!
//! `SQLITE[i]` and `POSTGRES[i]` both take the schema from version `i` to `i + 1`; the two lists
//! always have the same length and describe the same tables, columns, keys and constraints (a
//! unit test holds the lengths together; the store tests run every scenario on both). The
//! version reached is recorded in `schema_version`; a program meeting a database newer than
//! itself refuses to open it rather than guess.
//!
//! Adding a migration: append one entry to BOTH lists (never edit a released one) and add a
//! test that opens a database of the previous version. A running process does not notice a
//! migration, so say in its comment whether older signers may keep serving after it (adding a
//! column with a default: yes; migration 2: no — a version-1 signer would credit the float's
//! row again); the README tells operators to stop all signers before upgrading.
//! Migrations run inside one transaction, under SQLite's write lock
//! (`BEGIN IMMEDIATE`) or PostgreSQL's advisory lock [`PG_MIGRATION_LOCK`], so several processes
//! starting together migrate once.
//!
//! The tables:
//! - `accounts (id, balance)` — funds the built-in financial authority debits; `float` is the
//!   issuer's float every reload is credited to — by its ledger row only: the float's balance
//!   is its stored balance plus the ledger's credits, summed when read (migration 2), so that no
//!   row is written by every grant;
//! - `modules (module_id, registration, record, account_id)` — the registration record and the
//!   server record (S, last request and grant, failure count, state, limits) as JSON text, which
//!   keeps the stored grant's bytes exactly as simkit-core wrote them;
//! - `ledger (id, module_id, n, debit_account, credit_account, amount, at)` — the double-entry
//!   ledger, `UNIQUE (module_id, n)`: the idempotency key of a debit;
//! - `fraud_log (id, module_id, kind, n, s, failure_count, blocked, at)`.

/// The PostgreSQL advisory lock key held while migrating ("simkit" in ASCII).
pub(crate) const PG_MIGRATION_LOCK: i64 = 0x7369_6d6b_6974;

/// The PostgreSQL advisory lock key an import holds until it commits, so imports that check
/// the funds held against 2^63-1 take turns ("simkit$").
pub(crate) const PG_FUNDS_LOCK: i64 = 0x0073_696d_6b69_7424;

/// SQLite migrations.
pub(crate) const SQLITE: &[&str] = &[
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
    // 2: the float's row no longer takes every grant's credit (that one row lock would
    // serialise all grants of all modules); its balance is the stored balance plus the ledger's
    // credits, summed when read. Move the credits already added to the row out of it.
    "UPDATE accounts
     SET balance = balance - (SELECT COALESCE(SUM(amount), 0) FROM ledger
                              WHERE credit_account = 'float')
     WHERE id = 'float';",
];

/// PostgreSQL migrations: the same schema as [`SQLITE`], in PostgreSQL's types (`BIGINT` for
/// every number, which holds the whole `u32` range of N and S; identity columns for row order).
pub(crate) const POSTGRES: &[&str] = &[
    // 1: modules, accounts, the double-entry ledger, the fraud log.
    "CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        balance BIGINT NOT NULL
     );
     INSERT INTO accounts (id, balance) VALUES ('float', 0);
     CREATE TABLE modules (
        module_id TEXT PRIMARY KEY,
        registration TEXT NOT NULL,
        record TEXT NOT NULL,
        account_id TEXT NOT NULL REFERENCES accounts(id)
     );
     CREATE TABLE ledger (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        module_id TEXT NOT NULL REFERENCES modules(module_id),
        n BIGINT NOT NULL,
        debit_account TEXT NOT NULL REFERENCES accounts(id),
        credit_account TEXT NOT NULL REFERENCES accounts(id),
        amount BIGINT NOT NULL CHECK (amount > 0),
        at BIGINT NOT NULL,
        UNIQUE (module_id, n)
     );
     CREATE TABLE fraud_log (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        module_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        n BIGINT NOT NULL,
        s BIGINT NOT NULL,
        failure_count BIGINT NOT NULL,
        blocked BOOLEAN NOT NULL,
        at BIGINT NOT NULL
     );",
    // 2: the float's row no longer takes every grant's credit (that one row lock would
    // serialise all grants of all modules); its balance is the stored balance plus the ledger's
    // credits, summed when read. Move the credits already added to the row out of it.
    "UPDATE accounts
     SET balance = balance - (SELECT COALESCE(SUM(amount), 0) FROM ledger
                              WHERE credit_account = 'float')::BIGINT
     WHERE id = 'float';",
];

#[cfg(test)]
mod tests {
    #[test]
    fn both_dialects_have_every_migration() {
        assert_eq!(super::SQLITE.len(), super::POSTGRES.len());
    }
}
