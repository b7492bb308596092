//! The conditional save (`CacheStore::save_if_unchanged`, one atomic compare-and-set) against
//! the plain save (`CacheStore::save`) of the same record, on both backends, in the same run:
//!
//! - `locmem/*`: a private LocMem cache (the compare and the write under its one lock);
//! - `redis/*`: the server of `SESSIONKIT_TEST_REDIS_URL` (skipped with a message when unset),
//!   one pooled connection; values are Django's pickled dicts; the conditional save is one
//!   `EVALSHA` of the compare-and-set script (expecting the pickle of the loaded dict), the
//!   save one `SET … PX … XX`.
//!
//! Each group runs the two alternately in one loop and times each on its own (`paired`), so
//! both see the same machine load. Every conditional save expects what is stored and succeeds
//! (the path a request without a race takes). Values carry a 264-byte `session_data` (an
//! authenticated Django session's size). Run briefly with
//! `SESSIONKIT_TEST_REDIS_URL=redis://127.0.0.1:6379 cargo bench -p sessionkit-cache --bench conditional`.

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use sessionkit_cache::{
    CACHE_SESSION_PREFIX, CacheBackend, CacheStore, KeyFunction, LocMemBackend, LocMemOptions,
    RedisBackend, RedisOptions, SystemClock,
};
use sessionkit_sdk::{ConditionalSave, SessionRecord, SessionStore, SessionWrite, Timestamp};

const KEY: &str = "benchconditionalsave000000000001";

fn write(data: &str) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            KEY,
            data,
            Timestamp::from_micros(Timestamp::now().micros + 600 * 1_000_000),
        ),
        session(data),
    )
}

/// The session dict of [`write`]: what Redis stores (pickled) and a load hands back.
fn session(data: &str) -> String {
    format!(r#"{{"v":"{data}"}}"#)
}

/// `redis/paired` or `locmem/paired`: save and conditional save alternately, each timed alone.
fn paired<B: CacheBackend + 'static>(c: &mut Criterion, name: &str, store: &CacheStore<B>) {
    let data = "x".repeat(264);
    store.create(write(&data)).expect("seed");
    // What a load handed out: the dict on Redis (Django's values), the signed data on LocMem.
    let expected = if store.stores_django_values() {
        session(&data)
    } else {
        data.clone()
    };
    let conditional = || {
        let outcome = store
            .save_if_unchanged(write(&data), &expected)
            .expect("conditional save");
        assert!(matches!(outcome, ConditionalSave::Saved(_)), "{outcome:?}");
    };
    let plain = || {
        black_box(store.save(write(&data)).expect("save"));
    };
    let mut group = c.benchmark_group(format!("{name}/paired"));
    group.bench_function("save", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                plain();
                timed += start.elapsed();
                conditional();
            }
            timed
        })
    });
    group.bench_function("save_if_unchanged", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                plain();
                let start = Instant::now();
                conditional();
                timed += start.elapsed();
            }
            timed
        })
    });
    group.finish();
    store.delete(KEY).expect("cleanup");
}

fn benches(c: &mut Criterion) {
    let locmem = CacheStore::new(
        LocMemBackend::private(LocMemOptions::default(), Arc::new(SystemClock)),
        KeyFunction::default(),
        CACHE_SESSION_PREFIX,
        Arc::new(SystemClock),
    );
    paired(c, "locmem", &locmem);

    let Ok(url) = std::env::var("SESSIONKIT_TEST_REDIS_URL") else {
        println!("skipped: SESSIONKIT_TEST_REDIS_URL not set (the Redis benches need a server)");
        return;
    };
    let options = RedisOptions {
        max_connections: 1,
        ..RedisOptions::default()
    };
    let backend = RedisBackend::open(&url, options).expect("valid Redis URL");
    let prefix = format!("skbench-cas:{}", std::process::id());
    let redis = CacheStore::new(
        backend,
        KeyFunction::new(prefix, 1),
        CACHE_SESSION_PREFIX,
        Arc::new(SystemClock),
    );
    paired(c, "redis", &redis);
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = conditional_benches;
    config = config();
    targets = benches
}
criterion_main!(conditional_benches);
