//! Outages of a private `redis-server` (started by each test on a free loopback port, without
//! persistence; the shared server on 6379 is never touched): killed, stopped, restarted, out of
//! memory, read-only, failing to persist. Calls must come back with an `Unavailable` error —
//! never a hang (a watchdog of 20× the configured timeout fails only on a hang) and never a
//! panic — and work again when the server does.

mod common;

use std::{
    sync::{Arc, Barrier},
    thread,
    time::{Duration, Instant},
};

use serde_json::json;
use sessionkit_cache::{
    CACHE_SESSION_PREFIX, CacheBackend, CacheConfig, CacheError, RedisOptions, SystemClock,
    open_store,
};
use sessionkit_sdk::{ConditionalSave, ErrorKind, SessionStore, StoreError};

use common::{PrivateRedis, dict, short_timeouts, store_on, within, write};

const TIMEOUT: Duration = Duration::from_millis(300);
/// At least 10× every timeout a call may wait through (connect, command, retry).
const WATCHDOG: Duration = Duration::from_secs(6);

fn options() -> RedisOptions {
    short_timeouts(TIMEOUT)
}

fn key(i: usize) -> String {
    format!("outage{i:04}abcdefghijklmnopqrstuv")
}

/// One contract call against a store, for [`every_operation_fails_unavailable`].
type Call<S> = fn(&S) -> Result<(), StoreError>;

/// Every contract operation once, each under the watchdog; the errors they returned.
fn every_operation_fails_unavailable<S: SessionStore + 'static>(store: &Arc<S>) -> Vec<StoreError> {
    let calls: [(&str, Call<S>); 6] = [
        ("load", |s| s.load(&key(1)).map(drop)),
        ("exists", |s| s.exists(&key(1)).map(drop)),
        ("create", |s| s.create(write(&key(2), "d", 60)).map(drop)),
        ("save", |s| s.save(write(&key(1), "d", 60)).map(drop)),
        ("save_if_unchanged", |s| {
            s.save_if_unchanged(write(&key(1), "d2", 60), "d").map(drop)
        }),
        ("delete", |s| s.delete(&key(1))),
    ];
    let mut errors = Vec::new();
    for (name, call) in calls {
        let store = store.clone();
        let result = within(WATCHDOG, move || call(&store));
        let error = result.expect_err(name);
        assert_eq!(error.kind, ErrorKind::Unavailable, "{name}: {error}");
        errors.push(error);
    }
    errors
}

#[test]
fn conditional_save_loads_its_script_on_a_server_that_has_not_cached_it() {
    // A fresh server has no scripts, and SCRIPT FLUSH empties the cache again (allowed here: the
    // server is this test's own): EVALSHA answers NOSCRIPT and the backend falls back to EVAL.
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let (store, _) = store_on(&server.url(), "noscript", options());
    store.create(write(&key(1), "v0", 60)).unwrap();
    for (expected, data) in [("v0", "v1"), ("v1", "v2")] {
        let outcome = store
            .save_if_unchanged(write(&key(1), data, 60), &dict(expected))
            .unwrap();
        assert_eq!(outcome, ConditionalSave::Saved(key(1)));
        let () = server.admin(&["SCRIPT", "FLUSH"]);
    }
    assert_eq!(
        store.load(&key(1)).unwrap().unwrap().session_data.as_str(),
        dict("v2")
    );
}

#[test]
fn killed_server_gives_unavailable_errors_and_restart_recovers() {
    let Some(mut server) = PrivateRedis::start() else {
        return;
    };
    let (store, backend) = store_on(&server.url(), "outage", options());
    let store = Arc::new(store);
    store.create(write(&key(1), "before", 60)).unwrap();
    assert!(store.load(&key(1)).unwrap().is_some());
    assert_eq!(backend.idle_connections(), 1);

    server.kill();
    let errors = every_operation_fails_unavailable(&store);
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("connection to Redis")
                || e.message.contains("cannot connect to Redis")),
        "{errors:?}"
    );
    assert_eq!(
        backend.idle_connections(),
        0,
        "broken connections are dropped"
    );

    server.restart();
    // No persistence: the old session is gone, and that is a plain miss, not an error.
    assert_eq!(store.load(&key(1)).unwrap(), None);
    store.create(write(&key(3), "after", 60)).unwrap();
    assert_eq!(
        store.load(&key(3)).unwrap().unwrap().session_data.as_str(),
        dict("after")
    );
}

