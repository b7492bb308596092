//! Driver for `scripts/callgrind.sh`: runs N requests of one kind through the tower service in
//! process, so that `valgrind --tool=callgrind` can count instructions per request (the script
//! runs it with N = 0 and N = 2000 and divides the difference). Not a criterion bench.
//!
//! Cases: `no_session`, `read` (the handler reads one value), `write` (the handler writes one
//! value, a new one each request), `write_reference` (the handler writes the 5-key reference
//! session, 213 bytes of JSON, which is compressed when stored), each on the in-process cache
//! engine; and `codec_encode` /
//! `codec_decode` (one `SessionCodec` call on the 213-byte reference session: the write's
//! encode and a read that misses the host's decode memo). Every request carries the cookie of
//! the previous response (a returning visitor).
//!
//! Run: `cargo bench -p sessionkit-http --bench callgrind -- <case> <n>`

use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http::header::{COOKIE, SET_COOKIE};
use sessionkit::{Engine, Settings};
use sessionkit_codec::{SESSION_STORE_SALT, SessionCodec, SessionMap};
use sessionkit_http::{SessionHandle, SessionLayer};
use tower::ServiceExt;

async fn read(session: SessionHandle) -> String {
    let mut guard = session.lock().await;
    let _ = guard.ensure_loaded_async().await;
    let count: i64 = guard.get("count").ok().flatten().unwrap_or(0);
    count.to_string()
}

async fn write(session: SessionHandle) -> String {
    static COUNT: AtomicI64 = AtomicI64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let mut guard = session.lock().await;
    // A failed load or insert shows up as a missing Set-Cookie, which `send` asserts on.
    let _ = guard.ensure_loaded_async().await;
    let _ = guard.insert("count", count);
    count.to_string()
}

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
    let set = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_owned());
    set.or(cookie)
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

fn main() {
    // `cargo bench` appends `--bench`; take the first two other arguments.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (Some(case), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!(
            "usage: callgrind <no_session|read|write|write_reference|codec_encode|codec_decode> <n>"
        );
        std::process::exit(2);
    };
    if case.starts_with("codec_") {
        let codec = SessionCodec::new(SESSION_STORE_SALT, b"bench-secret-key", &[]);
        let session = reference_session();
        let encoded = codec.encode(&session, 1_750_000_000).expect("storable");
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let app = match case.as_str() {
        "no_session" => Router::new().route("/", get(no_session)),
        "read" | "write" | "write_reference" => {
            let mut settings = Settings::new("bench-secret-key");
            settings.session_cookie_age = 3600;
            let library = sessionkit_testkit::engine_library("cache");
            let engine = Engine::load(&library.to_string_lossy(), &settings)
                .unwrap_or_else(|e| panic!("{}: {e}", library.display()));
            let layer = SessionLayer::new(engine).expect("valid cookie settings");
            let handler = match case.as_str() {
                "read" => get(read),
                "write" => get(write),
                _ => get(write_reference),
            };
            // `/w` creates the session with a value before the counted requests.
            Router::new()
                .route("/", handler)
                .route("/w", get(write))
                .layer(layer)
        }
        other => panic!("unknown case {other}"),
    };
    runtime.block_on(async {
        // Warm-up: create the session (a write) and run a few requests of the case.
        let mut cookie = None;
        if case != "no_session" {
            let request = Request::get("/w").body(Body::empty()).expect("request");
            let response = app.clone().oneshot(request).await.expect("infallible");
            cookie = response
                .headers()
                .get(SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or_default().to_owned());
            assert!(cookie.is_some(), "the warm-up write set no cookie");
        }
        for _ in 0..20 {
            cookie = send(&app, cookie).await;
        }
        for _ in 0..n {
            cookie = send(&app, cookie).await;
        }
    });
}
