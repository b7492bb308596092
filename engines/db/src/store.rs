//! The `db` engine's store: [`SqlStore`] on the configured table, nothing added.
//!
//! Native errors are mapped in `sessionkit-sql` (one function per backend); this wrapper only
//! forwards, so every contract method is listed explicitly.

use sessionkit_sdk::{
    CallStep, Capabilities, ConditionalSave, SessionRecord, SessionStore, SessionWrite, StoreCall,
    StoreError, StoreResult,
};
use sessionkit_sql::SqlStore;

use crate::config::DbConfig;

/// The `db` engine's store.
#[derive(Debug)]
pub struct DbStore {
    inner: SqlStore,
}

impl DbStore {
    /// Connects to the configured database and creates Django's table if it is missing.
    ///
    /// # Errors
    ///
    /// As [`SqlStore::open`]: `Config` for a bad table, `Unavailable` for a database that
    /// cannot be reached or opened.
    pub fn open(config: &DbConfig) -> Result<Self, StoreError> {
        Ok(Self {
            inner: SqlStore::open(&config.sql.url, config.store_options())?,
        })
    }

    /// The underlying SQL store (benches and tests).
    pub fn sql(&self) -> &SqlStore {
        &self.inner
    }
}

#[deny(clippy::missing_trait_methods)]
impl SessionStore for DbStore {
    fn exists(&self, key: &str) -> StoreResult<bool> {
        self.inner.exists(key)
    }

    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        self.inner.load(key)
    }

    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        self.inner.create(write)
    }

    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        self.inner.save(write)
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        self.inner.delete(key)
    }

    fn clear_expired(&self) -> StoreResult<u64> {
        self.inner.clear_expired()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    /// `Unsupported`: the `db` table has no account column (use the `account_db` engine).
    fn sessions_of_account(&self, account_id: i64) -> StoreResult<Vec<SessionRecord>> {
        self.inner.sessions_of_account(account_id)
    }

    /// `Unsupported`, as [`sessions_of_account`](Self::sessions_of_account).
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
