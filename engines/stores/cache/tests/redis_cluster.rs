//! The Redis backend on the shared cluster (`SESSIONKIT_TEST_REDIS_CLUSTER_URL`) and Sentinel set
//! (`SESSIONKIT_TEST_REDIS_SENTINEL_URL`) that `.ci/run` starts, each test under a random
//! `KEY_PREFIX` removed afterwards; and Django's list form (first server writes, the others
//! read) on a private primary and replica of this test's own. Tests print "skipped: …" and pass
//! without their variable or `redis-server`.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use std::{
    sync::{Arc, Barrier},
    thread,
    time::Duration,
};

use serde_json::json;
use sessionkit_cache::{
    CacheBackend, CacheConfig, CompareAndSet, DynBackend, RedisBackend, RedisOptions, SystemClock,
    connect, redis_backend::COMPARE_AND_SET_SHA1,
};
use sessionkit_testkit::{
    redis_servers::{RedisProcess, redis_cli, redis_cluster_url, redis_sentinel_url, wait_until},
    unique_prefix,
};

const HOUR: Duration = Duration::from_secs(3600);

fn config(location: serde_json::Value, options: serde_json::Value) -> CacheConfig {
    let settings = json!({"CACHES": {"default": {"LOCATION": location, "OPTIONS": options}}});
    CacheConfig::from_settings_json(&settings.to_string()).unwrap()
}

fn backend(location: &str) -> DynBackend {
    connect(&config(json!(location), json!({})), Arc::new(SystemClock)).unwrap()
}

/// Keys under a random prefix, `n` of them, spread over the hash slots; deleted on drop.
struct Keys {
    backend: DynBackend,
    keys: Vec<String>,
}

