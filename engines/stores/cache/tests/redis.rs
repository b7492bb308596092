//! The cache store's rules on a real Redis server: the shared one named by
//! `SESSIONKIT_TEST_REDIS_URL`, each test under a random `KEY_PREFIX` that is removed afterwards
//! (never a FLUSHDB). Every test prints "skipped: …" and passes when the variable is unset.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    sync::{Arc, Barrier},
    thread,
    time::Duration,
};

use serde_json::json;
use sessionkit_cache::{
    CACHE_SESSION_PREFIX, CacheBackend, CacheConfig, CompareAndSet, Location, RedisBackend,
    RedisOptions, SystemClock, open_store,
    redis_backend::{COMPARE_AND_SET_SCRIPT, COMPARE_AND_SET_SHA1},
};
use sessionkit_sdk::{ConditionalSave, ErrorKind, SessionStore, Timestamp};

use common::{SharedPrefix, dict, store_on, write};

const KEY: &str = "abcdefghijklmnopqrstuvwxyz012345";

/// The raw value and remaining TTL (ms) of a physical key.
fn raw(backend: &RedisBackend, key: &str) -> (Option<Vec<u8>>, i64) {
    backend
        .with_connection(|con| {
            let value: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(con)?;
            let pttl: i64 = redis::cmd("PTTL").arg(key).query(con)?;
            Ok((value, pttl))
        })
        .unwrap()
}

#[test]
fn sessions_are_stored_under_djangos_prefix_and_key_function() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    store.create(write(KEY, "data:1", 60)).unwrap();
    let physical = format!("{}:1:django.contrib.sessions.cache{KEY}", shared.prefix);
    assert_eq!(store.cache_key(KEY), physical);
    // Django's value: the session dict pickled, as RedisCache stores it.
    let (value, _) = raw(&backend, &physical);
    let value = value.expect("stored");
    assert_eq!(&value[..2], b"\x80\x05", "pickle protocol 5");
    assert_eq!(
        serde_json::Value::Object(sessionkit_cache::pickle::loads_dict(&value).unwrap()),
        json!({"v": "data:1"})
    );
}

#[test]
fn every_write_sets_a_ttl_until_expire_date() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    store.create(write(KEY, "d", 600)).unwrap();
    let (_, pttl) = raw(&backend, &store.cache_key(KEY));
    assert!(pttl > 0 && pttl <= 600_000, "PTTL {pttl}");
    store.save(write(KEY, "d2", 60)).unwrap();
    let (_, pttl) = raw(&backend, &store.cache_key(KEY));
    assert!(pttl > 0 && pttl <= 60_000, "PTTL after save {pttl}");
}

#[test]
fn create_then_load_gives_the_same_record() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    let written = write(KEY, "quote \" unicode \u{e9}", 60);
    assert_eq!(store.create(written.clone()).unwrap(), KEY);
    let loaded = store.load(KEY).unwrap().unwrap();
    assert_eq!(loaded.session_key, written.record.session_key);
    assert_eq!(
        loaded.session_data.as_str(),
        dict("quote \" unicode \u{e9}")
    );
    // The expire date comes back from the entry's TTL (millisecond resolution).
    let drift = (loaded.expire_date.micros - written.record.expire_date.micros).abs();
    assert!(drift < 1_000_000, "{drift}");
    assert!(store.exists(KEY).unwrap());
}

#[test]
fn create_of_a_taken_key_fails_and_keeps_the_original() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    store.create(write(KEY, "first", 60)).unwrap();
    let error = store.create(write(KEY, "second", 60)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::AlreadyExists);
    assert_eq!(
        store.load(KEY).unwrap().unwrap().session_data.as_str(),
        dict("first")
    );
}

#[test]
fn save_of_an_unknown_key_is_not_found_and_stores_nothing() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    assert_eq!(
        store.save(write(KEY, "d", 60)).unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(raw(&backend, &store.cache_key(KEY)).0, None);
}

#[test]
fn save_after_delete_does_not_resurrect_the_session() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    store.create(write(KEY, "d", 60)).unwrap();
    store.delete(KEY).unwrap();
    assert_eq!(
        store.save(write(KEY, "stale", 60)).unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert_eq!(store.load(KEY).unwrap(), None);
    assert_eq!(raw(&backend, &store.cache_key(KEY)).0, None);
}

