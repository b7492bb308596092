//! The decode memo and the re-sign shortcut: faster, and never observable otherwise.

use std::sync::Arc;

use chrono::Duration;
use serde_json::{Value, json};
use sessionkit_codec::{SESSION_STORE_SALT, SessionCodec, signing::Encoded, time::from_datetime};
use sessionkit_sdk::SessionRecord;

use super::{
    logs::{capture, corrupted_warnings},
    memory::{Probe, SECRET, cookie_engine, memory_engine},
};
use crate::{Engine, SessionMap, memo::Decoded};

const KEY: &str = "memokey0000000000000000000000001";

fn codec() -> SessionCodec {
    SessionCodec::new(SESSION_STORE_SALT, SECRET.as_bytes(), &[])
}

fn map(value: Value) -> SessionMap {
    value.as_object().cloned().expect("an object")
}

fn perf_payload() -> SessionMap {
    map(json!({
        "_auth_user_id": "1234567",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": "705d8f9675f5d141680c20ceb39e05ad026064c3af07dc302135783e64af102a",
        "cart": [101, 202, 303],
        "theme": "dark",
    }))
}

/// Stores `data` under `KEY` directly, as another program (Django) would have.
fn put(engine: &Engine, probe: &Probe, data: &str) {
    let expire = engine.clock().now() + Duration::days(1);
    probe.put(SessionRecord {
        session_key: KEY.into(),
        session_data: data.into(),
        expire_date: from_datetime(expire),
    });
}

fn stored_data(probe: &Probe, key: &str) -> String {
    probe.record(key).expect("stored").session_data.to_string()
}

fn now_unix(engine: &Engine) -> i64 {
    engine.clock().now().timestamp()
}

#[test]
fn server_side_engines_memoise_and_a_load_gives_what_decoding_gives() {
    let (engine, probe) = memory_engine();
    let memo = engine.memo().expect("Django-key engines have a memo");
    let data = codec()
        .encode(&perf_payload(), 1_700_000_000)
        .unwrap()
        .session_data;
    put(&engine, &probe, &data);
    assert!(memo.get(&data).is_none());

    let first = engine.session(Some(KEY)).items().unwrap();
    let remembered = memo.get(&data).expect("a decode is remembered");
    assert_eq!(*remembered.map, perf_payload());
    assert!(remembered.encoded.is_none(), "not written by this engine");

    let second = engine.session(Some(KEY)).items().unwrap();
    assert_eq!(first, second);
    let decoded: Vec<(String, Value)> = codec()
        .decode(&data, None, 0)
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(second, decoded, "same entries, same order");
    assert_eq!(engine.decode(&data), perf_payload());
    assert_eq!(probe.loads(), 2, "the store is still asked every time");
}

#[test]
fn a_save_teaches_the_memo_what_the_new_data_decodes_to() {
    let (engine, probe) = memory_engine();
    let mut s = engine.session(None);
    s.update(perf_payload()).unwrap();
    s.save().unwrap();
    let data = stored_data(&probe, s.session_key().unwrap());
    let remembered = engine.memo().unwrap().get(&data).expect("remembered");
    assert_eq!(*remembered.map, perf_payload());
    assert_eq!(*remembered.map, codec().decode(&data, None, 0).unwrap());
    let encoded = remembered.encoded.expect("written by this engine");
    assert_eq!(encoded.session_data, data);
    assert_eq!(
        encoded.session_json,
        codec().encode(&perf_payload(), 0).unwrap().session_json
    );
}

#[test]
fn new_data_under_the_same_key_is_decoded_afresh() {
    let (engine, probe) = memory_engine();
    put(
        &engine,
        &probe,
        &codec()
            .encode(&map(json!({"a": 1})), 1)
            .unwrap()
            .session_data,
    );
    assert_eq!(engine.session(Some(KEY)).get::<i64>("a").unwrap(), Some(1));
    put(
        &engine,
        &probe,
        &codec()
            .encode(&map(json!({"a": 2})), 1)
            .unwrap()
            .session_data,
    );
    assert_eq!(engine.session(Some(KEY)).get::<i64>("a").unwrap(), Some(2));
}

#[test]
fn tampered_data_is_never_served_from_the_entry_of_the_original() {
    let (engine, probe) = memory_engine();
    let good = codec().encode(&perf_payload(), 1).unwrap().session_data;
    put(&engine, &probe, &good);
    assert_eq!(engine.session(Some(KEY)).items().unwrap().len(), 5);
    assert!(engine.memo().unwrap().get(&good).is_some());

    let mut tampered = good.clone();
    let last = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., last);
    for bad in [
        tampered,
        format!("{good}x"),
        good[..good.len() - 1].to_owned(),
    ] {
        put(&engine, &probe, &bad);
        let mut s = engine.session(Some(KEY));
        let (items, logged) = capture(|| s.items().unwrap());
        assert!(items.is_empty(), "{bad}");
        assert_eq!(corrupted_warnings(&logged), 1, "{bad}: {logged:?}");
        assert!(
            engine.memo().unwrap().get(&bad).is_none(),
            "failures are not kept"
        );
    }
}

