//! tower-sessions 0.14, the peer of issue 11, driven like sessionkit's bench drivers.
//!
//! Two modes:
//!
//! - `<case> <n>`: N requests of one kind through the tower service in process, a returning
//!   visitor, exactly as `host/http/benches/callgrind.rs` drives sessionkit, for
//!   `scripts/callgrind.sh` (instructions per request under valgrind). Cases: `no_session`,
//!   `read`, `write`, `write_reference` (the in-memory `MemoryStore`), `redis_read`,
//!   `redis_write` (`tower-sessions-redis-store`, fred, on `$SESSIONKIT_TEST_REDIS_URL` or
//!   `redis://127.0.0.1:6379`), `sqlite_read`, `sqlite_write` (`tower-sessions-sqlx-store` on a
//!   fresh SQLite file in WAL mode, `synchronous=FULL`, as sessionkit's `db` engine).
//! - `serve <port>`: an axum server on 127.0.0.1 for `scripts/http-bench.sh`: `/none` (no
//!   session layer), and `/<store>/read`, `/<store>/write` for the stores `memory`, `redis` and
//!   `sqlite`. Prints `ready <port>` on stdout once it
//!   listens (port 0 picks a free one).
//!
//! Run: `cargo run --release --manifest-path bench/peers/Cargo.toml -- <case> <n>`

use std::sync::atomic::{AtomicI64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use http::header::{COOKIE, SET_COOKIE};
use tower::ServiceExt;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer, SessionStore};
use tower_sessions_redis_store::RedisStore;
use tower_sessions_redis_store::fred::prelude::{ClientLike, Config, Pool};
use tower_sessions_sqlx_store::SqliteStore;
use tower_sessions_sqlx_store::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

/// Redis connections of the `serve` mode's pool (the store's documented example uses 6).
const REDIS_POOL_SIZE: usize = 6;

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

/// The session layer over `store`, with the cookie settings of both drivers (not `Secure`, so
/// plain-HTTP clients send it back; one hour of inactivity).
fn layer<S: SessionStore + Clone>(store: S) -> SessionManagerLayer<S> {
    SessionManagerLayer::new(store)
        .with_secure(false)
        .with_expiry(tower_sessions::Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::hours(1),
        ))
}

/// The Redis URL of the shared test server.
fn redis_url() -> String {
    std::env::var("SESSIONKIT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A connected fred pool of `size` clients. Keys are the session ids tower-sessions makes
/// (random 128-bit, expiring with the session), so runs never collide and nothing is flushed.
async fn redis_store(size: usize) -> RedisStore<Pool> {
    let config = Config::from_url(&redis_url()).expect("a valid Redis URL");
    let pool = Pool::new(config, None, None, None, size).expect("a Redis pool");
    let _connection_task = pool.init().await.expect("Redis is reachable");
    RedisStore::new(pool)
}

/// The sqlx SQLite store on a new file in `dir`, WAL with `synchronous=FULL` like sessionkit's
/// `db` engine on SQLite.
async fn sqlite_store(dir: &std::path::Path) -> SqliteStore {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("peer.sqlite3"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .expect("the SQLite file opens");
    let store = SqliteStore::new(pool);
    store.migrate().await.expect("the session table is created");
    store
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

/// `/read` and `/write` behind the session layer over `store`.
fn store_routes<S: SessionStore + Clone>(store: S) -> Router {
    Router::new()
        .route("/read", get(read))
        .route("/write", get(write))
        .layer(layer(store))
}

/// The `serve` mode: every store on one server, until killed.
fn serve(port: u16) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    runtime.block_on(async {
        let app = Router::new()
            .route("/none", get(no_session))
            .nest("/memory", store_routes(MemoryStore::default()))
            .nest("/redis", store_routes(redis_store(REDIS_POOL_SIZE).await))
            .nest("/sqlite", store_routes(sqlite_store(dir.path()).await));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the port is free");
        let port = listener.local_addr().expect("a bound address").port();
        println!("ready {port}");
        axum::serve(listener, app).await.expect("serving");
    });
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let port = args.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        serve(port);
        return;
    }
    let (Some(case), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!(
            "usage: sessionkit-bench-peers <no_session|read|write|write_reference|redis_read|\
             redis_write|sqlite_read|sqlite_write> <n>\n       sessionkit-bench-peers serve <port>"
        );
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let handler = match case.as_str() {
        "no_session" => None,
        "read" | "redis_read" | "sqlite_read" => Some(get(read)),
        "write" | "redis_write" | "sqlite_write" => Some(get(write)),
        "write_reference" => Some(get(write_reference)),
        other => panic!("unknown case {other}"),
    };
    let app = match handler {
        None => Router::new().route("/", get(no_session)),
        // `/w` creates the session with a value before the counted requests.
        Some(handler) => {
            let routes = Router::new().route("/", handler).route("/w", get(write));
            if case.starts_with("redis_") {
                let store = runtime.block_on(redis_store(1));
                routes.layer(layer(store))
            } else if case.starts_with("sqlite_") {
                let store = runtime.block_on(sqlite_store(dir.path()));
                routes.layer(layer(store))
            } else {
                routes.layer(layer(MemoryStore::default()))
            }
        }
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
        start_counting();
        for _ in 0..n {
            cookie = send(&app, cookie, "/").await;
        }
    });
}
