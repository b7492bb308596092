//! The async twins: same rules, engine calls on tokio's blocking pool.

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

use serde_json::json;

use super::memory::{cookie_engine, memory_engine};
use crate::{Error, Expiry, SessionMap, TEST_COOKIE_NAME};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_save_and_load_round_trip_on_the_blocking_pool() {
    let (engine, probe) = memory_engine();
    let mut s = engine.session(None);
    s.insert_async("member_id", 42).await.unwrap();
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();
    let mut again = engine.session(Some(&key));
    assert_eq!(again.get_async::<i64>("member_id").await.unwrap(), Some(42));
    assert!(again.accessed() && !again.modified());
    assert!(again.exists_async(&key).await.unwrap());
    assert_eq!(probe.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_futures_are_send_and_run_on_spawned_tasks() {
    let (engine, _) = memory_engine();
    let handle = tokio::spawn(async move {
        let mut s = engine.session(None);
        s.insert_async("a", 1).await?;
        s.save_async().await?;
        s.cycle_key_async().await?;
        let key = s.session_key().map(str::to_owned);
        let mut again = engine.session(key.as_deref());
        again.get_async::<i64>("a").await
    });
    assert_eq!(handle.await.unwrap().unwrap(), Some(1));
}

#[tokio::test(flavor = "current_thread")]
async fn async_mapping_operations_follow_the_sync_rules() {
    let (engine, _) = memory_engine();
    let mut s = engine.session(None);
    s.insert_async("a", 1).await.unwrap();
    s.insert_async("b", 2).await.unwrap();
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();

    let mut s = engine.session(Some(&key));
    assert!(s.contains_key_async("a").await.unwrap());
    assert_eq!(s.keys_async().await.unwrap(), ["a", "b"]);
    assert_eq!(s.values_async().await.unwrap(), [json!(1), json!(2)]);
    assert_eq!(s.items_async().await.unwrap().len(), 2);
    assert!(!s.modified());
    assert_eq!(s.setdefault_async("a", 9).await.unwrap(), json!(1));
    assert!(!s.modified());
    assert_eq!(s.pop_async::<i64>("missing").await.unwrap(), None);
    assert!(!s.modified());
    assert_eq!(s.pop_async::<i64>("a").await.unwrap(), Some(1));
    assert!(s.modified());
    s.update_async(SessionMap::new()).await.unwrap();
    s.set_expiry_async(Expiry::Seconds(60)).await.unwrap();
    assert_eq!(s.get_expiry_age_async().await.unwrap(), 60);
    assert!(!s.get_expire_at_browser_close_async().await.unwrap());
    assert_eq!(
        s.get_value_async("_session_expiry").await.unwrap(),
        Some(json!(60))
    );
    s.save_async().await.unwrap();
    assert_eq!(
        engine
            .session(Some(&key))
            .get_async::<i64>("b")
            .await
            .unwrap(),
        Some(2)
    );
}

#[tokio::test(flavor = "current_thread")]
async fn async_delete_test_cookie_does_not_mark_modified_like_django() {
    let (engine, _) = memory_engine();
    let mut s = engine.session(None);
    s.set_test_cookie_async().await.unwrap();
    assert!(s.test_cookie_worked_async().await.unwrap());
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();
    let mut again = engine.session(Some(&key));
    again.delete_test_cookie_async().await.unwrap();
    assert!(
        !again.modified(),
        "Django's adelete_test_cookie does not set modified"
    );
    assert!(again.accessed());
    assert_eq!(again.get_value(TEST_COOKIE_NAME).unwrap(), None);
}

#[tokio::test(flavor = "current_thread")]
async fn async_flush_and_interrupted_save() {
    let (engine, probe) = memory_engine();
    let mut s = engine.session(None);
    s.insert_async("a", 1).await.unwrap();
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();

    let mut other = engine.session(Some(&key));
    other.insert_async("b", 2).await.unwrap();
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
    s.insert_async("a", 1).await.unwrap();
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();
    assert_eq!(
        engine
            .session(Some(&key))
            .get_async::<i64>("a")
            .await
            .unwrap(),
        Some(1)
    );
    assert_eq!(engine.clear_expired_async().await.unwrap(), 0);
}

#[test]
fn async_twins_work_without_a_tokio_runtime_by_running_inline() {
    let (engine, _) = memory_engine();
    let mut s = engine.session(None);
    let key = block_on(async {
        s.insert_async("a", 1).await.unwrap();
        s.save_async().await.unwrap();
        s.session_key().unwrap().to_owned()
    });
    let mut again = engine.session(Some(&key));
    assert_eq!(block_on(again.get_async::<i64>("a")).unwrap(), Some(1));
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
