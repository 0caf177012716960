//! The SQLite backend: `rusqlite` (bundled), WAL mode, `BEGIN IMMEDIATE`.
//!
//! Why rusqlite rather than sqlx: SQLite has one writer at a time, so an async driver buys
//! nothing; rusqlite's synchronous API with `bundled` needs no system library and gives direct
//! control of `BEGIN IMMEDIATE`. Each transaction opens its own connection (cheap for SQLite),
//! so concurrent requests really race in the database and `BEGIN IMMEDIATE` plus the busy
//! timeout serialise them: the record is read and written inside one write transaction, which
//! is SQLite's row lock (it locks the whole database). Readers use deferred transactions and,
//! with WAL, do not wait for the writer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::schema;
use super::{FraudRow, LedgerEntry, Mode, StoreError, Tx};

/// How long a connection waits for another's lock before giving up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Puts the database in WAL mode (a no-op when it already is).
///
/// `PRAGMA journal_mode = WAL` turns a read lock into an exclusive one, and SQLite does not
/// always wait for that: when two connections each hold a read lock and each want the
/// exclusive lock (several `simkit serve` opening the same new database at once), waiting
/// would deadlock, so SQLite fails one of them at once with `SQLITE_BUSY` instead of calling
/// its busy handler (see `sqlite3_busy_handler`). A failed attempt releases its read lock, so
/// the switch is retried here, with a growing pause, for up to `limit`.
/// A database that answers with another mode (a file system without shared memory, for
/// instance) is refused: readers would then block the writer.
fn switch_to_wal(conn: &Connection, limit: Duration) -> Result<(), StoreError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => return Err(StoreError::NoWal(mode)),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && start.elapsed() < limit =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A SQLite database file.
#[derive(Debug)]
pub(crate) struct SqliteDb {
    path: PathBuf,
}

impl SqliteDb {
    /// Opens (creating if needed) the database, switches it to WAL and migrates it.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let db = SqliteDb {
            path: path.to_owned(),
        };
        let mut conn = db.connect()?;
        switch_to_wal(&conn, BUSY_TIMEOUT)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let version: Option<i64> = tx
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .optional()?
            .flatten();
        let version = version.unwrap_or(0);
        let current = usize::try_from(version).unwrap_or(usize::MAX);
        if current > schema::SQLITE.len() {
            return Err(StoreError::SchemaTooNew(version, schema::SQLITE.len()));
        }
        for (i, sql) in schema::SQLITE.iter().enumerate().skip(current) {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                params![i64::try_from(i + 1).unwrap_or(i64::MAX)],
            )?;
        }
        tx.commit()?;
        Ok(db)
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open(&self.path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(conn)
    }

    /// Runs `f` in one transaction (see [`super::Store`]'s `transact`).
    pub(crate) fn transact<T>(
        &self,
        mode: Mode,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.connect()?;
        let behavior = match mode {
            Mode::Read => TransactionBehavior::Deferred,
            Mode::Write => TransactionBehavior::Immediate,
        };
        let mut tx = SqliteTx(conn.transaction_with_behavior(behavior)?);
        // On `Err` the transaction is dropped, which rolls it back.
        let out = f(&mut tx)?;
        tx.0.commit()?;
        Ok(out)
    }
}

struct SqliteTx<'c>(rusqlite::Transaction<'c>);

