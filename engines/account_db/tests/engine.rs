//! The `account_db` engine as the host sees it: its description, its settings, the table it
//! makes, and a store opened through the exported root module (the FFI types), on SQLite and,
//! when `SESSIONKIT_TEST_POSTGRES_URL` is set, on a fresh PostgreSQL database.
//!
//! Django's `CustomDatabaseSessionTests.test_extra_session_field` is pinned against the column
//! itself, read with the raw driver.

use std::{collections::BTreeSet, path::Path};

use serde_json::json;
use sessionkit_engine_account_db::{
    AccountDbConfig, AccountDbEngine, AccountDbStore, DEFAULT_TABLE, sessionkit_engine_root_module,
};
use sessionkit_sdk::{
    Capabilities, Engine, ErrorKind, KeyFormat, SessionRecord, SessionStore, SessionWrite,
    StoreBox, Timestamp,
    abi_stable::std_types::{ROption, RResult, RStr},
};
use sessionkit_sql::{
    DatabaseUrl, SqlStore, SqlStoreOptions,
    testing::{TempPostgresDatabase, postgres_url, random_suffix},
};

fn write(key: &str, data: &str, expire: Timestamp, session_json: &str) -> SessionWrite {
    SessionWrite::new(SessionRecord::new(key, data, expire), session_json)
}

/// A session logged in as `account`, as auth stores it (the id as a string).
fn logged_in(account: i64) -> String {
    json!({"_auth_user_id": account.to_string(), "_auth_user_backend": "django.contrib.auth.backends.ModelBackend"})
        .to_string()
}

fn key() -> String {
    format!("{}{}", random_suffix(), random_suffix())
}

fn in_an_hour() -> Timestamp {
    Timestamp::from_secs(Timestamp::now().as_secs() + 3600)
}

