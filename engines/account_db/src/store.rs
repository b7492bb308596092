//! The `account_db` engine's store: [`SqlStore`] on the configured table with the `account_id`
//! column switched on.
//!
//! Native errors are mapped in `sessionkit-sql` (one function per backend), and so is the
//! `account_id` rule (Python's `int()` of `_auth_user_id`, NULL otherwise); this wrapper only
//! forwards, so every contract method is listed explicitly.

use sessionkit_sdk::{
    CallStep, Capabilities, ConditionalSave, SessionRecord, SessionStore, SessionWrite, StoreCall,
    StoreError, StoreResult,
};
use sessionkit_sql::SqlStore;

use crate::config::AccountDbConfig;

/// The `account_db` engine's store.
#[derive(Debug)]
pub struct AccountDbStore {
    inner: SqlStore,
}

impl AccountDbStore {
    /// Connects to the configured database and creates the table (Django's `CustomSession`
    /// layout) and its indexes if they are missing; an existing table is used as is.
    ///
    /// # Errors
    ///
    /// As [`SqlStore::open`]: `Config` for a bad table name or an existing table without an
    /// `account_id` column (Django's stock `django_session`), `Unavailable` for a database
    /// that cannot be reached or opened.
    pub fn open(config: &AccountDbConfig) -> Result<Self, StoreError> {
        Ok(Self {
            inner: SqlStore::open(&config.sql.url, config.store_options())?,
        })
    }

    /// The same store over an already opened [`SqlStore`] (benches and tests with a clock);
    /// it must have been opened with the account column.
    ///
    /// # Errors
    ///
    /// `Config` when `inner` has no account column: this engine would then advertise an
    /// index it cannot answer.
    pub fn from_sql(inner: SqlStore) -> Result<Self, StoreError> {
        if inner.options().account_column {
            Ok(Self { inner })
        } else {
            Err(StoreError::config(format!(
                "table {:?} was opened without the account_id column",
                inner.options().table
            )))
        }
    }

    /// The underlying SQL store (benches and tests).
    pub fn sql(&self) -> &SqlStore {
        &self.inner
    }
}

#[deny(clippy::missing_trait_methods)]
impl SessionStore for AccountDbStore {
    fn exists(&self, key: &str) -> StoreResult<bool> {
        self.inner.exists(key)
    }

    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        self.inner.load(key)
    }

    /// Inserts the row with `account_id` from `_auth_user_id` in `write.session_json`.
    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        self.inner.create(write)
    }

    /// Updates the row and recomputes `account_id` (NULL once `_auth_user_id` is gone).
    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        self.inner.save(write)
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        self.inner.delete(key)
    }

    fn clear_expired(&self) -> StoreResult<u64> {
        self.inner.clear_expired()
    }

    /// What the SQL store adds for its settings (nothing today: every call may block on I/O).
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    /// The live rows with `account_id = account_id`, newest expiry first, through its index.
    fn sessions_of_account(&self, account_id: i64) -> StoreResult<Vec<SessionRecord>> {
        self.inner.sessions_of_account(account_id)
    }

    /// Deletes the account's rows (expired ones too) except `keep`, in one statement.
    fn delete_sessions_of_account(&self, account_id: i64, keep: Option<&str>) -> StoreResult<u64> {
        self.inner.delete_sessions_of_account(account_id, keep)
    }

    fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: &str,
    ) -> StoreResult<ConditionalSave> {
        self.inner.save_if_unchanged(write, expected_data)
    }

    fn start_call(&self, call: StoreCall) -> CallStep {
        self.inner.start_call(call)
    }

    fn resume_call(&self, ticket: u64, timed_out: bool) -> CallStep {
        self.inner.resume_call(ticket, timed_out)
    }

    fn cancel_call(&self, ticket: u64) {
        self.inner.cancel_call(ticket);
    }
}
