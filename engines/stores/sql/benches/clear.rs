//! `clear_expired` on 10 million expired rows, and what it does to the requests running beside
//! it. Not a criterion bench: one run takes minutes, so it prints its figures once.
//!
//! For each database (SQLite on a temporary file; PostgreSQL on a fresh database of
//! `$SESSIONKIT_TEST_POSTGRES_URL` when set): fills `CLEAR_BENCH_ROWS` expired rows (default
//! 10,000,000) and 100,000 live ones with the database's own row generator, then
//! 1. measures session loads alone: one loader thread, one load of a random live session every
//!    millisecond, for 5 s: p50 / p99 / max latency;
//! 2. runs `clear_expired` the way `sessionkit clearsessions` does on a terminal (through the
//!    SDK adapter, with a host watching progress, so the count is included) while the same
//!    loader runs: rows per second of the clear, and the loads' p50 / p99 / max during it;
//! 3. checks that every expired row went and every live one stayed, and drops the database or
//!    file (the disk is shared).
//!
//! `CLEAR_BENCH_BATCH=N` fixes the batch size at N rows instead of the adaptive default;
//! `CLEAR_BENCH_ONLY=sqlite|postgresql|mysql` runs one database (MySQL from
//! `$SESSIONKIT_TEST_MYSQL_URL`; its fill uses MariaDB's `seq_1_to_N` tables).
//!
//! Run: `cargo bench -p sessionkit-sql --bench clear` (release build; about 10 minutes with
//! PostgreSQL on the CI machine, and 4–5 GB of free disk while it runs).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use sessionkit_sdk::{
    FfiHost, HostBox, LogLevel, SessionStore, Timestamp,
    abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RArc, RStr},
    },
    store::FfiAdapter,
};
use sessionkit_sql::{
    ClearBatches, DatabaseUrl, SqlStore, SqlStoreOptions,
    testing::{MysqlClient, TempMysqlDatabase, TempPostgresDatabase, mysql_url, postgres_url},
};

/// Live sessions the loader reads.
const LIVE: u64 = 100_000;
/// How long loads are measured alone.
const BASELINE: Duration = Duration::from_secs(5);
/// The loader's pace: one load per interval (an open loop, so a stalled load shows as latency
/// rather than as fewer loads).
const LOAD_EVERY: Duration = Duration::from_millis(1);
/// ~Django's authenticated session as `signing.dumps` stores it (264 characters).
const DATA_LEN: usize = 264;

/// A host that watches progress and remembers the last report.
#[derive(Clone, Default)]
struct Watcher {
    done: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
    reports: Arc<AtomicU64>,
}

