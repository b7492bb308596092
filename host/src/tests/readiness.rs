//! Calls that do not block (contract 0.4): an async session on a store with `READINESS_CALLS`
//! waits on the store's socket on the event loop, never on the blocking pool, unless the store
//! hands a call back; a wait that times out ends the call, a dropped request cancels it, and the
//! sync methods keep calling the blocking methods.

use std::{
    collections::HashMap,
    io::{ErrorKind as IoErrorKind, Read, Write},
    os::{fd::AsRawFd, unix::net::UnixStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use abi_stable::std_types::RStr;
use sessionkit_codec::SESSION_STORE_SALT;
use sessionkit_sdk::{
    CallStep, CallWait, Capabilities, ConditionalSave, EngineInfo, ErrorKind, Interest, KeyFormat,
    SessionRecord, SessionStore, SessionWrite, StoreCall, StoreError, StoreResult,
    store::FfiAdapter,
};

use super::memory::SECRET;
use crate::{Engine, Settings, blocking::dispatch, testing::MemoryStore};

/// A store whose every call "goes over the network": `start_call` parks it on one end of a
/// socket pair that a thread writes to after `reply_after` (or never), and `resume_call`
/// answers it from an in-memory store once the byte is there.
struct SocketStore {
    records: MemoryStore,
    in_flight: Mutex<HashMap<u64, InFlight>>,
    next_ticket: AtomicU64,
    counts: Arc<Counts>,
    /// When the "reply" arrives; `None`: never.
    reply_after: Option<Duration>,
    /// The timeout each wait asks for (0: none).
    timeout_ms: u64,
    /// Which calls the store hands back to be run the blocking way.
    hands_back: fn(&StoreCall) -> bool,
}

/// A started call: the socket end it waits on (and, for a reply that never comes, the other
/// end, kept open so the wait does not end with end-of-stream).
struct InFlight {
    reply: UnixStream,
    _server: Option<UnixStream>,
    call: StoreCall,
}

#[derive(Default)]
struct Counts {
    started: AtomicUsize,
    resumed: AtomicUsize,
    timed_out: AtomicUsize,
    cancelled: AtomicUsize,
    blocking: AtomicUsize,
}

impl Counts {
    fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }
}

const INFO: EngineInfo = EngineInfo {
    name: RStr::from_str("socket"),
    version: RStr::from_str("0"),
    salt: RStr::from_str(SESSION_STORE_SALT),
    capabilities: Capabilities::SERVER_SIDE_INVALIDATION
        .union(Capabilities::CONDITIONAL_SAVE)
        .union(Capabilities::READINESS_CALLS),
    key_format: KeyFormat::DjangoSessionKey,
};

impl SocketStore {
    fn blocking<T>(&self, call: impl FnOnce(&MemoryStore) -> StoreResult<T>) -> StoreResult<T> {
        self.counts.blocking.fetch_add(1, Ordering::SeqCst);
        call(&self.records)
    }
}

impl SessionStore for SocketStore {
    fn exists(&self, key: &str) -> StoreResult<bool> {
        self.blocking(|records| records.exists(key))
    }
    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        self.blocking(|records| records.load(key))
    }
    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        self.blocking(|records| records.create(write))
    }
    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        self.blocking(|records| records.save(write))
    }
    fn delete(&self, key: &str) -> StoreResult<()> {
        self.blocking(|records| records.delete(key))
    }
    fn clear_expired(&self) -> StoreResult<u64> {
        self.blocking(|records| records.clear_expired())
    }
    fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: &str,
    ) -> StoreResult<ConditionalSave> {
        self.blocking(|records| records.save_if_unchanged(write, expected_data))
    }

    fn start_call(&self, call: StoreCall) -> CallStep {
        if (self.hands_back)(&call) {
            return CallStep::Blocking(call);
        }
        self.counts.started.fetch_add(1, Ordering::SeqCst);
        let (reply, mut server) = UnixStream::pair().expect("a socket pair");
        reply.set_nonblocking(true).expect("a non-blocking socket");
        let server = match self.reply_after {
            Some(delay) => {
                thread::spawn(move || {
                    thread::sleep(delay);
                    let _ = server.write_all(b"!");
                });
                None
            }
            None => Some(server),
        };
        let ticket = self.next_ticket.fetch_add(1, Ordering::SeqCst);
        let fd = reply.as_raw_fd();
        self.in_flight.lock().unwrap().insert(
            ticket,
            InFlight {
                reply,
                _server: server,
                call,
            },
        );
        CallStep::Wait(CallWait {
            fd,
            interest: Interest::Readable,
            timeout_ms: self.timeout_ms,
            ticket,
        })
    }

    fn resume_call(&self, ticket: u64, timed_out: bool) -> CallStep {
        self.counts.resumed.fetch_add(1, Ordering::SeqCst);
        let Some(mut call) = self.in_flight.lock().unwrap().remove(&ticket) else {
            return CallStep::done(Err(StoreError::other("unknown ticket")));
        };
        if timed_out {
            self.counts.timed_out.fetch_add(1, Ordering::SeqCst);
            return CallStep::done(Err(StoreError::unavailable("no reply in time")));
        }
        let mut byte = [0u8; 1];
        match call.reply.read(&mut byte) {
            Ok(1) => CallStep::done(dispatch(&self.records, call.call)),
            Err(error) if error.kind() == IoErrorKind::WouldBlock => {
                let wait = CallWait {
                    fd: call.reply.as_raw_fd(),
                    interest: Interest::Readable,
                    timeout_ms: self.timeout_ms,
                    ticket,
                };
                self.in_flight.lock().unwrap().insert(ticket, call);
                CallStep::Wait(wait)
            }
            _ => CallStep::done(Err(StoreError::unavailable("the connection closed"))),
        }
    }

    fn cancel_call(&self, ticket: u64) {
        self.counts.cancelled.fetch_add(1, Ordering::SeqCst);
        self.in_flight.lock().unwrap().remove(&ticket);
    }
}

