//! The cache store's rules and the backend contract on real memcached servers: the ones named
//! by `SESSIONKIT_TEST_MEMCACHED_URL` (`.ci/run` starts two), each test under a random
//! `KEY_PREFIX` whose keys are deleted afterwards (never a `flush_all`). Every test prints
//! "skipped: …" and passes when the variable is unset.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

mod memcached_common;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Barrier},
    thread,
    time::Duration,
};

use memcache::exp::MetaClient;
use sessionkit_cache::{
    CacheBackend, CacheError, CompareAndSet, MemcachedBackend, MemcachedOptions, MemcachedServer,
    memcached::{FLAG_BYTES, FLAG_PICKLE, MAX_RELATIVE_TTL_SECS},
};
use sessionkit_sdk::{Capabilities, ConditionalSave, ErrorKind, SessionStore};

use memcached_common::{Shared, loaded_data, write};

const KEY: &str = "abcdefghijklmnopqrstuvwxyz012345";

/// A plain meta client on one server, to look at what is stored there.
fn raw_client(server: &MemcachedServer) -> MetaClient {
    MetaClient::connect(server.to_string()).unwrap()
}

/// The value and client flags stored under `key` on exactly `server`.
fn raw_on(server: &MemcachedServer, key: &str) -> Option<(Vec<u8>, u32)> {
    let result = raw_client(server).get(key).send().unwrap();
    if !result.hit() {
        return None;
    }
    Some((result.value.unwrap(), result.client_flags.unwrap_or(0)))
}

#[test]
fn a_session_lives_on_the_server_pymemcache_picks_under_djangos_key() {
    let Some(shared) = Shared::new() else {
        return;
    };
    let store = shared.store();
    for index in 0..20 {
        let key = format!("{KEY}{index:02}");
        let physical = store.cache_key(&key);
        shared.forget_later(&physical);
        assert_eq!(
            physical,
            format!("{}:1:django.contrib.sessions.cache{key}", shared.prefix)
        );
        store.create(write(&key, "data:1", 60)).unwrap();
        let home = shared.backend.server_for(&physical).clone();
        for server in &shared.servers {
            let stored = raw_on(server, &physical);
            assert_eq!(
                stored.is_some(),
                *server == home,
                "{server} for key {index}"
            );
        }
    }
}

#[test]
fn values_carry_pymemcaches_client_flags() {
    let Some(shared) = Shared::new() else {
        return;
    };
    let pickle = shared.key("pickle");
    let json = shared.key("json");
    // Python: pickle.dumps({}, 5).
    let empty_dict_pickle = b"\x80\x05}\x94.";
    shared
        .backend
        .set(&pickle, empty_dict_pickle, Duration::from_secs(60))
        .unwrap();
    shared
        .backend
        .set(&json, b"{\"a\":1}", Duration::from_secs(60))
        .unwrap();
    let on = |key: &str| raw_on(shared.backend.server_for(key), key).unwrap();
    assert_eq!(on(&pickle), (empty_dict_pickle.to_vec(), FLAG_PICKLE));
    assert_eq!(on(&json), (b"{\"a\":1}".to_vec(), FLAG_BYTES));
}

