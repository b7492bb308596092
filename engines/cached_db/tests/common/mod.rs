//! Stores for the `cached_db` tests: every cache/database pairing this machine can run, each
//! opened through the engine's real settings path, with its own database and key prefix.

#![allow(dead_code)] // each test file uses its own part of these helpers

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use serde_json::json;
use sessionkit_cache::{RedisBackend, RedisOptions};
use sessionkit_engine_cached_db::{CachedDbConfig, CachedDbStore};
use sessionkit_sdk::{SessionRecord, SessionWrite, Timestamp};

/// A session write for `key` expiring `secs` seconds from now.
pub(crate) fn write(key: &str, data: &str, secs: i64) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            key,
            data,
            Timestamp::from_micros(Timestamp::now().micros + secs * 1_000_000),
        ),
        "{}",
    )
}

/// A write of the session `{"v": data}` for `key`, signed with the targets' `SECRET_KEY` ("x")
/// as the host signs it: a Redis cache keeps only rows that verify.
pub(crate) fn signed_write(key: &str, data: &str, secs: i64) -> SessionWrite {
    let codec = sessionkit_codec::SessionCodec::new(
        sessionkit_sdk::EngineInfo::SESSION_STORE_SALT,
        b"x",
        &[],
    );
    let session = json!({ "v": data });
    let encoded = codec
        .encode(
            session.as_object().unwrap(),
            Timestamp::now().micros / 1_000_000,
        )
        .unwrap();
    SessionWrite::new(
        SessionRecord::new(
            key,
            encoded.session_data,
            Timestamp::from_micros(Timestamp::now().micros + secs * 1_000_000),
        ),
        encoded.session_json,
    )
}

/// The `v` of a session [`signed_write`] wrote, whichever form a load gave: a Redis cache hit's
/// dict, or the signed row (verified).
pub(crate) fn value_of(record: &SessionRecord) -> String {
    let data = record.session_data.as_str();
    let session: serde_json::Value = if data.starts_with('{') {
        serde_json::from_str(data).unwrap()
    } else {
        let codec = sessionkit_codec::SessionCodec::new(
            sessionkit_sdk::EngineInfo::SESSION_STORE_SALT,
            b"x",
            &[],
        );
        serde_json::Value::Object(codec.decode(data, None, 0).unwrap())
    };
    session["v"].as_str().unwrap().to_owned()
}

/// One cache/database pairing.
pub(crate) struct Target {
    /// `locmem+sqlite`, `redis+sqlite`, `redis+postgres`.
    pub label: &'static str,
    pub store: CachedDbStore,
    /// The Redis backend and key prefix, for raw checks (Redis targets only).
    pub redis: Option<(Arc<RedisBackend>, String)>,
    _cleanup: Cleanup,
}

/// Removes what a target made, after its store is dropped.
struct Cleanup {
    _dir: tempfile::TempDir,
    redis: Option<(String, String)>,
    postgres: Option<(String, String)>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some((url, prefix)) = &self.redis {
            delete_prefix(url, prefix);
        }
        if let Some((base, database)) = &self.postgres {
            sessionkit_testkit::drop_postgres_database(base, database);
        }
    }
}

/// Every pairing available here: locmem + SQLite always; Redis + SQLite with
/// `SESSIONKIT_TEST_REDIS_URL`; Redis + PostgreSQL with both server variables (each missing
/// variable prints "skipped: …").
pub(crate) fn targets(name: &str) -> Vec<Target> {
    let mut targets = vec![open("locmem+sqlite", name, None, None)];
    let redis = sessionkit_testkit::redis_url();
    if let Some(redis) = &redis {
        targets.push(open("redis+sqlite", name, Some(redis), None));
    }
    let postgres = sessionkit_testkit::postgres_url();
    if let (Some(redis), Some(postgres)) = (&redis, &postgres) {
        targets.push(open("redis+postgres", name, Some(redis), Some(postgres)));
    }
    targets
}

fn open(
    label: &'static str,
    name: &str,
    redis_url: Option<&str>,
    postgres_base: Option<&str>,
) -> Target {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, postgres) = match postgres_base {
        Some(base) => {
            let database = sessionkit_testkit::fresh_postgres_database(base);
            (database.clone(), Some((base.to_owned(), database)))
        }
        None => (
            format!("sqlite://{}", dir.path().join("sessions.sqlite3").display()),
            None,
        ),
    };
    let prefix = sessionkit_testkit::unique_prefix()
        .trim_end_matches(':')
        .to_owned();
    let location = match redis_url {
        Some(url) => url.to_owned(),
        // A LocMem cache of this test's own (names are shared within the process).
        None => format!("locmem://{name}-{prefix}"),
    };
    let settings = json!({
        "SECRET_KEY": "x",
        "SESSION_DB_URL": db_url,
        "CACHES": {"default": {"LOCATION": location, "KEY_PREFIX": prefix}}
    });
    let config = CachedDbConfig::from_settings_json(&settings.to_string()).unwrap();
    let store = CachedDbStore::open(&config).unwrap();
    let redis = redis_url.map(|url| {
        let backend = Arc::new(RedisBackend::open(url, RedisOptions::default()).unwrap());
        (backend, prefix.clone())
    });
    Target {
        label,
        store,
        redis,
        _cleanup: Cleanup {
            _dir: dir,
            redis: redis_url.map(|url| (url.to_owned(), prefix)),
            postgres,
        },
    }
}

/// Deletes every key under `prefix` on the shared server (SCAN + DEL; never FLUSHDB).
fn delete_prefix(url: &str, prefix: &str) {
    let Ok(backend) = RedisBackend::open(url, RedisOptions::default()) else {
        return;
    };
    let pattern = format!("{prefix}:*");
    let result = backend.with_connection(|con| {
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
    if let Err(error) = result {
        eprintln!("could not remove test keys under {prefix}: {error}");
    }
}

/// Runs `call` with a subscriber that records every log line, and returns them.
pub(crate) fn capture_logs<T>(call: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let value = tracing::subscriber::with_default(subscriber, call);
    let logs = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    (value, logs)
}
