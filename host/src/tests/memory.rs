//! In-process test engines: an in-memory server-side store and a signed-cookie store, both
//! judging time by a shared `ManualClock` and counting the calls that reach them.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
};

use abi_stable::std_types::RStr;
use chrono::{TimeZone, Utc};
use sessionkit_codec::{SESSION_STORE_SALT, SIGNED_COOKIES_SALT};
use sessionkit_sdk::{
    Capabilities, EngineInfo, ErrorKind, KeyFormat, SessionRecord, SessionStore, SessionWrite,
    StoreError, StoreResult, store::FfiAdapter,
};

use crate::{Clock, Engine, ManualClock, Settings};

/// The secret every test engine signs with.
pub const SECRET: &str = "django-insecure-test-secret";

/// What a test engine shares with the test: its records, its clock and its counters.
#[derive(Clone)]
pub struct Probe {
    inner: Arc<ProbeInner>,
}

struct ProbeInner {
    records: Mutex<HashMap<String, SessionRecord>>,
    clock: ManualClock,
    calls: AtomicUsize,
    loads: AtomicUsize,
    creates: AtomicUsize,
    /// How many more `create` calls report the key as taken.
    collisions: AtomicU32,
    fail: Mutex<Option<ErrorKind>>,
}

impl Probe {
    fn new() -> Self {
        let start = Utc
            .with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
            .single()
            .expect("a valid date");
        Self {
            inner: Arc::new(ProbeInner {
                records: Mutex::new(HashMap::new()),
                clock: ManualClock::new(start),
                calls: AtomicUsize::new(0),
                loads: AtomicUsize::new(0),
                creates: AtomicUsize::new(0),
                collisions: AtomicU32::new(0),
                fail: Mutex::new(None),
            }),
        }
    }

    /// The clock both the engine and the store use.
    pub fn clock(&self) -> &ManualClock {
        &self.inner.clock
    }

    /// How many contract calls reached the store.
    pub fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    /// How many `load` calls reached the store.
    pub fn loads(&self) -> usize {
        self.inner.loads.load(Ordering::SeqCst)
    }

    /// How many `create` calls reached the store.
    pub fn creates(&self) -> usize {
        self.inner.creates.load(Ordering::SeqCst)
    }

    /// How many records are stored (live or not).
    pub fn len(&self) -> usize {
        self.inner.records.lock().unwrap().len()
    }

    /// The stored record under `key`, live or not.
    pub fn record(&self, key: &str) -> Option<SessionRecord> {
        self.inner.records.lock().unwrap().get(key).cloned()
    }

    /// Stores `record` directly, bypassing the host.
    pub fn put(&self, record: SessionRecord) {
        self.inner
            .records
            .lock()
            .unwrap()
            .insert(record.session_key.to_string(), record);
    }

    /// Removes `key` directly (another request's logout).
    pub fn remove(&self, key: &str) {
        self.inner.records.lock().unwrap().remove(key);
    }

    /// Makes the next `n` creates report the key as taken.
    pub fn collide(&self, n: u32) {
        self.inner.collisions.store(n, Ordering::SeqCst);
    }

    /// Makes every call fail with `kind` (or succeed again with `None`).
    pub fn fail_with(&self, kind: Option<ErrorKind>) {
        *self.inner.fail.lock().unwrap() = kind;
    }

    fn enter(&self) -> StoreResult<()> {
        self.inner.calls.fetch_add(1, Ordering::SeqCst);
        match *self.inner.fail.lock().unwrap() {
            Some(kind) => Err(StoreError::new(kind, "injected failure")),
            None => Ok(()),
        }
    }

    fn now(&self) -> sessionkit_sdk::Timestamp {
        self.inner.clock.now()
    }
}

/// A server-side store: Django's contract, in a map.
struct MemoryStore(Probe);

