//! sessionkit and a real Django 5.2 app (Django's MySQL backend, `mysqlclient`) sharing one
//! MariaDB/MySQL database, both ways, for the `db`, `cached_db` and `account_db` engines:
//! each side reads the sessions the other wrote with the same data and expiry, and both agree
//! on what `clearsessions` removes. Needs `SESSIONKIT_TEST_MYSQL_URL` and the Django venv; a
//! fresh database per test, dropped afterwards.
//!
//! Django migrates `django_session` itself (`migrate sessions`); the account table is created
//! by sessionkit with Django's DDL and then used by Django's documented custom session model
//! (tests/django/acct_store.py).

mod common;

use serde_json::{Value, json};

use common::{DjangoPeer, Expiry, Sessionkit, assert_same_session, sorted_keys, time_of};

/// The SECRET_KEY both sides share.
const KEY: &str = "django-insecure-shared-mysql-key-0001";

/// A fresh database on the MySQL server, dropped when this value is.
struct Database {
    server: String,
    url: String,
}

impl Database {
    /// A fresh database, or `None` (after printing why) without a server.
    fn fresh() -> Option<Self> {
        let server = sessionkit_testkit::mysql_url()?;
        let url = sessionkit_testkit::fresh_mysql_database(&server);
        Some(Self { server, url })
    }

    /// Django with `engine` (a `SESSION_ENGINE` module) on this database.
    fn django(&self, engine: &str) -> DjangoPeer {
        let settings = json!({"SECRET_KEY": KEY, "SESSION_ENGINE": engine});
        DjangoPeer::start(settings, Some(&self.url))
    }

    /// sessionkit with `engine` on this database.
    fn sessionkit(&self, engine: &str) -> Sessionkit {
        Sessionkit::new(KEY)
            .with("SESSION_ENGINE", engine)
            .with("SESSION_DB_URL", &self.url)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        sessionkit_testkit::drop_mysql_database(&self.server, &self.url);
    }
}

/// Sessions with what tends to break: non-ASCII (4-byte UTF-8 too), nesting, numbers.
fn samples() -> Vec<Value> {
    vec![
        json!({"greeting": "Grüße, Zoë → 東京 😀", "cart": {"items": [1, 2.5], "gift": true}}),
        json!({"n": 42, "deep": [[1, [2, {"four": 4.25}]]], "neg": -7}),
        json!({}),
    ]
}

/// Django writes, sessionkit reads; sessionkit writes, Django reads: same data, same
/// `expire_date` (to the microsecond, from the row).
fn both_ways(db: &Database, django_engine: &str, sessionkit: &Sessionkit, migrate: bool) {
    let mut django = db.django(django_engine);
    if migrate {
        django.call("migrate", Value::Null);
    }
    let engine = django_engine;
    for data in samples() {
        let made = django.call("create", json!({"data": data, "expiry": 600}));
        let key = made["key"].as_str().expect("Django's key");
        let shown = sessionkit
            .show(key)
            .unwrap_or_else(|| panic!("{engine}: sessionkit does not see Django's {data}"));
        assert_same_session(&shown.data, &Expiry::Seconds(600).stored(&data), engine);
        assert!(
            shown.expire_date <= time_of(&made["expiry_date"]),
            "{engine}"
        );

        let ours = sessionkit.create(&data, Some(900));
        let loaded = django.call("load", json!({"key": ours}));
        assert_eq!(
            loaded["session_key"],
            json!(ours),
            "{engine}: Django loads ours"
        );
        assert_eq!(loaded["modified"], json!(false), "{engine}");
        assert_same_session(&loaded["data"], &Expiry::Seconds(900).stored(&data), engine);
        assert_eq!(loaded["expiry_age"], json!(900), "{engine}");
        let shown = sessionkit
            .show(&ours)
            .expect("sessionkit shows its own session");
        // Django computes get_expiry_date() from its own (later) now.
        assert!(
            shown.expire_date <= time_of(&loaded["expiry_date"]),
            "{engine}"
        );
        if migrate {
            // django_session, as Django's ORM reads the row: the same expire_date, exactly.
            let row = django.call("row", json!({"key": ours}));
            assert_eq!(shown.expire_date, time_of(&row["expire_date"]), "{engine}");
            let row = django.call("row", json!({"key": key}));
            let theirs = sessionkit.show(key).expect("live");
            assert_eq!(theirs.expire_date, time_of(&row["expire_date"]), "{engine}");
        }
    }
}

#[test]
fn db_sessions_are_shared_with_django_both_ways() {
    let Some(db) = Database::fresh() else { return };
    both_ways(
        &db,
        "django.contrib.sessions.backends.db",
        &db.sessionkit("db"),
        true,
    );
}

#[test]
fn cached_db_sessions_are_shared_with_django_both_ways() {
    let Some(db) = Database::fresh() else { return };
    // Each side's cache is its own (locmem); the database is what they share.
    both_ways(
        &db,
        "django.contrib.sessions.backends.cached_db",
        &db.sessionkit("cached_db"),
        true,
    );
}

#[test]
fn account_db_table_is_shared_with_djangos_custom_session_model() {
    let Some(db) = Database::fresh() else { return };
    let sessionkit = db
        .sessionkit("account_db")
        .with("SESSION_DB_TABLE", "acct_customsession");
    // sessionkit creates the table (Django's DDL) on first use; Django's model then uses it.
    let ours = sessionkit.create(&json!({"_auth_user_id": "7", "k": "ü"}), Some(900));
    both_ways(&db, "acct_store", &sessionkit, false);
    let mut django = db.django("acct_store");
    let loaded = django.call("load", json!({"key": ours}));
    assert_eq!(loaded["data"]["_auth_user_id"], json!("7"));
    // Django's create_model_instance fills account_id, which sessionkit's account query reads.
    let theirs = django.call("create", json!({"data": {"_auth_user_id": "7"}}))["key"]
        .as_str()
        .expect("Django's key")
        .to_owned();
    let listed = sessionkit
        .run(&["session", "list", "--account", "7"], "")
        .expect_ok("session list --account 7");
    let mut keys: Vec<String> = listed
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("one JSON object per line");
            v["session_key"].as_str().expect("session_key").to_owned()
        })
        .collect();
    keys.sort();
    let mut expected = vec![ours, theirs];
    expected.sort();
    assert_eq!(keys, expected);
}

#[test]
fn clearsessions_of_django_and_sessionkit_agree_on_mysql() {
    let Some(db) = Database::fresh() else { return };
    let mut django = db.django("django.contrib.sessions.backends.db");
    django.call("migrate", Value::Null);
    let sessionkit = db.sessionkit("db");
    let live = [
        sessionkit.create(&json!({"by": "sk"}), Some(600)),
        django.call("create", json!({"data": {"by": "dj"}, "expiry": 600}))["key"]
            .as_str()
            .expect("key")
            .to_owned(),
    ];
    let expire_both = |django: &mut DjangoPeer| {
        sessionkit.create(&json!({"by": "sk"}), Some(-30));
        django.call(
            "create",
            json!({"data": {"by": "dj"}, "expiry": "2020-01-01T00:00:00+00:00"}),
        );
    };
    expire_both(&mut django);
    django.call("clearsessions", Value::Null);
    let mut survivors = live.to_vec();
    survivors.sort();
    assert_eq!(sorted_keys(&django.call("keys", Value::Null)), survivors);
    expire_both(&mut django);
    assert_eq!(sessionkit.clearsessions(), 2);
    assert_eq!(sorted_keys(&django.call("keys", Value::Null)), survivors);
}
