//! What the bench drivers `callgrind.rs` and `http_server.rs` share: the stores they run
//! sessionkit on (each opened through its engine plugin, as `SESSION_ENGINE` would) and the
//! metrics recorder they install, so the host's per-operation metrics are paid as in production.
//! Default settings, except a one-hour cookie age and `$SESSIONKIT_BENCH_CONCURRENT_WRITES`.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sessionkit::observe::OPERATION_SECONDS;
use sessionkit::{Engine, Settings};
use sessionkit_http::SessionHandle;

/// The secret both drivers sign with.
pub(crate) const SECRET: &str = "bench-secret-key";

/// Overrides `SESSION_CONCURRENT_WRITES` (`merge`, the default, or `overwrite`: Django's and
/// tower-sessions' last writer wins).
pub(crate) const CONCURRENT_WRITES_VAR: &str = "SESSIONKIT_BENCH_CONCURRENT_WRITES";

/// Bucket bounds of the engine-call latency histogram, the demo's (host/cli/src/demo/metrics.rs).
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_02, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.25,
    1.0, 5.0,
];

/// A store sessionkit runs on in the benches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Store {
    /// The `cache` engine on its in-process cache (`locmem://`).
    Locmem,
    /// The `signed_cookies` engine (the session is the cookie).
    SignedCookies,
    /// The `cache` engine on Redis (`$SESSIONKIT_TEST_REDIS_URL`, else 127.0.0.1:6379), with a
    /// fresh `KEY_PREFIX` per run; keys expire with the sessions (nothing is flushed).
    Redis,
    /// The `db` engine on a fresh SQLite file (WAL, `synchronous=FULL`, the default).
    Sqlite,
}

impl Store {
    /// Every store, in table order.
    pub(crate) const ALL: [Store; 4] = [
        Store::Locmem,
        Store::SignedCookies,
        Store::Redis,
        Store::Sqlite,
    ];

    /// The store's name in URLs and case names.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Store::Locmem => "locmem",
            Store::SignedCookies => "signed_cookies",
            Store::Redis => "redis",
            Store::Sqlite => "sqlite",
        }
    }

    /// The engine plugin that serves the store.
    fn engine(self) -> &'static str {
        match self {
            Store::Locmem | Store::Redis => "cache",
            Store::SignedCookies => "signed_cookies",
            Store::Sqlite => "db",
        }
    }

    /// The engine on this store, loaded from its plugin next to the executable (a bench's
    /// `target/<profile>/deps`); files go in `dir`.
    ///
    /// # Panics
    ///
    /// When the plugin is not built or the store cannot be opened.
    pub(crate) fn open(self, dir: &Path) -> Engine {
        let mut settings = Settings::new(SECRET);
        settings.session_cookie_age = 3600;
        settings.session_engine = self.engine().to_owned();
        match self {
            Store::Locmem => {
                settings.caches = serde_json::json!({"default": {
                    "LOCATION": "locmem://bench",
                    "OPTIONS": {"MAX_ENTRIES": 10_000_000},
                }});
            }
            Store::SignedCookies => {}
            Store::Redis => {
                let url = std::env::var(sessionkit_testkit::REDIS_URL_ENV)
                    .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
                settings.caches = serde_json::json!({"default": {
                    "LOCATION": url,
                    "KEY_PREFIX": sessionkit_testkit::unique_prefix(),
                }});
            }
            Store::Sqlite => {
                settings.session_db_url =
                    Some(format!("sqlite://{}", dir.join("bench.sqlite3").display()));
            }
        }
        if let Ok(mode) = std::env::var(CONCURRENT_WRITES_VAR) {
            settings
                .set("SESSION_CONCURRENT_WRITES", serde_json::Value::String(mode))
                .unwrap_or_else(|e| panic!("{CONCURRENT_WRITES_VAR}: {e}"));
        }
        let library = sessionkit_testkit::engine_library(self.engine());
        Engine::load(&library.to_string_lossy(), &settings)
            .unwrap_or_else(|e| panic!("{} ({}): {e}", self.name(), library.display()))
    }
}

/// Installs the Prometheus recorder (with the demo's latency buckets) as the process's
/// `metrics` recorder. Call before opening engines: the host registers its handles then.
///
/// # Panics
///
/// When a recorder is already installed.
pub(crate) fn install_metrics() -> PrometheusHandle {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(OPERATION_SECONDS.to_owned()),
            &LATENCY_BUCKETS,
        )
        .and_then(PrometheusBuilder::install_recorder)
        .expect("the first metrics recorder of the process installs")
}

/// The handler that reads one value (`count`) of the session: a returning visitor's read.
pub(crate) async fn read(session: SessionHandle) -> String {
    let mut guard = session.lock().await;
    let _ = guard.ensure_loaded_async().await;
    let count: i64 = guard.get("count").ok().flatten().unwrap_or(0);
    count.to_string()
}

/// The handler that writes one value (`count`, a new one each request). A failed load or
/// insert shows up as a missing Set-Cookie, which the drivers check.
pub(crate) async fn write(session: SessionHandle) -> String {
    static COUNT: AtomicI64 = AtomicI64::new(0);
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let mut guard = session.lock().await;
    let _ = guard.ensure_loaded_async().await;
    let _ = guard.insert("count", count);
    count.to_string()
}
