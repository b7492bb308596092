//! Interop with real Django 5.2: the same corpus is signed by Django and by us (byte for byte
//! except for compressed payloads, which are another valid zlib stream of the same JSON), and
//! each side decodes what the other signed.
//!
//! Two Python processes in total (starting Python + Django is the slow part):
//! - "Django produces": Django signs every corpus payload with the time frozen (`time.time` is
//!   patched; `TimestampSigner.timestamp()` reads it), and also answers the expiry, isoformat
//!   and fromisoformat questions;
//! - "Django consumes": Django decodes everything we signed (`signing.loads` and the session
//!   stores' own `decode`/`load`).
//!
//! Each test reads the results it needs from a process started once per direction.

// A test crate: its helpers unwrap like its tests do (a panic is the failure report), which
// clippy's allow-unwrap-in-tests cannot see outside `#[test]` functions.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sessionkit_codec::expiry::{expires_at_browser_close, expiry_age, expiry_date};
use sessionkit_codec::json::{parse_python_json, to_python_json};
use sessionkit_codec::signing::payload_segment;
use sessionkit_codec::time::{isoformat, parse_isoformat, to_datetime};
use sessionkit_codec::{DecodeError, SESSION_STORE_SALT, SIGNED_COOKIES_SALT, SessionCodec};
use sessionkit_sdk::Timestamp;
use sessionkit_testkit::run_django_with_input;

const T: i64 = 1_750_000_000;
const VECTOR_KEY: &str = "django-insecure-vector-key-0001";
const VECTOR: &str = "eyJmb28iOiJiYXIifQ:1uQowS:7pWrN0ZVJXSPFd6-WZMHSsUF6Cvf2A6L4PaT1EkjJ_c";
const UNICODE_KEY: &str = "clé-secrète-ünïcode-🔑-\u{2028}-key";
const OLD_KEY: &str = "old-key-before-rotation-0000";
const NEW_KEY: &str = "new-key-after-rotation-1111";
const CUSTOM_SALT: &str = "django.contrib.sessions.CustomSessionStore";
/// SESSION_COOKIE_AGE for the signed-cookie cases (max_age on decode).
const COOKIE_AGE: i64 = 3600;

// --------------------------------------------------------------------------------------------
// The corpus
// --------------------------------------------------------------------------------------------

/// One payload signed under one key/salt at one time.
#[derive(Clone)]
struct Case {
    name: String,
    salt: &'static str,
    /// The key Django signs with (SECRET_KEY).
    key: String,
    /// SECRET_KEY_FALLBACKS on the decoding side.
    fallbacks: Vec<String>,
    value: Value,
    ts: i64,
}

/// splitmix64: a fixed, seedable source of "random" corpus data (no dependency needed).
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn text(&mut self, alphabet: &str, len: usize) -> String {
        let chars: Vec<char> = alphabet.chars().collect();
        (0..len)
            .map(|_| chars[(self.next() % chars.len() as u64) as usize])
            .collect()
    }
}

fn perf_payload() -> Value {
    json!({
        "_auth_user_id": "1234567",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": "705d8f9675f5d141680c20ceb39e05ad026064c3af07dc302135783e64af102a",
        "cart": [101, 202, 303],
        "theme": "dark",
    })
}

fn random_floats(mix: &mut Mix, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let f = match out.len() % 3 {
            // Any bit pattern (all magnitudes, subnormals included).
            0 => f64::from_bits(mix.next()),
            // "Human" decimals such as prices and ratios.
            1 => (mix.next() % 2_000_000) as f64 / 10f64.powi((mix.next() % 9) as i32) - 1000.0,
            // Around the repr switch points 1e-4 / 1e16.
            _ => {
                let exp = [-6, -5, -4, -3, 14, 15, 16, 17][(mix.next() % 8) as usize];
                (1.0 + (mix.next() % 1000) as f64 / 1000.0) * 10f64.powi(exp)
            }
        };
        if f.is_finite() {
            out.push(Value::from(f));
        }
    }
    out
}