impl FfiHost for Watcher {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
    fn max_level(&self) -> LogLevel {
        LogLevel::Error
    }
    fn log(&self, _: LogLevel, _: RStr<'_>, _: RStr<'_>) {}
    fn wants_progress(&self, _: RStr<'_>) -> bool {
        true
    }
    fn progress(&self, _: RStr<'_>, done: u64, total: u64) {
        self.done.store(done, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
        self.reports.fetch_add(1, Ordering::Relaxed);
    }
}

/// Load latencies, sorted.
/// Load latencies, sorted, and how many loads failed (a failed load counts as a stalled
/// request: the bench reports it instead of stopping).
struct Latencies(Vec<Duration>, usize);

impl Latencies {
    fn at(&self, quantile: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.0.len() - 1) as f64 * quantile).round() as usize;
        self.0[index]
    }

    fn line(&self) -> String {
        format!(
            "{} loads ({} failed), p50 {:.3} ms, p99 {:.3} ms, max {:.1} ms",
            self.0.len(),
            self.1,
            ms(self.at(0.5)),
            ms(self.at(0.99)),
            ms(self.0.last().copied().unwrap_or_default())
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn live_key(i: u64) -> String {
    format!("live{i:028}")
}

/// Loads random live sessions at [`LOAD_EVERY`] until `stop`, recording each load's latency.
fn loader(store: Arc<SqlStore>, stop: Arc<AtomicBool>) -> thread::JoinHandle<Latencies> {
    thread::spawn(move || {
        let mut latencies = Vec::new();
        let mut failed = 0;
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            // xorshift: a cheap spread over the live keys.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let key = live_key(state % LIVE);
            let started = Instant::now();
            match store.load(&key) {
                Ok(loaded) => {
                    latencies.push(started.elapsed());
                    assert!(loaded.is_some(), "{key} is live");
                }
                Err(error) => {
                    eprintln!("a load failed during the bench: {error}");
                    failed += 1;
                }
            }
            next += LOAD_EVERY;
            let now = Instant::now();
            if next > now {
                thread::sleep(next - now);
            } else {
                next = now;
            }
        }
        latencies.sort_unstable();
        Latencies(latencies, failed)
    })
}

fn measure_loads_alone(store: &Arc<SqlStore>) -> Latencies {
    let stop = Arc::new(AtomicBool::new(false));
    let handle = loader(Arc::clone(store), Arc::clone(&stop));
    thread::sleep(BASELINE);
    stop.store(true, Ordering::Relaxed);
    handle.join().expect("the loader thread")
}

fn options() -> SqlStoreOptions {
    let batches = match std::env::var("CLEAR_BENCH_BATCH") {
        Ok(rows) => ClearBatches::fixed(rows.parse().expect("CLEAR_BENCH_BATCH is a row count")),
        Err(_) => ClearBatches::ADAPTIVE,
    };
    SqlStoreOptions::default().with_clear_batches(batches)
}

fn rows() -> u64 {
    std::env::var("CLEAR_BENCH_ROWS").map_or(10_000_000, |rows| {
        rows.parse().expect("CLEAR_BENCH_ROWS is a row count")
    })
}

/// The whole measurement on one opened database; `fill` adds the rows.
fn bench(backend: &str, url: &str, expired: u64, fill: impl FnOnce()) {
    let url = DatabaseUrl::parse(url).expect("the bench URL");
    let requests = Arc::new(SqlStore::open(&url, options()).expect("the store opens"));
    let started = Instant::now();
    fill();
    println!(
        "{backend}: filled {expired} expired + {LIVE} live rows in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let alone = measure_loads_alone(&requests);
    println!("{backend}: loads alone:        {}", alone.line());

    let watcher = Watcher::default();
    let clearing = FfiAdapter::new("bench", SqlStore::open(&url, options()).expect("opens"))
        .with_host(HostBox::from_ptr(RArc::new(watcher.clone()), TD_Opaque))
        .into_box();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = loader(Arc::clone(&requests), Arc::clone(&stop));
    let started = Instant::now();
    let removed = clearing
        .clear_expired()
        .into_result()
        .expect("clear_expired");
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let during = handle.join().expect("the loader thread");
    println!(
        "{backend}: clear_expired removed {removed} rows in {:.1} s: {:.0} rows/s \
         ({} progress reports, count {})",
        took.as_secs_f64(),
        removed as f64 / took.as_secs_f64(),
        watcher.reports.load(Ordering::Relaxed),
        watcher.total.load(Ordering::Relaxed)
    );
    println!("{backend}: loads during clear: {}", during.line());
    println!(
        "{backend}: during / alone: p50 {:.2}x, p99 {:.2}x",
        ms(during.at(0.5)) / ms(alone.at(0.5)).max(1e-6),
        ms(during.at(0.99)) / ms(alone.at(0.99)).max(1e-6)
    );
    assert_eq!(removed, expired, "every expired row went");
    assert_eq!(requests.clear_expired().expect("a second clear"), 0);
    for i in (0..LIVE).step_by(997) {
        assert!(requests.load(&live_key(i)).expect("load").is_some());
    }
}

fn sqlite(expired: u64) {
    let dir = tempfile::tempdir_in(std::env::var_os("CLEAR_BENCH_DIR").unwrap_or(".".into()))
        .expect("a temporary directory");
    let path = dir.path().join("clear-bench.sqlite3");
    let url = format!("sqlite://{}", path.display());
    bench("sqlite", &url, expired, || {
        let conn = rusqlite::Connection::open(&path).expect("the bench file");
        conn.execute_batch("PRAGMA synchronous = OFF;")
            .expect("pragmas");
        // A million rows per transaction, the WAL checkpointed after each so it never holds
        // a copy of the whole table.
        let mut from = 1;
        while from <= expired {
            let to = (from + 999_999).min(expired);
            conn.execute_batch(&format!(
                "BEGIN; \
                 WITH RECURSIVE n(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM n WHERE i < {to}) \
                 INSERT INTO django_session (session_key, session_data, expire_date) \
                 SELECT printf('exp%029d', i), printf('%.{DATA_LEN}c', 'x'), \
                 datetime(978307200 + i % 500000000, 'unixepoch') FROM n; \
                 COMMIT; PRAGMA wal_checkpoint(TRUNCATE);"
            ))
            .expect("the fill");
            from = to + 1;
        }
        conn.execute_batch(&format!(
            "BEGIN; \
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {LIVE} - 1) \
             INSERT INTO django_session (session_key, session_data, expire_date) \
             SELECT printf('live%028d', i), printf('%.{DATA_LEN}c', 'y'), '2999-01-01 00:00:00' FROM n; \
             COMMIT; PRAGMA wal_checkpoint(TRUNCATE);"
        ))
        .expect("the fill");
    });
    drop(dir);
}

fn postgres(base: &str, expired: u64) {
    let db = TempPostgresDatabase::create(base);
    let url = db.url().to_owned();
    bench("postgresql", &url, expired, || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
        client
            .batch_execute(&format!(
                "INSERT INTO django_session (session_key, session_data, expire_date) \
                 SELECT 'exp' || lpad(i::text, 29, '0'), repeat('x', {DATA_LEN}), \
                 timestamptz '2001-01-01 00:00:00+00' + (i % 500000000) * interval '1 second' \
                 FROM generate_series(1, {expired}) AS i; \
                 INSERT INTO django_session (session_key, session_data, expire_date) \
                 SELECT 'live' || lpad(i::text, 28, '0'), repeat('y', {DATA_LEN}), \
                 timestamptz '2999-01-01 00:00:00+00' FROM generate_series(0, {LIVE} - 1) AS i"
            ))
            .expect("the fill");
        // As an established table would be: visibility map set, statistics known.
        client
            .batch_execute("VACUUM ANALYZE django_session")
            .expect("vacuum");
    });
    drop(db);
}

/// MariaDB (MySQL's fill needs MariaDB's built-in `seq_1_to_N` tables): a fresh database,
/// filled a million rows per statement.
fn mysql(base: &str, expired: u64) {
    let db = TempMysqlDatabase::create(base);
    let url = db.url().to_owned();
    bench("mysql", &url, expired, || {
        let mut client = MysqlClient::connect(&url);
        let mut from = 1;
        while from <= expired {
            let to = (from + 999_999).min(expired);
            client.exec(&format!(
                "INSERT INTO django_session (session_key, session_data, expire_date) \
                 SELECT CONCAT('exp', LPAD(seq, 29, '0')), REPEAT('x', {DATA_LEN}), \
                 TIMESTAMP'2001-01-01 00:00:00' + INTERVAL (seq % 500000000) SECOND \
                 FROM seq_{from}_to_{to}"
            ));
            from = to + 1;
        }
        client.exec(&format!(
            "INSERT INTO django_session (session_key, session_data, expire_date) \
             SELECT CONCAT('live', LPAD(seq, 28, '0')), REPEAT('y', {DATA_LEN}), \
             TIMESTAMP'2999-01-01 00:00:00' FROM seq_0_to_{}",
            LIVE - 1
        ));
        client.exec("ANALYZE TABLE django_session");
    });
    drop(db);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: run only when
    // benchmarking, never as a test.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let expired = rows();
    let only = std::env::var("CLEAR_BENCH_ONLY").ok();
    if only.as_deref().is_none_or(|o| o == "sqlite") {
        sqlite(expired);
    }
    if only.as_deref().is_none_or(|o| o == "postgresql")
        && let Some(base) = postgres_url()
    {
        postgres(&base, expired);
    }
    if only.as_deref().is_none_or(|o| o == "mysql")
        && let Some(base) = mysql_url()
    {
        mysql(&base, expired);
    }
}
