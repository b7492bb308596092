//! Driver for `scripts/callgrind.sh`: runs N requests of one kind through the tower service in
//! process, so that `valgrind --tool=callgrind` can count instructions per request (the script
//! runs it with N = 0 and N counted requests after the same warm-up and divides the
//! difference, counting from the `start_counting()` marker called after the warm-up). Not a
//! criterion bench. A Prometheus recorder is installed first, so the host's
//! per-operation counters and histograms are counted ("with metrics on").
//!
//! Cases (the handler reads one value, or writes one value, a new one each request):
//!
//! - `no_session`: the same router without the session layer;
//! - `read`, `write`, `write_reference` (writes the 5-key reference session, 213 bytes of JSON,
//!   which is compressed when stored): the `cache` engine on its in-process cache;
//! - `read_memo_miss`: a read of a session the host's decode memo has not seen (verify, inflate,
//!   parse, then remember): the sessions are written through one `Engine` and each counted
//!   request reads a different one through a clone with a fresh, empty memo;
//!   `$CALLGRIND_SESSIONS` (the script sets it to N + 20, the same in both runs) is how many;
//! - `redis_read`, `redis_write`: the `cache` engine on Redis (`$SESSIONKIT_TEST_REDIS_URL`,
//!   else redis://127.0.0.1:6379), a fresh `KEY_PREFIX` per run;
//! - `sqlite_read`, `sqlite_write`: the `db` engine on a fresh SQLite file (WAL, FULL);
//! - `signed_cookies_read`, `signed_cookies_write`: the `signed_cookies` engine (and
//!   `locmem_read`, `locmem_write`, the same as `read`, `write`);
//! - `codec_encode` / `codec_decode`: one `SessionCodec` call on the 213-byte reference session
//!   (the write's encode, and a read that misses the decode memo).
//!
//! Every request carries the cookie of the previous response (a returning visitor). Instructions
//! spent in the kernel (Redis and SQLite I/O) are not counted, on either side.
//!
//! Run: `cargo bench -p sessionkit-http --bench callgrind -- <case> <n>`

mod common;

use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{Store, read, write};
use http::Request;
use http::header::{COOKIE, SET_COOKIE};
use sessionkit_codec::{SESSION_STORE_SALT, SessionCodec, SessionMap};
use sessionkit_http::{SessionHandle, SessionLayer};
use tower::ServiceExt;

/// Writes the 5-key reference session (213 bytes of JSON, compressed when
/// stored), with a new `theme` each request.
async fn write_reference(session: SessionHandle) -> String {
    static COUNT: AtomicI64 = AtomicI64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let mut guard = session.lock().await;
    let _ = guard.ensure_loaded_async().await;
    for (key, value) in reference_session() {
        let value = if key == "theme" {
            format!("dark{count:07}").into()
        } else {
            value
        };
        let _ = guard.insert(&key, value);
    }
    count.to_string()
}

