//! `cached_db` when one side fails: a cache whose operations can be switched to fail, and a
//! database that can be switched off or made to report its row gone (a logout racing the
//! call). Both wrap the real stores (LocMem, SQLite in memory).

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sessionkit_cache::{
    CACHED_DB_SESSION_PREFIX, CacheBackend, CacheError, CacheStore, KeyFunction, LocMemBackend,
    LocMemOptions, SystemClock,
};
use sessionkit_engine_cached_db::CachedDbStore;
use sessionkit_sdk::{
    ErrorKind, SessionRecord, SessionStore, SessionWrite, StoreError, StoreResult,
};
use sessionkit_sql::{DatabaseUrl, SqlStore, SqlStoreOptions};

use common::{capture_logs, write};

const KEY: &str = "cacheddbfail0123456789abcdefghij";

/// Which cache operations fail.
#[derive(Default)]
struct CacheSwitches {
    get: AtomicBool,
    write: AtomicBool,
    delete: AtomicBool,
    /// When set, this many more deletes succeed, then every delete fails.
    deletes_left: Mutex<Option<usize>>,
}

impl CacheSwitches {
    fn delete_allowed(&self) -> Result<(), CacheError> {
        down(&self.delete)?;
        match &mut *self.deletes_left.lock().unwrap() {
            Some(0) => Err(CacheError::Unavailable(
                "test cache went down mid-call".into(),
            )),
            Some(left) => {
                *left -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

/// A LocMem cache whose reads, writes (`add`, `set`, `set_if_present`) or deletes can be made
/// to fail with `Unavailable`.
struct FlakyCache {
    inner: LocMemBackend,
    fail: Arc<CacheSwitches>,
}

fn down(switch: &AtomicBool) -> Result<(), CacheError> {
    if switch.load(Ordering::SeqCst) {
        Err(CacheError::Unavailable("test cache switched off".into()))
    } else {
        Ok(())
    }
}

impl CacheBackend for FlakyCache {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        down(&self.fail.get)?;
        self.inner.get(key)
    }
    fn contains(&self, key: &str) -> Result<bool, CacheError> {
        down(&self.fail.get)?;
        self.inner.contains(key)
    }
    fn add(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        down(&self.fail.write)?;
        self.inner.add(key, value, ttl)
    }
    fn set_if_present(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        down(&self.fail.write)?;
        self.inner.set_if_present(key, value, ttl)
    }
    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        down(&self.fail.write)?;
        self.inner.set(key, value, ttl)
    }
    fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.fail.delete_allowed()?;
        self.inner.delete(key)
    }
}

/// How the test database misbehaves.
#[derive(Default)]
struct DbSwitches {
    /// Every call fails with `Unavailable`.
    down: AtomicBool,
    /// `exists` says the row is gone (a logout that ran just after our read or write).
    row_vanishes: AtomicBool,
}

/// SQLite in memory behind switches.
struct SwitchableDb {
    inner: SqlStore,
    fail: Arc<DbSwitches>,
}

impl SwitchableDb {
    fn check(&self) -> StoreResult<()> {
        if self.fail.down.load(Ordering::SeqCst) {
            Err(StoreError::unavailable("test database switched off"))
        } else {
            Ok(())
        }
    }
}

impl SessionStore for SwitchableDb {
    fn exists(&self, key: &str) -> StoreResult<bool> {
        self.check()?;
        if self.fail.row_vanishes.load(Ordering::SeqCst) {
            return Ok(false);
        }
        self.inner.exists(key)
    }
    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        self.check()?;
        self.inner.load(key)
    }
    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        self.check()?;
        self.inner.create(write)
    }
    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        self.check()?;
        self.inner.save(write)
    }
    fn delete(&self, key: &str) -> StoreResult<()> {
        self.check()?;
        self.inner.delete(key)
    }
    fn clear_expired(&self) -> StoreResult<u64> {
        self.check()?;
        self.inner.clear_expired()
    }
}

struct Fixture {
    store: CachedDbStore<SwitchableDb, FlakyCache>,
    cache: Arc<CacheSwitches>,
    db: Arc<DbSwitches>,
}

