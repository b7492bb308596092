//! The middleware rules that have no Django counterpart to compare with, or that need more
//! than headers to check: records written (or not), failed saves, login and logout, the tower
//! path without axum, and the extractor.

mod support;

use std::convert::Infallible;
use std::path::Path;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{HeaderValue, Request, Response, StatusCode};
use serde_json::{Value, json};
use sessionkit::{Engine, Settings};
use sessionkit_http::{SessionError, SessionHandle, SessionLayer, auth};
use support::{UNKNOWN_KEY, cache_engine, engine_named, settings_for, stored_session};
use tower::{ServiceBuilder, ServiceExt};

/// Sends one GET (or POST) with an optional `Cookie` header through `app`.
async fn send(app: &Router, method: &str, path: &str, cookie: Option<&str>) -> Response<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible")
}

/// Every `Set-Cookie` value of a response.
fn set_cookies<B>(response: &Response<B>) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

/// The session key a `Set-Cookie` for `sessionid` sets (`None` for a deletion).
fn cookie_key(set_cookie: &str) -> Option<String> {
    let value = set_cookie.strip_prefix("sessionid=")?.split(';').next()?;
    (value != "\"\"").then(|| value.to_owned())
}

/// A file-engine settings object over `dir`.
fn file_settings(dir: &Path) -> Settings {
    let mut settings = settings_for(&[]);
    settings.session_engine = "file".to_owned();
    settings.session_file_path = Some(dir.to_path_buf());
    settings
}

/// The number of entries in a directory.
fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).expect("readable directory").count()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt")
}

/// Our fix of a `SessionMiddleware.process_response` quirk, checked on the store itself: with
/// `SESSION_SAVE_EVERY_REQUEST`, a flood of requests carrying unknown keys writes no record (Django
/// writes one per request).
#[test]
fn save_every_request_with_unknown_key_writes_no_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = file_settings(dir.path());
    settings.session_save_every_request = true;
    let engine = engine_named("file", &settings);
    let app = Router::new()
        .route("/", get(|| async { "untouched" }))
        .layer(SessionLayer::new(engine).expect("layer"));
    runtime().block_on(async {
        for _ in 0..5 {
            let response = send(&app, "GET", "/", Some(&format!("sessionid={UNKNOWN_KEY}"))).await;
            assert_eq!(response.status(), StatusCode::OK);
            let cookies = set_cookies(&response);
            assert_eq!(cookies.len(), 1);
            assert_eq!(
                cookie_key(&cookies[0]),
                None,
                "the stale cookie is deleted: {cookies:?}"
            );
        }
    });
    assert_eq!(entries(dir.path()), 0, "no session file was created");
}

/// A save that fails (here: the session directory was replaced by a file) answers 500, sends
/// no `Set-Cookie` pointing at data that was never stored, and puts the error in the
/// response's extensions.
#[test]
fn failed_save_is_a_500_without_set_cookie() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().join("sessions");
    std::fs::create_dir(&dir).expect("session dir");
    let engine = engine_named("file", &file_settings(&dir));
    let broken = dir.clone();
    let app = Router::new()
        .route(
            "/",
            get(move |session: SessionHandle| {
                let broken = broken.clone();
                async move {
                    session.insert("a", 1).await.expect("insert");
                    std::fs::remove_dir_all(&broken).expect("remove dir");
                    std::fs::write(&broken, b"not a directory").expect("file in its place");
                    "handler done"
                }
            }),
        )
        .layer(SessionLayer::new(engine).expect("layer"));
    let response = runtime().block_on(send(&app, "GET", "/", None));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        set_cookies(&response).is_empty(),
        "{:?}",
        set_cookies(&response)
    );
    let error = response
        .extensions()
        .get::<std::sync::Arc<SessionError>>()
        .expect("the error is in the extensions");
    assert!(matches!(**error, SessionError::Save(_)), "{error:?}");
}

