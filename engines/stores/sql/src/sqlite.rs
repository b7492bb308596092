//! The SQLite backend: rusqlite (bundled SQLite) over a small pool, WAL mode.

use std::{path::Path, thread, time::Duration, time::Instant};

use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, config::DbConfig,
    params,
};
use sessionkit_group_commit::GroupCommit;
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

/// The most writes one group commit puts in one transaction: enough for every writer of a busy
/// host to share a commit, few enough that the write lock is held for milliseconds, not more.
const MAX_BATCH: usize = 128;

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
    /// Whether rows carry the `account_id` column (bound by the writes).
    account_column: bool,
    /// Batches concurrent writes into shared commits: a file database with `group_commit`
    /// on (the default); `None` for `:memory:` or `?group_commit=off`, one commit per write.
    group: Option<GroupCommit<Write, StoreResult<usize>>>,
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
        let group = match url.location {
            SqliteLocation::File(_) if url.group_commit => Some(GroupCommit::new(MAX_BATCH)),
            _ => None,
        };
        Ok(Self {
            pool,
            sql,
            account_column,
            group,
        })
    }

    /// The group commit's counts (`None` without group commit).
    #[cfg(feature = "test-support")]
    pub(crate) fn group_commit_counts(&self) -> Option<crate::testing::GroupCommitCounts> {
        self.group
            .as_ref()
            .map(|group| crate::testing::GroupCommitCounts {
                batches: group.batches(),
                queued: group.queued(),
            })
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

    /// Stores a new row (Django's `save(must_create=True)`); a taken key is `AlreadyExists`.
    pub(crate) fn insert(&self, record: &SessionRecord, account: Option<i32>) -> StoreResult<()> {
        self.write(Write::Insert(Row::of(record, account)))
            .map(drop)
    }

    /// The number of rows updated (0 when the key is not stored).
    pub(crate) fn update(
        &self,
        record: &SessionRecord,
        account: Option<i32>,
    ) -> StoreResult<usize> {
        self.write(Write::Update(Row::of(record, account)))
    }

    /// The number of rows updated: 1 when the live row held `expected`, else 0.
    pub(crate) fn update_if(
        &self,
        record: &SessionRecord,
        account: Option<i32>,
        expected: &str,
        now: Timestamp,
    ) -> StoreResult<usize> {
        self.write(Write::UpdateIf {
            row: Row::of(record, account),
            expected: expected.to_owned(),
            now: to_sqlite_text(now),
        })
    }

    pub(crate) fn delete(&self, key: &str) -> StoreResult<()> {
        self.write(Write::Delete {
            key: key.to_owned(),
        })
        .map(drop)
    }

    /// Runs one write: through the group commit when the store has one, else on a pooled
    /// connection in autocommit (one commit, one fsync, per write).
    fn write(&self, write: Write) -> StoreResult<usize> {
        let Some(group) = &self.group else {
            let conn = self.pool.get()?;
            return write.execute(&conn, &self.sql, self.account_column);
        };
        let context = write.context();
        group
            .submit(write, |batch| self.commit_batch(&batch))
            .unwrap_or_else(|panicked| {
                Err(StoreError::new(
                    ErrorKind::Other,
                    format!("SQLite {context}: {panicked}"),
                ))
            })
    }

    /// The leader's side of a group commit: the batch's writes in one `BEGIN IMMEDIATE …
    /// COMMIT` on one connection, each keeping its own outcome. A batch of one runs in
    /// autocommit, exactly as without group commit, so a lone writer pays nothing extra.
    fn commit_batch(&self, batch: &[Write]) -> Vec<StoreResult<usize>> {
        let mut conn = match self.pool.get() {
            Ok(conn) => conn,
            Err(error) => return vec![Err(error); batch.len()],
        };
        if let [write] = batch {
            return vec![write.execute(&conn, &self.sql, self.account_column)];
        }
        let outcomes = commit_in_one_transaction(&mut conn, batch, &self.sql, self.account_column);
        // The transaction is committed or rolled back by now; a connection still inside one
        // (its ROLLBACK failed too) is in an unknown state: close it rather than reuse it.
        if !conn.is_autocommit() {
            conn.mark_broken();
        }
        outcomes
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

/// The values a write stores in a row, owned so the write can wait in a group commit's queue.
pub(crate) struct Row {
    key: String,
    data: String,
    /// `expire_date` as SQLite text.
    expire: String,
    account: Option<i32>,
}

impl Row {
    fn of(record: &SessionRecord, account: Option<i32>) -> Self {
        Self {
            key: record.session_key.as_str().to_owned(),
            data: record.session_data.as_str().to_owned(),
            expire: to_sqlite_text(record.expire_date),
            account,
        }
    }
}

/// One session write: the statement it runs and its values. Its outcome is the number of rows
/// it changed.
pub(crate) enum Write {
    /// `create`: an INSERT (a taken key fails this write alone, as `AlreadyExists`).
    Insert(Row),
    /// `save`: an UPDATE by key.
    Update(Row),
    /// `save_if_unchanged`: an UPDATE of the live row whose data is still `expected`.
    UpdateIf {
        row: Row,
        expected: String,
        /// "Now" as SQLite text, for the live check.
        now: String,
    },
    /// `delete`: a DELETE by key.
    Delete { key: String },
}

impl Write {
    /// The operation's name, for messages.
    fn context(&self) -> &'static str {
        match self {
            Self::Insert(_) => "create",
            Self::Update(_) => "save",
            Self::UpdateIf { .. } => "save_if_unchanged",
            Self::Delete { .. } => "delete",
        }
    }

    /// Runs the write's statement on `conn` (in autocommit, or inside the caller's transaction).
    fn execute(
        &self,
        conn: &Connection,
        sql: &Statements,
        account_column: bool,
    ) -> StoreResult<usize> {
        let run = |statement: &str, values: &[&dyn rusqlite::ToSql]| {
            conn.prepare_cached(statement)
                .and_then(|mut stmt| stmt.execute(values))
        };
        let result = match self {
            Self::Insert(row) | Self::Update(row) => {
                let statement = match self {
                    Self::Insert(_) => &sql.insert,
                    _ => &sql.update,
                };
                if account_column {
                    run(
                        statement,
                        params![row.key, row.data, row.expire, row.account],
                    )
                } else {
                    run(statement, params![row.key, row.data, row.expire])
                }
            }
            Self::UpdateIf { row, expected, now } => {
                if account_column {
                    run(
                        &sql.update_if,
                        params![row.key, row.data, row.expire, row.account, expected, now],
                    )
                } else {
                    run(
                        &sql.update_if,
                        params![row.key, row.data, row.expire, expected, now],
                    )
                }
            }
            Self::Delete { key } => run(&sql.delete, params![key]),
        };
        result.map_err(|e| map_sqlite_error(self.context(), e))
    }
}

/// Runs `batch` in one `BEGIN IMMEDIATE … COMMIT`, in order (a write sees the writes queued
/// before it), and returns one outcome per write; none is a success unless the COMMIT was.
///
/// No savepoints are needed to keep one write's failure from the others: SQLite undoes a
/// failed statement alone (a taken key, a constraint) and the transaction goes on. The errors
/// that make SQLite roll back the whole transaction instead (I/O error, disk full, out of
/// memory, `RAISE(ROLLBACK)`) leave the connection in autocommit, checked after each write:
/// then nothing of the batch is stored and every write in it fails, and the writes not run yet
/// are not run (in autocommit each would commit on its own, outside the batch).
fn commit_in_one_transaction(
    conn: &mut Connection,
    batch: &[Write],
    sql: &Statements,
    account_column: bool,
) -> Vec<StoreResult<usize>> {
    let every = |error: StoreError| vec![Err(error); batch.len()];
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return every(map_sqlite_error("begin group commit", e)),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for write in batch {
        let outcome = write.execute(&tx, sql, account_column);
        if tx.is_autocommit() {
            let (kind, cause) = match &outcome {
                Err(error) => (error.kind, error.message.to_string()),
                Ok(_) => (ErrorKind::Unavailable, "no error reported".to_owned()),
            };
            return every(StoreError::new(
                kind,
                format!(
                    "SQLite rolled back a group commit of {} writes during a {} ({cause}); \
                     none of them is stored",
                    batch.len(),
                    write.context()
                ),
            ));
        }
        outcomes.push(outcome);
    }
    // A failed COMMIT drops `tx`, which rolls back what is left of the transaction.
    match tx.commit() {
        Ok(()) => outcomes,
        Err(e) => every(map_sqlite_error("commit of a group of writes", e)),
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

    /// A file database (group commit on) holding session `a` with data `a0`.
    fn file_backend(dir: &tempfile::TempDir) -> SqliteBackend {
        let url = SqliteUrl {
            location: SqliteLocation::File(dir.path().join("sessions.sqlite3")),
            synchronous: crate::url::Synchronous::Full,
            group_commit: true,
        };
        let backend = SqliteBackend::open(&url, "django_session", false).unwrap();
        backend
            .insert(
                &SessionRecord::new("a", "a0", Timestamp::from_micros(4_070_908_800_000_000)),
                None,
            )
            .unwrap();
        backend
    }

    fn row(key: &str, data: &str) -> Row {
        Row {
            key: key.to_owned(),
            data: data.to_owned(),
            expire: "2099-01-01 00:00:00".to_owned(),
            account: None,
        }
    }

    fn stored(backend: &SqliteBackend, key: &str) -> Option<String> {
        backend
            .load(key, Timestamp::now())
            .unwrap()
            .map(|record| record.session_data.to_string())
    }

    /// One transaction, each write its own outcome, each seeing the writes before it.
    #[test]
    fn a_batch_gives_each_write_its_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let backend = file_backend(&dir);
        let now = to_sqlite_text(Timestamp::now());
        let batch = [
            Write::Insert(row("b", "b1")),
            Write::Insert(row("b", "b2")),
            Write::UpdateIf {
                row: row("a", "a1"),
                expected: "a0".to_owned(),
                now: now.clone(),
            },
            Write::UpdateIf {
                row: row("a", "a2"),
                expected: "a0".to_owned(),
                now,
            },
            Write::Update(row("gone", "x")),
            Write::Delete { key: "b".into() },
            Write::Insert(row("b", "b3")),
            Write::Delete {
                key: "never".into(),
            },
        ];
        let outcomes = backend.commit_batch(&batch);
        let kinds: Vec<Result<usize, ErrorKind>> = outcomes
            .into_iter()
            .map(|outcome| outcome.map_err(|e| e.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                Ok(1),
                Err(ErrorKind::AlreadyExists), // taken by the write before it, in the same batch
                Ok(1),
                Ok(0), // stale: the write before it changed the data
                Ok(0), // no such row
                Ok(1),
                Ok(1), // the key the delete freed
                Ok(0),
            ]
        );
        assert_eq!(stored(&backend, "a").as_deref(), Some("a1"));
        assert_eq!(stored(&backend, "b").as_deref(), Some("b3"));
        assert_eq!(stored(&backend, "gone"), None);
    }

    /// When SQLite rolls the transaction back mid-batch (here a trigger's `RAISE(ROLLBACK)`,
    /// standing in for an I/O error or a full disk), no write of the batch is reported done,
    /// none is stored, and the writes after the failing one are not run in autocommit.
    #[test]
    fn a_transaction_sqlite_rolls_back_fails_every_write_of_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let backend = file_backend(&dir);
        backend
            .pool
            .get()
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER boom BEFORE INSERT ON django_session \
                 WHEN NEW.session_key = 'boom' BEGIN SELECT RAISE(ROLLBACK, 'boom'); END",
            )
            .unwrap();
        let batch = [
            Write::Update(row("a", "a1")),
            Write::Insert(row("b", "b1")),
            Write::Insert(row("boom", "x")),
            Write::Insert(row("c", "c1")),
            Write::Delete { key: "a".into() },
        ];
        let outcomes = backend.commit_batch(&batch);
        assert_eq!(outcomes.len(), batch.len());
        for outcome in &outcomes {
            let error = outcome.as_ref().unwrap_err();
            assert!(
                error
                    .message
                    .contains("rolled back a group commit of 5 writes"),
                "{error}"
            );
        }
        assert_eq!(stored(&backend, "a").as_deref(), Some("a0"));
        assert_eq!(stored(&backend, "b"), None);
        assert_eq!(stored(&backend, "c"), None);
        // The connection is back in the pool and works.
        let again =
            backend.commit_batch(&[Write::Insert(row("b", "b1")), Write::Insert(row("c", "c1"))]);
        assert!(again.iter().all(Result::is_ok), "{again:?}");
        assert_eq!(stored(&backend, "c").as_deref(), Some("c1"));
    }

    /// The account query is planned once per connection: taking it from the statement cache
    /// again (which clears its bindings) must not make SQLite parse and plan it anew.
    #[test]
    fn cached_account_query_is_not_reprepared_on_every_call() {
        let manager = SqliteManager {
            url: SqliteUrl {
                location: SqliteLocation::Memory,
                synchronous: crate::url::Synchronous::Full,
                group_commit: true,
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
