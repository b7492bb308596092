//! The `signed_cookies` engine and a real Django 5.2 app with the same SECRET_KEY: cookies made
//! by either load in the other, the max-age boundary (age == SESSION_COOKIE_AGE valid, one
//! second more expired) is judged the same, and tampered cookies are refused by both.

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use common::{
    DjangoPeer, Run, SESSION_STORE_SALT, SIGNED_COOKIES_SALT, Sessionkit, assert_between,
    assert_same_session, now_micros,
};

/// The SECRET_KEY both sides share.
const KEY: &str = "django-insecure-shared-cookie-key-0001";
/// SESSION_COOKIE_AGE on both sides (one hour).
const AGE: i64 = 3600;
/// A signing time for the boundary test (2025-06-15T15:06:40Z).
const T: i64 = 1_750_000_000;

fn django() -> DjangoPeer {
    DjangoPeer::start(
        json!({
            "SECRET_KEY": KEY,
            "SESSION_ENGINE": "django.contrib.sessions.backends.signed_cookies",
            "SESSION_COOKIE_AGE": AGE,
        }),
        None,
    )
}

fn sessionkit() -> Sessionkit {
    Sessionkit::new(KEY)
        .with("SESSION_ENGINE", "signed_cookies")
        .with("SESSION_COOKIE_AGE", &AGE.to_string())
}

/// Sessions as stored (an expiry set with `set_expiry(600)` is the `_session_expiry` entry).
fn varied_sessions() -> Vec<(&'static str, Value)> {
    vec![
        (
            "unicode",
            json!({"greeting": "Grüße, Zoë → 東京 😀 𝄞", "sep": "a\u{2028}b\u{2029}"}),
        ),
        (
            "nested",
            json!({"cart": {"items": [{"sku": "x-1", "qty": 2}, {"sku": "y", "qty": 1.5}], "note": null}, "n": -3}),
        ),
        (
            "with an expiry",
            json!({"_auth_user_id": "7", "_session_expiry": 600}),
        ),
        ("compressible", json!({"blob": "abc".repeat(400)})),
        ("empty", json!({})),
    ]
}

/// `sessionkit decode` of a cookie with the signed-cookie salt and max age (optionally as of
/// `now`).
fn decode(cookie: &str, now: Option<i64>) -> Run {
    let age = AGE.to_string();
    let now = now.map(|n| n.to_string());
    let mut args = vec![
        "decode",
        "--salt",
        SIGNED_COOKIES_SALT,
        "--max-age",
        age.as_str(),
    ];
    if let Some(now) = &now {
        args.extend(["--now", now.as_str()]);
    }
    sessionkit().run(&args, cookie)
}

/// A session's `data` and `_session_expiry` split the way Django's create op takes them.
fn django_create(django: &mut DjangoPeer, stored: &Value, now: Option<i64>) -> String {
    let mut data = stored.as_object().expect("an object").clone();
    let expiry = data.shift_remove("_session_expiry").unwrap_or(Value::Null);
    let made = django.call(
        "create",
        json!({"data": data, "expiry": expiry, "now": now}),
    );
    made["key"].as_str().expect("Django's cookie").to_owned()
}

/// When the signed_cookies engine says a cookie signed at `signed_at` expires: valid while its
/// age is at most SESSION_COOKIE_AGE, so one microsecond after `signed_at + AGE`.
fn cookie_expiry(signed_at: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(signed_at + AGE, 0).expect("a representable time")
        + TimeDelta::microseconds(1)
}

#[test]
fn django_cookies_decode_and_show_in_sessionkit() {
    let mut django = django();
    for (what, stored) in varied_sessions() {
        let from_store = django_create(&mut django, &stored, None);
        let now = Utc::now().timestamp();
        let from_dumps = django.call(
            "dumps",
            json!({"value": stored, "salt": SIGNED_COOKIES_SALT, "timestamp": now}),
        )["data"]
            .as_str()
            .unwrap()
            .to_owned();
        if what == "compressible" {
            assert!(
                from_store.starts_with('.'),
                "Django compressed it: {from_store}"
            );
        }
        for (how, cookie) in [
            ("SessionStore.save", &from_store),
            ("signing.dumps", &from_dumps),
        ] {
            let what = format!("{what} ({how})");
            let out = decode(cookie, None).expect_ok(&what);
            assert_same_session(&serde_json::from_str(&out).expect("JSON"), &stored, &what);

            let shown = sessionkit()
                .show(cookie)
                .unwrap_or_else(|| panic!("{what}: no session"));
            assert_eq!(&shown.session_key, cookie, "{what}: the cookie is the key");
            assert_same_session(&shown.data, &stored, &what);
            let signed_at = django
                .call("timestamp", json!({"data": cookie}))
                .as_i64()
                .expect("a timestamp");
            assert_eq!(shown.expire_date, cookie_expiry(signed_at), "{what}");
        }
    }
}

#[test]
fn sessionkit_cookies_load_in_django() {
    let mut django = django();
    for (what, stored) in varied_sessions() {
        let mut data = stored.as_object().unwrap().clone();
        let expiry = data
            .shift_remove("_session_expiry")
            .map(|n| n.as_i64().expect("seconds"));
        let before = now_micros();
        let cookie = sessionkit().create(&Value::Object(data), expiry);
        let after = Utc::now();
        if what == "compressible" {
            assert!(
                cookie.starts_with('.'),
                "sessionkit compressed it: {cookie}"
            );
        }
        let signed_at = django
            .call("timestamp", json!({"data": cookie}))
            .as_i64()
            .expect("a timestamp");
        let signed_at = DateTime::from_timestamp(signed_at, 0).unwrap();
        assert_between(signed_at, before - TimeDelta::seconds(1), after, what);

        let loaded = django.call("load", json!({"key": cookie}));
        assert_same_session(&loaded["data"], &stored, what);
        assert_eq!(
            loaded["modified"],
            json!(false),
            "{what}: Django loaded it (no fresh session)"
        );
        assert_eq!(loaded["session_key"], json!(cookie), "{what}");
        let verified = django.call(
            "loads",
            json!({"data": cookie, "salt": SIGNED_COOKIES_SALT, "max_age": AGE}),
        );
        assert_same_session(&verified["value"], &stored, what);
    }
}

