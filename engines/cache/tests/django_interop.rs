//! The `cache` engine and Django's own `cache` session backend (`django.core.cache.backends.
//! redis.RedisCache`) on the same Redis and `KEY_PREFIX`: each reads the other's sessions and
//! each one's logout logs the other out. Django runs in the test venv
//! (`SESSIONKIT_DJANGO_VENV`) through tests/django/cache_peer.py; the test prints "skipped: …"
//! and passes without the venv or `SESSIONKIT_TEST_REDIS_URL`.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use std::{path::Path, process::Command};

use serde_json::{Value, json};
use sessionkit_cache::{RedisBackend, RedisOptions};
use sessionkit_engine_cache::CacheEngine;
use sessionkit_sdk::{Engine, SessionRecord, SessionStore, SessionWrite, Timestamp};

/// Django, configured by `config`, runs one operation and answers in JSON.
fn django(config: &Value, op: Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/django/cache_peer.py");
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

/// A sessionkit write of `session` for `key`, an hour long. The cache engine stores the dict
/// (`session_json`); the signed form is not what Redis keeps.
fn write(key: &str, session: &Value) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            key,
            "signed-form-unused-by-the-cache",
            Timestamp::from_micros(Timestamp::now().micros + 3_600_000_000),
        ),
        session.to_string(),
    )
}

fn loaded_dict(store: &impl SessionStore, key: &str) -> Option<Value> {
    store
        .load(key)
        .unwrap()
        .map(|record| serde_json::from_str(record.session_data.as_str()).unwrap())
}

/// Deletes the run's keys (SCAN + DEL under its own prefix; never FLUSHDB).
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
fn django_and_sessionkit_share_cache_sessions_on_redis_both_ways() {
    let Some(url) = sessionkit_testkit::redis_url() else {
        return;
    };
    if std::env::var_os("SESSIONKIT_DJANGO_VENV").is_none() {
        println!("skipped: SESSIONKIT_DJANGO_VENV is not set");
        return;
    }
    let prefix = sessionkit_testkit::unique_prefix()
        .trim_end_matches(':')
        .to_owned();
    let _cleanup = Cleanup(url.clone(), prefix.clone());
    let settings = json!({
        "SECRET_KEY": "interop-secret",
        "CACHES": {"default": {"LOCATION": url, "KEY_PREFIX": prefix}}
    });
    let store = CacheEngine::open(&settings.to_string()).unwrap();
    let config = json!({
        "engine": "cache", "redis_url": url, "key_prefix": prefix, "secret_key": "interop-secret"
    });

    // Django writes, sessionkit reads: the same dict, expiring when Django's TTL says.
    let session = json!({
        "_auth_user_id": "42",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "cart": [{"sku": "A-1", "qty": 2, "price": 9.99}],
        "flags": [true, false, null],
        "name": "h\u{e9}llo \u{2603}",
        "big": 9_007_199_254_740_993_i64
    });
    let created = django(&config, json!({"op": "create", "data": session}));
    let django_key = created["key"].as_str().unwrap().to_owned();
    let record = store
        .load(&django_key)
        .unwrap()
        .expect("Django's session loads");
    assert_eq!(
        serde_json::from_str::<Value>(record.session_data.as_str()).unwrap(),
        session
    );
    let age = created["expiry_age"].as_i64().unwrap() * 1_000_000;
    let left = record.expire_date.micros - Timestamp::now().micros;
    assert!(left <= age && left > age - 30_000_000, "{left} of {age}");

    // sessionkit writes, Django reads; Django updates, sessionkit sees the update.
    let key = "sessionkitinterop0000000000000001";
    let ours = json!({"_auth_user_id": "7", "theme": "dark", "n": [1, 2.5]});
    store.create(write(key, &ours)).unwrap();
    let read = django(&config, json!({"op": "load", "key": key}));
    assert_eq!(read["data"], ours);
    assert_eq!(read["exists"], true);
    django(
        &config,
        json!({"op": "update", "key": key, "data": {"theme": "light"}}),
    );
    assert_eq!(
        loaded_dict(&store, key).unwrap(),
        json!({"_auth_user_id": "7", "theme": "light", "n": [1, 2.5]})
    );

    // Django's logout (flush) logs sessionkit out, and sessionkit's logs Django out.
    django(&config, json!({"op": "flush", "key": django_key}));
    assert_eq!(store.load(&django_key).unwrap(), None);
    store.delete(key).unwrap();
    let read = django(&config, json!({"op": "load", "key": key}));
    assert_eq!(read["data"], json!({}));
    assert_eq!(read["exists"], false);
}
