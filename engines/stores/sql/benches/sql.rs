//! `SqlStore` next to the raw driver doing the same SQL, in the same run.
//!
//! SQLite: load / create / update through the store and through one rusqlite connection with
//! statements prepared once (the floor), both on WAL files with the same pragmas, for
//! `synchronous=FULL` (the store's default) and `NORMAL`; then `clear_expired` of 10k rows with
//! 5k expired against the raw batched DELETE, the WAL checkpointed before each timed run.
//! PostgreSQL (when `SESSIONKIT_TEST_POSTGRES_URL` is set): the same on a fresh database, the
//! store and the raw client each in a schema of their own. MySQL/MariaDB (when
//! `SESSIONKIT_TEST_MYSQL_URL` is set): the store's load, create, update and conditional update
//! on a fresh database, to set beside PostgreSQL's.
//!
//! Every save changes bytes (data and expire_date differ per iteration): SQLite skips pages
//! whose content is unchanged, which would make an identical save look free.
//!
//! Run briefly: `cargo bench -p sessionkit-sql --bench sql -- --warm-up-time 0.5 --measurement-time 2`.

use std::{cell::Cell, fmt::Write as _, path::Path, time::Duration};

use chrono::{DateTime, Datelike, Timelike, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use postgres::NoTls;
use sessionkit_sdk::{ConditionalSave, SessionRecord, SessionStore, SessionWrite, Timestamp};
use sessionkit_sql::{
    DatabaseUrl, SqlStore, SqlStoreOptions,
    testing::{TempMysqlDatabase, TempPostgresDatabase, mysql_url, postgres_url},
};

/// Sessions present before the load and update loops.
const WORKING_SET: usize = 10_000;
/// Rows and expired rows for the clear_expired runs.
const CLEAR_ROWS: usize = 10_000;
const CLEAR_EXPIRED: usize = 5_000;

// The statements `SqlStore` runs (pinned by its unit tests), for the raw side.
const SQLITE_LOAD: &str = r#"SELECT "session_data", "expire_date" FROM "django_session" WHERE "session_key" = ?1 AND "expire_date" > ?2"#;
const SQLITE_INSERT: &str = r#"INSERT INTO "django_session" ("session_key", "session_data", "expire_date") VALUES (?1, ?2, ?3)"#;
const SQLITE_UPDATE: &str = r#"UPDATE "django_session" SET "session_data" = ?2, "expire_date" = ?3 WHERE "session_key" = ?1"#;
const SQLITE_CLEAR: &str = r#"DELETE FROM "django_session" WHERE rowid IN (SELECT rowid FROM "django_session" WHERE "expire_date" < ?1 LIMIT 1000)"#;
const PG_LOAD: &str = r#"SELECT "session_data", "expire_date" FROM "django_session" WHERE "session_key" = $1 AND "expire_date" > $2"#;
const PG_INSERT: &str = r#"INSERT INTO "django_session" ("session_key", "session_data", "expire_date") VALUES ($1, $2, $3)"#;
const PG_UPDATE: &str = r#"UPDATE "django_session" SET "session_data" = $2, "expire_date" = $3 WHERE "session_key" = $1"#;
const PG_CLEAR: &str = r#"DELETE FROM "django_session" WHERE "session_key" IN (SELECT "session_key" FROM "django_session" WHERE "expire_date" < $1 LIMIT 1000)"#;

/// A 264-character stored session: the size of an authenticated Django session (`_auth_user_id`, `_auth_user_backend`, `_auth_user_hash`) as `signing.dumps` writes it.
fn payload(n: u64) -> String {
    let mut data = "x".repeat(248);
    let _ = write!(data, "{n:016x}");
    data
}

fn key(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>28}")
}

fn in_secs(secs: i64) -> Timestamp {
    Timestamp::from_micros(Timestamp::now().micros + secs * 1_000_000)
}

/// Django's SQLite text for `ts`, as the store writes it.
fn sqlite_text(ts: Timestamp) -> String {
    let dt = DateTime::<Utc>::from_timestamp_micros(ts.micros).expect("in range");
    let mut out = String::with_capacity(26);
    let _ = write!(
        out,
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

fn chrono(ts: Timestamp) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_micros(ts.micros).expect("in range")
}

fn write(key: String, data: String, expire: Timestamp) -> SessionWrite {
    SessionWrite::new(SessionRecord::new(key, data, expire), "{}")
}

fn sqlite_raw(path: &Path, synchronous: &str) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("open raw");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy_timeout");
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .expect("wal");
    assert_eq!(mode, "wal");
    conn.pragma_update(None, "synchronous", synchronous)
        .expect("synchronous");
    conn
}

