//! The SQLite backend: rusqlite (bundled SQLite) over a small pool, WAL mode.

use std::{path::Path, thread, time::Duration, time::Instant};

use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, config::DbConfig,
    params,
};
use sessionkit_sdk::{ErrorKind, Progress, SessionRecord, StoreError, StoreResult, Timestamp};

use crate::{
    clear::{self, Batch, ClearBatches},
    pool::{Manager, Pool},
    schema::{Dialect, Statements, create_index_statements, create_table_statement},
    time::{parse_sqlite_text, to_sqlite_text},
    url::{SqliteLocation, SqliteUrl},
};

/// How long a statement waits for another connection's write lock before failing with
/// `Unavailable` (SQLite's `busy_timeout`).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections per file-backed store: readers run in parallel under WAL, writers queue on
/// SQLite's lock.
pub(crate) const POOL_SIZE: usize = 8;

/// How long a caller waits for a free pooled connection (longer than [`BUSY_TIMEOUT`], so a
/// queue of writers reports the lock, not the pool).
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(15);

/// How many statements each connection keeps prepared.
const STATEMENT_CACHE: usize = 16;

/// Maps every rusqlite error to the contract's error kinds; `context` says what was being done.
///
/// - busy/locked (another writer held the lock past `busy_timeout`), interrupted, I/O
///   failure, disk full, out of memory, cannot open, read-only, schema changed → `Unavailable`
/// - primary key / unique constraint → `AlreadyExists` (only INSERT can hit it)
/// - corrupt database, not a database, a stored value of the wrong type → `Corrupted`
/// - permission / authorization denied → `Config`
/// - anything else → `Other`
pub(crate) fn map_sqlite_error(context: &str, error: rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    let kind = match &error {
        rusqlite::Error::SqliteFailure(e, _) => match e.code {
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::OperationInterrupted
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::OutOfMemory
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::SchemaChanged => ErrorKind::Unavailable,
            ErrorCode::ConstraintViolation
                if e.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || e.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                ErrorKind::AlreadyExists
            }
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => ErrorKind::Corrupted,
            ErrorCode::PermissionDenied | ErrorCode::AuthorizationForStatementDenied => {
                ErrorKind::Config
            }
            _ => ErrorKind::Other,
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => ErrorKind::Corrupted,
        _ => ErrorKind::Other,
    };
    StoreError::new(kind, format!("SQLite {context}: {error}"))
}

/// Opens connections to one SQLite database with the store's settings.
pub(crate) struct SqliteManager {
    url: SqliteUrl,
}

impl Manager for SqliteManager {
    type Conn = Connection;

    fn connect(&self) -> StoreResult<Connection> {
        let conn = match &self.url.location {
            SqliteLocation::File(path) => Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| map_sqlite_error(&format!("open {}", path.display()), e))?,
            SqliteLocation::Memory => Connection::open_in_memory()
                .map_err(|e| map_sqlite_error("open in-memory database", e))?,
        };
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| map_sqlite_error("set busy_timeout", e))?;
        // Without this, SQLite reads a double-quoted name that matches no column as a string
        // literal: `"account_id"` on a table without the column would silently be a constant.
        for dqs in [
            DbConfig::SQLITE_DBCONFIG_DQS_DML,
            DbConfig::SQLITE_DBCONFIG_DQS_DDL,
        ] {
            conn.set_db_config(dqs, false)
                .map_err(|e| map_sqlite_error("disable double-quoted strings", e))?;
        }
        // Query planner stability: without it, a plan that looked at a bound value (the account
        // query: equality on one index, range on another column, ORDER BY) marks the statement
        // "re-prepare on rebind", and rusqlite's statement cache clears the bindings of every
        // statement it takes back, so each call parsed and planned the SQL again (a third of
        // `sessions_of_account`'s time). Our plans never depend on the values.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(|e| map_sqlite_error("enable query planner stability", e))?;
        if let SqliteLocation::File(path) = &self.url.location {
            enable_wal(&conn, path)?;
        }
        conn.pragma_update(None, "synchronous", self.url.synchronous.as_pragma())
            .map_err(|e| map_sqlite_error("set synchronous", e))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

