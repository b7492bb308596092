//! [`CachedDbStore`]: Django's `cached_db` write-through rules, composing the SQL store of the
//! `db` engine and the cache store of the `cache` engine through their libraries.
//!
//! Native errors are mapped by those libraries (one function each); this module only decides
//! which store is asked, in which order, and which failures are survivable.

use std::{fmt, sync::Arc};

use sessionkit_cache::{
    CACHED_DB_SESSION_PREFIX, CacheBackend, CacheStore, Clock, DynBackend, SystemClock, open_store,
};
use sessionkit_codec::SessionCodec;
use sessionkit_sdk::{
    CallStep, Capabilities, ConditionalSave, ErrorKind, SessionRecord, SessionStore, SessionWrite,
    StoreCall, StoreError, StoreResult, abi_stable::std_types::RString,
};
use sessionkit_sql::SqlStore;

use crate::{
    config::CachedDbConfig,
    suspects::{Marked, Suspects},
};

/// The `tracing` target of the cache failures this store survives (Django logs them on
/// `django.contrib.sessions`).
pub const LOG_TARGET: &str = "sessionkit::cached_db";

/// Sessions in a database, with a write-through cache in front (Django's `cached_db`).
///
/// The database is the truth; the cache only saves database reads:
///
/// | operation | what it does |
/// |---|---|
/// | `load` | the cache; on a miss (or a failing cache, logged) the database, then fills the cache with the record (TTL until its `expire_date`) |
/// | `create` | the database (its `AlreadyExists` and errors propagate), then the cache |
/// | `save` | removes the cache entry, updates the database (its `NotFound` and errors propagate), then writes the cache |
/// | `save_if_unchanged` | as `save`, with the database's conditional update deciding; on a conflict the cache is not written (its entry was removed first) |
/// | `delete` | the cache entry (if it cannot be removed the call fails and the row stays), then the row, then the cache entry again |
/// | `exists` | the cache, then the database |
/// | `clear_expired` | the database's (cache entries expire by themselves) |
///
/// A failed cache write never fails a create or save (the database write stands, as Django
/// 5.1+): it is logged at ERROR ("Error saving to cache") and the entry is removed, so a stale
/// entry cannot outlive it (if the removal fails too, that is logged as well). Fixes over
/// Django: the load-path fill is guarded the same way (Django's raises); `save` removes the
/// entry before the database write, so a crash between the two writes leaves no stale entry;
/// a fill uses add-if-absent, so it never overwrites a fresher entry written by a concurrent
/// save; and after a fill or a save the row is checked again, so a logout racing either one
/// never leaves its session in the cache.
///
/// **A logged-out key never loads again, and a stale entry is never served** (issue 9): a
/// `delete` removes the cache entry before the row, so a logout during a cache outage fails
/// with the session unchanged instead of leaving a loadable entry behind a deleted row; and a
/// key whose cache entry could not be removed (any failed removal above) is remembered, its
/// cache hits refused and served from the database, until a removal of it succeeds.
pub struct CachedDbStore<D = SqlStore, B = DynBackend> {
    db: D,
    cache: CacheStore<B>,
    /// The cache alias, for log lines.
    alias: String,
    /// Keys whose cache entry may be stale: never served from the cache.
    suspects: Suspects,
    /// Verifies database rows before their dict is cached (a cache keeping Django's pickled
    /// dicts holds no signature); `None` without a `SECRET_KEY`: such a cache is never filled.
    codec: Option<SessionCodec>,
}

impl CachedDbStore {
    /// Opens the database (creating Django's table if missing) and the cache alias, with
    /// Django's `cached_db` cache prefix.
    ///
    /// # Errors
    ///
    /// `Config` for bad settings; as [`SqlStore::open`] for a database that cannot be reached.
    /// A Redis cache is not contacted here (its connections open on first use).
    pub fn open(config: &CachedDbConfig) -> Result<Self, StoreError> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    /// [`open`](Self::open) with both halves judging expiry by `clock` (the host's, lent
    /// through `Engine::open_with_host`).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_with_clock(
        config: &CachedDbConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let db = SqlStore::open(
            &config.sql.url,
            config.store_options().with_clock(Arc::clone(&clock)),
        )?;
        let cache = open_store(&config.cache, CACHED_DB_SESSION_PREFIX, clock)?;
        Ok(Self::new(db, cache, config.cache.alias.clone()).with_codec(config.codec()))
    }
}