fn fixture() -> Fixture {
    let cache = Arc::new(CacheSwitches::default());
    let db = Arc::new(DbSwitches::default());
    let backend = FlakyCache {
        inner: LocMemBackend::private(LocMemOptions::default(), Arc::new(SystemClock)),
        fail: cache.clone(),
    };
    let sql = SqlStore::open(
        &DatabaseUrl::parse("sqlite::memory:").unwrap(),
        SqlStoreOptions::default(),
    )
    .unwrap();
    let store = CachedDbStore::new(
        SwitchableDb {
            inner: sql,
            fail: db.clone(),
        },
        CacheStore::new(
            backend,
            KeyFunction::default(),
            CACHED_DB_SESSION_PREFIX,
            Arc::new(SystemClock),
        ),
        "default",
    );
    Fixture { store, cache, db }
}

fn off(switch: &AtomicBool) {
    switch.store(true, Ordering::SeqCst);
}

fn on(switch: &AtomicBool) {
    switch.store(false, Ordering::SeqCst);
}

#[test]
fn a_failed_cache_write_keeps_the_database_write_and_logs_error_saving_to_cache() {
    let f = fixture();
    off(&f.cache.write);
    let (created, logs) = capture_logs(|| f.store.create(write(KEY, "stored", 60)));
    assert_eq!(created.unwrap(), KEY);
    assert!(logs.contains("ERROR"), "{logs}");
    assert!(logs.contains("Error saving to cache (default)"), "{logs}");
    assert!(logs.contains("sessionkit::cached_db"), "{logs}");
    assert!(!logs.contains(KEY), "no session key in logs: {logs}");
    assert!(f.store.db().load(KEY).unwrap().is_some());
    assert_eq!(
        f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
        "stored"
    );
}

#[test]
fn a_failed_cache_write_on_save_leaves_no_stale_entry() {
    let f = fixture();
    f.store.create(write(KEY, "old", 60)).unwrap();
    off(&f.cache.write);
    let (saved, logs) = capture_logs(|| f.store.save(write(KEY, "new", 60)));
    saved.unwrap();
    assert!(logs.contains("Error saving to cache"), "{logs}");
    on(&f.cache.write);
    assert_eq!(
        f.store.cache().load(KEY).unwrap(),
        None,
        "the old entry is gone"
    );
    assert_eq!(
        f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
        "new"
    );
}

#[test]
fn a_failed_cache_write_and_a_failed_removal_are_both_logged() {
    let f = fixture();
    f.store.create(write(KEY, "old", 60)).unwrap();
    off(&f.cache.write);
    off(&f.cache.delete);
    let (saved, logs) = capture_logs(|| f.store.save(write(KEY, "new", 60)));
    saved.unwrap();
    assert!(logs.contains("Error saving to cache"), "{logs}");
    assert!(
        logs.contains("Error deleting a stale entry from cache"),
        "{logs}"
    );
    assert_eq!(
        f.store
            .db()
            .load(KEY)
            .unwrap()
            .unwrap()
            .session_data
            .as_str(),
        "new"
    );
}

#[test]
fn a_failing_cache_on_load_is_a_miss_served_from_the_database() {
    let f = fixture();
    f.store.create(write(KEY, "stored", 60)).unwrap();
    off(&f.cache.get);
    let (loaded, logs) = capture_logs(|| f.store.load(KEY));
    assert_eq!(loaded.unwrap().unwrap().session_data.as_str(), "stored");
    assert!(logs.contains("Error reading from cache"), "{logs}");
    let (exists, _) = capture_logs(|| f.store.exists(KEY));
    assert!(exists.unwrap());
}

#[test]
fn a_failing_refill_after_a_miss_is_logged_not_raised() {
    // Django's load path calls cache.set unguarded; here it is logged like the save path.
    let f = fixture();
    f.store.db().create(write(KEY, "db only", 60)).unwrap();
    off(&f.cache.write);
    let (loaded, logs) = capture_logs(|| f.store.load(KEY));
    assert_eq!(loaded.unwrap().unwrap().session_data.as_str(), "db only");
    assert!(logs.contains("Error saving to cache"), "{logs}");
}

