//! Sentinel-managed Redis losing its master while sessions are in use: on a private set of this
//! test's own (master, replica, three Sentinels on free ports; never the shared servers), the
//! master is killed; the Sentinels promote the replica and the store follows it without a
//! restart: the sessions written before load again and new writes land on the new master.
//! Skips without `redis-server`.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use std::{
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use serde_json::json;
use sessionkit_cache::{CACHE_SESSION_PREFIX, CacheConfig, CacheStore, DynBackend, SystemClock};
use sessionkit_sdk::{ErrorKind, SessionRecord, SessionStore, SessionWrite, Timestamp};
use sessionkit_testkit::redis_servers::{PrivateSentinel, redis_cli};

/// A session write whose stored form carries `marker` whatever the store's format.
fn write(key: &str, marker: &str) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            key,
            format!("data-{marker}"),
            Timestamp::from_micros(Timestamp::now().micros + 3_600_000_000),
        ),
        json!({ "m": marker }).to_string(),
    )
}

fn holds(store: &CacheStore<DynBackend>, key: &str, marker: &str) -> Result<bool, String> {
    match store.load(key) {
        Ok(Some(record)) => Ok(record.session_data.contains(marker)),
        Ok(None) => Ok(false),
        Err(error) => Err(error.to_string()),
    }
}

fn store_on(url: &str) -> CacheStore<DynBackend> {
    let settings = json!({"CACHES": {"default": {
        "LOCATION": url,
        "KEY_PREFIX": "sentinel",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5, "pool_timeout": 2}
    }}});
    let config = CacheConfig::from_settings_json(&settings.to_string()).unwrap();
    sessionkit_cache::open_store(&config, CACHE_SESSION_PREFIX, Arc::new(SystemClock)).unwrap()
}

#[test]
fn a_killed_master_is_replaced_and_the_store_follows_the_new_one() {
    let Some(mut set) = PrivateSentinel::start() else {
        return;
    };
    let store = store_on(&set.url(3));
    let keys: Vec<String> = (0..20).map(|i| format!("sentinel{i:0>24}")).collect();
    for key in &keys {
        store.create(write(key, "v1")).unwrap();
    }
    // The writes went to the master, in the database the URL selects.
    let physical = store.cache_key(&keys[0]);
    let on_master = redis_cli(set.master_port(), &["-n", "3", "exists", &physical]).unwrap();
    assert_eq!(on_master.trim(), "1");
    set.wait_replicated();

    set.kill_master();
    let killed_at = Instant::now();
    let mut failed_loads = 0_usize;
    // A watchdog, not a timing assertion: the Sentinels agree the master is down after 1 s and
    // then fail over; a minute means it never happened.
    loop {
        match store.load(&keys[0]) {
            Ok(Some(record)) if record.session_data.contains("v1") => break,
            Ok(other) => panic!("the session was lost in the failover: {other:?}"),
            Err(error) => {
                assert_eq!(error.kind, ErrorKind::Unavailable, "{error}");
                failed_loads += 1;
            }
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(60),
            "the store did not reach a new master within a minute"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let recovered_after = killed_at.elapsed();
    assert_eq!(set.named_master_port(), Some(set.replica_port()));

    for key in &keys {
        assert_eq!(
            holds(&store, key, "v1"),
            Ok(true),
            "written before the failover"
        );
        store.save(write(key, "v2")).unwrap();
        assert_eq!(holds(&store, key, "v2"), Ok(true));
    }
    let on_new_master = redis_cli(set.replica_port(), &["-n", "3", "get", &physical]).unwrap();
    assert!(on_new_master.contains("v2"), "{on_new_master}");
    println!(
        "the store followed the new master after {recovered_after:?} ({failed_loads} loads \
         failed meanwhile)"
    );
}

#[test]
fn a_manual_failover_moves_writes_to_the_newly_named_master_while_the_old_one_lives() {
    let Some(set) = PrivateSentinel::start() else {
        return;
    };
    let store = store_on(&set.url(0));
    let key = "demotedmastersessionkey000000000";
    store.create(write(key, "v1")).unwrap();
    set.wait_replicated();
    // A manual failover: the old master stays up and becomes a replica (READONLY to writes)
    // while the store's pooled connection still points at it.
    let sentinel = set.url(0);
    let first_sentinel: u16 = sentinel
        .trim_start_matches("redis+sentinel://127.0.0.1:")
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    redis_cli(
        first_sentinel,
        &["sentinel", "failover", PrivateSentinel::SERVICE],
    )
    .unwrap();
    let started = Instant::now();
    loop {
        let demoted = redis_cli(set.master_port(), &["role"]).is_ok_and(|r| r.starts_with("slave"));
        if demoted && set.named_master_port() == Some(set.replica_port()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the manual failover did not complete"
        );
        thread::sleep(Duration::from_millis(100));
    }
    // The store's pooled connection still points at the old master, now a replica: the
    // Sentinels close its clients (CLIENT KILL), or it answers READONLY. Either way the first
    // write drops that connection and is retried once on one to the master named now.
    store.save(write(key, "v2")).unwrap();
    let physical = store.cache_key(key);
    let on_new_master = redis_cli(set.replica_port(), &["get", &physical]).unwrap();
    assert!(on_new_master.contains("v2"), "{on_new_master}");
}