impl<D: SessionStore, B: CacheBackend + 'static> CachedDbStore<D, B> {
    /// Composes `db` and `cache` (which should use [`CACHED_DB_SESSION_PREFIX`]); `alias`
    /// names the cache in log lines.
    pub fn new(db: D, cache: CacheStore<B>, alias: impl Into<String>) -> Self {
        Self {
            db,
            cache,
            alias: alias.into(),
            suspects: Suspects::default(),
            codec: None,
        }
    }

    /// The same store verifying database rows with `codec` (SECRET_KEY, its fallbacks and the
    /// session-store salt) before it caches their dict on a cache keeping Django's values.
    #[must_use]
    pub fn with_codec(mut self, codec: Option<SessionCodec>) -> Self {
        self.codec = codec;
        self
    }

    /// The cache entry for a row just read from the database: the row itself in the JSON
    /// record format, or, on a cache keeping Django's pickled dicts, the row's verified dict;
    /// `None` when the row does not verify (nothing is cached).
    fn entry_of_row(&self, record: &SessionRecord) -> Option<SessionWrite> {
        if !self.cache.stores_django_values() {
            return Some(SessionWrite {
                record: record.clone(),
                session_json: RString::new(),
            });
        }
        let dict = self.decode_row(record)?;
        Some(SessionWrite {
            record: record.clone(),
            session_json: serde_json::Value::Object(dict).to_string().into(),
        })
    }

    /// A row's session dict, verified as the host verifies it; `None` (logged at debug) when
    /// it does not verify or there is no `SECRET_KEY`.
    fn decode_row(
        &self,
        record: &SessionRecord,
    ) -> Option<serde_json::Map<String, serde_json::Value>> {
        let codec = self.codec.as_ref()?;
        let now = self.cache_clock_now();
        match codec.decode(record.session_data.as_str(), None, now) {
            Ok(dict) => Some(dict),
            Err(error) => {
                tracing::debug!(
                    target: LOG_TARGET,
                    %error,
                    "a session row does not verify; its dict is not cached"
                );
                None
            }
        }
    }

    /// Now, in Unix seconds, for the codec (it ignores it without a `max_age`).
    fn cache_clock_now(&self) -> i64 {
        sessionkit_sdk::Timestamp::now().micros / 1_000_000
    }

    /// The database store (tests and benches).
    pub fn db(&self) -> &D {
        &self.db
    }

    /// The cache store (tests and benches).
    pub fn cache(&self) -> &CacheStore<B> {
        &self.cache
    }

    /// Caches a record just read from the database, unless a fresher entry is already there,
    /// and drops it again if the row was deleted meanwhile.
    fn fill(&self, record: &SessionRecord) {
        let key = record.session_key.as_str();
        let Some(fill) = self.entry_of_row(record) else {
            return;
        };
        match self.cache.create(fill) {
            Ok(_) => {}
            // A concurrent save or fill got there first; its entry is at least as fresh.
            Err(error) if error.kind == ErrorKind::AlreadyExists => return,
            Err(error) => {
                self.log_failed_cache_write(&error);
                self.invalidate(key);
                return;
            }
        }
        self.confirm(key);
    }

    /// Writes `record` to the cache after a database write; on failure logs it and removes the
    /// entry, so the old value cannot be served. Returns whether the entry was written.
    fn write_through(&self, write: &SessionWrite) -> bool {
        match self.cache.put(write) {
            Ok(()) => true,
            Err(error) => {
                self.log_failed_cache_write(&error);
                self.invalidate(write.record.session_key.as_str());
                false
            }
        }
    }

    /// Removes the cache entry of a row that was just found gone, or whose state is not
    /// known: a delete that ran between our database access and our cache write removed its
    /// entry before ours existed.
    fn confirm(&self, key: &str) {
        match self.db.exists(key) {
            Ok(true) => {}
            Ok(false) => {
                self.invalidate(key);
            }
            Err(error) => {
                tracing::warn!(
                    target: LOG_TARGET,
                    cache = %self.alias,
                    %error,
                    "could not confirm the session row after caching it; dropping the cache entry"
                );
                self.invalidate(key);
            }
        }
    }

    /// `save`'s steps around a database update: removes the cache entry, lets `update`
    /// decide, and when `stored` says the write was stored, writes the cache and checks the
    /// row again. Whatever `update` returns (its errors included) is the caller's answer.
    fn update_then_cache<T>(
        &self,
        write: SessionWrite,
        update: impl FnOnce(&D, SessionWrite) -> StoreResult<T>,
        stored: impl FnOnce(&T) -> bool,
    ) -> StoreResult<T> {
        let cached = write.clone();
        let session_key = cached.record.session_key.as_str();
        self.invalidate(session_key);
        let outcome = update(&self.db, write)?;
        if stored(&outcome) && self.write_through(&cached) {
            self.confirm(session_key);
        }
        Ok(outcome)
    }

    /// Removes `key`'s cache entry; on failure remembers the key as a suspect (its hits are
    /// refused until a removal succeeds) and returns the cache's error.
    fn remove_entry(&self, key: &str) -> StoreResult<()> {
        let before = self.suspects.mark_of(key);
        match self.cache.delete(key) {
            Ok(()) => {
                self.suspects.clear(key, before);
                Ok(())
            }
            Err(error) => {
                if self.suspects.mark(key) == Marked::Overflowed {
                    tracing::error!(
                        target: LOG_TARGET,
                        cache = %self.alias,
                        "Too many cache entries could not be removed ({}); every read is served \
                         from the database until this process restarts",
                        self.alias
                    );
                }
                Err(error)
            }
        }
    }

    /// Best-effort removal of a cache entry that may be stale; returns whether it was removed.
    /// A failure is logged and the key is not served from the cache until a removal succeeds.
    fn invalidate(&self, key: &str) -> bool {
        match self.remove_entry(key) {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(
                    target: LOG_TARGET,
                    cache = %self.alias,
                    %error,
                    "Error deleting a stale entry from cache ({}); the session is read from \
                     the database until its entry can be removed",
                    self.alias
                );
                false
            }
        }
    }

    /// The database's record, cached only when `key` may be: a suspect key whose entry
    /// still cannot be removed is read from the database and left uncached.
    fn load_from_database(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        let cacheable =
            !self.suspects.distrusts(key) || (!self.suspects.overflowed() && self.invalidate(key));
        let Some(record) = self.db.load(key)? else {
            return Ok(None);
        };
        let Some(record) = trusted_row(record)? else {
            return Ok(None);
        };
        if cacheable {
            self.fill(&record);
        }
        Ok(Some(record))
    }

    /// The database's conditional update of `save_if_unchanged`. `expected_data` is what a
    /// load handed out: the row's signed data (a database read), or on a cache keeping Django's
    /// dicts the dict itself (a cache hit), which is compared with the row's verified dict and,
    /// when equal, turned into the row's exact data for the database's atomic update.
    fn conditional_update(
        &self,
        db: &D,
        write: SessionWrite,
        expected_data: &str,
    ) -> StoreResult<ConditionalSave> {
        if !(expected_data.starts_with('{') && self.cache.stores_django_values()) {
            return db.save_if_unchanged(write, expected_data);
        }
        let Ok(expected) =
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(expected_data)
        else {
            return db.save_if_unchanged(write, expected_data);
        };
        let Some(row) = db.load(write.record.session_key.as_str())? else {
            // Gone: the database says so in its own words (NotFound).
            return db.save_if_unchanged(write, expected_data);
        };
        match self.decode_row(&row) {
            Some(dict) if dict == expected => {
                db.save_if_unchanged(write, row.session_data.as_str())
            }
            _ => Ok(ConditionalSave::Conflict(row)),
        }
    }

    fn log_failed_cache_write(&self, error: &StoreError) {
        tracing::error!(
            target: LOG_TARGET,
            cache = %self.alias,
            %error,
            "Error saving to cache ({})",
            self.alias
        );
    }
}