/// A concurrent logout (the record deleted while the request runs) turns the save into
/// Django's `SessionInterrupted`: a 400, no cookie, the error in the extensions.
#[test]
fn session_deleted_during_the_request_is_a_400_with_the_error_attached() {
    let settings = settings_for(&[]);
    let engine = cache_engine(&settings);
    let key = stored_session(&engine, "one");
    let other = engine.clone();
    let app = Router::new()
        .route(
            "/",
            get(move |session: SessionHandle| {
                let other = other.clone();
                async move {
                    let key = session.session_key().await.expect("key");
                    let _: Option<String> = session.get("seed").await.expect("load");
                    other
                        .session(Some(&key))
                        .delete_async()
                        .await
                        .expect("delete");
                    session.insert("a", 1).await.expect("insert");
                    "done"
                }
            }),
        )
        .layer(SessionLayer::new(engine).expect("layer"));
    let response = runtime().block_on(send(&app, "GET", "/", Some(&format!("sessionid={key}"))));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookies(&response).is_empty());
    let error = response
        .extensions()
        .get::<std::sync::Arc<SessionError>>()
        .expect("error");
    assert!(matches!(**error, SessionError::Interrupted));
}

/// `Cache-Control: private` joins any directives the handler set, replacing `public`.
#[test]
fn responses_setting_the_cookie_are_made_private() {
    let engine = cache_engine(&settings_for(&[]));
    let app = Router::new()
        .route(
            "/",
            get(|session: SessionHandle| async move {
                session.insert("a", 1).await.expect("insert");
                ([(CACHE_CONTROL, "public, max-age=60")], "cached?")
            }),
        )
        .route(
            "/read",
            get(|session: SessionHandle| async move {
                let _: Option<i64> = session.get("a").await.expect("get");
                ([(CACHE_CONTROL, "public, max-age=60")], "read only")
            }),
        )
        .layer(SessionLayer::new(engine).expect("layer"));
    let rt = runtime();
    let response = rt.block_on(send(&app, "GET", "/", None));
    assert_eq!(set_cookies(&response).len(), 1);
    assert_eq!(response.headers()[CACHE_CONTROL], "max-age=60, private");
    assert_eq!(response.headers()[VARY], "Cookie");
    // Without a session cookie the handler's caching is left alone (Vary: Cookie suffices).
    let response = rt.block_on(send(&app, "GET", "/read", None));
    assert!(set_cookies(&response).is_empty());
    assert_eq!(response.headers()[CACHE_CONTROL], "public, max-age=60");
    assert_eq!(response.headers()[VARY], "Cookie");
}

/// The tower layer works on any `http` service, not only axum: a `service_fn` with a `String`
/// body finds the session with `SessionHandle::from_request`.
#[test]
fn tower_layer_works_without_axum() {
    let engine = cache_engine(&settings_for(&[]));
    let service = ServiceBuilder::new()
        .layer(SessionLayer::new(engine).expect("layer"))
        .service_fn(|request: Request<String>| async move {
            let session = SessionHandle::from_request(&request).expect("the layer put it there");
            session.insert("visited", true).await.expect("insert");
            Ok::<_, Infallible>(Response::new("hello".to_owned()))
        });
    let response = runtime()
        .block_on(service.oneshot(Request::new(String::new())))
        .expect("infallible");
    assert_eq!(response.body(), "hello");
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1);
    assert!(
        cookie_key(&cookies[0]).is_some_and(|k| k.len() == 32),
        "{cookies:?}"
    );
}

/// An error of the inner service passes through untouched; nothing is saved.
#[test]
fn inner_service_errors_pass_through() {
    let engine = cache_engine(&settings_for(&[]));
    let service = ServiceBuilder::new()
        .layer(SessionLayer::new(engine).expect("layer"))
        .service_fn(|request: Request<String>| async move {
            let session = SessionHandle::from_request(&request).expect("session");
            session.insert("a", 1).await.expect("insert");
            Err::<Response<String>, _>("inner failed")
        });
    let error = runtime()
        .block_on(service.oneshot(Request::new(String::new())))
        .expect_err("err");
    assert_eq!(error, "inner failed");
}

