//! `cached_db`'s write-through rules on every cache/database pairing this machine can run:
//! locmem + SQLite always, Redis + SQLite and Redis + PostgreSQL when
//! `SESSIONKIT_TEST_REDIS_URL` / `SESSIONKIT_TEST_POSTGRES_URL` are set.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

mod common;

use sessionkit_sdk::{ErrorKind, SessionStore};

use common::{signed_write, targets, value_of, write};

const KEY: &str = "cacheddbstore0123456789abcdefghi";

#[test]
fn a_cache_hit_is_served_without_reading_the_database() {
    for t in targets("hit") {
        t.store.create(signed_write(KEY, "cached", 60)).unwrap();
        // Remove the row behind the store's back: only the cache can answer now (Django
        // trusts a hit until its TTL runs out).
        t.store.db().delete(KEY).unwrap();
        let record = t.store.load(KEY).unwrap();
        assert_eq!(value_of(&record.unwrap()), "cached", "{}", t.label);
    }
}

#[test]
fn a_miss_reads_the_database_and_refills_the_cache_until_expire_date() {
    for t in targets("miss") {
        t.store.create(signed_write(KEY, "stored", 600)).unwrap();
        t.store.cache().delete(KEY).unwrap();
        assert_eq!(t.store.cache().load(KEY).unwrap(), None, "{}", t.label);
        let loaded = t.store.load(KEY).unwrap().expect("from the database");
        assert_eq!(value_of(&loaded), "stored", "{}", t.label);
        // Refilled: the same record (LocMem), or the row's verified dict (Redis).
        let cached = t.store.cache().load(KEY).unwrap().unwrap();
        assert_eq!(value_of(&cached), "stored", "{}", t.label);
        if t.redis.is_none() {
            assert_eq!(cached, loaded, "{}", t.label);
        }
        if let Some((backend, _)) = &t.redis {
            let physical = t.store.cache().cache_key(KEY);
            let pttl: i64 = backend
                .with_connection(|con| redis::cmd("PTTL").arg(&physical).query(con))
                .unwrap();
            assert!(pttl > 0 && pttl <= 600_000, "{}: PTTL {pttl}", t.label);
        }
    }
}

#[test]
fn create_writes_the_database_then_the_cache() {
    for t in targets("create") {
        assert_eq!(t.store.create(write(KEY, "new", 60)).unwrap(), KEY);
        assert!(t.store.db().load(KEY).unwrap().is_some(), "{}", t.label);
        assert!(t.store.cache().load(KEY).unwrap().is_some(), "{}", t.label);
    }
}

#[test]
fn create_of_a_key_taken_in_the_database_is_already_exists() {
    for t in targets("taken") {
        t.store.db().create(write(KEY, "db only", 60)).unwrap();
        let error = t.store.create(write(KEY, "second", 60)).unwrap_err();
        assert_eq!(error.kind, ErrorKind::AlreadyExists, "{}", t.label);
        assert_eq!(t.store.cache().load(KEY).unwrap(), None, "{}", t.label);
        assert_eq!(
            t.store.load(KEY).unwrap().unwrap().session_data.as_str(),
            "db only",
            "{}",
            t.label
        );
    }
}

#[test]
fn save_of_a_row_gone_from_the_database_is_not_found_even_if_cached() {
    for t in targets("gone") {
        t.store.cache().put(&write(KEY, "cache only", 60)).unwrap();
        let error = t.store.save(write(KEY, "update", 60)).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound, "{}", t.label);
        assert_eq!(t.store.cache().load(KEY).unwrap(), None, "{}", t.label);
        assert_eq!(t.store.load(KEY).unwrap(), None, "{}", t.label);
    }
}

#[test]
fn save_updates_the_database_and_the_cache() {
    for t in targets("save") {
        t.store.create(signed_write(KEY, "first", 60)).unwrap();
        t.store.save(signed_write(KEY, "second", 120)).unwrap();
        for (source, record) in [
            ("db", t.store.db().load(KEY).unwrap()),
            ("cache", t.store.cache().load(KEY).unwrap()),
            ("store", t.store.load(KEY).unwrap()),
        ] {
            assert_eq!(
                value_of(&record.unwrap()),
                "second",
                "{}: {source}",
                t.label
            );
        }
    }
}

#[test]
fn delete_removes_the_row_and_the_cache_entry() {
    for t in targets("delete") {
        t.store.create(write(KEY, "d", 60)).unwrap();
        t.store.delete(KEY).unwrap();
        assert!(!t.store.db().exists(KEY).unwrap(), "{}", t.label);
        assert!(!t.store.cache().exists(KEY).unwrap(), "{}", t.label);
        assert_eq!(t.store.load(KEY).unwrap(), None, "{}", t.label);
        assert_eq!(
            t.store.save(write(KEY, "stale", 60)).unwrap_err().kind,
            ErrorKind::NotFound,
            "{}",
            t.label
        );
        t.store.delete(KEY).unwrap();
    }
}

#[test]
fn exists_answers_from_the_cache_then_the_database() {
    for t in targets("exists") {
        assert!(!t.store.exists(KEY).unwrap(), "{}", t.label);
        t.store.cache().put(&write(KEY, "cache only", 60)).unwrap();
        assert!(t.store.exists(KEY).unwrap(), "{}: from the cache", t.label);
        t.store.cache().delete(KEY).unwrap();
        t.store.db().create(write(KEY, "db only", 60)).unwrap();
        assert!(
            t.store.exists(KEY).unwrap(),
            "{}: from the database",
            t.label
        );
    }
}

#[test]
fn load_of_an_unknown_key_creates_nothing_anywhere() {
    for t in targets("unknown") {
        assert_eq!(t.store.load(KEY).unwrap(), None, "{}", t.label);
        assert!(!t.store.db().exists(KEY).unwrap(), "{}", t.label);
        assert!(!t.store.cache().exists(KEY).unwrap(), "{}", t.label);
    }
}

#[test]
fn clear_expired_removes_expired_rows_from_the_database() {
    for t in targets("clear") {
        t.store.create(write(KEY, "live", 60)).unwrap();
        t.store
            .create(write("cacheddbexpired0123456789abcdefg", "dead", -10))
            .unwrap();
        assert_eq!(t.store.clear_expired().unwrap(), 1, "{}", t.label);
        assert!(t.store.load(KEY).unwrap().is_some(), "{}", t.label);
        assert!(
            !t.store.exists("cacheddbexpired0123456789abcdefg").unwrap(),
            "{}",
            t.label
        );
    }
}

#[test]
fn an_expired_row_never_loads_from_either_store() {
    for t in targets("expired") {
        t.store.create(write(KEY, "dead", -1)).unwrap();
        assert_eq!(t.store.load(KEY).unwrap(), None, "{}", t.label);
        assert_eq!(t.store.cache().load(KEY).unwrap(), None, "{}", t.label);
    }
}