#[test]
fn save_replaces_the_record() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    store.create(write(KEY, "first", 60)).unwrap();
    store.save(write(KEY, "second", 120)).unwrap();
    assert_eq!(
        store.load(KEY).unwrap().unwrap().session_data.as_str(),
        dict("second")
    );
}

#[test]
fn load_of_an_unknown_key_creates_nothing() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    assert_eq!(store.load(KEY).unwrap(), None);
    assert!(!store.exists(KEY).unwrap());
    assert_eq!(raw(&backend, &store.cache_key(KEY)).0, None);
}

#[test]
fn expired_records_are_never_stored_and_a_save_of_one_removes_the_entry() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    store.create(write(KEY, "dead", -1)).unwrap();
    assert_eq!(raw(&backend, &store.cache_key(KEY)).0, None);
    store.create(write(KEY, "live", 60)).unwrap();
    store.save(write(KEY, "dead", -1)).unwrap();
    assert_eq!(raw(&backend, &store.cache_key(KEY)).0, None);
    assert!(!store.exists(KEY).unwrap());
}

#[test]
fn an_expired_record_over_a_live_one_is_still_already_exists() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    store.create(write(KEY, "live", 60)).unwrap();
    assert_eq!(
        store.create(write(KEY, "dead", -1)).unwrap_err().kind,
        ErrorKind::AlreadyExists
    );
}

#[test]
fn delete_removes_the_session_and_an_unknown_key_is_fine() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    store.create(write(KEY, "d", 60)).unwrap();
    store.delete(KEY).unwrap();
    assert!(!store.exists(KEY).unwrap());
    store.delete(KEY).unwrap();
}

#[test]
fn clear_expired_returns_zero() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    store.create(write(KEY, "d", 60)).unwrap();
    assert_eq!(store.clear_expired().unwrap(), 0);
    assert!(store.load(KEY).unwrap().is_some());
}

#[test]
fn an_entry_that_is_not_a_pickled_dict_loads_as_no_session() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    backend
        .set(
            &store.cache_key(KEY),
            b"\x80garbage",
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(store.load(KEY).unwrap(), None);
}

#[test]
fn other_cache_data_under_the_bare_key_is_not_a_session() {
    // CVE-2011-4136: a cache user writing `<key>` (no session prefix) cannot plant a session.
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    let bare = format!("{}:1:{KEY}", shared.prefix);
    let forged = json!({"session_key": KEY, "session_data": "forged", "expire_date": i64::MAX});
    backend
        .set(
            &bare,
            forged.to_string().as_bytes(),
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(store.load(KEY).unwrap(), None);
    assert!(!store.exists(KEY).unwrap());
}

#[test]
fn concurrent_creates_of_one_key_have_exactly_one_winner() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    let store = Arc::new(store);
    let barrier = Arc::new(Barrier::new(8));
    let winners: usize = (0..8)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                match store.create(write(KEY, &format!("writer {i}"), 60)) {
                    Ok(_) => 1,
                    Err(error) => {
                        assert_eq!(error.kind, ErrorKind::AlreadyExists);
                        0
                    }
                }
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .sum();
    assert_eq!(winners, 1);
}

#[test]
fn the_compare_and_set_scripts_sha1_is_the_one_redis_computes() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (_, backend) = shared.store();
    let sha: String = backend
        .with_connection(|con| {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(COMPARE_AND_SET_SCRIPT)
                .query(con)
        })
        .unwrap();
    assert_eq!(sha, COMPARE_AND_SET_SHA1);
}

#[test]
fn replace_if_prefixed_compares_and_sets_on_the_server() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (_, backend) = shared.store();
    let key = format!("{}:cas", shared.prefix);
    let hour = Duration::from_secs(3600);
    assert_eq!(
        backend.replace_if_prefixed(&key, b"", b"v", hour).unwrap(),
        CompareAndSet::Missing
    );
    assert_eq!(raw(&backend, &key).0, None, "a missing key stays missing");
    backend.set(&key, b"prefix:old", hour).unwrap();
    assert_eq!(
        backend
            .replace_if_prefixed(&key, b"other:", b"new", hour)
            .unwrap(),
        CompareAndSet::Mismatch(b"prefix:old".to_vec())
    );
    assert_eq!(
        backend
            .replace_if_prefixed(&key, b"prefix:", b"new", Duration::from_secs(60))
            .unwrap(),
        CompareAndSet::Replaced
    );
    let (value, pttl) = raw(&backend, &key);
    assert_eq!(value.as_deref(), Some(&b"new"[..]));
    assert!(pttl > 0 && pttl <= 60_000, "PTTL {pttl}");
    assert_eq!(
        backend
            .replace_if_prefixed(&key, b"new", b"gone", Duration::ZERO)
            .unwrap(),
        CompareAndSet::Replaced
    );
    assert_eq!(raw(&backend, &key).0, None, "a zero TTL removes the entry");
}