fn an_hour_ago() -> Timestamp {
    Timestamp::from_secs(Timestamp::now().as_secs() - 3600)
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn open_ffi(settings: &serde_json::Value) -> Result<StoreBox, sessionkit_sdk::StoreError> {
    match sessionkit_engine_root_module().open()(RStr::from_str(&settings.to_string())) {
        RResult::ROk(store) => Ok(store),
        RResult::RErr(error) => Err(error),
    }
}

/// The keys the FFI store lists for `account`.
fn listed(store: &StoreBox, account: i64) -> BTreeSet<String> {
    match store.sessions_of_account(account) {
        RResult::ROk(records) => records
            .into_iter()
            .map(|r| r.session_key.into_string())
            .collect(),
        RResult::RErr(e) => panic!("sessions_of_account({account}) failed: {e}"),
    }
}

fn set<const N: usize>(keys: [&str; N]) -> BTreeSet<String> {
    keys.into_iter().map(str::to_owned).collect()
}

/// The whole contract through the ABI-stable store, the account index included: each write
/// moves the session in the index, deletes and expiry take it out, and "log out my other
/// devices" leaves exactly the kept session.
fn exercise(store: &StoreBox) {
    let account = 4_200_000 + i64::from(random_suffix().as_bytes()[0]);
    let other_account = account + 1;
    let (a, b, c, other) = (key(), key(), key(), key());
    let expire = Timestamp::from_micros(in_an_hour().micros + 7);

    let created = store.create(write(&a, "one", expire, &logged_in(account)));
    assert!(matches!(created, RResult::ROk(ref s) if s.as_str() == a));
    let RResult::ROk(ROption::RSome(loaded)) = store.load(RStr::from_str(&a)) else {
        panic!("created session does not load")
    };
    assert_eq!(
        (loaded.session_data.as_str(), loaded.expire_date),
        ("one", expire)
    );
    assert!(matches!(
        store.create(write(&a, "two", expire, &logged_in(other_account))),
        RResult::RErr(e) if e.kind == ErrorKind::AlreadyExists
    ));
    assert_eq!(
        listed(store, account),
        set([&a]),
        "a failed create leaves the index alone"
    );

    assert!(
        store
            .create(write(&b, "b", expire, &logged_in(account)))
            .is_ok()
    );
    assert!(store.create(write(&c, "c", expire, "{}")).is_ok());
    assert!(
        store
            .create(write(&other, "o", expire, &logged_in(other_account)))
            .is_ok()
    );
    assert_eq!(listed(store, account), set([&a, &b]));

    // c logs in: the save puts it in the index.
    assert!(
        store
            .save(write(&c, "c2", expire, &logged_in(account)))
            .is_ok()
    );
    assert_eq!(listed(store, account), set([&a, &b, &c]));
    // b logs out without being deleted (its _auth_user_id is popped): out of the index.
    assert!(store.save(write(&b, "b2", expire, r#"{"x":1}"#)).is_ok());
    assert_eq!(listed(store, account), set([&a, &c]));
    // b logs in as someone else: it moves.
    assert!(
        store
            .save(write(&b, "b3", expire, &logged_in(other_account)))
            .is_ok()
    );
    assert_eq!(listed(store, other_account), set([&b, &other]));

    // "Log out my other devices" from a.
    assert!(matches!(
        store.delete_sessions_of_account(account, ROption::RSome(RStr::from_str(&a))),
        RResult::ROk(1)
    ));
    assert_eq!(listed(store, account), set([&a]));
    assert!(matches!(
        store.load(RStr::from_str(&c)),
        RResult::ROk(ROption::RNone)
    ));
    assert!(
        matches!(store.save(write(&c, "late", expire, &logged_in(account))), RResult::RErr(e) if e.kind == ErrorKind::NotFound),
        "a save after log-out-everywhere never resurrects the session"
    );
    assert_eq!(listed(store, other_account), set([&b, &other]));

    // Deleted sessions leave the index.
    assert!(store.delete(RStr::from_str(&a)).is_ok());
    assert!(listed(store, account).is_empty());

    // "Log out everywhere" for the other account.
    assert!(matches!(
        store.delete_sessions_of_account(other_account, ROption::RNone),
        RResult::ROk(2)
    ));
    assert!(listed(store, other_account).is_empty());
    assert!(matches!(
        store.exists(RStr::from_str(&other)),
        RResult::ROk(false)
    ));

    // Expired sessions are never listed; clear_expired removes them.
    let old = key();
    assert!(
        store
            .create(write(&old, "old", an_hour_ago(), &logged_in(account)))
            .is_ok()
    );
    assert!(listed(store, account).is_empty());
    assert!(matches!(store.clear_expired(), RResult::ROk(1)));
    assert!(matches!(
        store.exists(RStr::from_str(&old)),
        RResult::ROk(false)
    ));

    // Ids the `integer` column cannot hold match nothing (and fail nothing).
    assert!(listed(store, i64::from(i32::MAX) + 1).is_empty());
    assert!(matches!(
        store.delete_sessions_of_account(i64::MIN, ROption::RNone),
        RResult::ROk(0)
    ));
    assert!(matches!(store.delete(RStr::from_str(&c)), RResult::ROk(())));
}

#[test]
fn info_describes_the_account_db_engine() {
    let info = sessionkit_engine_root_module().info()();
    assert_eq!(info.name.as_str(), "account_db");
    assert_eq!(info.salt.as_str(), "django.contrib.sessions.SessionStore");
    assert_eq!(
        info.capabilities,
        Capabilities::SERVER_SIDE_INVALIDATION
            | Capabilities::CLEAR_EXPIRED
            | Capabilities::PERSISTENT
            | Capabilities::SHARED_BETWEEN_PROCESSES
            | Capabilities::ACCOUNT_INDEX
            | Capabilities::CONDITIONAL_SAVE
    );
    assert!(!info.capabilities.contains(Capabilities::EXPIRES_BY_ITSELF));
    assert_eq!(info.key_format, KeyFormat::DjangoSessionKey);
    assert_eq!(info.version.as_str(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn sqlite_store_opened_through_the_root_module_follows_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let store = open_ffi(&json!({
        "SECRET_KEY": "x",
        "SESSION_DB_URL": sqlite_url(&path),
        "DATABASE_URL": "postgres://unused@127.0.0.1:1/never",
    }))
    .unwrap();
    exercise(&store);
    assert!(path.exists(), "SESSION_DB_URL names the file used");
}

/// Django's `test_extra_session_field`: `_auth_user_id` 42 gives `account_id` 42; after it is
/// popped and the session saved, the column is NULL.
#[test]
fn account_id_column_follows_auth_user_id_like_djangos_custom_session() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let store =
        AccountDbEngine::open(&json!({"SESSION_DB_URL": sqlite_url(&path)}).to_string()).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let column = |key: &str| -> Option<i64> {
        raw.query_row(
            &format!(r#"SELECT "account_id" FROM "{DEFAULT_TABLE}" WHERE "session_key" = ?1"#),
            [key],
            |row| row.get(0),
        )
        .unwrap()
    };
    let k = key();
    store
        .create(write(&k, "d", in_an_hour(), r#"{"_auth_user_id":"42"}"#))
        .unwrap();
    assert_eq!(column(&k), Some(42));
    store
        .save(write(&k, "d", in_an_hour(), r#"{"_auth_user_id":"43"}"#))
        .unwrap();
    assert_eq!(column(&k), Some(43));
    store.save(write(&k, "d", in_an_hour(), "{}")).unwrap();
    assert_eq!(column(&k), None);
    store
        .save(write(
            &k,
            "d",
            in_an_hour(),
            r#"{"_auth_user_id":"not-a-number"}"#,
        ))
        .unwrap();
    assert_eq!(column(&k), None, "int() raising ValueError gives NULL");
}

#[test]
fn default_table_is_account_sessions_with_djangos_custom_session_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let store =
        AccountDbEngine::open(&json!({"SESSION_DB_URL": sqlite_url(&path)}).to_string()).unwrap();
    assert_eq!(store.sql().options().table, "account_sessions");
    assert!(store.sql().options().account_column);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mut columns = raw
        .prepare(r#"SELECT "name", "type", "notnull", "pk" FROM pragma_table_info('account_sessions') ORDER BY "cid""#)
        .unwrap();
    let columns: Vec<(String, String, bool, bool)> = columns
        // SQLite reports some declared types in upper case (`TEXT`); compare case-blind.
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, String>(1)?.to_lowercase(),
                r.get(2)?,
                r.get(3)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        columns,
        [
            ("session_key".into(), "varchar(40)".into(), true, true),
            ("session_data".into(), "text".into(), true, false),
            ("expire_date".into(), "datetime".into(), true, false),
            ("account_id".into(), "integer".into(), false, false),
        ]
    );
    // Listing by account goes through the account_id index, not a table scan.
    let plan: Vec<String> = raw
        .prepare(
            r#"EXPLAIN QUERY PLAN SELECT "session_key", "session_data", "expire_date" FROM "account_sessions" WHERE "account_id" = ?1 AND "expire_date" > ?2 ORDER BY "expire_date" DESC, "session_key""#,
        )
        .unwrap()
        .query_map([1_i64, 0_i64], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX account_sessions_account_id_")),
        "{plan:?}"
    );
}

#[test]
fn session_db_table_names_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite3");
    let store = AccountDbEngine::open(
        &json!({"SESSION_DB_URL": sqlite_url(&path), "SESSION_DB_TABLE": "acct_customsession"})
            .to_string(),
    )
    .unwrap();
    assert_eq!(store.sql().options().table, "acct_customsession");
    let k = key();
    store
        .create(write(&k, "d", in_an_hour(), &logged_in(7)))
        .unwrap();
    assert_eq!(store.sessions_of_account(7).unwrap().len(), 1);
}

#[test]
fn database_url_is_used_when_session_db_url_is_null() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fallback.sqlite3");
    let store = AccountDbEngine::open(
        &json!({"SESSION_DB_URL": null, "DATABASE_URL": sqlite_url(&path)}).to_string(),
    )
    .unwrap();
    let k = key();
    store
        .create(write(&k, "d", in_an_hour(), &logged_in(9)))
        .unwrap();
    assert!(path.exists());
    assert_eq!(store.sessions_of_account(9).unwrap()[0].session_key, k);
}

/// Pointing the engine at Django's stock `django_session` (no `account_id`) is refused: it
/// would advertise an index it cannot keep.
#[test]
fn a_table_without_account_id_is_refused_with_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stock.sqlite3");
    let url = sqlite_url(&path);
    drop(
        SqlStore::open(
            &DatabaseUrl::parse(&url).unwrap(),
            SqlStoreOptions::new("django_session"),
        )
        .unwrap(),
    );
    let error = open_ffi(&json!({"SESSION_DB_URL": url, "SESSION_DB_TABLE": "django_session"}))
        .err()
        .expect("the stock table has no account_id");
    assert_eq!(error.kind, ErrorKind::Config, "{error}");
    assert!(error.message.as_str().contains("django_session"), "{error}");
}

#[test]
fn a_sql_store_without_the_account_column_cannot_back_the_engine() {
    let inner = SqlStore::open(
        &DatabaseUrl::parse("sqlite::memory:").unwrap(),
        SqlStoreOptions::new("t"),
    )
    .unwrap();
    let error = AccountDbStore::from_sql(inner).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    let inner = SqlStore::open(
        &DatabaseUrl::parse("sqlite::memory:").unwrap(),
        SqlStoreOptions::new("t").with_account_column(),
    )
    .unwrap();
    assert!(AccountDbStore::from_sql(inner).is_ok());
}

#[test]
fn bad_settings_fail_open_with_a_config_error_naming_the_setting() {
    for (settings, name) in [
        (
            json!({"SESSION_DB_URL": "mysql://root@localhost/app?pool_size=0"}),
            "SESSION_DB_URL",
        ),
        (
            json!({"DATABASE_URL": "sqlite:relative.db"}),
            "DATABASE_URL",
        ),
        (
            json!({"SESSION_DB_TABLE": "sessions; --"}),
            "SESSION_DB_TABLE",
        ),
        (json!({"SESSION_DB_TABLE": 1}), "SESSION_DB_TABLE"),
        (
            json!({"SESSION_DB_URL": ["sqlite::memory:"]}),
            "SESSION_DB_URL",
        ),
    ] {
        let error = open_ffi(&settings).err().expect("open must fail");
        assert_eq!(error.kind, ErrorKind::Config, "{error}");
        assert!(error.message.as_str().contains(name), "{error}");
    }
}

#[test]
fn unreachable_postgres_fails_open_as_unavailable() {
    let error = open_ffi(&json!({"SESSION_DB_URL": "postgres://postgres@127.0.0.1:1/none"}))
        .err()
        .expect("nothing listens on port 1");
    assert_eq!(error.kind, ErrorKind::Unavailable, "{error}");
}

#[test]
fn config_debug_never_shows_the_password() {
    let config =
        AccountDbConfig::from_settings_json(r#"{"DATABASE_URL":"postgres://app:s3cret@db/app"}"#)
            .unwrap();
    assert!(!format!("{config:?}").contains("s3cret"));
}

#[test]
fn postgres_store_opened_through_the_root_module_follows_the_contract() {
    let Some(base) = postgres_url() else { return };
    let db = TempPostgresDatabase::create(&base);
    let store = open_ffi(&json!({"SESSION_DB_URL": db.url()})).unwrap();
    exercise(&store);

    // The column itself, as Django's test_extra_session_field reads it.
    let k = key();
    assert!(
        store
            .create(write(&k, "d", in_an_hour(), r#"{"_auth_user_id":"42"}"#))
            .is_ok()
    );
    let mut raw = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    let column = |raw: &mut postgres::Client| -> Option<i32> {
        raw.query_one(
            r#"SELECT "account_id" FROM "account_sessions" WHERE "session_key" = $1"#,
            &[&k],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(column(&mut raw), Some(42));
    assert!(store.save(write(&k, "d", in_an_hour(), "{}")).is_ok());
    assert_eq!(column(&mut raw), None);
    let indexed: i64 = raw
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'account_sessions' AND indexdef LIKE '%(account_id)%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(indexed, 1, "account_id is indexed");
    drop(raw);
    drop(store);
}