/// Session keys are bearer credentials: a new database file is created readable by this user
/// only (0600) before SQLite opens it, and SQLite gives its `-wal` and `-shm` files the same
/// mode. An existing file that others can read is used as it is, with a warning (it reaches the
/// host's log) saying how to fix it: refusing it would lock out a Django app that made it.
fn create_private(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Ok(metadata) = std::fs::metadata(path)
                && metadata.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    target: "sessionkit::security",
                    file = %path.display(),
                    mode = format_args!("{:o}", metadata.permissions().mode() & 0o777),
                    "the SQLite session database can be read by other users, and it holds \
                     session keys; make it private (chmod 600 the file and its -wal and -shm \
                     files)"
                );
            }
            Ok(())
        }
        Err(error) => Err(StoreError::new(
            if error.kind() == std::io::ErrorKind::PermissionDenied {
                ErrorKind::Config
            } else {
                ErrorKind::Unavailable
            },
            format!("SQLite: cannot create {}: {error}", path.display()),
        )),
    }
}

/// Switches the file to WAL (persistent; a no-op once done). Changing the journal mode needs
/// a moment of exclusive access, which SQLite does not wait for, so a busy answer is retried
/// for up to [`BUSY_TIMEOUT`] (another process opening the file at the same moment).
fn enable_wal(conn: &Connection, path: &Path) -> StoreResult<()> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| {
            row.get::<_, String>(0)
        }) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(StoreError::unavailable(format!(
                    "SQLite {}: cannot use WAL journal mode (got {mode:?}); is it on a network \
                     file system?",
                    path.display()
                )));
            }
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    && Instant::now() < deadline =>
            {
                thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                return Err(map_sqlite_error(
                    &format!("enable WAL on {}", path.display()),
                    e,
                ));
            }
        }
    }
}

/// A store on one SQLite database.
pub(crate) struct SqliteBackend {
    pool: Pool<SqliteManager>,
    sql: Statements,
}

