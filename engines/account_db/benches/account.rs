//! "Log out everywhere" at scale: the account index over 100k sessions (10k accounts × 10
//! sessions each), next to the raw driver running the same indexed SQL in the same run.
//!
//! - `list_by_account`: the 10 live sessions of one account, through the store
//!   (`AccountDbStore::sessions_of_account`), through the plugin's FFI store (what the host
//!   calls), and as the raw prepared `SELECT … WHERE account_id = ? AND expire_date > ?` (the
//!   floor: rows read as text, no timestamp parsing, no pool).
//! - `delete_by_account`: deleting an account's 10 sessions, through the store and as the raw
//!   `DELETE … WHERE account_id = ?`; each iteration gets a freshly inserted account (untimed
//!   setup). SQLite runs with the store's default `synchronous=FULL` on both sides, so a delete
//!   includes one WAL fsync.
//!
//! SQLite always; PostgreSQL too when `SESSIONKIT_TEST_POSTGRES_URL` is set (a fresh database,
//! dropped afterwards).
//!
//! Run briefly: `cargo bench -p sessionkit-engine-account_db --bench account -- --warm-up-time 0.5 --measurement-time 2`.

use std::{
    cell::{Cell, RefCell},
    fmt::Write as _,
    path::Path,
    time::Duration,
};

use abi_stable::std_types::{RResult, RStr};
use chrono::{DateTime, Datelike, Timelike, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::json;
use sessionkit_engine_account_db::{AccountDbEngine, sessionkit_engine_root_module};
use sessionkit_sdk::{Engine, SessionStore, StoreBox, Timestamp};
use sessionkit_sql::testing::{TempPostgresDatabase, postgres_url};

/// Accounts, and sessions per account, in the working set.
const ACCOUNTS: i64 = 10_000;
const PER_ACCOUNT: i64 = 10;
/// Accounts used by the delete runs start here (outside the listed working set).
const DELETE_ACCOUNTS_FROM: i64 = 1_000_000;
const TABLE: &str = "account_sessions";

// The statements `SqlStore` runs for the account queries (pinned by sessionkit-sql's unit
// tests), for the raw side.
const SQLITE_LIST: &str = r#"SELECT "session_key", "session_data", "expire_date" FROM "account_sessions" WHERE "account_id" = ?1 AND "expire_date" > ?2 ORDER BY "expire_date" DESC, "session_key""#;
const SQLITE_DELETE: &str = r#"DELETE FROM "account_sessions" WHERE "account_id" = ?1"#;
const SQLITE_INSERT: &str = r#"INSERT INTO "account_sessions" ("session_key", "session_data", "expire_date", "account_id") VALUES (?1, ?2, ?3, ?4)"#;
const PG_LIST: &str = r#"SELECT "session_key", "session_data", "expire_date" FROM "account_sessions" WHERE "account_id" = $1 AND "expire_date" > $2 ORDER BY "expire_date" DESC, "session_key""#;
const PG_DELETE: &str = r#"DELETE FROM "account_sessions" WHERE "account_id" = $1"#;

/// A 264-character stored session: the size of an authenticated Django session (`_auth_user_id`, `_auth_user_backend`, `_auth_user_hash`) as `signing.dumps` writes it.
fn payload(n: i64) -> String {
    let mut data = "x".repeat(248);
    let _ = write!(data, "{n:016x}");
    data
}

/// Session `n` of `account`: 32 characters of `[a-z0-9]`.
fn key(account: i64, n: i64) -> String {
    format!("k{account:0>21}s{n:0>9}")
}

fn chrono(ts: Timestamp) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(ts.micros).expect("in range")
}

/// Django's SQLite text for `ts`, as the store writes it.
fn sqlite_text(ts: Timestamp) -> String {
    let dt = chrono(ts);
    let mut out = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if dt.timestamp_subsec_micros() != 0 {
        let _ = write!(out, ".{:06}", dt.timestamp_subsec_micros());
    }
    out
}

/// When session `n` expires: a day from now, a few microseconds apart per session.
fn expiry(n: i64) -> Timestamp {
    Timestamp::from_micros(Timestamp::now().micros + 86_400_000_000 + n)
}

