//! Django's `SessionBase` rules on a server-side engine.

use chrono::{Duration, TimeZone, Utc};
use serde_json::{Value, json};
use sessionkit_codec::{
    SessionCodec,
    key::is_valid_session_key,
    time::{from_datetime, to_datetime},
};
use sessionkit_sdk::{ErrorKind, SessionRecord};

use super::{
    logs::{capture, corrupted_warnings},
    memory::{SECRET, memory_engine, memory_engine_with, settings},
};
use crate::{Clock, Error, Expiry, SessionMap, TEST_COOKIE_NAME, engine::CREATE_ATTEMPTS};

fn saved_session(pairs: &[(&str, Value)]) -> (crate::Engine, super::memory::Probe, String) {
    let (engine, probe) = memory_engine();
    let mut s = engine.session(None);
    for (k, v) in pairs {
        s.insert(k, v.clone()).unwrap();
    }
    s.save().unwrap();
    let key = s.session_key().unwrap().to_owned();
    (engine, probe, key)
}

#[test]
fn new_session_is_empty_unaccessed_unmodified_and_keyless() {
    let (engine, probe) = memory_engine();
    let s = engine.session(None);
    assert!(s.is_empty());
    assert!(!s.accessed());
    assert!(!s.modified());
    assert!(!s.is_loaded());
    assert_eq!(s.session_key(), None);
    assert_eq!(probe.calls(), 0);
}

#[test]
fn save_of_a_new_session_mints_a_key_and_stores_the_data() {
    let (engine, probe, key) = saved_session(&[("member_id", json!(42))]);
    assert!(is_valid_session_key(&key));
    assert_eq!(key.len(), 32);
    assert_eq!(probe.len(), 1);
    let record = probe.record(&key).unwrap();
    assert_eq!(
        engine.decode(record.session_data.as_str()),
        json!({"member_id": 42}).as_object().unwrap().clone()
    );
    let mut again = engine.session(Some(&key));
    assert_eq!(again.get::<i64>("member_id").unwrap(), Some(42));
    assert!(again.accessed());
    assert!(!again.modified());
}

#[test]
fn reading_marks_accessed_but_not_modified_and_loads_once() {
    let (engine, probe, key) = saved_session(&[("a", json!(1))]);
    let loads = probe.loads();
    let mut s = engine.session(Some(&key));
    assert!(!s.is_loaded());
    assert_eq!(s.get_value("a").unwrap(), Some(json!(1)));
    assert_eq!(s.get_value("missing").unwrap(), None);
    assert!(s.contains_key("a").unwrap());
    assert_eq!(s.keys().unwrap(), ["a"]);
    assert_eq!(s.values().unwrap(), [json!(1)]);
    assert_eq!(s.items().unwrap(), [("a".to_owned(), json!(1))]);
    assert!(s.accessed());
    assert!(!s.modified());
    assert_eq!(probe.loads(), loads + 1, "the data loads once, lazily");
}

#[test]
fn insert_marks_accessed_and_modified() {
    let (engine, _) = memory_engine();
    let mut s = engine.session(None);
    s.insert("k", "v").unwrap();
    assert!(s.accessed());
    assert!(s.modified());
    assert!(!s.is_empty());
}

#[test]
fn get_of_another_type_is_a_type_error() {
    let (engine, _) = memory_engine();
    let mut s = engine.session(None);
    s.insert("k", "text").unwrap();
    assert!(matches!(s.get::<i64>("k"), Err(Error::Type(_))));
}

#[test]
fn remove_and_pop_mark_modified_only_when_the_key_was_present() {
    let (engine, _, key) = saved_session(&[("a", json!(1)), ("b", json!("two"))]);
    let mut s = engine.session(Some(&key));
    assert_eq!(s.remove("missing").unwrap(), None);
    assert!(s.accessed());
    assert!(!s.modified());
    assert_eq!(s.pop::<i64>("missing").unwrap(), None);
    assert!(!s.modified());
    assert_eq!(s.pop::<i64>("a").unwrap(), Some(1));
    assert!(s.modified());
    assert_eq!(s.remove("b").unwrap(), Some(json!("two")));
}

#[test]
fn pop_of_another_type_keeps_the_value() {
    let (engine, _) = memory_engine();
    let mut s = engine.session(None);
    s.insert("k", "text").unwrap();
    s.set_modified(false);
    assert!(matches!(s.pop::<i64>("k"), Err(Error::Type(_))));
    assert_eq!(s.get_value("k").unwrap(), Some(json!("text")));
    assert!(!s.modified());
}

