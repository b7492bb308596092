//! The `file` engine and a real Django 5.2 app sharing one `SESSION_FILE_PATH`: each reads the
//! other's session files with the same data, expiry is judged as the engine documents it
//! (engines/file/README.md, "Expiry: how a file is judged"), and both `clearsessions` agree on
//! ISO and absent expiries — and differ, as documented, on an integer expiry older than its
//! file.

mod common;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use common::{
    DEFAULT_COOKIE_AGE, DjangoPeer, Expiry, Sessionkit, assert_between, assert_same_session,
    now_micros, parse_time, seconds, sorted_keys, time_of,
};

/// The SECRET_KEY both sides share.
const KEY: &str = "django-insecure-shared-file-key-0001";

/// A session directory both Django and sessionkit use for one test.
struct SharedDir {
    dir: tempfile::TempDir,
}

impl SharedDir {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary session directory"),
        }
    }

    /// Django with the file backend on this directory.
    fn django(&self) -> DjangoPeer {
        let settings = json!({
            "SECRET_KEY": KEY,
            "SESSION_ENGINE": "django.contrib.sessions.backends.file",
            "SESSION_FILE_PATH": self.dir.path(),
        });
        DjangoPeer::start(settings, None)
    }

    /// sessionkit with the file engine on this directory.
    fn sessionkit(&self) -> Sessionkit {
        Sessionkit::new(KEY)
            .with("SESSION_ENGINE", "file")
            .with("SESSION_FILE_PATH", &self.dir.path().display().to_string())
    }
}

fn varied_sessions() -> Vec<(&'static str, Value, Expiry)> {
    vec![
        (
            "unicode, default expiry",
            json!({"greeting": "Grüße, Zoë → 東京 😀", "sep": "a\u{2028}b", "cart": {"items": [{"sku": "x-1", "qty": 2}], "note": null}}),
            Expiry::Default,
        ),
        (
            "nested, int expiry",
            json!({"n": 42, "deep": [[1, [2, [3, {"f": 4.25}]]]]}),
            Expiry::Seconds(600),
        ),
        (
            "ISO expiry with microseconds",
            json!({"_auth_user_id": "7", "lang": "fr"}),
            Expiry::At("2031-02-03T04:05:06.789012+00:00"),
        ),
        (
            "ISO expiry on a whole second",
            json!({"flag": false}),
            Expiry::At("2030-12-31T23:59:59+00:00"),
        ),
        ("empty", json!({}), Expiry::Default),
    ]
}

/// The modification time of a session file as the engine reads it (nanoseconds truncated to
/// microseconds).
fn mtime(file: &Value) -> DateTime<Utc> {
    let nanos = file["mtime_ns"].as_i64().expect("mtime_ns");
    DateTime::from_timestamp_micros(nanos.div_euclid(1000)).expect("a representable mtime")
}

#[test]
fn django_files_show_in_sessionkit_with_the_same_data_and_expiry() {
    let shared = SharedDir::new();
    let mut django = shared.django();
    let sessionkit = shared.sessionkit();
    for (what, data, expiry) in varied_sessions() {
        let key = django.call(
            "create",
            json!({"data": data, "expiry": expiry.for_django()}),
        )["key"]
            .as_str()
            .expect("Django's key")
            .to_owned();
        let file = django.call("file", json!({"key": key}));
        let shown = sessionkit
            .show(&key)
            .unwrap_or_else(|| panic!("{what}: sessionkit sees no session"));
        assert_eq!(shown.session_key, key, "{what}");
        assert_same_session(&shown.data, &expiry.stored(&data), what);
        assert_same_session(&shown.data, &file["data"], what);
        match expiry {
            Expiry::Default => {
                assert_eq!(
                    shown.expire_date,
                    mtime(&file) + seconds(DEFAULT_COOKIE_AGE),
                    "{what}"
                );
                // Django judges `mtime + SESSION_COOKIE_AGE` from the float `st_mtime`, rounded
                // to the microsecond; the engine truncates the nanoseconds: at most 1 µs apart.
                let django_expiry = time_of(&file["django_expiry"]);
                let apart = (django_expiry - shown.expire_date).abs();
                assert!(
                    apart <= TimeDelta::microseconds(1),
                    "{what}: Django {django_expiry}, ours {}",
                    shown.expire_date
                );
            }
            Expiry::Seconds(n) => {
                // The engine's documented decision: seconds after the last save (the file's
                // mtime). Django's file backend takes the bare number as the remaining age.
                assert_eq!(shown.expire_date, mtime(&file) + seconds(n), "{what}");
                assert_eq!(
                    file["django_expiry"],
                    json!(n),
                    "{what}: Django's judgement is the number"
                );
            }
            Expiry::At(iso) => {
                assert_eq!(shown.expire_date, parse_time(iso), "{what}");
                assert_eq!(file["django_expiry"], json!(iso), "{what}");
            }
        }
    }

    // A file Django wrote already expired is no session, and the engine removes it as Django's
    // load would.
    let key = django.call(
        "create",
        json!({"data": {"gone": true}, "expiry": "2020-01-01T00:00:00+00:00"}),
    )["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !django.call("file", json!({"key": key})).is_null(),
        "the expired file is stored"
    );
    assert_eq!(sessionkit.show(&key), None);
    assert!(
        django.call("file", json!({"key": key})).is_null(),
        "the expired file is removed"
    );
}

