//! `save_if_unchanged` (contract 0.2): one test per rule, then the races it exists for, across
//! threads and across processes.
//!
//! The multi-process race re-runs this test binary as its child processes, each given the
//! directory and the round count through the environment.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    env, fs,
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::{Arc, Barrier},
    thread,
    time::{Duration, Instant},
};

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use sessionkit_codec::expiry::ManualClock;
use sessionkit_engine_file::{FileConfig, FileStore};
use sessionkit_sdk::{ConditionalSave, ErrorKind, SessionRecord, SessionStore};

use common::{Fixture, SECRET, Writer, key};

/// Set in a child process: the session directory it races in.
const CHILD_DIR: &str = "SESSIONKIT_FILE_CONDITIONAL_CHILD_DIR";
/// Set in a child process: its writer number.
const CHILD_ID: &str = "SESSIONKIT_FILE_CONDITIONAL_CHILD_ID";
/// Set in a child process: how many rounds (keys) it races on.
const CHILD_ROUNDS: &str = "SESSIONKIT_FILE_CONDITIONAL_CHILD_ROUNDS";
/// The file whose appearance starts the children's race (so process start-up is not part of it).
const GO_FILE: &str = "go";

/// The data stored under `key` now (the test reads through the store, as the host would).
fn stored(fixture: &Fixture, key: &str) -> SessionRecord {
    fixture
        .store
        .load(key)
        .unwrap()
        .expect("the session is stored")
}

// ---------------------------------------------------------------------------------------------
// The rules.

#[test]
fn an_unchanged_record_is_saved_and_loads_as_the_write() {
    let fixture = Fixture::new();
    let first = fixture.write(&key(1), json!({"n": 1}));
    fixture.store.create(first.clone()).unwrap();
    let second = fixture.write(&key(1), json!({"n": 2}));
    let outcome = fixture
        .store
        .save_if_unchanged(second.clone(), &first.record.session_data)
        .unwrap();
    assert_eq!(outcome, ConditionalSave::Saved(key(1)));
    assert_eq!(stored(&fixture, &key(1)), second.record);
    assert_eq!(
        fixture.entries(),
        [format!("sessionid{}", key(1))],
        "no temporary left"
    );
}

#[test]
fn a_changed_record_stores_nothing_and_comes_back_as_stored() {
    let fixture = Fixture::new();
    let loaded = fixture.write(&key(1), json!({"n": 1}));
    fixture.store.create(loaded.clone()).unwrap();
    let other = fixture.write(&key(1), json!({"n": "other request"}));
    fixture.store.save(other.clone()).unwrap();

    let mine = fixture.write(&key(1), json!({"n": 2}));
    let outcome = fixture
        .store
        .save_if_unchanged(mine, &loaded.record.session_data)
        .unwrap();
    assert_eq!(outcome, ConditionalSave::Conflict(other.record.clone()));
    assert_eq!(stored(&fixture, &key(1)), other.record, "nothing stored");
    assert_eq!(fixture.entries(), [format!("sessionid{}", key(1))]);
}

#[test]
fn a_vanished_session_fails_with_not_found_and_is_not_brought_back() {
    let fixture = Fixture::new();
    let loaded = fixture.write(&key(1), json!({"n": 1}));
    fixture.store.create(loaded.clone()).unwrap();
    fixture.store.delete(&key(1)).unwrap();
    let error = fixture
        .store
        .save_if_unchanged(
            fixture.write(&key(1), json!({"n": 2})),
            &loaded.record.session_data,
        )
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound, "{error}");
    assert!(fixture.entries().is_empty(), "{:?}", fixture.entries());
}

#[test]
fn an_expired_session_fails_with_not_found_even_with_the_expected_data() {
    let fixture = Fixture::new();
    let loaded = fixture.write(&key(1), json!({"n": 1}));
    fixture.store.create(loaded.clone()).unwrap();
    let later = FileStore::open(&FileConfig::new(fixture.dir.path(), SECRET))
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(Utc::now() + TimeDelta::days(15))));
    let error = later
        .save_if_unchanged(
            fixture.write(&key(1), json!({"n": 2})),
            &loaded.record.session_data,
        )
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound, "{error}");
    assert_eq!(
        stored(&fixture, &key(1)),
        loaded.record,
        "nothing stored over it"
    );
}