#[test]
fn pooled_connections_to_a_restarted_server_are_replaced_without_an_error() {
    let Some(mut server) = PrivateRedis::start() else {
        return;
    };
    let (store, backend) = store_on(&server.url(), "outage", options());
    // Open four connections at once, so four go back to the pool.
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (backend, barrier) = (backend.clone(), barrier.clone());
            thread::spawn(move || {
                backend
                    .with_connection(|con| {
                        barrier.wait();
                        redis::cmd("PING").query::<String>(con)
                    })
                    .unwrap()
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(backend.idle_connections(), 4);

    server.restart(); // every pooled connection now points at a dead process
    let store = Arc::new(store);
    let first = within(WATCHDOG, {
        let store = store.clone();
        move || store.create(write(&key(5), "d", 60))
    });
    assert_eq!(
        first.unwrap(),
        key(5),
        "the first call after a restart succeeds"
    );
    assert_eq!(
        backend.idle_connections(),
        1,
        "the stale connections were dropped"
    );
    assert!(store.load(&key(5)).unwrap().is_some());
}

#[test]
fn stopped_server_times_out_with_unavailable_and_recovers_when_continued() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let (store, _) = store_on(&server.url(), "outage", options());
    let store = Arc::new(store);
    store.create(write(&key(1), "d", 60)).unwrap();

    server.signal("STOP");
    let errors = every_operation_fails_unavailable(&store);
    server.signal("CONT");
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("did not answer within")),
        "{errors:?}"
    );

    // The server may still run commands that were queued while it was stopped; what matters
    // is that calls work again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.load(&key(1)) {
            Ok(_) => break,
            Err(error) if Instant::now() < deadline => {
                assert_eq!(error.kind, ErrorKind::Unavailable, "{error}");
                thread::sleep(Duration::from_millis(50));
            }
            Err(error) => panic!("the server never answered again: {error}"),
        }
    }
    store.create(write(&key(7), "after", 60)).unwrap();
}

#[test]
fn out_of_memory_is_unavailable_and_reads_keep_working() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let (store, backend) = store_on(&server.url(), "outage", options());
    store.create(write(&key(0), "small", 60)).unwrap();
    let _: String = server.admin(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    let _: String = server.admin(&["CONFIG", "SET", "maxmemory", "1"]);

    let error = store.create(write(&key(1), "d", 60)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable, "{error}");
    assert!(error.message.contains("out of memory"), "{error}");
    assert!(
        !error.message.contains(&key(1)),
        "no key in messages: {error}"
    );
    assert!(store.load(&key(0)).unwrap().is_some(), "reads still work");
    assert!(
        backend.idle_connections() >= 1,
        "an error reply keeps the connection"
    );

    let _: String = server.admin(&["CONFIG", "SET", "maxmemory", "0"]);
    store.create(write(&key(1), "d", 60)).unwrap();
}

#[test]
fn read_only_replica_is_unavailable_for_writes() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let (store, _) = store_on(&server.url(), "outage", options());
    store.create(write(&key(0), "d", 60)).unwrap();
    // A master on a port nothing listens on: the server stays a read-only replica.
    let _: String = server.admin(&["REPLICAOF", "127.0.0.1", "1"]);

    let error = store.save(write(&key(0), "d2", 60)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable, "{error}");
    assert!(error.message.contains("read-only replica"), "{error}");

    let _: String = server.admin(&["REPLICAOF", "NO", "ONE"]);
    store.save(write(&key(0), "d2", 60)).unwrap();
}