/// `record` if its data may be handed to the host: a row whose data begins with `{` would be
/// taken for an unsigned dict by a host trusting this store's `DECODED_DATA`, so it is never
/// handed out (logged); rows hold signed data only.
fn trusted_row(record: SessionRecord) -> StoreResult<Option<SessionRecord>> {
    if record.session_data.as_str().starts_with('{') {
        tracing::warn!(
            target: LOG_TARGET,
            "a session row holds unsigned data (it begins with '{{'); it is not a session"
        );
        return Ok(None);
    }
    Ok(Some(record))
}

impl<D, B> fmt::Debug for CachedDbStore<D, B>
where
    D: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedDbStore")
            .field("db", &self.db)
            .field("cache_alias", &self.alias)
            .finish_non_exhaustive()
    }
}

#[deny(clippy::missing_trait_methods)]
impl<D: SessionStore, B: CacheBackend + 'static> SessionStore for CachedDbStore<D, B> {
    /// The cache first (no database query on a hit), then the database; a suspect key only
    /// the database. A hit is the entry's record, not the key's presence: an entry whose
    /// `expire_date` passed by the store's clock (a host that moved its clock on) may outlive
    /// its row by its TTL, which runs on real time.
    fn exists(&self, key: &str) -> StoreResult<bool> {
        if self.suspects.distrusts(key) {
            return self.db.exists(key);
        }
        match self.cache.load(key) {
            Ok(Some(_)) => return Ok(true),
            Ok(None) => {}
            Err(error) => tracing::warn!(
                target: LOG_TARGET,
                cache = %self.alias,
                %error,
                "Error reading from cache; asking the database"
            ),
        }
        self.db.exists(key)
    }

    /// The cached record; on a miss or a failing cache, the database's, then cached. A
    /// suspect key (its entry may be stale) is the database's.
    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        if self.suspects.distrusts(key) {
            return self.load_from_database(key);
        }
        match self.cache.load(key) {
            Ok(Some(record)) => return Ok(Some(record)),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(
                    target: LOG_TARGET,
                    cache = %self.alias,
                    %error,
                    "Error reading from cache; reading the database"
                );
                if error.kind == ErrorKind::Corrupted {
                    self.invalidate(key);
                }
            }
        }
        self.load_from_database(key)
    }

    /// The database insert decides (`AlreadyExists` included); then the cache, never fatally.
    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        let cached = write.clone();
        let key = self.db.create(write)?;
        // A fresh key: no logout can race it, so no confirmation read.
        self.write_through(&cached);
        Ok(key)
    }

    /// Drops the cache entry, then the database update decides (`NotFound` included); then
    /// the cache, never fatally.
    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        self.update_then_cache(write, |db, write| db.save(write), |_| true)
    }

    /// The cache entry, then the row, then the cache entry again; never half-done.
    ///
    /// A cache entry that cannot be removed fails the call before the row is touched: the
    /// session is unchanged (it still loads, from the row or the entry) and the logout can be
    /// retried. The second removal catches a load that cached the row between the first
    /// removal and the row delete; if it fails, the row is gone already, so the logout stands
    /// and the key is remembered as a suspect (logged), never served from the cache again.
    fn delete(&self, key: &str) -> StoreResult<()> {
        self.remove_entry(key).map_err(|error| {
            StoreError::new(
                error.kind,
                format!(
                    "the session was not deleted: its cache entry could not be removed, so the \
                     row was kept and the session is unchanged: {}",
                    error.message
                ),
            )
        })?;
        self.db.delete(key)?;
        self.invalidate(key);
        Ok(())
    }

    /// The database's: expired rows go; cache entries expire by themselves.
    fn clear_expired(&self) -> StoreResult<u64> {
        self.db.clear_expired()
    }

    /// `CONDITIONAL_SAVE` when the database store has it (it decides conditional saves), and
    /// `NON_BLOCKING` only when both sides are; nothing else of either side's.
    fn capabilities(&self) -> Capabilities {
        let db = self.db.capabilities();
        let cache = self.cache.capabilities();
        let mut added = Capabilities::NONE;
        if cache.contains(Capabilities::DECODED_DATA) {
            added = added | Capabilities::DECODED_DATA;
        }
        if db.contains(Capabilities::CONDITIONAL_SAVE) {
            added = added | Capabilities::CONDITIONAL_SAVE;
        }
        if db.contains(Capabilities::NON_BLOCKING) && cache.contains(Capabilities::NON_BLOCKING) {
            added = added | Capabilities::NON_BLOCKING;
        }
        added
    }

    /// `Unsupported`: `cached_db` keeps no account index (use `account_db`).
    fn sessions_of_account(&self, account_id: i64) -> StoreResult<Vec<SessionRecord>> {
        let _ = account_id;
        Err(StoreError::unsupported(
            "the cached_db engine has no account index (use the account_db engine)",
        ))
    }

    /// `Unsupported`, as [`sessions_of_account`](Self::sessions_of_account): deleting rows
    /// behind the cache's back would leave their entries loadable.
    fn delete_sessions_of_account(&self, account_id: i64, keep: Option<&str>) -> StoreResult<u64> {
        let _ = (account_id, keep);
        Err(StoreError::unsupported(
            "the cached_db engine has no account index (use the account_db engine)",
        ))
    }

    /// The database's conditional update decides (`Unsupported` and `NotFound` included);
    /// the cache follows as for `save` when it saved. On a conflict nothing is cached: the
    /// entry was removed before the update, so the next load reads the winner's record.
    fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: &str,
    ) -> StoreResult<ConditionalSave> {
        let outcome = self.update_then_cache(
            write,
            |db, write| self.conditional_update(db, write, expected_data),
            |outcome| matches!(outcome, ConditionalSave::Saved(_)),
        )?;
        match outcome {
            ConditionalSave::Conflict(record) => Ok(ConditionalSave::Conflict(
                trusted_row(record)?.ok_or_else(|| {
                    StoreError::new(
                        ErrorKind::Corrupted,
                        "the session row holds unsigned data; it is never handed out",
                    )
                })?,
            )),
            saved => Ok(saved),
        }
    }

    /// Every call runs the blocking way: a read-through or write-through goes to the cache
    /// and the database in turn, which one started call cannot chain.
    fn start_call(&self, call: StoreCall) -> CallStep {
        CallStep::Blocking(call)
    }

    fn resume_call(&self, _ticket: u64, _timed_out: bool) -> CallStep {
        CallStep::done(Err(StoreError::other(
            "resume_call of the cached_db store, which starts no call",
        )))
    }

    fn cancel_call(&self, _ticket: u64) {}
}
