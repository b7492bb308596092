//! The `db` engine and a real Django 5.2 app sharing one `django_session` table (SQLite file, and
//! PostgreSQL when `SESSIONKIT_TEST_POSTGRES_URL` is set): each reads the other's sessions with
//! the same data and expiry, both `clearsessions` agree on what is expired, and a
//! `SECRET_KEY_FALLBACKS` rotation works across both.
//!
//! Django migrates the table (`migrate sessions`), as a real deployment would; sessionkit uses
//! it as it is, through `sessionkit session …` and `sessionkit clearsessions`.

mod common;

use serde_json::{Value, json};

use common::{
    DEFAULT_COOKIE_AGE, DjangoPeer, Expiry, Sessionkit, assert_between, assert_same_session,
    now_micros, parse_time, seconds, sorted_keys, time_of,
};

/// The SECRET_KEY both sides share.
const KEY: &str = "django-insecure-shared-db-key-0001";

/// A database both Django and sessionkit use for one test.
struct Database {
    /// The URL sessionkit's `SESSION_DB_URL` takes (Django's DATABASES is derived from it).
    url: String,
    /// The directory holding the SQLite file.
    _dir: Option<tempfile::TempDir>,
    /// For PostgreSQL: the server URL, to drop the fresh database afterwards.
    server: Option<String>,
}

impl Database {
    /// A new SQLite file.
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("shared.sqlite3");
        Self {
            url: format!("sqlite://{}", path.display()),
            _dir: Some(dir),
            server: None,
        }
    }

    /// A fresh database on the PostgreSQL server, or `None` (after printing why) without one.
    fn postgres() -> Option<Self> {
        let server = sessionkit_testkit::postgres_url()?;
        let url = sessionkit_testkit::fresh_postgres_database(&server);
        Some(Self {
            url,
            _dir: None,
            server: Some(server),
        })
    }

    /// Django with the db session backend on this database (migrated), signing with
    /// `secret_key` and trusting `fallbacks`.
    fn django(&self, secret_key: &str, fallbacks: &[&str]) -> DjangoPeer {
        let settings = json!({
            "SECRET_KEY": secret_key,
            "SECRET_KEY_FALLBACKS": fallbacks,
            "SESSION_ENGINE": "django.contrib.sessions.backends.db",
        });
        let mut peer = DjangoPeer::start(settings, Some(&self.url));
        peer.call("migrate", Value::Null);
        peer
    }

    /// sessionkit with the db engine on this database.
    fn sessionkit(&self, secret_key: &str) -> Sessionkit {
        Sessionkit::new(secret_key)
            .with("SESSION_ENGINE", "db")
            .with("SESSION_DB_URL", &self.url)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            sessionkit_testkit::drop_postgres_database(server, &self.url);
        }
    }
}

/// Runs each check on a fresh SQLite file and on a fresh PostgreSQL database.
macro_rules! on_sqlite_and_postgres {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $check() { super::$check(&super::Database::sqlite()); })*
        }
        mod postgres {
            $(#[test] fn $check() {
                let Some(database) = super::Database::postgres() else { return };
                super::$check(&database);
            })*
        }
    };
}

on_sqlite_and_postgres!(
    django_sessions_show_in_sessionkit_with_the_same_data_and_expire_date,
    sessionkit_sessions_load_in_django_with_the_same_data_and_expiry,
    clearsessions_of_django_and_sessionkit_agree_on_what_is_expired,
    secret_key_fallbacks_rotate_across_django_and_sessionkit,
);

