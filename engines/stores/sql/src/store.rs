//! [`SqlStore`]: the session contract over Django's table, on either backend.

use std::{fmt, sync::Arc};

use sessionkit_codec::Clock;
use sessionkit_sdk::{
    Capabilities, ConditionalSave, Progress, SessionRecord, SessionStore, SessionWrite, StoreError,
    StoreResult, Timestamp,
};

use crate::{
    account::account_id_of,
    clear,
    config::{SqlStoreOptions, validate_table_name},
    mysql::MysqlBackend,
    pg::PgBackend,
    sqlite::SqliteBackend,
    time::clamp,
    url::DatabaseUrl,
};

/// Django's `django_session` table (or a custom table of the same shape) on SQLite,
/// PostgreSQL or MySQL/MariaDB, implementing [`SessionStore`] with Django's db-backend semantics.
///
/// Thread-safe: every call takes a pooled connection for its duration. Several processes may
/// share one database (SQLite in WAL mode on a local disk, PostgreSQL, or MySQL/MariaDB).
pub struct SqlStore {
    backend: Backend,
    options: SqlStoreOptions,
    url: String,
    clock: Arc<dyn Clock>,
}

enum Backend {
    Sqlite(SqliteBackend),
    Postgres(PgBackend),
    Mysql(MysqlBackend),
}

impl SqlStore {
    /// Connects, creates the table and its indexes if they do not exist (Django's DDL, so a
    /// table made by `manage.py migrate` is used as is), and checks that the columns the store
    /// needs are there.
    ///
    /// # Errors
    ///
    /// `Config` for an invalid table name or a table without a needed column; `Unavailable`
    /// (or another kind, per the backend's error mapping) when the database cannot be reached
    /// or opened.
    pub fn open(url: &DatabaseUrl, options: SqlStoreOptions) -> Result<Self, StoreError> {
        validate_table_name(&options.table).map_err(StoreError::config)?;
        let backend = match url {
            DatabaseUrl::Sqlite(sqlite) => Backend::Sqlite(SqliteBackend::open(
                sqlite,
                &options.table,
                options.account_column,
            )?),
            DatabaseUrl::Postgres(pg) => {
                Backend::Postgres(PgBackend::open(pg, &options.table, options.account_column)?)
            }
            DatabaseUrl::Mysql(my) => Backend::Mysql(MysqlBackend::open(
                my,
                &options.table,
                options.account_column,
            )?),
        };
        Ok(Self {
            backend,
            clock: Arc::clone(&options.clock),
            options,
            url: url.redacted(),
        })
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &SqlStoreOptions {
        &self.options
    }

    /// `sqlite`, `postgresql` or `mysql`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgresql",
            Backend::Mysql(_) => "mysql",
        }
    }

    /// The SQLite group commit's batches so far and writes queued now (`None` when the store
    /// does not group writes: PostgreSQL, MySQL, `:memory:`, `?group_commit=off`), so tests and
    /// benches can see that concurrent writes share commits.
    #[cfg(feature = "test-support")]
    pub fn group_commit_counts(&self) -> Option<crate::testing::GroupCommitCounts> {
        match &self.backend {
            Backend::Sqlite(b) => b.group_commit_counts(),
            Backend::Postgres(_) | Backend::Mysql(_) => None,
        }
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The account to store for a write, when the store keeps the column.
    fn account_of(&self, write: &SessionWrite) -> Option<i32> {
        if self.options.account_column {
            account_id_of(write.session_json.as_str())
        } else {
            None
        }
    }

    fn require_account_column(&self) -> StoreResult<()> {
        if self.options.account_column {
            Ok(())
        } else {
            Err(StoreError::unsupported(format!(
                "table {:?} is opened without the account_id column",
                self.options.table
            )))
        }
    }
}

impl fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("url", &self.url)
            .field("table", &self.options.table)
            .field("account_column", &self.options.account_column)
            .finish_non_exhaustive()
    }
}

/// A session key for messages: the first 8 characters, never the whole key.
fn key_prefix(key: &str) -> &str {
    key.get(..8).unwrap_or(key)
}

impl SessionStore for SqlStore {
    /// Django's `exists`: any row with the key, expired or not.
    fn exists(&self, key: &str) -> StoreResult<bool> {
        match &self.backend {
            Backend::Sqlite(b) => b.exists(key),
            Backend::Postgres(b) => b.exists(key),
            Backend::Mysql(b) => b.exists(key),
        }
    }