#[test]
fn removing_a_key_keeps_the_order_of_the_rest() {
    let (engine, _) = memory_engine();
    let mut s = engine.session(None);
    for k in ["a", "b", "c", "d"] {
        s.insert(k, 1).unwrap();
    }
    s.remove("a").unwrap();
    assert_eq!(s.keys().unwrap(), ["b", "c", "d"]);
}

#[test]
fn setdefault_marks_modified_only_when_it_inserts() {
    let (engine, _, key) = saved_session(&[("a", json!(1))]);
    let mut s = engine.session(Some(&key));
    assert_eq!(s.setdefault("a", 5).unwrap(), json!(1));
    assert!(!s.modified());
    assert_eq!(s.setdefault("b", 5).unwrap(), json!(5));
    assert!(s.modified());
    assert_eq!(s.get::<i64>("b").unwrap(), Some(5));
}

#[test]
fn update_always_marks_modified_even_when_empty() {
    let (engine, _, key) = saved_session(&[("a", json!(1))]);
    let mut s = engine.session(Some(&key));
    s.update(SessionMap::new()).unwrap();
    assert!(s.modified());
    let mut entries = SessionMap::new();
    entries.insert("b".to_owned(), json!(2));
    s.update(entries).unwrap();
    assert_eq!(s.keys().unwrap(), ["a", "b"]);
}

#[test]
fn clear_empties_without_loading_and_marks_accessed_and_modified() {
    let (engine, probe, key) = saved_session(&[("a", json!(1))]);
    let calls = probe.calls();
    let mut s = engine.session(Some(&key));
    s.clear();
    assert_eq!(probe.calls(), calls, "clear never loads");
    assert!(s.accessed());
    assert!(s.modified());
    assert_eq!(s.keys().unwrap(), Vec::<String>::new());
    assert_eq!(probe.calls(), calls);
}

#[test]
fn is_empty_never_loads_and_a_key_without_data_is_not_empty() {
    let (engine, probe, key) = saved_session(&[("a", json!(1))]);
    let calls = probe.calls();
    let s = engine.session(Some(&key));
    assert!(!s.is_empty());
    assert_eq!(probe.calls(), calls);
    let mut fresh = engine.session(None);
    assert_eq!(fresh.keys().unwrap(), Vec::<String>::new());
    assert!(
        fresh.is_empty(),
        "no key and loaded-but-empty data is empty"
    );
    fresh.insert("x", 1).unwrap();
    assert!(!fresh.is_empty());
}

#[test]
fn load_of_an_unknown_key_creates_nothing_and_drops_the_key() {
    let (engine, probe) = memory_engine();
    let unknown = sessionkit_codec::key::new_session_key();
    let mut s = engine.session(Some(&unknown));
    assert_eq!(s.session_key(), Some(unknown.as_str()));
    assert_eq!(s.load().unwrap(), SessionMap::new());
    assert_eq!(s.session_key(), None);
    assert_eq!(probe.len(), 0);
    assert!(!s.exists(&unknown).unwrap());
}

#[test]
fn first_access_of_an_unknown_key_gives_an_empty_session_and_the_next_save_mints_a_new_key() {
    let (engine, probe) = memory_engine();
    let unknown = sessionkit_codec::key::new_session_key();
    let mut s = engine.session(Some(&unknown));
    assert_eq!(s.get_value("a").unwrap(), None);
    assert_eq!(s.session_key(), None);
    assert_eq!(probe.len(), 0, "loading creates nothing");
    s.insert("a", 1).unwrap();
    s.save().unwrap();
    let key = s.session_key().unwrap();
    assert_ne!(key, unknown, "an unknown key is never adopted");
    assert!(probe.record(&unknown).is_none());
}

#[test]
fn keys_outside_the_format_are_no_key_and_never_reach_the_engine() {
    let (engine, probe) = memory_engine();
    for bad in [
        "",
        "short",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ123456",
        "../../../../etc/passwd",
        "abcdefgh/ijklmnop",
        "abcdefgh\0ijklmnop",
        "abcdefgh ijklmnop",
        &"a".repeat(41),
        &"a".repeat(4096),
    ] {
        let mut s = engine.session(Some(bad));
        assert_eq!(s.session_key(), None, "{bad:?}");
        assert!(s.is_empty());
        assert_eq!(s.get_value("x").unwrap(), None);
        assert!(!s.exists(bad).unwrap());
        s.delete_key(bad).unwrap();
    }
    assert_eq!(probe.calls(), 0);
}