impl SqliteBackend {
    /// Opens the pool, creates the table and indexes if missing, and checks the columns.
    pub(crate) fn open(url: &SqliteUrl, table: &str, account_column: bool) -> StoreResult<Self> {
        // An in-memory database exists per connection: one connection holds it.
        let size = match url.location {
            SqliteLocation::Memory => 1,
            SqliteLocation::File(_) => POOL_SIZE,
        };
        if let SqliteLocation::File(path) = &url.location {
            create_private(path)?;
        }
        let pool = Pool::new(SqliteManager { url: url.clone() }, size, CHECKOUT_TIMEOUT);
        let sql = Statements::new(Dialect::Sqlite, table, account_column);
        {
            let mut conn = pool.get()?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| map_sqlite_error("begin schema transaction", e))?;
            tx.execute_batch(&create_table_statement(
                Dialect::Sqlite,
                table,
                account_column,
            ))
            .map_err(|e| map_sqlite_error(&format!("create table {table:?}"), e))?;
            tx.prepare(&sql.probe).map_err(|e| {
                StoreError::config(format!(
                    "table {table:?} in {} lacks a column the store needs: {e}",
                    pool.manager().url
                ))
            })?;
            for statement in create_index_statements(Dialect::Sqlite, table, account_column) {
                tx.execute_batch(&statement)
                    .map_err(|e| map_sqlite_error(&format!("create index on {table:?}"), e))?;
            }
            tx.commit()
                .map_err(|e| map_sqlite_error("commit schema", e))?;
        }
        Ok(Self { pool, sql })
    }

    pub(crate) fn exists(&self, key: &str) -> StoreResult<bool> {
        let conn = self.pool.get()?;
        let mut stmt = conn
            .prepare_cached(&self.sql.exists)
            .map_err(|e| map_sqlite_error("exists", e))?;
        stmt.exists(params![key])
            .map_err(|e| map_sqlite_error("exists", e))
    }

    pub(crate) fn load(&self, key: &str, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        let conn = self.pool.get()?;
        let mut stmt = conn
            .prepare_cached(&self.sql.load)
            .map_err(|e| map_sqlite_error("load", e))?;
        let row = stmt
            .query_row(params![key, to_sqlite_text(now)], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .optional()
            .map_err(|e| map_sqlite_error("load", e))?;
        row.map(|(data, expire)| record(key.to_owned(), data, &expire))
            .transpose()
    }

    pub(crate) fn insert(
        &self,
        record: &SessionRecord,
        account: Option<i32>,
        account_column: bool,
    ) -> StoreResult<()> {
        let conn = self.pool.get()?;
        let mut stmt = conn
            .prepare_cached(&self.sql.insert)
            .map_err(|e| map_sqlite_error("create", e))?;
        let key = record.session_key.as_str();
        let data = record.session_data.as_str();
        let expire = to_sqlite_text(record.expire_date);
        let result = if account_column {
            stmt.execute(params![key, data, expire, account])
        } else {
            stmt.execute(params![key, data, expire])
        };
        result.map(drop).map_err(|e| map_sqlite_error("create", e))
    }

    /// The number of rows updated (0 when the key is not stored).
    pub(crate) fn update(
        &self,
        record: &SessionRecord,
        account: Option<i32>,
        account_column: bool,
    ) -> StoreResult<usize> {
        let conn = self.pool.get()?;
        let mut stmt = conn
            .prepare_cached(&self.sql.update)
            .map_err(|e| map_sqlite_error("save", e))?;
        let key = record.session_key.as_str();
        let data = record.session_data.as_str();
        let expire = to_sqlite_text(record.expire_date);
        let result = if account_column {
            stmt.execute(params![key, data, expire, account])
        } else {
            stmt.execute(params![key, data, expire])
        };
        result.map_err(|e| map_sqlite_error("save", e))
    }

    /// The number of rows updated: 1 when the live row held `expected`, else 0.
    pub(crate) fn update_if(
        &self,
        record: &SessionRecord,
        account: Option<i32>,
        account_column: bool,
        expected: &str,
        now: Timestamp,
    ) -> StoreResult<usize> {
        let conn = self.pool.get()?;
        let mut stmt = conn
            .prepare_cached(&self.sql.update_if)
            .map_err(|e| map_sqlite_error("save_if_unchanged", e))?;
        let key = record.session_key.as_str();
        let data = record.session_data.as_str();
        let expire = to_sqlite_text(record.expire_date);
        let now = to_sqlite_text(now);
        let result = if account_column {
            stmt.execute(params![key, data, expire, account, expected, now])
        } else {
            stmt.execute(params![key, data, expire, expected, now])
        };
        result.map_err(|e| map_sqlite_error("save_if_unchanged", e))
    }

    pub(crate) fn delete(&self, key: &str) -> StoreResult<()> {
        let conn = self.pool.get()?;
        let mut stmt = conn
            .prepare_cached(&self.sql.delete)
            .map_err(|e| map_sqlite_error("delete", e))?;
        stmt.execute(params![key])
            .map(drop)
            .map_err(|e| map_sqlite_error("delete", e))
    }

    /// Deletes expired rows batch after batch (sized by `batches`), each in its own
    /// `BEGIN IMMEDIATE` transaction, pausing after each so writers waiting for the lock get
    /// it (see `clear.rs`); reports to `progress` when the host watches.
    pub(crate) fn clear_expired(
        &self,
        now: Timestamp,
        batches: &ClearBatches,
        progress: Option<&Progress>,
    ) -> StoreResult<u64> {
        let now = to_sqlite_text(now);
        let fail = |e| map_sqlite_error("clear_expired", e);
        let total = match progress {
            Some(progress) => {
                let conn = self.pool.get()?;
                let total: i64 = conn
                    .prepare_cached(&self.sql.count_expired)
                    .and_then(|mut stmt| stmt.query_row(params![now], |row| row.get(0)))
                    .map_err(fail)?;
                let total = u64::try_from(total).unwrap_or(0);
                progress.report(0, total);
                Some((progress, total))
            }
            None => None,
        };
        clear::run(batches, total, clear::sqlite_pause, |size| {
            // A connection per batch: between batches the pool may hand it to a request.
            let mut conn = self.pool.get()?;
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            let deleted = tx
                .prepare_cached(&self.sql.clear_batch)
                .and_then(|mut stmt| stmt.execute(params![now, size as i64]))
                .map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(Batch {
                deleted: deleted as u64,
            })
        })
    }

    pub(crate) fn sessions_of_account(
        &self,
        account_id: i32,
        now: Timestamp,
    ) -> StoreResult<Vec<SessionRecord>> {
        let conn = self.pool.get()?;
        let mut stmt = conn
            .prepare_cached(&self.sql.of_account)
            .map_err(|e| map_sqlite_error("sessions_of_account", e))?;
        let rows = stmt
            .query_map(params![account_id, to_sqlite_text(now)], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| map_sqlite_error("sessions_of_account", e))?;
        rows.map(|row| {
            let (key, data, expire) =
                row.map_err(|e| map_sqlite_error("sessions_of_account", e))?;
            record(key, data, &expire)
        })
        .collect()
    }

    pub(crate) fn delete_sessions_of_account(
        &self,
        account_id: i32,
        keep: Option<&str>,
    ) -> StoreResult<u64> {
        let conn = self.pool.get()?;
        let context = "delete_sessions_of_account";
        let deleted = match keep {
            Some(keep) => conn
                .prepare_cached(&self.sql.delete_of_account_keeping)
                .and_then(|mut stmt| stmt.execute(params![account_id, keep])),
            None => conn
                .prepare_cached(&self.sql.delete_of_account)
                .and_then(|mut stmt| stmt.execute(params![account_id])),
        }
        .map_err(|e| map_sqlite_error(context, e))?;
        Ok(deleted as u64)
    }
}