#[test]
fn changing_a_loaded_session_changes_neither_other_sessions_nor_the_memo() {
    let (engine, probe) = memory_engine();
    let data = codec().encode(&perf_payload(), 1).unwrap().session_data;
    put(&engine, &probe, &data);
    let mut first = engine.session(Some(KEY));
    let mut second = engine.session(Some(KEY));
    assert_eq!(
        first.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
    assert_eq!(
        second.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );

    first.insert("theme", "light").unwrap();
    first.remove("cart").unwrap();
    first.update(map(json!({"new": true}))).unwrap();
    assert_eq!(
        first.get::<String>("theme").unwrap().as_deref(),
        Some("light")
    );
    assert_eq!(
        second.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
    assert!(second.contains_key("cart").unwrap());
    assert_eq!(
        *engine.memo().unwrap().get(&data).unwrap().map,
        perf_payload()
    );
    let mut third = engine.session(Some(KEY));
    assert_eq!(third.items().unwrap().len(), 5);
    assert_eq!(
        third.get::<String>("theme").unwrap().as_deref(),
        Some("dark")
    );
}

#[test]
fn signed_payload_engines_have_no_memo_and_judge_the_age_on_every_load() {
    let (engine, probe) = cookie_engine();
    assert!(engine.memo().is_none());
    assert!(engine.clone().with_decode_memo(true).memo().is_none());

    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save().unwrap();
    let cookie = s.session_key().unwrap().to_owned();
    assert_eq!(
        engine.session(Some(&cookie)).get::<i64>("a").unwrap(),
        Some(1)
    );
    let age = engine.settings().session_cookie_age;
    probe.clock().advance(Duration::seconds(age + 1));
    let mut expired = engine.session(Some(&cookie));
    assert_eq!(expired.get::<i64>("a").unwrap(), None, "too old now");
    assert!(expired.modified());
}

#[test]
fn the_memo_can_be_turned_off_and_on() {
    let (engine, _) = memory_engine();
    let off = engine.clone().with_decode_memo(false);
    assert!(off.memo().is_none());
    let on = off
        .clone()
        .with_clock(Arc::clone(engine.clock()))
        .with_decode_memo(true);
    assert!(on.memo().is_some());
    assert!(
        on.clone()
            .with_clock(Arc::clone(engine.clock()))
            .memo()
            .is_some()
    );
}

#[test]
fn saving_an_unchanged_session_gives_the_bytes_of_a_fresh_encode() {
    for memo in [true, false] {
        let (engine, probe) = memory_engine();
        let engine = engine.with_decode_memo(memo);
        let mut s = engine.session(None);
        s.update(perf_payload()).unwrap();
        s.save().unwrap();
        let key = s.session_key().unwrap().to_owned();
        let mut previous = stored_data(&probe, &key);
        for step in 1..=3 {
            probe.clock().advance(Duration::seconds(30));
            // SESSION_SAVE_EVERY_REQUEST: load, read, save without a change.
            let mut again = engine.session(Some(&key));
            assert_eq!(
                again.get::<String>("theme").unwrap().as_deref(),
                Some("dark")
            );
            again.save().unwrap();
            let data = stored_data(&probe, &key);
            assert_eq!(
                data,
                codec()
                    .encode(&perf_payload(), now_unix(&engine))
                    .unwrap()
                    .session_data,
                "memo {memo}, step {step}"
            );
            assert_ne!(data, previous, "signed anew");
            previous = data;
        }
    }
}

#[test]
fn saving_a_changed_or_restored_session_gives_the_bytes_of_a_fresh_encode() {
    let (engine, probe) = memory_engine();
    let mut s = engine.session(None);
    s.update(perf_payload()).unwrap();
    s.save().unwrap();
    let key = s.session_key().unwrap().to_owned();
    let expect = |engine: &Engine, session: &SessionMap| {
        codec()
            .encode(session, now_unix(engine))
            .unwrap()
            .session_data
    };

    probe.clock().advance(Duration::seconds(5));
    let mut same_value = engine.session(Some(&key));
    same_value.insert("theme", "dark").unwrap(); // a copy, with the same JSON
    same_value.save().unwrap();
    assert_eq!(stored_data(&probe, &key), expect(&engine, &perf_payload()));

    probe.clock().advance(Duration::seconds(5));
    let mut changed = engine.session(Some(&key));
    changed.insert("theme", "light").unwrap();
    changed.save().unwrap();
    let mut light = perf_payload();
    light.insert("theme".into(), json!("light"));
    assert_eq!(stored_data(&probe, &key), expect(&engine, &light));

    // Saved twice by one session: the second save starts from what the first wrote.
    probe.clock().advance(Duration::seconds(5));
    changed.save().unwrap();
    assert_eq!(stored_data(&probe, &key), expect(&engine, &light));

    // Data another program wrote is never reused as is, only re-encoded.
    let foreign = codec().encode(&perf_payload(), 1).unwrap().session_data;
    put(&engine, &probe, &foreign);
    probe.clock().advance(Duration::seconds(5));
    let mut loaded = engine.session(Some(KEY));
    loaded.save().unwrap();
    assert_eq!(stored_data(&probe, KEY), expect(&engine, &perf_payload()));
}

#[test]
fn the_shortcut_reuses_a_payload_only_when_the_json_matches() {
    // White box: an origin claiming a made-up payload shows which path was taken.
    let (engine, _) = memory_engine();
    let json = codec().encode(&perf_payload(), 0).unwrap().session_json;
    let fake = Decoded {
        map: Arc::new(perf_payload()),
        encoded: Some(Arc::new(Encoded {
            session_data: "PAYLOAD:1:sig".into(),
            session_json: json,
        })),
    };
    let now = now_unix(&engine);
    let signed = codec().sign_payload("PAYLOAD", now);
    // The very map: reused without writing JSON.
    let pending = engine.prepare_write(&fake.map, Some(&fake)).unwrap();
    assert_eq!(pending.session_data(), signed);
    // An equal copy: JSON compared, reused.
    let copy = Arc::new(perf_payload());
    let pending = engine.prepare_write(&copy, Some(&fake)).unwrap();
    assert_eq!(pending.session_data(), signed);
    // A different map: encoded afresh.
    let other = Arc::new(map(json!({"a": 1})));
    let pending = engine.prepare_write(&other, Some(&fake)).unwrap();
    assert_eq!(
        pending.session_data(),
        codec().encode(&other, now).unwrap().session_data
    );
    // No origin, or one this engine did not encode: encoded afresh.
    let decoded_only = Decoded::from_decode(perf_payload());
    for origin in [None, Some(&decoded_only)] {
        let pending = engine.prepare_write(&copy, origin).unwrap();
        assert_eq!(
            pending.session_data(),
            codec().encode(&perf_payload(), now).unwrap().session_data
        );
    }
}

#[test]
fn memo_on_and_off_store_the_same_bytes_for_the_same_requests() {
    fn run(memo: bool) -> Vec<String> {
        let (engine, probe) = memory_engine();
        let engine = engine.with_decode_memo(memo);
        let mut seen = Vec::new();
        let mut s = engine.session(None);
        s.update(perf_payload()).unwrap();
        s.save().unwrap();
        let mut key = s.session_key().unwrap().to_owned();
        seen.push(stored_data(&probe, &key));
        for step in 0..6 {
            probe.clock().advance(Duration::seconds(7));
            let mut s = engine.session(Some(&key));
            match step {
                0 => s.save().unwrap(),
                1 => s.insert("step", step).unwrap(),
                2 => {
                    s.remove("cart").unwrap();
                }
                3 => s.cycle_key().unwrap(),
                4 => s.set_expiry(crate::Expiry::Seconds(600)).unwrap(),
                _ => s.clear(),
            }
            if s.modified() || step == 0 {
                s.save().unwrap();
            }
            key = s.session_key().unwrap().to_owned();
            seen.push(stored_data(&probe, &key));
            seen.push(format!("{:?}", engine.session(Some(&key)).items().unwrap()));
        }
        seen
    }
    assert_eq!(run(true), run(false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_saves_of_an_unchanged_session_give_the_bytes_of_a_fresh_encode() {
    let (engine, probe) = memory_engine();
    let mut s = engine.session(None);
    s.update(perf_payload()).unwrap();
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();
    probe.clock().advance(Duration::seconds(9));
    let mut again = engine.session(Some(&key));
    again.ensure_loaded_async().await.unwrap();
    assert!(again.contains_key("theme").unwrap());
    again.save_async().await.unwrap();
    assert_eq!(
        stored_data(&probe, &key),
        codec()
            .encode(&perf_payload(), now_unix(&engine))
            .unwrap()
            .session_data
    );
    probe.clock().advance(Duration::seconds(9));
    again.save_async().await.unwrap();
    assert_eq!(
        stored_data(&probe, &key),
        codec()
            .encode(&perf_payload(), now_unix(&engine))
            .unwrap()
            .session_data
    );
}