#[test]
fn expired_sessions_load_empty_and_lose_their_key() {
    let (engine, probe, key) = saved_session(&[("a", json!(1))]);
    probe
        .clock()
        .advance(Duration::seconds(engine.settings().session_cookie_age + 1));
    let mut s = engine.session(Some(&key));
    assert_eq!(s.get_value("a").unwrap(), None);
    assert_eq!(s.session_key(), None);
}

#[test]
fn save_stores_expire_date_from_the_cookie_age_or_the_custom_expiry() {
    let (engine, probe) = memory_engine();
    let now = probe.clock().now_utc();
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save().unwrap();
    let key = s.session_key().unwrap().to_owned();
    let expected = now + Duration::seconds(1_209_600);
    assert_eq!(
        probe.record(&key).unwrap().expire_date,
        from_datetime(expected)
    );

    s.set_expiry(Expiry::Seconds(60)).unwrap();
    s.save().unwrap();
    assert_eq!(
        probe.record(&key).unwrap().expire_date,
        from_datetime(now + Duration::seconds(60))
    );

    let at = Utc.with_ymd_and_hms(2025, 6, 16, 15, 6, 40).unwrap();
    s.set_expiry(Expiry::At(at)).unwrap();
    s.save().unwrap();
    assert_eq!(to_datetime(probe.record(&key).unwrap().expire_date), at);
}

#[test]
fn set_expiry_stores_what_django_stores() {
    let (engine, probe) = memory_engine();
    let now = probe.clock().now_utc();
    let mut s = engine.session(None);
    s.set_expiry(Expiry::Seconds(300)).unwrap();
    assert_eq!(s.get_value("_session_expiry").unwrap(), Some(json!(300)));
    s.set_expiry(Expiry::BrowserClose).unwrap();
    assert_eq!(s.get_value("_session_expiry").unwrap(), Some(json!(0)));
    let at = Utc.with_ymd_and_hms(2025, 6, 16, 15, 6, 40).unwrap();
    s.set_expiry(Expiry::At(at)).unwrap();
    assert_eq!(
        s.get_value("_session_expiry").unwrap(),
        Some(json!("2025-06-16T15:06:40+00:00"))
    );
    s.set_expiry(Expiry::In(Duration::hours(1))).unwrap();
    let in_an_hour = sessionkit_codec::time::isoformat(now + Duration::hours(1));
    assert_eq!(
        s.get_value("_session_expiry").unwrap(),
        Some(json!(in_an_hour))
    );
    assert!(s.modified());
}

#[test]
fn set_expiry_default_removes_a_custom_expiry_and_is_a_no_op_without_one() {
    let (engine, _, key) = saved_session(&[("a", json!(1))]);
    let mut s = engine.session(Some(&key));
    s.set_expiry(Expiry::Default).unwrap();
    assert!(s.accessed());
    assert!(!s.modified(), "nothing to remove, nothing modified");
    s.set_expiry(Expiry::Seconds(10)).unwrap();
    s.set_modified(false);
    s.set_expiry(Expiry::Default).unwrap();
    assert!(s.modified());
    assert_eq!(s.get_value("_session_expiry").unwrap(), None);
}

#[test]
fn set_expiry_far_outside_pythons_range_is_clamped_not_a_panic() {
    let (engine, _) = memory_engine();
    let mut s = engine.session(None);
    s.set_expiry(Expiry::In(Duration::MAX)).unwrap();
    assert_eq!(
        s.get_value("_session_expiry").unwrap(),
        Some(json!("9999-12-31T23:59:59.999999+00:00"))
    );
    s.set_expiry(Expiry::In(Duration::MIN)).unwrap();
    assert_eq!(
        s.get_value("_session_expiry").unwrap(),
        Some(json!("0001-01-01T00:00:00+00:00"))
    );
    s.save().unwrap();
}

#[test]
fn expiry_age_and_date_follow_the_stored_expiry() {
    let (engine, probe) = memory_engine();
    let now = probe.clock().now_utc();
    let mut s = engine.session(None);
    assert_eq!(s.get_expiry_age().unwrap(), 1_209_600);
    assert_eq!(
        s.get_expiry_date().unwrap(),
        now + Duration::seconds(1_209_600)
    );
    s.set_expiry(Expiry::Seconds(60)).unwrap();
    assert_eq!(s.get_expiry_age().unwrap(), 60);
    assert_eq!(s.get_expiry_date().unwrap(), now + Duration::seconds(60));
    s.set_expiry(Expiry::In(Duration::seconds(90))).unwrap();
    assert_eq!(s.get_expiry_age().unwrap(), 90);
    probe.clock().advance(Duration::seconds(30));
    assert_eq!(s.get_expiry_age().unwrap(), 60, "an instant is absolute");
}

