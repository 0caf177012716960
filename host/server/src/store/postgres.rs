//! The PostgreSQL backend: the synchronous `postgres` client and a small connection pool.
//!
//! Why the synchronous client: the store is synchronous (the HTTP layer calls it on blocking
//! threads), so one code path serves both backends and a transaction is plain sequential code;
//! `sqlx` would double the dependency tree for nothing the store uses. The pool is ours (a
//! mutex-guarded stack of clients, a condition variable, a size cap): r2d2 adds a thread and a
//! dependency for the same few lines.
//!
//! Transactions are READ COMMITTED. The request's first statement locks the module's row
//! (`SELECT … FOR UPDATE`); every later statement of the transaction touches only rows that a
//! request for the same module would touch, or account rows changed with a single
//! compare-and-set `UPDATE … WHERE balance >= amount`, always in the same order (the module's
//! account, then the float), so transactions cannot deadlock on each other; if PostgreSQL
//! aborts one anyway (deadlock or serialization failure) the store runs it again.
//!
//! Each `postgres::Client` drives a private current-thread tokio runtime, which may neither run
//! nor be dropped inside another runtime's async task: the store is called from blocking
//! threads, and the pool drops its clients on a thread of its own.
//!
//! TLS to PostgreSQL is not built (`NoTls`): connect over a Unix socket or loopback, or through
//! a TLS-terminating proxy; `sslmode=require` fails with a clear error rather than silently
//! sending in clear.

use std::str::FromStr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use std::collections::HashMap;

use postgres::{Client, Config, NoTls, Statement};

use super::schema;
use super::{FraudRow, LedgerEntry, StoreError, Tx};