/// Fills `table` with `n` live rows through one transaction.
fn sqlite_fill(conn: &mut rusqlite::Connection, prefix: &str, n: usize, expire: Timestamp) {
    let tx = conn.transaction().expect("tx");
    {
        let mut stmt = tx.prepare(SQLITE_INSERT).expect("prepare");
        for i in 0..n {
            stmt.execute((key(prefix, i), payload(i as u64), sqlite_text(expire)))
                .expect("fill");
        }
    }
    tx.commit().expect("commit");
}

/// How many sessions the conditional-save bench cycles through.
const CONDITIONAL_SET: usize = 100;

/// `save_if_unchanged` of a session whose stored data the bench knows (as a request that loaded
/// it does): the cost of the conditional save next to `update/store`'s plain one, same run.
fn bench_conditional_save(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    store: &SqlStore,
    live: Timestamp,
) {
    let stored: Vec<String> = (0..CONDITIONAL_SET)
        .map(|slot| {
            let data = payload(3_000_000 + slot as u64);
            store
                .create(write(key("c", slot), data.clone(), live))
                .expect("create");
            data
        })
        .collect();
    let stored = std::cell::RefCell::new(stored);
    let saved = Cell::new(0u64);
    group.bench_function("update_if_unchanged/store", |b| {
        b.iter(|| {
            let n = saved.replace(saved.get() + 1);
            let slot = n as usize % CONDITIONAL_SET;
            let expire = Timestamp::from_micros(live.micros + n as i64);
            let data = payload(4_000_000 + n);
            let expected = std::mem::replace(&mut stored.borrow_mut()[slot], data.clone());
            let outcome = store
                .save_if_unchanged(write(key("c", slot), data, expire), &expected)
                .expect("save_if_unchanged");
            assert!(matches!(outcome, ConditionalSave::Saved(_)), "{outcome:?}");
        })
    });
}

