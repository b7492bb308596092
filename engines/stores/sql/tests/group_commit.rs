//! Group commit on SQLite: concurrent writers share commits, and each still gets exactly the
//! outcome it would get alone (a taken key, a stale conditional save, a missing row are that
//! write's own), with nothing reported done before the commit that holds it.
//!
//! Batching is shown without timing: another connection holds the database's write lock, the
//! first writer blocks in SQLite's busy handler, and the test waits until the others have
//! queued behind it (`group_commit_counts().queued`) before releasing the lock; the queued
//! writes must then share one commit.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

use std::{
    path::Path,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use sessionkit_sdk::{
    ConditionalSave, ErrorKind, SessionRecord, SessionStore, SessionWrite, StoreResult, Timestamp,
};
use sessionkit_sql::{DatabaseUrl, SqlStore, SqlStoreOptions};

fn open(db: &Path, query: &str, options: SqlStoreOptions) -> Arc<SqlStore> {
    let url = DatabaseUrl::parse(&format!("sqlite://{}{query}", db.display())).unwrap();
    Arc::new(SqlStore::open(&url, options).unwrap())
}

fn write(key: &str, data: &str) -> SessionWrite {
    write_as(key, data, "{}")
}

fn write_as(key: &str, data: &str, session_json: &str) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            key,
            data,
            Timestamp::from_micros(Timestamp::now().micros + 3_600_000_000),
        ),
        session_json,
    )
}

fn stored(store: &SqlStore, key: &str) -> Option<String> {
    store
        .load(key)
        .unwrap()
        .map(|record| record.session_data.to_string())
}

fn batches(store: &SqlStore) -> u64 {
    store
        .group_commit_counts()
        .expect("a file store groups its writes")
        .batches
}

/// One writer's work: a single store call, returning what it got.
type Writer<T> = Box<dyn FnOnce(&SqlStore) -> T + Send>;

/// Runs `writers` (one write each) while another connection holds the write lock, releasing it
/// only once all but the first (blocked inside SQLite) are queued in the group commit; returns
/// their results in order. The first writer's batch holds it alone, the rest share the next.
fn run_behind_a_held_lock<T: Send + 'static>(
    store: &Arc<SqlStore>,
    db: &Path,
    writers: Vec<Writer<T>>,
) -> Vec<T> {
    let count = writers.len();
    let lock = rusqlite::Connection::open(db).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let handles: Vec<_> = writers
        .into_iter()
        .map(|writer| {
            let store = Arc::clone(store);
            thread::spawn(move || writer(&store))
        })
        .collect();
    // Bounded by the store's 5 s busy_timeout, after which the first writer would fail: the
    // others queue within milliseconds.
    let deadline = Instant::now() + Duration::from_secs(4);
    while store.group_commit_counts().unwrap().queued < count - 1 {
        assert!(
            Instant::now() < deadline,
            "the writers never queued behind the held lock"
        );
        thread::sleep(Duration::from_millis(1));
    }
    lock.execute_batch("COMMIT").unwrap();
    handles
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .collect()
}

/// What a writer of the mixed batch got, by the operation it ran.
#[derive(Debug)]
enum Got {
    Created(StoreResult<String>),
    Conditional(StoreResult<ConditionalSave>),
    Deleted(StoreResult<()>),
    Saved(StoreResult<String>),
}

