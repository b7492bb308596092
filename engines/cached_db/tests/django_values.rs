//! `cached_db` over a cache that keeps Django's values (Redis): the cache holds the verified
//! session dict pickled, a cache hit hands the dict out (`DECODED_DATA`), a database read the
//! signed row, and a row that does not verify (or holds a bare dict) is never trusted.
//! Needs `SESSIONKIT_TEST_REDIS_URL` (prints "skipped: …" without it).

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use sessionkit_cache::CacheBackend;
use sessionkit_codec::SessionCodec;
use sessionkit_sdk::{
    Capabilities, ConditionalSave, EngineInfo, SessionRecord, SessionStore, SessionWrite, Timestamp,
};

use common::{Target, capture_logs, targets};

const KEY: &str = "djangovaluessessionkey0000000001";

/// The codec of the targets' settings (`SECRET_KEY` "x").
fn codec() -> SessionCodec {
    SessionCodec::new(EngineInfo::SESSION_STORE_SALT, b"x", &[])
}

/// A write of `session`, signed as the host signs it.
fn signed(session: &Value) -> SessionWrite {
    let encoded = codec()
        .encode(
            session.as_object().unwrap(),
            Timestamp::now().micros / 1_000_000,
        )
        .unwrap();
    SessionWrite::new(
        SessionRecord::new(
            KEY,
            encoded.session_data,
            Timestamp::from_micros(Timestamp::now().micros + 600_000_000),
        ),
        encoded.session_json,
    )
}

/// The Redis targets (redis+sqlite, redis+postgres); none without a Redis server.
fn redis_targets(name: &str) -> Vec<Target> {
    let found: Vec<Target> = targets(name)
        .into_iter()
        .filter(|target| target.redis.is_some())
        .collect();
    if found.is_empty() {
        println!("skipped: SESSIONKIT_TEST_REDIS_URL is not set");
    }
    found
}

fn raw_entry(target: &Target) -> Option<Vec<u8>> {
    let (backend, _) = target.redis.as_ref().unwrap();
    backend.get(&target.store.cache().cache_key(KEY)).unwrap()
}

#[test]
fn a_cache_hit_hands_out_the_dict_and_a_database_read_fills_the_cache_with_it() {
    for target in redis_targets("dv-hit") {
        let store = &target.store;
        let session = json!({"_auth_user_id": "7", "cart": [1, 2]});
        let write = signed(&session);
        store.create(write.clone()).unwrap();
        assert!(store.capabilities().contains(Capabilities::DECODED_DATA));
        let hit = store.load(KEY).unwrap().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(hit.session_data.as_str()).unwrap(),
            session,
            "{}",
            target.label
        );
        assert_eq!(&raw_entry(&target).unwrap()[..2], b"\x80\x05");
        // A miss reads the signed row and caches its verified dict.
        store.cache().delete(KEY).unwrap();
        let read = store.load(KEY).unwrap().unwrap();
        assert_eq!(
            read.session_data, write.record.session_data,
            "{}",
            target.label
        );
        let cached = store.cache().load(KEY).unwrap().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(cached.session_data.as_str()).unwrap(),
            session
        );
    }
}

#[test]
fn a_row_that_does_not_verify_is_handed_out_signed_but_never_cached() {
    for target in redis_targets("dv-forged") {
        let store = &target.store;
        let mut write = signed(&json!({"a": 1}));
        write.record.session_data = "forged:data:not-signed".into();
        store.db().create(write).unwrap();
        let read = store.load(KEY).unwrap().unwrap();
        // The host verifies it (and refuses it); the cache must not vouch for it.
        assert_eq!(read.session_data.as_str(), "forged:data:not-signed");
        assert_eq!(raw_entry(&target), None, "{}", target.label);
    }
}

#[test]
fn a_row_holding_a_bare_dict_is_never_handed_out() {
    for target in redis_targets("dv-bare") {
        let store = &target.store;
        let mut write = signed(&json!({"a": 1}));
        write.record.session_data = r#"{"_auth_user_id":"1","is_admin":true}"#.into();
        store.db().create(write).unwrap();
        let (loaded, logs) = capture_logs(|| store.load(KEY).unwrap());
        assert_eq!(loaded, None, "{}", target.label);
        assert!(logs.contains("unsigned data"), "{logs}");
        assert_eq!(raw_entry(&target), None);
    }
}

#[test]
fn a_hostile_cache_entry_loads_as_no_session_with_a_warning_and_the_row_is_served() {
    for target in redis_targets("dv-hostile") {
        let store = &target.store;
        let session = json!({"v": "row"});
        store.create(signed(&session)).unwrap();
        let (backend, _) = target.redis.as_ref().unwrap();
        let hostile = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../stores/cache/tests/pickles/hostile/os_system_reduce.pickle"),
        )
        .unwrap();
        backend
            .set(
                &store.cache().cache_key(KEY),
                &hostile,
                Duration::from_secs(60),
            )
            .unwrap();
        let (cached, logs) = capture_logs(|| store.cache().load(KEY).unwrap());
        assert_eq!(cached, None, "{}", target.label);
        assert!(
            logs.contains("WARN") && logs.contains("STACK_GLOBAL"),
            "{logs}"
        );
        // The store falls back on the row (a cache miss, as Django's cached_db does).
        let read = store.load(KEY).unwrap().unwrap();
        assert!(!read.session_data.as_str().starts_with('{'));
    }
}

#[test]
fn conditional_save_accepts_the_dict_a_cache_hit_handed_out() {
    for target in redis_targets("dv-cas") {
        let store = &target.store;
        store.create(signed(&json!({"n": 1, "m": "x"}))).unwrap();
        let hit = store.load(KEY).unwrap().unwrap();
        assert!(hit.session_data.as_str().starts_with('{'));
        let second = signed(&json!({"n": 2}));
        assert_eq!(
            store
                .save_if_unchanged(second.clone(), hit.session_data.as_str())
                .unwrap(),
            ConditionalSave::Saved(KEY.to_owned()),
            "{}",
            target.label
        );
        // The first dict again is stale: the conflict is the row (signed), never a bare dict.
        let outcome = store
            .save_if_unchanged(signed(&json!({"n": 3})), hit.session_data.as_str())
            .unwrap();
        let ConditionalSave::Conflict(found) = outcome else {
            panic!("{}: {outcome:?}", target.label);
        };
        assert_eq!(found.session_data, second.record.session_data);
        // The current dict, in another layout, is unchanged: compared by value.
        assert_eq!(
            store
                .save_if_unchanged(signed(&json!({"n": 4})), r#"{ "n" : 2 }"#)
                .unwrap(),
            ConditionalSave::Saved(KEY.to_owned())
        );
        let cached = store.cache().load(KEY).unwrap().unwrap();
        assert_eq!(cached.session_data.as_str(), r#"{"n":4}"#);
    }
}