fn sqlite(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    for synchronous in ["FULL", "NORMAL"] {
        let mode = synchronous.to_ascii_lowercase();
        let store_path = dir.path().join(format!("store-{mode}.sqlite3"));
        let raw_path = dir.path().join(format!("raw-{mode}.sqlite3"));
        let url = DatabaseUrl::parse(&format!(
            "sqlite://{}?synchronous={mode}",
            store_path.display()
        ))
        .expect("url");
        let store = SqlStore::open(&url, SqlStoreOptions::default()).expect("store");
        // The raw side gets Django's table from the store's DDL, in its own file.
        drop(SqlStore::open(
            &DatabaseUrl::parse(&format!("sqlite://{}", raw_path.display())).expect("url"),
            SqlStoreOptions::default(),
        ));
        let mut raw = sqlite_raw(&raw_path, synchronous);
        let live = in_secs(3600);
        sqlite_fill(
            &mut sqlite_raw(&store_path, synchronous),
            "w",
            WORKING_SET,
            live,
        );
        sqlite_fill(&mut raw, "w", WORKING_SET, live);

        let mut group = c.benchmark_group(format!("sqlite_{mode}"));
        if synchronous == "FULL" {
            let i = Cell::new(0usize);
            group.bench_function("load/store", |b| {
                b.iter(|| {
                    let n = i.replace(i.get() + 1) % WORKING_SET;
                    store.load(&key("w", n)).expect("load").expect("present")
                })
            });
            let mut stmt = raw.prepare(SQLITE_LOAD).expect("prepare");
            group.bench_function("load/raw", |b| {
                b.iter(|| {
                    let n = i.replace(i.get() + 1) % WORKING_SET;
                    stmt.query_row((key("w", n), sqlite_text(Timestamp::now())), |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                    })
                    .expect("load")
                })
            });
        }

        let created = Cell::new(0usize);
        group.bench_function("create/store", |b| {
            b.iter(|| {
                let n = created.replace(created.get() + 1);
                store
                    .create(write(key("c", n), payload(n as u64), live))
                    .expect("create")
            })
        });
        {
            let mut stmt = raw.prepare(SQLITE_INSERT).expect("prepare");
            let created = Cell::new(0usize);
            group.bench_function("create/raw", |b| {
                b.iter(|| {
                    let n = created.replace(created.get() + 1);
                    stmt.execute((key("c", n), payload(n as u64), sqlite_text(live)))
                        .expect("insert")
                })
            });
        }

        let saved = Cell::new(0u64);
        group.bench_function("update/store", |b| {
            b.iter(|| {
                let n = saved.replace(saved.get() + 1);
                let expire = Timestamp::from_micros(live.micros + n as i64);
                let k = key("w", n as usize % WORKING_SET);
                store
                    .save(write(k, payload(n + 1_000_000), expire))
                    .expect("save")
            })
        });
        bench_conditional_save(&mut group, &store, live);
        {
            let mut stmt = raw.prepare(SQLITE_UPDATE).expect("prepare");
            let saved = Cell::new(0u64);
            group.bench_function("update/raw", |b| {
                b.iter(|| {
                    let n = saved.replace(saved.get() + 1);
                    let expire = Timestamp::from_micros(live.micros + n as i64);
                    let k = key("w", n as usize % WORKING_SET);
                    let rows = stmt
                        .execute((k, payload(n + 1_000_000), sqlite_text(expire)))
                        .expect("update");
                    assert_eq!(rows, 1);
                })
            });
        }

        if synchronous == "FULL" {
            // 10k rows, 5k expired, WAL checkpointed before every timed run (so every run starts from the same file state).
            let setup = |path: &Path| {
                let mut conn = sqlite_raw(path, synchronous);
                conn.execute("DELETE FROM django_session", [])
                    .expect("empty");
                sqlite_fill(&mut conn, "e", CLEAR_EXPIRED, in_secs(-3600));
                let tx = conn.transaction().expect("tx");
                {
                    let mut stmt = tx.prepare(SQLITE_INSERT).expect("prepare");
                    for i in CLEAR_EXPIRED..CLEAR_ROWS {
                        stmt.execute((key("e", i), payload(i as u64), sqlite_text(live)))
                            .expect("fill");
                    }
                }
                tx.commit().expect("commit");
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .expect("checkpoint");
            };
            group.sample_size(10);
            group.bench_function("clear_expired_10k_5k/store", |b| {
                b.iter_batched(
                    || setup(&store_path),
                    |()| assert_eq!(store.clear_expired().expect("clear"), CLEAR_EXPIRED as u64),
                    BatchSize::PerIteration,
                )
            });
            group.bench_function("clear_expired_10k_5k/raw", |b| {
                b.iter_batched(
                    || setup(&raw_path),
                    |()| {
                        let now = sqlite_text(Timestamp::now());
                        let mut total = 0;
                        loop {
                            let tx = raw
                                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                                .expect("begin");
                            let n = tx
                                .prepare_cached(SQLITE_CLEAR)
                                .expect("prepare")
                                .execute([&now])
                                .expect("delete");
                            tx.commit().expect("commit");
                            total += n;
                            if n < 1000 {
                                break;
                            }
                        }
                        assert_eq!(total, CLEAR_EXPIRED);
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        group.finish();
    }
}

fn postgres(c: &mut Criterion) {
    let Some(base) = postgres_url() else { return };
    let db = TempPostgresDatabase::create(&base);
    let schema_url = |schema: &str| format!("{}?options=-c%20search_path%3D{schema}", db.url());
    let mut admin = postgres::Client::connect(db.url(), NoTls).expect("connect");
    admin
        .batch_execute("CREATE SCHEMA store; CREATE SCHEMA raw")
        .expect("schemas");
    let store = SqlStore::open(
        &DatabaseUrl::parse(&schema_url("store")).expect("url"),
        SqlStoreOptions::default(),
    )
    .expect("store");
    drop(SqlStore::open(
        &DatabaseUrl::parse(&schema_url("raw")).expect("url"),
        SqlStoreOptions::default(),
    ));
    let mut raw = postgres::Client::connect(&schema_url("raw"), NoTls).expect("raw");
    let live = in_secs(3600);
    let fill = |client: &mut postgres::Client,
                prefix: &str,
                from: usize,
                to: usize,
                expire: Timestamp| {
        client
            .execute(
                r#"INSERT INTO "django_session" SELECT $1 || lpad(g::text, 28, '0'), repeat('x', 264), $2 FROM generate_series($3::int, $4::int - 1) g"#,
                &[&prefix, &chrono(expire), &(from as i32), &(to as i32)],
            )
            .expect("fill");
    };
    fill(
        &mut postgres::Client::connect(&schema_url("store"), NoTls).expect("c"),
        "w",
        0,
        WORKING_SET,
        live,
    );
    fill(&mut raw, "w", 0, WORKING_SET, live);

    let mut group = c.benchmark_group("postgres");
    let i = Cell::new(0usize);
    group.bench_function("load/store", |b| {
        b.iter(|| {
            let n = i.replace(i.get() + 1) % WORKING_SET;
            store.load(&key("w", n)).expect("load").expect("present")
        })
    });
    let load = raw.prepare(PG_LOAD).expect("prepare");
    group.bench_function("load/raw", |b| {
        b.iter(|| {
            let n = i.replace(i.get() + 1) % WORKING_SET;
            let row = raw
                .query_one(&load, &[&key("w", n), &chrono(Timestamp::now())])
                .expect("load");
            (row.get::<_, String>(0), row.get::<_, DateTime<Utc>>(1))
        })
    });
    let created = Cell::new(0usize);
    group.bench_function("create/store", |b| {
        b.iter(|| {
            let n = created.replace(created.get() + 1);
            store
                .create(write(key("c", n), payload(n as u64), live))
                .expect("create")
        })
    });
    let insert = raw.prepare(PG_INSERT).expect("prepare");
    let created = Cell::new(0usize);
    group.bench_function("create/raw", |b| {
        b.iter(|| {
            let n = created.replace(created.get() + 1);
            raw.execute(&insert, &[&key("c", n), &payload(n as u64), &chrono(live)])
                .expect("insert")
        })
    });
    let saved = Cell::new(0u64);
    group.bench_function("update/store", |b| {
        b.iter(|| {
            let n = saved.replace(saved.get() + 1);
            let expire = Timestamp::from_micros(live.micros + n as i64);
            store
                .save(write(
                    key("w", n as usize % WORKING_SET),
                    payload(n + 1_000_000),
                    expire,
                ))
                .expect("save")
        })
    });
    bench_conditional_save(&mut group, &store, live);
    let update = raw.prepare(PG_UPDATE).expect("prepare");
    let saved = Cell::new(0u64);
    group.bench_function("update/raw", |b| {
        b.iter(|| {
            let n = saved.replace(saved.get() + 1);
            let expire = Timestamp::from_micros(live.micros + n as i64);
            let k = key("w", n as usize % WORKING_SET);
            assert_eq!(
                raw.execute(&update, &[&k, &payload(n + 1_000_000), &chrono(expire)])
                    .expect("update"),
                1
            );
        })
    });
    drop(group);

    let mut group = c.benchmark_group("postgres");
    group.sample_size(10);
    let setup = |url: &str| {
        let mut client = postgres::Client::connect(url, NoTls).expect("connect");
        client
            .batch_execute("TRUNCATE django_session")
            .expect("truncate");
        fill(&mut client, "e", 0, CLEAR_EXPIRED, in_secs(-3600));
        fill(&mut client, "e", CLEAR_EXPIRED, CLEAR_ROWS, live);
        client
            .batch_execute("VACUUM ANALYZE django_session")
            .expect("vacuum");
    };
    let store_url = schema_url("store");
    group.bench_function("clear_expired_10k_5k/store", |b| {
        b.iter_batched(
            || setup(&store_url),
            |()| assert_eq!(store.clear_expired().expect("clear"), CLEAR_EXPIRED as u64),
            BatchSize::PerIteration,
        )
    });
    let raw_url = schema_url("raw");
    let clear = raw.prepare(PG_CLEAR).expect("prepare");
    group.bench_function("clear_expired_10k_5k/raw", |b| {
        b.iter_batched(
            || setup(&raw_url),
            |()| {
                let now = chrono(Timestamp::now());
                let mut total = 0;
                loop {
                    let n = raw.execute(&clear, &[&now]).expect("delete");
                    total += n;
                    if n < 1000 {
                        break;
                    }
                }
                assert_eq!(total, CLEAR_EXPIRED as u64);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    drop(store);
    drop(raw);
}

/// The store on MySQL/MariaDB: the same per-operation loops as `postgres/*/store`.
fn mysql(c: &mut Criterion) {
    let Some(base) = mysql_url() else { return };
    let db = TempMysqlDatabase::create(&base);
    let store = SqlStore::open(
        &DatabaseUrl::parse(db.url()).expect("url"),
        SqlStoreOptions::default(),
    )
    .expect("store");
    let live = in_secs(3600);
    for n in 0..WORKING_SET {
        store
            .create(write(key("w", n), payload(n as u64), live))
            .expect("fill");
    }

    let mut group = c.benchmark_group("mysql");
    let i = Cell::new(0usize);
    group.bench_function("load/store", |b| {
        b.iter(|| {
            let n = i.replace(i.get() + 1) % WORKING_SET;
            store.load(&key("w", n)).expect("load").expect("present")
        })
    });
    // Before create/store, which takes the same `c…` keys.
    bench_conditional_save(&mut group, &store, live);
    let created = Cell::new(0usize);
    group.bench_function("create/store", |b| {
        b.iter(|| {
            let n = created.replace(created.get() + 1);
            store
                .create(write(key("c", n), payload(n as u64), live))
                .expect("create")
        })
    });
    let saved = Cell::new(0u64);
    group.bench_function("update/store", |b| {
        b.iter(|| {
            let n = saved.replace(saved.get() + 1);
            let expire = Timestamp::from_micros(live.micros + n as i64);
            store
                .save(write(
                    key("w", n as usize % WORKING_SET),
                    payload(n + 1_000_000),
                    expire,
                ))
                .expect("save")
        })
    });
    group.finish();
    drop(store);
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
    targets = sqlite, postgres, mysql
}
criterion_main!(benches);