#[test]
fn save_if_unchanged_saves_an_unchanged_record_and_reports_a_changed_one() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    store
        .create(write(KEY, "quote \" unicode \u{e9}", 600))
        .unwrap();
    let saved = write(KEY, "second", 60);
    assert_eq!(
        store
            .save_if_unchanged(saved.clone(), &dict("quote \" unicode \u{e9}"))
            .unwrap(),
        ConditionalSave::Saved(KEY.to_owned())
    );
    let stored = store.load(KEY).unwrap().unwrap();
    assert_eq!(stored.session_data.as_str(), dict("second"));
    let (_, pttl) = raw(&backend, &store.cache_key(KEY));
    assert!(pttl > 0 && pttl <= 60_000, "PTTL after the save {pttl}");
    for stale in [
        dict("quote \" unicode \u{e9}"),
        dict("sec"),
        "sec".to_owned(),
    ] {
        let outcome = store
            .save_if_unchanged(write(KEY, "lost", 60), &stale)
            .unwrap();
        let ConditionalSave::Conflict(found) = outcome else {
            panic!("{stale}: {outcome:?}");
        };
        assert_eq!(found.session_data.as_str(), dict("second"), "{stale}");
    }
    // The same session in another key order is unchanged: compared by value.
    let reordered = r#"{ "v" : "second" }"#;
    assert_eq!(
        store
            .save_if_unchanged(write(KEY, "third", 60), reordered)
            .unwrap(),
        ConditionalSave::Saved(KEY.to_owned())
    );
    assert_eq!(
        store.load(KEY).unwrap().unwrap().session_data.as_str(),
        dict("third")
    );
}

#[test]
fn save_if_unchanged_of_a_deleted_or_expired_session_is_not_found_and_stores_nothing() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    store.create(write(KEY, "d", 60)).unwrap();
    store.delete(KEY).unwrap();
    let error = store
        .save_if_unchanged(write(KEY, "d2", 60), &dict("d"))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert!(!store.exists(KEY).unwrap());
    // Expired: the record's own expiry passed (its TTL ended with it).
    let short = sessionkit_sdk::SessionWrite::new(
        sessionkit_sdk::SessionRecord::new(
            KEY,
            "d",
            Timestamp::from_micros(Timestamp::now().micros + 50_000),
        ),
        "{}",
    );
    store.create(short).unwrap();
    thread::sleep(Duration::from_millis(100));
    let error = store
        .save_if_unchanged(write(KEY, "d2", 60), &dict("d"))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert!(!store.exists(KEY).unwrap());
}

