//! What the middleware asks of the engine, seen from an in-test store that records each call
//! (operation and thread) and can be told to fail: engine calls never run on the executor
//! thread, failures never leave a `Set-Cookie`, and a 5xx makes no engine call at all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use sessionkit::{Engine, Settings, testing::MemoryStore};
use sessionkit_http::{SessionError, SessionHandle, SessionLayer};
use sessionkit_sdk::abi_stable::std_types::RStr;
use sessionkit_sdk::store::FfiAdapter;
use sessionkit_sdk::{
    Capabilities, EngineInfo, KeyFormat, SessionRecord, SessionStore, SessionWrite, StoreError,
    StoreResult,
};
use tower::ServiceExt;

/// What the store saw, shared with the test.
#[derive(Default)]
struct Probe {
    records: MemoryStore,
    calls: Mutex<Vec<(&'static str, ThreadId)>>,
    fail_load: AtomicBool,
    fail_save: AtomicBool,
}

impl Probe {
    fn record(&self, operation: &'static str) {
        self.calls
            .lock()
            .expect("calls")
            .push((operation, std::thread::current().id()));
    }

    fn operations(&self) -> Vec<&'static str> {
        self.calls
            .lock()
            .expect("calls")
            .iter()
            .map(|(op, _)| *op)
            .collect()
    }
}

/// The public in-memory store, logging each call and failing on demand.
struct ProbeStore(Arc<Probe>);

impl SessionStore for ProbeStore {
    fn exists(&self, key: &str) -> StoreResult<bool> {
        self.0.record("exists");
        self.0.records.exists(key)
    }

    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        self.0.record("load");
        if self.0.fail_load.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("the probe store is down"));
        }
        self.0.records.load(key)
    }

    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        self.0.record("create");
        if self.0.fail_save.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("the probe store is full"));
        }
        self.0.records.create(write)
    }

    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        self.0.record("save");
        if self.0.fail_save.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable("the probe store is full"));
        }
        self.0.records.save(write)
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        self.0.record("delete");
        self.0.records.delete(key)
    }

    fn clear_expired(&self) -> StoreResult<u64> {
        Ok(0)
    }
}

const PROBE_INFO: EngineInfo = EngineInfo {
    name: RStr::from_str("probe"),
    version: RStr::from_str("0.0.0"),
    salt: RStr::from_str(sessionkit_codec::SESSION_STORE_SALT),
    capabilities: Capabilities::SERVER_SIDE_INVALIDATION,
    key_format: KeyFormat::DjangoSessionKey,
};

/// An engine over a fresh probe store.
fn probe_engine(settings: &Settings) -> (Engine, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let store = FfiAdapter::new("probe", ProbeStore(probe.clone())).into_box();
    let engine = Engine::from_store(PROBE_INFO, store, settings).expect("engine");
    (engine, probe)
}

/// A stored session; the probe's call log is cleared afterwards.
fn stored_session(engine: &Engine, probe: &Probe) -> String {
    let mut session = engine.session(None);
    session.insert("seed", "one").expect("insert");
    session.save().expect("save");
    probe.calls.lock().expect("calls").clear();
    session.session_key().expect("key").to_owned()
}

fn send(app: &Router, cookie: &str, runtime: &tokio::runtime::Runtime) -> Response<Body> {
    let request = Request::get("/")
        .header(COOKIE, cookie)
        .body(Body::empty())
        .expect("request");
    runtime
        .block_on(app.clone().oneshot(request))
        .expect("infallible")
}

/// An app whose handler reads the session and writes it back: one load and one save.
fn read_and_write_app(engine: Engine) -> Router {
    Router::new()
        .route(
            "/",
            get(|session: SessionHandle| async move {
                let seed: Option<String> = session.get("seed").await.expect("get");
                session.insert("seen", seed).await.expect("insert");
                "ok"
            }),
        )
        .layer(SessionLayer::new(engine).expect("layer"))
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// On a single-threaded runtime the executor is the test's own thread: every engine call of a
/// request (the handler's load, the middleware's save) must happen on another thread.
#[test]
fn engine_calls_never_run_on_the_executor_thread() {
    let (engine, probe) = probe_engine(&Settings::new("secret"));
    let key = stored_session(&engine, &probe);
    let app = read_and_write_app(engine);
    let response = send(&app, &format!("sessionid={key}"), &current_thread());
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers().get_all(SET_COOKIE).iter().count(), 1);
    let executor = std::thread::current().id();
    let calls = probe.calls.lock().expect("calls").clone();
    assert_eq!(
        calls.iter().map(|(op, _)| *op).collect::<Vec<_>>(),
        ["load", "save"]
    );
    for (operation, thread) in calls {
        assert_ne!(thread, executor, "{operation} ran on the executor thread");
    }
}

/// A store that declares `NON_BLOCKING` (no I/O, like the in-process cache) is called inline on
/// the executor: the blocking-pool hop would cost far more than the call itself.
#[test]
fn non_blocking_stores_are_called_on_the_executor_thread() {
    let probe = Arc::new(Probe::default());
    let store = FfiAdapter::new("probe", ProbeStore(probe.clone())).into_box();
    let info = EngineInfo {
        capabilities: Capabilities::SERVER_SIDE_INVALIDATION | Capabilities::NON_BLOCKING,
        ..PROBE_INFO
    };
    let engine = Engine::from_store(info, store, &Settings::new("secret")).expect("engine");
    let key = stored_session(&engine, &probe);
    let app = read_and_write_app(engine);
    let response = send(&app, &format!("sessionid={key}"), &current_thread());
    assert_eq!(response.status(), StatusCode::OK);
    let executor = std::thread::current().id();
    let calls = probe.calls.lock().expect("calls").clone();
    assert_eq!(
        calls.iter().map(|(op, _)| *op).collect::<Vec<_>>(),
        ["load", "save"]
    );
    for (operation, thread) in calls {
        assert_eq!(thread, executor, "{operation} left the executor thread");
    }
}