#[test]
fn max_age_boundary_agrees_at_the_cookie_age_and_one_second_past_it() {
    let mut django = django();
    let stored = json!({"cart": [1, 2], "who": "Zoë"});
    let from_django = django_create(&mut django, &stored, Some(T));
    let ts = T.to_string();
    let from_sessionkit = sessionkit()
        .run(
            &["encode", "--salt", SIGNED_COOKIES_SALT, "--timestamp", &ts],
            &stored.to_string(),
        )
        .expect_ok("encode");
    let from_sessionkit = from_sessionkit.trim();
    assert_eq!(
        from_sessionkit, from_django,
        "the same cookie, byte for byte"
    );

    for (now, valid) in [
        (T - 60, true),
        (T, true),
        (T + AGE - 1, true),
        (T + AGE, true),
        (T + AGE + 1, false),
        (T + 10 * AGE, false),
    ] {
        for (who, cookie) in [
            ("Django's", from_django.as_str()),
            ("sessionkit's", from_sessionkit),
        ] {
            let what = format!("{who} cookie at signing time + {} s", now - T);
            let loaded = django.call("load", json!({"key": cookie, "now": now}));
            let verified = django.call(
                "loads",
                json!({"data": cookie, "salt": SIGNED_COOKIES_SALT, "max_age": AGE, "now": now}),
            );
            let run = decode(cookie, Some(now));
            if valid {
                assert_same_session(&loaded["data"], &stored, &what);
                assert_eq!(loaded["modified"], json!(false), "{what}");
                assert_same_session(&verified["value"], &stored, &what);
                let out = run.expect_ok(&what);
                assert_same_session(&serde_json::from_str(&out).unwrap(), &stored, &what);
            } else {
                assert_eq!(
                    loaded["data"],
                    json!({}),
                    "{what}: Django starts a new session"
                );
                assert_eq!(loaded["modified"], json!(true), "{what}");
                assert_eq!(verified["refused"], json!("SignatureExpired"), "{what}");
                assert_eq!(run.code, Some(1), "{what}: {run:?}");
                assert_eq!(
                    run.stderr.lines().count(),
                    1,
                    "{what}: one line of reason: {run:?}"
                );
                assert!(run.stderr.contains("max_age"), "{what}: {run:?}");
            }
        }
    }
}

#[test]
fn tampered_cookies_are_refused_by_both() {
    let mut django = django();
    let stored = json!({"_auth_user_id": "1", "role": "admin"});
    let from_django = django_create(&mut django, &stored, None);
    let from_sessionkit = sessionkit().create(&stored, None);
    let now = Utc::now().timestamp().to_string();
    let wrong_salt = sessionkit()
        .run(
            &["encode", "--salt", SESSION_STORE_SALT, "--timestamp", &now],
            &stored.to_string(),
        )
        .expect_ok("encode with the server-side salt");
    let other_key = Sessionkit::new("another-secret-key")
        .with("SESSION_ENGINE", "signed_cookies")
        .create(&stored, None);

    let flip = |cookie: &str, at: usize| -> String {
        let mut chars: Vec<char> = cookie.chars().collect();
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect()
    };
    let mut tampered: Vec<(String, String)> = Vec::new();
    for (who, cookie) in [
        ("Django's", &from_django),
        ("sessionkit's", &from_sessionkit),
    ] {
        let (payload, _) = cookie.split_once(':').unwrap();
        tampered.push((
            format!("{who} cookie, payload changed"),
            flip(cookie, payload.len() / 2),
        ));
        tampered.push((
            format!("{who} cookie, signature changed"),
            flip(cookie, cookie.len() - 5),
        ));
        tampered.push((
            format!("{who} cookie, truncated"),
            cookie[..cookie.len() - 10].to_owned(),
        ));
    }
    tampered.push((
        "signed with the server-side salt".to_owned(),
        wrong_salt.trim().to_owned(),
    ));
    tampered.push(("signed with another SECRET_KEY".to_owned(), other_key));

    for (what, cookie) in &tampered {
        let loaded = django.call("load", json!({"key": cookie}));
        assert_eq!(loaded["data"], json!({}), "{what}: Django discards it");
        assert_eq!(
            loaded["modified"],
            json!(true),
            "{what}: Django starts a new session"
        );
        let verified = django.call(
            "loads",
            json!({"data": cookie, "salt": SIGNED_COOKIES_SALT, "max_age": AGE}),
        );
        assert_eq!(verified["refused"], json!("BadSignature"), "{what}");

        let run = decode(cookie, None);
        assert_eq!(
            run.code,
            Some(1),
            "{what}: sessionkit decode refuses it: {run:?}"
        );
        assert!(run.stderr.contains("bad signature"), "{what}: {run:?}");
        assert_eq!(sessionkit().show(cookie), None, "{what}: no live session");
    }
    // The untouched cookies are fine on both sides (the refusals are about the damage).
    for cookie in [&from_django, &from_sessionkit] {
        assert_same_session(
            &django.call("load", json!({"key": cookie}))["data"],
            &stored,
            "untouched",
        );
        assert_same_session(
            &sessionkit().show(cookie).expect("live").data,
            &stored,
            "untouched",
        );
    }
}
