//! Sessions that merge: concurrent requests of one visitor through an engine with a
//! conditional save keep each other's writes; `overwrite` and engines without the capability
//! keep Django's last-writer-wins; a deleted or flushed session is never brought back.

use std::{
    sync::{Arc, Barrier},
    thread,
};

use serde_json::json;

use crate::{ConcurrentWrites, Error, Settings, testing::MemoryStore};

const WRITERS: usize = 32;

fn engine_with(writes: ConcurrentWrites) -> crate::Engine {
    let mut settings = Settings::new("merge-tests-secret-key");
    settings.session_concurrent_writes = writes;
    MemoryStore::new().engine(&settings).unwrap()
}

/// Starts `WRITERS` requests on the session under `key`, all loaded before any saves, each
/// running `request` on its own session; returns what each returned.
fn racing<T: Send + 'static>(
    engine: &crate::Engine,
    key: &str,
    request: impl Fn(usize, &mut crate::Session) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let loaded = Arc::new(Barrier::new(WRITERS));
    let request = Arc::new(request);
    let handles: Vec<_> = (0..WRITERS)
        .map(|n| {
            let (engine, key, loaded, request) = (
                engine.clone(),
                key.to_owned(),
                loaded.clone(),
                request.clone(),
            );
            thread::spawn(move || {
                let mut session = engine.session(Some(&key));
                session.get_value("seed").unwrap();
                loaded.wait();
                request(n, &mut session)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

fn new_session(engine: &crate::Engine) -> String {
    let mut session = engine.session(None);
    session.insert("seed", true).unwrap();
    session.save().unwrap();
    session.session_key().unwrap().to_owned()
}

#[test]
fn concurrent_requests_each_adding_a_key_keep_all_of_them() {
    let engine = engine_with(ConcurrentWrites::Merge);
    let key = new_session(&engine);
    racing(&engine, &key, |n, session| {
        session.insert(&format!("comment-{n}"), n).unwrap();
        session.save().unwrap();
    });
    let mut after = engine.session(Some(&key));
    for n in 0..WRITERS {
        assert_eq!(
            after.get::<usize>(&format!("comment-{n}")).unwrap(),
            Some(n),
            "request {n}'s key was lost"
        );
    }
    assert_eq!(after.get::<bool>("seed").unwrap(), Some(true));
}

#[test]
fn concurrent_atomic_increments_all_count() {
    let engine = engine_with(ConcurrentWrites::Merge);
    let key = new_session(&engine);
    let seen = racing(&engine, &key, |_, session| {
        session
            .atomic_update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
            .unwrap()
    });
    let mut after = engine.session(Some(&key));
    assert_eq!(after.get::<u64>("counter").unwrap(), Some(WRITERS as u64));
    let mut seen = seen;
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=WRITERS as u64).collect::<Vec<_>>(),
        "each increment saw its own value"
    );
}

#[test]
fn overwrite_keeps_djangos_last_writer_wins() {
    let engine = engine_with(ConcurrentWrites::Overwrite);
    let key = new_session(&engine);
    racing(&engine, &key, |n, session| {
        session.insert(&format!("comment-{n}"), n).unwrap();
        session.save().unwrap();
    });
    let after = engine.session(Some(&key)).load().unwrap();
    let kept = (0..WRITERS)
        .filter(|n| after.contains_key(&format!("comment-{n}")))
        .count();
    assert_eq!(
        kept, 1,
        "with overwrite each save replaces the whole record"
    );
}

#[test]
fn a_merging_save_never_brings_back_a_deleted_session() {
    let engine = engine_with(ConcurrentWrites::Merge);
    let key = new_session(&engine);
    let mut writer = engine.session(Some(&key));
    writer.get_value("seed").unwrap();
    // A logout in another request.
    engine.session(Some(&key)).flush().unwrap();
    assert_eq!(
        engine.store().load(&key).unwrap(),
        None,
        "the logout deleted the record"
    );
    writer.insert("late", 1).unwrap();
    let saved = writer.save();
    assert!(matches!(saved, Err(Error::SessionInterrupted)), "{saved:?}");
    assert_eq!(engine.store().load(&key).unwrap(), None);
}

#[test]
fn a_merge_replays_removals_and_clear() {
    let engine = engine_with(ConcurrentWrites::Merge);
    let mut first = engine.session(None);
    first
        .update(serde_json::from_value(json!({"a": 1, "b": 2, "c": 3})).unwrap())
        .unwrap();
    first.save().unwrap();
    let key = first.session_key().unwrap().to_owned();
    let mut remover = engine.session(Some(&key));
    remover.get_value("a").unwrap();
    let mut other = engine.session(Some(&key));
    other.insert("d", 4).unwrap();
    other.save().unwrap();
    remover.remove("a").unwrap();
    remover.save().unwrap();
    let merged = engine.session(Some(&key)).load().unwrap();
    assert_eq!(
        serde_json::to_value(&merged).unwrap(),
        json!({"b": 2, "c": 3, "d": 4})
    );
    let mut clearer = engine.session(Some(&key));
    clearer.get_value("a").unwrap();
    let mut another = engine.session(Some(&key));
    another.insert("e", 5).unwrap();
    another.save().unwrap();
    clearer.clear();
    clearer.insert("only", true).unwrap();
    clearer.save().unwrap();
    let cleared = engine.session(Some(&key)).load().unwrap();
    assert_eq!(
        serde_json::to_value(&cleared).unwrap(),
        json!({"only": true})
    );
}

#[test]
fn an_atomic_update_of_a_value_of_another_type_is_a_type_error_and_changes_nothing() {
    let engine = engine_with(ConcurrentWrites::Merge);
    let mut session = engine.session(None);
    session.insert("counter", "not a number").unwrap();
    let result = session.atomic_update("counter", |n: Option<u64>| n.unwrap_or(0) + 1);
    assert!(matches!(result, Err(Error::Type(_))), "{result:?}");
    assert_eq!(
        session.get::<String>("counter").unwrap().as_deref(),
        Some("not a number")
    );
}

/// [`MemoryStore`] behind a store call that takes a millisecond, as a network round trip does,
/// and that blocks (so async saves run on the blocking pool, as with Redis or SQL).
struct SlowMemoryStore(MemoryStore);

impl sessionkit_sdk::SessionStore for SlowMemoryStore {
    fn exists(&self, key: &str) -> sessionkit_sdk::StoreResult<bool> {
        self.0.exists(key)
    }
    fn load(
        &self,
        key: &str,
    ) -> sessionkit_sdk::StoreResult<Option<sessionkit_sdk::SessionRecord>> {
        self.0.load(key)
    }
    fn create(&self, write: sessionkit_sdk::SessionWrite) -> sessionkit_sdk::StoreResult<String> {
        self.0.create(write)
    }
    fn save(&self, write: sessionkit_sdk::SessionWrite) -> sessionkit_sdk::StoreResult<String> {
        self.0.save(write)
    }
    fn delete(&self, key: &str) -> sessionkit_sdk::StoreResult<()> {
        self.0.delete(key)
    }
    fn clear_expired(&self) -> sessionkit_sdk::StoreResult<u64> {
        self.0.clear_expired()
    }
    fn capabilities(&self) -> sessionkit_sdk::Capabilities {
        sessionkit_sdk::Capabilities::SERVER_SIDE_INVALIDATION
            .union(sessionkit_sdk::Capabilities::CONDITIONAL_SAVE)
    }
    fn save_if_unchanged(
        &self,
        write: sessionkit_sdk::SessionWrite,
        expected: &str,
    ) -> sessionkit_sdk::StoreResult<sessionkit_sdk::ConditionalSave> {
        thread::sleep(std::time::Duration::from_millis(1));
        self.0.save_if_unchanged(write, expected)
    }
}

/// A stream of requests writing one session from one process (16 keep-alive connections of one
/// visitor): every save goes through, none gives up with `WriteConflict`, and no write is lost.
/// Without turns per session, fresh requests kept landing between a retrying save's reload and
/// its conditional write until it gave up.
#[test]
fn a_stream_of_async_saves_to_one_session_all_go_through() {
    const STREAMS: usize = 16;
    const REQUESTS: usize = 25;
    let info = sessionkit_sdk::EngineInfo {
        name: abi_stable::std_types::RStr::from_str("slow-memory"),
        capabilities: sessionkit_sdk::Capabilities::SERVER_SIDE_INVALIDATION
            .union(sessionkit_sdk::Capabilities::CONDITIONAL_SAVE),
        ..MemoryStore::INFO
    };
    let store =
        sessionkit_sdk::store::FfiAdapter::new("slow-memory", SlowMemoryStore(MemoryStore::new()))
            .into_box();
    let engine =
        crate::Engine::from_store(info, store, &Settings::new("merge-tests-secret-key")).unwrap();
    let key = new_session(&engine);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let streams: Vec<_> = (0..STREAMS)
            .map(|n| {
                let (engine, key) = (engine.clone(), key.clone());
                tokio::spawn(async move {
                    for round in 0..REQUESTS {
                        let mut session = engine.session(Some(&key));
                        session.ensure_loaded_async().await.unwrap();
                        session.insert(&format!("stream-{n}"), round).unwrap();
                        session.save_async().await.unwrap();
                    }
                })
            })
            .collect();
        for stream in streams {
            stream.await.unwrap();
        }
    });
    let mut after = engine.session(Some(&key));
    for n in 0..STREAMS {
        assert_eq!(
            after.get::<usize>(&format!("stream-{n}")).unwrap(),
            Some(REQUESTS - 1),
            "stream {n}'s last write was lost"
        );
    }
}
