//! tower-sessions 0.14 with its `MemoryStore`, driven exactly like
//! `host/http/benches/callgrind.rs` drives sessionkit: N requests of one kind through the tower
//! service in process, a returning visitor, for `scripts/callgrind.sh`.
//!
//! Run: `cargo run --release --manifest-path bench/peers/Cargo.toml -- <case> <n>`

use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http::header::{COOKIE, SET_COOKIE};
use tower::ServiceExt;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

async fn read(session: Session) -> String {
    let count: i64 = session.get("count").await.ok().flatten().unwrap_or(0);
    count.to_string()
}

async fn write(session: Session) -> String {
    static COUNT: AtomicI64 = AtomicI64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    // A failed insert shows up as an error status, which `send` asserts on.
    session
        .insert("count", count)
        .await
        .map(|()| count.to_string())
        .unwrap_or_default()
}

/// Writes the 5-key reference session (213 bytes of JSON), with a new `theme` each request.
async fn write_reference(session: Session) -> String {
    static COUNT: AtomicI64 = AtomicI64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let hash = "705d8f9675f5d141680c20ceb39e05ad026064c3af07dc302135783e64af102a";
    let backend = "django.contrib.auth.backends.ModelBackend";
    let theme = format!("dark{count:07}");
    let mut ok = session.insert("_auth_user_id", "1234567").await.is_ok();
    ok &= session.insert("_auth_user_backend", backend).await.is_ok();
    ok &= session.insert("_auth_user_hash", hash).await.is_ok();
    ok &= session.insert("cart", [101, 202, 303]).await.is_ok();
    ok &= session.insert("theme", theme).await.is_ok();
    if ok { count.to_string() } else { String::new() }
}

async fn no_session() -> String {
    static COUNT: AtomicI64 = AtomicI64::new(0);
    COUNT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// One request; returns the cookie to send next (the previous one when none is set).
async fn send(app: &Router, cookie: Option<String>, path: &str) -> Option<String> {
    let mut request = Request::get(path);
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

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(case), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: sessionkit-bench-peers <no_session|read|write|write_reference> <n>");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let app = match case.as_str() {
        "no_session" => Router::new().route("/", get(no_session)),
        "read" | "write" | "write_reference" => {
            let layer = SessionManagerLayer::new(MemoryStore::default())
                .with_secure(false)
                .with_expiry(tower_sessions::Expiry::OnInactivity(
                    tower_sessions::cookie::time::Duration::hours(1),
                ));
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
        let mut cookie = None;
        if case != "no_session" {
            cookie = send(&app, None, "/w").await;
            assert!(cookie.is_some(), "the warm-up write set no cookie");
        }
        for _ in 0..20 {
            cookie = send(&app, cookie, "/").await;
        }
        for _ in 0..n {
            cookie = send(&app, cookie, "/").await;
        }
    });
}
