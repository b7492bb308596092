//! What a session operation costs on each Redis form, in the same run: one server
//! (`SESSIONKIT_TEST_REDIS_URL`), the cluster (`SESSIONKIT_TEST_REDIS_CLUSTER_URL`) and the master
//! the Sentinels name (`SESSIONKIT_TEST_REDIS_SENTINEL_URL`); a form whose variable is unset is
//! skipped with a message. Per form, through `CacheStore`: load (GET), update (`SET XX PX`),
//! create (`SET NX PX`) and a conditional save (the compare-and-set script), with a 264-byte
//! `session_data` (an authenticated Django session's size) on one pooled connection.
//!
//! It also prints `MEMORY USAGE` of one stored session key per form (what a live session costs
//! in Redis memory). Keys live under a random `KEY_PREFIX` with short TTLs and are deleted
//! afterwards. Run briefly with
//! `cargo bench -p sessionkit-cache --bench redis_topology -- --warm-up-time 1 --measurement-time 3`.

use std::{hint::black_box, sync::Arc};

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use sessionkit_cache::{CACHE_SESSION_PREFIX, CacheConfig, CacheStore, DynBackend, SystemClock};
use sessionkit_sdk::{ConditionalSave, SessionRecord, SessionStore, SessionWrite, Timestamp};

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

/// The forms whose variable is set: (label, LOCATION).
fn forms() -> Vec<(&'static str, String)> {
    [
        ("single", "SESSIONKIT_TEST_REDIS_URL"),
        ("cluster", "SESSIONKIT_TEST_REDIS_CLUSTER_URL"),
        ("sentinel", "SESSIONKIT_TEST_REDIS_SENTINEL_URL"),
    ]
    .into_iter()
    .filter_map(|(label, var)| match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some((label, url)),
        _ => {
            println!("skipped {label}: {var} not set");
            None
        }
    })
    .collect()
}

fn store_on(url: &str, prefix: &str) -> CacheStore<DynBackend> {
    let settings = json!({"CACHES": {"default": {
        "LOCATION": url, "KEY_PREFIX": prefix, "OPTIONS": {"max_connections": 1}
    }}});
    let config = CacheConfig::from_settings_json(&settings.to_string()).expect("valid settings");
    sessionkit_cache::open_store(&config, CACHE_SESSION_PREFIX, Arc::new(SystemClock))
        .expect("valid location")
}

fn benches(c: &mut Criterion) {
    let data = "x".repeat(264);
    let prefix = format!("skbench-topology:{}", std::process::id());
    for (label, url) in forms() {
        let store = store_on(&url, &prefix);
        let loaded = key(0);
        store.create(write(&loaded, &data)).expect("seed");
        let physical = store.cache_key(&loaded);
        let memory = memory_usage(&url, &physical);
        println!("{label}: MEMORY USAGE of one session key ({physical}): {memory}");

        let mut group = c.benchmark_group(format!("redis-topology/{label}"));
        group.bench_function("load", |b| {
            b.iter(|| black_box(store.load(&loaded).expect("load")))
        });
        group.bench_function("update", |b| {
            b.iter(|| black_box(store.save(write(&loaded, &data)).expect("save")))
        });
        let mut next = 1_u64;
        group.bench_function("create", |b| {
            b.iter(|| {
                next += 1;
                black_box(store.create(write(&key(next), &data)).expect("create"))
            })
        });
        // The same data every time: the record always holds what the call expects.
        let expected = store
            .load(&loaded)
            .expect("load")
            .expect("seeded")
            .session_data;
        group.bench_function("conditional save", |b| {
            b.iter(|| {
                let outcome = store
                    .save_if_unchanged(write(&loaded, &data), &expected)
                    .expect("conditional save");
                assert!(matches!(outcome, ConditionalSave::Saved(_)), "{outcome:?}");
                black_box(outcome)
            })
        });
        group.finish();

        for i in 0..=next {
            let _ = store.delete(&key(i));
        }
    }
}

/// `MEMORY USAGE key` on the server holding it: for the cluster, every master is asked (the
/// others hold no such key); for Sentinel, the master it names.
fn memory_usage(url: &str, physical: &str) -> String {
    let servers: Vec<String> = if let Some(seeds) = url.strip_prefix("redis+cluster://") {
        let seed = seeds.split(['/', ',']).next().unwrap_or_default();
        let nodes: String = redis::Client::open(format!("redis://{seed}"))
            .and_then(|client| client.get_connection())
            .and_then(|mut con| redis::cmd("CLUSTER").arg("NODES").query(&mut con))
            .unwrap_or_default();
        nodes
            .lines()
            .filter(|line| line.contains("master"))
            .filter_map(|line| line.split_whitespace().nth(1))
            .map(|address| format!("redis://{}", address.split('@').next().unwrap_or_default()))
            .collect()
    } else if let Some(rest) = url.strip_prefix("redis+sentinel://") {
        let sentinel = rest.split(['/', ',']).next().unwrap_or_default();
        let service = rest.split('/').nth(1).unwrap_or_default();
        let master: Option<(String, u16)> = redis::Client::open(format!("redis://{sentinel}"))
            .and_then(|client| client.get_connection())
            .and_then(|mut con| {
                redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(service)
                    .query(&mut con)
            })
            .ok();
        master
            .map(|(host, port)| format!("redis://{host}:{port}"))
            .into_iter()
            .collect()
    } else {
        vec![url.to_owned()]
    };
    for server in servers {
        let usage: Option<i64> = redis::Client::open(server.as_str())
            .and_then(|client| client.get_connection())
            .and_then(|mut con| {
                redis::cmd("MEMORY")
                    .arg("USAGE")
                    .arg(physical)
                    .arg("SAMPLES")
                    .arg(0)
                    .query(&mut con)
            })
            .ok()
            .flatten();
        if let Some(bytes) = usage {
            return format!("{bytes} bytes");
        }
    }
    "unknown".to_owned()
}

criterion_group!(redis_topology, benches);
criterion_main!(redis_topology);
