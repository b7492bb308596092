//! `cached_db` load on a cache hit next to the raw cache read it is made of, in the same run:
//!
//! - locmem + SQLite: `CachedDbStore::load` vs `LocMem` `get` of the physical key, and the
//!   database read a miss would cost (`SqlStore::load`);
//! - Redis + SQLite (when `SESSIONKIT_TEST_REDIS_URL` is set; skipped with a message
//!   otherwise): `CachedDbStore::load` vs a raw `GET` of the physical key on the store's own
//!   connection.
//!
//! Run briefly with
//! `cargo bench -p sessionkit-engine-cached_db --bench cached_db -- --warm-up-time 1 --measurement-time 3`.

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use sessionkit_cache::{CacheBackend, RedisBackend, RedisOptions};
use sessionkit_engine_cached_db::{CachedDbConfig, CachedDbStore};
use sessionkit_sdk::{SessionRecord, SessionStore, SessionWrite, Timestamp};

const KEY: &str = "cacheddbbench0123456789abcdefghi";

fn open(dir: &std::path::Path, location: &str, prefix: &str) -> CachedDbStore {
    let settings = json!({
        "SESSION_DB_URL": format!("sqlite://{}", dir.join("bench.sqlite3").display()),
        "CACHES": {"default": {"LOCATION": location, "KEY_PREFIX": prefix}}
    });
    let config = CachedDbConfig::from_settings_json(&settings.to_string()).expect("settings");
    let store = CachedDbStore::open(&config).expect("open");
    store
        .create(SessionWrite::new(
            SessionRecord::new(
                KEY,
                "x".repeat(264),
                Timestamp::from_micros(Timestamp::now().micros + 600_000_000),
            ),
            "{}",
        ))
        .expect("seed");
    store
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");

    let store = open(dir.path(), "locmem://bench", "");
    let physical = store.cache().cache_key(KEY);
    let mut group = c.benchmark_group("cached_db/load hit (locmem)");
    group.bench_function("cached_db", |b| {
        b.iter(|| black_box(store.load(KEY).expect("load")))
    });
    group.bench_function("raw cache get", |b| {
        b.iter(|| black_box(store.cache().backend().get(&physical).expect("get")))
    });
    group.bench_function("database load (a miss's cost)", |b| {
        b.iter(|| black_box(store.db().load(KEY).expect("load")))
    });
    group.finish();
    drop(store);

    let Ok(url) = std::env::var("SESSIONKIT_TEST_REDIS_URL") else {
        println!("skipped: SESSIONKIT_TEST_REDIS_URL not set (the Redis half needs a server)");
        return;
    };
    let redis_dir = tempfile::tempdir().expect("temp dir");
    let prefix = format!("skbench:{}", std::process::id());
    let store = open(redis_dir.path(), &url, &prefix);
    let physical = store.cache().cache_key(KEY);
    let raw = RedisBackend::open(
        &url,
        RedisOptions {
            max_connections: 1,
            ..RedisOptions::default()
        },
    )
    .expect("valid URL");
    let mut group = c.benchmark_group("cached_db/load hit (redis)");
    group.bench_function("cached_db", |b| {
        b.iter(|| black_box(store.load(KEY).expect("load")))
    });
    group.bench_function("raw GET", |b| {
        b.iter(|| {
            black_box(
                raw.with_connection(|con| redis::cmd("GET").arg(&physical).query::<Vec<u8>>(con))
                    .expect("get"),
            )
        })
    });
    group.finish();
    let _ = raw.with_connection(|con| redis::cmd("DEL").arg(&physical).query::<i64>(con));
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = cached_db_benches;
    config = config();
    targets = benches
}
criterion_main!(cached_db_benches);