#[test]
fn sessionkit_files_load_in_django_with_the_same_data_and_expiry() {
    let shared = SharedDir::new();
    let mut django = shared.django();
    let sessionkit = shared.sessionkit();
    for (what, data, expiry) in varied_sessions() {
        let before = now_micros();
        let key = expiry.create_with(&sessionkit, &data);
        let after = now_micros();

        let loaded = django.call("load", json!({"key": key}));
        assert_eq!(
            loaded["session_key"],
            json!(key),
            "{what}: Django loads the session"
        );
        assert_eq!(loaded["modified"], json!(false), "{what}");
        assert_same_session(&loaded["data"], &expiry.stored(&data), what);

        let file = django.call("file", json!({"key": key}));
        let shown = sessionkit
            .show(&key)
            .expect("sessionkit shows its own session");
        match expiry {
            Expiry::Default => {
                assert_between(mtime(&file), before, after, what);
                assert_eq!(
                    shown.expire_date,
                    mtime(&file) + seconds(DEFAULT_COOKIE_AGE),
                    "{what}"
                );
                // The engine writes whole microseconds, which the float st_mtime Django reads
                // rounds back to exactly.
                assert_eq!(time_of(&file["django_expiry"]), shown.expire_date, "{what}");
                assert_eq!(loaded["expiry_age"], json!(DEFAULT_COOKIE_AGE), "{what}");
            }
            Expiry::Seconds(n) => {
                assert_between(mtime(&file), before, after, what);
                assert_eq!(shown.expire_date, mtime(&file) + seconds(n), "{what}");
                assert_eq!(
                    loaded["expiry_age"],
                    json!(n),
                    "{what}: Django's get_expiry_age()"
                );
            }
            Expiry::At(iso) => {
                assert_eq!(shown.expire_date, parse_time(iso), "{what}");
                assert_eq!(
                    time_of(&loaded["expiry_date"]),
                    parse_time(iso),
                    "{what}: get_expiry_date()"
                );
            }
        }
    }
}

/// Six session files from Django and six from sessionkit: per side three expired (ISO in the
/// past; no expiry and a file older than SESSION_COOKIE_AGE; a negative number of seconds) and
/// three live (future ISO; no expiry, fresh; a positive number of seconds, fresh). Returns
/// (live keys, expired keys).
fn mixed_sessions(django: &mut DjangoPeer, sessionkit: &Sessionkit) -> (Vec<String>, Vec<String>) {
    let stale_mtime = Utc::now().timestamp() - DEFAULT_COOKIE_AGE - 60;
    let kinds = [
        (false, Expiry::At("2020-01-01T00:00:00+00:00"), false),
        (false, Expiry::Default, true),
        (false, Expiry::Seconds(-30), false),
        (true, Expiry::At("2031-01-01T00:00:00.5+00:00"), false),
        (true, Expiry::Default, false),
        (true, Expiry::Seconds(3600), false),
    ];
    let (mut live, mut expired) = (Vec::new(), Vec::new());
    for (i, (is_live, expiry, stale)) in kinds.into_iter().enumerate() {
        let made = django.call(
            "create",
            json!({"data": {"by": "django", "i": i}, "expiry": expiry.for_django()}),
        );
        let from_django = made["key"]
            .as_str()
            .expect("Django returns the new key as a string")
            .to_owned();
        let from_sessionkit = expiry.create_with(sessionkit, &json!({"by": "sessionkit", "i": i}));
        for key in [&from_django, &from_sessionkit] {
            if stale {
                django.call("set_mtime", json!({"key": key, "unix": stale_mtime}));
            }
        }
        let bucket = if is_live { &mut live } else { &mut expired };
        bucket.extend([from_django, from_sessionkit]);
    }
    (live, expired)
}

