//! Crash consistency of the SQLite store: `kill -9` in the middle of saves (WAL,
//! `synchronous=FULL`) loses no acknowledged write, leaves a database that opens and passes
//! SQLite's own integrity check, and never a torn record — with one writer, and with many
//! concurrent writers whose saves share group commits.
//!
//! The child processes are this test binary itself, re-run with an environment variable that
//! turns `child_process_work` into the child's work.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use std::{
    collections::HashMap,
    env,
    io::BufRead as _,
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::Duration,
};

use sessionkit_sdk::{SessionRecord, SessionStore, SessionWrite, Timestamp};
use sessionkit_sql::{DatabaseUrl, SqlStore, SqlStoreOptions};

/// Set in a child process: the database file it writes to.
const CHILD_DB: &str = "SESSIONKIT_SQLITE_TEST_CHILD_DB";
/// How many times a writer is killed.
const KILL_ITERATIONS: u64 = 20;
/// The one session the writer keeps saving.
const KEY: &str = "sqlitecrashtest00000000000000001";

fn store(path: &Path) -> SqlStore {
    let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).unwrap();
    SqlStore::open(&url, SqlStoreOptions::new("django_session")).unwrap()
}

/// The data of write `n`: its number, then padding of a size that varies with it, so a torn
/// record cannot pass for a whole one.
fn data(n: u64) -> String {
    format!("{n}:{}", "p".repeat((n as usize * 397) % 3000))
}

fn write(n: u64) -> SessionWrite {
    write_key(KEY, n)
}

fn write_key(key: &str, n: u64) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            key,
            data(n),
            Timestamp::from_micros(Timestamp::now().micros + 3_600_000_000),
        ),
        "{}",
    )
}

/// The child's side: saves in a loop and prints `ack N` after each save returned. A no-op (that
/// says so) in a normal test run.
#[test]
fn child_process_work() {
    let Ok(db) = env::var(CHILD_DB) else {
        println!("skipped: runs only as the child process of the crash test in this file");
        return;
    };
    let store = store(Path::new(&db));
    for n in 1_u64.. {
        store.save(write(n)).unwrap();
        println!("ack {n}");
    }
}

#[test]
fn kill_9_during_saves_loses_no_acknowledged_write_and_leaves_an_intact_database() {
    let mut acked_per_kill = Vec::new();
    for iteration in 0..KILL_ITERATIONS {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sessions.sqlite3");
        store(&db).create(write(0)).unwrap();

        let mut child = Command::new(env::current_exe().unwrap());
        child
            .args([
                "child_process_work",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &db);
        // Somewhere between the child's start and a few dozen fsyncs in.
        let acked = sessionkit_testkit::kill_after(
            child,
            Duration::from_millis(50 + (iteration * 7919) % 450),
        );
        acked_per_kill.push(acked);

        assert_intact(&db, &format!("iteration {iteration}"));
        assert_survived(&store(&db), KEY, acked, &format!("iteration {iteration}"));
    }
    println!(
        "{KILL_ITERATIONS} kills; acknowledged writes before each: {acked_per_kill:?}; none lost"
    );
    assert!(
        acked_per_kill.iter().any(|&n| n > 0),
        "no kill happened after a save was acknowledged: the test proved nothing"
    );
}

/// Concurrent writer threads in the child of the many-writers crash test.
const WRITERS: u64 = 16;

/// The session writer `t` keeps saving.
fn writer_key(t: u64) -> String {
    format!("sqlitecrashwriter{t:015}")
}

/// The child's side of the many-writers test: `WRITERS` threads each save their own session
/// in a loop (their saves share group commits) and print `ack T N` after each save returned.
/// A no-op (that says so) in a normal test run.
#[test]
fn child_process_concurrent_work() {
    let Ok(db) = env::var(CHILD_DB) else {
        println!("skipped: runs only as the child process of the crash test in this file");
        return;
    };
    let store = Arc::new(store(Path::new(&db)));
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                let key = writer_key(t);
                for n in 1_u64.. {
                    store.save(write_key(&key, n)).unwrap();
                    println!("ack {t} {n}");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
}

/// Runs `child`, SIGKILLs it after `after`, and returns the last `ack T N` it printed for each
/// writer `T`.
fn kill_after_acks_per_writer(mut child: Command, after: Duration) -> HashMap<u64, u64> {
    let mut child = child
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let reader = {
        let stdout = child.stdout.take().unwrap();
        let acked = Arc::clone(&acked);
        thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may print "test child_process_concurrent_work ... " before the first
                // ack on the same line.
                let Some(at) = line.rfind("ack ") else {
                    continue;
                };
                let mut fields = line[at + 4..].split_whitespace().map(str::parse::<u64>);
                if let (Some(Ok(t)), Some(Ok(n))) = (fields.next(), fields.next()) {
                    let mut acked = acked.lock().unwrap();
                    let last = acked.entry(t).or_insert(0);
                    assert!(n > *last, "writer {t} acknowledged {n} after {last}");
                    *last = n;
                }
            }
        })
    };
    thread::sleep(after);
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    // The reader is joined: this is the last handle.
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

#[test]
fn kill_9_during_many_concurrent_saves_loses_no_acknowledged_write() {
    let mut acked_per_kill = Vec::new();
    for iteration in 0..KILL_ITERATIONS {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sessions.sqlite3");
        {
            let parent = store(&db);
            for t in 0..WRITERS {
                parent.create(write_key(&writer_key(t), 0)).unwrap();
            }
        }

        let mut child = Command::new(env::current_exe().unwrap());
        child
            .args([
                "child_process_concurrent_work",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &db);
        let acked =
            kill_after_acks_per_writer(child, Duration::from_millis(50 + (iteration * 7919) % 450));
        acked_per_kill.push(acked.values().sum::<u64>());

        assert_intact(&db, &format!("iteration {iteration}"));
        let reopened = store(&db);
        for t in 0..WRITERS {
            let acked = acked.get(&t).copied().unwrap_or(0);
            let context = format!("iteration {iteration}, writer {t}");
            assert_survived(&reopened, &writer_key(t), acked, &context);
        }
    }
    println!(
        "{KILL_ITERATIONS} kills of {WRITERS} concurrent writers; acknowledged writes before \
         each: {acked_per_kill:?}; none lost"
    );
    assert!(
        acked_per_kill.iter().any(|&n| n > WRITERS),
        "no kill happened after the writers' saves were acknowledged: the test proved nothing"
    );
}

/// The database at `db` opens and passes SQLite's own integrity check.
fn assert_intact(db: &Path, context: &str) {
    let check = rusqlite::Connection::open(db).unwrap();
    let integrity: String = check
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok", "{context}: the database is damaged");
}

/// The session under `key` holds a whole write numbered `acked` (the last acknowledged) or
/// `acked + 1` (attempted when the kill came): no acknowledged write lost, none torn.
fn assert_survived(store: &SqlStore, key: &str, acked: u64, context: &str) {
    let record = store
        .load(key)
        .unwrap()
        .expect("the session survives the kill");
    let stored = record.session_data.to_string();
    let n: u64 = stored
        .split_once(':')
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("{context}: a torn record {stored:?}"));
    assert_eq!(stored, data(n), "{context}: a torn record");
    assert!(n >= acked, "{context}: acknowledged {acked}, stored {n}");
    assert!(
        n <= acked + 1,
        "{context}: stored {n}, never attempted past {}",
        acked + 1
    );
}
