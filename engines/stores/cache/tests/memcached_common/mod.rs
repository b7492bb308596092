//! Helpers for the memcached tests: backends and stores on the servers named by
//! `SESSIONKIT_TEST_MEMCACHED_URL` (`.ci/run` starts two on 127.0.0.1:11311 and :11312), each
//! test under a random `KEY_PREFIX` whose keys are deleted afterwards (never a `flush_all`).

#![allow(dead_code)] // each test file uses its own part of these helpers

use std::sync::Arc;

use sessionkit_cache::{
    CACHE_SESSION_PREFIX, CacheBackend, CacheConfig, CacheStore, KeyFunction, Location,
    MemcachedBackend, MemcachedOptions, MemcachedServer, SystemClock,
};
use sessionkit_sdk::{Capabilities, SessionRecord, SessionStore, SessionWrite, Timestamp};

/// The variable naming the memcached servers the tests use.
pub(crate) const MEMCACHED_URL_ENV: &str = "SESSIONKIT_TEST_MEMCACHED_URL";

/// A session write for `key` expiring `secs` seconds from now: `data` as its signed form, and
/// `{"d": data}` as its dict, so two writes with different data differ in both forms.
pub(crate) fn write(key: &str, data: &str, secs: i64) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            key,
            data,
            Timestamp::from_micros(Timestamp::now().micros + secs * 1_000_000),
        ),
        serde_json::json!({ "d": data }).to_string(),
    )
}

/// The `session_data` a load gives back after `write`: the dict when the store keeps Django's
/// values (it declares `DECODED_DATA`), the signed form otherwise.
pub(crate) fn loaded_data(store: &impl SessionStore, write: &SessionWrite) -> String {
    if store.capabilities().contains(Capabilities::DECODED_DATA) {
        write.session_json.to_string()
    } else {
        write.record.session_data.to_string()
    }
}

/// The servers of `$SESSIONKIT_TEST_MEMCACHED_URL` (any `LOCATION` form sessionkit reads), or
/// `None` after printing why the test skips.
pub(crate) fn servers() -> Option<Vec<MemcachedServer>> {
    let url = match std::env::var(MEMCACHED_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => {
            println!(
                "skipped: {MEMCACHED_URL_ENV} not set (needs memcached servers, e.g. memcached://127.0.0.1:11311,127.0.0.1:11312)"
            );
            return None;
        }
    };
    let settings = serde_json::json!({"CACHES": {"default": {"LOCATION": url}}});
    let config = CacheConfig::from_settings_json(&settings.to_string())
        .unwrap_or_else(|error| panic!("{MEMCACHED_URL_ENV} is not a memcached location: {error}"));
    match config.location {
        Location::Memcached { servers } => Some(servers),
        other => panic!("{MEMCACHED_URL_ENV} is not a memcached location: {other:?}"),
    }
}

/// A backend on `servers` with default options.
pub(crate) fn backend(servers: &[MemcachedServer]) -> Arc<MemcachedBackend> {
    Arc::new(
        MemcachedBackend::open(servers, MemcachedOptions::default())
            .expect("the memcached servers can be used"),
    )
}

/// One test's share of the servers: a random `KEY_PREFIX`, and the physical keys to delete
/// when the test ends.
pub(crate) struct Shared {
    pub servers: Vec<MemcachedServer>,
    pub prefix: String,
    pub backend: Arc<MemcachedBackend>,
    written: parking_lot::Mutex<Vec<String>>,
}

impl Shared {
    /// `None` (after printing why) when `SESSIONKIT_TEST_MEMCACHED_URL` is not set.
    pub(crate) fn new() -> Option<Self> {
        let servers = servers()?;
        let prefix = sessionkit_testkit::unique_prefix()
            .trim_end_matches(':')
            .to_owned();
        let backend = backend(&servers);
        Some(Self {
            servers,
            prefix,
            backend,
            written: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// A store on the backend under this test's prefix.
    pub(crate) fn store(&self) -> CacheStore<Arc<MemcachedBackend>> {
        CacheStore::new(
            self.backend.clone(),
            KeyFunction::new(&self.prefix, 1),
            CACHE_SESSION_PREFIX,
            Arc::new(SystemClock),
        )
    }

    /// A physical key under this test's prefix, deleted when the test ends.
    pub(crate) fn key(&self, name: &str) -> String {
        let key = format!("{}:{name}", self.prefix);
        self.forget_later(&key);
        key
    }

    /// Deletes `key` when the test ends.
    pub(crate) fn forget_later(&self, key: &str) {
        self.written.lock().push(key.to_owned());
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        for key in self.written.lock().drain(..) {
            if let Err(error) = self.backend.delete(&key) {
                eprintln!("could not remove a test key under {}: {error}", self.prefix);
            }
        }
    }
}
