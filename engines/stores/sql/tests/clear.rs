//! `clear_expired` at scale, functionally: it deletes in bounded batches (seen through the
//! progress it reports after each), removes every expired row and no live one, and requests
//! keep working while it runs. SQLite on a temporary file; PostgreSQL on a fresh database of
//! `$SESSIONKIT_TEST_POSTGRES_URL` (skipped without it). Speed is measured in
//! `benches/clear.rs`, never here.

// Test helpers unwrap like the tests they serve (clippy.toml allows it in `#[test]` bodies only).
#![allow(clippy::unwrap_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use sessionkit_sdk::{
    FfiHost, HostBox, LogLevel, SessionRecord, SessionStore, SessionWrite, StoreBox, Timestamp,
    abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RArc, RStr},
    },
    store::FfiAdapter,
};
use sessionkit_sql::{
    ClearBatches, DatabaseUrl, SqlStore, SqlStoreOptions,
    testing::{TempMysqlDatabase, TempPostgresDatabase, mysql_url, postgres_url},
};

/// A host that shows progress and remembers every report.
#[derive(Clone, Default)]
struct Watcher {
    reports: Arc<Mutex<Vec<(String, u64, u64)>>>,
}

impl FfiHost for Watcher {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn max_level(&self) -> LogLevel {
        LogLevel::Error
    }

    fn log(&self, _level: LogLevel, _target: RStr<'_>, _message: RStr<'_>) {}

    fn wants_progress(&self, _operation: RStr<'_>) -> bool {
        true
    }

    fn progress(&self, operation: RStr<'_>, done: u64, total: u64) {
        self.reports
            .lock()
            .unwrap()
            .push((operation.to_string(), done, total));
    }
}

impl Watcher {
    fn host(&self) -> HostBox {
        HostBox::from_ptr(RArc::new(self.clone()), TD_Opaque)
    }

    fn reports(&self) -> Vec<(String, u64, u64)> {
        self.reports.lock().unwrap().clone()
    }

    /// The `done` of the last report so far (0 before any).
    fn last_done(&self) -> u64 {
        self.reports.lock().unwrap().last().map_or(0, |r| r.1)
    }
}

/// `store` as the host holds it, opened by a host that watches progress.
fn watched(store: SqlStore, watcher: &Watcher) -> StoreBox {
    FfiAdapter::new("sql-test", store)
        .with_host(watcher.host())
        .into_box()
}

fn write(key: &str, expire_date: Timestamp) -> SessionWrite {
    SessionWrite {
        record: SessionRecord {
            session_key: key.into(),
            session_data: format!("data of {key}").into(),
            expire_date,
        },
        session_json: "{}".into(),
    }
}

fn in_hours(hours: i64) -> Timestamp {
    Timestamp::from_secs(Timestamp::now().as_secs() + hours * 3600)
}

/// Stores `expired` rows that expired an hour ago and `live` rows live for an hour, through
/// the store itself; returns the live keys.
fn fill(store: &SqlStore, prefix: &str, expired: usize, live: usize) -> Vec<String> {
    for i in 0..expired {
        store
            .create(write(&format!("{prefix}exp{i:020}"), in_hours(-1)))
            .unwrap();
    }
    (0..live)
        .map(|i| {
            let key = format!("{prefix}live{i:019}");
            store.create(write(&key, in_hours(1))).unwrap();
            key
        })
        .collect()
}

/// 50 expired rows in batches of 7: a report before the first batch and after each of the
/// eight (seven full, one of 1), every step at most 7, all expired rows gone, live rows kept.
fn clears_in_bounded_batches(url: &str, prefix: &str) {
    let url = DatabaseUrl::parse(url).unwrap();
    let options = SqlStoreOptions::default().with_clear_batches(ClearBatches::fixed(7));
    let store = SqlStore::open(&url, options.clone()).unwrap();
    let live = fill(&store, prefix, 50, 5);
    let watcher = Watcher::default();
    let store = watched(store, &watcher);

    let removed = store.clear_expired().into_result().unwrap();

    assert_eq!(removed, 50);
    let reports = watcher.reports();
    let done: Vec<u64> = reports.iter().map(|r| r.1).collect();
    assert_eq!(done, [0, 7, 14, 21, 28, 35, 42, 49, 50], "{reports:?}");
    assert!(
        reports
            .iter()
            .all(|(operation, _, total)| operation == "clear_expired" && *total == 50),
        "{reports:?}"
    );
    let check = SqlStore::open(&url, options).unwrap();
    for key in &live {
        assert!(check.load(key).unwrap().is_some(), "{key} was live");
    }
    for i in 0..50 {
        assert!(!check.exists(&format!("{prefix}exp{i:020}")).unwrap());
    }
    assert_eq!(check.clear_expired().unwrap(), 0, "nothing expired is left");
}

