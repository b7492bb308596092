//! The `db` engine as the host sees it: its description, its settings, and a store opened
//! through the exported root module (the FFI types), on SQLite and, when
//! `SESSIONKIT_TEST_POSTGRES_URL` is set, on a fresh PostgreSQL database.

use serde_json::json;
use sessionkit_engine_db::{DbEngine, sessionkit_engine_root_module};
use sessionkit_sdk::{
    Capabilities, Engine, ErrorKind, KeyFormat, SessionRecord, SessionStore, SessionWrite,
    StoreBox, Timestamp,
    abi_stable::std_types::{ROption, RResult, RStr},
};
use sessionkit_sql::testing::{TempPostgresDatabase, postgres_url, random_suffix};

fn write(key: &str, data: &str, expire: Timestamp) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(key, data, expire),
        r#"{"_auth_user_id":"42"}"#,
    )
}

fn key() -> String {
    format!("{}{}", random_suffix(), random_suffix())
}

fn in_an_hour() -> Timestamp {
    Timestamp::from_secs(Timestamp::now().as_secs() + 3600)
}

fn open_ffi(settings: &serde_json::Value) -> Result<StoreBox, sessionkit_sdk::StoreError> {
    match sessionkit_engine_root_module().open()(RStr::from_str(&settings.to_string())) {
        RResult::ROk(store) => Ok(store),
        RResult::RErr(error) => Err(error),
    }
}

/// create, load, save, exists, delete, clear_expired and the unsupported account queries,
/// through the ABI-stable store.
fn exercise(store: &StoreBox) {
    let k = key();
    let expire = Timestamp::from_micros(in_an_hour().micros + 1);
    assert!(
        matches!(store.create(write(&k, "one", expire)), RResult::ROk(ref s) if s.as_str() == k)
    );
    let RResult::ROk(ROption::RSome(loaded)) = store.load(RStr::from_str(&k)) else {
        panic!("created session does not load")
    };
    assert_eq!(
        (loaded.session_data.as_str(), loaded.expire_date),
        ("one", expire)
    );
    assert!(
        matches!(store.create(write(&k, "two", expire)), RResult::RErr(e) if e.kind == ErrorKind::AlreadyExists)
    );
    assert!(store.save(write(&k, "two", expire)).is_ok());
    assert!(matches!(
        store.exists(RStr::from_str(&k)),
        RResult::ROk(true)
    ));
    assert!(store.delete(RStr::from_str(&k)).is_ok());
    assert!(
        matches!(store.save(write(&k, "three", expire)), RResult::RErr(e) if e.kind == ErrorKind::NotFound)
    );
    assert!(matches!(
        store.load(RStr::from_str(&k)),
        RResult::ROk(ROption::RNone)
    ));
    let old = key();
    assert!(
        store
            .create(write(&old, "old", Timestamp::from_secs(0)))
            .is_ok()
    );
    assert!(matches!(store.clear_expired(), RResult::ROk(1)));
    assert!(
        matches!(store.sessions_of_account(42), RResult::RErr(e) if e.kind == ErrorKind::Unsupported)
    );
    assert!(matches!(
        store.delete_sessions_of_account(42, ROption::RNone),
        RResult::RErr(e) if e.kind == ErrorKind::Unsupported
    ));
}

#[test]
fn info_describes_the_db_engine() {
    let info = sessionkit_engine_root_module().info()();
    assert_eq!(info.name.as_str(), "db");
    assert_eq!(info.salt.as_str(), "django.contrib.sessions.SessionStore");
    assert_eq!(
        info.capabilities,
        Capabilities::SERVER_SIDE_INVALIDATION
            | Capabilities::CLEAR_EXPIRED
            | Capabilities::PERSISTENT
            | Capabilities::SHARED_BETWEEN_PROCESSES
            | Capabilities::CONDITIONAL_SAVE
    );
    assert!(!info.capabilities.contains(Capabilities::ACCOUNT_INDEX));
    assert_eq!(info.key_format, KeyFormat::DjangoSessionKey);
    assert_eq!(info.version.as_str(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn sqlite_store_opened_through_the_root_module_follows_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let store = open_ffi(&json!({
        "SECRET_KEY": "x",
        "SESSION_DB_URL": format!("sqlite://{}", path.display()),
        "DATABASE_URL": "postgres://unused@127.0.0.1:1/never",
    }))
    .unwrap();
    exercise(&store);
    assert!(path.exists(), "SESSION_DB_URL names the file used");
}

#[test]
fn database_url_is_used_when_session_db_url_is_null() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fallback.sqlite3");
    let store = DbEngine::open(
        &json!({"SESSION_DB_URL": null, "DATABASE_URL": format!("sqlite://{}", path.display())})
            .to_string(),
    )
    .unwrap();
    let k = key();
    store.create(write(&k, "d", in_an_hour())).unwrap();
    assert!(path.exists());
    assert!(store.load(&k).unwrap().is_some());
}

#[test]
fn session_db_table_names_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite3");
    let store = DbEngine::open(
        &json!({
            "SESSION_DB_URL": format!("sqlite://{}", path.display()),
            "SESSION_DB_TABLE": "app_sessions",
        })
        .to_string(),
    )
    .unwrap();
    assert_eq!(store.sql().options().table, "app_sessions");
    let k = key();
    store.create(write(&k, "d", in_an_hour())).unwrap();
    assert!(store.exists(&k).unwrap());
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
fn postgres_store_opened_through_the_root_module_follows_the_contract() {
    let Some(base) = postgres_url() else { return };
    let db = TempPostgresDatabase::create(&base);
    let store = open_ffi(&json!({"SESSION_DB_URL": db.url()})).unwrap();
    exercise(&store);
    drop(store);
}