#[test]
fn clearsessions_of_django_and_sessionkit_agree_on_iso_absent_and_fresh_expiries() {
    let shared = SharedDir::new();
    let mut django = shared.django();
    let sessionkit = shared.sessionkit();

    let (live, expired) = mixed_sessions(&mut django, &sessionkit);
    let mut all = [live.clone(), expired].concat();
    all.sort();
    assert_eq!(
        sorted_keys(&django.call("keys", Value::Null)),
        all,
        "every file is there before clearing"
    );
    django.call("clearsessions", Value::Null);
    let mut survivors = live;
    survivors.sort();
    assert_eq!(
        sorted_keys(&django.call("keys", Value::Null)),
        survivors,
        "Django's clearsessions"
    );

    let (live_again, expired_again) = mixed_sessions(&mut django, &sessionkit);
    assert_eq!(
        sessionkit.clearsessions(),
        u64::try_from(expired_again.len()).unwrap(),
        "the count"
    );
    survivors.extend(live_again);
    survivors.sort();
    assert_eq!(
        sorted_keys(&django.call("keys", Value::Null)),
        survivors,
        "sessionkit's clearsessions"
    );
    for key in &survivors {
        let loaded = django.call("load", json!({"key": key}));
        assert_eq!(loaded["session_key"], json!(key), "Django: {key} is live");
        let shown = sessionkit
            .show(key)
            .unwrap_or_else(|| panic!("sessionkit: {key} is live"));
        assert!(
            loaded["data"]["by"].is_string(),
            "{key} holds its data: {loaded}"
        );
        assert_same_session(&shown.data, &loaded["data"], key);
    }
}

#[test]
fn an_integer_expiry_older_than_its_file_expires_in_sessionkit_but_never_in_django() {
    // engines/file/README.md: "Integer `_session_expiry` — decision: fixed": it counts from the
    // file's modification time. Django's file backend treats the number as a remaining age, so
    // such a file never expires there while the number is positive.
    let shared = SharedDir::new();
    let mut django = shared.django();
    let sessionkit = shared.sessionkit();
    let an_hour_ago = Utc::now().timestamp() - 3600;
    let mut keys = Vec::new();
    for by in ["django-1", "django-2"] {
        let made = django.call("create", json!({"data": {"by": by}, "expiry": 600}));
        keys.push(made["key"].as_str().unwrap().to_owned());
    }
    keys.push(sessionkit.create(&json!({"by": "sessionkit"}), Some(600)));
    for key in &keys {
        django.call("set_mtime", json!({"key": key, "unix": an_hour_ago}));
    }

    // Django: all three live, before and after its clearsessions.
    for key in &keys {
        let loaded = django.call("load", json!({"key": key}));
        assert_eq!(
            loaded["session_key"],
            json!(key),
            "Django still loads {key}"
        );
        assert_eq!(loaded["data"]["_session_expiry"], json!(600));
    }
    django.call("clearsessions", Value::Null);
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted_keys(&django.call("keys", Value::Null)),
        sorted,
        "Django's clearsessions keeps them"
    );

    // sessionkit: expired at mtime + 600 — show removes the first, clearsessions the other two.
    assert_eq!(sessionkit.show(&keys[0]), None);
    assert_eq!(sessionkit.clearsessions(), 2);
    assert_eq!(
        django.call("keys", Value::Null),
        json!([]),
        "sessionkit's clearsessions removed them"
    );
}