#[test]
fn ttls_are_whole_seconds_and_long_ones_become_absolute_times() {
    let Some(shared) = Shared::new() else {
        return;
    };
    let short = shared.key("short");
    let long = shared.key("long");
    shared
        .backend
        .set(&short, b"v", Duration::from_millis(599_001))
        .unwrap();
    let (_, ttl) = shared.backend.get_with_ttl(&short).unwrap().unwrap();
    let ttl = ttl.unwrap().as_secs();
    assert!((595..=600).contains(&ttl), "TTL {ttl}");

    // 40 days: sent as a Unix time, or memcached would read it as a date in 1970 (gone at once).
    let forty_days = Duration::from_secs(40 * 24 * 3600);
    assert!(forty_days.as_secs() > MAX_RELATIVE_TTL_SECS);
    shared.backend.set(&long, b"v", forty_days).unwrap();
    let (value, ttl) = shared.backend.get_with_ttl(&long).unwrap().unwrap();
    assert_eq!(value, b"v");
    let ttl = ttl.unwrap().as_secs();
    assert!(
        ttl > forty_days.as_secs() - 60 && ttl <= forty_days.as_secs() + 1,
        "TTL {ttl}"
    );

    // 300 years: past what memcached can name (2038), kept until then rather than refused.
    let centuries = shared.key("centuries");
    shared
        .backend
        .set(&centuries, b"v", Duration::from_secs(300 * 365 * 24 * 3600))
        .unwrap();
    assert_eq!(
        shared.backend.get(&centuries).unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

#[test]
fn zero_ttls_behave_as_already_expired() {
    let Some(shared) = Shared::new() else {
        return;
    };
    let b = &shared.backend;
    let key = shared.key("zero");
    assert!(b.add(&key, b"v", Duration::ZERO).unwrap());
    assert_eq!(b.get(&key).unwrap(), None);
    b.set(&key, b"v", Duration::from_secs(60)).unwrap();
    assert!(!b.add(&key, b"w", Duration::ZERO).unwrap());
    assert!(b.set_if_present(&key, b"w", Duration::ZERO).unwrap());
    assert!(!b.contains(&key).unwrap());
    b.set(&key, b"v", Duration::from_secs(60)).unwrap();
    b.set(&key, b"w", Duration::ZERO).unwrap();
    assert_eq!(b.get(&key).unwrap(), None);
    assert!(!b.set_if_present(&key, b"w", Duration::ZERO).unwrap());
}

#[test]
fn add_replace_set_and_delete_follow_the_contract() {
    let Some(shared) = Shared::new() else {
        return;
    };
    let b = &shared.backend;
    let key = shared.key("contract");
    let ttl = Duration::from_secs(60);
    assert!(!b.contains(&key).unwrap());
    assert!(!b.set_if_present(&key, b"v0", ttl).unwrap());
    assert_eq!(b.get(&key).unwrap(), None);
    assert!(b.add(&key, b"v1", ttl).unwrap());
    assert!(!b.add(&key, b"v2", ttl).unwrap());
    assert_eq!(b.get(&key).unwrap().as_deref(), Some(&b"v1"[..]));
    assert!(b.set_if_present(&key, b"v3", ttl).unwrap());
    assert_eq!(b.get(&key).unwrap().as_deref(), Some(&b"v3"[..]));
    b.set(&key, b"v4", ttl).unwrap();
    assert!(b.contains(&key).unwrap());
    assert_eq!(b.get(&key).unwrap().as_deref(), Some(&b"v4"[..]));
    assert!(b.delete(&key).unwrap());
    assert!(!b.delete(&key).unwrap());
    assert!(!b.set_if_present(&key, b"v5", ttl).unwrap());
    assert_eq!(b.get(&key).unwrap(), None);
    assert_eq!(b.capabilities(), Capabilities::SHARED_BETWEEN_PROCESSES);
}

#[test]
fn replace_if_prefixed_compares_and_sets() {
    let Some(shared) = Shared::new() else {
        return;
    };
    let b = &shared.backend;
    let key = shared.key("cas");
    let ttl = Duration::from_secs(60);
    assert_eq!(
        b.replace_if_prefixed(&key, b"old", b"new", ttl).unwrap(),
        CompareAndSet::Missing
    );
    assert_eq!(b.get(&key).unwrap(), None);
    b.set(&key, b"old-value", ttl).unwrap();
    assert_eq!(
        b.replace_if_prefixed(&key, b"other", b"new", ttl).unwrap(),
        CompareAndSet::Mismatch(b"old-value".to_vec())
    );
    assert_eq!(
        b.replace_if_prefixed(&key, b"old", b"new-value", ttl)
            .unwrap(),
        CompareAndSet::Replaced
    );
    assert_eq!(b.get(&key).unwrap().as_deref(), Some(&b"new-value"[..]));
    assert_eq!(
        b.replace_if_prefixed(&key, b"new", b"x", Duration::ZERO)
            .unwrap(),
        CompareAndSet::Replaced
    );
    assert_eq!(b.get(&key).unwrap(), None);
}

#[test]
fn concurrent_compare_and_sets_replace_exactly_once() {
    let Some(shared) = Shared::new() else {
        return;
    };
    let key = shared.key("race");
    shared
        .backend
        .set(&key, b"start", Duration::from_secs(60))
        .unwrap();
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|index| {
            let backend = shared.backend.clone();
            let barrier = barrier.clone();
            let key = key.clone();
            thread::spawn(move || {
                barrier.wait();
                backend
                    .replace_if_prefixed(
                        &key,
                        b"start",
                        format!("winner-{index}").as_bytes(),
                        Duration::from_secs(60),
                    )
                    .unwrap()
            })
        })
        .collect();
    let results: Vec<CompareAndSet> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let replaced = results
        .iter()
        .filter(|r| **r == CompareAndSet::Replaced)
        .count();
    assert_eq!(replaced, 1, "{results:?}");
    let stored = shared.backend.get(&key).unwrap().unwrap();
    for result in &results {
        if let CompareAndSet::Mismatch(seen) = result {
            assert_eq!(*seen, stored);
        }
    }
}

#[test]
fn the_store_keeps_the_session_rules() {
    let Some(shared) = Shared::new() else {
        return;
    };
    let store = shared.store();
    shared.forget_later(&store.cache_key(KEY));
    assert_eq!(store.load(KEY).unwrap(), None);
    assert_eq!(
        store.save(write(KEY, "d", 60)).unwrap_err().kind,
        ErrorKind::NotFound
    );
    let written = write(KEY, "quote \" unicode \u{e9}", 60);
    assert_eq!(store.create(written.clone()).unwrap(), KEY);
    let loaded = store.load(KEY).unwrap().unwrap();
    assert_eq!(loaded.session_key.as_str(), KEY);
    assert_eq!(loaded.session_data.as_str(), loaded_data(&store, &written));
    // Exact with sessionkit's record; memcached's whole-second TTL with Django's values.
    let drift = (loaded.expire_date.micros - written.record.expire_date.micros).abs();
    assert!(drift <= 1_000_000, "expire date off by {drift} µs");
    assert!(store.exists(KEY).unwrap());
    assert_eq!(
        store.create(write(KEY, "second", 60)).unwrap_err().kind,
        ErrorKind::AlreadyExists
    );
    let saved = write(KEY, "saved", 120);
    store.save(saved.clone()).unwrap();
    assert_eq!(
        store.load(KEY).unwrap().unwrap().session_data.as_str(),
        loaded_data(&store, &saved)
    );
    store.delete(KEY).unwrap();
    assert_eq!(store.load(KEY).unwrap(), None);
    assert_eq!(
        store.save(write(KEY, "stale", 60)).unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(store.load(KEY).unwrap(), None);
}

#[test]
fn concurrent_conditional_saves_save_exactly_one() {
    let Some(shared) = Shared::new() else {
        return;
    };
    let store = Arc::new(shared.store());
    shared.forget_later(&store.cache_key(KEY));
    store.create(write(KEY, "v0", 60)).unwrap();
    let expected = store.load(KEY).unwrap().unwrap().session_data;
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|index| {
            let store = store.clone();
            let barrier = barrier.clone();
            let expected = expected.clone();
            thread::spawn(move || {
                barrier.wait();
                store
                    .save_if_unchanged(write(KEY, &format!("v1-{index}"), 60), &expected)
                    .unwrap()
            })
        })
        .collect();
    let outcomes: Vec<ConditionalSave> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let saved = outcomes
        .iter()
        .filter(|o| matches!(o, ConditionalSave::Saved(_)))
        .count();
    assert_eq!(saved, 1, "{outcomes:?}");
}

#[test]
fn a_server_that_refuses_connections_is_unavailable_without_the_key() {
    // A port nothing listens on: bind, note the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backend = MemcachedBackend::open(
        &[MemcachedServer::Tcp {
            host: "127.0.0.1".into(),
            port,
        }],
        MemcachedOptions::default(),
    )
    .unwrap();
    let error = backend.get("secret-session-key").unwrap_err();
    assert!(matches!(error, CacheError::Unavailable(_)), "{error}");
    let message = error.to_string();
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(!message.contains("secret-session-key"), "{message}");
    assert!(matches!(backend.ping(), Err(CacheError::Unavailable(_))));
}

