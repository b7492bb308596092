//! The async surface: the engine-reaching twins run on tokio's blocking pool, and after
//! `ensure_loaded_async` the dictionary operations never reach the engine.

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

use serde_json::json;
use sessionkit_codec::expiry::EXPIRY_KEY;

use super::memory::{cookie_engine, memory_engine};
use crate::{Error, Expiry, SessionMap, TEST_COOKIE_NAME};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_save_and_load_round_trip_on_the_blocking_pool() {
    let (engine, probe) = memory_engine();
    let mut s = engine.session(None);
    s.ensure_loaded_async().await.unwrap();
    s.insert("member_id", 42).unwrap();
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();
    let mut again = engine.session(Some(&key));
    again.ensure_loaded_async().await.unwrap();
    assert_eq!(again.get::<i64>("member_id").unwrap(), Some(42));
    assert!(again.accessed() && !again.modified());
    assert!(again.exists_async(&key).await.unwrap());
    assert_eq!(probe.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_futures_are_send_and_run_on_spawned_tasks() {
    let (engine, _) = memory_engine();
    let handle = tokio::spawn(async move {
        let mut s = engine.session(None);
        s.ensure_loaded_async().await?;
        s.insert("a", 1)?;
        s.save_async().await?;
        s.cycle_key_async().await?;
        let key = s.session_key().map(str::to_owned);
        let mut again = engine.session(key.as_deref());
        again.ensure_loaded_async().await?;
        again.get::<i64>("a")
    });
    assert_eq!(handle.await.unwrap().unwrap(), Some(1));
}

#[tokio::test(flavor = "current_thread")]
async fn after_ensure_loaded_async_dictionary_operations_never_reach_the_engine() {
    let (engine, probe) = memory_engine();
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.insert("b", 2).unwrap();
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();

    let mut s = engine.session(Some(&key));
    s.ensure_loaded_async().await.unwrap();
    assert!(s.accessed() && !s.modified());
    let calls = probe.calls();
    assert!(s.contains_key("a").unwrap());
    assert_eq!(s.keys().unwrap(), ["a", "b"]);
    assert_eq!(s.values().unwrap(), [json!(1), json!(2)]);
    assert_eq!(s.items().unwrap().len(), 2);
    assert_eq!(s.setdefault("a", 9).unwrap(), json!(1));
    assert_eq!(s.pop::<i64>("missing").unwrap(), None);
    assert!(!s.modified());
    assert_eq!(s.pop::<i64>("a").unwrap(), Some(1));
    assert!(s.modified());
    s.update(SessionMap::new()).unwrap();
    s.set_expiry(Expiry::Seconds(60)).unwrap();
    assert_eq!(s.get_expiry_age().unwrap(), 60);
    assert!(!s.get_expire_at_browser_close().unwrap());
    s.set_test_cookie().unwrap();
    assert!(s.test_cookie_worked().unwrap());
    s.delete_test_cookie().unwrap();
    assert_eq!(
        probe.calls(),
        calls,
        "a dictionary operation reached the engine"
    );

    s.save_async().await.unwrap();
    let mut again = engine.session(Some(&key));
    again.ensure_loaded_async().await.unwrap();
    assert_eq!(again.get::<i64>("b").unwrap(), Some(2));
    assert_eq!(again.get_value(EXPIRY_KEY).unwrap(), Some(json!(60)));
    assert_eq!(again.get_value(TEST_COOKIE_NAME).unwrap(), None);
}

#[tokio::test(flavor = "current_thread")]
async fn ensure_loaded_async_loads_once_and_applies_the_load_rules() {
    let (engine, probe) = memory_engine();
    let unknown = sessionkit_codec::key::new_session_key();
    let mut s = engine.session(Some(&unknown));
    s.ensure_loaded_async().await.unwrap();
    s.ensure_loaded_async().await.unwrap();
    assert_eq!(probe.loads(), 1);
    // An unknown key is dropped (Django's load), so the next save mints a fresh one.
    assert_eq!(s.session_key(), None);
    assert!(s.accessed() && !s.modified());
    assert_eq!(probe.len(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn async_flush_and_interrupted_save() {
    let (engine, probe) = memory_engine();
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();

    let mut other = engine.session(Some(&key));
    other.ensure_loaded_async().await.unwrap();
    other.insert("b", 2).unwrap();
    s.flush_async().await.unwrap();
    assert_eq!(s.session_key(), None);
    assert!(matches!(
        other.save_async().await,
        Err(Error::SessionInterrupted)
    ));
    assert_eq!(probe.len(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn async_load_of_an_unknown_key_creates_nothing() {
    let (engine, probe) = memory_engine();
    let unknown = sessionkit_codec::key::new_session_key();
    let mut s = engine.session(Some(&unknown));
    assert_eq!(s.load_async().await.unwrap(), SessionMap::new());
    assert_eq!(s.session_key(), None);
    assert_eq!(probe.len(), 0);
    assert!(!s.exists_async(&unknown).await.unwrap());
}

#[tokio::test(flavor = "current_thread")]
async fn async_signed_cookie_round_trip() {
    let (engine, _) = cookie_engine();
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();
    let mut again = engine.session(Some(&key));
    again.ensure_loaded_async().await.unwrap();
    assert_eq!(again.get::<i64>("a").unwrap(), Some(1));
    assert_eq!(engine.clear_expired_async().await.unwrap(), 0);
}

#[test]
fn async_twins_work_without_a_tokio_runtime_by_running_inline() {
    let (engine, _) = memory_engine();
    let mut s = engine.session(None);
    let key = block_on(async {
        s.insert("a", 1).unwrap();
        s.save_async().await.unwrap();
        s.session_key().unwrap().to_owned()
    });
    let mut again = engine.session(Some(&key));
    block_on(again.ensure_loaded_async()).unwrap();
    assert_eq!(again.get::<i64>("a").unwrap(), Some(1));
}

/// Polls a future that never waits on I/O to completion, without any runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}
