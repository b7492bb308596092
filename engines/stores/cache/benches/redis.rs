//! The Redis backend through `CacheStore` next to the raw commands it is made of, in the same
//! run, against the server of `SESSIONKIT_TEST_REDIS_URL` (skipped with a message when unset):
//!
//! - load: `CacheStore::load` (`GET`+`PTTL` in one script + safe unpickling + the dict as JSON)
//!   vs a raw `GET`;
//! - create: `CacheStore::create` (pickling + `SET NX PX`) vs a raw `SET … PX … NX`;
//! - update: `CacheStore::save` (`SET XX PX`) vs a raw `SET … PX … XX`.
//!
//! `redis/load paired` runs the store's load and a raw `GET` alternately in one loop, timing each
//! on its own, so both see the same machine load. Raw commands run twice: on the store's own pooled connection (`RedisBackend::with_connection`,
//! the pool holds exactly one), and on a bare `redis::Connection` (no pool at all). Values are a
//! 264-byte `session_data` (an authenticated Django session's size). Keys live under a random `KEY_PREFIX`, with
//! short TTLs, and are deleted afterwards. Run briefly with
//! `cargo bench -p sessionkit-cache --bench redis -- --warm-up-time 1 --measurement-time 3`.

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use sessionkit_cache::{
    CACHE_SESSION_PREFIX, CacheStore, KeyFunction, RedisBackend, RedisOptions, SystemClock,
};
use sessionkit_sdk::{SessionRecord, SessionStore, SessionWrite, Timestamp};

const TTL_SECS: i64 = 600;

struct Setup {
    url: String,
    prefix: String,
    store: CacheStore<Arc<RedisBackend>>,
    backend: Arc<RedisBackend>,
    bare: redis::Connection,
    data: String,
}

fn setup(url: String) -> Setup {
    let prefix = format!("skbench:{}", std::process::id());
    let options = RedisOptions {
        max_connections: 1,
        ..RedisOptions::default()
    };
    let backend = Arc::new(RedisBackend::open(&url, options).expect("valid Redis URL"));
    let store = CacheStore::new(
        backend.clone(),
        KeyFunction::new(prefix.clone(), 1),
        CACHE_SESSION_PREFIX,
        Arc::new(SystemClock),
    );
    let bare = redis::Client::open(url.as_str())
        .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
        .expect("the Redis server answers");
    Setup {
        url,
        prefix,
        store,
        backend,
        bare,
        data: "x".repeat(264),
    }
}

fn write(key: &str, data: &str) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            key,
            data,
            Timestamp::from_micros(Timestamp::now().micros + TTL_SECS * 1_000_000),
        ),
        // What Redis stores: the session dict, pickled as Django does (264 bytes of data).
        format!(r#"{{"v":"{data}"}}"#),
    )
}

fn key(i: u64) -> String {
    format!("bench{i:027}")
}

