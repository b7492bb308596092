//! Concurrent requests of one visitor through the tower layer, on every server-side engine: 32
//! requests that all load the session before any of them saves, each adding its own key, keep
//! all 32 keys; 32 concurrent atomic increments of one counter end at 32. The application does
//! nothing for it: the middleware's ordinary save merges through the engine's conditional save.
//!
//! The handlers wait on a barrier after loading, so every request's save races every other's
//! (the worst case, made certain rather than left to scheduling).

use std::sync::Arc;

use axum::{Router, body::Body, extract::Path, routing::post};
use http::{
    Request, StatusCode,
    header::{COOKIE, SET_COOKIE},
};
use serde_json::json;
use sessionkit::{Engine, Settings};
use sessionkit_http::{SessionHandle, SessionLayer};
use tokio::sync::Barrier;
use tower::ServiceExt;

/// Concurrent requests per run.
const REQUESTS: usize = 32;

/// How a run's engine is set up.
struct Target {
    label: &'static str,
    engine: &'static str,
    settings: Settings,
    /// Cleanup after the run (drop the PostgreSQL database).
    cleanup: Option<Box<dyn FnOnce()>>,
    _dir: Option<tempfile::TempDir>,
}

fn base_settings() -> Settings {
    Settings::new("concurrency-test-secret-key")
}

