//! The `cached_db` engine and Django's own `cached_db` session backend on the same SQLite
//! database, Redis server and `KEY_PREFIX` (Django's cache is `RedisCache`): each reads the
//! other's sessions from the cache and from the database (after the cache entry is gone, each
//! side's fill is read by the other), and each one's logout logs the other out. Django runs in
//! the test venv (`SESSIONKIT_DJANGO_VENV`) through ../cache/tests/django/cache_peer.py; prints
//! "skipped: …" and passes without the venv or `SESSIONKIT_TEST_REDIS_URL`.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use std::{path::Path, process::Command};

use serde_json::{Value, json};
use sessionkit_cache::{CacheBackend, RedisBackend, RedisOptions};
use sessionkit_codec::SessionCodec;
use sessionkit_engine_cached_db::CachedDbEngine;
use sessionkit_sdk::{Engine, EngineInfo, SessionRecord, SessionStore, SessionWrite, Timestamp};

const SECRET: &str = "cached-db-interop-secret";

fn django(config: &Value, op: Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cache/tests/django/cache_peer.py");
    let output = Command::new(sessionkit_testkit::django_python())
        .arg(script)
        .arg(config.to_string())
        .arg(op.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "Django failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn codec() -> SessionCodec {
    SessionCodec::new(EngineInfo::SESSION_STORE_SALT, SECRET.as_bytes(), &[])
}

/// A write of `session` for `key`, signed as the host signs it, an hour long.
fn write(key: &str, session: &Value) -> SessionWrite {
    let encoded = codec()
        .encode(
            session.as_object().unwrap(),
            Timestamp::now().micros / 1_000_000,
        )
        .unwrap();
    SessionWrite::new(
        SessionRecord::new(
            key,
            encoded.session_data,
            Timestamp::from_micros(Timestamp::now().micros + 3_600_000_000),
        ),
        encoded.session_json,
    )
}

/// The session a load handed out, whichever form: a cache hit's dict or a verified row.
fn session_of(record: &SessionRecord) -> Value {
    let data = record.session_data.as_str();
    if data.starts_with('{') {
        serde_json::from_str(data).unwrap()
    } else {
        Value::Object(codec().decode(data, None, 0).unwrap())
    }
}

struct Cleanup(String, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(backend) = RedisBackend::open(&self.0, RedisOptions::default()) else {
            return;
        };
        let pattern = format!("{}:*", self.1);
        let _ = backend.with_connection(|con| {
            let keys: Vec<String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(&pattern)
                .clone()
                .iter(con)?
                .collect::<Result<_, _>>()?;
            for key in keys {
                redis::cmd("DEL").arg(key).query::<i64>(con)?;
            }
            Ok(())
        });
    }
}

#[test]
fn django_and_sessionkit_share_cached_db_sessions_both_ways() {
    let Some(url) = sessionkit_testkit::redis_url() else {
        return;
    };
    if std::env::var_os("SESSIONKIT_DJANGO_VENV").is_none() {
        println!("skipped: SESSIONKIT_DJANGO_VENV is not set");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sqlite = dir.path().join("sessions.sqlite3");
    let prefix = sessionkit_testkit::unique_prefix()
        .trim_end_matches(':')
        .to_owned();
    let _cleanup = Cleanup(url.clone(), prefix.clone());
    let settings = json!({
        "SECRET_KEY": SECRET,
        "SESSION_DB_URL": format!("sqlite://{}", sqlite.display()),
        "CACHES": {"default": {"LOCATION": url, "KEY_PREFIX": prefix}}
    });
    // Opening creates Django's django_session table, which Django then uses as its own.
    let store = CachedDbEngine::open(&settings.to_string()).unwrap();
    let config = json!({
        "engine": "cached_db", "redis_url": url, "key_prefix": prefix,
        "secret_key": SECRET, "sqlite_path": sqlite
    });
    let raw = RedisBackend::open(&url, RedisOptions::default()).unwrap();
    let drop_entry = |key: &str| {
        raw.delete(&store.cache().cache_key(key)).unwrap();
    };
    let cached = |key: &str| raw.get(&store.cache().cache_key(key)).unwrap();

    // Django writes (row + pickled dict); sessionkit reads the cache entry, then the row.
    let session = json!({"_auth_user_id": "42", "cart": [1, 2.5, "x", null, true]});
    let created = django(&config, json!({"op": "create", "data": session}));
    let django_key = created["key"].as_str().unwrap().to_owned();
    let hit = store.load(&django_key).unwrap().unwrap();
    assert!(hit.session_data.as_str().starts_with('{'), "a cache hit");
    assert_eq!(session_of(&hit), session);
    drop_entry(&django_key);
    let row = store.load(&django_key).unwrap().unwrap();
    assert!(
        !row.session_data.as_str().starts_with('{'),
        "the signed row"
    );
    assert_eq!(session_of(&row), session, "Django's row verifies here");
    // sessionkit's fill is what Django reads next.
    assert!(cached(&django_key).is_some(), "sessionkit filled the cache");
    let read = django(&config, json!({"op": "load", "key": django_key}));
    assert_eq!(read["data"], session);

    // sessionkit writes; Django reads the entry, then (entry gone) the row, and fills the cache.
    let key = "cacheddbinterop00000000000000001";
    let ours = json!({"_auth_user_id": "7", "theme": "dark"});
    store.create(write(key, &ours)).unwrap();
    assert_eq!(
        django(&config, json!({"op": "load", "key": key}))["data"],
        ours
    );
    drop_entry(key);
    assert_eq!(
        django(&config, json!({"op": "load", "key": key}))["data"],
        ours,
        "sessionkit's row verifies in Django"
    );
    assert!(cached(key).is_some(), "Django filled the cache");
    assert_eq!(session_of(&store.load(key).unwrap().unwrap()), ours);
    // Django's update reaches sessionkit through the cache.
    django(
        &config,
        json!({"op": "update", "key": key, "data": {"theme": "light"}}),
    );
    assert_eq!(
        session_of(&store.load(key).unwrap().unwrap()),
        json!({"_auth_user_id": "7", "theme": "light"})
    );

    // Each side's logout logs the other out: row and entry both gone.
    django(&config, json!({"op": "flush", "key": django_key}));
    assert_eq!(store.load(&django_key).unwrap(), None);
    assert!(!store.exists(&django_key).unwrap());
    store.delete(key).unwrap();
    let read = django(&config, json!({"op": "load", "key": key}));
    assert_eq!(read["data"], json!({}));
    assert_eq!(read["exists"], false);
    assert!(cached(key).is_none());
}