/// Session data with what tends to break: non-ASCII (astral, U+2028), nesting, numbers.
fn varied_sessions() -> Vec<(&'static str, Value, Expiry)> {
    vec![
        (
            "unicode, default expiry",
            json!({"greeting": "Grüße, Zoë → 東京 😀", "sep": "a\u{2028}b", "cart": {"items": [{"sku": "x-1", "qty": 2}, {"sku": "y", "qty": 1.5}], "note": null, "gift": true}}),
            Expiry::Default,
        ),
        (
            "nested, int expiry",
            json!({"n": 42, "deep": [[1, [2, [3, {"four": 4.25}]]]], "neg": -7}),
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

fn django_sessions_show_in_sessionkit_with_the_same_data_and_expire_date(db: &Database) {
    let mut django = db.django(KEY, &[]);
    let sessionkit = db.sessionkit(KEY);
    for (what, data, expiry) in varied_sessions() {
        let made = django.call(
            "create",
            json!({"data": data, "expiry": expiry.for_django()}),
        );
        let key = made["key"].as_str().expect("Django's key");
        let row = django.call("row", json!({"key": key}));
        let stored_expiry = time_of(&row["expire_date"]);

        let shown = sessionkit
            .show(key)
            .unwrap_or_else(|| panic!("{what}: sessionkit sees no session"));
        assert_eq!(shown.session_key, key, "{what}");
        assert_same_session(&shown.data, &expiry.stored(&data), what);
        let loaded = django.call("load", json!({"key": key}));
        assert_same_session(&shown.data, &loaded["data"], what);
        // To the microsecond: both read the column Django wrote.
        assert_eq!(shown.expire_date, stored_expiry, "{what}: expire_date");
        match expiry {
            Expiry::At(iso) => assert_eq!(shown.expire_date, parse_time(iso), "{what}"),
            Expiry::Seconds(age) => assert_eq!(loaded["expiry_age"], json!(age), "{what}"),
            Expiry::Default => {
                assert_eq!(loaded["expiry_age"], json!(DEFAULT_COOKIE_AGE), "{what}")
            }
        }
        // Django saved with get_expiry_date() as of the save, before it answered.
        assert!(shown.expire_date <= time_of(&made["expiry_date"]), "{what}");
    }

    // A session Django stored already expired is no session to either side.
    let made = django.call(
        "create",
        json!({"data": {"gone": true}, "expiry": "2020-01-01T00:00:00+00:00"}),
    );
    let key = made["key"]
        .as_str()
        .expect("Django returns the new key as a string");
    assert!(
        !django.call("row", json!({"key": key})).is_null(),
        "the expired row is stored"
    );
    assert_eq!(
        django.call("load", json!({"key": key}))["session_key"],
        Value::Null,
        "Django does not load it"
    );
    assert_eq!(sessionkit.show(key), None, "sessionkit does not show it");
    assert_eq!(sessionkit.show("nosuchsessionkey0000000000000000"), None);
}

fn sessionkit_sessions_load_in_django_with_the_same_data_and_expiry(db: &Database) {
    let mut django = db.django(KEY, &[]);
    let sessionkit = db.sessionkit(KEY);
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

        let row = django.call("row", json!({"key": key}));
        let stored_expiry = time_of(&row["expire_date"]);
        let shown = sessionkit
            .show(&key)
            .expect("sessionkit shows its own session");
        assert_eq!(
            shown.expire_date, stored_expiry,
            "{what}: both read the same expire_date"
        );
        let django_expiry = time_of(&loaded["expiry_date"]);
        match expiry {
            Expiry::At(iso) => {
                assert_eq!(
                    stored_expiry,
                    parse_time(iso),
                    "{what}: the row expires at the ISO time"
                );
                assert_eq!(
                    django_expiry, stored_expiry,
                    "{what}: Django's get_expiry_date()"
                );
            }
            Expiry::Seconds(_) | Expiry::Default => {
                let age = if let Expiry::Seconds(age) = expiry {
                    age
                } else {
                    DEFAULT_COOKIE_AGE
                };
                assert_between(
                    stored_expiry,
                    before + seconds(age),
                    after + seconds(age),
                    what,
                );
                assert_eq!(
                    loaded["expiry_age"],
                    json!(age),
                    "{what}: Django's get_expiry_age()"
                );
                // Django computes get_expiry_date() from its own (later) now.
                assert!(
                    stored_expiry <= django_expiry,
                    "{what}: {stored_expiry} > {django_expiry}"
                );
            }
        }
    }
}

/// Five sessions from Django and five from sessionkit: per side two expired (an ISO time in
/// the past, a negative number of seconds) and three live (default, seconds, future ISO).
/// Returns (live keys, expired keys).
fn mixed_sessions(django: &mut DjangoPeer, sessionkit: &Sessionkit) -> (Vec<String>, Vec<String>) {
    let kinds = [
        (false, Expiry::At("2020-01-01T00:00:00+00:00")),
        (false, Expiry::Seconds(-30)),
        (true, Expiry::Default),
        (true, Expiry::Seconds(3600)),
        (true, Expiry::At("2031-01-01T00:00:00.5+00:00")),
    ];
    let (mut live, mut expired) = (Vec::new(), Vec::new());
    for (i, (is_live, expiry)) in kinds.into_iter().enumerate() {
        let made = django.call(
            "create",
            json!({"data": {"by": "django", "i": i}, "expiry": expiry.for_django()}),
        );
        let from_django = made["key"]
            .as_str()
            .expect("Django returns the new key as a string")
            .to_owned();
        let from_sessionkit = expiry.create_with(sessionkit, &json!({"by": "sessionkit", "i": i}));
        let bucket = if is_live { &mut live } else { &mut expired };
        bucket.extend([from_django, from_sessionkit]);
    }
    (live, expired)
}

fn clearsessions_of_django_and_sessionkit_agree_on_what_is_expired(db: &Database) {
    let mut django = db.django(KEY, &[]);
    let sessionkit = db.sessionkit(KEY);

    // Loading already agrees on what is expired.
    let (live, expired) = mixed_sessions(&mut django, &sessionkit);
    for key in &live {
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
    for key in &expired {
        assert_eq!(
            django.call("load", json!({"key": key}))["session_key"],
            Value::Null,
            "Django: {key} expired"
        );
        assert_eq!(sessionkit.show(key), None, "sessionkit: {key} expired");
    }

    // Django's clearsessions removes exactly the expired rows of both.
    let mut all = [live.clone(), expired.clone()].concat();
    all.sort();
    assert_eq!(
        sorted_keys(&django.call("keys", Value::Null)),
        all,
        "every row is stored before clearing"
    );
    django.call("clearsessions", Value::Null);
    let mut survivors = live.clone();
    survivors.sort();
    assert_eq!(
        sorted_keys(&django.call("keys", Value::Null)),
        survivors,
        "Django's clearsessions"
    );

    // sessionkit's clearsessions on a fresh mix removes exactly its expired rows, and counts them.
    let (live_again, expired_again) = mixed_sessions(&mut django, &sessionkit);
    assert_eq!(
        sessionkit.clearsessions(),
        u64::try_from(expired_again.len()).expect("a count fits in u64"),
        "the count"
    );
    survivors.extend(live_again);
    survivors.sort();
    assert_eq!(
        sorted_keys(&django.call("keys", Value::Null)),
        survivors,
        "sessionkit's clearsessions"
    );
}

fn secret_key_fallbacks_rotate_across_django_and_sessionkit(db: &Database) {
    let (old, new) = ("rotation-old-key-A-0001", "rotation-new-key-B-0002");
    let mut django_old = db.django(old, &[]);
    let data = json!({"who": "django", "ü": "ß"});
    let django_key = django_old.call("create", json!({"data": data}))["key"]
        .as_str()
        .expect("Django returns the new key as a string")
        .to_owned();

    // sessionkit, rotated to B with A as a fallback, reads Django's A-signed session…
    let rotated = db
        .sessionkit(new)
        .with("SECRET_KEY_FALLBACKS", &json!([old]).to_string());
    assert_same_session(
        &rotated.show(&django_key).expect("live").data,
        &data,
        "A-signed, read with A as a fallback",
    );
    // …which B alone cannot verify: like Django, it shows an empty session.
    assert_eq!(
        db.sessionkit(new)
            .show(&django_key)
            .expect("the row is live")
            .data,
        json!({})
    );

    // sessionkit writes with B.
    let ours = json!({"who": "sessionkit", "list": [1, 2]});
    let sessionkit_key = rotated.create(&ours, None);
    let row = django_old.call("row", json!({"key": sessionkit_key}));
    let verify = |secret_key: &str, fallbacks: &[&str], django: &mut DjangoPeer| {
        django.call(
            "loads",
            json!({"data": row["session_data"], "salt": common::SESSION_STORE_SALT, "secret_key": secret_key, "fallbacks": fallbacks}),
        )
    };
    assert_eq!(
        verify(new, &[], &mut django_old)["value"],
        ours,
        "signed with the new SECRET_KEY"
    );

    // Django rotated the same way reads both.
    let mut django_rotated = db.django(new, &[old]);
    assert_same_session(
        &django_rotated.call("load", json!({"key": django_key}))["data"],
        &data,
        "Django B+[A], A-signed",
    );
    assert_same_session(
        &django_rotated.call("load", json!({"key": sessionkit_key}))["data"],
        &ours,
        "Django B+[A], B-signed",
    );
    // Django on A alone cannot read the B-signed one.
    let stale = django_old.call("load", json!({"key": sessionkit_key}));
    assert_eq!(stale["data"], json!({}), "Django on A alone: {stale}");

    // When the rotated Django saves its A-signed session it re-signs it with B, which sessionkit
    // reads without the fallback.
    django_rotated.call(
        "update",
        json!({"key": django_key, "data": {"resaved": true}}),
    );
    let shown = db.sessionkit(new).show(&django_key).expect("live");
    assert_same_session(
        &shown.data,
        &json!({"who": "django", "ü": "ß", "resaved": true}),
        "re-signed by Django",
    );
}