/// A save the engine refuses is a 500 with no `Set-Cookie` and the error attached.
#[test]
fn failed_save_is_a_500_without_set_cookie() {
    let (engine, probe) = probe_engine(&Settings::new("secret"));
    probe.fail_save.store(true, Ordering::SeqCst);
    let app = Router::new()
        .route(
            "/",
            get(|session: SessionHandle| async move {
                session.insert("a", 1).await.expect("insert");
                "ok"
            }),
        )
        .layer(SessionLayer::new(engine).expect("layer"));
    let response = send(&app, "other=1", &current_thread());
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers().get_all(SET_COOKIE).iter().count(), 0);
    let error = response
        .extensions()
        .get::<Arc<SessionError>>()
        .expect("error attached");
    assert!(matches!(**error, SessionError::Save(_)), "{error}");
    assert!(
        probe.operations().contains(&"create"),
        "{:?}",
        probe.operations()
    );
}

/// With `SESSION_SAVE_EVERY_REQUEST`, an untouched session loads while the cookie's expiry is
/// computed; if that load fails the answer is a 500 without `Set-Cookie`.
#[test]
fn failed_load_while_computing_the_expiry_is_a_500_without_set_cookie() {
    let mut settings = Settings::new("secret");
    settings.session_save_every_request = true;
    let (engine, probe) = probe_engine(&settings);
    let key = stored_session(&engine, &probe);
    probe.fail_load.store(true, Ordering::SeqCst);
    let app = Router::new()
        .route("/", get(|| async { "untouched" }))
        .layer(SessionLayer::new(engine).expect("layer"));
    let response = send(&app, &format!("sessionid={key}"), &current_thread());
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers().get_all(SET_COOKIE).iter().count(), 0);
    let error = response
        .extensions()
        .get::<Arc<SessionError>>()
        .expect("error attached");
    assert!(matches!(**error, SessionError::Load(_)), "{error}");
}

/// A 5xx response makes no engine call at all, even with `SESSION_SAVE_EVERY_REQUEST` (Django
/// still loads the session to compute an expiry it then does not use).
#[test]
fn server_error_makes_no_engine_call() {
    let mut settings = Settings::new("secret");
    settings.session_save_every_request = true;
    let (engine, probe) = probe_engine(&settings);
    let key = stored_session(&engine, &probe);
    let app = Router::new()
        .route(
            "/",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "broken") }),
        )
        .layer(SessionLayer::new(engine).expect("layer"));
    let response = send(&app, &format!("sessionid={key}"), &current_thread());
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.headers().get_all(SET_COOKIE).iter().count(), 0);
    assert!(probe.operations().is_empty(), "{:?}", probe.operations());
}

/// A request that never touches its session makes no engine call (the session is lazy).
#[test]
fn untouched_session_makes_no_engine_call() {
    let (engine, probe) = probe_engine(&Settings::new("secret"));
    let key = stored_session(&engine, &probe);
    let app = Router::new()
        .route("/", get(|| async { "untouched" }))
        .layer(SessionLayer::new(engine).expect("layer"));
    let response = send(&app, &format!("sessionid={key}"), &current_thread());
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(http::header::VARY).is_none());
    assert!(probe.operations().is_empty(), "{:?}", probe.operations());
}

/// A session cookie that is not a well-formed key (too short or
/// long, wrong alphabet, a path, percent-encoded, huge) reaches the engine never, even when the
/// handler reads the session; the cookie is deleted.
#[test]
fn malformed_keys_never_reach_the_engine() {
    let (engine, probe) = probe_engine(&Settings::new("secret"));
    let app = Router::new()
        .route(
            "/",
            get(|session: SessionHandle| async move {
                let value: Option<String> = session.get("seed").await.expect("get");
                value.unwrap_or_default()
            }),
        )
        .layer(SessionLayer::new(engine).expect("layer"));
    let runtime = current_thread();
    let values = [
        "abcdefg".to_owned(),
        "a".repeat(31) + "\u{0}",
        "a".repeat(41),
        "A".repeat(32),
        "../../etc/passwd".to_owned(),
        "..%2F..%2Fetc%2Fpasswd0123456789".to_owned(),
        "a b c d e f g h i j k l m n o p".to_owned(),
        "a".repeat(4096),
        "a".repeat(64 * 1024),
        "a".repeat(1024 * 1024),
    ];
    for value in values {
        let cookie = format!("other=1; sessionid={value}");
        let Ok(header) = http::HeaderValue::from_str(&cookie) else {
            // A NUL can never reach a handler: `http` refuses it in a header value.
            assert!(value.contains('\u{0}'));
            continue;
        };
        let request = Request::get("/")
            .header(COOKIE, header)
            .body(Body::empty())
            .expect("req");
        let response = runtime
            .block_on(app.clone().oneshot(request))
            .expect("infallible");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            &value[..value.len().min(40)]
        );
        let cookies: Vec<_> = response.headers().get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies.len(), 1);
        assert!(
            cookies[0]
                .to_str()
                .expect("ascii")
                .starts_with("sessionid=\"\"; expires=Thu, 01")
        );
    }
    assert!(probe.operations().is_empty(), "{:?}", probe.operations());
}