fn payloads() -> Vec<(String, Value)> {
    let mut mix = Mix(0x5e55_10e1_c0de_c0de);
    let mut nested = json!({"leaf": [1, "two", 3.0, null, true]});
    for i in 0..20 {
        nested = if i % 2 == 0 {
            json!({ format!("level{i}"): nested })
        } else {
            json!([i, nested])
        };
    }
    // The deepest storable session: the session object is level 1, so 126 more levels.
    let mut deepest = Value::Null;
    for _ in 0..126 {
        deepest = Value::Array(vec![deepest]);
    }
    let mut p: Vec<(String, Value)> = vec![
        ("worked-example".into(), json!({"foo": "bar"})),
        ("empty".into(), json!({})),
        ("perf-payload".into(), perf_payload()),
        (
            "unicode-bmp".into(),
            json!({"name": "Zoë", "cjk": "中文字符", "greek": "αβγΩ", "clé": "vàlüe", "arabic": "مرحبا"}),
        ),
        (
            "unicode-astral".into(),
            json!({"emoji": "😀🎉👍🏽", "max": "\u{10ffff}", "k😀": "🔑", "math": "𝔘𝔫𝔦"}),
        ),
        (
            "control-chars".into(),
            json!({"c": "\u{0}\u{1}\n\t\r\u{8}\u{c}\u{1f}\u{7f}", "q": "\"\\/<>&'", "\u{0}k\n": 1}),
        ),
        (
            "separators-and-specials".into(),
            json!({"ls": "\u{2028}\u{2029}", "bom": "\u{feff}", "ffff": "\u{ffff}",
                   "nbsp": "\u{a0}", "c1": "\u{80}\u{9f}", "latin1": "\u{ff}", "del": "\u{7f}"}),
        ),
        (
            "nested".into(),
            json!({"tree": nested, "list": [[[], [{}]], {"a": {"b": {"c": []}}}]}),
        ),
        ("depth-127".into(), json!({ "deep": deepest })),
        (
            "floats-special".into(),
            json!({"f": [0.0, -0.0, 0.1, 1.5, 100.0, 1e-7, 1e16, 1e15, 1.5e16, 0.0001, 0.00001,
                         123456789.123, 5e-324, 1.7976931348623157e308, 2.2250738585072014e-308,
                         1e22, 1e23, -2.5e-5, 9007199254740993.0, 0.3333333333333333]}),
        ),
        (
            "big-ints".into(),
            json!({"i": [0, -1, 9_007_199_254_740_993_i64, i64::MAX, i64::MIN, u64::MAX, 1_000_000_000_000_i64]}),
        ),
        (
            "scalars".into(),
            json!({"t": true, "f": false, "n": null, "s": "", "z": 0}),
        ),
        (
            "expiry-int".into(),
            json!({"_session_expiry": 1_209_600, "a": 1}),
        ),
        ("expiry-zero".into(), json!({"_session_expiry": 0, "a": 1})),
        (
            "expiry-iso".into(),
            json!({"_session_expiry": "2025-06-16T15:06:40+00:00"}),
        ),
        (
            "expiry-iso-micros".into(),
            json!({"_auth_user_id": "42", "_session_expiry": "2025-06-16T15:06:40.123456+00:00"}),
        ),
        (
            "compressible-large".into(),
            json!({"blob": "abc".repeat(3000), "n": 1}),
        ),
        (
            "incompressible-large".into(),
            json!({"blob": mix.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 3000)}),
        ),
    ];
    for chunk in 0..4 {
        p.push((
            format!("floats-random-{chunk}"),
            json!({ "f": random_floats(&mut mix, 150) }),
        ));
    }
    // Compression-threshold candidates: short strings whose zlib size stays nearly constant
    // while the JSON grows by one byte per character, so len(zlib) - len(json) passes through
    // -1 and -2. Django decides which of them compress; the test checks both sides are hit.
    for n in 0..48 {
        p.push((format!("threshold-a-{n}"), json!({ "k": "a".repeat(n) })));
        p.push((
            format!("threshold-ab-{n}"),
            json!({ "k": "ab".repeat(n / 2), "x": n }),
        ));
        p.push((
            format!("threshold-mix-{n}"),
            json!({ "key": mix.text("abcd", n) }),
        ));
    }
    p
}

