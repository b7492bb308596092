//! `cached_db`'s conditional save (issue 8): the database decides, the cache follows. The
//! database is the host's in-memory reference store (`sessionkit::testing::MemoryStore`),
//! which has a conditional save, so these tests do not wait for the SQL store's own; the
//! cache is LocMem.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    sync::{Arc, Barrier},
    thread,
};

use sessionkit::testing::MemoryStore;
use sessionkit_cache::{
    CACHED_DB_SESSION_PREFIX, CacheStore, KeyFunction, LocMemBackend, LocMemOptions, SystemClock,
};
use sessionkit_engine_cached_db::CachedDbStore;
use sessionkit_sdk::{
    Capabilities, ConditionalSave, ErrorKind, SessionRecord, SessionStore, SessionWrite,
    StoreResult,
};

use common::write;

const KEY: &str = "cacheddbcas0123456789abcdefghijk";

/// A database with a conditional save: the host's in-memory reference store, declaring the
/// capability it implements (the host's test engine declares it in its `EngineInfo`).
#[derive(Default)]
struct CasDb(MemoryStore);

impl SessionStore for CasDb {
    fn exists(&self, key: &str) -> StoreResult<bool> {
        self.0.exists(key)
    }
    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        self.0.load(key)
    }
    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        self.0.create(write)
    }
    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        self.0.save(write)
    }
    fn delete(&self, key: &str) -> StoreResult<()> {
        self.0.delete(key)
    }
    fn clear_expired(&self) -> StoreResult<u64> {
        self.0.clear_expired()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::CONDITIONAL_SAVE
    }
    fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: &str,
    ) -> StoreResult<ConditionalSave> {
        self.0.save_if_unchanged(write, expected_data)
    }
}

fn cache() -> CacheStore<LocMemBackend> {
    CacheStore::new(
        LocMemBackend::private(LocMemOptions::default(), Arc::new(SystemClock)),
        KeyFunction::default(),
        CACHED_DB_SESSION_PREFIX,
        Arc::new(SystemClock),
    )
}

fn store() -> CachedDbStore<CasDb, LocMemBackend> {
    CachedDbStore::new(CasDb::default(), cache(), "default")
}

fn data(record: Option<SessionRecord>) -> Option<String> {
    record.map(|r| r.session_data.into_string())
}

#[test]
fn conditional_save_is_declared_only_when_the_database_store_has_it() {
    assert!(
        store()
            .capabilities()
            .contains(Capabilities::CONDITIONAL_SAVE)
    );
    let sql = sessionkit_sql::SqlStore::open(
        &sessionkit_sql::DatabaseUrl::parse("sqlite::memory:").unwrap(),
        sessionkit_sql::SqlStoreOptions::default(),
    )
    .unwrap();
    let has_it = sql.capabilities().contains(Capabilities::CONDITIONAL_SAVE);
    let over_sql = CachedDbStore::new(sql, cache(), "default");
    assert_eq!(
        over_sql
            .capabilities()
            .contains(Capabilities::CONDITIONAL_SAVE),
        has_it,
        "cached_db follows the SQL store"
    );
    if !has_it {
        over_sql.create(write(KEY, "a", 60)).unwrap();
        let error = over_sql
            .save_if_unchanged(write(KEY, "b", 60), "a")
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unsupported);
        assert_eq!(data(over_sql.load(KEY).unwrap()).as_deref(), Some("a"));
    }
}

#[test]
fn a_saved_conditional_save_is_cached_as_save_does() {
    let store = store();
    store.create(write(KEY, "a", 60)).unwrap();
    let outcome = store.save_if_unchanged(write(KEY, "b", 60), "a").unwrap();
    assert_eq!(outcome, ConditionalSave::Saved(KEY.to_owned()));
    assert_eq!(data(store.db().load(KEY).unwrap()).as_deref(), Some("b"));
    assert_eq!(data(store.cache().load(KEY).unwrap()).as_deref(), Some("b"));
    assert_eq!(data(store.load(KEY).unwrap()).as_deref(), Some("b"));
}

#[test]
fn a_conflict_returns_the_stored_record_and_leaves_no_stale_entry() {
    let store = store();
    store.create(write(KEY, "a", 60)).unwrap();
    // The database moved on behind the cache (what a stale entry looks like).
    store.db().save(write(KEY, "theirs", 60)).unwrap();
    assert_eq!(data(store.load(KEY).unwrap()).as_deref(), Some("a"));
    let outcome = store
        .save_if_unchanged(write(KEY, "mine", 60), "a")
        .unwrap();
    let ConditionalSave::Conflict(current) = outcome else {
        panic!("expected a conflict, got {outcome:?}");
    };
    assert_eq!(current.session_data.as_str(), "theirs");
    assert_eq!(
        data(store.db().load(KEY).unwrap()).as_deref(),
        Some("theirs")
    );
    assert_eq!(
        store.cache().load(KEY).unwrap(),
        None,
        "the stale entry went"
    );
    assert_eq!(data(store.load(KEY).unwrap()).as_deref(), Some("theirs"));
    // Merging onto the current record then saves.
    let retried = store
        .save_if_unchanged(write(KEY, "theirs+mine", 60), "theirs")
        .unwrap();
    assert_eq!(retried, ConditionalSave::Saved(KEY.to_owned()));
    assert_eq!(
        data(store.load(KEY).unwrap()).as_deref(),
        Some("theirs+mine")
    );
}

#[test]
fn a_deleted_session_is_not_found_and_not_cached() {
    let store = store();
    store.create(write(KEY, "a", 60)).unwrap();
    store.delete(KEY).unwrap();
    let error = store
        .save_if_unchanged(write(KEY, "b", 60), "a")
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert_eq!(store.cache().load(KEY).unwrap(), None);
    assert_eq!(store.load(KEY).unwrap(), None);
}

#[test]
fn of_concurrent_conditional_saves_one_wins_and_the_cache_holds_its_record() {
    const WRITERS: usize = 32;
    let store = Arc::new(store());
    store.create(write(KEY, "start", 60)).unwrap();
    let barrier = Arc::new(Barrier::new(WRITERS));
    let outcomes: Vec<_> = (0..WRITERS)
        .map(|n| {
            let (store, barrier) = (store.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                store
                    .save_if_unchanged(write(KEY, &format!("writer {n}"), 60), "start")
                    .unwrap()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .collect();
    let saved: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, ConditionalSave::Saved(_)))
        .collect();
    assert_eq!(saved.len(), 1, "{outcomes:?}");
    let winner = data(store.db().load(KEY).unwrap()).unwrap();
    for outcome in &outcomes {
        if let ConditionalSave::Conflict(current) = outcome {
            assert_eq!(current.session_data.as_str(), winner);
        }
    }
    // Whatever the cache holds is the winner's record; a load gives it.
    if let Some(cached) = store.cache().load(KEY).unwrap() {
        assert_eq!(cached.session_data.as_str(), winner);
    }
    assert_eq!(data(store.load(KEY).unwrap()), Some(winner));
}
