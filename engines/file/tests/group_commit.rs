//! Group commit (issue 11): concurrent creates, saves and deletes on many keys get exactly the
//! outcomes they would get one at a time, and share directory fsyncs. The crash side (no
//! acknowledged write lost under kill -9 with many writer threads) is in `crash.rs`.

mod common;

use std::{
    sync::{Arc, Barrier},
    thread,
};

use serde_json::json;
use sessionkit_engine_file::{Durability, FileStore};
use sessionkit_sdk::{ErrorKind, SessionStore};

use common::{Fixture, Writer, key};

const THREADS: u64 = 32;
const ROUNDS: u64 = 12;
/// Every thread also saves this one session, so writers of one key overlap too.
const SHARED: u64 = 999_999;

/// The value stored in a session written by `thread` in `round` as version `v`.
fn value(thread: u64, round: u64, v: u64) -> serde_json::Value {
    json!({"t": thread, "r": round, "v": v})
}

fn own_key(thread: u64, round: u64) -> String {
    key(thread * 1000 + round)
}

/// One writer thread's work; returns how many of its writes changed the directory (each of
/// which must be covered by a directory fsync before it returns).
fn writer_work(store: &FileStore, writer: &Writer, thread: u64) -> u64 {
    let mut durable_writes = 0;
    for round in 0..ROUNDS {
        let own = own_key(thread, round);
        store
            .create(writer.write(&own, value(thread, round, 0)))
            .expect("a fresh key is created");
        durable_writes += 1;
        let again = store
            .create(writer.write(&own, value(thread, round, 9)))
            .expect_err("a taken key is not created again");
        assert_eq!(again.kind, ErrorKind::AlreadyExists, "{again}");
        store
            .save(writer.write(&own, value(thread, round, 1)))
            .expect("an existing session is saved");
        durable_writes += 1;
        let loaded = store.load(&own).expect("load").expect("just saved");
        assert_eq!(
            writer.decode(&loaded)["v"],
            1,
            "thread {thread} round {round}"
        );

        store
            .save(writer.write(&key(SHARED), value(thread, round, 2)))
            .expect("the shared session is saved");
        durable_writes += 1;

        if round % 3 == 0 {
            store.delete(&own).expect("delete");
            durable_writes += 1;
            let late = store
                .save(writer.write(&own, value(thread, round, 3)))
                .expect_err("a deleted session is not resurrected");
            assert_eq!(late.kind, ErrorKind::NotFound, "{late}");
            assert!(store.load(&own).expect("load").is_none());
        }
    }
    durable_writes
}

/// Runs every writer thread at once on a store with `durability`; the fixture, the writes
/// that changed the directory and the directory fsyncs the store ran for them.
fn run(durability: Durability) -> (Fixture, u64, u64) {
    let fixture = Fixture::with(|config| config.with_durability(durability));
    fixture
        .store
        .create(fixture.write(&key(SHARED), value(0, 0, 0)))
        .expect("create the shared session");
    let syncs_before = fixture.store.directory_syncs();
    let start = Arc::new(Barrier::new(THREADS as usize));
    let writes: u64 = thread::scope(|scope| {
        let handles: Vec<_> = (1..=THREADS)
            .map(|thread| {
                let (fixture, start) = (&fixture, start.clone());
                scope.spawn(move || {
                    start.wait();
                    writer_work(&fixture.store, &fixture.writer, thread)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .sum()
    });
    let syncs = fixture.store.directory_syncs() - syncs_before;
    check_final_state(&fixture);
    (fixture, writes, syncs)
}

/// Exactly the sessions that were not deleted are left, each with its last save, and no
/// temporary file.
fn check_final_state(fixture: &Fixture) {
    let mut expected = vec![format!("sessionid{}", key(SHARED))];
    for thread in 1..=THREADS {
        for round in 0..ROUNDS {
            let own = own_key(thread, round);
            let loaded = fixture.store.load(&own).expect("load");
            if round % 3 == 0 {
                assert!(loaded.is_none(), "thread {thread} round {round} deleted");
            } else {
                let session = fixture.decode(&loaded.expect("kept"));
                assert_eq!(
                    session,
                    value(thread, round, 1).as_object().cloned().expect("map")
                );
                expected.push(format!("sessionid{own}"));
            }
        }
    }
    expected.sort();
    assert_eq!(fixture.entries(), expected, "sessions left, no temporaries");
    let shared = fixture
        .store
        .load(&key(SHARED))
        .expect("load")
        .expect("the shared session");
    let shared = fixture.decode(&shared);
    assert_eq!(
        shared["v"], 2,
        "the shared session holds one writer's save: {shared:?}"
    );
}

#[test]
fn concurrent_writers_get_their_outcomes_and_share_directory_fsyncs() {
    let (_fixture, writes, syncs) = run(Durability::GroupCommit);
    println!(
        "group commit: {writes} writes, {syncs} directory fsyncs ({:.1} writes per fsync)",
        writes as f64 / syncs.max(1) as f64
    );
    assert!(syncs > 0, "every write is made durable");
    assert!(
        syncs < writes,
        "{THREADS} concurrent writers: {syncs} directory fsyncs for {writes} writes, none shared"
    );
}

#[test]
fn per_write_durability_fsyncs_the_directory_once_per_write() {
    // The baseline the benches compare against: same outcomes, one fsync per write (this also
    // checks that the sync count the other tests rely on counts every fsync).
    let (_fixture, writes, syncs) = run(Durability::PerWrite);
    assert_eq!(syncs, writes);
}

#[test]
fn a_lone_writer_runs_its_own_directory_fsync_for_every_write() {
    // Nothing to share: each write's fsync starts after its rename, none is skipped.
    let fixture = Fixture::new();
    let before = fixture.store.directory_syncs();
    let k = key(1);
    fixture
        .store
        .create(fixture.write(&k, json!({"n": 0})))
        .expect("create");
    for n in 1..=10 {
        fixture
            .store
            .save(fixture.write(&k, json!({"n": n})))
            .expect("save");
    }
    fixture.store.delete(&k).expect("delete");
    assert_eq!(fixture.store.directory_syncs() - before, 12);
}

#[test]
fn group_commit_is_the_default() {
    let fixture = Fixture::new();
    assert_eq!(fixture.store.config().durability(), Durability::GroupCommit);
}