/// A handler that asks for the session without the layer gets a clear 500.
#[test]
fn extractor_without_the_layer_is_a_500_naming_the_layer() {
    let app = Router::new().route("/", get(|_session: SessionHandle| async { "unreachable" }));
    let rt = runtime();
    let response = rt.block_on(send(&app, "GET", "/", None));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = rt
        .block_on(axum::body::to_bytes(response.into_body(), 1024))
        .expect("body");
    assert!(String::from_utf8_lossy(&body).contains("SessionLayer"));
}

/// A `Cookie` header with bytes that are not UTF-8 (obs-text) still yields the session cookie
/// next to them, without a panic.
#[test]
fn non_utf8_cookie_header_still_finds_the_session() {
    let engine = cache_engine(&settings_for(&[]));
    let key = stored_session(&engine, "one");
    let app = Router::new()
        .route(
            "/",
            get(|session: SessionHandle| async move {
                session
                    .get::<String>("seed")
                    .await
                    .expect("get")
                    .unwrap_or_default()
            }),
        )
        .layer(SessionLayer::new(engine).expect("layer"));
    let mut header = b"tracker=\xff\xfe\x80; sessionid=".to_vec();
    header.extend_from_slice(key.as_bytes());
    let request = Request::get("/")
        .header(
            COOKIE,
            HeaderValue::from_bytes(&header).expect("obs-text is a valid header"),
        )
        .body(Body::empty())
        .expect("request");
    let rt = runtime();
    let response = rt.block_on(app.oneshot(request)).expect("infallible");
    let body = rt
        .block_on(axum::body::to_bytes(response.into_body(), 1024))
        .expect("body");
    assert_eq!(&body[..], b"one");
}

// ---- login and logout --------------------------------------------------------------------

/// An app with `/login/{id}`, `/logout`, `/set/{k}` and `/dump` over `engine`.
fn auth_app(engine: Engine) -> Router {
    Router::new()
        .route(
            "/login/{id}",
            post(|session: SessionHandle, axum::extract::Path(id): axum::extract::Path<i64>| async move {
                auth::login(&session, id).await.expect("login");
                "logged in"
            }),
        )
        .route(
            "/logout",
            post(|session: SessionHandle| async move {
                auth::logout(&session).await.expect("logout");
                "logged out"
            }),
        )
        .route(
            "/set/{k}",
            post(|session: SessionHandle, axum::extract::Path(k): axum::extract::Path<String>| async move {
                session.insert(&k, "v").await.expect("insert");
                "set"
            }),
        )
        .layer(SessionLayer::new(engine).expect("layer"))
}

/// The data stored under `key`, straight from the engine.
fn stored(engine: &Engine, key: &str) -> Option<serde_json::Map<String, Value>> {
    let mut session = engine.session(Some(key));
    let data = session.load().expect("load");
    session.session_key().map(|_| data)
}

/// Logging in moves the data to a new key and kills the old one (session fixation defence),
/// and stores the account id as a string, like Django.
#[test]
fn login_cycles_the_key_and_the_old_key_stops_working() {
    let engine = cache_engine(&settings_for(&[]));
    let app = auth_app(engine.clone());
    let rt = runtime();
    let response = rt.block_on(send(&app, "POST", "/set/cart", None));
    let before = cookie_key(&set_cookies(&response)[0]).expect("anonymous key");
    let response = rt.block_on(send(
        &app,
        "POST",
        "/login/42",
        Some(&format!("sessionid={before}")),
    ));
    let after = cookie_key(&set_cookies(&response)[0]).expect("new key");
    assert_ne!(before, after);
    assert_eq!(
        stored(&engine, &before),
        None,
        "the pre-login key no longer loads"
    );
    let data = stored(&engine, &after).expect("the new key loads");
    assert_eq!(
        data.get("cart"),
        Some(&json!("v")),
        "the anonymous data survives the login"
    );
    assert_eq!(data.get(auth::SESSION_KEY), Some(&json!("42")));
    assert_eq!(
        data.get(auth::BACKEND_SESSION_KEY),
        Some(&json!(auth::DEFAULT_BACKEND))
    );
    assert_eq!(data.get(auth::HASH_SESSION_KEY), Some(&json!("")));
}