impl SessionStore for MemoryStore {
    fn exists(&self, key: &str) -> StoreResult<bool> {
        self.0.enter()?;
        Ok(self.0.inner.records.lock().unwrap().contains_key(key))
    }

    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        self.0.enter()?;
        self.0.inner.loads.fetch_add(1, Ordering::SeqCst);
        let now = self.0.now();
        Ok(self
            .0
            .inner
            .records
            .lock()
            .unwrap()
            .get(key)
            .filter(|r| r.expire_date > now)
            .cloned())
    }

    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        self.0.enter()?;
        self.0.inner.creates.fetch_add(1, Ordering::SeqCst);
        let collided = self
            .0
            .inner
            .collisions
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let key = write.record.session_key.to_string();
        let mut records = self.0.inner.records.lock().unwrap();
        if collided || records.contains_key(&key) {
            return Err(StoreError::already_exists("key taken"));
        }
        records.insert(key.clone(), write.record);
        Ok(key)
    }

    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        self.0.enter()?;
        let key = write.record.session_key.to_string();
        match self.0.inner.records.lock().unwrap().get_mut(&key) {
            Some(slot) => {
                *slot = write.record;
                Ok(key)
            }
            None => Err(StoreError::not_found("session vanished")),
        }
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        self.0.enter()?;
        self.0.inner.records.lock().unwrap().remove(key);
        Ok(())
    }

    fn clear_expired(&self) -> StoreResult<u64> {
        self.0.enter()?;
        let now = self.0.now();
        let mut records = self.0.inner.records.lock().unwrap();
        let before = records.len();
        records.retain(|_, r| r.expire_date > now);
        Ok((before - records.len()) as u64)
    }
}

/// A signed-cookie store: the key is the signed payload; nothing is kept.
struct CookieStore(Probe);

impl SessionStore for CookieStore {
    fn exists(&self, _key: &str) -> StoreResult<bool> {
        self.0.enter()?;
        Ok(false)
    }

    fn load(&self, _key: &str) -> StoreResult<Option<SessionRecord>> {
        self.0.enter()?;
        Ok(None)
    }

    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        self.0.enter()?;
        Ok(write.record.session_data.to_string())
    }

    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        self.0.enter()?;
        Ok(write.record.session_data.to_string())
    }

    fn delete(&self, _key: &str) -> StoreResult<()> {
        self.0.enter()?;
        Ok(())
    }

    fn clear_expired(&self) -> StoreResult<u64> {
        self.0.enter()?;
        Ok(0)
    }
}

const MEMORY_INFO: EngineInfo = EngineInfo {
    name: RStr::from_str("memory"),
    version: RStr::from_str("0.0.0"),
    salt: RStr::from_str(SESSION_STORE_SALT),
    capabilities: Capabilities::SERVER_SIDE_INVALIDATION.union(Capabilities::CLEAR_EXPIRED),
    key_format: KeyFormat::DjangoSessionKey,
};

const COOKIE_INFO: EngineInfo = EngineInfo {
    name: RStr::from_str("cookie"),
    version: RStr::from_str("0.0.0"),
    salt: RStr::from_str(SIGNED_COOKIES_SALT),
    capabilities: Capabilities::EXPIRES_BY_ITSELF,
    key_format: KeyFormat::SignedPayload,
};

/// Default settings with the test secret.
pub fn settings() -> Settings {
    Settings::new(SECRET)
}

/// A server-side in-memory engine with `settings`, and its probe.
pub fn memory_engine_with(settings: &Settings) -> (Engine, Probe) {
    let probe = Probe::new();
    let store = FfiAdapter::new("memory", MemoryStore(probe.clone())).into_box();
    let engine = Engine::from_store_for_tests(MEMORY_INFO, store, settings)
        .expect("valid test settings")
        .with_clock(Arc::new(probe.clock().clone()) as Arc<dyn Clock>);
    (engine, probe)
}

/// A server-side in-memory engine with default settings, and its probe.
pub fn memory_engine() -> (Engine, Probe) {
    memory_engine_with(&settings())
}

/// A signed-cookie engine with default settings, and its probe.
pub fn cookie_engine() -> (Engine, Probe) {
    let probe = Probe::new();
    let store = FfiAdapter::new("cookie", CookieStore(probe.clone())).into_box();
    let engine = Engine::from_store_for_tests(COOKIE_INFO, store, &settings())
        .expect("valid test settings")
        .with_clock(Arc::new(probe.clock().clone()) as Arc<dyn Clock>);
    (engine, probe)
}