#[test]
fn concurrent_save_if_unchanged_saves_exactly_one() {
    const WRITERS: usize = 16;
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    store.create(write(KEY, "start", 60)).unwrap();
    let store = Arc::new(store);
    let barrier = Arc::new(Barrier::new(WRITERS));
    let outcomes: Vec<(ConditionalSave, String)> = (0..WRITERS)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            thread::spawn(move || {
                let data = format!("writer {i}");
                barrier.wait();
                let outcome = store
                    .save_if_unchanged(write(KEY, &data, 60), &dict("start"))
                    .unwrap();
                (outcome, data)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .collect();
    let winners: Vec<&String> = outcomes
        .iter()
        .filter(|(outcome, _)| matches!(outcome, ConditionalSave::Saved(_)))
        .map(|(_, data)| data)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let stored = store.load(KEY).unwrap().unwrap();
    assert_eq!(stored.session_data.as_str(), dict(winners[0]));
    for (outcome, _) in &outcomes {
        if let ConditionalSave::Conflict(seen) = outcome {
            assert_eq!(
                seen.session_data, stored.session_data,
                "a loser sees the winner's session"
            );
        }
    }
}

#[test]
fn many_threads_share_a_small_pool() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let options = RedisOptions {
        max_connections: 2,
        pool_timeout: Duration::from_secs(30),
        ..RedisOptions::default()
    };
    let (store, backend) = store_on(&shared.url, &shared.prefix, options);
    let store = Arc::new(store);
    let handles: Vec<_> = (0..16)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                for i in 0..20 {
                    let key = format!("pool{t:02}x{i:02}abcdefghijklmnop");
                    store.create(write(&key, "d", 60)).unwrap();
                    assert!(store.load(&key).unwrap().is_some());
                    store.delete(&key).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    assert!(
        backend.idle_connections() <= 2,
        "{}",
        backend.idle_connections()
    );
}

#[test]
fn caches_location_and_session_cache_alias_select_redis() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let settings = json!({
        "SESSION_CACHE_ALIAS": "sessions",
        "CACHES": {
            "default": {"LOCATION": "locmem://"},
            "sessions": {"LOCATION": shared.url, "KEY_PREFIX": shared.prefix, "VERSION": 3,
                         "OPTIONS": {"socket_timeout": 1, "max_connections": 4}}
        }
    });
    let config = CacheConfig::from_settings_json(&settings.to_string()).unwrap();
    assert!(matches!(config.location, Location::Redis { .. }));
    assert_eq!(config.redis.max_connections, 4);
    let store = open_store(&config, CACHE_SESSION_PREFIX, Arc::new(SystemClock)).unwrap();
    store.create(write(KEY, "via settings", 60)).unwrap();
    let (_, backend) = shared.store();
    let physical = format!("{}:3:django.contrib.sessions.cache{KEY}", shared.prefix);
    assert!(raw(&backend, &physical).0.is_some());
    assert!(store.load(KEY).unwrap().is_some());
}

#[test]
fn a_record_expiring_in_the_far_future_is_stored() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    let mut far = write(KEY, "d", 60);
    far.record.expire_date = Timestamp::from_secs(253_402_300_799); // 9999-12-31T23:59:59Z
    store.create(far).unwrap();
    assert!(store.load(KEY).unwrap().is_some());
}

/// A fixture made by scripts/make_pickle_fixtures.py.
fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/pickles")
            .join(path),
    )
    .unwrap()
}

#[test]
fn hostile_pickles_planted_in_redis_load_as_no_session_without_running() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    for name in [
        "os_system_reduce",
        "datetime",
        "memo_bomb",
        "huge_binunicode8",
        "deep_10000",
    ] {
        backend
            .set(
                &store.cache_key(KEY),
                &fixture(&format!("hostile/{name}.pickle")),
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(store.load(KEY).unwrap(), None, "{name}");
        // A conditional save cannot have loaded it either.
        let error = store
            .save_if_unchanged(write(KEY, "x", 60), "{}")
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound, "{name}");
    }
}

#[test]
fn a_session_django_pickled_loads_with_its_ttl_as_expire_date() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    let pickled = fixture("good/django_login-p5.pickle");
    backend
        .set(&store.cache_key(KEY), &pickled, Duration::from_secs(300))
        .unwrap();
    let before = Timestamp::now().micros;
    let loaded = store.load(KEY).unwrap().unwrap();
    let expected: serde_json::Value =
        serde_json::from_slice(&fixture("good/django_login-p5.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(loaded.session_data.as_str()).unwrap(),
        expected
    );
    let left = loaded.expire_date.micros - before;
    assert!(left > 290_000_000 && left <= 301_000_000, "{left}");
}

#[test]
fn an_entry_in_the_old_json_record_format_still_loads_and_saves_as_a_pickle() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    let expire = Timestamp::now().micros + 60_000_000;
    let old = json!({"session_key": KEY, "session_data": "signed:data", "expire_date": expire});
    backend
        .set(
            &store.cache_key(KEY),
            old.to_string().as_bytes(),
            Duration::from_secs(60),
        )
        .unwrap();
    let loaded = store.load(KEY).unwrap().unwrap();
    assert_eq!(loaded.session_data.as_str(), "signed:data");
    assert_eq!(loaded.expire_date.micros, expire);
    // The conditional save compares the old record's signed data, then writes Django's value.
    assert_eq!(
        store
            .save_if_unchanged(write(KEY, "new", 60), "signed:data")
            .unwrap(),
        ConditionalSave::Saved(KEY.to_owned())
    );
    let (value, _) = raw(&backend, &store.cache_key(KEY));
    assert_eq!(&value.unwrap()[..2], b"\x80\x05");
    assert_eq!(
        store.load(KEY).unwrap().unwrap().session_data.as_str(),
        dict("new")
    );
}

#[test]
fn a_redis_store_declares_decoded_data() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    assert!(store.stores_django_values());
    assert!(
        store
            .capabilities()
            .contains(sessionkit_sdk::Capabilities::DECODED_DATA)
    );
}