#[test]
fn failing_persistence_misconf_is_unavailable() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let (store, backend) = store_on(&server.url(), "outage", options());
    store.create(write(&key(0), "d", 60)).unwrap();
    // Snapshots on, and the server's directory gone: the next BGSAVE fails, and with
    // stop-writes-on-bgsave-error (the default) writes are refused with MISCONF.
    let _: String = server.admin(&["CONFIG", "SET", "save", "3600 1"]);
    std::fs::remove_dir_all(server.dir()).unwrap();
    let _: String = server.admin(&["BGSAVE"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = server.admin(&["INFO", "persistence"]);
        if info.contains("rdb_last_bgsave_status:err") && info.contains("rdb_bgsave_in_progress:0")
        {
            break;
        }
        assert!(Instant::now() < deadline, "BGSAVE did not fail: {info}");
        thread::sleep(Duration::from_millis(20));
    }

    match backend.set("outage:probe", b"v", Duration::from_secs(60)) {
        Err(CacheError::Unavailable(message)) => {
            assert!(
                message.contains("last snapshot to disk failed"),
                "{message}"
            )
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let error = store.create(write(&key(1), "d", 60)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable, "{error}");
    assert!(error.message.contains("MISCONF"), "{error}");

    let _: String = server.admin(&["CONFIG", "SET", "save", ""]);
    store.create(write(&key(1), "d", 60)).unwrap();
}

#[test]
fn unix_socket_location_reaches_the_server() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let settings = json!({"CACHES": {"default": {"LOCATION": server.unix_url()}}});
    let config = CacheConfig::from_settings_json(&settings.to_string()).unwrap();
    let store = open_store(&config, CACHE_SESSION_PREFIX, Arc::new(SystemClock)).unwrap();
    store.create(write(&key(1), "over a socket", 60)).unwrap();
    // The same server over TCP sees it.
    let (tcp, _) = store_on(&server.url(), "", options());
    assert_eq!(
        tcp.load(&key(1)).unwrap().unwrap().session_data.as_str(),
        dict("over a socket")
    );
}

#[test]
fn tls_location_against_a_plain_server_fails_without_hanging() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let settings = json!({"CACHES": {"default": {
        "LOCATION": format!("rediss://127.0.0.1:{}/0", server.port()),
        "OPTIONS": {"socket_connect_timeout": 0.3, "socket_timeout": 0.3}
    }}});
    let config = CacheConfig::from_settings_json(&settings.to_string()).unwrap();
    let store = Arc::new(open_store(&config, CACHE_SESSION_PREFIX, Arc::new(SystemClock)).unwrap());
    let result = within(WATCHDOG, move || store.load(&key(1)));
    let error = result.expect_err("a TLS handshake with a plain server cannot succeed");
    println!("rediss:// to a plain server: {error}");
    assert!(
        matches!(error.kind, ErrorKind::Unavailable | ErrorKind::Other),
        "{error}"
    );
}

#[test]
fn wrong_password_is_a_clear_error_that_never_shows_the_password() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let _: String = server.admin(&["CONFIG", "SET", "requirepass", "right-secret"]);
    let url = format!("redis://:wrong-secret@127.0.0.1:{}/0", server.port());
    let (store, backend) = store_on(&url, "", options());
    let error = store.load(&key(1)).unwrap_err();
    println!("wrong password: {error}");
    assert_eq!(error.kind, ErrorKind::Other, "{error}");
    assert!(!error.message.contains("wrong-secret"), "{error}");
    assert!(error.message.contains("redis://:***@127.0.0.1"), "{error}");
    assert_eq!(backend.idle_connections(), 0);

    let url = format!("redis://:right-secret@127.0.0.1:{}/0", server.port());
    let (store, _) = store_on(&url, "", options());
    store.create(write(&key(1), "d", 60)).unwrap();
}