#[test]
fn writers_queued_behind_a_commit_share_the_next_one_and_each_gets_its_own_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.sqlite3");
    let store = open(&db, "", SqlStoreOptions::default());
    store.create(write("cas", "v0")).unwrap();
    for i in 8..12 {
        store.create(write(&format!("del{i}"), "x")).unwrap();
    }
    let before = batches(&store);

    let writers: Vec<Writer<Got>> = (0..16)
        .map(|i| -> Writer<Got> {
            match i {
                // Four creates of one key: exactly one wins.
                0..4 => Box::new(move |s| Got::Created(s.create(write("dup", &format!("dup{i}"))))),
                // Four conditional saves expecting the same data: exactly one wins.
                4..8 => Box::new(move |s| {
                    Got::Conditional(s.save_if_unchanged(write("cas", &format!("cas{i}")), "v0"))
                }),
                8..12 => Box::new(move |s| Got::Deleted(s.delete(&format!("del{i}")))),
                // Saves of sessions that were never stored.
                12..14 => Box::new(move |s| Got::Saved(s.save(write(&format!("missing{i}"), "x")))),
                _ => Box::new(move |s| Got::Created(s.create(write(&format!("new{i}"), "n")))),
            }
        })
        .collect();
    let got = run_behind_a_held_lock(&store, &db, writers);

    assert_eq!(
        batches(&store) - before,
        2,
        "the first writer alone, then the 15 that queued behind it in one commit"
    );

    let mut dup_winners = Vec::new();
    for (i, outcome) in got[0..4].iter().enumerate() {
        match outcome {
            Got::Created(Ok(key)) => {
                assert_eq!(key, "dup");
                dup_winners.push(i);
            }
            Got::Created(Err(e)) => assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}"),
            other => panic!("writer {i}: {other:?}"),
        }
    }
    assert_eq!(dup_winners.len(), 1, "one create of a key wins: {got:?}");
    assert_eq!(
        stored(&store, "dup"),
        Some(format!("dup{}", dup_winners[0]))
    );

    let winner = stored(&store, "cas").unwrap();
    let mut saved = 0;
    for (i, outcome) in got[4..8].iter().enumerate().map(|(n, o)| (n + 4, o)) {
        match outcome {
            Got::Conditional(Ok(ConditionalSave::Saved(key))) => {
                assert_eq!(key, "cas");
                assert_eq!(winner, format!("cas{i}"));
                saved += 1;
            }
            Got::Conditional(Ok(ConditionalSave::Conflict(current))) => {
                assert_eq!(current.session_data.as_str(), winner, "writer {i}");
            }
            other => panic!("writer {i}: {other:?}"),
        }
    }
    assert_eq!(
        saved, 1,
        "one save of the same loaded version wins: {got:?}"
    );

    for (i, outcome) in got.iter().enumerate().take(12).skip(8) {
        assert!(
            matches!(outcome, Got::Deleted(Ok(()))),
            "writer {i}: {outcome:?}"
        );
        assert_eq!(stored(&store, &format!("del{i}")), None);
    }
    for (i, outcome) in got.iter().enumerate().take(14).skip(12) {
        assert!(
            matches!(outcome, Got::Saved(Err(e)) if e.kind == ErrorKind::NotFound),
            "writer {i}: {outcome:?}"
        );
        assert_eq!(
            stored(&store, &format!("missing{i}")),
            None,
            "never an upsert"
        );
    }
    for (i, outcome) in got.iter().enumerate().skip(14) {
        assert!(
            matches!(outcome, Got::Created(Ok(_))),
            "writer {i}: {outcome:?}"
        );
        assert_eq!(stored(&store, &format!("new{i}")).as_deref(), Some("n"));
    }
}

/// The account column is bound in a batch as in a lone write.
#[test]
fn a_shared_commit_stores_each_session_under_its_account() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.sqlite3");
    let store = open(&db, "", SqlStoreOptions::default().with_account_column());
    let before = batches(&store);
    let writers: Vec<Writer<StoreResult<String>>> = (0..8)
        .map(|i| -> Writer<StoreResult<String>> {
            Box::new(move |s| {
                let json = format!(r#"{{"_auth_user_id":"{}"}}"#, 100 + i % 2);
                s.create(write_as(&format!("acct{i}"), "x", &json))
            })
        })
        .collect();
    for outcome in run_behind_a_held_lock(&store, &db, writers) {
        outcome.unwrap();
    }
    assert_eq!(batches(&store) - before, 2);
    for account in [100, 101] {
        let mut keys: Vec<String> = store
            .sessions_of_account(account)
            .unwrap()
            .into_iter()
            .map(|r| r.session_key.to_string())
            .collect();
        keys.sort();
        let expected: Vec<String> = (0..8)
            .filter(|i| 100 + i % 2 == account)
            .map(|i| format!("acct{i}"))
            .collect();
        assert_eq!(keys, expected, "account {account}");
    }
}

