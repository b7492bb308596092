//! Calls that do not block (contract 0.4's `start_call`/`resume_call`/`cancel_call`) on Redis:
//! driven here as the async host drives them, on a tokio event loop (`AsyncFd`) as the host's.
//! Each answer is checked against the blocking method's on the same data; failures (a server
//! that never answers, garbage, a restart) end as the blocking path ends them.
//!
//! Shared-server tests use `SESSIONKIT_TEST_REDIS_URL` under a random key prefix (skipped with
//! a printed reason when unset); the outage ones use a private `redis-server` or a fake server.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    io::{Read, Write},
    net::TcpListener,
    os::fd::{AsRawFd, RawFd},
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use serde_json::json;
use sessionkit_cache::{CacheBackend, CacheStore, RedisBackend};
use sessionkit_sdk::{
    CallAnswer, CallStep, Capabilities, ConditionalSave, ErrorKind, Interest, SessionRecord,
    SessionStore, StoreCall, StoreError, Timestamp, abi_stable::std_types::RResult,
};
use tokio::io::unix::AsyncFd;

use common::{PrivateRedis, SharedPrefix, dict, short_timeouts, store_on, write};

const KEY: &str = "abcdefghijklmnopqrstuvwxyz012345";

type Store = CacheStore<Arc<RedisBackend>>;

/// How a driven call ended.
#[derive(Debug)]
enum Ended {
    /// Answered without blocking, after this many waits.
    Done(Result<CallAnswer, StoreError>, usize),
    /// Handed back to be run the blocking way.
    Blocking(StoreCall),
}

/// A descriptor the store owns, as tokio's `AsyncFd` borrows it (never closed here).
struct StoreFd(RawFd);

impl AsRawFd for StoreFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

thread_local! {
    /// The event loop the waits run on, as the async host's.
    static EVENT_LOOP: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
}

/// Waits as the host does (tokio's `AsyncFd`, registered for this wait only) for `fd` to be
/// ready for `interest`, at most `timeout_ms`; whether it became ready (false: timed out).
fn wait_ready(fd: i32, interest: Interest, timeout_ms: u64) -> bool {
    EVENT_LOOP.with(|event_loop| {
        event_loop.block_on(async {
            let wanted = match interest {
                Interest::Readable => tokio::io::Interest::READABLE,
                Interest::Writable => tokio::io::Interest::WRITABLE,
            };
            // Deprecated in tokio for lacking I/O safety, and its replacement is `unsafe`
            // (forbidden here). Sound in this use: the store keeps the descriptor open until
            // the ticket is resumed, and the registration ends before that.
            #[allow(deprecated)]
            let fd = AsyncFd::with_interest(StoreFd(fd), wanted).unwrap();
            let ready = async {
                match interest {
                    Interest::Readable => fd.readable().await.map(drop),
                    Interest::Writable => fd.writable().await.map(drop),
                }
            };
            match tokio::time::timeout(Duration::from_millis(timeout_ms), ready).await {
                Ok(ready) => {
                    ready.unwrap();
                    true
                }
                Err(_) => false,
            }
        })
    })
}

/// Drives `call` as the async host does, until it is answered or handed back.
fn drive(store: &Store, call: StoreCall) -> Ended {
    let mut step = store.start_call(call);
    let mut waits = 0;
    loop {
        match step {
            CallStep::Done(result) => return Ended::Done(result.into_result(), waits),
            CallStep::Blocking(call) => return Ended::Blocking(call),
            CallStep::Wait(wait) => {
                waits += 1;
                assert!(waits < 100, "a call kept waiting");
                let ready = wait_ready(wait.fd, wait.interest, wait.timeout_ms);
                step = store.resume_call(wait.ticket, !ready);
            }
        }
    }
}

/// Runs `call` through the blocking method of its name, as the host does after `Blocking`.
fn blocking(store: &Store, call: StoreCall) -> Result<CallAnswer, StoreError> {
    match call {
        StoreCall::Exists(key) => store.exists(&key).map(CallAnswer::Exists),
        StoreCall::Load(key) => store.load(&key).map(|r| CallAnswer::Load(r.into())),
        StoreCall::Create(write) => store.create(write).map(|k| CallAnswer::Create(k.into())),
        StoreCall::Save(write) => store.save(write).map(|k| CallAnswer::Save(k.into())),
        StoreCall::Delete(key) => store.delete(&key).map(|()| CallAnswer::Delete),
        StoreCall::SaveIfUnchanged {
            write,
            expected_data,
        } => store
            .save_if_unchanged(write, &expected_data)
            .map(CallAnswer::conditional),
    }
}