fn socket_engine(
    reply_after: Option<Duration>,
    timeout_ms: u64,
    hands_back: fn(&StoreCall) -> bool,
) -> (Engine, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let store = SocketStore {
        records: MemoryStore::new(),
        in_flight: Mutex::default(),
        next_ticket: AtomicU64::new(1),
        counts: Arc::clone(&counts),
        reply_after,
        timeout_ms,
        hands_back,
    };
    let engine = Engine::from_store(
        INFO,
        FfiAdapter::new("socket", store).into_box(),
        &Settings::new(SECRET),
    )
    .expect("the socket engine opens");
    (engine, counts)
}

const REPLY: Option<Duration> = Some(Duration::from_millis(5));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_of_a_readiness_store_wait_on_its_socket_not_the_blocking_pool() {
    let (engine, counts) = socket_engine(REPLY, 2_000, |_| false);
    assert!(
        engine
            .capabilities()
            .contains(Capabilities::READINESS_CALLS)
    );
    let mut s = engine.session(None);
    s.insert("member_id", 42).unwrap();
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();

    let mut again = engine.session(Some(&key));
    again.ensure_loaded_async().await.unwrap();
    assert_eq!(again.get::<i64>("member_id").unwrap(), Some(42));
    again.insert("cart", 3).unwrap();
    // An update of a loaded session: the conditional save.
    again.save_async().await.unwrap();
    assert!(again.exists_async(&key).await.unwrap());
    again.cycle_key_async().await.unwrap();
    let cycled = again.session_key().unwrap().to_owned();
    assert_ne!(cycled, key);
    assert!(!again.exists_async(&key).await.unwrap());

    let mut last = engine.session(Some(&cycled));
    last.ensure_loaded_async().await.unwrap();
    assert_eq!(last.get::<i64>("cart").unwrap(), Some(3));
    last.flush_async().await.unwrap();
    assert!(!last.exists_async(&cycled).await.unwrap());

    assert_eq!(
        Counts::get(&counts.blocking),
        0,
        "no call ran the blocking way"
    );
    let started = Counts::get(&counts.started);
    // create, load, save_if_unchanged, exists, create + delete (cycle), exists, load, delete,
    // exists.
    assert!(started >= 10, "only {started} calls started");
    assert_eq!(Counts::get(&counts.resumed), started);
    assert_eq!(Counts::get(&counts.cancelled), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_call_the_store_hands_back_runs_the_blocking_way() {
    let (engine, counts) = socket_engine(REPLY, 2_000, |call| matches!(call, StoreCall::Create(_)));
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save_async().await.unwrap();
    assert_eq!(Counts::get(&counts.blocking), 1, "the create");
    assert_eq!(Counts::get(&counts.started), 0);

    let key = s.session_key().unwrap().to_owned();
    let mut again = engine.session(Some(&key));
    again.ensure_loaded_async().await.unwrap();
    assert_eq!(again.get::<i64>("a").unwrap(), Some(1));
    assert_eq!(
        Counts::get(&counts.started),
        1,
        "the load waited on the socket"
    );
    assert_eq!(Counts::get(&counts.blocking), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_wait_that_times_out_ends_the_call_as_unavailable() {
    let (engine, counts) = socket_engine(None, 50, |call| matches!(call, StoreCall::Create(_)));
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();

    let mut again = engine.session(Some(&key));
    let error = again.ensure_loaded_async().await.unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::Unavailable), "{error}");
    assert_eq!(Counts::get(&counts.timed_out), 1);
    assert_eq!(Counts::get(&counts.cancelled), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_request_dropped_mid_wait_cancels_its_call() {
    let (engine, counts) = socket_engine(None, 0, |call| matches!(call, StoreCall::Create(_)));
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save_async().await.unwrap();
    let key = s.session_key().unwrap().to_owned();

    let mut again = engine.session(Some(&key));
    let waited = tokio::time::timeout(Duration::from_millis(50), again.ensure_loaded_async()).await;
    assert!(
        waited.is_err(),
        "the reply never comes, so the load cannot finish"
    );
    assert_eq!(Counts::get(&counts.started), 1);
    assert_eq!(Counts::get(&counts.cancelled), 1);
    assert_eq!(Counts::get(&counts.resumed), 0);
}

#[test]
fn sync_methods_of_a_readiness_store_call_its_blocking_methods() {
    let (engine, counts) = socket_engine(REPLY, 2_000, |_| false);
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save().unwrap();
    let key = s.session_key().unwrap().to_owned();
    let mut again = engine.session(Some(&key));
    assert_eq!(again.get::<i64>("a").unwrap(), Some(1));
    assert_eq!(Counts::get(&counts.started), 0);
    assert_eq!(Counts::get(&counts.blocking), 2);
}

#[test]
fn a_runtime_without_a_reactor_takes_the_blocking_pool() {
    let (engine, counts) = socket_engine(REPLY, 2_000, |_| false);
    let mut s = engine.session(None);
    s.insert("a", 1).unwrap();
    s.save().unwrap();
    let key = s.session_key().unwrap().to_owned();
    // Timers but no I/O driver: tokio cannot wait on a socket here (it would panic).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    for _ in 0..2 {
        let mut again = engine.session(Some(&key));
        runtime.block_on(again.ensure_loaded_async()).unwrap();
        assert_eq!(again.get::<i64>("a").unwrap(), Some(1));
    }
    assert_eq!(
        Counts::get(&counts.started),
        0,
        "no call waited on that runtime"
    );
    assert_eq!(
        Counts::get(&counts.blocking),
        3,
        "the create and both loads"
    );
}