/// Concurrent writers with colliding creates, a counter kept by conditional saves (retrying on
/// conflict), saves and deletes of their own sessions: every outcome is the one the write
/// would get in some serial order, and no update is lost. Returns the writes issued.
fn mixed_concurrent_writes(store: &Arc<SqlStore>, writers: usize, rounds: usize) -> u64 {
    store.create(write("counter", "0")).unwrap();
    let handles: Vec<_> = (0..writers)
        .map(|t| {
            let store = Arc::clone(store);
            thread::spawn(move || {
                let mut writes = 0u64;
                let mut won = Vec::new();
                for r in 0..rounds {
                    let own = format!("own-{t}-{r}");
                    store.create(write(&own, "a")).unwrap();
                    match store.create(write(&format!("race-{r}"), &format!("race-{r}-{t}"))) {
                        Ok(_) => won.push(r),
                        Err(e) => assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}"),
                    }
                    // Increment the counter: load, conditional save, retry from what a
                    // conflict returns.
                    let mut current = stored(&store, "counter").unwrap();
                    loop {
                        writes += 1;
                        let next = (current.parse::<u64>().unwrap() + 1).to_string();
                        match store.save_if_unchanged(write("counter", &next), &current) {
                            Ok(ConditionalSave::Saved(_)) => break,
                            Ok(ConditionalSave::Conflict(now)) => {
                                assert_ne!(now.session_data.as_str(), current, "a false conflict");
                                current = now.session_data.to_string();
                            }
                            Err(e) => panic!("conditional save: {e}"),
                        }
                    }
                    store.save(write(&own, "b")).unwrap();
                    store.delete(&own).unwrap();
                    let gone = store.save(write(&own, "c")).unwrap_err();
                    assert_eq!(gone.kind, ErrorKind::NotFound, "{gone}");
                    store.delete(&own).unwrap();
                    writes += 6;
                }
                (t, won, writes)
            })
        })
        .collect();
    let mut winners = vec![Vec::new(); rounds];
    let mut writes = 0;
    for handle in handles {
        let (t, won, issued) = handle.join().unwrap();
        writes += issued;
        for r in won {
            winners[r].push(t);
        }
    }
    for (r, won) in winners.iter().enumerate() {
        assert_eq!(won.len(), 1, "race-{r} created by {won:?}");
        assert_eq!(
            stored(store, &format!("race-{r}")),
            Some(format!("race-{r}-{}", won[0]))
        );
    }
    assert_eq!(
        stored(store, "counter"),
        Some((writers * rounds).to_string()),
        "a conditional save lost an update"
    );
    for t in 0..writers {
        for r in 0..rounds {
            assert_eq!(stored(store, &format!("own-{t}-{r}")), None);
        }
    }
    writes
}

#[test]
fn concurrent_writers_get_their_own_outcomes_and_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir.path().join("sessions.sqlite3"),
        "",
        SqlStoreOptions::default(),
    );
    let before = batches(&store);
    let writes = mixed_concurrent_writes(&store, 16, 15);
    let commits = batches(&store) - before;
    println!("{writes} writes in {commits} commits");
    assert!(
        commits < writes,
        "{commits} commits for {writes} concurrent writes: none shared a commit"
    );
}

#[test]
fn with_group_commit_off_each_write_commits_alone_with_the_same_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir.path().join("sessions.sqlite3"),
        "?group_commit=off",
        SqlStoreOptions::default(),
    );
    assert_eq!(store.group_commit_counts(), None);
    // Few writers: without group commit they contend on SQLite's lock and busy handler.
    mixed_concurrent_writes(&store, 4, 5);
}

#[test]
fn memory_databases_do_not_group_writes() {
    let url = DatabaseUrl::parse("sqlite::memory:").unwrap();
    let store = SqlStore::open(&url, SqlStoreOptions::default()).unwrap();
    assert_eq!(store.group_commit_counts(), None);
    store.create(write("a", "1")).unwrap();
    assert_eq!(stored(&store, "a").as_deref(), Some("1"));
}
