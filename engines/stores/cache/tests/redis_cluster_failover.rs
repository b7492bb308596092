//! A Redis Cluster losing a master while sessions are in use: on a private cluster of this test's
//! own (3 masters, one replica each, on free ports; never the shared servers), sessions written
//! across many slots, one master killed mid-run. Sessions on the other masters' slots keep
//! loading and saving throughout; the killed master's slots come back, on its promoted replica,
//! without restarting the store. Slots moving between masters (`ASK` while a slot migrates,
//! `MOVED` after) are followed too. Skips without `redis-server`.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use std::{
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use serde_json::json;
use sessionkit_cache::{CACHE_SESSION_PREFIX, CacheConfig, CacheStore, DynBackend, SystemClock};
use sessionkit_sdk::{SessionRecord, SessionStore, SessionWrite, Timestamp};
use sessionkit_testkit::redis_servers::{PrivateCluster, redis_cli, wait_until};

/// A session write whose stored form carries `marker` whatever the store's format (the signed
/// data in a JSON record, or the session dict itself).
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

/// Whether a load found the session and it carries `marker`.
fn holds(store: &CacheStore<DynBackend>, key: &str, marker: &str) -> Result<bool, String> {
    match store.load(key) {
        Ok(Some(record)) => Ok(record.session_data.contains(marker)),
        Ok(None) => Ok(false),
        Err(error) => Err(error.to_string()),
    }
}

/// A store on `url` with short timeouts (so a dead node costs little) and `prefix`.
fn store_on(url: &str, prefix: &str) -> CacheStore<DynBackend> {
    let settings = json!({"CACHES": {"default": {
        "LOCATION": url,
        "KEY_PREFIX": prefix,
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5, "pool_timeout": 2}
    }}});
    let config = CacheConfig::from_settings_json(&settings.to_string()).unwrap();
    sessionkit_cache::open_store(&config, CACHE_SESSION_PREFIX, Arc::new(SystemClock)).unwrap()
}

/// 32-character session keys, `n` of them.
fn session_keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("failover{i:0>24}")).collect()
}