/// Options of the PostgreSQL backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections this process opens at most (each request holds one for its transaction).
    pub pool_size: usize,
    /// How long a request waits for a free connection before failing (503-like, code
    /// `database`).
    pub checkout_timeout: Duration,
    /// Connect timeout of a new connection.
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    /// 16 connections, 30 s to get one, 10 s to connect: several `simkit serve` processes fit
    /// under PostgreSQL's default `max_connections` of 100.
    fn default() -> Self {
        PgOptions {
            pool_size: 16,
            checkout_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// `url` with any password replaced by `***`, for logs and errors.
pub(crate) fn redact(url: &str) -> String {
    // postgres://user:password@host/... → postgres://user:***@host/...
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((auth, tail)) = rest.split_once('@') {
            if let Some((user, _)) = auth.split_once(':') {
                return format!("{scheme}://{user}:***@{tail}");
            }
        }
        return url.to_owned();
    }
    // key=value form: hide password=…
    url.split_whitespace()
        .map(|kv| {
            if kv.starts_with("password=") {
                "password=***"
            } else {
                kv
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

/// A PostgreSQL database behind a pool of connections.
pub(crate) struct PgDb {
    config: Config,
    description: String,
    options: PgOptions,
    state: Mutex<PoolState>,
    freed: Condvar,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // A client's drop blocks on its own runtime, which panics inside an async task: close
        // them on a plain thread.
        let idle = std::mem::take(&mut lock(&self.state).idle);
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

fn lock(m: &Mutex<PoolState>) -> MutexGuard<'_, PoolState> {
    // The state is a stack and a counter, consistent after every statement: a panic elsewhere
    // while holding the lock cannot leave it half-updated.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A connection checked out of the pool; returned on drop (or discarded if it broke).
struct Pooled<'p> {
    db: &'p PgDb,
    client: Option<Conn>,
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.db.state);
        match self.client.take() {
            Some(c) if !c.client.is_closed() => state.idle.push(c),
            Some(c) => {
                state.open -= 1;
                drop(state);
                let _ = std::thread::spawn(move || drop(c)).join();
            }
            None => state.open -= 1,
        }
        self.db.freed.notify_one();
    }
}

impl PgDb {
    /// Connects and migrates.
    pub(crate) fn open(url: &str, options: PgOptions) -> Result<Self, StoreError> {
        let description = redact(url);
        let mut config = Config::from_str(url)
            .map_err(|e| StoreError::BadUrl(format!("{description:?}: {e}")))?;
        config.connect_timeout(options.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("simkit-serve");
        }
        if options.pool_size == 0 {
            return Err(StoreError::BadInput(
                "the PostgreSQL pool needs at least one connection".into(),
            ));
        }
        let db = PgDb {
            config,
            description,
            options,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        };
        db.migrate()?;
        Ok(db)
    }

    /// The URL without its password.
    pub(crate) fn describe(&self) -> String {
        self.description.clone()
    }

    fn checkout(&self) -> Result<Pooled<'_>, StoreError> {
        let deadline = Instant::now() + self.options.checkout_timeout;
        let mut state = lock(&self.state);
        loop {
            if let Some(client) = state.idle.pop() {
                return Ok(Pooled {
                    db: self,
                    client: Some(client),
                });
            }
            if state.open < self.options.pool_size {
                state.open += 1;
                drop(state);
                // Reserve the slot first, connect outside the lock; give the slot back if the
                // connection fails (Pooled's drop with no client).
                let mut pooled = Pooled {
                    db: self,
                    client: None,
                };
                pooled.client = Some(Conn {
                    client: self.config.connect(NoTls)?,
                    statements: HashMap::new(),
                });
                return Ok(pooled);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::PoolTimeout(self.options.checkout_timeout));
            }
            state = self
                .freed
                .wait_timeout(state, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.checkout()?;
        let client = &mut conn
            .client
            .as_mut()
            .ok_or_else(|| StoreError::BadInput("no connection".into()))?
            .client;
        let mut tx = client.transaction()?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&schema::PG_MIGRATION_LOCK],
        )?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
        let version: Option<i64> = tx
            .query_one("SELECT MAX(version) FROM schema_version", &[])?
            .try_get(0)?;
        let version = version.unwrap_or(0);
        let current = usize::try_from(version).unwrap_or(usize::MAX);
        if current > schema::POSTGRES.len() {
            return Err(StoreError::SchemaTooNew(version, schema::POSTGRES.len()));
        }
        for (i, sql) in schema::POSTGRES.iter().enumerate().skip(current) {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&i64::try_from(i + 1).unwrap_or(i64::MAX)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs `f` in one transaction (see [`super::Store`]'s `transact`).
    pub(crate) fn transact<T>(
        &self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut stale = 0;
        loop {
            let mut conn = self.checkout()?;
            let Conn { client, statements } = conn
                .client
                .as_mut()
                .ok_or_else(|| StoreError::BadInput("no connection".into()))?;
            let mut began = false;
            let result = (|| {
                let mut tx = PgTx {
                    tx: client.transaction()?,
                    statements,
                };
                began = true;
                // On `Err` the transaction is dropped, which rolls it back.
                let out = f(&mut tx)?;
                tx.tx.commit()?;
                Ok(out)
            })();
            match result {
                // A pooled connection whose server end went away (a PostgreSQL restart, a
                // failover, an idle timeout) is only noticed when used. Nothing was sent yet
                // but BEGIN, so dropping it (the pool discards closed ones) and taking the next
                // is safe; a fresh connection failing is a real error.
                Err(_) if !began && client.is_closed() && stale <= self.options.pool_size => {
                    stale += 1;
                }
                other => return other,
            }
        }
    }
}

fn big(v: u32) -> i64 {
    i64::from(v)
}

fn small(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::BadInput(format!("stored {what} {v} is out of range")))
}

/// A pooled connection and the statements prepared on it (prepared once per connection, so
/// each statement of a request is one round trip).
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

struct PgTx<'c> {
    tx: postgres::Transaction<'c>,
    statements: &'c mut HashMap<&'static str, Statement>,
}

impl PgTx<'_> {
    fn st(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.tx.prepare(sql)?;
        self.statements.insert(sql, st.clone());
        Ok(st)
    }
}

impl Tx for PgTx<'_> {
    fn module_for_update(&mut self, id: &str) -> Result<Option<(String, String)>, StoreError> {
        let st =
            self.st("SELECT record, account_id FROM modules WHERE module_id = $1 FOR UPDATE")?;
        self.tx
            .query_opt(&st, &[&id])?
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
    }

    fn update_record(&mut self, id: &str, record: &str) -> Result<(), StoreError> {
        let st = self.st("UPDATE modules SET record = $2 WHERE module_id = $1")?;
        self.tx.execute(&st, &[&id, &record])?;
        Ok(())
    }

    fn add_funds(&mut self, account: &str, funds: i64) -> Result<(), StoreError> {
        let st = self.st("INSERT INTO accounts (id, balance) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET balance = accounts.balance + excluded.balance")?;
        self.tx.execute(&st, &[&account, &funds])?;
        Ok(())
    }

    fn insert_module(
        &mut self,
        id: &str,
        registration: &str,
        record: &str,
        account: &str,
    ) -> Result<bool, StoreError> {
        let st = self.st(
            "INSERT INTO modules (module_id, registration, record, account_id)
             VALUES ($1, $2, $3, $4) ON CONFLICT (module_id) DO NOTHING",
        )?;
        let n = self
            .tx
            .execute(&st, &[&id, &registration, &record, &account])?;
        Ok(n == 1)
    }

    fn insert_fraud(&mut self, row: &FraudRow) -> Result<(), StoreError> {
        let st = self.st(
            "INSERT INTO fraud_log (module_id, kind, n, s, failure_count, blocked, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )?;
        self.tx.execute(
            &st,
            &[
                &row.module_id,
                &row.kind,
                &big(row.n),
                &big(row.s),
                &big(row.failure_count),
                &row.blocked,
                &row.at,
            ],
        )?;
        Ok(())
    }

    fn ledger_amount(&mut self, id: &str, n: u32) -> Result<Option<u32>, StoreError> {
        let st = self.st("SELECT amount FROM ledger WHERE module_id = $1 AND n = $2")?;
        self.tx
            .query_opt(&st, &[&id, &big(n)])?
            .map(|r| small(r.try_get(0)?, "amount"))
            .transpose()
    }

    fn take_funds(&mut self, account: &str, amount: u32) -> Result<bool, StoreError> {
        let st =
            self.st("UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND balance >= $2")?;
        let n = self.tx.execute(&st, &[&account, &big(amount)])?;
        Ok(n == 1)
    }

    fn insert_ledger(&mut self, e: &LedgerEntry) -> Result<(), StoreError> {
        let st = self.st(
            "INSERT INTO ledger (module_id, n, debit_account, credit_account, amount, at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )?;
        self.tx.execute(
            &st,
            &[
                &e.module_id,
                &big(e.n),
                &e.debit_account,
                &e.credit_account,
                &big(e.amount),
                &e.at,
            ],
        )?;
        Ok(())
    }

    fn module_view(
        &mut self,
        id: &str,
    ) -> Result<Option<(String, String, String, i64)>, StoreError> {
        let st = self.st("SELECT m.registration, m.record, m.account_id,
                   a.balance + CASE WHEN a.id = 'float'
                     THEN (SELECT COALESCE(SUM(l.amount), 0)::BIGINT FROM ledger l
                           WHERE l.credit_account = 'float')
                     ELSE 0 END
                 FROM modules m JOIN accounts a ON a.id = m.account_id
                 WHERE m.module_id = $1")?;
        self.tx
            .query_opt(&st, &[&id])?
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .transpose()
    }

    fn account_balance(&mut self, account: &str) -> Result<Option<i64>, StoreError> {
        let st = self.st("SELECT a.balance + CASE WHEN a.id = 'float'
                     THEN (SELECT COALESCE(SUM(l.amount), 0)::BIGINT FROM ledger l
                           WHERE l.credit_account = 'float')
                     ELSE 0 END
                 FROM accounts a WHERE a.id = $1")?;
        Ok(self
            .tx
            .query_opt(&st, &[&account])?
            .map(|r| r.try_get(0))
            .transpose()?)
    }

    fn ledger(&mut self) -> Result<Vec<LedgerEntry>, StoreError> {
        let st = self.st(
            "SELECT module_id, n, debit_account, credit_account, amount, at
                 FROM ledger ORDER BY id",
        )?;
        self.tx
            .query(&st, &[])?
            .iter()
            .map(|r| {
                Ok(LedgerEntry {
                    module_id: r.try_get(0)?,
                    n: small(r.try_get(1)?, "n")?,
                    debit_account: r.try_get(2)?,
                    credit_account: r.try_get(3)?,
                    amount: small(r.try_get(4)?, "amount")?,
                    at: r.try_get(5)?,
                })
            })
            .collect()
    }

    fn fraud_log(&mut self) -> Result<Vec<FraudRow>, StoreError> {
        let st = self.st("SELECT module_id, kind, n, s, failure_count, blocked, at
                 FROM fraud_log ORDER BY id")?;
        self.tx
            .query(&st, &[])?
            .iter()
            .map(|r| {
                Ok(FraudRow {
                    module_id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    n: small(r.try_get(2)?, "n")?,
                    s: small(r.try_get(3)?, "s")?,
                    failure_count: small(r.try_get(4)?, "failure count")?,
                    blocked: r.try_get(5)?,
                    at: r.try_get(6)?,
                })
            })
            .collect()
    }

    fn schema_version(&mut self) -> Result<i64, StoreError> {
        let st = self.st("SELECT MAX(version) FROM schema_version")?;
        Ok(self.tx.query_one(&st, &[])?.try_get(0)?)
    }

    fn total_funds(&mut self) -> Result<Option<i64>, StoreError> {
        // Imports take turns on this lock until they commit: two concurrent imports under READ
        // COMMITTED would each see the other's funds missing and could pass 2^63-1 together.
        let lock = self.st("SELECT pg_advisory_xact_lock($1)")?;
        self.tx.execute(&lock, &[&schema::PG_FUNDS_LOCK])?;
        // Summed as NUMERIC (PostgreSQL's SUM of BIGINT), so a total past 2^63-1 is NULL here
        // rather than a cast error.
        let st = self.st(
            "SELECT CASE WHEN t <= 9223372036854775807 THEN t::BIGINT END FROM (
               SELECT (SELECT COALESCE(SUM(balance), 0) FROM accounts)
                    + (SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE credit_account = 'float')
                    AS t) AS held",
        )?;
        Ok(self.tx.query_one(&st, &[])?.try_get(0)?)
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redact("postgres://simkit:s3cret@db.example:5432/signer"),
            "postgres://simkit:***@db.example:5432/signer"
        );
        assert_eq!(
            redact("postgres://simkit@db/signer"),
            "postgres://simkit@db/signer"
        );
        assert_eq!(
            redact("host=/tmp user=x password=s3cret dbname=y"),
            "host=/tmp user=x password=*** dbname=y"
        );
    }
}
