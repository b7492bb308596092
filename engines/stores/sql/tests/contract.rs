//! Every rule of the SQL store, on SQLite (a temporary file per case), on PostgreSQL (a
//! fresh database per run, a schema per case) when `SESSIONKIT_TEST_POSTGRES_URL` is set, and
//! on MySQL/MariaDB (a fresh database per case) when `SESSIONKIT_TEST_MYSQL_URL` is set.
//!
//! A custom harness (libtest-mimic) so the PostgreSQL database is created once and dropped
//! after the last case, and so this binary can be spawned as a child process by the
//! two-processes case (`SESSIONKIT_SQL_TEST_CHILD`).

// A test crate: its helpers unwrap like its tests do (a panic is the failure report), which
// clippy's allow-unwrap-in-tests cannot see outside `#[test]` functions.
#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Command, Stdio},
    sync::Arc,
    thread,
};

use chrono::{DateTime, Utc};
use libtest_mimic::{Arguments, Failed, Trial};
use postgres::NoTls;
use sessionkit_codec::ManualClock;
use sessionkit_sdk::{ErrorKind, SessionRecord, SessionStore, SessionWrite, StoreError, Timestamp};
use sessionkit_sql::{
    DatabaseUrl, SqlStore, SqlStoreOptions,
    testing::{
        MysqlClient, TempMysqlDatabase, TempPostgresDatabase, mysql_url, postgres_url,
        random_suffix,
    },
};
use tempfile::TempDir;

/// Set in a child process spawned by `two_processes_share_one_sqlite_file`.
const CHILD_VAR: &str = "SESSIONKIT_SQL_TEST_CHILD";

/// Django 5.2.19 `sqlmigrate sessions 0001`, SQLite.
const DJANGO_SQLITE_DDL: &str = r#"
CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" datetime NOT NULL);
CREATE INDEX "django_session_expire_date_a5c62663" ON "django_session" ("expire_date");
"#;

/// Django 5.2.19 `sqlmigrate sessions 0001`, PostgreSQL.
const DJANGO_POSTGRES_DDL: &str = r#"
CREATE TABLE "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" timestamp with time zone NOT NULL);
CREATE INDEX "django_session_session_key_c0390e0f_like" ON "django_session" ("session_key" varchar_pattern_ops);
CREATE INDEX "django_session_expire_date_a5c62663" ON "django_session" ("expire_date");
"#;

/// Django 5.2.20 `sqlmigrate sessions 0001`, MySQL backend on MariaDB 10.11.
const DJANGO_MYSQL_DDL: &str = r#"
CREATE TABLE `django_session` (`session_key` varchar(40) NOT NULL PRIMARY KEY, `session_data` longtext NOT NULL, `expire_date` datetime(6) NOT NULL);
CREATE INDEX `django_session_expire_date_a5c62663` ON `django_session` (`expire_date`);
"#;

/// The custom session model below, MySQL backend on MariaDB 10.11.
const DJANGO_MYSQL_CUSTOM_DDL: &str = r#"
CREATE TABLE `acct_customsession` (`session_key` varchar(40) NOT NULL PRIMARY KEY, `session_data` longtext NOT NULL, `expire_date` datetime(6) NOT NULL, `account_id` integer NULL);
CREATE INDEX `acct_customsession_expire_date_5c8cc0aa` ON `acct_customsession` (`expire_date`);
CREATE INDEX `acct_customsession_account_id_089004f6` ON `acct_customsession` (`account_id`);
"#;

/// Django 5.2.19 `sqlmigrate acct 0001` for the documented `CustomSession(AbstractBaseSession)`
/// with `account_id = models.IntegerField(null=True, db_index=True)`, SQLite.
const DJANGO_SQLITE_CUSTOM_DDL: &str = r#"
CREATE TABLE "acct_customsession" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" datetime NOT NULL, "account_id" integer NULL);
CREATE INDEX "acct_customsession_expire_date_5c8cc0aa" ON "acct_customsession" ("expire_date");
CREATE INDEX "acct_customsession_account_id_089004f6" ON "acct_customsession" ("account_id");
"#;

/// The same model, PostgreSQL.
const DJANGO_POSTGRES_CUSTOM_DDL: &str = r#"
CREATE TABLE "acct_customsession" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" timestamp with time zone NOT NULL, "account_id" integer NULL);
CREATE INDEX "acct_customsession_session_key_580c2e55_like" ON "acct_customsession" ("session_key" varchar_pattern_ops);
CREATE INDEX "acct_customsession_expire_date_5c8cc0aa" ON "acct_customsession" ("expire_date");
CREATE INDEX "acct_customsession_account_id_089004f6" ON "acct_customsession" ("account_id");
"#;

const HOUR: i64 = 3600;