#[test]
fn a_logout_the_cache_cannot_follow_fails_with_the_session_unchanged() {
    let f = fixture();
    f.store.create(write(KEY, "d", 60)).unwrap();
    off(&f.cache.delete);
    let error = f.store.delete(KEY).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert!(error.message.contains("the row was kept"), "{error}");
    // Not half-done: the row is there and the cache entry, if the cache kept it, is its own.
    assert!(f.store.db().exists(KEY).unwrap());
    assert_eq!(
        f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
        "d"
    );
    on(&f.cache.delete);
    f.store.delete(KEY).unwrap();
    assert_eq!(f.store.load(KEY).unwrap(), None);
    assert_eq!(f.store.cache().load(KEY).unwrap(), None);
}

#[test]
fn a_logout_whose_second_cache_removal_fails_stands_and_the_key_never_loads() {
    let f = fixture();
    f.store.create(write(KEY, "d", 60)).unwrap();
    // The first removal (before the row) succeeds; the cache goes down before the second.
    *f.cache.deletes_left.lock().unwrap() = Some(1);
    let (deleted, logs) = capture_logs(|| f.store.delete(KEY));
    deleted.unwrap();
    assert!(
        logs.contains("Error deleting a stale entry from cache"),
        "{logs}"
    );
    assert!(!f.store.db().exists(KEY).unwrap(), "the logout stands");
    // What the second removal was for: a load that cached the row between the first removal
    // and the row delete left an entry.
    f.store.cache().put(&write(KEY, "d", 60)).unwrap();
    assert_eq!(f.store.load(KEY).unwrap(), None);
    assert!(!f.store.exists(KEY).unwrap());
    *f.cache.deletes_left.lock().unwrap() = None;
    assert_eq!(f.store.load(KEY).unwrap(), None);
    assert_eq!(
        f.store.cache().load(KEY).unwrap(),
        None,
        "removed on the next load"
    );
}

#[test]
fn a_save_whose_cache_entry_survives_an_outage_is_not_served_from_it() {
    let f = fixture();
    f.store.create(write(KEY, "old", 60)).unwrap();
    // The cache takes nothing: the save's write-through and both removals fail, so the entry
    // still holds "old" when the cache answers reads again.
    off(&f.cache.write);
    off(&f.cache.delete);
    let (saved, _) = capture_logs(|| f.store.save(write(KEY, "new", 60)));
    saved.unwrap();
    on(&f.cache.write);
    assert_eq!(
        f.store
            .cache()
            .load(KEY)
            .unwrap()
            .unwrap()
            .session_data
            .as_str(),
        "old",
        "the stale entry is still cached"
    );
    let (loaded, _) = capture_logs(|| f.store.load(KEY));
    assert_eq!(loaded.unwrap().unwrap().session_data.as_str(), "new");
    // Removals work again: the next load removes the stale entry and caches the row, and
    // from then on hits are served again (the database is not needed).
    on(&f.cache.delete);
    assert_eq!(
        f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
        "new"
    );
    off(&f.db.down);
    assert_eq!(
        f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
        "new"
    );
    assert!(f.store.exists(KEY).unwrap());
}

#[test]
fn a_suspect_key_asks_the_database_whether_it_exists() {
    let f = fixture();
    f.store.create(write(KEY, "d", 60)).unwrap();
    off(&f.cache.write);
    off(&f.cache.delete);
    let (saved, _) = capture_logs(|| f.store.save(write(KEY, "new", 60)));
    saved.unwrap();
    // Behind the store's back (the entry is stale either way): only the database knows.
    f.store.db().delete(KEY).unwrap();
    assert!(f.store.cache().exists(KEY).unwrap());
    assert!(!f.store.exists(KEY).unwrap());
}