/// The next account to list, cycling through the working set.
fn next_account(counter: &Cell<i64>) -> i64 {
    let account = counter.get() % ACCOUNTS + 1;
    counter.set(counter.get() + 7919);
    account
}

fn sqlite_raw(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open raw");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy_timeout");
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .expect("wal");
    assert_eq!(mode, "wal");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous");
    conn
}

/// Inserts `PER_ACCOUNT` live sessions for each of `accounts` in one transaction.
fn sqlite_fill(conn: &mut rusqlite::Connection, accounts: impl Iterator<Item = i64>) {
    let tx = conn.transaction().expect("tx");
    {
        let mut stmt = tx.prepare_cached(SQLITE_INSERT).expect("prepare");
        for account in accounts {
            for n in 0..PER_ACCOUNT {
                stmt.execute((key(account, n), payload(n), sqlite_text(expiry(n)), account))
                    .expect("fill");
            }
        }
    }
    tx.commit().expect("commit");
}

fn open_ffi(settings: &serde_json::Value) -> StoreBox {
    match sessionkit_engine_root_module().open()(RStr::from_str(&settings.to_string())) {
        RResult::ROk(store) => store,
        RResult::RErr(error) => panic!("open through the root module: {error}"),
    }
}

fn ffi_list(store: &StoreBox, account: i64) -> usize {
    match store.sessions_of_account(account) {
        RResult::ROk(records) => records.len(),
        RResult::RErr(error) => panic!("{error}"),
    }
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("accounts.sqlite3");
    let settings = json!({"SESSION_DB_URL": format!("sqlite://{}", path.display())});
    let store = AccountDbEngine::open(&settings.to_string()).expect("store");
    let ffi = open_ffi(&settings);
    let raw = RefCell::new(sqlite_raw(&path));
    sqlite_fill(&mut raw.borrow_mut(), 1..=ACCOUNTS);
    let rows: i64 = raw
        .borrow()
        .query_row(&format!(r#"SELECT count(*) FROM "{TABLE}""#), [], |r| {
            r.get(0)
        })
        .expect("count");
    assert_eq!(rows, ACCOUNTS * PER_ACCOUNT);
    assert_eq!(
        store.sessions_of_account(1).expect("list").len(),
        PER_ACCOUNT as usize
    );

    let mut group = c.benchmark_group("sqlite/list_by_account (10 of 100k rows)");
    let counter = Cell::new(0);
    group.bench_function("store", |b| {
        b.iter(|| {
            let records = store
                .sessions_of_account(next_account(&counter))
                .expect("list");
            assert_eq!(records.len(), PER_ACCOUNT as usize);
            records
        });
    });
    group.bench_function("ffi store", |b| {
        b.iter(|| assert_eq!(ffi_list(&ffi, next_account(&counter)), PER_ACCOUNT as usize));
    });
    group.bench_function("raw SELECT", |b| {
        let raw = raw.borrow();
        let mut stmt = raw.prepare_cached(SQLITE_LIST).expect("prepare");
        b.iter(|| {
            let now = sqlite_text(Timestamp::now());
            let rows: Vec<(String, String, String)> = stmt
                .query_map((next_account(&counter), now), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows");
            assert_eq!(rows.len(), PER_ACCOUNT as usize);
            rows
        });
    });
    group.finish();

    let mut group = c.benchmark_group("sqlite/delete_by_account (10 rows, synchronous=FULL)");
    let next_delete = Cell::new(DELETE_ACCOUNTS_FROM);
    let fresh_account = || {
        let account = next_delete.get();
        next_delete.set(account + 1);
        sqlite_fill(&mut raw.borrow_mut(), std::iter::once(account));
        account
    };
    group.bench_function("store", |b| {
        b.iter_batched(
            fresh_account,
            |account| {
                let deleted = store
                    .delete_sessions_of_account(account, None)
                    .expect("delete");
                assert_eq!(deleted, PER_ACCOUNT as u64);
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("raw DELETE", |b| {
        b.iter_batched(
            fresh_account,
            |account| {
                let deleted = raw
                    .borrow()
                    .prepare_cached(SQLITE_DELETE)
                    .expect("prepare")
                    .execute([account])
                    .expect("delete");
                assert_eq!(deleted, PER_ACCOUNT as usize);
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    drop((store, ffi, raw));
}

fn postgres(c: &mut Criterion) {
    let Some(base) = postgres_url() else {
        println!("skipped PostgreSQL benches: SESSIONKIT_TEST_POSTGRES_URL is not set");
        return;
    };
    let db = TempPostgresDatabase::create(&base);
    let settings = json!({"SESSION_DB_URL": db.url()});
    let store = AccountDbEngine::open(&settings.to_string()).expect("store");
    let ffi = open_ffi(&settings);
    let raw =
        RefCell::new(postgres::Client::connect(db.url(), postgres::NoTls).expect("raw client"));
    let fill = |first: i64, last: i64| {
        raw.borrow_mut().execute(
            &format!(
                r#"INSERT INTO "{TABLE}" ("session_key", "session_data", "expire_date", "account_id")
                   SELECT 'k' || lpad(a::text, 21, '0') || 's' || lpad(n::text, 9, '0'),
                          repeat('x', 248) || lpad(to_hex(n), 16, '0'),
                          now() + interval '1 day' + n * interval '1 microsecond',
                          a
                   FROM generate_series($1::int, $2::int) AS a, generate_series(0, $3::int - 1) AS n"#
            ),
            &[&(first as i32), &(last as i32), &(PER_ACCOUNT as i32)],
        )
        .expect("fill")
    };
    assert_eq!(fill(1, ACCOUNTS), (ACCOUNTS * PER_ACCOUNT) as u64);
    raw.borrow_mut()
        .batch_execute(&format!(r#"ANALYZE "{TABLE}""#))
        .expect("analyze");
    assert_eq!(
        store.sessions_of_account(1).expect("list").len(),
        PER_ACCOUNT as usize
    );

    let mut group = c.benchmark_group("postgres/list_by_account (10 of 100k rows)");
    let counter = Cell::new(0);
    group.bench_function("store", |b| {
        b.iter(|| {
            let records = store
                .sessions_of_account(next_account(&counter))
                .expect("list");
            assert_eq!(records.len(), PER_ACCOUNT as usize);
            records
        });
    });
    group.bench_function("ffi store", |b| {
        b.iter(|| assert_eq!(ffi_list(&ffi, next_account(&counter)), PER_ACCOUNT as usize));
    });
    group.bench_function("raw SELECT", |b| {
        let mut raw = raw.borrow_mut();
        let stmt = raw.prepare(PG_LIST).expect("prepare");
        b.iter(|| {
            let account = next_account(&counter) as i32;
            let rows = raw
                .query(&stmt, &[&account, &chrono(Timestamp::now())])
                .expect("query");
            assert_eq!(rows.len(), PER_ACCOUNT as usize);
            rows
        });
    });
    group.finish();

    let mut group = c.benchmark_group("postgres/delete_by_account (10 rows)");
    let next_delete = Cell::new(DELETE_ACCOUNTS_FROM);
    let fresh_account = || {
        let account = next_delete.get();
        next_delete.set(account + 1);
        fill(account, account);
        account
    };
    group.bench_function("store", |b| {
        b.iter_batched(
            fresh_account,
            |account| {
                let deleted = store
                    .delete_sessions_of_account(account, None)
                    .expect("delete");
                assert_eq!(deleted, PER_ACCOUNT as u64);
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("raw DELETE", |b| {
        let stmt = raw.borrow_mut().prepare(PG_DELETE).expect("prepare");
        b.iter_batched(
            fresh_account,
            |account| {
                let deleted = raw
                    .borrow_mut()
                    .execute(&stmt, &[&(account as i32)])
                    .expect("delete");
                assert_eq!(deleted, PER_ACCOUNT as u64);
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    drop((store, ffi, raw));
    drop(db);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = sqlite, postgres
}
criterion_main!(benches);
