//! `sessionkit encode` / `decode` against real Django 5.2 `signing.dumps` / `loads`.
//!
//! The codec crate has library-level vector tests; these prove the command-line path: the same
//! bytes out of `sessionkit encode --timestamp T` as out of Django at a clock frozen at T, the
//! same JSON out of `sessionkit decode` as Django signed, and bad data refused by both.

mod common;

use serde_json::{Value, json};

use common::{DjangoPeer, SESSION_STORE_SALT, SIGNED_COOKIES_SALT, Sessionkit};

/// An ASCII SECRET_KEY (the peer's own).
const ASCII_KEY: &str = "django-insecure-cli-vector-key-0001";
/// A SECRET_KEY with non-ASCII characters, astral included (Django UTF-8-encodes it).
const UNICODE_KEY: &str = "clé-секрет-秘密-🔑-0002";
/// A signing time (2025-06-15T15:06:40Z).
const T: i64 = 1_750_000_000;

/// One signing to compare: what, how and when.
struct Case {
    name: String,
    value: Value,
    salt: &'static str,
    secret_key: &'static str,
    timestamp: i64,
}

/// Deterministic pseudo-random text over `alphabet` (a 64-bit LCG; no seed from the clock so a
/// failure reproduces).
fn text(seed: u64, alphabet: &str, len: usize) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            chars[usize::try_from(state >> 33).unwrap_or(0) % chars.len()]
        })
        .collect()
}

/// Session-shaped values that exercise every rule of Django's JSON and compression.
fn values() -> Vec<(&'static str, Value)> {
    vec![
        ("simple", json!({"foo": "bar"})),
        ("empty", json!({})),
        (
            "insertion-order",
            json!({"z": 1, "a": 2, "m": {"y": 1, "b": 2}}),
        ),
        (
            "unicode",
            json!({"name": "Zoë Ångström", "cjk": "東京", "rtl": "שלום", "emoji": "😀🎉", "clef": "𝄞"}),
        ),
        (
            "separators-and-controls",
            json!({"ls": "a\u{2028}b\u{2029}c", "ctl": "\u{0}\u{1f}\u{7f}\t\n\r\u{8}\u{c}", "punct": "\"\\/<>&'"}),
        ),
        (
            "nested",
            json!({"a": {"b": [1, {"c": [null, true, false, []]}], "d": {}}}),
        ),
        (
            "floats",
            json!({"f": [0.1, 1.5, -2.25, 1e-7, 1e16, 1e22, 123_456_789.123, 5e-324, 1.797_693_134_862_315_7e308, -0.0, 100.0]}),
        ),
        (
            "integers",
            json!({"i": [0, -1, i64::MAX, i64::MIN, u64::MAX]}),
        ),
        (
            "logged-in-session",
            json!({
                "_auth_user_id": "42",
                "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                "_auth_user_hash": "5d1b0f5c0a6b2d0e9c7e6d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0f9e",
                "_session_expiry": "2025-06-16T15:06:40.123456+00:00",
            }),
        ),
        (
            "compressible-large",
            json!({"blob": "abc".repeat(3000), "n": 1}),
        ),
        (
            "incompressible-large",
            json!({"blob": text(7, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 3000)}),
        ),
    ]
}

/// Every value with the server-side salt, with the signed-cookie salt, and with a non-ASCII
/// SECRET_KEY; plus short payloads whose compressed size crosses Django's threshold
/// (`len(zlib) < len(json) - 1`) and signing at the epoch.
fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    for (name, value) in values() {
        for (prefix, salt, secret_key, timestamp) in [
            ("db", SESSION_STORE_SALT, ASCII_KEY, T),
            ("cookie", SIGNED_COOKIES_SALT, ASCII_KEY, T + 1),
            ("unicode-key", SESSION_STORE_SALT, UNICODE_KEY, T + 12_345),
        ] {
            cases.push(Case {
                name: format!("{prefix}/{name}"),
                value: value.clone(),
                salt,
                secret_key,
                timestamp,
            });
        }
    }
    for n in 0..48 {
        for (kind, value) in [
            ("a", json!({"k": "a".repeat(n)})),
            (
                "mix",
                json!({"key": text(u64::try_from(n).unwrap_or(0), "abcd", n)}),
            ),
        ] {
            cases.push(Case {
                name: format!("threshold-{kind}-{n}"),
                value,
                salt: SESSION_STORE_SALT,
                secret_key: ASCII_KEY,
                timestamp: T,
            });
        }
    }
    cases.push(Case {
        name: "epoch".to_owned(),
        value: json!({"at": "epoch"}),
        salt: SESSION_STORE_SALT,
        secret_key: ASCII_KEY,
        timestamp: 0,
    });
    cases
}

fn peer() -> DjangoPeer {
    DjangoPeer::start(json!({"SECRET_KEY": ASCII_KEY}), None)
}

/// Django's `signing.dumps(value, salt, compress=True)` at `timestamp`, with its JSON and zlib
/// sizes.
fn django_dumps(
    peer: &mut DjangoPeer,
    value: &Value,
    salt: &str,
    secret_key: &str,
    timestamp: i64,
) -> Value {
    peer.call(
        "dumps",
        json!({"value": value, "salt": salt, "timestamp": timestamp, "secret_key": secret_key}),
    )
}