/// Logging in as another account flushes the previous user's data (CVE-2014-0482).
#[test]
fn login_as_another_account_flushes_the_previous_session() {
    let engine = cache_engine(&settings_for(&[]));
    let app = auth_app(engine.clone());
    let rt = runtime();
    let response = rt.block_on(send(&app, "POST", "/login/7", None));
    let first = cookie_key(&set_cookies(&response)[0]).expect("key");
    let cookie = format!("sessionid={first}");
    let response = rt.block_on(send(&app, "POST", "/set/secret", Some(&cookie)));
    assert_eq!(
        cookie_key(&set_cookies(&response)[0]).as_deref(),
        Some(first.as_str())
    );
    let response = rt.block_on(send(&app, "POST", "/login/8", Some(&cookie)));
    let second = cookie_key(&set_cookies(&response)[0]).expect("key");
    assert_ne!(first, second);
    assert_eq!(stored(&engine, &first), None);
    let data = stored(&engine, &second).expect("loads");
    assert_eq!(data.get("secret"), None, "nothing of user 7 is left");
    assert_eq!(data.get(auth::SESSION_KEY), Some(&json!("8")));
}

/// Logging in again as the same account keeps the key, as Django does.
#[test]
fn login_as_the_same_account_keeps_the_key() {
    let engine = cache_engine(&settings_for(&[]));
    let app = auth_app(engine.clone());
    let rt = runtime();
    let response = rt.block_on(send(&app, "POST", "/login/7", None));
    let first = cookie_key(&set_cookies(&response)[0]).expect("key");
    let response = rt.block_on(send(
        &app,
        "POST",
        "/login/7",
        Some(&format!("sessionid={first}")),
    ));
    assert_eq!(cookie_key(&set_cookies(&response)[0]), Some(first.clone()));
    assert!(stored(&engine, &first).is_some());
}

/// Logging out deletes the stored session and the cookie.
#[test]
fn logout_deletes_the_record_and_the_cookie() {
    let engine = cache_engine(&settings_for(&[]));
    let app = auth_app(engine.clone());
    let rt = runtime();
    let response = rt.block_on(send(&app, "POST", "/login/7", None));
    let key = cookie_key(&set_cookies(&response)[0]).expect("key");
    let response = rt.block_on(send(
        &app,
        "POST",
        "/logout",
        Some(&format!("sessionid={key}")),
    ));
    assert_eq!(
        set_cookies(&response),
        ["sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax"]
    );
    assert_eq!(stored(&engine, &key), None);
}

/// The same session object is seen by every extractor of a request and by the middleware.
#[test]
fn handler_and_middleware_share_one_session() {
    let engine = cache_engine(&settings_for(&[]));
    let app = Router::new()
        .route(
            "/",
            get(|first: SessionHandle, second: SessionHandle| async move {
                first.insert("a", 1).await.expect("insert");
                second
                    .get::<i64>("a")
                    .await
                    .expect("get")
                    .unwrap_or(0)
                    .to_string()
            }),
        )
        .layer(SessionLayer::new(engine.clone()).expect("layer"));
    let rt = runtime();
    let response = rt.block_on(send(&app, "GET", "/", None));
    let key = cookie_key(&set_cookies(&response)[0]).expect("saved");
    let body = rt
        .block_on(axum::body::to_bytes(response.into_body(), 64))
        .expect("body");
    assert_eq!(&body[..], b"1");
    assert_eq!(
        stored(&engine, &key).and_then(|d| d.get("a").cloned()),
        Some(json!(1))
    );
}