fn benches(c: &mut Criterion) {
    let Ok(url) = std::env::var("SESSIONKIT_TEST_REDIS_URL") else {
        println!("skipped: SESSIONKIT_TEST_REDIS_URL not set (the Redis benches need a server)");
        return;
    };
    let mut s = setup(url);
    let loaded = key(0);
    s.store.create(write(&loaded, &s.data)).expect("seed");
    let physical = s.store.cache_key(&loaded);
    let value = s.backend.get_raw(&physical);

    let mut group = c.benchmark_group("redis/load");
    group.bench_function("store", |b| {
        b.iter(|| black_box(s.store.load(&loaded).expect("load")))
    });
    group.bench_function("raw GET (pooled connection)", |b| {
        b.iter(|| {
            black_box(
                s.backend
                    .with_connection(|con| redis::cmd("GET").arg(&physical).query::<Vec<u8>>(con))
                    .expect("get"),
            )
        })
    });
    group.bench_function("raw GET (bare connection)", |b| {
        b.iter(|| {
            black_box(
                redis::cmd("GET")
                    .arg(&physical)
                    .query::<Vec<u8>>(&mut s.bare)
                    .expect("get"),
            )
        })
    });
    group.finish();

    // The same comparison with the two calls alternating in one loop, each timed on its own:
    // both see the same machine load, which on a shared machine moves more than the gap.
    let mut group = c.benchmark_group("redis/load paired");
    let raw_get = |bare: &mut redis::Connection| {
        redis::cmd("GET")
            .arg(&physical)
            .query::<Vec<u8>>(bare)
            .expect("get")
    };
    group.bench_function("store", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                black_box(s.store.load(&loaded).expect("load"));
                timed += start.elapsed();
                black_box(raw_get(&mut s.bare));
            }
            timed
        })
    });
    group.bench_function("raw GET (bare connection)", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                black_box(s.store.load(&loaded).expect("load"));
                let start = Instant::now();
                black_box(raw_get(&mut s.bare));
                timed += start.elapsed();
            }
            timed
        })
    });
    group.finish();

    let mut group = c.benchmark_group("redis/create");
    let mut next = 1_000_000u64;
    group.bench_function("store", |b| {
        b.iter(|| {
            next += 1;
            black_box(s.store.create(write(&key(next), &s.data)).expect("create"))
        })
    });
    let raw_set = |condition: &'static str, key: &str| {
        let mut command = redis::cmd("SET");
        command
            .arg(key)
            .arg(&value)
            .arg("PX")
            .arg(TTL_SECS * 1000)
            .arg(condition);
        command
    };
    group.bench_function("raw SET NX (pooled connection)", |b| {
        b.iter(|| {
            next += 1;
            let physical = s.store.cache_key(&key(next));
            black_box(
                s.backend
                    .with_connection(|con| raw_set("NX", &physical).query::<redis::Value>(con))
                    .expect("set"),
            )
        })
    });
    group.bench_function("raw SET NX (bare connection)", |b| {
        b.iter(|| {
            next += 1;
            let physical = s.store.cache_key(&key(next));
            black_box(
                raw_set("NX", &physical)
                    .query::<redis::Value>(&mut s.bare)
                    .expect("set"),
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("redis/update");
    group.bench_function("store", |b| {
        b.iter(|| black_box(s.store.save(write(&loaded, &s.data)).expect("save")))
    });
    group.bench_function("raw SET XX (pooled connection)", |b| {
        b.iter(|| {
            black_box(
                s.backend
                    .with_connection(|con| raw_set("XX", &physical).query::<redis::Value>(con))
                    .expect("set"),
            )
        })
    });
    group.bench_function("raw SET XX (bare connection)", |b| {
        b.iter(|| {
            black_box(
                raw_set("XX", &physical)
                    .query::<redis::Value>(&mut s.bare)
                    .expect("set"),
            )
        })
    });
    group.finish();

    cleanup(&mut s);
}

/// Deletes every key of this run (SCAN + DEL under its prefix; never FLUSHDB).
fn cleanup(s: &mut Setup) {
    let pattern = format!("{}:*", s.prefix);
    let keys: Vec<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(&pattern)
        .arg("COUNT")
        .arg(1000)
        .clone()
        .iter(&mut s.bare)
        .and_then(|keys| keys.collect())
        .unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _ = redis::cmd("DEL").arg(chunk).query::<i64>(&mut s.bare);
    }
    println!("removed {} bench keys from {}", keys.len(), s.url);
}

/// The stored bytes of a physical key (to replay them with raw SETs).
trait GetRaw {
    fn get_raw(&self, physical: &str) -> Vec<u8>;
}

impl GetRaw for RedisBackend {
    fn get_raw(&self, physical: &str) -> Vec<u8> {
        self.with_connection(|con| redis::cmd("GET").arg(physical).query::<Vec<u8>>(con))
            .expect("the seeded key is stored")
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = redis_benches;
    config = config();
    targets = benches
}
criterion_main!(redis_benches);