#[test]
fn passing_expiry_avoids_a_load() {
    let (engine, probe, key) = saved_session(&[("a", json!(1))]);
    let calls = probe.calls();
    let mut s = engine.session(Some(&key));
    let modification = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(
        s.get_expiry_age_at(Some(modification), Some(&json!(100)))
            .unwrap(),
        100
    );
    assert_eq!(
        s.get_expiry_age_at(None, Some(&Value::Null)).unwrap(),
        1_209_600
    );
    assert_eq!(
        s.get_expiry_date_at(Some(modification), Some(&json!(100)))
            .unwrap(),
        modification + Duration::seconds(100)
    );
    assert_eq!(
        s.get_expiry_date_at(None, Some(&json!("2025-06-16T15:06:40+00:00")))
            .unwrap(),
        Utc.with_ymd_and_hms(2025, 6, 16, 15, 6, 40).unwrap()
    );
    assert_eq!(probe.calls(), calls);
    assert!(!s.is_loaded());
}

#[test]
fn expire_at_browser_close_follows_the_setting_unless_a_custom_expiry_says_otherwise() {
    let (engine, _) = memory_engine();
    let mut s = engine.session(None);
    assert!(!s.get_expire_at_browser_close().unwrap());
    s.set_expiry(Expiry::BrowserClose).unwrap();
    assert!(s.get_expire_at_browser_close().unwrap());
    s.set_expiry(Expiry::Seconds(10)).unwrap();
    assert!(!s.get_expire_at_browser_close().unwrap());

    let mut closing = settings();
    closing.session_expire_at_browser_close = true;
    let (engine, _) = memory_engine_with(&closing);
    let mut s = engine.session(None);
    assert!(s.get_expire_at_browser_close().unwrap());
    s.set_expiry(Expiry::Seconds(10)).unwrap();
    assert!(!s.get_expire_at_browser_close().unwrap());
}

#[test]
fn flush_deletes_the_record_drops_the_key_and_stores_nothing_new() {
    let (engine, probe, key) = saved_session(&[("a", json!(1))]);
    let mut s = engine.session(Some(&key));
    s.flush().unwrap();
    assert_eq!(s.session_key(), None);
    assert!(s.modified());
    assert!(s.is_empty());
    assert_eq!(probe.len(), 0);
    assert!(engine.session(Some(&key)).get_value("a").unwrap().is_none());
}

#[test]
fn cycle_key_moves_the_data_to_a_new_key_and_deletes_the_old_record() {
    let (engine, probe, key) = saved_session(&[("a", json!(1))]);
    let mut s = engine.session(Some(&key));
    s.cycle_key().unwrap();
    let new_key = s.session_key().unwrap().to_owned();
    assert_ne!(new_key, key);
    assert!(s.modified());
    assert!(probe.record(&key).is_none(), "the old record is gone");
    assert_eq!(probe.len(), 1);
    assert_eq!(
        engine.session(Some(&new_key)).get::<i64>("a").unwrap(),
        Some(1)
    );
    assert_eq!(s.get::<i64>("a").unwrap(), Some(1));
}

#[test]
fn cycle_key_of_a_keyless_session_just_creates() {
    let (engine, probe) = memory_engine();
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.cycle_key().unwrap();
    assert!(s.session_key().is_some());
    assert_eq!(probe.len(), 1);
}

#[test]
fn save_of_a_session_deleted_meanwhile_is_interrupted_and_does_not_resurrect_it() {
    let (engine, probe, key) = saved_session(&[("a", json!(1))]);
    let mut s = engine.session(Some(&key));
    s.insert("b", 2).unwrap();
    probe.remove(&key);
    let error = s.save().unwrap_err();
    assert!(matches!(error, Error::SessionInterrupted), "{error:?}");
    assert_eq!(error.kind(), Some(ErrorKind::NotFound));
    assert_eq!(probe.len(), 0);
}