/// A record from a stored row; an unreadable `expire_date` is `Corrupted`.
fn record(key: String, data: String, expire: &str) -> StoreResult<SessionRecord> {
    let expire_date = parse_sqlite_text(expire).ok_or_else(|| {
        StoreError::new(
            ErrorKind::Corrupted,
            format!("SQLite row has an unreadable expire_date {expire:?}"),
        )
    })?;
    Ok(SessionRecord {
        session_key: key.into(),
        session_data: data.into(),
        expire_date,
    })
}

#[cfg(test)]
mod tests {
    use rusqlite::ffi;

    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    #[test]
    fn busy_and_locked_are_unavailable() {
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_BUSY_SNAPSHOT,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_FULL,
        ] {
            assert_eq!(
                map_sqlite_error("x", failure(code)).kind,
                ErrorKind::Unavailable,
                "{code}"
            );
        }
    }

    #[test]
    fn unique_and_primary_key_violations_are_already_exists() {
        for code in [
            ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
            ffi::SQLITE_CONSTRAINT_UNIQUE,
        ] {
            assert_eq!(
                map_sqlite_error("x", failure(code)).kind,
                ErrorKind::AlreadyExists
            );
        }
        assert_eq!(
            map_sqlite_error("x", failure(ffi::SQLITE_CONSTRAINT_NOTNULL)).kind,
            ErrorKind::Other
        );
    }

    #[test]
    fn corruption_is_corrupted() {
        assert_eq!(
            map_sqlite_error("x", failure(ffi::SQLITE_CORRUPT)).kind,
            ErrorKind::Corrupted
        );
        assert_eq!(
            map_sqlite_error("x", failure(ffi::SQLITE_NOTADB)).kind,
            ErrorKind::Corrupted
        );
        let wrong_type = rusqlite::Error::InvalidColumnType(
            1,
            "expire_date".into(),
            rusqlite::types::Type::Integer,
        );
        assert_eq!(map_sqlite_error("x", wrong_type).kind, ErrorKind::Corrupted);
    }

    #[test]
    fn messages_carry_the_context() {
        let err = map_sqlite_error("save", failure(ffi::SQLITE_BUSY));
        assert!(err.message.as_str().starts_with("SQLite save: "), "{err}");
    }

    /// The account query is planned once per connection: taking it from the statement cache
    /// again (which clears its bindings) must not make SQLite parse and plan it anew.
    #[test]
    fn cached_account_query_is_not_reprepared_on_every_call() {
        let manager = SqliteManager {
            url: SqliteUrl {
                location: SqliteLocation::Memory,
                synchronous: crate::url::Synchronous::Full,
            },
        };
        let conn = manager.connect().unwrap();
        conn.execute_batch(&create_table_statement(Dialect::Sqlite, "t", true))
            .unwrap();
        for statement in create_index_statements(Dialect::Sqlite, "t", true) {
            conn.execute_batch(&statement).unwrap();
        }
        let sql = Statements::new(Dialect::Sqlite, "t", true);
        for account in 0..5 {
            let mut stmt = conn.prepare_cached(&sql.of_account).unwrap();
            let rows = stmt
                .query_map(params![account, "2030-01-01 00:00:00"], |_| Ok(()))
                .unwrap()
                .count();
            assert_eq!(rows, 0);
            assert_eq!(
                stmt.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "call {account} re-prepared the statement"
            );
        }
    }
}