#[test]
fn a_placeholder_or_a_symlink_is_no_session_to_save_over() {
    let fixture = Fixture::new();
    fixture.plant(&key(1), b"");
    let outside = tempfile::NamedTempFile::new().unwrap();
    let planted = fixture.encode(json!({"planted": true}));
    fs::write(outside.path(), &planted).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path(), fixture.path(&key(2))).unwrap();
    for (k, expected) in [(key(1), ""), (key(2), planted.as_str())] {
        let error = fixture
            .store
            .save_if_unchanged(fixture.write(&k, json!({"n": 2})), expected)
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound, "{error}");
    }
    assert_eq!(fs::read(fixture.path(&key(1))).unwrap(), b"");
    assert_eq!(fs::read_to_string(outside.path()).unwrap(), planted);
}

#[test]
fn an_invalid_key_or_unstorable_data_is_an_error_and_touches_nothing() {
    let fixture = Fixture::new();
    let loaded = fixture.write(&key(1), json!({"n": 1}));
    fixture.store.create(loaded.clone()).unwrap();
    let mut bad_key = fixture.write(&key(1), json!({"n": 2}));
    bad_key.record.session_key = "../../etc/passwd".into();
    assert!(
        fixture
            .store
            .save_if_unchanged(bad_key, &loaded.record.session_data)
            .is_err()
    );
    let mut not_ascii = fixture.write(&key(1), json!({"n": 2}));
    not_ascii.record.session_data = "sessión".into();
    assert!(
        fixture
            .store
            .save_if_unchanged(not_ascii, &loaded.record.session_data)
            .is_err()
    );
    assert_eq!(stored(&fixture, &key(1)), loaded.record);
    assert_eq!(fixture.entries(), [format!("sessionid{}", key(1))]);
}

// ---------------------------------------------------------------------------------------------
// Races between threads.

