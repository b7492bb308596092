//! The sessionkit server of `scripts/http-bench.sh`: axum with `SessionLayer` on 127.0.0.1,
//! driven over loopback HTTP by wrk (keep-alive). Not a criterion bench.
//!
//! Routes: `/none` (no session layer: the baseline), and per store `/<store>/read` (reads one
//! value) and `/<store>/write` (writes one value, a new one each request), for the stores
//! `locmem` (the `cache` engine in process), `signed_cookies`, `redis` (the `cache` engine on
//! Redis, a fresh `KEY_PREFIX`) and `sqlite` (the `db` engine on a fresh SQLite file, WAL,
//! `synchronous=FULL`) — each engine loaded from its plugin as `SESSION_ENGINE` would. A
//! Prometheus recorder is installed first ("with metrics on"), its upkeep run every 5 s as an
//! application would. A tokio multi-thread runtime with the default worker count, like the
//! tower-sessions server of `bench/peers` (`serve` mode). With `$SESSIONKIT_BENCH_LOG` set (an
//! env filter such as `warn`), log events go to stderr (off by default: the measured server
//! has no subscriber). Prints `ready <port>` once it listens
//! (port 0 picks a free one).
//!
//! Run: `cargo bench -p sessionkit-http --bench http_server -- <port>`

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{Store, read, write};
use sessionkit_http::SessionLayer;

async fn no_session() -> String {
    static COUNT: AtomicI64 = AtomicI64::new(0);
    COUNT.fetch_add(1, Ordering::Relaxed).to_string()
}

fn main() {
    // `cargo bench` appends `--bench`; take the first other argument.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(port) = args.first().and_then(|p| p.parse::<u16>().ok()) else {
        // `cargo bench -p sessionkit-http` runs every bench target: nothing to serve then.
        println!("usage: http_server <port>");
        return;
    };
    if let Ok(filter) = std::env::var("SESSIONKIT_BENCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .init();
    }
    let metrics = common::install_metrics();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(5));
            metrics.run_upkeep();
        }
    });
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut app = Router::new().route("/none", get(no_session));
    for store in Store::ALL {
        let layer = SessionLayer::new(store.open(dir.path())).expect("valid cookie settings");
        let routes = Router::new()
            .route("/read", get(read))
            .route("/write", get(write))
            .layer(layer);
        app = app.nest(&format!("/{}", store.name()), routes);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("the port is free");
        let port = listener.local_addr().expect("a bound address").port();
        println!("ready {port}");
        axum::serve(listener, app).await.expect("serving");
    });
}