impl Tx for SqliteTx<'_> {
    fn module_for_update(&mut self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        // BEGIN IMMEDIATE already holds the database's write lock.
        Ok(self
            .0
            .query_row(
                "SELECT record, account_id FROM modules WHERE module_id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn update_record(&mut self, id: &str, record: &str) -> Result<(), StoreError> {
        self.0.execute(
            "UPDATE modules SET record = ?2 WHERE module_id = ?1",
            params![id, record],
        )?;
        Ok(())
    }

    fn add_funds(&mut self, account: &str, funds: i64) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO accounts (id, balance) VALUES (?1, ?2)
             ON CONFLICT(id) DO UPDATE SET balance = balance + excluded.balance",
            params![account, funds],
        )?;
        Ok(())
    }

    fn insert_module(
        &mut self,
        id: &str,
        registration: &str,
        record: &str,
        account: &str,
    ) -> Result<bool, StoreError> {
        let n = self.0.execute(
            "INSERT INTO modules (module_id, registration, record, account_id)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT(module_id) DO NOTHING",
            params![id, registration, record, account],
        )?;
        Ok(n == 1)
    }

    fn insert_fraud(&mut self, row: &FraudRow) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO fraud_log (module_id, kind, n, s, failure_count, blocked, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                row.module_id,
                row.kind,
                row.n,
                row.s,
                row.failure_count,
                row.blocked,
                row.at
            ],
        )?;
        Ok(())
    }

    fn ledger_amount(&mut self, id: &str, n: u32) -> Result<Option<u32>, StoreError> {
        Ok(self
            .0
            .query_row(
                "SELECT amount FROM ledger WHERE module_id = ?1 AND n = ?2",
                params![id, n],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn take_funds(&mut self, account: &str, amount: u32) -> Result<bool, StoreError> {
        let n = self.0.execute(
            "UPDATE accounts SET balance = balance - ?2 WHERE id = ?1 AND balance >= ?2",
            params![account, amount],
        )?;
        Ok(n == 1)
    }

    fn insert_ledger(&mut self, e: &LedgerEntry) -> Result<(), StoreError> {
        self.0.execute(
            "INSERT INTO ledger (module_id, n, debit_account, credit_account, amount, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                e.module_id,
                e.n,
                e.debit_account,
                e.credit_account,
                e.amount,
                e.at
            ],
        )?;
        Ok(())
    }

    fn module_view(
        &mut self,
        id: &str,
    ) -> Result<Option<(String, String, String, i64)>, StoreError> {
        Ok(self
            .0
            .query_row(
                "SELECT m.registration, m.record, m.account_id,
                   a.balance + CASE WHEN a.id = 'float'
                     THEN (SELECT COALESCE(SUM(l.amount), 0) FROM ledger l
                           WHERE l.credit_account = 'float')
                     ELSE 0 END
                 FROM modules m JOIN accounts a ON a.id = m.account_id
                 WHERE m.module_id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?)
    }

    fn account_balance(&mut self, account: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .0
            .query_row(
                "SELECT a.balance + CASE WHEN a.id = 'float'
                     THEN (SELECT COALESCE(SUM(l.amount), 0) FROM ledger l
                           WHERE l.credit_account = 'float')
                     ELSE 0 END
                 FROM accounts a WHERE a.id = ?1",
                params![account],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn ledger(&mut self) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut st = self.0.prepare(
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

    fn fraud_log(&mut self) -> Result<Vec<FraudRow>, StoreError> {
        let mut st = self.0.prepare(
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

    fn schema_version(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .0
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))?)
    }

    fn total_funds(&mut self) -> Result<Option<i64>, StoreError> {
        // Two sums added here, checked: SQLite turns an overflowing `+` into a REAL. (The
        // write lock of `BEGIN IMMEDIATE` already makes imports take turns.)
        let (accounts, credits): (i64, i64) = self.0.query_row(
            "SELECT (SELECT COALESCE(SUM(balance), 0) FROM accounts),
                    (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE credit_account = 'float')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(accounts.checked_add(credits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database in rollback-journal mode, and a second connection holding a read lock on it.
    fn locked_rollback_db(dir: &Path) -> (PathBuf, Connection) {
        let path = dir.join("rollback.db");
        let setup = Connection::open(&path).expect("create");
        setup
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
            .expect("table");
        drop(setup);
        let reader = Connection::open(&path).expect("reader");
        reader
            .execute_batch("BEGIN; SELECT COUNT(*) FROM t;")
            .expect("read lock");
        (path, reader)
    }

    fn mode(conn: &Connection) -> String {
        conn.pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("journal_mode")
    }

    #[test]
    fn wal_switch_waits_for_a_reader_instead_of_failing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, reader) = locked_rollback_db(dir.path());
        let conn = Connection::open(&path).expect("open");
        // No busy handler: show that the retry is ours, not SQLite's.
        conn.busy_timeout(Duration::ZERO).expect("busy timeout");
        // SQLite itself refuses at once while the reader holds its lock ...
        let plain = conn.pragma_update(None, "journal_mode", "WAL");
        assert!(
            matches!(&plain, Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy),
            "{plain:?}"
        );
        // ... the switch waits until the reader is done.
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            reader.execute_batch("COMMIT").expect("commit");
        });
        switch_to_wal(&conn, Duration::from_secs(10)).expect("switch");
        release.join().expect("reader thread");
        assert_eq!(mode(&conn), "wal");
    }

    #[test]
    fn wal_switch_gives_up_after_its_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, _reader) = locked_rollback_db(dir.path());
        let conn = Connection::open(&path).expect("open");
        conn.busy_timeout(Duration::ZERO).expect("busy timeout");
        let start = Instant::now();
        let err = switch_to_wal(&conn, Duration::from_millis(150)).expect_err("stays locked");
        assert!(start.elapsed() >= Duration::from_millis(150));
        assert!(err.to_string().contains("database is locked"), "{err}");
        assert_eq!(mode(&conn), "delete");
    }

    #[test]
    fn servers_opening_one_new_database_at_once_all_succeed() {
        // The deadlock above needs two openers to meet inside the switch: a race, so run it
        // over a number of fresh databases (without the retry about one round in seven failed).
        let dir = tempfile::tempdir().expect("tempdir");
        for round in 0..48 {
            let path = dir.path().join(format!("new-{round}.db"));
            let barrier = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                let openers: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            SqliteDb::open(&path).map(|_| ())
                        })
                    })
                    .collect();
                for opener in openers {
                    let opened = opener.join().expect("opener thread");
                    assert!(opened.is_ok(), "round {round}: {opened:?}");
                }
            });
            let conn = Connection::open(&path).expect("reopen");
            assert_eq!(mode(&conn), "wal");
            let versions: i64 = conn
                .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
                .expect("versions");
            assert_eq!(usize::try_from(versions).ok(), Some(schema::SQLITE.len()));
        }
    }

    #[test]
    fn a_database_that_cannot_use_wal_is_refused_by_name() {
        let conn = Connection::open_in_memory().expect("memory");
        let err = switch_to_wal(&conn, Duration::from_secs(1)).expect_err("memory has no WAL");
        assert!(
            matches!(&err, StoreError::NoWal(m) if m == "memory"),
            "{err:?}"
        );
        assert!(err.to_string().contains("\"memory\""), "{err}");
    }
}
