//! The `cache` engine over the shared Redis server of `SESSIONKIT_TEST_REDIS_URL`, configured as
//! an application would (`CACHES` with a `redis://` LOCATION, `SESSION_CACHE_ALIAS`), under a
//! random `KEY_PREFIX` whose keys are deleted afterwards. Prints "skipped: …" when unset.

use serde_json::json;
use sessionkit_cache::{RedisBackend, RedisOptions};
use sessionkit_engine_cache::CacheEngine;
use sessionkit_sdk::{
    Capabilities, Engine, ErrorKind, SessionRecord, SessionStore, SessionWrite, Timestamp,
};

fn write(key: &str, data: &str) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            key,
            data,
            Timestamp::from_micros(Timestamp::now().micros + 60_000_000),
        ),
        json!({ "v": data }).to_string(),
    )
}

#[test]
fn cache_engine_stores_sessions_in_redis_under_the_configured_alias() {
    let Some(url) = sessionkit_testkit::redis_url() else {
        return;
    };
    let prefix = sessionkit_testkit::unique_prefix()
        .trim_end_matches(':')
        .to_owned();
    let settings = json!({
        "SECRET_KEY": "x",
        "SESSION_CACHE_ALIAS": "sessions",
        "CACHES": {
            "default": {"LOCATION": "locmem://"},
            "sessions": {"LOCATION": url, "KEY_PREFIX": prefix}
        }
    });
    let store = CacheEngine::open(&settings.to_string()).unwrap();
    // Django's pickled dicts are stored, and loads hand the dict back; one server's calls
    // can run without blocking (contract 0.4).
    assert_eq!(
        store.capabilities(),
        Capabilities::SHARED_BETWEEN_PROCESSES
            | Capabilities::DECODED_DATA
            | Capabilities::READINESS_CALLS
    );
    let key = "cacheengineredis0123456789abcdef";
    store.create(write(key, "one")).unwrap();
    assert_eq!(
        store.create(write(key, "two")).unwrap_err().kind,
        ErrorKind::AlreadyExists
    );
    store.save(write(key, "three")).unwrap();

    // A second open (another worker process would do the same) sees the session.
    let other = CacheEngine::open(&settings.to_string()).unwrap();
    assert_eq!(
        other.load(key).unwrap().unwrap().session_data.as_str(),
        r#"{"v":"three"}"#
    );

    let physical = format!("{prefix}:1:django.contrib.sessions.cache{key}");
    let raw = RedisBackend::open(&url, RedisOptions::default()).unwrap();
    let exists = |physical: &str| -> i64 {
        raw.with_connection(|con| redis::cmd("EXISTS").arg(physical).query(con))
            .unwrap()
    };
    assert_eq!(exists(&physical), 1, "stored under Django's physical key");

    other.delete(key).unwrap();
    assert_eq!(store.load(key).unwrap(), None);
    assert_eq!(
        store.save(write(key, "stale")).unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(exists(&physical), 0);
}