/// Django's `signing.loads`: `Ok(value)` or `Err(exception class name)`.
fn django_loads(
    peer: &mut DjangoPeer,
    data: &str,
    salt: &str,
    secret_key: &str,
    max_age: Option<i64>,
    now: i64,
) -> Result<Value, String> {
    let reply = peer.call(
        "loads",
        json!({"data": data, "salt": salt, "secret_key": secret_key, "max_age": max_age, "now": now}),
    );
    match reply.get("refused") {
        Some(class) => Err(class.as_str().unwrap_or("?").to_owned()),
        None => Ok(reply["value"].clone()),
    }
}

#[test]
fn encode_is_django_dumps_over_the_corpus_or_loads_in_django_when_compressed() {
    let mut django = peer();
    let (mut plain_at_threshold, mut compressed_at_threshold) = (0, 0);
    for case in corpus() {
        let reply = django_dumps(
            &mut django,
            &case.value,
            case.salt,
            case.secret_key,
            case.timestamp,
        );
        let expected = reply["data"].as_str().expect("Django's signed value");
        let timestamp = case.timestamp.to_string();
        let ours = Sessionkit::new(case.secret_key)
            .run(
                &["encode", "--salt", case.salt, "--timestamp", &timestamp],
                &case.value.to_string(),
            )
            .expect_ok(&case.name);
        let ours = ours.trim_end_matches('\n');
        // A compressed payload is libdeflate's zlib stream, not zlib's (sdk/codec/README.md):
        // then real Django must load ours to the same value; everything else is byte-identical.
        if ours.starts_with('.') || expected.starts_with('.') {
            assert_eq!(
                django_loads(&mut django, ours, case.salt, case.secret_key, None, T),
                Ok(case.value.clone()),
                "{}: Django loads our compressed encode",
                case.name
            );
        } else {
            assert_eq!(
                ours, expected,
                "{}: sessionkit encode differs from Django",
                case.name
            );
        }
        let (json_len, zlib_len) = (
            reply["json_len"].as_i64().unwrap(),
            reply["zlib_len"].as_i64().unwrap(),
        );
        if zlib_len == json_len - 1 {
            plain_at_threshold += 1;
            assert!(
                !expected.starts_with('.'),
                "{}: one byte saved is not compressed",
                case.name
            );
        }
        if zlib_len == json_len - 2 {
            compressed_at_threshold += 1;
            assert!(
                expected.starts_with('.'),
                "{}: two bytes saved is compressed",
                case.name
            );
        }
    }
    assert!(
        plain_at_threshold > 0,
        "the corpus has no payload with len(zlib) == len(json) - 1"
    );
    assert!(
        compressed_at_threshold > 0,
        "the corpus has no payload with len(zlib) == len(json) - 2"
    );
}

#[test]
fn decode_of_django_dumps_gives_the_same_json() {
    let mut django = peer();
    for case in corpus() {
        let reply = django_dumps(
            &mut django,
            &case.value,
            case.salt,
            case.secret_key,
            case.timestamp,
        );
        let signed = reply["data"].as_str().expect("Django's signed value");
        let sessionkit = Sessionkit::new(case.secret_key);
        let now = case.timestamp.to_string();
        let mut args = vec!["decode", "--salt", case.salt];
        if case.salt == SIGNED_COOKIES_SALT {
            // The signed-cookie path: judged with a max age, as of the signing second.
            args.extend(["--max-age", "1209600", "--now", now.as_str()]);
        }
        let out = sessionkit.run(&args, signed).expect_ok(&case.name);
        let decoded: Value = serde_json::from_str(&out).expect("decode prints JSON");
        assert_eq!(decoded, case.value, "{}", case.name);
        assert_eq!(
            decoded.to_string(),
            case.value.to_string(),
            "{}: key order",
            case.name
        );
    }
}

/// Signed data that `signing.loads` must refuse, and how it is read.
struct Refusal {
    what: &'static str,
    data: String,
    salt: &'static str,
    secret_key: &'static str,
    max_age: Option<i64>,
    now: i64,
}

impl Refusal {
    /// `data` read as server-side session data with the ASCII key, at T.
    fn of(what: &'static str, data: String) -> Self {
        Self {
            what,
            data,
            salt: SESSION_STORE_SALT,
            secret_key: ASCII_KEY,
            max_age: None,
            now: T,
        }
    }

    /// Read as a signed cookie instead: its salt, a max age, judged at `now`.
    fn read_as_cookie(self, max_age: i64, now: i64) -> Self {
        Self {
            salt: SIGNED_COOKIES_SALT,
            max_age: Some(max_age),
            now,
            ..self
        }
    }
}