fn main() {
    if let Ok(role) = std::env::var(CHILD_VAR) {
        std::process::exit(child(&role));
    }
    let args = Arguments::from_args();
    let postgres = postgres_url().map(|base| Arc::new(TempPostgresDatabase::create(&base)));
    let mysql: Option<Arc<str>> = mysql_url().map(Arc::from);
    let mut trials = Vec::new();
    for &(name, case) in CASES {
        if let Some(base) = &mysql {
            let base = Arc::clone(base);
            trials.push(Trial::test(format!("mysql::{name}"), move || {
                run(Backend::Mysql(base), name, case)
            }));
        }
        trials.push(Trial::test(format!("sqlite::{name}"), move || {
            run(Backend::Sqlite, name, case)
        }));
        if let Some(db) = &postgres {
            let db = Arc::clone(db);
            trials.push(Trial::test(format!("postgres::{name}"), move || {
                run(Backend::Postgres(db), name, case)
            }));
        }
    }
    for &(name, case) in SQLITE_CASES {
        trials.push(Trial::test(format!("sqlite::{name}"), move || {
            run(Backend::Sqlite, name, case)
        }));
    }
    if let Some(db) = &postgres {
        for &(name, case) in POSTGRES_CASES {
            let db = Arc::clone(db);
            trials.push(Trial::test(format!("postgres::{name}"), move || {
                run(Backend::Postgres(db), name, case)
            }));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    drop(postgres);
    conclusion.exit();
}

type Case = fn(&Ctx);

/// Cases run on every backend.
const CASES: &[(&str, Case)] = &[
    (
        "load_of_unknown_key_creates_nothing",
        load_of_unknown_key_creates_nothing,
    ),
    (
        "created_record_loads_back_exactly",
        created_record_loads_back_exactly,
    ),
    (
        "expire_date_round_trips_with_and_without_micros",
        expire_date_round_trips_with_and_without_micros,
    ),
    (
        "load_of_expired_record_gives_none",
        load_of_expired_record_gives_none,
    ),
    (
        "record_expiring_now_does_not_load_but_survives_clear",
        record_expiring_now_does_not_load_but_survives_clear,
    ),
    ("exists_ignores_expiry", exists_ignores_expiry),
    ("exists_is_false_after_delete", exists_is_false_after_delete),
    (
        "create_of_taken_key_is_already_exists_and_keeps_the_record",
        create_of_taken_key_is_already_exists_and_keeps_the_record,
    ),
    ("save_replaces_the_record", save_replaces_the_record),
    (
        "save_of_unknown_key_is_not_found_and_stores_nothing",
        save_of_unknown_key_is_not_found_and_stores_nothing,
    ),
    (
        "save_after_delete_does_not_resurrect",
        save_after_delete_does_not_resurrect,
    ),
    (
        "save_of_expired_uncleared_record_updates_it",
        save_of_expired_uncleared_record_updates_it,
    ),
    (
        "delete_of_unknown_key_succeeds",
        delete_of_unknown_key_succeeds,
    ),
    (
        "clear_expired_deletes_only_expired_rows_in_batches",
        clear_expired_deletes_only_expired_rows_in_batches,
    ),
    (
        "stored_expire_date_has_djangos_form",
        stored_expire_date_has_djangos_form,
    ),
    ("rows_written_by_django_load", rows_written_by_django_load),
    (
        "djangos_own_table_is_used_as_is",
        djangos_own_table_is_used_as_is,
    ),
    (
        "fresh_table_is_identical_to_djangos",
        fresh_table_is_identical_to_djangos,
    ),
    ("custom_table_name_is_used", custom_table_name_is_used),
    (
        "invalid_table_name_is_a_config_error",
        invalid_table_name_is_a_config_error,
    ),
    (
        "account_queries_need_the_account_column",
        account_queries_need_the_account_column,
    ),
    (
        "sessions_of_account_lists_live_sessions_once",
        sessions_of_account_lists_live_sessions_once,
    ),
    ("save_recomputes_the_account", save_recomputes_the_account),
    (
        "delete_sessions_of_account_keeps_one_and_spares_others",
        delete_sessions_of_account_keeps_one_and_spares_others,
    ),
    (
        "account_id_column_holds_djangos_value",
        account_id_column_holds_djangos_value,
    ),
    (
        "account_table_is_identical_to_djangos_custom_session",
        account_table_is_identical_to_djangos_custom_session,
    ),
    (
        "djangos_custom_session_table_is_used_as_is",
        djangos_custom_session_table_is_used_as_is,
    ),
    (
        "table_without_account_column_is_a_config_error",
        table_without_account_column_is_a_config_error,
    ),
    (
        "many_threads_lose_no_acknowledged_write",
        many_threads_lose_no_acknowledged_write,
    ),
    (
        "reopened_store_keeps_sessions",
        reopened_store_keeps_sessions,
    ),
];

/// Cases only SQLite has.
const SQLITE_CASES: &[(&str, Case)] = &[
    (
        "two_processes_share_one_sqlite_file",
        two_processes_share_one_sqlite_file,
    ),
    ("database_is_in_wal_mode", database_is_in_wal_mode),
    (
        "memory_url_keeps_sessions_for_the_store",
        memory_url_keeps_sessions_for_the_store,
    ),
    (
        "unreadable_expire_date_is_corrupted",
        unreadable_expire_date_is_corrupted,
    ),
    (
        "writer_blocked_past_busy_timeout_is_unavailable",
        writer_blocked_past_busy_timeout_is_unavailable,
    ),
    (
        "missing_directory_is_unavailable_at_open",
        missing_directory_is_unavailable_at_open,
    ),
];

/// Cases only PostgreSQL has.
const POSTGRES_CASES: &[(&str, Case)] = &[
    (
        "unreachable_server_is_unavailable",
        unreachable_server_is_unavailable,
    ),
    (
        "missing_database_is_a_config_error",
        missing_database_is_a_config_error,
    ),
    (
        "killed_connections_fail_once_then_reconnect",
        killed_connections_fail_once_then_reconnect,
    ),
];

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
enum Backend {
    Sqlite,
    Postgres(Arc<TempPostgresDatabase>),
    /// The base URL of a MySQL server; each case makes a database of its own.
    Mysql(Arc<str>),
}

/// One case's private database: a temporary SQLite file, or a PostgreSQL schema of its own
/// (selected through the URL's `search_path`), so every case can use `django_session`.
struct Ctx {
    backend: Backend,
    url: String,
    sqlite_path: Option<PathBuf>,
    schema: Option<String>,
    _dir: Option<TempDir>,
    _mysql: Option<TempMysqlDatabase>,
}

fn run(backend: Backend, name: &str, case: Case) -> Result<(), Failed> {
    let ctx = Ctx::new(backend, name);
    case(&ctx);
    Ok(())
}

impl Ctx {
    fn new(backend: Backend, case: &str) -> Self {
        match &backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("sessions.sqlite3");
                Self {
                    url: format!("sqlite://{}", path.display()),
                    backend,
                    sqlite_path: Some(path),
                    schema: None,
                    _dir: Some(dir),
                    _mysql: None,
                }
            }
            Backend::Postgres(db) => {
                let schema = format!(
                    "c_{}_{}",
                    &case[..case.len().min(30)],
                    &random_suffix()[..8]
                );
                let mut client = postgres::Client::connect(db.url(), NoTls).expect("connect");
                client
                    .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
                    .expect("schema");
                Self {
                    url: format!(
                        "{}?options=-c%20search_path%3D{schema}&application_name={schema}",
                        db.url()
                    ),
                    backend,
                    sqlite_path: None,
                    schema: Some(schema),
                    _dir: None,
                    _mysql: None,
                }
            }
            Backend::Mysql(base) => {
                let db = TempMysqlDatabase::create(base);
                Self {
                    url: db.url().to_owned(),
                    backend,
                    sqlite_path: None,
                    schema: None,
                    _dir: None,
                    _mysql: Some(db),
                }
            }
        }
    }

    fn is_sqlite(&self) -> bool {
        matches!(self.backend, Backend::Sqlite)
    }

    fn is_mysql(&self) -> bool {
        matches!(self.backend, Backend::Mysql(_))
    }

    fn db_url(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&self.url).expect("test URL parses")
    }

    fn try_open(&self, options: SqlStoreOptions) -> Result<SqlStore, StoreError> {
        SqlStore::open(&self.db_url(), options)
    }

    fn open(&self) -> SqlStore {
        self.try_open(SqlStoreOptions::default())
            .expect("open store")
    }

    fn open_accounts(&self) -> SqlStore {
        self.try_open(SqlStoreOptions::new("acct_customsession").with_account_column())
            .expect("open store with account column")
    }

    /// Runs raw SQL (several statements) outside the store.
    fn exec(&self, sql: &str) {
        match &self.backend {
            Backend::Sqlite => self.sqlite().execute_batch(sql).expect(sql),
            Backend::Postgres(_) => self.pg().batch_execute(sql).expect(sql),
            Backend::Mysql(_) => self.mysql().exec(sql),
        }
    }

    /// The first column of every row of a raw query, as text (NULL → `None`).
    fn strings(&self, sql: &str) -> Vec<Option<String>> {
        match &self.backend {
            // MySQL spells the text cast `CHAR`.
            Backend::Mysql(_) => self.mysql().strings(&sql.replace(" AS TEXT)", " AS CHAR)")),
            Backend::Sqlite => {
                let conn = self.sqlite();
                let mut stmt = conn.prepare(sql).expect(sql);
                stmt.query_map([], |row| row.get::<_, Option<String>>(0))
                    .expect(sql)
                    .collect::<Result<_, _>>()
                    .expect(sql)
            }
            Backend::Postgres(_) => self
                .pg()
                .query(sql, &[])
                .expect(sql)
                .iter()
                .map(|row| row.get::<_, Option<String>>(0))
                .collect(),
        }
    }

    fn count(&self, table: &str) -> i64 {
        let n = self.strings(&format!(r#"SELECT CAST(COUNT(*) AS TEXT) FROM "{table}""#));
        n[0].as_deref().and_then(|s| s.parse().ok()).expect("count")
    }

    /// The table's definition as the database reports it: columns, types, nullability,
    /// indexes (schema names removed, so tables made at different times compare equal).
    fn schema_of(&self, table: &str) -> Vec<String> {
        let rows = match &self.backend {
            Backend::Sqlite => self.strings(&format!(
                "SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master \
                 WHERE tbl_name = '{table}' ORDER BY name"
            )),
            Backend::Postgres(_) => {
                let mut rows = self.strings(&format!(
                    "SELECT column_name || ' ' || data_type || ' ' || \
                     coalesce(character_maximum_length::text, '-') || ' ' || is_nullable \
                     FROM information_schema.columns WHERE table_schema = current_schema() \
                     AND table_name = '{table}' ORDER BY ordinal_position"
                ));
                rows.extend(self.strings(&format!(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() \
                     AND tablename = '{table}' ORDER BY indexname"
                )));
                rows
            }
            Backend::Mysql(_) => {
                let mut rows = self.strings(&format!(
                    "SELECT CONCAT_WS(' ', COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY) \
                     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
                     AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION"
                ));
                rows.extend(self.strings(&format!(
                    "SELECT CONCAT_WS(' ', INDEX_NAME, COLUMN_NAME, NON_UNIQUE, INDEX_TYPE) \
                     FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
                     AND TABLE_NAME = '{table}' ORDER BY INDEX_NAME, SEQ_IN_INDEX"
                )));
                rows
            }
        };
        let schema_prefix = self.schema.as_ref().map(|s| format!("{s}."));
        rows.into_iter()
            .map(|r| {
                let r = r.unwrap_or_default();
                match &schema_prefix {
                    Some(prefix) => r.replace(prefix.as_str(), ""),
                    None => r,
                }
            })
            .collect()
    }

    fn django_ddl(&self) -> &'static str {
        if self.is_mysql() {
            DJANGO_MYSQL_DDL
        } else if self.is_sqlite() {
            DJANGO_SQLITE_DDL
        } else {
            DJANGO_POSTGRES_DDL
        }
    }

    fn django_custom_ddl(&self) -> &'static str {
        if self.is_mysql() {
            DJANGO_MYSQL_CUSTOM_DDL
        } else if self.is_sqlite() {
            DJANGO_SQLITE_CUSTOM_DDL
        } else {
            DJANGO_POSTGRES_CUSTOM_DDL
        }
    }

    /// A literal of `ts` for the `expire_date` column, in the form Django writes.
    fn expire_literal(&self, ts: Timestamp) -> String {
        let text = django_text(ts);
        // MySQL's datetime(6) holds naive UTC, as Django writes it.
        if self.is_sqlite() || self.is_mysql() {
            format!("'{text}'")
        } else {
            format!("'{text}+00:00'::timestamptz")
        }
    }

    /// Inserts `n` rows expiring at `expire` directly, in one transaction.
    fn bulk_insert(&self, table: &str, prefix: &str, n: usize, expire: Timestamp) {
        let literal = self.expire_literal(expire);
        let mut sql = String::from("BEGIN;");
        for i in 0..n {
            sql.push_str(&format!(
                r#"INSERT INTO "{table}" ("session_key", "session_data", "expire_date") VALUES ('{prefix}{i:0>24}', 'bulk', {literal});"#
            ));
        }
        sql.push_str("COMMIT;");
        self.exec(&sql);
    }

    fn sqlite(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.sqlite_path.as_ref().expect("sqlite case"))
            .expect("open raw sqlite connection");
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .expect("busy_timeout");
        conn
    }

    fn mysql(&self) -> MysqlClient {
        MysqlClient::connect(&self.url)
    }

    fn pg(&self) -> postgres::Client {
        postgres::Client::connect(&self.url, NoTls).expect("raw postgres connection")
    }
}

