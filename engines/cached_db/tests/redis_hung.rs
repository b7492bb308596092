//! `cached_db` over a hung Redis (issue 9, defect 5): a private `redis-server` stopped with
//! SIGSTOP, SQLite as the database. A request (load, then save) makes up to six cache calls
//! (get, create, delete; delete, set, delete); before the Redis backend's circuit breaker each
//! of them waited out its own timeout (8–12 s per request with the defaults). Now a request
//! pays at most one timeout, is served by the database meanwhile, and the cache is used again
//! after SIGCONT without a restart.
//!
//! Timing: a request must end within 3 × the one timeout it may pay: the factor leaves room
//! for a loaded 2-core CI machine, and the count of timeouts per request is the exact check.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

#[path = "../../stores/cache/tests/common/mod.rs"]
mod redis_common;

use std::{
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use redis_common::{PrivateRedis, short_timeouts, within, write};
use sessionkit_cache::{
    CACHED_DB_SESSION_PREFIX, CacheBackend, CacheError, CacheStore, KeyFunction, RedisBackend,
};
use sessionkit_engine_cached_db::CachedDbStore;
use sessionkit_sdk::{SessionStore, SessionWrite};
use sessionkit_sql::{DatabaseUrl, SqlStore, SqlStoreOptions};

const TIMEOUT: Duration = Duration::from_millis(500);
/// 3 × [`TIMEOUT`] (see the module docs).
const GENEROUS: Duration = Duration::from_millis(1500);
const WATCHDOG: Duration = Duration::from_secs(20);
const COOLDOWN: Duration = sessionkit_cache::redis_backend::DEFAULT_BREAKER_COOLDOWN;
const KEY: &str = "cacheddbhung0123456789abcdefghij";

/// The Redis backend, recording every error it returns (`cached_db` logs cache errors and
/// carries on, so the store's results do not show them).
struct Recording {
    inner: RedisBackend,
    errors: Mutex<Vec<String>>,
}

impl Recording {
    fn record<T>(&self, result: Result<T, CacheError>) -> Result<T, CacheError> {
        if let Err(error) = &result {
            self.errors.lock().unwrap().push(error.to_string());
        }
        result
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.errors.lock().unwrap())
    }
}

impl CacheBackend for Recording {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.record(self.inner.get(key))
    }
    fn contains(&self, key: &str) -> Result<bool, CacheError> {
        self.record(self.inner.contains(key))
    }
    fn add(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        self.record(self.inner.add(key, value, ttl))
    }
    fn set_if_present(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        self.record(self.inner.set_if_present(key, value, ttl))
    }
    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.record(self.inner.set(key, value, ttl))
    }
    fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.record(self.inner.delete(key))
    }
}

fn touched(n: usize) -> SessionWrite {
    write(KEY, &format!("touched {n}"), 60)
}

#[test]
fn a_hung_cache_costs_a_request_at_most_one_timeout_and_the_database_serves_it() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("s.sqlite3").display());
    let db = SqlStore::open(
        &DatabaseUrl::parse(&db_url).unwrap(),
        SqlStoreOptions::new("django_session"),
    )
    .unwrap();
    let options = short_timeouts(TIMEOUT);
    let backend = Arc::new(Recording {
        inner: RedisBackend::open(&server.url(), options).unwrap(),
        errors: Mutex::new(Vec::new()),
    });
    let cache = CacheStore::new(
        backend.clone(),
        KeyFunction::new("hung", 1),
        CACHED_DB_SESSION_PREFIX,
        Arc::new(sessionkit_cache::SystemClock),
    );
    let store = Arc::new(CachedDbStore::new(db, cache, "default"));
    store.create(write(KEY, "before", 60)).unwrap();
    assert!(backend.take().is_empty(), "the cache works before the stop");

    server.signal("STOP");
    let run = within(WATCHDOG, {
        let (store, backend) = (store.clone(), backend.clone());
        move || {
            let started = Instant::now();
            let mut requests = Vec::new();
            let mut n = 0;
            while started.elapsed() < COOLDOWN * 5 / 2 {
                let began = Instant::now();
                let loaded = store.load(KEY);
                let saved = store.save(touched(n));
                requests.push((loaded, saved, began.elapsed(), backend.take()));
                n += 1;
                thread::sleep(Duration::from_millis(50));
            }
            requests
        }
    });
    let mut timeouts = 0;
    for (i, (loaded, saved, took, errors)) in run.iter().enumerate() {
        let loaded = loaded.as_ref().expect("the database serves the load");
        assert!(loaded.is_some(), "request {i}: the session is found");
        saved.as_ref().expect("the database takes the save");
        let waits = errors
            .iter()
            .filter(|e| !e.contains("circuit breaker"))
            .count();
        assert!(waits <= 1, "request {i} paid {waits} timeouts: {errors:?}");
        assert!(!errors.is_empty(), "request {i}: the cache was down");
        assert!(
            *took <= GENEROUS,
            "request {i} took {took:?}, over 3 × {TIMEOUT:?}"
        );
        timeouts += waits;
    }
    println!(
        "{} requests while Redis was stopped: {timeouts} paid one timeout, the rest none",
        run.len()
    );
    assert!(
        timeouts >= 1 && timeouts < run.len(),
        "{timeouts} of {}",
        run.len()
    );

    server.signal("CONT");
    // The cache answers again without a restart: after the breaker's probe, a request makes
    // its cache calls without a single error.
    let recovered = within(WATCHDOG, {
        let (store, backend) = (store.clone(), backend.clone());
        move || {
            let started = Instant::now();
            loop {
                store.load(KEY).unwrap();
                store.save(touched(1000)).unwrap();
                if backend.take().is_empty() {
                    return started.elapsed();
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
    });
    println!("cache calls succeed again {recovered:?} after SIGCONT");
    assert_eq!(
        store.load(KEY).unwrap().unwrap().session_data.as_str(),
        "touched 1000"
    );
}