fn targets() -> Vec<Target> {
    let mut targets = Vec::new();
    let local = |label, engine, tweak: &dyn Fn(&mut Settings, &std::path::Path)| {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = base_settings();
        tweak(&mut settings, dir.path());
        Target {
            label,
            engine,
            settings,
            cleanup: None,
            _dir: Some(dir),
        }
    };
    let sqlite = |settings: &mut Settings, dir: &std::path::Path| {
        settings.session_db_url = Some(format!("sqlite://{}", dir.join("s.sqlite3").display()));
    };
    let locmem = |settings: &mut Settings, _: &std::path::Path| {
        settings.caches = json!({"default": {"LOCATION": "locmem://concurrency"}});
    };
    targets.push(local("cache (locmem)", "cache", &locmem));
    targets.push(local("db (SQLite)", "db", &sqlite));
    targets.push(local("account_db (SQLite)", "account_db", &sqlite));
    targets.push(local("file", "file", &|settings, dir| {
        settings.session_file_path = Some(dir.to_path_buf());
    }));
    targets.push(local(
        "cached_db (locmem + SQLite)",
        "cached_db",
        &|settings, dir| {
            sqlite(settings, dir);
            locmem(settings, dir);
        },
    ));
    if let Some(base) = sessionkit_testkit::postgres_url() {
        for (label, engine) in [
            ("db (PostgreSQL)", "db"),
            ("account_db (PostgreSQL)", "account_db"),
        ] {
            let url = sessionkit_testkit::fresh_postgres_database(&base);
            let mut settings = base_settings();
            settings.session_db_url = Some(url.clone());
            let base = base.clone();
            targets.push(Target {
                label,
                engine,
                settings,
                cleanup: Some(Box::new(move || {
                    sessionkit_testkit::drop_postgres_database(&base, &url)
                })),
                _dir: None,
            });
        }
    }
    if let Some(url) = sessionkit_testkit::redis_url() {
        let redis = json!({"default": {
            "LOCATION": url,
            "KEY_PREFIX": sessionkit_testkit::unique_prefix(),
        }});
        let mut settings = base_settings();
        settings.caches = redis.clone();
        targets.push(Target {
            label: "cache (Redis)",
            engine: "cache",
            settings,
            cleanup: None,
            _dir: None,
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = base_settings();
        settings.caches = redis;
        sqlite(&mut settings, dir.path());
        targets.push(Target {
            label: "cached_db (Redis + SQLite)",
            engine: "cached_db",
            settings,
            cleanup: None,
            _dir: Some(dir),
        });
    }
    targets
}

fn engine(target: &Target) -> Engine {
    let library = sessionkit_testkit::engine_library(target.engine);
    Engine::load(&library.to_string_lossy(), &target.settings)
        .unwrap_or_else(|e| panic!("{}: the engine loads: {e}", target.label))
}

/// The application: `/seed` starts a session; `/add/{n}` and `/increment` load it, wait for
/// every other request to have loaded too, then change it.
fn app(engine: Engine, barrier: Arc<Barrier>) -> Router {
    let add_barrier = barrier.clone();
    Router::new()
        .route(
            "/seed",
            post(|session: SessionHandle| async move {
                session.insert("seed", true).await.expect("seed");
            }),
        )
        .route(
            "/add/{n}",
            post(move |Path(n): Path<usize>, session: SessionHandle| {
                let barrier = add_barrier.clone();
                async move {
                    session.get_value("seed").await.expect("load");
                    barrier.wait().await;
                    session
                        .insert(&format!("comment-{n}"), n)
                        .await
                        .expect("insert");
                }
            }),
        )
        .route(
            "/increment",
            post(move |session: SessionHandle| {
                let barrier = barrier.clone();
                async move {
                    session.get_value("seed").await.expect("load");
                    barrier.wait().await;
                    session
                        .atomic_update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
                        .await
                        .expect("atomic update");
                }
            }),
        )
        .layer(SessionLayer::new(engine).expect("layer"))
}

async fn post_to(app: &Router, uri: &str, cookie: Option<&str>) -> (StatusCode, Option<String>) {
    let mut request = Request::post(uri);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let set_cookie = response
        .headers()
        .get(SET_COOKIE)
        .map(|value| value.to_str().expect("ascii").to_owned());
    (response.status(), set_cookie)
}

/// Runs `REQUESTS` concurrent posts to `uri_of(n)` with the session cookie; all must succeed.
async fn race(app: &Router, cookie: &str, uri_of: impl Fn(usize) -> String) {
    let requests: Vec<_> = (0..REQUESTS)
        .map(|n| {
            let (app, cookie, uri) = (app.clone(), cookie.to_owned(), uri_of(n));
            tokio::spawn(async move { post_to(&app, &uri, Some(&cookie)).await.0 })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.expect("the request task"), StatusCode::OK);
    }
}

#[test]
fn concurrent_requests_of_one_visitor_keep_every_write_on_every_server_side_engine() {
    // The targets are set up (databases created with a blocking client) outside the runtime.
    let targets = targets();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut lost = Vec::new();
    for target in targets {
        let engine = engine(&target);
        let (kept, counter) = runtime.block_on(run(engine.clone(), target.label));
        println!(
            "{}: {kept} of {REQUESTS} concurrent writes kept",
            target.label
        );
        println!(
            "{}: {REQUESTS} concurrent increments → {counter:?}",
            target.label
        );
        if kept != REQUESTS || counter != Some(REQUESTS as u64) {
            lost.push(format!(
                "{}: kept {kept} of {REQUESTS} writes, counter {counter:?}",
                target.label
            ));
        }
        drop(engine);
        if let Some(cleanup) = target.cleanup {
            cleanup();
        }
    }
    assert!(lost.is_empty(), "writes were lost:\n{}", lost.join("\n"));
}

/// One run against `engine`: how many of the concurrent writes were kept, and the counter after
/// the concurrent increments.
async fn run(engine: Engine, label: &str) -> (usize, Option<u64>) {
    let app = app(engine.clone(), Arc::new(Barrier::new(REQUESTS)));
    let (_, set_cookie) = post_to(&app, "/seed", None).await;
    let set_cookie =
        set_cookie.unwrap_or_else(|| panic!("{label}: the seed request sets the cookie"));
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    let key = cookie.split_once('=').expect("name=value").1.to_owned();

    race(&app, &cookie, |n| format!("/add/{n}")).await;
    let mut session = engine.session(Some(&key));
    let kept = (0..REQUESTS)
        .filter(|n| {
            session
                .get::<usize>(&format!("comment-{n}"))
                .expect("read")
                .is_some()
        })
        .count();

    race(&app, &cookie, |_| "/increment".to_owned()).await;
    let mut session = engine.session(Some(&key));
    let counter = session.get::<u64>("counter").expect("read");
    (kept, counter)
}
