//! The memcached backend through `CacheStore` next to the raw meta commands it is made of, in
//! the same run, against the servers of `SESSIONKIT_TEST_MEMCACHED_URL` (skipped with a message
//! when unset):
//!
//! - load: `CacheStore::load` (`mg` + JSON decode + expiry check) vs a raw `mg <key> v`;
//! - create: `CacheStore::create` (JSON encode + `ms … ME`) vs a raw `ms … ME`;
//! - update: `CacheStore::save` (`ms … MR`) vs a raw `ms … MR`;
//! - conditional: `CacheStore::save_if_unchanged` (`mg … v c` + `ms … C<cas>`) beside `save`.
//!
//! Raw commands go through a plain `memcache` meta client on the key's server (its own pool).
//! Values are a 264-byte `session_data` (an authenticated Django session's size). Keys live
//! under a random `KEY_PREFIX` with short TTLs and are deleted afterwards. Run briefly with
//! `cargo bench -p sessionkit-cache --bench memcached -- --warm-up-time 1 --measurement-time 3`.

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use memcache::exp::MetaClient;
use sessionkit_cache::{
    CACHE_SESSION_PREFIX, CacheBackend, CacheConfig, CacheStore, KeyFunction, Location,
    MemcachedBackend, MemcachedOptions, SystemClock,
};
use sessionkit_sdk::{SessionRecord, SessionStore, SessionWrite, Timestamp};

const TTL_SECS: i64 = 600;

fn write(key: &str, data: &str) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            key,
            data,
            Timestamp::from_micros(Timestamp::now().micros + TTL_SECS * 1_000_000),
        ),
        "{}",
    )
}

fn key(i: u64) -> String {
    format!("bench{i:027}")
}

fn benches(c: &mut Criterion) {
    let Ok(url) = std::env::var("SESSIONKIT_TEST_MEMCACHED_URL") else {
        println!(
            "skipped: SESSIONKIT_TEST_MEMCACHED_URL not set (the memcached benches need servers)"
        );
        return;
    };
    let settings = serde_json::json!({"CACHES": {"default": {"LOCATION": url}}});
    let config = CacheConfig::from_settings_json(&settings.to_string()).expect("a location");
    let Location::Memcached { servers } = config.location else {
        panic!("SESSIONKIT_TEST_MEMCACHED_URL is not a memcached location");
    };
    let prefix = format!("skbench{}", std::process::id());
    let backend = Arc::new(
        MemcachedBackend::open(&servers, MemcachedOptions::default()).expect("usable servers"),
    );
    let store = CacheStore::new(
        backend.clone(),
        KeyFunction::new(prefix, 1),
        CACHE_SESSION_PREFIX,
        Arc::new(SystemClock),
    );
    let data = "x".repeat(264);
    let mut written = Vec::new();

    let loaded = key(0);
    store.create(write(&loaded, &data)).expect("seed");
    let physical = store.cache_key(&loaded);
    written.push(physical.clone());
    let value = backend.get(&physical).expect("get").expect("seeded");
    let raws: Vec<MetaClient> = servers
        .iter()
        .map(|server| MetaClient::connect(server.to_string()).expect("server"))
        .collect();
    let raw_for = |physical: &str| {
        let home = backend.server_for(physical);
        &raws[servers.iter().position(|s| s == home).unwrap_or(0)]
    };
    let raw = raw_for(&physical);

    let mut group = c.benchmark_group("memcached/load");
    group.bench_function("store", |b| {
        b.iter(|| black_box(store.load(&loaded).expect("load")))
    });
    group.bench_function("raw mg", |b| {
        b.iter(|| black_box(raw.get(&physical).send().expect("mg")))
    });
    group.finish();

    let mut group = c.benchmark_group("memcached/create");
    let mut next = 1_000_000u64;
    group.bench_function("store", |b| {
        b.iter(|| {
            next += 1;
            let key = key(next);
            written.push(store.cache_key(&key));
            black_box(store.create(write(&key, &data)).expect("create"))
        })
    });
    group.bench_function("raw ms ME (on the key's server)", |b| {
        b.iter(|| {
            next += 1;
            let physical = store.cache_key(&key(next));
            let sent = raw_for(&physical)
                .set(&physical, &value)
                .ttl_raw(TTL_SECS as u32)
                .add()
                .send()
                .expect("ms");
            written.push(physical);
            black_box(sent)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("memcached/update");
    group.bench_function("store", |b| {
        b.iter(|| black_box(store.save(write(&loaded, &data)).expect("save")))
    });
    group.bench_function("raw ms MR", |b| {
        b.iter(|| {
            black_box(
                raw.set(&physical, &value)
                    .ttl_raw(TTL_SECS as u32)
                    .replace()
                    .send()
                    .expect("ms"),
            )
        })
    });
    group.bench_function("store load + save_if_unchanged", |b| {
        b.iter(|| {
            let expected = store
                .load(&loaded)
                .expect("load")
                .expect("stored")
                .session_data;
            black_box(
                store
                    .save_if_unchanged(write(&loaded, &data), &expected)
                    .expect("conditional save"),
            )
        })
    });
    group.finish();

    for physical in &written {
        let _ = backend.delete(physical);
    }
    println!("removed {} bench keys", written.len());
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = memcached_benches;
    config = config();
    targets = benches
}
criterion_main!(memcached_benches);