#[test]
fn save_of_an_unloaded_session_that_expired_meanwhile_never_revives_it() {
    let (engine, probe, key) = saved_session(&[("a", json!(1))]);
    let stored = probe.record(&key).unwrap();
    probe
        .clock()
        .advance(Duration::seconds(engine.settings().session_cookie_age + 1));
    let mut s = engine.session(Some(&key));
    let error = s.save().unwrap_err();
    assert!(matches!(error, Error::SessionInterrupted), "{error:?}");
    assert_eq!(
        probe.record(&key),
        Some(stored),
        "the expired record was not updated"
    );
    assert!(engine.session(Some(&key)).get_value("a").unwrap().is_none());
}

#[test]
fn create_retries_taken_keys_with_fresh_ones() {
    let (engine, probe) = memory_engine();
    probe.collide(3);
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.create().unwrap();
    assert_eq!(probe.creates(), 4);
    assert_eq!(probe.len(), 1);
    assert!(s.modified());
}

#[test]
fn create_gives_up_after_a_bounded_number_of_taken_keys_and_keeps_the_old_key() {
    let (engine, probe) = memory_engine();
    probe.collide(u32::MAX);
    let mut s = engine.session(None);
    let error = s.create().unwrap_err();
    assert!(
        matches!(error, Error::CreateExhausted { attempts, .. } if attempts == CREATE_ATTEMPTS),
        "{error:?}"
    );
    assert_eq!(probe.creates(), CREATE_ATTEMPTS as usize);
    assert_eq!(s.session_key(), None);
}

#[test]
fn save_with_must_create_on_a_taken_key_is_already_exists() {
    let (engine, _, key) = saved_session(&[("a", json!(1))]);
    let mut s = engine.session(Some(&key));
    let error = s.save_with(true).unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::AlreadyExists), "{error:?}");
}

#[test]
fn save_with_must_create_does_not_load() {
    let (engine, probe) = memory_engine();
    let key = sessionkit_codec::key::new_session_key();
    let mut s = engine.session(Some(&key));
    s.save_with(true).unwrap();
    assert_eq!(probe.loads(), 0);
    assert!(s.accessed());
    assert_eq!(
        engine.session(Some(&key)).keys().unwrap(),
        Vec::<String>::new()
    );
    assert!(probe.record(&key).is_some());
}

#[test]
fn a_record_that_does_not_verify_loads_empty_keeps_its_key_and_warns() {
    let (engine, probe) = memory_engine();
    let key = sessionkit_codec::key::new_session_key();
    let other = SessionCodec::new(sessionkit_codec::SESSION_STORE_SALT, b"another secret", &[]);
    let mut data = SessionMap::new();
    data.insert("a".to_owned(), json!(1));
    let forged = other
        .encode(&data, probe.clock().now_utc().timestamp())
        .unwrap();
    probe.put(SessionRecord {
        session_key: key.as_str().into(),
        session_data: forged.session_data.as_str().into(),
        expire_date: from_datetime(probe.clock().now_utc() + Duration::days(1)),
    });
    let mut s = engine.session(Some(&key));
    let (value, logged) = capture(|| s.get_value("a").unwrap());
    assert_eq!(value, None);
    assert_eq!(
        s.session_key(),
        Some(key.as_str()),
        "Django keeps the key on a decode failure"
    );
    assert_eq!(corrupted_warnings(&logged), 1, "{logged:?}");
}

#[test]
fn sessions_signed_with_a_fallback_key_still_load() {
    let (old_engine, _probe_unused) = memory_engine();
    let data = {
        let mut m = SessionMap::new();
        m.insert("a".to_owned(), json!(1));
        old_engine.encode(&m).unwrap()
    };
    let mut rotated = settings();
    rotated.secret_key = "a brand new secret".to_owned();
    rotated.secret_key_fallbacks = vec![SECRET.to_owned()];
    let (engine, probe) = memory_engine_with(&rotated);
    let key = sessionkit_codec::key::new_session_key();
    probe.put(SessionRecord {
        session_key: key.as_str().into(),
        session_data: data.session_data.as_str().into(),
        expire_date: from_datetime(probe.clock().now_utc() + Duration::days(1)),
    });
    assert_eq!(engine.session(Some(&key)).get::<i64>("a").unwrap(), Some(1));
    let (decoded, logged) = capture(|| engine.decode("garbage"));
    assert!(decoded.is_empty());
    assert_eq!(corrupted_warnings(&logged), 1);
}