#[test]
fn database_failures_propagate_and_leave_the_cache_alone() {
    let f = fixture();
    off(&f.db.down);
    let error = f.store.create(write(KEY, "d", 60)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert_eq!(f.store.cache().load(KEY).unwrap(), None);
    assert_eq!(f.store.load(KEY).unwrap_err().kind, ErrorKind::Unavailable);
    assert_eq!(
        f.store.clear_expired().unwrap_err().kind,
        ErrorKind::Unavailable
    );
}

#[test]
fn a_logout_with_the_database_down_is_an_error_and_the_session_stays() {
    let f = fixture();
    f.store.create(write(KEY, "d", 60)).unwrap();
    off(&f.db.down);
    assert_eq!(
        f.store.delete(KEY).unwrap_err().kind,
        ErrorKind::Unavailable
    );
    on(&f.db.down);
    assert!(f.store.load(KEY).unwrap().is_some(), "nothing half-deleted");
}

#[test]
fn a_save_with_the_database_down_fails_and_leaves_no_cache_entry() {
    let f = fixture();
    f.store.create(write(KEY, "old", 60)).unwrap();
    off(&f.db.down);
    assert_eq!(
        f.store.save(write(KEY, "new", 60)).unwrap_err().kind,
        ErrorKind::Unavailable
    );
    assert_eq!(f.store.cache().load(KEY).unwrap(), None);
    on(&f.db.down);
    assert_eq!(
        f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
        "old"
    );
}

#[test]
fn a_cache_hit_and_exists_need_no_database() {
    let f = fixture();
    f.store.create(write(KEY, "cached", 60)).unwrap();
    off(&f.db.down);
    assert!(f.store.exists(KEY).unwrap());
    assert_eq!(
        f.store.load(KEY).unwrap().unwrap().session_data.as_str(),
        "cached"
    );
}

#[test]
fn a_logout_racing_a_refill_leaves_no_cache_entry() {
    let f = fixture();
    f.store.db().create(write(KEY, "d", 60)).unwrap();
    // The row is read, then (as far as the store can tell) deleted before the fill.
    off(&f.db.row_vanishes);
    assert!(f.store.load(KEY).unwrap().is_some());
    assert_eq!(f.store.cache().load(KEY).unwrap(), None);
    // Without the race the fill stays.
    on(&f.db.row_vanishes);
    assert!(f.store.load(KEY).unwrap().is_some());
    assert!(f.store.cache().load(KEY).unwrap().is_some());
}

#[test]
fn a_logout_racing_a_save_leaves_no_cache_entry() {
    let f = fixture();
    f.store.create(write(KEY, "old", 60)).unwrap();
    off(&f.db.row_vanishes);
    f.store.save(write(KEY, "new", 60)).unwrap();
    assert_eq!(f.store.cache().load(KEY).unwrap(), None);
}

#[test]
fn a_refill_never_overwrites_a_fresher_entry() {
    let f = fixture();
    f.store.db().create(write(KEY, "older row", 60)).unwrap();
    // A concurrent save cached a newer record after our read missed: simulated by a read that
    // fails (a miss) while the newer entry is there when the fill runs.
    f.store.cache().put(&write(KEY, "newer entry", 60)).unwrap();
    off(&f.cache.get);
    let (loaded, _) = capture_logs(|| f.store.load(KEY));
    assert_eq!(loaded.unwrap().unwrap().session_data.as_str(), "older row");
    on(&f.cache.get);
    assert_eq!(
        f.store
            .cache()
            .load(KEY)
            .unwrap()
            .unwrap()
            .session_data
            .as_str(),
        "newer entry"
    );
}

#[test]
fn a_corrupted_cache_entry_is_replaced_from_the_database() {
    let f = fixture();
    f.store.create(write(KEY, "stored", 60)).unwrap();
    let physical = f.store.cache().cache_key(KEY);
    f.store
        .cache()
        .backend()
        .set(&physical, b"\x80pickle?", Duration::from_secs(60))
        .unwrap();
    let (loaded, logs) = capture_logs(|| f.store.load(KEY));
    assert_eq!(loaded.unwrap().unwrap().session_data.as_str(), "stored");
    assert!(logs.contains("Error reading from cache"), "{logs}");
    assert_eq!(
        f.store
            .cache()
            .load(KEY)
            .unwrap()
            .unwrap()
            .session_data
            .as_str(),
        "stored"
    );
}
