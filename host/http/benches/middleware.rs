//! Requests per second of an axum handler that reads and writes the session, per engine, next
//! to the same handler without sessions, in one run:
//!
//! - `in_process/*`: through the tower service (`Router::oneshot`), no I/O at all — the
//!   middleware's and the engine's whole cost against a handler that costs ~nothing;
//! - `loopback_http/*`: the same routers served by `axum::serve` on 127.0.0.1 and driven by a
//!   keep-alive HTTP/1.1 client, so each request also pays what a real one pays for HTTP;
//! - `breakdown/*`: one hop to tokio's blocking pool and back (the host runs every engine call
//!   there; a request with a session makes two: load and save), and the cache engine's own
//!   load + insert + save done synchronously — to read the figures above.
//!
//! Each request carries the cookie the previous response set (a returning visitor), so every
//! request loads, changes and saves one session. Engines whose plugin library is missing are
//! skipped with a printed reason. Run: `cargo bench -p sessionkit-http --bench middleware`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use http::Request;
use http::header::{COOKIE, SET_COOKIE};
use sessionkit::{Engine, Settings};
use sessionkit_http::{SessionHandle, SessionLayer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tower::ServiceExt;

/// The handler with a session: read a counter, write it back plus one.
async fn counter(session: SessionHandle) -> String {
    let mut guard = session.lock().await;
    // A failed load or insert shows up as a missing Set-Cookie, which the loops assert on.
    let _ = guard.ensure_loaded_async().await;
    let count: i64 = guard.get("count").ok().flatten().unwrap_or(0);
    let _ = guard.insert("count", count + 1);
    count.to_string()
}

/// The same handler without a session: an in-memory counter.
async fn counter_without_session() -> String {
    static COUNT: AtomicI64 = AtomicI64::new(0);
    COUNT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// The routers to measure: no session first, then one per engine whose library is built.
fn routers(dir: &std::path::Path) -> Vec<(&'static str, Router, bool)> {
    let base = || {
        let mut settings = Settings::new("bench-secret-key");
        settings.session_cookie_age = 3600;
        settings
    };
    let mut db = base();
    db.session_db_url = Some(format!("sqlite://{}", dir.join("bench.sqlite3").display()));
    let mut file = base();
    let file_dir = dir.join("files");
    std::fs::create_dir_all(&file_dir).expect("file engine directory");
    file.session_file_path = Some(file_dir);
    let mut cached_db = base();
    cached_db.session_db_url = Some(format!("sqlite://{}", dir.join("cached.sqlite3").display()));
    let engines = [
        ("cache", base()),
        ("db", db),
        ("file", file),
        ("cached_db", cached_db),
        ("signed_cookies", base()),
    ];
    let mut routers = vec![(
        "no_session",
        Router::new().route("/", get(counter_without_session)),
        false,
    )];
    for (name, settings) in engines {
        let library = sessionkit_testkit::engine_library(name);
        if !library.exists() {
            println!("skipped engine {name}: {} is not built", library.display());
            continue;
        }
        match Engine::load(&library.to_string_lossy(), &settings) {
            Ok(engine) => routers.push((
                name,
                Router::new()
                    .route("/", get(counter))
                    .layer(SessionLayer::new(engine).expect("valid cookie settings")),
                true,
            )),
            Err(error) => println!("skipped engine {name}: {error}"),
        }
    }
    routers
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
}

/// The `name=value` of a `Set-Cookie` header value.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_owned()
}

/// One request through the tower service; returns the cookie to send next time.
async fn send_in_process(app: &Router, cookie: Option<&str>) -> Option<String> {
    let mut request = Request::get("/");
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert!(
        response.status().is_success(),
        "status {}",
        response.status()
    );
    response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(cookie_pair)
}

fn in_process(c: &mut Criterion) {
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("in_process");
    configure(&mut group);
    for (name, app, with_session) in routers(dir.path()) {
        let cookie = Arc::new(std::sync::Mutex::new(None::<String>));
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut current = cookie.lock().expect("cookie").clone();
                    let start = Instant::now();
                    for _ in 0..iters {
                        let next = send_in_process(&app, current.as_deref()).await;
                        if with_session {
                            current = Some(next.expect("the session is saved on every request"));
                        }
                    }
                    let elapsed = start.elapsed();
                    *cookie.lock().expect("cookie") = current;
                    elapsed
                })
            });
        });
    }
    group.finish();
}

/// A keep-alive HTTP/1.1 connection to a served router.
struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// One GET; returns the session cookie the response set, if any.
    async fn get(&mut self, cookie: Option<&str>) -> Option<String> {
        let mut request = String::from("GET / HTTP/1.1\r\nHost: bench\r\n");
        if let Some(cookie) = cookie {
            request.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        request.push_str("\r\n");
        self.reader
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .expect("write");
        let mut line = String::new();
        self.reader.read_line(&mut line).await.expect("status line");
        assert!(line.starts_with("HTTP/1.1 200"), "status line {line:?}");
        let (mut length, mut set_cookie) = (0usize, None);
        loop {
            line.clear();
            self.reader.read_line(&mut line).await.expect("header");
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').expect("header line");
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("length");
            } else if name.eq_ignore_ascii_case("set-cookie") {
                set_cookie = Some(cookie_pair(value.trim()));
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).await.expect("body");
        set_cookie
    }
}

fn loopback_http(c: &mut Criterion) {
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("loopback_http");
    configure(&mut group);
    for (name, app, with_session) in routers(dir.path()) {
        let addr = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(async move { axum::serve(listener, app).await });
            addr
        });
        let connection = runtime.block_on(async {
            let stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            Arc::new(tokio::sync::Mutex::new((
                Connection {
                    reader: BufReader::new(stream),
                },
                None,
            )))
        });
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut guard = connection.lock().await;
                    let (connection, cookie) = &mut *guard;
                    let start = Instant::now();
                    for _ in 0..iters {
                        let next = connection.get(cookie.as_deref()).await;
                        if with_session {
                            *cookie = Some(next.expect("the session is saved on every request"));
                        }
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
}

fn breakdown(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("breakdown");
    configure(&mut group);
    group.bench_function("spawn_blocking_round_trip", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::task::spawn_blocking(|| ()).await.expect("join");
                }
                start.elapsed()
            })
        });
    });
    let library = sessionkit_testkit::engine_library("cache");
    match Engine::load(
        &library.to_string_lossy(),
        &Settings::new("bench-secret-key"),
    ) {
        Ok(engine) => {
            let mut session = engine.session(None);
            session.insert("count", 0).expect("insert");
            session.save().expect("save");
            let key = session.session_key().expect("key").to_owned();
            group.bench_function("cache_load_insert_save_sync", |b| {
                b.iter(|| {
                    let mut session = engine.session(Some(&key));
                    let count: i64 = session.get("count").expect("get").unwrap_or(0);
                    session.insert("count", count + 1).expect("insert");
                    session.save().expect("save");
                });
            });
        }
        Err(error) => println!("skipped cache breakdown: {error}"),
    }
    group.finish();
}

criterion_group!(benches, in_process, loopback_http, breakdown);
criterion_main!(benches);