#[test]
fn sqlite_clears_in_bounded_batches_and_keeps_live_rows() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("clear.sqlite3").display());
    clears_in_bounded_batches(&url, "s");
}

#[test]
fn mysql_clears_in_bounded_batches_and_keeps_live_rows() {
    let Some(base) = mysql_url() else {
        println!("skipped: SESSIONKIT_TEST_MYSQL_URL is not set");
        return;
    };
    let db = TempMysqlDatabase::create(&base);
    clears_in_bounded_batches(db.url(), "m");
}

#[test]
fn postgres_clears_in_bounded_batches_and_keeps_live_rows() {
    let Some(base) = postgres_url() else { return };
    let db = TempPostgresDatabase::create(&base);
    clears_in_bounded_batches(db.url(), "p");
}

#[test]
fn without_a_watching_host_nothing_is_counted_and_everything_expired_goes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("quiet.sqlite3").display());
    let url = DatabaseUrl::parse(&url).unwrap();
    let options = SqlStoreOptions::default().with_clear_batches(ClearBatches::fixed(3));
    let store = SqlStore::open(&url, options).unwrap();
    let live = fill(&store, "q", 10, 2);
    // No host lent (a contract-0.1 host, or a direct call): no progress, same result.
    let store = FfiAdapter::new("sql-test", store).into_box();
    assert_eq!(store.clear_expired().into_result().unwrap(), 10);
    for key in &live {
        assert!(
            store
                .exists(RStr::from(key.as_str()))
                .into_result()
                .unwrap()
        );
    }
}

/// While a clear of 20,000 expired rows in batches of 200 runs on another thread, this thread
/// creates, saves, loads and deletes live sessions: every request succeeds, and some of them
/// complete while the clear is between its first and last batch. Requests come a millisecond
/// apart: a loop with no gap at all would hold SQLite's one write lock nearly all the time, and
/// the clear's own wait for it (SQLite's busy timeout, 5 s) would run out.
fn requests_keep_working_during_a_clear(url: &str, prefix: &str, fill_expired: impl Fn(&str)) {
    let parsed = DatabaseUrl::parse(url).unwrap();
    let options = SqlStoreOptions::default().with_clear_batches(ClearBatches::fixed(200));
    let requests = Arc::new(SqlStore::open(&parsed, options.clone()).unwrap());
    fill_expired(url);
    let total = 20_000;
    let watcher = Watcher::default();
    let clearing = watched(SqlStore::open(&parsed, options).unwrap(), &watcher);
    let finished = Arc::new(AtomicBool::new(false));
    let clear = {
        let finished = Arc::clone(&finished);
        thread::spawn(move || {
            let removed = clearing.clear_expired().into_result();
            finished.store(true, Ordering::SeqCst);
            removed
        })
    };

    let mut during = 0;
    let mut i = 0;
    while !finished.load(Ordering::SeqCst) {
        let key = format!("{prefix}req{i:020}");
        requests.create(write(&key, in_hours(1))).unwrap();
        requests.save(write(&key, in_hours(2))).unwrap();
        let loaded = requests
            .load(&key)
            .unwrap()
            .expect("the session just saved");
        assert_eq!(loaded.session_data.as_str(), format!("data of {key}"));
        if i % 2 == 0 {
            requests.delete(&key).unwrap();
        }
        let done = watcher.last_done();
        if done > 0 && done < total {
            during += 1;
        }
        i += 1;
        thread::sleep(Duration::from_millis(1));
    }

    assert_eq!(clear.join().unwrap().unwrap(), total);
    assert!(
        during > 0,
        "no request completed while the clear was under way ({i} requests in all)"
    );
    for j in (1..i).step_by(2) {
        let key = format!("{prefix}req{j:020}");
        assert!(requests.load(&key).unwrap().is_some(), "{key} was live");
    }
}

#[test]
fn sqlite_requests_keep_working_during_a_clear() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.sqlite3");
    let url = format!("sqlite://{}", path.display());
    requests_keep_working_during_a_clear(&url, "s", |_| {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
             INSERT INTO django_session (session_key, session_data, expire_date) \
             SELECT printf('sexp%028d', i), 'old', '2001-01-01 00:00:00' FROM n",
        )
        .unwrap();
    });
}

#[test]
fn postgres_requests_keep_working_during_a_clear() {
    let Some(base) = postgres_url() else { return };
    let db = TempPostgresDatabase::create(&base);
    requests_keep_working_during_a_clear(db.url(), "p", |url| {
        let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
        client
            .batch_execute(
                "INSERT INTO django_session (session_key, session_data, expire_date) \
                 SELECT 'pexp' || lpad(i::text, 28, '0'), 'old', \
                 timestamptz '2001-01-01 00:00:00+00' + i * interval '1 second' \
                 FROM generate_series(1, 20000) AS i",
            )
            .unwrap();
    });
}