/// Django's SQLite text for `ts` (computed independently of the crate).
fn django_text(ts: Timestamp) -> String {
    let dt = DateTime::<Utc>::from_timestamp_micros(ts.micros).expect("in range");
    if ts.micros % 1_000_000 == 0 {
        dt.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        dt.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

/// A fresh valid session key (32 characters of [0-9a-f]).
fn new_key() -> String {
    format!("{}{}", random_suffix(), random_suffix())
}

fn secs_from_now(secs: i64) -> Timestamp {
    Timestamp::from_secs(Timestamp::now().as_secs() + secs)
}

fn write(key: &str, data: &str, expire: Timestamp) -> SessionWrite {
    write_json(key, data, expire, "{}")
}

fn write_json(key: &str, data: &str, expire: Timestamp, json: &str) -> SessionWrite {
    SessionWrite::new(SessionRecord::new(key, data, expire), json)
}

fn kind<T: std::fmt::Debug>(result: Result<T, StoreError>) -> ErrorKind {
    result.expect_err("expected an error").kind
}

fn keys(records: &[SessionRecord]) -> Vec<String> {
    let mut keys: Vec<String> = records.iter().map(|r| r.session_key.to_string()).collect();
    keys.sort();
    keys
}

// ---------------------------------------------------------------------------------------------
// Cases on every backend
// ---------------------------------------------------------------------------------------------

fn load_of_unknown_key_creates_nothing(ctx: &Ctx) {
    let store = ctx.open();
    let key = new_key();
    assert_eq!(store.load(&key).unwrap(), None);
    assert!(!store.exists(&key).unwrap());
    assert_eq!(ctx.count("django_session"), 0);
}

fn created_record_loads_back_exactly(ctx: &Ctx) {
    let store = ctx.open();
    let key = new_key();
    let expire = Timestamp::from_micros(secs_from_now(HOUR).micros + 123_456);
    let data = "eyJhIjoxfQ:1uQ2nK:Xq6Xg1Jq0r3W-8mYl2cTz3c5lW0K8C1gk0F3jv4k9xM";
    assert_eq!(store.create(write(&key, data, expire)).unwrap(), key);
    let loaded = store.load(&key).unwrap().expect("created record loads");
    assert_eq!(loaded.session_key.as_str(), key);
    assert_eq!(loaded.session_data.as_str(), data);
    assert_eq!(loaded.expire_date, expire);
}

fn expire_date_round_trips_with_and_without_micros(ctx: &Ctx) {
    let store = ctx.open();
    let whole = secs_from_now(HOUR);
    for expire in [
        whole,
        Timestamp::from_micros(whole.micros + 1),
        Timestamp::from_micros(whole.micros + 999_999),
    ] {
        let key = new_key();
        store.create(write(&key, "d", expire)).unwrap();
        assert_eq!(store.load(&key).unwrap().unwrap().expire_date, expire);
    }
}

fn load_of_expired_record_gives_none(ctx: &Ctx) {
    let store = ctx.open();
    let key = new_key();
    store.create(write(&key, "d", secs_from_now(-1))).unwrap();
    assert_eq!(store.load(&key).unwrap(), None);
    assert_eq!(
        ctx.count("django_session"),
        1,
        "load does not delete either"
    );
}

fn record_expiring_now_does_not_load_but_survives_clear(ctx: &Ctx) {
    let now = Timestamp::from_micros(secs_from_now(HOUR).micros + 500);
    let clock = ManualClock::at(now);
    let store = ctx
        .try_open(SqlStoreOptions::default().with_clock(Arc::new(clock)))
        .expect("open store");
    let (at_now, just_before, just_after) = (new_key(), new_key(), new_key());
    store.create(write(&at_now, "d", now)).unwrap();
    store
        .create(write(
            &just_before,
            "d",
            Timestamp::from_micros(now.micros - 1),
        ))
        .unwrap();
    store
        .create(write(
            &just_after,
            "d",
            Timestamp::from_micros(now.micros + 1),
        ))
        .unwrap();
    assert_eq!(
        store.load(&at_now).unwrap(),
        None,
        "expire_date == now is expired for load"
    );
    assert_eq!(store.load(&just_before).unwrap(), None);
    assert!(store.load(&just_after).unwrap().is_some());
    assert_eq!(
        store.clear_expired().unwrap(),
        1,
        "only expire_date < now is cleared"
    );
    assert!(store.exists(&at_now).unwrap());
    assert!(!store.exists(&just_before).unwrap());
}

fn exists_ignores_expiry(ctx: &Ctx) {
    let store = ctx.open();
    let key = new_key();
    store
        .create(write(&key, "d", secs_from_now(-HOUR)))
        .unwrap();
    assert!(store.exists(&key).unwrap());
}

fn exists_is_false_after_delete(ctx: &Ctx) {
    let store = ctx.open();
    let key = new_key();
    store.create(write(&key, "d", secs_from_now(HOUR))).unwrap();
    assert!(store.exists(&key).unwrap());
    store.delete(&key).unwrap();
    assert!(!store.exists(&key).unwrap());
    assert_eq!(store.load(&key).unwrap(), None);
}

fn create_of_taken_key_is_already_exists_and_keeps_the_record(ctx: &Ctx) {
    let store = ctx.open();
    let key = new_key();
    let expire = secs_from_now(HOUR);
    store.create(write(&key, "first", expire)).unwrap();
    let err = store
        .create(write(&key, "second", secs_from_now(2 * HOUR)))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists, "{err}");
    assert!(
        !err.message.as_str().contains(&key),
        "message must not carry the whole key: {err}"
    );
    let kept = store.load(&key).unwrap().unwrap();
    assert_eq!(
        (kept.session_data.as_str(), kept.expire_date),
        ("first", expire)
    );
    // An expired but uncleared row still takes the key (Django's INSERT fails the same way).
    let old = new_key();
    store
        .create(write(&old, "old", secs_from_now(-HOUR)))
        .unwrap();
    assert_eq!(
        kind(store.create(write(&old, "new", expire))),
        ErrorKind::AlreadyExists
    );
}

fn save_replaces_the_record(ctx: &Ctx) {
    let store = ctx.open();
    let key = new_key();
    store
        .create(write(&key, "first", secs_from_now(HOUR)))
        .unwrap();
    let later = Timestamp::from_micros(secs_from_now(2 * HOUR).micros + 7);
    assert_eq!(store.save(write(&key, "second", later)).unwrap(), key);
    let loaded = store.load(&key).unwrap().unwrap();
    assert_eq!(
        (loaded.session_data.as_str(), loaded.expire_date),
        ("second", later)
    );
    assert_eq!(ctx.count("django_session"), 1);
}

fn save_of_unknown_key_is_not_found_and_stores_nothing(ctx: &Ctx) {
    let store = ctx.open();
    let key = new_key();
    assert_eq!(
        kind(store.save(write(&key, "d", secs_from_now(HOUR)))),
        ErrorKind::NotFound
    );
    assert!(!store.exists(&key).unwrap());
    assert_eq!(ctx.count("django_session"), 0);
}

fn save_after_delete_does_not_resurrect(ctx: &Ctx) {
    let store = ctx.open();
    let key = new_key();
    store
        .create(write(&key, "logged in", secs_from_now(HOUR)))
        .unwrap();
    store.delete(&key).unwrap();
    assert_eq!(
        kind(store.save(write(&key, "stale", secs_from_now(HOUR)))),
        ErrorKind::NotFound
    );
    assert_eq!(store.load(&key).unwrap(), None);
    assert!(!store.exists(&key).unwrap());
}

fn save_of_expired_uncleared_record_updates_it(ctx: &Ctx) {
    let store = ctx.open();
    let key = new_key();
    store
        .create(write(&key, "old", secs_from_now(-HOUR)))
        .unwrap();
    store.save(write(&key, "new", secs_from_now(HOUR))).unwrap();
    assert_eq!(
        store.load(&key).unwrap().unwrap().session_data.as_str(),
        "new"
    );
}

fn delete_of_unknown_key_succeeds(ctx: &Ctx) {
    let store = ctx.open();
    store.delete(&new_key()).unwrap();
    store.delete(&new_key()).unwrap();
}

fn clear_expired_deletes_only_expired_rows_in_batches(ctx: &Ctx) {
    let store = ctx.open();
    // More than two batches of 1000, so the batch loop runs to its end.
    ctx.bulk_insert("django_session", "expired", 2_345, secs_from_now(-HOUR));
    let live: Vec<String> = (0..5).map(|_| new_key()).collect();
    for key in &live {
        store
            .create(write(key, "live", secs_from_now(HOUR)))
            .unwrap();
    }
    assert_eq!(store.clear_expired().unwrap(), 2_345);
    assert_eq!(ctx.count("django_session"), 5);
    for key in &live {
        assert!(store.load(key).unwrap().is_some());
    }
    assert_eq!(store.clear_expired().unwrap(), 0);
}

fn stored_expire_date_has_djangos_form(ctx: &Ctx) {
    let store = ctx.open();
    // 2030-01-02 03:04:05 UTC.
    let whole = Timestamp::from_secs(1_893_553_445);
    let (a, b) = (new_key(), new_key());
    store.create(write(&a, "d", whole)).unwrap();
    store
        .create(write(&b, "d", Timestamp::from_micros(whole.micros + 123)))
        .unwrap();
    let column = if ctx.is_mysql() {
        // MySQL renders datetime(6) with all six digits; the column type is Django's.
        "CONCAT(REPLACE(CAST(expire_date AS CHAR), '.000000', ''), ' ', (SELECT COLUMN_TYPE \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND \
         TABLE_NAME = 'django_session' AND COLUMN_NAME = 'expire_date'))"
    } else if ctx.is_sqlite() {
        // Stored as text, exactly as Django's SQLite backend stores it.
        "expire_date || ' ' || typeof(expire_date)"
    } else {
        "(expire_date AT TIME ZONE 'UTC')::text || ' ' || pg_typeof(expire_date)::text"
    };
    let kind = if ctx.is_mysql() {
        "datetime(6)"
    } else if ctx.is_sqlite() {
        "text"
    } else {
        "timestamp with time zone"
    };
    let mut rows = ctx.strings(&format!(
        "SELECT {column} FROM django_session ORDER BY session_key = '{a}' DESC"
    ));
    rows.iter_mut()
        .for_each(|r| *r = r.take().map(|s| s.replace('T', " ")));
    assert_eq!(
        rows,
        [
            Some(format!("2030-01-02 03:04:05 {kind}")),
            Some(format!("2030-01-02 03:04:05.000123 {kind}"))
        ]
    );
}

fn rows_written_by_django_load(ctx: &Ctx) {
    let store = ctx.open();
    let (live, micro, expired) = (new_key(), new_key(), new_key());
    let whole = secs_from_now(HOUR);
    let with_micros = Timestamp::from_micros(whole.micros + 42);
    for (key, expire) in [
        (&live, whole),
        (&micro, with_micros),
        (&expired, secs_from_now(-HOUR)),
    ] {
        ctx.exec(&format!(
            "INSERT INTO django_session (session_key, session_data, expire_date) \
             VALUES ('{key}', 'django-data', {})",
            ctx.expire_literal(expire)
        ));
    }
    assert_eq!(store.load(&live).unwrap().unwrap().expire_date, whole);
    assert_eq!(
        store.load(&micro).unwrap().unwrap().expire_date,
        with_micros
    );
    assert_eq!(
        store.load(&micro).unwrap().unwrap().session_data.as_str(),
        "django-data"
    );
    assert_eq!(store.load(&expired).unwrap(), None);
    assert_eq!(store.clear_expired().unwrap(), 1);
}

fn djangos_own_table_is_used_as_is(ctx: &Ctx) {
    ctx.exec(ctx.django_ddl());
    let before = ctx.schema_of("django_session");
    let store = ctx.open();
    assert_eq!(
        ctx.schema_of("django_session"),
        before,
        "the store altered Django's table"
    );
    let key = new_key();
    store.create(write(&key, "d", secs_from_now(HOUR))).unwrap();
    store.save(write(&key, "e", secs_from_now(HOUR))).unwrap();
    assert_eq!(
        store.load(&key).unwrap().unwrap().session_data.as_str(),
        "e"
    );
    drop(store);
    ctx.open();
    assert_eq!(ctx.schema_of("django_session"), before);
}

fn fresh_table_is_identical_to_djangos(ctx: &Ctx) {
    drop(ctx.open());
    let ours = ctx.schema_of("django_session");
    assert!(!ours.is_empty());
    ctx.exec("DROP TABLE django_session");
    ctx.exec(ctx.django_ddl());
    assert_eq!(ours, ctx.schema_of("django_session"));
}

fn custom_table_name_is_used(ctx: &Ctx) {
    let store = ctx.try_open(SqlStoreOptions::new("my_sessions")).unwrap();
    let key = new_key();
    store.create(write(&key, "d", secs_from_now(HOUR))).unwrap();
    assert_eq!(ctx.count("my_sessions"), 1);
    let schema = ctx.schema_of("my_sessions").join("\n");
    // Django's index name formula for the custom table: md5("my_sessions" + "expire_date").
    assert!(schema.contains("my_sessions_expire_date_"), "{schema}");
}

fn invalid_table_name_is_a_config_error(ctx: &Ctx) {
    for table in [
        "sessions; DROP TABLE x",
        "1sessions",
        "",
        "public.sessions",
        "sess\"ions",
    ] {
        assert_eq!(
            kind(ctx.try_open(SqlStoreOptions::new(table))),
            ErrorKind::Config,
            "{table:?}"
        );
    }
}

fn account_queries_need_the_account_column(ctx: &Ctx) {
    let store = ctx.open();
    assert_eq!(kind(store.sessions_of_account(42)), ErrorKind::Unsupported);
    assert_eq!(
        kind(store.delete_sessions_of_account(42, None)),
        ErrorKind::Unsupported
    );
}

fn sessions_of_account_lists_live_sessions_once(ctx: &Ctx) {
    let store = ctx.open_accounts();
    let hour = secs_from_now(HOUR);
    let (a1, a2, b, anon, expired) = (new_key(), new_key(), new_key(), new_key(), new_key());
    store
        .create(write_json(
            &a1,
            "a1",
            hour,
            r#"{"_auth_user_id":"42","x":1}"#,
        ))
        .unwrap();
    store
        .create(write_json(&a2, "a2", hour, r#"{"_auth_user_id":42}"#))
        .unwrap();
    store
        .create(write_json(&b, "b", hour, r#"{"_auth_user_id":"43"}"#))
        .unwrap();
    store
        .create(write_json(&anon, "anon", hour, r#"{"cart":[1]}"#))
        .unwrap();
    store
        .create(write_json(
            &expired,
            "e",
            secs_from_now(-HOUR),
            r#"{"_auth_user_id":"42"}"#,
        ))
        .unwrap();
    let mut expected = vec![a1.clone(), a2.clone()];
    expected.sort();
    assert_eq!(keys(&store.sessions_of_account(42).unwrap()), expected);
    assert_eq!(keys(&store.sessions_of_account(43).unwrap()), [b]);
    assert!(store.sessions_of_account(44).unwrap().is_empty());
    assert!(
        store
            .sessions_of_account(i64::from(i32::MAX) + 1)
            .unwrap()
            .is_empty()
    );
    let a1_record = store
        .sessions_of_account(42)
        .unwrap()
        .into_iter()
        .find(|r| r.session_key == a1.as_str());
    assert_eq!(a1_record.unwrap().session_data.as_str(), "a1");
    store.delete(&a2).unwrap();
    assert_eq!(keys(&store.sessions_of_account(42).unwrap()), [a1]);
}

fn save_recomputes_the_account(ctx: &Ctx) {
    let store = ctx.open_accounts();
    let hour = secs_from_now(HOUR);
    let key = new_key();
    store
        .create(write_json(&key, "d", hour, r#"{"_auth_user_id":"42"}"#))
        .unwrap();
    store
        .save(write_json(&key, "d", hour, r#"{"_auth_user_id":"43"}"#))
        .unwrap();
    assert!(store.sessions_of_account(42).unwrap().is_empty());
    assert_eq!(
        keys(&store.sessions_of_account(43).unwrap()),
        [key.as_str()]
    );
    store
        .save(write_json(&key, "d", hour, r#"{"theme":"dark"}"#))
        .unwrap();
    assert!(store.sessions_of_account(43).unwrap().is_empty());
}

fn delete_sessions_of_account_keeps_one_and_spares_others(ctx: &Ctx) {
    let store = ctx.open_accounts();
    let hour = secs_from_now(HOUR);
    let mine: Vec<String> = (0..3).map(|_| new_key()).collect();
    for key in &mine {
        store
            .create(write_json(key, "d", hour, r#"{"_auth_user_id":"7"}"#))
            .unwrap();
    }
    let old = new_key();
    store
        .create(write_json(
            &old,
            "d",
            secs_from_now(-HOUR),
            r#"{"_auth_user_id":"7"}"#,
        ))
        .unwrap();
    let other = new_key();
    store
        .create(write_json(&other, "d", hour, r#"{"_auth_user_id":"8"}"#))
        .unwrap();
    assert_eq!(
        store.delete_sessions_of_account(7, Some(&mine[0])).unwrap(),
        3
    );
    assert_eq!(
        keys(&store.sessions_of_account(7).unwrap()),
        [mine[0].as_str()]
    );
    assert!(
        !store.exists(&old).unwrap(),
        "expired sessions of the account go too"
    );
    assert_eq!(
        keys(&store.sessions_of_account(8).unwrap()),
        [other.as_str()]
    );
    assert_eq!(store.delete_sessions_of_account(7, None).unwrap(), 1);
    assert!(store.sessions_of_account(7).unwrap().is_empty());
    assert!(store.exists(&other).unwrap());
}

fn account_id_column_holds_djangos_value(ctx: &Ctx) {
    let store = ctx.open_accounts();
    let hour = secs_from_now(HOUR);
    let cases = [
        (r#"{"_auth_user_id":"42"}"#, Some("42")),
        (r#"{"_auth_user_id":17}"#, Some("17")),
        (r#"{"_auth_user_id":"abc"}"#, None),
        (r#"{"_auth_user_id":null}"#, None),
        (r#"{}"#, None),
        (r#"{"_auth_user_id":"99999999999"}"#, None),
    ];
    for (json, expected) in cases {
        let key = new_key();
        store.create(write_json(&key, "d", hour, json)).unwrap();
        let stored = ctx.strings(&format!(
            "SELECT CAST(account_id AS TEXT) FROM acct_customsession WHERE session_key = '{key}'"
        ));
        assert_eq!(stored, [expected.map(str::to_owned)], "{json}");
    }
}

fn account_table_is_identical_to_djangos_custom_session(ctx: &Ctx) {
    drop(ctx.open_accounts());
    let ours = ctx.schema_of("acct_customsession");
    ctx.exec("DROP TABLE acct_customsession");
    ctx.exec(ctx.django_custom_ddl());
    assert_eq!(ours, ctx.schema_of("acct_customsession"));
}

fn djangos_custom_session_table_is_used_as_is(ctx: &Ctx) {
    ctx.exec(ctx.django_custom_ddl());
    let before = ctx.schema_of("acct_customsession");
    let store = ctx.open_accounts();
    assert_eq!(ctx.schema_of("acct_customsession"), before);
    let key = new_key();
    store
        .create(write_json(
            &key,
            "d",
            secs_from_now(HOUR),
            r#"{"_auth_user_id":"5"}"#,
        ))
        .unwrap();
    assert_eq!(keys(&store.sessions_of_account(5).unwrap()), [key]);
}

fn table_without_account_column_is_a_config_error(ctx: &Ctx) {
    ctx.exec(
        &ctx.django_ddl()
            .replace("django_session", "acct_customsession"),
    );
    let err = ctx
        .try_open(SqlStoreOptions::new("acct_customsession").with_account_column())
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(err.message.as_str().contains("acct_customsession"), "{err}");
}

fn many_threads_lose_no_acknowledged_write(ctx: &Ctx) {
    const THREADS: usize = 8;
    const KEYS_PER_THREAD: usize = 12;
    const SAVES_PER_KEY: usize = 3;
    let store = Arc::new(ctx.open());
    let shared = new_key();
    store
        .create(write(&shared, "shared-0", secs_from_now(HOUR)))
        .unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&store);
            let shared = shared.clone();
            thread::spawn(move || {
                let mut acknowledged = HashMap::new();
                let mut shared_writes = Vec::new();
                for k in 0..KEYS_PER_THREAD {
                    let key = new_key();
                    store
                        .create(write(&key, &format!("t{t}k{k}s0"), secs_from_now(HOUR)))
                        .unwrap();
                    acknowledged.insert(key.clone(), format!("t{t}k{k}s0"));
                    for s in 1..=SAVES_PER_KEY {
                        let data = format!("t{t}k{k}s{s}");
                        store.save(write(&key, &data, secs_from_now(HOUR))).unwrap();
                        acknowledged.insert(key.clone(), data);
                        assert!(store.load(&key).unwrap().is_some());
                    }
                    let data = format!("shared-t{t}k{k}");
                    store
                        .save(write(&shared, &data, secs_from_now(HOUR)))
                        .unwrap();
                    shared_writes.push(data);
                }
                (acknowledged, shared_writes)
            })
        })
        .collect();
    let mut all_shared = Vec::new();
    let mut total = 0;
    for handle in handles {
        let (acknowledged, shared_writes) = handle.join().expect("writer thread");
        for (key, data) in &acknowledged {
            let loaded = store
                .load(key)
                .unwrap()
                .unwrap_or_else(|| panic!("{key} lost"));
            assert_eq!(loaded.session_data.as_str(), data, "lost update of {key}");
        }
        total += acknowledged.len();
        all_shared.extend(shared_writes);
    }
    assert_eq!(total, THREADS * KEYS_PER_THREAD);
    assert_eq!(ctx.count("django_session") as usize, total + 1);
    let last = store.load(&shared).unwrap().unwrap();
    assert!(
        all_shared.iter().any(|d| d == last.session_data.as_str()),
        "last writer wins"
    );
}

fn reopened_store_keeps_sessions(ctx: &Ctx) {
    let key = new_key();
    let expire = secs_from_now(HOUR);
    ctx.open().create(write(&key, "persisted", expire)).unwrap();
    let loaded = ctx.open().load(&key).unwrap().unwrap();
    assert_eq!(
        (loaded.session_data.as_str(), loaded.expire_date),
        ("persisted", expire)
    );
}

// ---------------------------------------------------------------------------------------------
// SQLite only
// ---------------------------------------------------------------------------------------------

const CHILD_WRITES: usize = 40;

/// Two child processes (this test binary, re-run with `SESSIONKIT_SQL_TEST_CHILD`) and this
/// process write to one file at the same time, opening it at the same time too; every
/// acknowledged write is there afterwards.
fn two_processes_share_one_sqlite_file(ctx: &Ctx) {
    let path = ctx.sqlite_path.as_ref().expect("sqlite");
    let exe = std::env::current_exe().expect("current exe");
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|prefix| {
            Command::new(&exe)
                .env(CHILD_VAR, format!("writer:{}:{prefix}", path.display()))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn child")
        })
        .collect();
    let code = child(&format!("writer:{}:p", path.display()));
    assert_eq!(code, 0, "this process's writes");
    for child in children {
        let output = child.wait_with_output().expect("child");
        assert!(
            output.status.success(),
            "child failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            format!("wrote {CHILD_WRITES}")
        );
    }
    let store = ctx.open();
    for prefix in ["a", "b", "p"] {
        for i in 0..CHILD_WRITES {
            let key = child_key(prefix, i);
            let loaded = store
                .load(&key)
                .unwrap()
                .unwrap_or_else(|| panic!("{key} lost"));
            assert_eq!(loaded.session_data.as_str(), format!("{prefix}{i}-saved"));
        }
    }
    assert_eq!(ctx.count("django_session") as usize, 3 * CHILD_WRITES);
}

fn child_key(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:0>31}")
}

/// The child role: `writer:<path>:<prefix>` creates and then saves `CHILD_WRITES` sessions.
fn child(role: &str) -> i32 {
    let Some(rest) = role.strip_prefix("writer:") else {
        eprintln!("unknown child role {role:?}");
        return 2;
    };
    let Some((path, prefix)) = rest.rsplit_once(':') else {
        eprintln!("bad child role {role:?}");
        return 2;
    };
    let url = DatabaseUrl::parse(&format!("sqlite://{path}")).expect("url");
    let store = match SqlStore::open(&url, SqlStoreOptions::default()) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("open: {e}");
            return 1;
        }
    };
    for i in 0..CHILD_WRITES {
        let key = child_key(prefix, i);
        let expire = secs_from_now(HOUR);
        if let Err(e) = store.create(write(&key, &format!("{prefix}{i}"), expire)) {
            eprintln!("create {key}: {e}");
            return 1;
        }
        if let Err(e) = store.save(write(&key, &format!("{prefix}{i}-saved"), expire)) {
            eprintln!("save {key}: {e}");
            return 1;
        }
    }
    if prefix != "p" {
        println!("wrote {CHILD_WRITES}");
    }
    0
}

fn database_is_in_wal_mode(ctx: &Ctx) {
    drop(ctx.open());
    assert_eq!(ctx.strings("PRAGMA journal_mode"), [Some("wal".to_owned())]);
}

fn memory_url_keeps_sessions_for_the_store(_ctx: &Ctx) {
    let store = SqlStore::open(
        &DatabaseUrl::parse("sqlite::memory:").unwrap(),
        SqlStoreOptions::default(),
    )
    .unwrap();
    let key = new_key();
    store.create(write(&key, "d", secs_from_now(HOUR))).unwrap();
    assert!(store.load(&key).unwrap().is_some());
    assert_eq!(store.clear_expired().unwrap(), 0);
    let other = SqlStore::open(
        &DatabaseUrl::parse("sqlite::memory:").unwrap(),
        SqlStoreOptions::default(),
    )
    .unwrap();
    assert_eq!(
        other.load(&key).unwrap(),
        None,
        "each memory store is private"
    );
}

fn unreadable_expire_date_is_corrupted(ctx: &Ctx) {
    let store = ctx.open();
    let key = new_key();
    // Text that sorts after any date, so the load query selects it.
    ctx.exec(&format!(
        "INSERT INTO django_session VALUES ('{key}', 'd', 'next tuesday')"
    ));
    assert_eq!(kind(store.load(&key)), ErrorKind::Corrupted);
}

fn writer_blocked_past_busy_timeout_is_unavailable(ctx: &Ctx) {
    let store = ctx.open();
    let blocker = ctx.sqlite();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = store
        .create(write(&new_key(), "d", secs_from_now(HOUR)))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    blocker.execute_batch("ROLLBACK").unwrap();
    store
        .create(write(&new_key(), "d", secs_from_now(HOUR)))
        .unwrap();
}

fn missing_directory_is_unavailable_at_open(ctx: &Ctx) {
    let dir = ctx
        .sqlite_path
        .as_ref()
        .unwrap()
        .parent()
        .unwrap()
        .join("no/such/dir/x.sqlite3");
    let url = DatabaseUrl::parse(&format!("sqlite://{}", dir.display())).unwrap();
    let err = SqlStore::open(&url, SqlStoreOptions::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.message.as_str().contains("no/such/dir"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL only
// ---------------------------------------------------------------------------------------------

fn unreachable_server_is_unavailable(_ctx: &Ctx) {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let url = DatabaseUrl::parse("postgres://postgres@127.0.0.1:1/x?connect_timeout=2").unwrap();
    let err = SqlStore::open(&url, SqlStoreOptions::default()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
}

fn missing_database_is_a_config_error(ctx: &Ctx) {
    let Backend::Postgres(db) = &ctx.backend else {
        unreachable!()
    };
    let url = db
        .url()
        .replace(db.name(), &format!("{}_missing", db.name()));
    let err = SqlStore::open(
        &DatabaseUrl::parse(&url).unwrap(),
        SqlStoreOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
}

fn killed_connections_fail_once_then_reconnect(ctx: &Ctx) {
    let store = ctx.open();
    let key = new_key();
    store.create(write(&key, "d", secs_from_now(HOUR))).unwrap();
    let schema = ctx.schema.as_ref().unwrap();
    let killed = ctx.strings(&format!(
        "SELECT CAST(pg_terminate_backend(pid, 5000) AS TEXT) FROM pg_stat_activity \
         WHERE application_name = '{schema}' AND pid <> pg_backend_pid()"
    ));
    assert!(
        !killed.is_empty() && killed.iter().all(|k| k.as_deref() == Some("true")),
        "{killed:?}"
    );
    assert_eq!(kind(store.load(&key)), ErrorKind::Unavailable);
    assert_eq!(
        store.load(&key).unwrap().unwrap().session_data.as_str(),
        "d"
    );
}