#[test]
fn of_racing_threads_expecting_the_same_data_exactly_one_saves() {
    let fixture = Arc::new(Fixture::new());
    let writers = 8;
    // Losers here never retry, so each keeps the file's lock for the hand-off grace: few rounds.
    let rounds = 10;
    for round in 0..rounds {
        let k = key(round);
        let loaded = fixture.write(&k, json!({"round": round}));
        fixture.store.create(loaded.clone()).unwrap();
        let barrier = Arc::new(Barrier::new(writers));
        let handles: Vec<_> = (0..writers)
            .map(|who| {
                let (fixture, barrier, k) = (fixture.clone(), barrier.clone(), k.clone());
                let expected = loaded.record.session_data.to_string();
                thread::spawn(move || {
                    let write = fixture.write(&k, json!({"round": round, "who": who}));
                    barrier.wait();
                    let outcome = fixture.store.save_if_unchanged(write.clone(), &expected);
                    (write, outcome.unwrap())
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<_> = results
            .iter()
            .filter(|(_, outcome)| matches!(outcome, ConditionalSave::Saved(_)))
            .map(|(write, _)| write)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}");
        let winner = &winners[0].record;
        assert_eq!(&stored(&fixture, &k), winner, "round {round}");
        for (_, outcome) in &results {
            if let ConditionalSave::Conflict(current) = outcome {
                assert_eq!(current, winner, "a loser sees the winner's record");
            }
        }
    }
    assert_eq!(
        fixture.entries().len(),
        rounds as usize,
        "no temporaries left"
    );
}

#[test]
fn writers_that_merge_on_conflict_lose_no_update() {
    // What the host does with the capability: on a conflict, apply this request's change to
    // the record that won and try again.
    let fixture = Arc::new(Fixture::new());
    let k = key(1);
    fixture.store.create(fixture.write(&k, json!({}))).unwrap();
    let writers = 8;
    let barrier = Arc::new(Barrier::new(writers));
    let handles: Vec<_> = (0..writers)
        .map(|who| {
            let (fixture, barrier, k) = (fixture.clone(), barrier.clone(), k.clone());
            thread::spawn(move || {
                let mut current = fixture.store.load(&k).unwrap().unwrap();
                barrier.wait();
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let mut session = fixture.decode(&current);
                    session.insert(format!("writer{who}"), Value::from(who));
                    let write = fixture.write(&k, Value::Object(session));
                    match fixture
                        .store
                        .save_if_unchanged(write, &current.session_data)
                        .unwrap()
                    {
                        ConditionalSave::Saved(_) => return attempts,
                        ConditionalSave::Conflict(latest) => current = latest,
                    }
                }
            })
        })
        .collect();
    let attempts: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let session = fixture.decode(&stored(&fixture, &k));
    for who in 0..writers {
        assert_eq!(session[&format!("writer{who}")], who, "{session:?}");
    }
    println!("attempts per writer: {attempts:?}");
}

#[test]
fn a_conditional_save_racing_a_delete_never_resurrects() {
    let fixture = Arc::new(Fixture::new());
    for round in 0..100 {
        let k = key(round);
        let loaded = fixture.write(&k, json!({"v": 0}));
        fixture.store.create(loaded.clone()).unwrap();
        let barrier = Arc::new(Barrier::new(3));
        let savers: Vec<_> = (0..2)
            .map(|who| {
                let (fixture, barrier, k) = (fixture.clone(), barrier.clone(), k.clone());
                let expected = loaded.record.session_data.to_string();
                thread::spawn(move || {
                    let write = fixture.write(&k, json!({"v": who + 1}));
                    barrier.wait();
                    fixture.store.save_if_unchanged(write, &expected)
                })
            })
            .collect();
        barrier.wait();
        fixture.store.delete(&k).unwrap();
        for saver in savers {
            match saver.join().unwrap() {
                Ok(_) => {}
                Err(e) => assert_eq!(e.kind, ErrorKind::NotFound, "{e}"),
            }
        }
        assert!(
            !fixture.store.exists(&k).unwrap(),
            "round {round}: a delete was undone"
        );
    }
    assert!(fixture.entries().is_empty(), "{:?}", fixture.entries());
}

#[cfg(unix)]
#[test]
fn a_file_replaced_while_a_saver_waits_for_its_lock_is_compared_again() {
    let fixture = Arc::new(Fixture::new());
    let k = key(1);
    let loaded = fixture.write(&k, json!({"n": 1}));
    fixture.store.create(loaded.clone()).unwrap();
    // Another writer holds the file's lock (as a saver of another process would).
    let held = fs::File::open(fixture.path(&k)).unwrap();
    held.lock().unwrap();
    let saver = {
        let (fixture, k) = (fixture.clone(), k.clone());
        let expected = loaded.record.session_data.to_string();
        thread::spawn(move || {
            let write = fixture.write(&k, json!({"n": "saver"}));
            fixture.store.save_if_unchanged(write, &expected)
        })
    };
    // Give the saver time to pass its unlocked look and block on the lock. (If it is slower,
    // its first look already sees the replacement below: the outcome is the same.)
    thread::sleep(Duration::from_millis(300));
    // The lock holder replaces the file, as a save does, and lets go.
    let replacement = fixture.write(&k, json!({"n": "holder"}));
    let temp = fixture.dir.path().join(format!(".sessionid{k}_out_holder"));
    fs::write(&temp, replacement.record.session_data.as_bytes()).unwrap();
    fs::rename(&temp, fixture.path(&k)).unwrap();
    drop(held);

    let outcome = saver.join().unwrap().unwrap();
    let ConditionalSave::Conflict(current) = outcome else {
        panic!("the saver overwrote a file it never compared: {outcome:?}");
    };
    assert_eq!(current.session_data, replacement.record.session_data);
    assert_eq!(
        stored(&fixture, &k).session_data,
        replacement.record.session_data
    );
}

#[test]
fn plain_saves_and_conditional_saves_are_serialised_on_the_file() {
    // A plain save landing between a conditional save's check and its rename would be lost;
    // both take the file's lock, so every conditional save that reports Saved replaced exactly
    // the data it expected, and each round ends holding the last writer's data.
    let fixture = Arc::new(Fixture::new());
    let k = key(1);
    let initial = fixture.write(&k, json!({"v": "initial"}));
    fixture.store.create(initial.clone()).unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let plain = {
        let (fixture, barrier, k) = (fixture.clone(), barrier.clone(), k.clone());
        thread::spawn(move || {
            barrier.wait();
            for n in 0..200 {
                fixture
                    .store
                    .save(fixture.write(&k, json!({"v": format!("plain{n}")})))
                    .unwrap();
            }
        })
    };
    barrier.wait();
    let (mut saved, mut conflicts) = (0, 0);
    let mut current = stored(&fixture, &k);
    for n in 0..200 {
        let write = fixture.write(&k, json!({"v": format!("conditional{n}")}));
        match fixture
            .store
            .save_if_unchanged(write, &current.session_data)
            .unwrap()
        {
            ConditionalSave::Saved(_) => {
                saved += 1;
                current = stored(&fixture, &k);
            }
            ConditionalSave::Conflict(latest) => {
                conflicts += 1;
                current = latest;
            }
        }
    }
    plain.join().unwrap();
    assert_eq!(saved + conflicts, 200);
    assert_eq!(fixture.entries(), [format!("sessionid{k}")]);
    println!("conditional saves: {saved} saved, {conflicts} conflicts with plain saves");
}

// ---------------------------------------------------------------------------------------------
// Races between processes.

/// The child's side of the multi-process race; a no-op (that says so) in a normal test run.
#[test]
fn child_process_races() {
    let (Ok(dir), Ok(id), Ok(rounds)) = (
        env::var(CHILD_DIR),
        env::var(CHILD_ID),
        env::var(CHILD_ROUNDS),
    ) else {
        println!("skipped: runs only as a child process of the multi-process race");
        return;
    };
    let dir = Path::new(&dir);
    let rounds: u64 = rounds.parse().unwrap();
    let store = FileStore::open(&FileConfig::new(dir, SECRET)).unwrap();
    let writer = Writer::new(sessionkit_engine_file::config::DEFAULT_COOKIE_AGE);
    // What each request loaded, before the race starts: the record the parent created.
    let loaded: Vec<String> = (0..rounds)
        .map(|round| {
            store
                .load(&key(round))
                .unwrap()
                .unwrap()
                .session_data
                .into()
        })
        .collect();
    println!("ready");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join(GO_FILE).exists() {
        assert!(Instant::now() < deadline, "never told to start");
        thread::sleep(Duration::from_micros(200));
    }
    for (round, expected) in (0..rounds).zip(&loaded) {
        let k = key(round);
        let write = writer.write(&k, json!({"round": round, "who": id}));
        let outcome = match store.save_if_unchanged(write, expected).unwrap() {
            ConditionalSave::Saved(_) => "saved",
            ConditionalSave::Conflict(_) => "conflict",
        };
        println!("round {round} {outcome}");
    }
}

#[cfg(unix)]
#[test]
fn of_racing_processes_expecting_the_same_data_exactly_one_saves() {
    let processes = 4;
    // Losers never retry, so each keeps the file's lock for the hand-off grace: few rounds.
    let rounds = 15_u64;
    let fixture = Fixture::new();
    for round in 0..rounds {
        let write = fixture.write(&key(round), json!({"round": round}));
        fixture.store.create(write).unwrap();
    }
    let children: Vec<_> = (0..processes)
        .map(|id| {
            Command::new(env::current_exe().unwrap())
                .args([
                    "child_process_races",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_DIR, fixture.dir.path())
                .env(CHILD_ID, id.to_string())
                .env(CHILD_ROUNDS, rounds.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    // Every child has loaded what it expects before any of them starts saving.
    let mut outputs: Vec<_> = children
        .into_iter()
        .map(|mut child| {
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let ready = lines
                .by_ref()
                .map(Result::unwrap)
                .any(|l| l.ends_with("ready"));
            assert!(ready, "a child never got ready");
            (child, lines)
        })
        .collect();
    fs::write(fixture.dir.path().join(GO_FILE), b"").unwrap();
    let mut saved = vec![0_u32; rounds as usize];
    let mut answers = 0;
    for (child, lines) in &mut outputs {
        for line in lines {
            let line = line.unwrap();
            let Some(at) = line.find("round ") else {
                continue;
            };
            let mut words = line[at + 6..].split_whitespace();
            let round: usize = words.next().unwrap().parse().unwrap();
            answers += 1;
            if words.next() == Some("saved") {
                saved[round] += 1;
            }
        }
        assert!(child.wait().unwrap().success(), "a child failed");
    }
    assert_eq!(
        answers,
        processes * rounds as usize,
        "every attempt answered"
    );
    assert!(
        saved.iter().all(|&n| n == 1),
        "exactly one winner per round: {saved:?}"
    );
    for round in 0..rounds {
        let session = fixture.decode(&stored(&fixture, &key(round)));
        assert!(session.contains_key("who"), "round {round}: {session:?}");
    }
}
