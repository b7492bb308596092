//! `DECODED_DATA`: an engine whose store keeps Django's unsigned session dict (the cache
//! backends' pickles) hands it back as JSON text, and only such an engine is trusted with it.

use serde_json::json;
use sessionkit_sdk::{Capabilities, EngineInfo, SessionRecord, Timestamp, store::FfiAdapter};

use crate::{Engine, Settings, testing::MemoryStore};

const SECRET: &str = "decoded-data-test-secret";
const KEY: &str = "decodeddatasessionkey00000000001";

/// A memory engine that declares `DECODED_DATA` when `decoded` is set.
fn engine(store: &MemoryStore, decoded: bool) -> Engine {
    let mut info: EngineInfo = MemoryStore::INFO;
    if decoded {
        info.capabilities = info.capabilities | Capabilities::DECODED_DATA;
    }
    let ffi = FfiAdapter::new("memory", store.clone()).into_box();
    Engine::from_store(info, ffi, &Settings::new(SECRET)).unwrap()
}

/// A live record of `KEY` holding `data` as stored.
fn put(store: &MemoryStore, data: &str) {
    let expire = Timestamp::from_micros(Timestamp::now().micros + 3_600_000_000);
    store.put(SessionRecord::new(KEY, data, expire));
}

#[test]
fn an_engine_with_decoded_data_loads_the_unsigned_dict() {
    let store = MemoryStore::new();
    put(&store, r#"{"cart":[1,2],"_auth_user_id":"7"}"#);
    let map = engine(&store, true).session(Some(KEY)).load().unwrap();
    assert_eq!(map.get("cart"), Some(&json!([1, 2])));
    assert_eq!(map.get("_auth_user_id"), Some(&json!("7")));
}

#[test]
fn an_engine_without_it_never_trusts_unsigned_data() {
    let store = MemoryStore::new();
    put(&store, r#"{"_auth_user_id":"1"}"#);
    let map = engine(&store, false).session(Some(KEY)).load().unwrap();
    assert!(map.is_empty(), "unsigned data was trusted: {map:?}");
}

#[test]
fn an_engine_with_decoded_data_still_verifies_signed_data() {
    let store = MemoryStore::new();
    let decoded = engine(&store, true);
    let mut session = decoded.session(None);
    session.insert("n", 3).unwrap();
    session.save().unwrap();
    let key = session.session_key().unwrap().to_owned();
    assert!(!store.record(&key).unwrap().session_data.starts_with('{'));
    let map = decoded.session(Some(&key)).load().unwrap();
    assert_eq!(map.get("n"), Some(&json!(3)));

    // Signed data that does not verify is refused as before.
    let mut record = store.record(&key).unwrap();
    record.session_data = format!("x{}", record.session_data).into();
    store.put(record);
    assert!(decoded.session(Some(&key)).load().unwrap().is_empty());
}

#[test]
fn unsigned_data_that_is_not_a_json_object_loads_as_empty() {
    for data in ["{not json", "{\"a\":1} trailing", "{\"a\":"] {
        let store = MemoryStore::new();
        put(&store, data);
        let map = engine(&store, true).session(Some(KEY)).load().unwrap();
        assert!(map.is_empty(), "{data:?} loaded as {map:?}");
    }
}

#[test]
fn a_session_loaded_unsigned_saves_and_merges() {
    let store = MemoryStore::new();
    put(&store, r#"{"visits":1}"#);
    let decoded = engine(&store, true);
    let mut first = decoded.session(Some(KEY));
    let mut second = decoded.session(Some(KEY));
    first.load().unwrap();
    second.load().unwrap();
    first.insert("a", 1).unwrap();
    first.save().unwrap();
    // The second request loaded the unsigned dict; its conditional save expects that text,
    // finds the first request's write and merges.
    second.insert("b", 2).unwrap();
    second.save().unwrap();
    let map = decoded.session(Some(KEY)).load().unwrap();
    assert_eq!(map.get("visits"), Some(&json!(1)));
    assert_eq!(map.get("a"), Some(&json!(1)));
    assert_eq!(map.get("b"), Some(&json!(2)));
}

#[test]
fn unsigned_text_outside_ascii_is_read_as_characters() {
    let store = MemoryStore::new();
    put(&store, "{\"name\":\"Zoë ✓ 😀\"}");
    let map = engine(&store, true).session(Some(KEY)).load().unwrap();
    assert_eq!(map.get("name"), Some(&json!("Zoë ✓ 😀")));
}