fn corpus() -> Vec<Case> {
    let now = now_unix();
    let mut cases = Vec::new();
    for (name, value) in payloads() {
        cases.push(Case {
            name: format!("db/{name}"),
            salt: SESSION_STORE_SALT,
            key: VECTOR_KEY.into(),
            fallbacks: vec![],
            value: value.clone(),
            ts: T,
        });
        if !name.starts_with("threshold") && !name.starts_with("floats-random") {
            cases.push(Case {
                name: format!("cookie/{name}"),
                salt: SIGNED_COOKIES_SALT,
                key: VECTOR_KEY.into(),
                fallbacks: vec![],
                value: value.clone(),
                // Django's signed-cookie load judges max_age with the real clock.
                ts: now,
            });
            cases.push(Case {
                name: format!("unicode-key/{name}"),
                salt: SESSION_STORE_SALT,
                key: UNICODE_KEY.into(),
                fallbacks: vec![],
                value,
                ts: T + 12_345,
            });
        }
    }
    cases.push(Case {
        name: "custom-salt/perf-payload".into(),
        salt: CUSTOM_SALT,
        key: VECTOR_KEY.into(),
        fallbacks: vec![],
        value: perf_payload(),
        ts: T,
    });
    cases.push(Case {
        name: "db/negative-timestamp".into(),
        salt: SESSION_STORE_SALT,
        key: VECTOR_KEY.into(),
        fallbacks: vec![],
        value: json!({"before": "1970"}),
        ts: -86_400,
    });
    cases.push(Case {
        name: "db/zero-timestamp".into(),
        salt: SESSION_STORE_SALT,
        key: VECTOR_KEY.into(),
        fallbacks: vec![],
        value: json!({"at": "epoch"}),
        ts: 0,
    });
    cases
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn codec(salt: &str, key: &str, fallbacks: &[&str]) -> SessionCodec {
    let fallbacks: Vec<Vec<u8>> = fallbacks.iter().map(|k| k.as_bytes().to_vec()).collect();
    SessionCodec::new(salt, key.as_bytes(), &fallbacks)
}

fn object(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().expect("corpus payloads are objects")
}

// --------------------------------------------------------------------------------------------
// Direction 1: Django produces
// --------------------------------------------------------------------------------------------

const DJANGO_PRODUCES: &str = r#"
import datetime, json, math, sys, zlib
from unittest import mock
from django.core import signing
from django.test.utils import override_settings
from django.contrib.sessions.backends.db import SessionStore as DbStore
from django.contrib.sessions.backends.signed_cookies import SessionStore as CookieStore

COOKIE_SALT = "django.contrib.sessions.backends.signed_cookies"
UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
req = json.loads(sys.stdin.buffer.read().decode("utf-8"))

def micros(dt):
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - EPOCH) // datetime.timedelta(microseconds=1)

encoded = []
for c in req["encode"]:
    obj = json.loads(c["json"])
    js = json.dumps(obj, separators=(",", ":"))
    # TimestampSigner.timestamp() is b62_encode(int(time.time())): freeze time.time.
    frozen = c["ts"] + 0.75 if c["ts"] >= 0 else float(c["ts"])
    with override_settings(SECRET_KEY=c["key"], SECRET_KEY_FALLBACKS=[]), \
         mock.patch("time.time", return_value=frozen):
        if c["salt"] == "django.contrib.sessions.SessionStore":
            data = DbStore().encode(obj)
        elif c["salt"] == COOKIE_SALT:
            store = CookieStore()
            store.update(obj)
            store.save()
            data = store.session_key
        else:
            data = signing.dumps(obj, salt=c["salt"], compress=True)
    encoded.append({"json": js, "zlen": len(zlib.compress(js.encode("latin-1"))), "data": data})

expiry = []
for e in req["expiry"]:
    mod = EPOCH + datetime.timedelta(microseconds=e["modification"])
    with override_settings(SESSION_COOKIE_AGE=e["cookie_age"],
                           SESSION_EXPIRE_AT_BROWSER_CLOSE=e["browser_close"]):
        store = DbStore()
        store._session_cache = {} if e["absent"] else {"_session_expiry": e["expiry"]}
        kwargs = {"modification": mod}
        if not e["absent"]:
            kwargs["expiry"] = e["expiry"]
        age = store.get_expiry_age(**kwargs)
        date = store.get_expiry_date(**kwargs)
        expiry.append({
            "age": math.floor(age),
            "date": micros(date),
            "browser_close": store.get_expire_at_browser_close(),
        })

iso = [(EPOCH + datetime.timedelta(microseconds=us)).isoformat() for us in req["isoformat"]]

fromiso = []
for s in req["fromisoformat"]:
    try:
        fromiso.append(micros(datetime.datetime.fromisoformat(s)))
    except (ValueError, OverflowError):
        fromiso.append(None)

emit({"encode": encoded, "expiry": expiry, "isoformat": iso, "fromisoformat": fromiso})
"#;

/// Expiry questions for Django: (modification micros, stored value or absent, cookie age,
/// SESSION_EXPIRE_AT_BROWSER_CLOSE).
fn expiry_questions() -> Vec<(i64, Option<Value>, i64, bool)> {
    let m = T * 1_000_000 + 250_000;
    let mut q = vec![];
    for (v, close) in [
        (None, false),
        (None, true),
        (Some(json!(null)), true),
        (Some(json!(0)), false),
        (Some(json!(false)), false),
        (Some(json!(300)), true),
        (Some(json!(-5)), false),
        (Some(json!(1.9)), false),
        (Some(json!(-1.5)), false),
        (Some(json!(true)), false),
        (Some(json!("2025-06-16T15:06:40+00:00")), false),
        (Some(json!("2025-06-16T15:06:40.123456+00:00")), false),
        (Some(json!("2025-06-15T15:06:40.999999+00:00")), false),
        (Some(json!("2025-06-15T15:06:40.250000+00:00")), false),
        (Some(json!("2025-06-15T15:06:40.250001+00:00")), false),
        (Some(json!("2025-06-15T15:06:40.249999+00:00")), false),
        (Some(json!("2025-06-16T17:06:40+02:00")), false),
        (Some(json!("2025-06-16T15:06:40Z")), false),
        (Some(json!("9999-12-31T23:59:59.999999+00:00")), false),
        (Some(json!("0001-01-01T00:00:00+00:00")), false),
    ] {
        q.push((m, v, 1_209_600, close));
    }
    q.push((0, Some(json!(60)), 10, false));
    q.push((m, None, 0, false));
    q
}

