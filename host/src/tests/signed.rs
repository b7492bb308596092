//! Sessions on a signed-payload engine (Django's `signed_cookies` backend).

use chrono::Duration;

use super::{
    logs::{capture, corrupted_warnings},
    memory::cookie_engine,
};
use crate::{Error, store::MAX_SIGNED_PAYLOAD};

#[test]
fn save_makes_the_signed_payload_the_key_and_it_loads_back() {
    let (engine, _) = cookie_engine();
    let mut s = engine.session(None);
    s.insert("member_id", 42).unwrap();
    s.save().unwrap();
    let key = s.session_key().unwrap().to_owned();
    assert!(engine.is_valid_key(&key));
    assert_eq!(key.matches(':').count(), 2, "{key}");
    let mut again = engine.session(Some(&key));
    assert_eq!(again.get::<i64>("member_id").unwrap(), Some(42));
    assert!(!again.modified());
}

#[test]
fn resaving_re_signs_into_a_new_key_and_marks_modified() {
    let (engine, probe) = cookie_engine();
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save().unwrap();
    let first = s.session_key().unwrap().to_owned();
    probe.clock().advance(Duration::seconds(5));
    let mut again = engine.session(Some(&first));
    again.insert("b", 2).unwrap();
    again.save().unwrap();
    assert_ne!(again.session_key().unwrap(), first);
    assert!(again.modified());
}

#[test]
fn a_tampered_cookie_gives_an_empty_modified_session_and_one_warning() {
    let (engine, _) = cookie_engine();
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save().unwrap();
    let mut key = s.session_key().unwrap().to_owned();
    let flipped = if key.ends_with('A') { 'B' } else { 'A' };
    key.pop();
    key.push(flipped);
    let mut tampered = engine.session(Some(&key));
    let (value, logged) = capture(|| tampered.get_value("a").unwrap());
    assert_eq!(value, None);
    assert!(
        tampered.modified(),
        "Django's cookie backend calls create() on a bad cookie"
    );
    assert_eq!(corrupted_warnings(&logged), 1, "{logged:?}");
}

#[test]
fn a_cookie_older_than_the_cookie_age_is_rejected() {
    let (engine, probe) = cookie_engine();
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save().unwrap();
    let key = s.session_key().unwrap().to_owned();
    probe
        .clock()
        .advance(Duration::seconds(engine.settings().session_cookie_age));
    assert_eq!(
        engine.session(Some(&key)).get::<i64>("a").unwrap(),
        Some(1),
        "max_age is inclusive"
    );
    probe.clock().advance(Duration::seconds(1));
    let mut old = engine.session(Some(&key));
    assert_eq!(old.get_value("a").unwrap(), None);
    assert!(old.modified());
}

#[test]
fn delete_and_flush_drop_the_cookie_value() {
    let (engine, _) = cookie_engine();
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save().unwrap();
    let key = s.session_key().unwrap().to_owned();
    let mut again = engine.session(Some(&key));
    again.delete().unwrap();
    assert_eq!(again.session_key(), None);
    assert!(again.modified());
    let mut flushed = engine.session(Some(&key));
    flushed.flush().unwrap();
    assert_eq!(flushed.session_key(), None);
    assert!(flushed.is_empty());
}

#[test]
fn cycle_key_re_signs() {
    let (engine, probe) = cookie_engine();
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save().unwrap();
    let key = s.session_key().unwrap().to_owned();
    probe.clock().advance(Duration::seconds(2));
    let mut again = engine.session(Some(&key));
    again.cycle_key().unwrap();
    let cycled = again.session_key().unwrap().to_owned();
    assert_ne!(cycled, key);
    assert_eq!(
        engine.session(Some(&cycled)).get::<i64>("a").unwrap(),
        Some(1)
    );
}

#[test]
fn a_session_too_big_for_a_cookie_is_refused() {
    let (engine, _) = cookie_engine();
    let mut s = engine.session(None);
    // Incompressible enough: distinct numbers.
    let values: Vec<String> = (0..2000)
        .map(|i| format!("{:x}", i * 2_654_435_761_u64))
        .collect();
    s.insert("blob", values).unwrap();
    let error = s.save().unwrap_err();
    assert!(
        matches!(error, Error::TooLarge { max, .. } if max == MAX_SIGNED_PAYLOAD),
        "{error:?}"
    );
}

#[test]
fn invalid_cookie_values_are_no_key() {
    let (engine, probe) = cookie_engine();
    for bad in ["", "a b", "a;b", "é", &"a".repeat(4097)] {
        assert_eq!(engine.session(Some(bad)).session_key(), None, "{bad:?}");
    }
    let s = engine.session(Some("e30:1uQ2nF:bad-signature"));
    assert!(s.session_key().is_some());
    assert_eq!(probe.calls(), 0);
}