#[test]
fn a_server_that_never_answers_is_unavailable_after_the_timeout() {
    // Accepts connections and reads requests, never replies.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().take(4) {
            let mut stream = stream.unwrap();
            let mut buffer = [0u8; 256];
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = stream.read(&mut buffer);
            held.push(stream);
            if held.len() == 2 {
                break;
            }
        }
        thread::sleep(Duration::from_millis(800));
        drop(held);
    });
    let options = MemcachedOptions {
        connect_timeout: Duration::from_millis(200),
        timeout: Duration::from_millis(200),
        max_pool_size: 2,
    };
    let backend = MemcachedBackend::open(
        &[MemcachedServer::Tcp {
            host: "127.0.0.1".into(),
            port,
        }],
        options,
    )
    .unwrap();
    let error = backend.get("secret-session-key").unwrap_err();
    assert!(matches!(error, CacheError::Unavailable(_)), "{error}");
    assert!(!error.to_string().contains("secret-session-key"), "{error}");
    let error = backend
        .set(
            "secret-session-key",
            b"secret-value",
            Duration::from_secs(5),
        )
        .unwrap_err();
    assert!(matches!(error, CacheError::Unavailable(_)), "{error}");
    let message = error.to_string();
    assert!(
        !message.contains("secret-session-key") && !message.contains("secret-value"),
        "{message}"
    );
    // Unblock the silent server's accept loop if it still waits, then let it finish.
    let _ = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| s.write_all(b"\r\n"));
    silent.join().unwrap();
}