fn isoformat_questions() -> Vec<i64> {
    vec![
        T * 1_000_000,
        T * 1_000_000 + 1,
        T * 1_000_000 + 123_456,
        T * 1_000_000 + 999_999,
        0,
        -1,
        -62_135_596_800_000_000, // 0001-01-01
        253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
        951_782_400_000_000,     // 2000-02-29
    ]
}

fn fromisoformat_questions() -> Vec<String> {
    let mut q: Vec<String> = [
        "2025-06-16T15:06:40+00:00",
        "2025-06-16T15:06:40.123456+00:00",
        "2025-06-16T15:06:40",
        "2025-06-16 15:06:40",
        "2025-06-16x15:06:40",
        "2025-06-16é15:06:40",
        "2025-06-16T15:06:40Z",
        "2025-06-16T15:06:40z",
        "2025-06-16T15:06:40-00:00",
        "2025-06-16T15:06:40+05:30",
        "2025-06-16T15:06:40-0800",
        "2025-06-16T15:06:40+01",
        "2025-06-16T15:06:40+01:00:30",
        "2025-06-16T15:06:40+01:00:30.5",
        "2025-06-16T15:06:40+01:99",
        "2025-06-16T15:06:40+23:59:59.999999",
        "2025-06-16T15:06:40+24:00",
        "2025-06-16T15:06:40-24:00",
        "2025-06-16T15",
        "2025-06-16T15:06",
        "2025-06-16T1506",
        "2025-06-16T150640",
        "2025-06-16T150640.5",
        "2025-06-16T15:06:40.5",
        "2025-06-16T15:06:40,5",
        "2025-06-16T15:06:40.1234567",
        "2025-06-16T15:06:40.1234567890123",
        "2025-06-16T15:06:40.",
        "2025-06-16T15:06:40.+01:00",
        "2025-06-16T15:06:40:5",
        "2025-06-16T1506401",
        "2025-06-16T15.5",
        "2025-06-16T15:06.5",
        "2025-06-16T15:0640",
        "2025-06-16T1506:40",
        "2025-06-16T15:06:40 ",
        "2025-06-16T15:06:40Zx",
        "2025-06-16T15:06:40+",
        "2025-06-16T15:06:40+1",
        "2025-06-16T15:06:40+123",
        "2025-06-16T",
        "2025-06-16",
        "20250616",
        "20250616T150640",
        "20250616T150640Z",
        "2025-06",
        "2025-6-16",
        "2025-W25",
        "2025-W25-1",
        "2025-W25-7T10:00",
        "2025W25",
        "2025W251",
        "2025W251T10",
        "2025W25110",
        "2025-W25-110:00",
        "2025-W53-1",
        "2026-W53-1",
        "2020-W53-7",
        "2025-W00-1",
        "2025-W01-0",
        "2025-W01-8",
        "2025-13-01",
        "2025-02-29",
        "2024-02-29T00:00:00",
        "0000-01-01",
        "0001-01-01T00:00:00",
        "9999-12-31T23:59:59.999999",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00+01:00",
        "2025-06-16T24:00:00",
        "2025-06-16T23:60:00",
        "2025-06-16T23:59:60",
        "",
        "2025",
        "garbage",
        "not-a-date-at-all",
        "2025-06-16T15:06:40+00:00 trailing",
        "+2025-06-16",
        "2025-06-16T15:06:40\u{0}",
        "２０２５-06-16",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // Everything isoformat writes must parse back the same in Python.
    q.extend(
        isoformat_questions()
            .into_iter()
            .map(|us| isoformat(to_datetime(Timestamp::from_micros(us)))),
    );
    q
}

struct Produced {
    cases: Vec<Case>,
    /// Per case: Python's JSON text, len(zlib.compress(json)), and Django's signed string.
    encoded: Vec<(String, usize, String)>,
    expiry: Vec<(i64, i64, bool)>,
    isoformat: Vec<String>,
    fromisoformat: Vec<Option<i64>>,
}

fn produced() -> &'static Produced {
    static PRODUCED: OnceLock<Produced> = OnceLock::new();
    PRODUCED.get_or_init(|| {
        let cases = corpus();
        let request = json!({
            "encode": cases.iter().map(|c| json!({
                "salt": c.salt,
                "key": c.key,
                "ts": c.ts,
                // serde_json's own writer (UTF-8, standard escapes), independent of ours.
                "json": serde_json::to_string(&c.value).unwrap(),
            })).collect::<Vec<_>>(),
            "expiry": expiry_questions().into_iter().map(|(m, v, age, close)| json!({
                "modification": m,
                "absent": v.is_none(),
                "expiry": v,
                "cookie_age": age,
                "browser_close": close,
            })).collect::<Vec<_>>(),
            "isoformat": isoformat_questions(),
            "fromisoformat": fromisoformat_questions(),
        });
        let out = run_django_with_input(DJANGO_PRODUCES, &[], &request.to_string());
        let out: Value =
            serde_json::from_str(out.trim()).expect("the script prints one JSON document");
        let encoded = out["encode"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["json"].as_str().unwrap().to_owned(),
                    e["zlen"].as_u64().unwrap() as usize,
                    e["data"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>();
        assert_eq!(encoded.len(), cases.len());
        let expiry = out["expiry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["age"].as_i64().unwrap(),
                    e["date"].as_i64().unwrap(),
                    e["browser_close"].as_bool().unwrap(),
                )
            })
            .collect();
        let isoformat = out["isoformat"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        let fromisoformat = out["fromisoformat"]
            .as_array()
            .unwrap()
            .iter()
            .map(Value::as_i64)
            .collect();
        Produced {
            cases,
            encoded,
            expiry,
            isoformat,
            fromisoformat,
        }
    })
}

#[test]
fn django_writes_the_same_json_text_as_our_writer() {
    let p = produced();
    let mut failures = vec![];
    for (case, (py_json, _, _)) in p.cases.iter().zip(&p.encoded) {
        let ours = to_python_json(&case.value).unwrap();
        if &ours != py_json {
            failures.push(format!(
                "{}:\n  ours   {ours}\n  python {py_json}",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} JSON mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// JSON up to this many bytes is never compressed by us (not worth the work), although
/// Django's zlib sometimes shrinks it.
const PASSTHROUGH_JSON_LEN: usize = 51;

#[test]
fn we_sign_like_django_and_only_compressed_bytes_differ() {
    // Since we compress with our own deflate, a compressed payload is another valid zlib stream
    // than Django's (that Django decodes ours to the same value is
    // `django_decodes_everything_we_sign`). Everything else stays byte for byte Django's:
    // uncompressed payloads entirely, and for every payload the timestamp and the signature
    // (re-signing Django's payload segment must give Django's exact string).
    let p = produced();
    let mut failures = vec![];
    let (mut identical, mut compressed) = (0, 0);
    for (case, (py_json, _, django)) in p.cases.iter().zip(&p.encoded) {
        let c = codec(case.salt, &case.key, &[]);
        let ours = c.encode(&object(&case.value), case.ts).unwrap();
        let django_payload = payload_segment(django).unwrap();
        if c.sign_payload(django_payload, case.ts) != *django {
            failures.push(format!(
                "{}: our signature of Django's payload differs",
                case.name
            ));
        }
        if !django.starts_with('.') && !ours.session_data.starts_with('.') {
            identical += 1;
            if ours.session_data != *django {
                failures.push(format!(
                    "{}:\n  ours   {}\n  django {django}",
                    case.name, ours.session_data
                ));
            }
        } else if django.starts_with('.') && py_json.len() > PASSTHROUGH_JSON_LEN {
            // Compressible sessions stay within 3 % of Django's size, or 12 bytes for small ones
            // (two ~170-byte cases of the corpus are 7 and 10 bytes longer).
            compressed += 1;
            let (ours_len, django_len) = (ours.session_data.len(), django.len());
            if ours_len * 100 > django_len * 103 && ours_len > django_len + 12 {
                failures.push(format!(
                    "{}: {ours_len} bytes against Django's {django_len}",
                    case.name
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        p.cases.len(),
        failures.join("\n")
    );
    assert!(p.cases.len() > 200, "the corpus is not trivially small");
    assert!(
        identical > 50 && compressed > 20,
        "{identical} uncompressed, {compressed} compressed cases"
    );
}

#[test]
fn compressed_sizes_stay_close_to_djangos() {
    // The whole corpus of compressible payloads: our total stays within 1 % of Django's.
    let p = produced();
    let (mut ours_total, mut django_total) = (0, 0);
    for (case, (py_json, _, django)) in p.cases.iter().zip(&p.encoded) {
        if django.starts_with('.') && py_json.len() > PASSTHROUGH_JSON_LEN {
            let ours = codec(case.salt, &case.key, &[])
                .encode(&object(&case.value), case.ts)
                .unwrap();
            ours_total += ours.session_data.len();
            django_total += django.len();
        }
    }
    eprintln!("compressible corpus: ours {ours_total} bytes, Django {django_total} bytes");
    assert!(django_total > 10_000, "{django_total}");
    assert!(
        ours_total * 100 <= django_total * 101,
        "{ours_total} vs {django_total}"
    );
}

#[test]
fn django_signs_the_worked_example_vector() {
    let p = produced();
    let i = p
        .cases
        .iter()
        .position(|c| c.name == "db/worked-example")
        .unwrap();
    assert_eq!(p.encoded[i].2, VECTOR);
}

#[test]
fn we_decode_everything_django_signs() {
    let p = produced();
    for (case, (_, _, django)) in p.cases.iter().zip(&p.encoded) {
        let c = codec(case.salt, &case.key, &[]);
        let max_age = (case.salt == SIGNED_COOKIES_SALT).then_some(COOKIE_AGE);
        let decoded = c
            .decode(django, max_age, case.ts)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(Value::Object(decoded), case.value, "{}", case.name);
    }
}

#[test]
fn compression_threshold_follows_djangos_rule_on_both_sides() {
    // Django compresses exactly when zlib saves at least 2 bytes; we apply the same rule to
    // our compressor's output (whose length differs from zlib's, so the two sides can decide
    // differently for the same payload: both are valid and decode the same).
    let p = produced();
    let (mut at_minus_1, mut at_minus_2) = (vec![], vec![]);
    let mut ours_compressed = 0;
    for (case, (py_json, zlen, django)) in p.cases.iter().zip(&p.encoded) {
        assert_eq!(
            django.starts_with('.'),
            *zlen < py_json.len() - 1,
            "{}",
            case.name
        );
        if *zlen + 1 == py_json.len() {
            at_minus_1.push(case.name.clone());
        }
        if *zlen + 2 == py_json.len() {
            at_minus_2.push(case.name.clone());
        }
        let ours = codec(case.salt, &case.key, &[])
            .encode(&object(&case.value), case.ts)
            .unwrap();
        if let Some(b64) = payload_segment(&ours.session_data)
            .unwrap()
            .strip_prefix('.')
        {
            ours_compressed += 1;
            let stream = URL_SAFE_NO_PAD.decode(b64).unwrap();
            assert!(
                stream.len() + 2 <= py_json.len(),
                "{}: compressed {} bytes of {} JSON",
                case.name,
                stream.len(),
                py_json.len()
            );
        }
    }
    assert!(
        !at_minus_1.is_empty(),
        "no corpus payload has len(zlib) == len(json) - 1"
    );
    assert!(
        !at_minus_2.is_empty(),
        "no corpus payload has len(zlib) == len(json) - 2"
    );
    assert!(ours_compressed > 20, "{ours_compressed}");
}

#[test]
fn key_rotation_accepts_django_data_signed_with_a_fallback_key() {
    // Django signs with the key that is now old; we rotated and list it as a fallback.
    let p = produced();
    let (case, (_, _, django)) = p
        .cases
        .iter()
        .zip(&p.encoded)
        .find(|(c, _)| c.name == "unicode-key/perf-payload")
        .unwrap();
    let rotated = codec(case.salt, NEW_KEY, &["unrelated", UNICODE_KEY]);
    assert_eq!(
        Value::Object(rotated.decode(django, None, case.ts).unwrap()),
        case.value
    );
    let not_listed = codec(case.salt, NEW_KEY, &["unrelated"]);
    assert_eq!(
        not_listed.decode(django, None, case.ts),
        Err(DecodeError::BadSignature)
    );
}

#[test]
fn expiry_age_and_date_match_django() {
    let p = produced();
    for ((m, v, age, close), (dj_age, dj_date, dj_close)) in
        expiry_questions().into_iter().zip(&p.expiry)
    {
        let modification = to_datetime(Timestamp::from_micros(m));
        let what = format!("modification {m}, expiry {v:?}, cookie age {age}");
        assert_eq!(
            expiry_age(modification, v.as_ref(), age),
            *dj_age,
            "age: {what}"
        );
        assert_eq!(
            sessionkit_codec::time::from_datetime(expiry_date(modification, v.as_ref(), age))
                .micros,
            *dj_date,
            "date: {what}"
        );
        assert_eq!(
            expires_at_browser_close(v.as_ref(), close),
            *dj_close,
            "browser close: {what}"
        );
    }
    assert_eq!(p.expiry.len(), expiry_questions().len());
}

#[test]
fn isoformat_matches_python() {
    let p = produced();
    for (us, py) in isoformat_questions().into_iter().zip(&p.isoformat) {
        assert_eq!(
            &isoformat(to_datetime(Timestamp::from_micros(us))),
            py,
            "{us}"
        );
    }
}

#[test]
fn parse_isoformat_matches_python_fromisoformat() {
    let p = produced();
    let mut failures = vec![];
    for (s, py) in fromisoformat_questions().into_iter().zip(&p.fromisoformat) {
        let ours = parse_isoformat(&s).map(|dt| dt.timestamp_micros());
        if ours != *py {
            failures.push(format!("{s:?}: ours {ours:?}, python {py:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(p.fromisoformat.iter().filter(|r| r.is_some()).count() > 30);
    assert!(p.fromisoformat.iter().filter(|r| r.is_none()).count() > 20);
}

// --------------------------------------------------------------------------------------------
// Direction 2: Django consumes
// --------------------------------------------------------------------------------------------

const DJANGO_CONSUMES: &str = r#"
import json, sys
from django.core import signing
from django.test.utils import override_settings
from django.contrib.sessions.backends.db import SessionStore as DbStore
from django.contrib.sessions.backends.signed_cookies import SessionStore as CookieStore

COOKIE_SALT = "django.contrib.sessions.backends.signed_cookies"
req = json.loads(sys.stdin.buffer.read().decode("utf-8"))
results = []
for c in req:
    r = {}
    with override_settings(SECRET_KEY=c["key"], SECRET_KEY_FALLBACKS=c["fallbacks"],
                           SESSION_COOKIE_AGE=c["cookie_age"]):
        max_age = c["cookie_age"] if c["salt"] == COOKIE_SALT else None
        try:
            r["loads"] = json.dumps(signing.loads(c["data"], salt=c["salt"], max_age=max_age))
        except signing.SignatureExpired:
            r["error"] = "expired"
        except signing.BadSignature:
            r["error"] = "bad_signature"
        except Exception as e:
            r["error"] = "malformed: " + type(e).__name__
        if c["salt"] == "django.contrib.sessions.SessionStore":
            r["session"] = json.dumps(DbStore().decode(c["data"]))
        elif c["salt"] == COOKIE_SALT:
            r["session"] = json.dumps(CookieStore(session_key=c["data"]).load())
    results.append(r)
emit(results)
"#;

/// What we ask Django to decode, and what we expect.
struct Signed {
    name: String,
    salt: &'static str,
    /// Django's SECRET_KEY and fallbacks while decoding.
    key: String,
    fallbacks: Vec<String>,
    data: String,
    /// `Some(value)` when Django must decode it to `value`, else the expected error.
    expect: Result<Value, &'static str>,
}

fn signed_by_us() -> Vec<Signed> {
    let mut out = vec![];
    for case in corpus() {
        let c = codec(case.salt, &case.key, &[]);
        let data = c
            .encode(&object(&case.value), case.ts)
            .unwrap()
            .session_data;
        out.push(Signed {
            name: case.name,
            salt: case.salt,
            key: case.key,
            fallbacks: case.fallbacks,
            data,
            expect: Ok(case.value),
        });
    }
    let payload = json!({"rotated": "ünïcode 😀", "n": 1.5});
    let old = codec(SESSION_STORE_SALT, OLD_KEY, &[])
        .encode(&object(&payload), T)
        .unwrap()
        .session_data;
    out.push(Signed {
        name: "rotation/old-key-in-fallbacks".into(),
        salt: SESSION_STORE_SALT,
        key: NEW_KEY.into(),
        fallbacks: vec!["unrelated".into(), OLD_KEY.into()],
        data: old.clone(),
        expect: Ok(payload.clone()),
    });
    out.push(Signed {
        name: "rotation/old-key-dropped".into(),
        salt: SESSION_STORE_SALT,
        key: NEW_KEY.into(),
        fallbacks: vec!["unrelated".into()],
        data: old,
        expect: Err("bad_signature"),
    });
    let cookie_old = codec(SIGNED_COOKIES_SALT, OLD_KEY, &[])
        .encode(&object(&payload), now_unix())
        .unwrap()
        .session_data;
    out.push(Signed {
        name: "rotation/cookie-old-key-in-fallbacks".into(),
        salt: SIGNED_COOKIES_SALT,
        key: NEW_KEY.into(),
        fallbacks: vec![OLD_KEY.into()],
        data: cookie_old,
        expect: Ok(payload.clone()),
    });
    let stale = codec(SIGNED_COOKIES_SALT, VECTOR_KEY, &[])
        .encode(&object(&payload), now_unix() - COOKIE_AGE - 600)
        .unwrap()
        .session_data;
    out.push(Signed {
        name: "cookie/older-than-max-age".into(),
        salt: SIGNED_COOKIES_SALT,
        key: VECTOR_KEY.into(),
        fallbacks: vec![],
        data: stale,
        expect: Err("expired"),
    });
    // A session-store string used as a cookie (another purpose's salt) and vice versa.
    out.push(Signed {
        name: "salt/db-data-as-cookie".into(),
        salt: SIGNED_COOKIES_SALT,
        key: VECTOR_KEY.into(),
        fallbacks: vec![],
        data: codec(SESSION_STORE_SALT, VECTOR_KEY, &[])
            .encode(&object(&payload), now_unix())
            .unwrap()
            .session_data,
        expect: Err("bad_signature"),
    });
    out.push(Signed {
        name: "salt/cookie-as-db-data".into(),
        salt: SESSION_STORE_SALT,
        key: VECTOR_KEY.into(),
        fallbacks: vec![],
        data: codec(SIGNED_COOKIES_SALT, VECTOR_KEY, &[])
            .encode(&object(&payload), T)
            .unwrap()
            .session_data,
        expect: Err("bad_signature"),
    });
    out
}

struct Consumed {
    signed: Vec<Signed>,
    results: Vec<Value>,
}

fn consumed() -> &'static Consumed {
    static CONSUMED: OnceLock<Consumed> = OnceLock::new();
    CONSUMED.get_or_init(|| {
        let signed = signed_by_us();
        let request: Vec<Value> = signed
            .iter()
            .map(|s| {
                json!({"salt": s.salt, "key": s.key, "fallbacks": s.fallbacks,
                       "data": s.data, "cookie_age": COOKIE_AGE})
            })
            .collect();
        let out = run_django_with_input(DJANGO_CONSUMES, &[], &Value::Array(request).to_string());
        // Each decoded value comes back as Python JSON text (a document of its own, so the
        // depth-127 payload stays within the parser's limit); parse it with our reader:
        // Python's float repr must round-trip exactly.
        let results: Vec<Value> = match serde_json::from_str(out.trim()).expect("one JSON document")
        {
            Value::Array(items) => items
                .into_iter()
                .map(|mut r| {
                    for field in ["loads", "session"] {
                        if let Some(text) = r.get(field).and_then(Value::as_str) {
                            let parsed = parse_python_json(text.as_bytes())
                                .unwrap_or_else(|e| panic!("Django's {field} JSON: {e}"));
                            r[field] = parsed;
                        }
                    }
                    r
                })
                .collect(),
            other => panic!("expected a list, got {other}"),
        };
        assert_eq!(results.len(), signed.len());
        Consumed { signed, results }
    })
}

#[test]
fn django_decodes_everything_we_sign() {
    let c = consumed();
    let mut checked = 0;
    for (s, r) in c.signed.iter().zip(&c.results) {
        let Ok(expected) = &s.expect else { continue };
        assert_eq!(
            r.get("error"),
            None,
            "{}: Django failed to load our data",
            s.name
        );
        assert_eq!(&r["loads"], expected, "{}: signing.loads", s.name);
        // Only the two built-in salts have a session store (a custom salt is signing-only).
        if s.salt == SESSION_STORE_SALT || s.salt == SIGNED_COOKIES_SALT {
            assert_eq!(
                &r["session"], expected,
                "{}: SessionStore decode/load",
                s.name
            );
            checked += 1;
        }
    }
    assert!(checked > 200, "only {checked} cases checked");
}

#[test]
fn django_rejects_what_we_reject() {
    let c = consumed();
    let mut checked = 0;
    for (s, r) in c.signed.iter().zip(&c.results) {
        let Err(expected) = s.expect else { continue };
        assert_eq!(r["error"], json!(expected), "{}", s.name);
        // The session stores turn every failure into an empty session.
        assert_eq!(r["session"], json!({}), "{}", s.name);
        // And we reject the same strings under the same keys.
        let fallbacks: Vec<&str> = s.fallbacks.iter().map(String::as_str).collect();
        let max_age = (s.salt == SIGNED_COOKIES_SALT).then_some(COOKIE_AGE);
        let ours = codec(s.salt, &s.key, &fallbacks).decode(&s.data, max_age, now_unix());
        let ours_kind = match ours {
            Err(DecodeError::BadSignature) => "bad_signature",
            Err(DecodeError::Expired { .. }) => "expired",
            other => panic!("{}: we returned {other:?}", s.name),
        };
        assert_eq!(ours_kind, expected, "{}", s.name);
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn our_own_decode_agrees_with_django_on_fallback_keys() {
    let c = consumed();
    for s in c.signed.iter().filter(|s| s.name.starts_with("rotation/")) {
        let fallbacks: Vec<&str> = s.fallbacks.iter().map(String::as_str).collect();
        let max_age = (s.salt == SIGNED_COOKIES_SALT).then_some(COOKIE_AGE);
        let ours = codec(s.salt, &s.key, &fallbacks).decode(&s.data, max_age, now_unix());
        match &s.expect {
            Ok(v) => assert_eq!(ours.map(Value::Object).as_ref(), Ok(v), "{}", s.name),
            Err(_) => assert_eq!(ours, Err(DecodeError::BadSignature), "{}", s.name),
        }
    }
}