impl Keys {
    fn new(backend: &DynBackend, n: usize) -> Self {
        let prefix = unique_prefix();
        Self {
            backend: backend.clone(),
            keys: (0..n).map(|i| format!("{prefix}{i}")).collect(),
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        for key in &self.keys {
            let _ = self.backend.delete(key);
        }
    }
}

/// Every operation of the trait, on keys spread over many slots (or on the master).
fn check_every_operation(backend: &DynBackend) {
    let keys = Keys::new(backend, 64);
    for key in &keys.keys {
        assert!(backend.add(key, b"v1", HOUR).unwrap());
        assert!(
            !backend.add(key, b"other", HOUR).unwrap(),
            "add never overwrites"
        );
        assert_eq!(backend.get(key).unwrap().as_deref(), Some(&b"v1"[..]));
        assert!(backend.contains(key).unwrap());
        assert!(backend.set_if_present(key, b"v2", HOUR).unwrap());
        assert_eq!(
            backend.replace_if_prefixed(key, b"v1", b"x", HOUR).unwrap(),
            CompareAndSet::Mismatch(b"v2".to_vec())
        );
        assert_eq!(
            backend.replace_if_prefixed(key, b"v", b"v3", HOUR).unwrap(),
            CompareAndSet::Replaced
        );
        assert_eq!(backend.get(key).unwrap().as_deref(), Some(&b"v3"[..]));
        assert!(backend.delete(key).unwrap());
        assert!(!backend.contains(key).unwrap());
        assert!(
            !backend.set_if_present(key, b"v4", HOUR).unwrap(),
            "never brings one back"
        );
        assert_eq!(
            backend.replace_if_prefixed(key, b"", b"v5", HOUR).unwrap(),
            CompareAndSet::Missing
        );
        backend.set(key, b"v6", HOUR).unwrap();
        backend.set(key, b"gone", Duration::ZERO).unwrap();
        assert_eq!(backend.get(key).unwrap(), None, "a zero TTL removes");
    }
}

#[test]
fn every_operation_works_across_the_clusters_slots() {
    let Some(url) = redis_cluster_url() else {
        return;
    };
    check_every_operation(&backend(&url));
}

#[test]
fn every_operation_works_on_the_master_the_sentinels_name() {
    let Some(url) = redis_sentinel_url() else {
        return;
    };
    check_every_operation(&backend(&url));
}

#[test]
fn concurrent_compare_and_sets_on_the_cluster_let_exactly_one_win() {
    let Some(url) = redis_cluster_url() else {
        return;
    };
    let backend = backend(&url);
    let keys = Keys::new(&backend, 1);
    let key = keys.keys[0].clone();
    backend.set(&key, b"base", HOUR).unwrap();
    let barrier = Arc::new(Barrier::new(8));
    let winners: usize = (0..8)
        .map(|i| {
            let (backend, barrier, key) = (backend.clone(), barrier.clone(), key.clone());
            thread::spawn(move || {
                barrier.wait();
                let value = format!("writer{i}");
                backend
                    .replace_if_prefixed(&key, b"base", value.as_bytes(), HOUR)
                    .unwrap()
                    == CompareAndSet::Replaced
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| usize::from(handle.join().unwrap()))
        .sum();
    assert_eq!(winners, 1);
}

#[test]
fn the_compare_and_set_script_is_cached_on_every_master_it_ran_on() {
    let Some(url) = redis_cluster_url() else {
        return;
    };
    let backend = backend(&url);
    // Keys over every slot range: the script is loaded (EVAL after NOSCRIPT) on each master.
    let keys = Keys::new(&backend, 64);
    for key in &keys.keys {
        backend.set(key, b"a", HOUR).unwrap();
        backend.replace_if_prefixed(key, b"a", b"b", HOUR).unwrap();
    }
    let seed = url
        .trim_start_matches("redis+cluster://")
        .split(',')
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    let nodes = redis_cli(seed, &["cluster", "nodes"]).unwrap();
    for line in nodes.lines().filter(|line| line.contains("master")) {
        let port: u16 = line
            .split_whitespace()
            .nth(1)
            .unwrap()
            .split('@')
            .next()
            .unwrap()
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let exists = redis_cli(port, &["script", "exists", COMPARE_AND_SET_SHA1]).unwrap();
        assert_eq!(exists.trim(), "1", "master on {port}");
    }
}

#[test]
fn a_cluster_location_with_unreachable_seeds_fails_as_unavailable_quickly() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backend = backend(&format!("redis+cluster://:hunter2@127.0.0.1:{port}"));
    match backend.get("k") {
        Err(sessionkit_cache::CacheError::Unavailable(message)) => {
            assert!(message.contains("Redis Cluster"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn unreachable_sentinels_fail_as_unavailable_naming_each() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backend = backend(&format!("redis+sentinel://:hunter2@127.0.0.1:{port}/svc/0"));
    match backend.get("k") {
        Err(sessionkit_cache::CacheError::Unavailable(message)) => {
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// A private primary and its replica.
fn primary_and_replica() -> Option<(RedisProcess, RedisProcess, tempfile::TempDir)> {
    if !sessionkit_testkit::redis_servers::redis_tools_installed() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let data = ["--save", "", "--appendonly", "no"];
    let primary = RedisProcess::start(port(), dir.path(), &data);
    let primary_port = primary.port().to_string();
    let replica_dir = dir.path().join("replica");
    std::fs::create_dir_all(&replica_dir).unwrap();
    let replica = RedisProcess::start(
        port(),
        &replica_dir,
        &[
            "--save",
            "",
            "--appendonly",
            "no",
            "--replicaof",
            "127.0.0.1",
            &primary_port,
            // So the test can plant a value only the replica holds.
            "--replica-read-only",
            "no",
        ],
    );
    wait_until(Duration::from_secs(20), "the replica is in sync", || {
        redis_cli(replica.port(), &["info", "replication"])
            .is_ok_and(|info| info.contains("master_link_status:up"))
    });
    Some((primary, replica, dir))
}

#[test]
fn the_list_form_writes_to_the_first_server_and_reads_from_the_others() {
    let Some((primary, mut replica, _dir)) = primary_and_replica() else {
        return;
    };
    let location = json!([
        format!("redis://127.0.0.1:{}/0", primary.port()),
        format!("redis://127.0.0.1:{}/0", replica.port())
    ]);
    let options = json!({"socket_connect_timeout": 0.5, "socket_timeout": 0.5});
    let backend = connect(
        &config(location.clone(), options.clone()),
        Arc::new(SystemClock),
    )
    .unwrap();
    backend.set("written", b"v", HOUR).unwrap();
    assert_eq!(
        redis_cli(primary.port(), &["get", "written"])
            .unwrap()
            .trim(),
        "v",
        "writes go to the first server"
    );
    // A value only the replica holds shows where reads go.
    redis_cli(replica.port(), &["set", "planted", "on-replica"]).unwrap();
    assert_eq!(
        backend.get("planted").unwrap().as_deref(),
        Some(&b"on-replica"[..]),
        "reads go to the replica, as Django's RedisCache"
    );
    assert!(backend.contains("planted").unwrap());

    // OPTIONS read_from_replicas = false: reads stay on the primary.
    let mut primary_only = options.clone();
    primary_only["read_from_replicas"] = json!(false);
    let on_primary = connect(&config(location, primary_only), Arc::new(SystemClock)).unwrap();
    assert_eq!(on_primary.get("planted").unwrap(), None);
    assert_eq!(
        on_primary.get("written").unwrap().as_deref(),
        Some(&b"v"[..])
    );

    // A replica going down costs no failed reads: they fall back to the primary.
    replica.kill();
    assert_eq!(backend.get("written").unwrap().as_deref(), Some(&b"v"[..]));
    assert!(backend.contains("written").unwrap());
}

#[test]
fn a_single_location_stays_a_single_server_backend() {
    // The one-URL form is not wrapped: RedisBackend's own pool, breaker and error messages.
    let backend = RedisBackend::open("redis://127.0.0.1:1/0", RedisOptions::default()).unwrap();
    assert_eq!(backend.url(), "redis://127.0.0.1:1/0");
}
