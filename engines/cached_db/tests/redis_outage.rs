//! `cached_db` across a Redis outage (issue 9, defect 2): a private `redis-server` (never the
//! shared one), SQLite as the database. Before the fix, a logout while Redis was down deleted
//! the row, failed on the cache entry, and when Redis came back with its data the logged-out
//! key loaded again from the entry. Redis comes back here with the stale entry still in it
//! (killed after a `SAVE` and restarted from the dump, or stopped and continued), since that
//! entry is the danger.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

#[path = "../../stores/cache/tests/common/mod.rs"]
mod redis_common;

use std::{
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use redis_common::{PrivateRedis, short_timeouts, within, write};
use sessionkit_cache::{
    CACHED_DB_SESSION_PREFIX, CacheStore, KeyFunction, RedisBackend, SystemClock,
};
use sessionkit_codec::SessionCodec;
use sessionkit_engine_cached_db::CachedDbStore;
use sessionkit_sdk::{EngineInfo, SessionRecord, SessionStore, SessionWrite, Timestamp};
use sessionkit_sql::{DatabaseUrl, SqlStore, SqlStoreOptions};

const TIMEOUT: Duration = Duration::from_millis(500);
const WATCHDOG: Duration = Duration::from_secs(30);
const KEY: &str = "cacheddboutage0123456789abcdefgh";

type Store = CachedDbStore<SqlStore, Arc<RedisBackend>>;

/// How Redis goes away and comes back, keeping what it held.
#[derive(Debug, Clone, Copy)]
enum Outage {
    /// `SAVE`, SIGKILL; later a restart that loads the dump (the entry is back).
    KilledThenRestarted,
    /// SIGSTOP (commands time out, then the breaker fails them fast); later SIGCONT.
    Hung,
}

impl Outage {
    fn begin(self, server: &mut PrivateRedis) {
        match self {
            Self::KilledThenRestarted => {
                let _: String = server.admin(&["SAVE"]);
                server.kill();
            }
            Self::Hung => server.signal("STOP"),
        }
    }

    fn end(self, server: &mut PrivateRedis) {
        match self {
            Self::KilledThenRestarted => server.restart(),
            Self::Hung => server.signal("CONT"),
        }
    }
}

/// One "process": a store on the private server and a SQLite file shared by all of them.
fn store_on(server: &PrivateRedis, db_url: &str) -> Store {
    let db = SqlStore::open(
        &DatabaseUrl::parse(db_url).unwrap(),
        SqlStoreOptions::new("django_session"),
    )
    .unwrap();
    let backend = Arc::new(RedisBackend::open(&server.url(), short_timeouts(TIMEOUT)).unwrap());
    let cache = CacheStore::new(
        backend,
        KeyFunction::new("outage", 1),
        CACHED_DB_SESSION_PREFIX,
        Arc::new(SystemClock),
    );
    CachedDbStore::new(db, cache, "default").with_codec(Some(codec()))
}

/// Retries `call` until it succeeds (the Redis breaker may refuse calls for a cool-down after
/// the server returns), failing the test after [`WATCHDOG`].
fn eventually<T, E: std::fmt::Debug>(mut call: impl FnMut() -> Result<T, E>) -> T {
    let started = Instant::now();
    loop {
        match call() {
            Ok(value) => return value,
            Err(error) if started.elapsed() < WATCHDOG => {
                let _ = error;
                thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("still failing after {WATCHDOG:?}: {error:?}"),
        }
    }
}

/// The secret the stores of these tests verify rows with (a Redis cache keeps verified dicts).
const SECRET: &[u8] = b"outage-test-secret";

fn codec() -> SessionCodec {
    SessionCodec::new(EngineInfo::SESSION_STORE_SALT, SECRET, &[])
}

/// A write of the session `{"v": data}`, signed as the host signs it.
fn signed(key: &str, data: &str, secs: i64) -> SessionWrite {
    let mut write = write(key, data, secs);
    let session = serde_json::json!({ "v": data });
    let encoded = codec()
        .encode(
            session.as_object().unwrap(),
            Timestamp::now().micros / 1_000_000,
        )
        .unwrap();
    write.record.session_data = encoded.session_data.into();
    write.session_json = encoded.session_json.into();
    write
}

/// The `v` of a loaded session, whichever form it came in: the cache's dict or a signed row.
fn data(record: Option<SessionRecord>) -> Option<String> {
    record.map(|r| {
        let stored = r.session_data.as_str();
        let session = if stored.starts_with('{') {
            serde_json::from_str(stored).unwrap()
        } else {
            codec().decode(stored, None, 0).unwrap()
        };
        session["v"].as_str().unwrap().to_owned()
    })
}

fn a_logout_during_the_outage_never_comes_back(outage: Outage) {
    let Some(mut server) = PrivateRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("s.sqlite3").display());
    let store = Arc::new(store_on(&server, &db_url));
    store.create(signed(KEY, "logged in", 600)).unwrap();
    assert!(
        store.cache().load(KEY).unwrap().is_some(),
        "cached in Redis"
    );

    outage.begin(&mut server);
    let logout = within(WATCHDOG, {
        let store = store.clone();
        move || store.delete(KEY)
    });
    let row = data(store.db().load(KEY).unwrap());
    match &logout {
        Ok(()) => assert_eq!(
            row, None,
            "{outage:?}: a logout that succeeded deleted the row"
        ),
        Err(error) => assert_eq!(
            row.as_deref(),
            Some("logged in"),
            "{outage:?}: a logout that failed ({error}) must leave the session unchanged"
        ),
    }
    outage.end(&mut server);

    // Another process on the same Redis and database, which saw nothing of the outage.
    let other = store_on(&server, &db_url);
    if let Outage::KilledThenRestarted = outage {
        assert!(
            eventually(|| other.cache().load(KEY)).is_some(),
            "the restarted Redis holds the entry from before the logout"
        );
    }
    match logout {
        Ok(()) => {}
        Err(_) => {
            // Unchanged: both processes still see the session, and the logout is retried.
            assert_eq!(
                data(eventually(|| store.load(KEY))).as_deref(),
                Some("logged in")
            );
            assert_eq!(data(other.load(KEY).unwrap()).as_deref(), Some("logged in"));
            eventually(|| store.delete(KEY));
        }
    }
    for (who, s) in [("this process", &*store), ("another process", &other)] {
        assert_eq!(
            eventually(|| s.load(KEY)),
            None,
            "{outage:?}: the logged-out key loads in {who}"
        );
        assert!(!eventually(|| s.exists(KEY)), "{outage:?}: {who}");
    }
    println!(
        "{outage:?}: the logout during the outage returned {logout:?}; the key never loaded afterwards"
    );
}

#[test]
fn a_logout_while_redis_is_killed_never_comes_back_when_it_restarts() {
    a_logout_during_the_outage_never_comes_back(Outage::KilledThenRestarted);
}

#[test]
fn a_logout_while_redis_hangs_never_comes_back_when_it_continues() {
    a_logout_during_the_outage_never_comes_back(Outage::Hung);
}

#[test]
fn a_save_during_the_outage_is_not_undone_by_the_entry_redis_kept() {
    let Some(mut server) = PrivateRedis::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("s.sqlite3").display());
    let store = Arc::new(store_on(&server, &db_url));
    store.create(signed(KEY, "before", 600)).unwrap();

    Outage::KilledThenRestarted.begin(&mut server);
    within(WATCHDOG, {
        let store = store.clone();
        move || store.save(signed(KEY, "during", 600))
    })
    .expect("the database takes the save");
    Outage::KilledThenRestarted.end(&mut server);

    let stale = eventually(|| store.cache().load(KEY));
    assert_eq!(
        data(stale).as_deref(),
        Some("before"),
        "the restarted Redis holds the entry from before the save"
    );
    // Every load gives the saved record; once the breaker lets calls through, a load removes
    // the stale entry and caches the row again.
    let started = Instant::now();
    let mut loads = 0;
    loop {
        assert_eq!(
            data(store.load(KEY).unwrap()).as_deref(),
            Some("during"),
            "load {loads} after the restart"
        );
        loads += 1;
        if let Ok(Some(cached)) = store.cache().load(KEY) {
            assert_eq!(data(Some(cached)).as_deref(), Some("during"));
            break;
        }
        assert!(
            started.elapsed() < WATCHDOG,
            "the cache was not repaired within {WATCHDOG:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
    println!(
        "{loads} loads after the restart, all from the database, until the cache held the saved record"
    );
}