/// Drives `call` as the host does, running it the blocking way when handed back; the answer
/// and whether it was answered without blocking.
fn host(store: &Store, call: StoreCall) -> (Result<CallAnswer, StoreError>, bool) {
    match drive(store, call) {
        Ended::Done(result, _) => (result, true),
        Ended::Blocking(call) => (blocking(store, call), false),
    }
}

/// Drives `call` until it is answered without blocking, filling the pool first if needed.
fn non_blocking(store: &Store, call: StoreCall) -> (Result<CallAnswer, StoreError>, usize) {
    for _ in 0..3 {
        match drive(store, call.clone()) {
            Ended::Done(result, waits) => return (result, waits),
            // No idle connection: a blocking call opens one.
            Ended::Blocking(_) => store.exists("prime").map(drop).unwrap(),
        }
    }
    panic!("the call was never answered without blocking");
}

/// Whether two answers are the same, with load expire dates (now + the entry's TTL, so they
/// move between two reads) within a second of each other.
fn same(left: &Result<CallAnswer, StoreError>, right: &Result<CallAnswer, StoreError>) -> bool {
    fn close(a: &SessionRecord, b: &SessionRecord) -> bool {
        a.session_key == b.session_key
            && a.session_data == b.session_data
            && (a.expire_date.micros - b.expire_date.micros).abs() < 1_000_000
    }
    match (left, right) {
        (Err(a), Err(b)) => a.kind == b.kind,
        (Ok(CallAnswer::Load(a)), Ok(CallAnswer::Load(b))) => {
            match (a.as_ref().into_option(), b.as_ref().into_option()) {
                (Some(a), Some(b)) => close(a, b),
                (a, b) => a.is_none() && b.is_none(),
            }
        }
        (
            Ok(CallAnswer::SaveIfUnchanged(RResult::RErr(a))),
            Ok(CallAnswer::SaveIfUnchanged(RResult::RErr(b))),
        ) => close(a, b),
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// What is under `KEY` before a call.
#[derive(Debug, Clone, Copy)]
enum Setup {
    Absent,
    /// A session holding `{"v": data}`, as sessionkit writes it (a pickle).
    Session(&'static str),
    /// A session in the old JSON record format, holding signed data `data`.
    JsonRecord(&'static str),
}

fn set_up(store: &Store, backend: &RedisBackend, setup: Setup) {
    let key = store.cache_key(KEY);
    backend.delete(&key).unwrap();
    match setup {
        Setup::Absent => {}
        Setup::Session(data) => drop(store.create(write(KEY, data, 600)).unwrap()),
        Setup::JsonRecord(data) => {
            let expire = Timestamp::now().micros + 600_000_000;
            let old = json!({"session_key": KEY, "session_data": data, "expire_date": expire});
            backend
                .set(&key, old.to_string().as_bytes(), Duration::from_secs(600))
                .unwrap();
        }
    }
}

#[test]
fn every_call_answers_as_its_blocking_method_on_the_same_data() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    assert!(store.capabilities().contains(Capabilities::READINESS_CALLS));
    let unchanged = |data: &str, expected: &str| StoreCall::SaveIfUnchanged {
        write: write(KEY, data, 300),
        expected_data: expected.into(),
    };
    let cases: Vec<(Setup, StoreCall, &str)> = vec![
        (Setup::Session("a"), StoreCall::Exists(KEY.into()), "exists"),
        (
            Setup::Absent,
            StoreCall::Exists(KEY.into()),
            "exists, absent",
        ),
        (Setup::Session("a"), StoreCall::Load(KEY.into()), "load"),
        (Setup::Absent, StoreCall::Load(KEY.into()), "load, absent"),
        (
            Setup::JsonRecord("signed:x"),
            StoreCall::Load(KEY.into()),
            "load, JSON record",
        ),
        (
            Setup::Absent,
            StoreCall::Create(write(KEY, "b", 300)),
            "create",
        ),
        (
            Setup::Session("a"),
            StoreCall::Create(write(KEY, "b", 300)),
            "create, taken",
        ),
        (
            Setup::Session("a"),
            StoreCall::Save(write(KEY, "b", 300)),
            "save",
        ),
        (
            Setup::Absent,
            StoreCall::Save(write(KEY, "b", 300)),
            "save, absent",
        ),
        (
            Setup::Session("a"),
            StoreCall::Save(write(KEY, "b", -5)),
            "save, expired",
        ),
        (Setup::Session("a"), StoreCall::Delete(KEY.into()), "delete"),
        (
            Setup::Absent,
            StoreCall::Delete(KEY.into()),
            "delete, absent",
        ),
        (
            Setup::Session("a"),
            unchanged("b", &dict("a")),
            "conditional save",
        ),
        (
            Setup::Session("a"),
            unchanged("b", &dict("stale")),
            "conditional, conflict",
        ),
        (
            Setup::Absent,
            unchanged("b", &dict("a")),
            "conditional, absent",
        ),
        (
            Setup::Session("a"),
            unchanged("b", r#"{"v": "a"}"#),
            "conditional, same dict in other JSON (read, compare, CAS)",
        ),
        (
            Setup::JsonRecord("signed:x"),
            unchanged("b", "signed:x"),
            "conditional on a JSON record",
        ),
        (
            Setup::JsonRecord("signed:x"),
            unchanged("b", "signed:other"),
            "conditional on a JSON record, conflict",
        ),
    ];
    for (setup, call, name) in cases {
        set_up(&store, &backend, setup);
        let (nb, _) = non_blocking(&store, call.clone());
        let nb_after = store.load(KEY).unwrap();
        set_up(&store, &backend, setup);
        let expected = blocking(&store, call);
        let blocking_after = store.load(KEY).unwrap();
        assert!(same(&nb, &expected), "{name}: {nb:?} vs {expected:?}");
        assert!(
            same(
                &Ok(CallAnswer::Load(nb_after.into())),
                &Ok(CallAnswer::Load(blocking_after.into()))
            ),
            "{name}: stored state differs"
        );
    }
    // The answers themselves, not only their agreement.
    set_up(&store, &backend, Setup::Session("a"));
    let (created, _) = non_blocking(&store, StoreCall::Create(write(KEY, "b", 300)));
    assert_eq!(created.unwrap_err().kind, ErrorKind::AlreadyExists);
    let (saved, _) = non_blocking(&store, unchanged("c", &dict("a")));
    assert_eq!(
        saved.unwrap(),
        CallAnswer::conditional(ConditionalSave::Saved(KEY.to_owned()))
    );
    let (loaded, _) = non_blocking(&store, StoreCall::Load(KEY.into()));
    match loaded.unwrap() {
        CallAnswer::Load(record) => {
            assert_eq!(
                record.into_option().unwrap().session_data.as_str(),
                dict("c")
            );
        }
        other => panic!("{other:?}"),
    }
    set_up(&store, &backend, Setup::Absent);
    let (saved, _) = non_blocking(&store, StoreCall::Save(write(KEY, "b", 300)));
    assert_eq!(saved.unwrap_err().kind, ErrorKind::NotFound);
}

#[test]
fn empty_keys_are_answered_at_once() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    for (call, answer) in [
        (StoreCall::Exists("".into()), CallAnswer::Exists(false)),
        (StoreCall::Load("".into()), CallAnswer::Load(None.into())),
        (StoreCall::Delete("".into()), CallAnswer::Delete),
    ] {
        assert_eq!(store.start_call(call), CallStep::done(Ok(answer)));
    }
}

#[test]
fn the_first_call_runs_blocking_and_fills_the_pool_for_the_next() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, backend) = shared.store();
    assert_eq!(backend.idle_ready_connections(), 0);
    let call = StoreCall::Exists(KEY.into());
    assert!(matches!(drive(&store, call.clone()), Ended::Blocking(c) if c == call));
    // The host runs it the blocking way, which opens a non-blocking connection.
    assert!(!store.exists(KEY).unwrap());
    assert_eq!(backend.idle_ready_connections(), 1);
    // (On loopback the reply is often there before start_call returns: no wait at all.)
    match drive(&store, call) {
        Ended::Done(Ok(CallAnswer::Exists(false)), _) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(backend.idle_ready_connections(), 1, "reused, not reopened");
    // A blocking call nobody asked for opens none.
    store.exists(KEY).unwrap();
    assert_eq!(backend.idle_ready_connections(), 1);
}

#[test]
fn concurrent_calls_each_get_their_own_connection_up_to_the_pool_size() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let options = short_timeouts(Duration::from_secs(5));
    let (store, backend) = store_on(&server.url(), "ready-pool", options);
    // Misses before any blocking run: each asks for one connection, up to the pool's size.
    let missed: Vec<StoreCall> = (0..options.max_connections + 2)
        .map(|_| match store.start_call(StoreCall::Exists(KEY.into())) {
            CallStep::Blocking(call) => call,
            other => panic!("no connection is open yet: {other:?}"),
        })
        .collect();
    for call in missed {
        blocking(&store, call).unwrap();
    }
    assert_eq!(backend.idle_ready_connections(), options.max_connections);
    // A stopped server answers nothing: every call started now waits, holding its connection;
    // beyond the pool's size calls are handed back.
    server.signal("STOP");
    let steps: Vec<CallStep> = (0..options.max_connections + 2)
        .map(|_| store.start_call(StoreCall::Exists(KEY.into())))
        .collect();
    server.signal("CONT");
    let waits: Vec<_> = steps
        .iter()
        .filter_map(|step| match step {
            CallStep::Wait(wait) => Some(*wait),
            _ => None,
        })
        .collect();
    assert_eq!(waits.len(), options.max_connections, "{steps:?}");
    assert_eq!(
        steps
            .iter()
            .filter(|step| matches!(step, CallStep::Blocking(_)))
            .count(),
        2
    );
    assert_eq!(backend.idle_ready_connections(), 0);
    for wait in waits {
        let mut step = CallStep::Wait(wait);
        while let CallStep::Wait(wait) = step {
            assert!(wait_ready(wait.fd, wait.interest, wait.timeout_ms));
            step = store.resume_call(wait.ticket, false);
        }
        assert_eq!(step, CallStep::done(Ok(CallAnswer::Exists(false))));
    }
    assert_eq!(backend.idle_ready_connections(), options.max_connections);
}

#[test]
fn a_call_cancelled_while_sending_drops_its_connection_and_the_next_call_works() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let (store, backend) = store_on(
        &server.url(),
        "ready-cancel-send",
        short_timeouts(Duration::from_secs(2)),
    );
    store.create(write(KEY, "a", 60)).unwrap();
    non_blocking(&store, StoreCall::Exists(KEY.into()))
        .0
        .unwrap();
    // A stopped server reads nothing: 6 MiB cannot all be sent.
    server.signal("STOP");
    let other = format!("{KEY}big");
    let step = store.start_call(StoreCall::Create(write(&other, &"x".repeat(6 << 20), 60)));
    let CallStep::Wait(wait) = step else {
        server.signal("CONT");
        panic!("a stopped server cannot have answered: {step:?}");
    };
    assert_eq!(wait.interest, Interest::Writable);
    store.cancel_call(wait.ticket);
    server.signal("CONT");
    assert_eq!(
        backend.idle_ready_connections(),
        0,
        "half a command was sent"
    );
    match store.resume_call(wait.ticket, false) {
        CallStep::Done(RResult::RErr(error)) => assert_eq!(error.kind, ErrorKind::Other),
        other => panic!("a cancelled ticket is unknown: {other:?}"),
    }
    let (loaded, _) = non_blocking(&store, StoreCall::Load(KEY.into()));
    match loaded.unwrap() {
        CallAnswer::Load(record) => {
            assert_eq!(
                record.into_option().unwrap().session_data.as_str(),
                dict("a")
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !store.exists(&other).unwrap(),
        "the cancelled create stored nothing"
    );
    assert!(!backend.breaker_open());
}

#[test]
fn a_call_cancelled_while_waiting_for_its_reply_leaves_the_breaker_closed() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let (store, backend) = store_on(
        &server.url(),
        "ready-cancel",
        short_timeouts(Duration::from_secs(2)),
    );
    store.create(write(KEY, "a", 60)).unwrap();
    non_blocking(&store, StoreCall::Exists(KEY.into()))
        .0
        .unwrap();
    server.signal("STOP");
    let step = store.start_call(StoreCall::Load(KEY.into()));
    let CallStep::Wait(wait) = step else {
        server.signal("CONT");
        panic!("a stopped server cannot have answered: {step:?}");
    };
    assert_eq!(wait.interest, Interest::Readable);
    assert!(
        !wait_ready(wait.fd, wait.interest, 100),
        "the server is stopped"
    );
    store.cancel_call(wait.ticket);
    server.signal("CONT");
    assert_eq!(
        backend.idle_ready_connections(),
        0,
        "its reply may still come"
    );
    assert!(
        !backend.breaker_open(),
        "a cancel says nothing about the server"
    );
    let (loaded, _) = non_blocking(&store, StoreCall::Load(KEY.into()));
    match loaded.unwrap() {
        CallAnswer::Load(record) => {
            assert_eq!(
                record.into_option().unwrap().session_data.as_str(),
                dict("a")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unknown_ticket_is_an_error() {
    let Some(shared) = SharedPrefix::new() else {
        return;
    };
    let (store, _) = shared.store();
    match store.resume_call(12345, false) {
        CallStep::Done(RResult::RErr(error)) => assert_eq!(error.kind, ErrorKind::Other),
        other => panic!("{other:?}"),
    }
    store.cancel_call(12345);
}

#[test]
fn the_script_is_loaded_with_eval_when_the_server_lost_it() {
    let Some(mut server) = PrivateRedis::start() else {
        return;
    };
    let (store, _) = store_on(
        &server.url(),
        "ready-noscript",
        short_timeouts(Duration::from_secs(2)),
    );
    store.create(write(KEY, "a", 60)).unwrap();
    let _: () = server.admin(&["SCRIPT", "FLUSH"]);
    let call = StoreCall::SaveIfUnchanged {
        write: write(KEY, "b", 60),
        expected_data: dict("a").into(),
    };
    let (saved, _) = non_blocking(&store, call);
    assert_eq!(
        saved.unwrap(),
        CallAnswer::conditional(ConditionalSave::Saved(KEY.to_owned()))
    );
    assert_eq!(
        store.load(KEY).unwrap().unwrap().session_data.as_str(),
        dict("b")
    );
    server.kill();
}

#[test]
fn calls_do_not_block_over_a_unix_socket_too() {
    let Some(server) = PrivateRedis::start() else {
        return;
    };
    let (store, _) = store_on(
        &server.unix_url(),
        "ready-unix",
        short_timeouts(Duration::from_secs(2)),
    );
    assert!(store.capabilities().contains(Capabilities::READINESS_CALLS));
    let (created, _) = non_blocking(&store, StoreCall::Create(write(KEY, "u", 60)));
    assert_eq!(created.unwrap(), CallAnswer::Create(KEY.into()));
    assert_eq!(
        store.load(KEY).unwrap().unwrap().session_data.as_str(),
        dict("u")
    );
}

#[test]
fn a_restarted_server_hands_the_call_back_then_calls_recover() {
    let Some(mut server) = PrivateRedis::start() else {
        return;
    };
    let (store, backend) = store_on(
        &server.url(),
        "ready-restart",
        short_timeouts(Duration::from_secs(2)),
    );
    store.create(write(KEY, "a", 60)).unwrap();
    non_blocking(&store, StoreCall::Exists(KEY.into()))
        .0
        .unwrap();
    assert_eq!(backend.idle_ready_connections(), 1);
    server.restart();
    // The pooled connection is dead: the call is handed back before any reply, and the
    // blocking path (which retries on a new connection) answers it.
    let call = StoreCall::Create(write(KEY, "b", 60));
    match drive(&store, call.clone()) {
        Ended::Blocking(back) => assert_eq!(back, call),
        other => panic!("{other:?}"),
    }
    assert_eq!(backend.idle_ready_connections(), 0);
    assert_eq!(
        blocking(&store, call).unwrap(),
        CallAnswer::Create(KEY.into()),
        "the restarted server lost the session (no persistence)"
    );
    let (exists, _) = non_blocking(&store, StoreCall::Exists(KEY.into()));
    assert_eq!(exists.unwrap(), CallAnswer::Exists(true));
    // A server gone for good: the hand-back's blocking run fails as a blocking call does.
    server.kill();
    let (result, answered_without_blocking) = host(&store, StoreCall::Load(KEY.into()));
    assert!(!answered_without_blocking);
    assert_eq!(result.unwrap_err().kind, ErrorKind::Unavailable);
}

/// A fake Redis on loopback: the first connection answers `:0` to every command (so a
/// blocking `exists` works and opens a non-blocking connection); later ones get `later`
/// (nothing: a hung server; bytes: garbage) and are then held open.
fn fake_server(later: &'static [u8]) -> (String, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "redis://127.0.0.1:{}/0",
        listener.local_addr().unwrap().port()
    );
    let handle = thread::spawn(move || {
        let mut held = Vec::new();
        for (n, stream) in listener.incoming().take(3).enumerate() {
            let mut stream = stream.unwrap();
            if n == 0 {
                thread::spawn(move || {
                    let mut buffer = [0_u8; 4096];
                    while let Ok(read) = stream.read(&mut buffer) {
                        if read == 0 || stream.write_all(b":0\r\n").is_err() {
                            break;
                        }
                    }
                });
            } else {
                let mut buffer = [0_u8; 4096];
                let _ = stream.read(&mut buffer);
                let _ = stream.write_all(later);
                held.push(stream);
            }
        }
        thread::sleep(Duration::from_secs(10));
        drop(held);
    });
    (url, handle)
}

/// A store on `url` with 300 ms timeouts and a long breaker cool-down, with one non-blocking
/// connection opened.
fn primed_fake_store(url: &str) -> (Store, Arc<RedisBackend>) {
    let backend = Arc::new(
        RedisBackend::open(url, short_timeouts(Duration::from_millis(300)))
            .unwrap()
            .with_breaker_cooldown(Duration::from_secs(60)),
    );
    let store = CacheStore::new(
        backend.clone(),
        sessionkit_cache::KeyFunction::new("fake", 1),
        sessionkit_cache::CACHE_SESSION_PREFIX,
        Arc::new(sessionkit_cache::SystemClock),
    );
    assert!(matches!(
        drive(&store, StoreCall::Exists(KEY.into())),
        Ended::Blocking(_)
    ));
    assert!(!store.exists(KEY).unwrap());
    assert_eq!(backend.idle_ready_connections(), 1);
    (store, backend)
}

#[test]
fn a_server_that_never_answers_times_out_once_and_opens_the_breaker() {
    let (url, _server) = fake_server(b"");
    let (store, backend) = primed_fake_store(&url);
    let CallStep::Wait(wait) = store.start_call(StoreCall::Load(KEY.into())) else {
        panic!("an idle connection was there");
    };
    assert_eq!(wait.interest, Interest::Readable);
    assert_eq!(wait.timeout_ms, 300);
    assert!(
        !wait_ready(wait.fd, wait.interest, wait.timeout_ms),
        "the fake never answers"
    );
    match store.resume_call(wait.ticket, true) {
        CallStep::Done(RResult::RErr(error)) => {
            assert_eq!(error.kind, ErrorKind::Unavailable);
            assert!(error.message.contains("did not answer within"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    assert!(backend.breaker_open());
    assert_eq!(backend.idle_ready_connections(), 0);
    // Fails fast now, whichever way it runs.
    let started = Instant::now();
    let (result, _) = host(&store, StoreCall::Load(KEY.into()));
    let error = result.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unavailable);
    assert!(error.message.contains("circuit breaker"), "{error}");
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[test]
fn garbage_from_the_server_is_an_error_not_a_panic() {
    let (url, _server) = fake_server(b"?not redis\r\n");
    let (store, backend) = primed_fake_store(&url);
    match drive(&store, StoreCall::Load(KEY.into())) {
        Ended::Done(Err(error), _) => assert_eq!(error.kind, ErrorKind::Other, "{error}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(backend.idle_ready_connections(), 0, "never reused");
    assert!(!backend.breaker_open(), "the server answered, quickly");
}

#[test]
fn a_reply_of_the_wrong_type_is_an_error_and_the_breaker_stays_closed() {
    // Three integers to the load's script, which answers a value and a TTL.
    let (url, _server) = fake_server(b"*3\r\n:1\r\n:2\r\n:3\r\n");
    let (store, backend) = primed_fake_store(&url);
    match drive(&store, StoreCall::Load(KEY.into())) {
        Ended::Done(Err(error), _) => assert_eq!(error.kind, ErrorKind::Other, "{error}"),
        other => panic!("{other:?}"),
    }
    assert!(!backend.breaker_open());
}