#[test]
fn values_that_could_not_be_loaded_back_are_refused_on_insert() {
    let (engine, _) = memory_engine();
    let mut s = engine.session(None);
    assert!(matches!(s.insert("x", f64::NAN), Err(Error::Unstorable(_))));
    assert!(matches!(
        s.setdefault("x", f64::INFINITY),
        Err(Error::Unstorable(_))
    ));
    let mut deep = json!(1);
    for _ in 0..200 {
        deep = json!([deep]);
    }
    assert!(matches!(s.insert("x", &deep), Err(Error::Unstorable(_))));
    let mut entries = SessionMap::new();
    entries.insert("ok".to_owned(), json!(1));
    entries.insert("x".to_owned(), deep);
    assert!(matches!(s.update(entries), Err(Error::Unstorable(_))));
    assert_eq!(s.keys().unwrap(), Vec::<String>::new(), "nothing was set");
}

#[test]
fn a_session_over_the_size_limit_is_refused_and_nothing_is_written() {
    let (engine, probe) = memory_engine();
    let mut s = engine.session(None);
    s.insert("blob", "x".repeat(crate::engine::MAX_SESSION_JSON))
        .unwrap();
    let error = s.save().unwrap_err();
    assert!(matches!(error, Error::TooLarge { .. }), "{error:?}");
    assert_eq!(probe.len(), 0);
    assert_eq!(s.session_key(), None);
}

#[test]
fn a_session_exactly_at_the_size_limit_saves_and_loads_back() {
    let (engine, _) = memory_engine();
    let overhead = r#"{"blob":""}"#.len();
    let blob = "x".repeat(crate::engine::MAX_SESSION_JSON - overhead);
    let mut s = engine.session(None);
    s.insert("blob", &blob).unwrap();
    s.save().unwrap();
    let key = s.session_key().unwrap().to_owned();
    assert_eq!(
        engine
            .session(Some(&key))
            .get::<String>("blob")
            .unwrap()
            .as_deref(),
        Some(blob.as_str())
    );
}

#[test]
fn test_cookie_helpers_follow_django() {
    let (engine, _) = memory_engine();
    let mut s = engine.session(None);
    assert!(!s.test_cookie_worked().unwrap());
    s.set_test_cookie().unwrap();
    assert!(s.modified());
    assert!(s.test_cookie_worked().unwrap());
    assert_eq!(
        s.get_value(TEST_COOKIE_NAME).unwrap(),
        Some(json!("worked"))
    );
    s.set_modified(false);
    s.delete_test_cookie().unwrap();
    assert!(s.modified());
    assert!(!s.test_cookie_worked().unwrap());
}

#[test]
fn engine_failures_carry_engine_operation_and_key_prefix() {
    let (engine, probe, key) = saved_session(&[("a", json!(1))]);
    probe.fail_with(Some(ErrorKind::Unavailable));
    let mut s = engine.session(Some(&key));
    let error = s.get_value("a").unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::Unavailable));
    let text = error.to_string();
    assert!(
        text.starts_with("engine 'memory' failed to load session "),
        "{text}"
    );
    assert!(text.contains(&format!("{}…", &key[..6])), "{text}");
    assert!(!text.contains(&key), "{text}");
    assert!(!s.is_loaded(), "a failed load leaves the session unloaded");
    probe.fail_with(None);
    assert_eq!(s.get::<i64>("a").unwrap(), Some(1));
}

#[test]
fn delete_without_a_key_does_nothing() {
    let (engine, probe) = memory_engine();
    let mut s = engine.session(None);
    s.delete().unwrap();
    assert_eq!(probe.calls(), 0);
}

#[test]
fn clear_expired_removes_only_expired_records() {
    let (engine, probe, key) = saved_session(&[("a", json!(1))]);
    let mut short = engine.session(None);
    short.set_expiry(Expiry::Seconds(10)).unwrap();
    short.save().unwrap();
    probe.clock().advance(Duration::seconds(11));
    assert_eq!(engine.clear_expired().unwrap(), 1);
    assert!(probe.record(&key).is_some());
}

#[test]
fn account_operations_without_the_capability_are_unsupported_without_calling_the_engine() {
    let (engine, probe) = memory_engine();
    assert!(matches!(
        engine.sessions_of_account(1),
        Err(Error::Unsupported { .. })
    ));
    assert!(matches!(
        engine.delete_sessions_of_account(1, None),
        Err(Error::Unsupported { .. })
    ));
    assert_eq!(probe.calls(), 0);
}

#[test]
fn session_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<crate::Session>();
    assert_send::<crate::Engine>();
}
