//! An in-process engine for tests and examples: [`MemoryStore`].
//!
//! Every rule of [`Session`](crate::Session) can be tried without a plugin library or a server:
//! the store keeps records in a map, judges expiry by the clock it is given, and is opened as an
//! [`Engine`] with [`MemoryStore::engine`]. It is also the reference the conformance runner's own
//! tests check the suite against.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use abi_stable::std_types::RStr;
use sessionkit_codec::{
    SESSION_STORE_SALT,
    expiry::{Clock, SystemClock},
};
use sessionkit_sdk::{
    Capabilities, ConditionalSave, EngineInfo, KeyFormat, SessionRecord, SessionStore,
    SessionWrite, StoreError, StoreResult, Timestamp, store::FfiAdapter,
};

use crate::{Engine, Error, Settings};

/// A server-side store in a map (Django's contract, in memory). Clones share the records.
///
/// # Examples
///
/// ```
/// use sessionkit::{Settings, testing::MemoryStore};
///
/// let store = MemoryStore::new();
/// let engine = store.engine(&Settings::new("a secret"))?;
/// let mut session = engine.session(None);
/// session.insert("cart", vec![1, 2])?;
/// session.save()?;
/// assert_eq!(store.len(), 1);
/// # Ok::<(), sessionkit::Error>(())
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    records: Arc<Mutex<HashMap<String, SessionRecord>>>,
    clock: Arc<dyn Clock>,
}

impl MemoryStore {
    /// What the memory engine declares: Django session keys, the server-side salt, and a store
    /// that can revoke sessions, clear expired ones and never blocks.
    pub const INFO: EngineInfo = EngineInfo {
        name: RStr::from_str("memory"),
        version: RStr::from_str(env!("CARGO_PKG_VERSION")),
        salt: RStr::from_str(SESSION_STORE_SALT),
        capabilities: Capabilities::SERVER_SIDE_INVALIDATION
            .union(Capabilities::CLEAR_EXPIRED)
            .union(Capabilities::NON_BLOCKING)
            .union(Capabilities::CONDITIONAL_SAVE),
        key_format: KeyFormat::DjangoSessionKey,
    };

    /// An empty store judging expiry by the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// An empty store judging expiry by `clock` (a `ManualClock` lets a test move time).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            records: Arc::default(),
            clock,
        }
    }

    /// This store opened as an engine with `settings`, judging time by the store's clock.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] for invalid settings.
    pub fn engine(&self, settings: &Settings) -> Result<Engine, Error> {
        let store = FfiAdapter::new("memory", self.clone()).into_box();
        Ok(Engine::from_store(Self::INFO, store, settings)?.with_clock(Arc::clone(&self.clock)))
    }

    /// How many records are stored, live or expired.
    pub fn len(&self) -> usize {
        self.records().len()
    }

    /// Whether no record is stored.
    pub fn is_empty(&self) -> bool {
        self.records().is_empty()
    }

    /// The record under `key`, live or expired (what the engine would find on disk).
    pub fn record(&self, key: &str) -> Option<SessionRecord> {
        self.records().get(key).cloned()
    }

    /// Stores `record` directly, as another process writing to the same store would.
    pub fn put(&self, record: SessionRecord) {
        self.records()
            .insert(record.session_key.to_string(), record);
    }

    /// Removes the record under `key` directly (another request's logout); returns it.
    pub fn remove(&self, key: &str) -> Option<SessionRecord> {
        self.records().remove(key)
    }

    fn records(&self) -> MutexGuard<'_, HashMap<String, SessionRecord>> {
        // A panic while holding the lock cannot leave the map half-changed: every change is a
        // single `HashMap` call.
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never prints keys or data: both are secrets.
        f.debug_struct("MemoryStore")
            .field("records", &self.len())
            .finish_non_exhaustive()
    }
}

impl SessionStore for MemoryStore {
    fn exists(&self, key: &str) -> StoreResult<bool> {
        Ok(self.records().contains_key(key))
    }

    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        let now = self.now();
        Ok(self
            .records()
            .get(key)
            .filter(|record| record.expire_date > now)
            .cloned())
    }

    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        let key = write.record.session_key.to_string();
        let mut records = self.records();
        if records.contains_key(&key) {
            return Err(StoreError::already_exists("session key taken"));
        }
        records.insert(key.clone(), write.record);
        Ok(key)
    }

    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        let key = write.record.session_key.to_string();
        match self.records().get_mut(&key) {
            Some(slot) => {
                *slot = write.record;
                Ok(key)
            }
            None => Err(StoreError::not_found("session deleted meanwhile")),
        }
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        self.records().remove(key);
        Ok(())
    }

    fn clear_expired(&self) -> StoreResult<u64> {
        let now = self.now();
        let mut records = self.records();
        let before = records.len();
        records.retain(|_, record| record.expire_date > now);
        Ok((before - records.len()) as u64)
    }

    /// Compares and replaces under the map's lock.
    fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: &str,
    ) -> StoreResult<ConditionalSave> {
        let key = write.record.session_key.to_string();
        let now = self.now();
        let mut records = self.records();
        match records.get_mut(&key) {
            Some(slot) if slot.expire_date > now => {
                if slot.session_data.as_str() == expected_data {
                    *slot = write.record;
                    Ok(ConditionalSave::Saved(key))
                } else {
                    Ok(ConditionalSave::Conflict(slot.clone()))
                }
            }
            _ => Err(StoreError::not_found(
                "session deleted or expired meanwhile",
            )),
        }
    }
}