#[test]
fn decode_refuses_what_django_refuses_with_a_one_line_reason() {
    let mut django = peer();
    let value = json!({"foo": "bar", "n": [1, 2, 3]});
    let good = django_dumps(&mut django, &value, SESSION_STORE_SALT, ASCII_KEY, T)["data"]
        .as_str()
        .unwrap()
        .to_owned();
    let cookie = django_dumps(&mut django, &value, SIGNED_COOKIES_SALT, ASCII_KEY, T)["data"]
        .as_str()
        .unwrap()
        .to_owned();
    let (payload, rest) = good.split_once(':').unwrap();
    let (timestamp, signature) = rest.split_once(':').unwrap();
    let flip = |s: &str, at: usize| -> String {
        let mut chars: Vec<char> = s.chars().collect();
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect()
    };
    let other_key = "some-other-secret-key";
    let bad = [
        Refusal::of(
            "signature tampered",
            format!("{payload}:{timestamp}:{}", flip(signature, 42)),
        ),
        Refusal::of(
            "payload tampered",
            format!("{}:{timestamp}:{signature}", flip(payload, 3)),
        ),
        Refusal::of(
            "timestamp tampered",
            format!("{payload}:{}:{signature}", flip(timestamp, 0)),
        ),
        Refusal::of("truncated", good[..good.len() / 2].to_owned()),
        Refusal::of("signature cut short", good[..good.len() - 1].to_owned()),
        Refusal::of("no signature", payload.to_owned()),
        Refusal::of("empty", String::new()),
        Refusal::of("wrong salt (cookie read as db)", cookie.clone()),
        Refusal::of("wrong salt (db read as cookie)", good.clone()).read_as_cookie(60, T),
        Refusal {
            secret_key: other_key,
            ..Refusal::of("another SECRET_KEY", good.clone())
        },
        Refusal::of("older than max_age", cookie.clone()).read_as_cookie(60, T + 61),
    ];
    for Refusal {
        what,
        data,
        salt,
        secret_key,
        max_age,
        now,
    } in bad
    {
        // Everything here was signed at T; only an age past max_age is "expired".
        let expired = max_age.is_some_and(|age| now - T > age);
        let refused = django_loads(&mut django, &data, salt, secret_key, max_age, now);
        let expected_class = if expired {
            "SignatureExpired"
        } else {
            "BadSignature"
        };
        assert_eq!(
            refused,
            Err(expected_class.to_owned()),
            "{what}: Django refuses it"
        );

        let now = now.to_string();
        let max_age = max_age.map(|age| age.to_string());
        let mut args = vec!["decode", "--salt", salt, "--now", now.as_str()];
        if let Some(age) = &max_age {
            args.extend(["--max-age", age.as_str()]);
        }
        let run = Sessionkit::new(secret_key).run(&args, &data);
        assert!(
            matches!(run.code, Some(code) if code != 0),
            "{what}: sessionkit accepted it: {run:?}"
        );
        assert!(run.stdout.is_empty(), "{what}: nothing on stdout: {run:?}");
        let lines: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "{what}: one line of reason: {:?}",
            run.stderr
        );
        assert!(
            lines[0].starts_with("sessionkit: "),
            "{what}: {:?}",
            lines[0]
        );
        let telltale = if expired { "max_age" } else { "signature" };
        assert!(
            lines[0].contains(telltale),
            "{what}: the reason names the cause: {:?}",
            lines[0]
        );
    }
    // The untampered originals pass on both sides (so the refusals above are about the damage).
    assert_eq!(
        django_loads(&mut django, &good, SESSION_STORE_SALT, ASCII_KEY, None, T),
        Ok(value.clone())
    );
    let out = Sessionkit::new(ASCII_KEY)
        .run(&["decode"], &good)
        .expect_ok("decode of the original");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), value);
}

#[test]
fn secret_key_fallbacks_verify_on_both_sides_and_encode_signs_with_the_new_key() {
    let mut django = peer();
    let (old, new) = ("rotated-out-old-key-0003", "rotated-in-new-key-0004");
    let value = json!({"rotation": "ok", "ü": [1, 2]});
    let signed_old = django_dumps(&mut django, &value, SESSION_STORE_SALT, old, T)["data"]
        .as_str()
        .unwrap()
        .to_owned();

    let rotated = Sessionkit::new(new).with("SECRET_KEY_FALLBACKS", &json!([old]).to_string());
    let out = rotated
        .run(&["decode"], &signed_old)
        .expect_ok("decode with the old key as a fallback");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), value);
    let without = Sessionkit::new(new).run(&["decode"], &signed_old);
    assert_eq!(
        without.code,
        Some(1),
        "the old key alone is not trusted: {without:?}"
    );

    let ts = T.to_string();
    let signed_new = rotated
        .run(&["encode", "--timestamp", &ts], &value.to_string())
        .expect_ok("encode after rotation");
    let signed_new = signed_new.trim();
    assert_eq!(
        signed_new,
        django_dumps(&mut django, &value, SESSION_STORE_SALT, new, T)["data"]
            .as_str()
            .unwrap(),
        "encode signs with SECRET_KEY, never a fallback"
    );
    let reply = django.call(
        "loads",
        json!({"data": signed_new, "salt": SESSION_STORE_SALT, "secret_key": old, "fallbacks": []}),
    );
    assert_eq!(
        reply["refused"],
        json!("BadSignature"),
        "Django on the old key alone refuses it"
    );
}