async fn no_session() -> String {
    static COUNT: AtomicI64 = AtomicI64::new(0);
    COUNT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// One request; returns the cookie to send next (the previous one when none is set).
async fn send(app: &Router, cookie: Option<String>) -> Option<String> {
    let mut request = Request::get("/");
    if let Some(cookie) = &cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert!(response.status().is_success(), "{}", response.status());
    set_cookie(&response).or(cookie)
}

fn reference_session() -> SessionMap {
    let value = serde_json::json!({
        "_auth_user_id": "1234567",
        "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
        "_auth_user_hash": "705d8f9675f5d141680c20ceb39e05ad026064c3af07dc302135783e64af102a",
        "cart": [101, 202, 303],
        "theme": "dark",
    });
    match value {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("the literal is an object"),
    }
}

/// The usage line.
const USAGE: &str = "usage: callgrind <no_session|read|write|write_reference|read_memo_miss|\
                     <store>_read|<store>_write|codec_encode|codec_decode> <n> \
                     (store: locmem, signed_cookies, redis, sqlite)";

/// The `name=value` of a response's `Set-Cookie`, if any.
fn set_cookie(response: &http::Response<Body>) -> Option<String> {
    response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

/// `/` served by `handler` and `/w` (a write, to create sessions) behind the session layer.
fn session_app(engine: sessionkit::Engine, handler: axum::routing::MethodRouter) -> Router {
    let layer = SessionLayer::new(engine).expect("valid cookie settings");
    Router::new()
        .route("/", handler)
        .route("/w", get(write))
        .layer(layer)
}

/// Creates a session with a value through `app`'s `/w`; returns its cookie.
async fn create_session(app: &Router) -> String {
    let request = Request::get("/w").body(Body::empty()).expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    set_cookie(&response).expect("the warm-up write sets a cookie")
}

/// Marks the start of the counted requests: `scripts/callgrind.sh` has callgrind dump (and zero)
/// its counts on entry, so one-time start-up work whose instruction count varies from run to
/// run (quanta's clock calibration under the metrics recorder, connection set-up) stays out of
/// the figures.
#[inline(never)]
fn start_counting() {
    std::hint::black_box(START_COUNTING.fetch_add(1, Ordering::Relaxed));
}

/// What `start_counting` changes, so it is not optimised away.
static START_COUNTING: AtomicI64 = AtomicI64::new(0);

fn main() {
    // `cargo bench` appends `--bench`; take the first two other arguments.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.is_empty() {
        // `cargo bench -p sessionkit-http` runs every bench target: nothing to do here.
        println!("{USAGE}");
        return;
    }
    let (Some(case), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    if case.starts_with("codec_") {
        let codec = SessionCodec::new(SESSION_STORE_SALT, common::SECRET.as_bytes(), &[]);
        let session = reference_session();
        let encoded = codec.encode(&session, 1_750_000_000).expect("storable");
        start_counting();
        for i in 0..n {
            let now = 1_750_000_000 + i64::try_from(i).unwrap_or(0);
            match case.as_str() {
                "codec_encode" => drop(std::hint::black_box(codec.encode(&session, now))),
                _ => drop(std::hint::black_box(codec.decode(
                    &encoded.session_data,
                    None,
                    now,
                ))),
            }
        }
        return;
    }
    let _metrics = common::install_metrics();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // `<store>_read` / `<store>_write` for every store; the bare names are locmem's.
    let on_store = Store::ALL.into_iter().find_map(|store| {
        let request = case.strip_prefix(store.name())?.strip_prefix('_')?;
        Some((store, request))
    });
    let (store, handler) = match (case.as_str(), on_store) {
        ("no_session", _) => (None, get(no_session)),
        ("read" | "read_memo_miss", _) => (Some(Store::Locmem), get(read)),
        ("write", _) => (Some(Store::Locmem), get(write)),
        ("write_reference", _) => (Some(Store::Locmem), get(write_reference)),
        (_, Some((store, "read"))) => (Some(store), get(read)),
        (_, Some((store, "write"))) => (Some(store), get(write)),
        (other, _) => panic!("unknown case {other}; {USAGE}"),
    };
    let Some(store) = store else {
        let app = Router::new().route("/", handler);
        runtime.block_on(async {
            let mut cookie = None;
            for _ in 0..20 {
                cookie = send(&app, cookie).await;
            }
            start_counting();
            for _ in 0..n {
                cookie = send(&app, cookie).await;
            }
        });
        return;
    };
    let engine = store.open(dir.path());
    if case == "read_memo_miss" {
        // Sessions written through `engine` (whose memo learns them); read through a clone
        // with a fresh memo, each once: every counted read misses the memo.
        let sessions: u64 = std::env::var("CALLGRIND_SESSIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20 + n)
            .max(20 + n);
        let reader = session_app(engine.clone().with_decode_memo(true), handler);
        let writer = session_app(engine, get(write));
        runtime.block_on(async {
            let mut cookies = Vec::new();
            for _ in 0..sessions {
                cookies.push(create_session(&writer).await);
            }
            let mut cookies = cookies.into_iter();
            let warm_up = cookies.by_ref().take(20).collect::<Vec<_>>();
            let counted = cookies
                .take(usize::try_from(n).unwrap_or(0))
                .collect::<Vec<_>>();
            for (i, cookie) in warm_up.into_iter().chain(counted).enumerate() {
                if i == 20 {
                    start_counting();
                }
                let sent = Some(cookie);
                let next = send(&reader, sent.clone()).await;
                assert_eq!(next, sent, "a read sets no cookie");
            }
            if n == 0 {
                start_counting();
            }
        });
        return;
    }
    let app = session_app(engine, handler);
    runtime.block_on(async {
        // Warm-up: create the session (a write) and run a few requests of the case.
        let mut cookie = Some(create_session(&app).await);
        for _ in 0..20 {
            cookie = send(&app, cookie).await;
        }
        start_counting();
        for _ in 0..n {
            cookie = send(&app, cookie).await;
        }
    });
}