    /// Django's `load`: the row with the key whose `expire_date` is after now; never creates.
    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        let now = self.now();
        match &self.backend {
            Backend::Sqlite(b) => b.load(key, now),
            Backend::Postgres(b) => b.load(key, now),
            Backend::Mysql(b) => b.load(key, now),
        }
    }

    /// Django's `save(must_create=True)`: an INSERT; a taken key is `AlreadyExists`.
    fn create(&self, mut write: SessionWrite) -> StoreResult<String> {
        write.record.expire_date = clamp(write.record.expire_date);
        let account = self.account_of(&write);
        let column = self.options.account_column;
        let result = match &self.backend {
            Backend::Sqlite(b) => b.insert(&write.record, account),
            Backend::Postgres(b) => b.insert(&write.record, account, column),
            Backend::Mysql(b) => b.insert(&write.record, account, column),
        };
        result.map_err(|mut e| {
            if e.kind == sessionkit_sdk::ErrorKind::AlreadyExists {
                e.message = format!(
                    "session key {}… is already stored ({})",
                    key_prefix(&write.record.session_key),
                    e.message
                )
                .into();
            }
            e
        })?;
        Ok(write.record.session_key.into_string())
    }

    /// Django's `save(must_create=False)`: an UPDATE by key; no row is `NotFound` (never an
    /// upsert, so a session deleted meanwhile stays deleted). Expiry is not checked, as in
    /// Django.
    fn save(&self, mut write: SessionWrite) -> StoreResult<String> {
        write.record.expire_date = clamp(write.record.expire_date);
        let account = self.account_of(&write);
        let column = self.options.account_column;
        let updated = match &self.backend {
            Backend::Sqlite(b) => b.update(&write.record, account)? as u64,
            Backend::Postgres(b) => b.update(&write.record, account, column)?,
            Backend::Mysql(b) => b.update(&write.record, account, column)?,
        };
        if updated == 0 {
            return Err(StoreError::not_found(format!(
                "session {}… is no longer stored",
                key_prefix(&write.record.session_key)
            )));
        }
        Ok(write.record.session_key.into_string())
    }

    /// Every SQL store has the conditional save (one conditional `UPDATE`); stores composed
    /// from it (cached_db) learn it here.
    fn capabilities(&self) -> Capabilities {
        Capabilities::CONDITIONAL_SAVE
    }

    /// One conditional `UPDATE` (the row's key, its `session_data` equal to what the caller
    /// loaded, and still live); when it changes no row, the live row is read to tell a
    /// conflict (returned as it is stored now) from a session that is gone (`NotFound`).
    fn save_if_unchanged(
        &self,
        mut write: SessionWrite,
        expected_data: &str,
    ) -> StoreResult<ConditionalSave> {
        write.record.expire_date = clamp(write.record.expire_date);
        let account = self.account_of(&write);
        let column = self.options.account_column;
        let now = self.now();
        let updated = match &self.backend {
            Backend::Sqlite(b) => b.update_if(&write.record, account, expected_data, now)? as u64,
            Backend::Postgres(b) => {
                b.update_if(&write.record, account, column, expected_data, now)?
            }
            Backend::Mysql(b) => b.update_if(&write.record, account, column, expected_data, now)?,
        };
        let key = write.record.session_key.into_string();
        if updated > 0 {
            return Ok(ConditionalSave::Saved(key));
        }
        match self.load(&key)? {
            Some(current) => Ok(ConditionalSave::Conflict(current)),
            None => Err(StoreError::not_found(format!(
                "session {}… is no longer stored",
                key_prefix(&key)
            ))),
        }
    }

    /// Deletes the row; a missing key is fine.
    fn delete(&self, key: &str) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(b) => b.delete(key),
            Backend::Postgres(b) => b.delete(key),
            Backend::Mysql(b) => b.delete(key),
        }
    }

    /// Django's `clear_expired`: deletes rows with `expire_date < now` in short batches (see
    /// [`ClearBatches`](crate::ClearBatches)) and returns how many went (a row expiring exactly
    /// now stays, though it no longer loads). Reports its progress when the host watches.
    fn clear_expired(&self) -> StoreResult<u64> {
        let now = self.now();
        let progress = Progress::of(clear::OPERATION);
        let batches = &self.options.clear_batches;
        match &self.backend {
            Backend::Sqlite(b) => b.clear_expired(now, batches, progress.as_ref()),
            Backend::Postgres(b) => b.clear_expired(now, batches, progress.as_ref()),
            Backend::Mysql(b) => b.clear_expired(now, batches, progress.as_ref()),
        }
    }

    /// Live sessions whose `account_id` is `account_id` (needs the account column).
    fn sessions_of_account(&self, account_id: i64) -> StoreResult<Vec<SessionRecord>> {
        self.require_account_column()?;
        // The column is an `integer`: an id outside it cannot be stored, so nothing matches.
        let Ok(account_id) = i32::try_from(account_id) else {
            return Ok(Vec::new());
        };
        let now = self.now();
        match &self.backend {
            Backend::Sqlite(b) => b.sessions_of_account(account_id, now),
            Backend::Postgres(b) => b.sessions_of_account(account_id, now),
            Backend::Mysql(b) => b.sessions_of_account(account_id, now),
        }
    }

    /// Deletes every session of `account_id` (expired ones too) except `keep`.
    fn delete_sessions_of_account(&self, account_id: i64, keep: Option<&str>) -> StoreResult<u64> {
        self.require_account_column()?;
        let Ok(account_id) = i32::try_from(account_id) else {
            return Ok(0);
        };
        match &self.backend {
            Backend::Sqlite(b) => b.delete_sessions_of_account(account_id, keep),
            Backend::Postgres(b) => b.delete_sessions_of_account(account_id, keep),
            Backend::Mysql(b) => b.delete_sessions_of_account(account_id, keep),
        }
    }
}
