//! In-process test engines: the public [`MemoryStore`] and a signed-cookie store, both judging
//! time by a shared `ManualClock` and counting the calls that reach them.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU32, AtomicUsize, Ordering},
};

use abi_stable::std_types::RStr;
use chrono::{TimeZone, Utc};
use sessionkit_codec::{SESSION_STORE_SALT, SIGNED_COOKIES_SALT};
use sessionkit_sdk::{
    Capabilities, EngineInfo, ErrorKind, KeyFormat, SessionRecord, SessionStore, SessionWrite,
    StoreError, StoreResult, store::FfiAdapter,
};

use crate::{Clock, Engine, ManualClock, Settings, testing::MemoryStore};

/// The secret every test engine signs with.
pub(super) const SECRET: &str = "django-insecure-test-secret";

/// What a test engine shares with the test: its records (a public [`MemoryStore`]), its clock
/// and its counters.
#[derive(Clone)]
pub(super) struct Probe {
    inner: Arc<ProbeInner>,
}

struct ProbeInner {
    records: MemoryStore,
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
        let clock = ManualClock::new(start);
        Self {
            inner: Arc::new(ProbeInner {
                records: MemoryStore::with_clock(Arc::new(clock.clone())),
                clock,
                calls: AtomicUsize::new(0),
                loads: AtomicUsize::new(0),
                creates: AtomicUsize::new(0),
                collisions: AtomicU32::new(0),
                fail: Mutex::new(None),
            }),
        }
    }

    /// The clock both the engine and the store use.
    pub(super) fn clock(&self) -> &ManualClock {
        &self.inner.clock
    }

    /// How many contract calls reached the store.
    pub(super) fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    /// How many `load` calls reached the store.
    pub(super) fn loads(&self) -> usize {
        self.inner.loads.load(Ordering::SeqCst)
    }

    /// How many `create` calls reached the store.
    pub(super) fn creates(&self) -> usize {
        self.inner.creates.load(Ordering::SeqCst)
    }

    /// How many records are stored (live or not).
    pub(super) fn len(&self) -> usize {
        self.inner.records.len()
    }

    /// The stored record under `key`, live or not.
    pub(super) fn record(&self, key: &str) -> Option<SessionRecord> {
        self.inner.records.record(key)
    }

    /// Stores `record` directly, bypassing the host.
    pub(super) fn put(&self, record: SessionRecord) {
        self.inner.records.put(record);
    }

    /// Removes `key` directly (another request's logout).
    pub(super) fn remove(&self, key: &str) {
        self.inner.records.remove(key);
    }

    /// Makes the next `n` creates report the key as taken.
    pub(super) fn collide(&self, n: u32) {
        self.inner.collisions.store(n, Ordering::SeqCst);
    }

    /// Makes every call fail with `kind` (or succeed again with `None`).
    pub(super) fn fail_with(&self, kind: Option<ErrorKind>) {
        *self.inner.fail.lock().unwrap() = kind;
    }

    fn enter(&self) -> StoreResult<()> {
        self.inner.calls.fetch_add(1, Ordering::SeqCst);
        match *self.inner.fail.lock().unwrap() {
            Some(kind) => Err(StoreError::new(kind, "injected failure")),
            None => Ok(()),
        }
    }
}

/// The public [`MemoryStore`], counting the calls that reach it and failing on demand.
struct ProbedStore(Probe);

impl SessionStore for ProbedStore {
    fn exists(&self, key: &str) -> StoreResult<bool> {
        self.0.enter()?;
        self.0.inner.records.exists(key)
    }

    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        self.0.enter()?;
        self.0.inner.loads.fetch_add(1, Ordering::SeqCst);
        self.0.inner.records.load(key)
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
        if collided {
            return Err(StoreError::already_exists("key taken"));
        }
        self.0.inner.records.create(write)
    }

    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        self.0.enter()?;
        self.0.inner.records.save(write)
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        self.0.enter()?;
        self.0.inner.records.delete(key)
    }

    fn clear_expired(&self) -> StoreResult<u64> {
        self.0.enter()?;
        self.0.inner.records.clear_expired()
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
pub(super) fn settings() -> Settings {
    Settings::new(SECRET)
}

/// A server-side in-memory engine with `settings`, and its probe.
pub(super) fn memory_engine_with(settings: &Settings) -> (Engine, Probe) {
    let probe = Probe::new();
    let store = FfiAdapter::new("memory", ProbedStore(probe.clone())).into_box();
    let engine = Engine::from_store(MEMORY_INFO, store, settings)
        .expect("valid test settings")
        .with_clock(Arc::new(probe.clock().clone()) as Arc<dyn Clock>);
    (engine, probe)
}

/// A server-side in-memory engine with default settings, and its probe.
pub(super) fn memory_engine() -> (Engine, Probe) {
    memory_engine_with(&settings())
}

/// A signed-cookie engine with default settings, and its probe.
pub(super) fn cookie_engine() -> (Engine, Probe) {
    let probe = Probe::new();
    let store = FfiAdapter::new("cookie", CookieStore(probe.clone())).into_box();
    let engine = Engine::from_store(COOKIE_INFO, store, &settings())
        .expect("valid test settings")
        .with_clock(Arc::new(probe.clock().clone()) as Arc<dyn Clock>);
    (engine, probe)
}