/// The hash slot of a physical key, as the cluster computes it.
fn slot_of(port: u16, physical: &str) -> u16 {
    redis_cli(port, &["cluster", "keyslot", physical])
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_killed_master_fails_over_while_the_other_slots_keep_working() {
    let Some(mut cluster) = PrivateCluster::start(3) else {
        return;
    };
    let store = store_on(&cluster.url(), "failover");
    let keys = session_keys(90);
    for key in &keys {
        store.create(write(key, "v1")).unwrap();
    }
    cluster.wait_replicated();

    let any_port = cluster.ports()[0];
    let master_of = |cluster: &PrivateCluster, key: &str| {
        cluster.master_of_slot(slot_of(any_port, &store.cache_key(key)))
    };
    let victim = master_of(&cluster, &keys[0]);
    let (doomed, surviving): (Vec<String>, Vec<String>) = keys
        .iter()
        .cloned()
        .partition(|key| master_of(&cluster, key) == victim);
    assert!(
        !doomed.is_empty() && surviving.len() >= 30,
        "keys spread over the masters"
    );

    cluster.kill(victim);
    let killed_at = Instant::now();
    let mut failed_loads = 0_usize;
    let mut rounds = 0_usize;
    // A watchdog, not a timing assertion: the cluster promotes the replica after its node
    // timeout (1 s) and an election; a minute means it never happened.
    loop {
        rounds += 1;
        let marker = format!("r{rounds}");
        for key in &surviving {
            // Every surviving session loads and saves in every round, during the failover too.
            assert!(
                holds(&store, key, if rounds == 1 { "v1" } else { "r" }).unwrap_or_else(
                    |error| panic!("round {rounds}: a surviving slot failed: {error}")
                ),
                "round {rounds}: a surviving session was lost"
            );
            store
                .save(write(key, &marker))
                .unwrap_or_else(|error| panic!("round {rounds}: a surviving slot failed: {error}"));
        }
        let recovered = doomed.iter().all(|key| {
            let ok = holds(&store, key, "v1") == Ok(true);
            failed_loads += usize::from(!ok);
            ok
        });
        if recovered {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(60),
            "the killed master's slots did not come back within a minute"
        );
        thread::sleep(Duration::from_millis(100));
    }
    let recovered_after = killed_at.elapsed();

    // The promoted replica took the writes as well as the reads.
    for key in &doomed {
        store.save(write(key, "after-failover")).unwrap();
        assert_eq!(holds(&store, key, "after-failover"), Ok(true));
    }
    let promoted = master_of(&cluster, &doomed[0]);
    assert_ne!(
        promoted, victim,
        "a replica now serves the killed master's slots"
    );
    println!(
        "{} sessions on the killed master's slots recovered after {recovered_after:?} \
         ({failed_loads} loads failed meanwhile); {} others served in all {rounds} rounds",
        doomed.len(),
        surviving.len()
    );
}

/// `CLUSTER NODES`' id of the node on `port`.
fn node_id(cluster: &PrivateCluster, port: u16) -> String {
    cluster
        .cluster_nodes()
        .lines()
        .find(|line| {
            line.split_whitespace()
                .nth(1)
                .is_some_and(|address| address.starts_with(&format!("127.0.0.1:{port}@")))
        })
        .and_then(|line| line.split_whitespace().next())
        .unwrap()
        .to_owned()
}

#[test]
fn a_slot_moving_between_masters_is_followed_through_ask_and_moved() {
    let Some(cluster) = PrivateCluster::start(3) else {
        return;
    };
    let store = store_on(&cluster.url(), "reshard");
    let key = "movingsessionkey0000000000000000";
    store.create(write(key, "v1")).unwrap();
    let physical = store.cache_key(key);
    let any_port = cluster.ports()[0];
    let slot = slot_of(any_port, &physical);
    let source = cluster.master_of_slot(slot);
    let target = cluster
        .ports()
        .into_iter()
        .find(|port| {
            *port != source
                && redis_cli(*port, &["role"]).is_ok_and(|role| role.starts_with("master"))
        })
        .unwrap();
    let (source_id, target_id) = (node_id(&cluster, source), node_id(&cluster, target));
    let slot_text = slot.to_string();

    // Migrate the slot as redis-cli's resharding does: the key moves first, while the source
    // still owns the slot, so the source answers ASK for it.
    redis_cli(
        target,
        &["cluster", "setslot", &slot_text, "importing", &source_id],
    )
    .unwrap();
    redis_cli(
        source,
        &["cluster", "setslot", &slot_text, "migrating", &target_id],
    )
    .unwrap();
    let migrated = redis_cli(
        source,
        &[
            "migrate",
            "127.0.0.1",
            &target.to_string(),
            &physical,
            "0",
            "5000",
        ],
    )
    .unwrap();
    assert_eq!(migrated.trim(), "OK");
    assert_eq!(
        holds(&store, key, "v1"),
        Ok(true),
        "a load during the migration follows ASK to the target"
    );
    store.save(write(key, "during")).unwrap();
    assert_eq!(holds(&store, key, "during"), Ok(true));

    // Then every master learns the slot's new owner: the store's slot map is stale (MOVED).
    for port in cluster.ports() {
        if redis_cli(port, &["role"]).is_ok_and(|role| role.starts_with("master")) {
            redis_cli(
                port,
                &["cluster", "setslot", &slot_text, "node", &target_id],
            )
            .unwrap();
        }
    }
    wait_until(
        Duration::from_secs(20),
        "the cluster agrees on the move",
        || cluster.master_of_slot(slot) == target,
    );
    assert_eq!(
        holds(&store, key, "during"),
        Ok(true),
        "a load follows MOVED"
    );
    store.save(write(key, "after")).unwrap();
    assert_eq!(holds(&store, key, "after"), Ok(true));
    store.delete(key).unwrap();
    assert_eq!(holds(&store, key, "after"), Ok(false));
}
