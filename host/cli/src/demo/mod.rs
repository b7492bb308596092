//! The demo site of `sessionkit demo`: Django's session examples (comment once, test cookie,
//! member login and logout) on axum with `sessionkit-http`, on whatever engine
//! `SESSION_ENGINE` names.

pub(crate) mod members;
pub(crate) mod metrics;
pub(crate) mod page;
pub(crate) mod serve;

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use http::StatusCode;
use serde::Deserialize;
use sessionkit::Engine;
use sessionkit_http::{SessionHandle, SessionLayer, auth};

use self::page::SessionView;

/// The longest comment accepted (comments are kept in the session, and a signed-cookie session
/// must fit in a 4 KiB cookie).
pub(crate) const MAX_COMMENT_CHARS: usize = 500;

/// What the handlers share.
#[derive(Debug, Clone)]
struct AppState {
    engine_name: String,
}

/// The demo's routes, wrapped in the session middleware over `engine`.
///
/// # Errors
///
/// The engine's cookie settings cannot make a valid `Set-Cookie` header.
pub(crate) fn router(
    engine: Engine,
    metrics: metrics::Metrics,
) -> Result<Router, sessionkit_http::ConfigError> {
    let state = AppState {
        engine_name: engine.description().name.clone(),
    };
    let layer = SessionLayer::new(engine)?;
    Ok(Router::new()
        .route("/", get(index))
        .route("/comment", post(comment))
        .route("/notes", post(note))
        .route("/visits", post(visit))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .with_state(state)
        .layer(layer)
        // Outside the session layer: a scrape never touches a session.
        .merge(metrics::router(metrics)))
}

/// A session failure inside a handler: a 500 page that names the error (escaped).
struct DemoError(sessionkit::Error);

impl From<sessionkit::Error> for DemoError {
    fn from(error: sessionkit::Error) -> Self {
        Self(error)
    }
}

impl IntoResponse for DemoError {
    fn into_response(self) -> Response {
        tracing::error!(target: "sessionkit::demo", error = %self.0, "session error");
        let body = page::message("Session error", &format!("The session failed: {}", self.0));
        (StatusCode::INTERNAL_SERVER_ERROR, Html(body)).into_response()
    }
}

/// `GET /`: the session key (or none), the engine, the expiry and the decoded contents.
async fn index(
    State(state): State<AppState>,
    session: SessionHandle,
) -> Result<Html<String>, DemoError> {
    let mut guard = session.lock().await;
    // Loading first: an unknown or expired key is dropped by the load, so the key shown is
    // the one the session really has.
    guard.ensure_loaded_async().await?;
    let items = guard.items()?;
    let member = current_member(&mut guard, &items).await?;
    // Again: a voided login flushed the session, a fallback-key login cycled it.
    guard.ensure_loaded_async().await?;
    let items = guard.items()?;
    let key = guard.session_key().map(str::to_owned);
    let expiry = if guard.get_expire_at_browser_close()? {
        "when the browser closes".to_owned()
    } else {
        let date = guard.get_expiry_date()?;
        let age = guard.get_expiry_age()?;
        format!(
            "{} (in {age} seconds)",
            date.format("%Y-%m-%d %H:%M:%S UTC")
        )
    };
    drop(guard);
    let map: serde_json::Map<String, serde_json::Value> = items.into_iter().collect();
    let contents = serde_json::to_string_pretty(&map).unwrap_or_else(|error| error.to_string());
    Ok(Html(page::index(&SessionView {
        engine: state.engine_name,
        key,
        expiry,
        contents,
        member,
    })))
}

/// Who is logged in, as Django's `auth.get_user` decides: `_auth_user_id` must name a member
/// and `_auth_user_hash` must equal that member's current session auth hash (constant-time).
/// A member's session with a missing or wrong hash is flushed (logged out), as Django does; a
/// hash made under a fallback secret is renewed with a new key. An unknown account id is
/// anonymous, and its session is left alone (Django's `get_user` returns `AnonymousUser`).
async fn current_member(
    session: &mut sessionkit::Session,
    items: &[(String, serde_json::Value)],
) -> Result<Option<String>, DemoError> {
    let value = |name: &str| items.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let is_alice = match value(auth::SESSION_KEY) {
        Some(serde_json::Value::String(id)) => *id == members::ALICE_ID.to_string(),
        _ => false,
    };
    if !is_alice {
        return Ok(None);
    }
    let stored = value(auth::HASH_SESSION_KEY).and_then(serde_json::Value::as_str);
    let settings = session.engine().settings();
    let (secret, fallbacks) = (
        settings.secret_key.clone(),
        settings.secret_key_fallbacks.clone(),
    );
    match members::check_session_auth_hash(stored, &secret, &fallbacks) {
        members::HashCheck::Current => Ok(Some(members::ALICE.to_owned())),
        members::HashCheck::Fallback => {
            session.cycle_key_async().await?;
            session.insert(auth::HASH_SESSION_KEY, members::session_auth_hash(&secret))?;
            Ok(Some(members::ALICE.to_owned()))
        }
        members::HashCheck::Mismatch => {
            session.flush_async().await?;
            Ok(None)
        }
    }
}

/// The comment form's field.
#[derive(Debug, Deserialize)]
struct CommentForm {
    #[serde(default)]
    comment: String,
}

/// `POST /comment`: one comment per session (Django's `has_commented` example).
async fn comment(
    session: SessionHandle,
    Form(form): Form<CommentForm>,
) -> Result<Response, DemoError> {
    if session.get::<bool>("has_commented").await?.unwrap_or(false) {
        return Ok(Html(page::message("Comment", "You've already commented.")).into_response());
    }
    if form.comment.chars().count() > MAX_COMMENT_CHARS {
        let text = format!("Comments are limited to {MAX_COMMENT_CHARS} characters.");
        return Ok((
            StatusCode::BAD_REQUEST,
            Html(page::message("Comment", &text)),
        )
            .into_response());
    }
    session.insert("has_commented", true).await?;
    session.insert("comment", form.comment).await?;
    Ok(Html(page::message("Comment", "Thanks for your comment!")).into_response())
}

/// The note form's fields: a name the client picks and the text.
#[derive(Debug, Deserialize)]
struct NoteForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    note: String,
}

/// `POST /notes`: keeps a note under `note_<name>`. Concurrent requests of one visitor each
/// adding a note keep all of them: the middleware's save merges them (see the README,
/// "Concurrent requests to one session").
async fn note(session: SessionHandle, Form(form): Form<NoteForm>) -> Result<Response, DemoError> {
    let valid_name = !form.name.is_empty()
        && form.name.len() <= 32
        && form.name.bytes().all(|b| b.is_ascii_alphanumeric());
    if !valid_name || form.note.chars().count() > MAX_COMMENT_CHARS {
        let text = format!(
            "A note needs a name of 1 to 32 letters or digits and at most {MAX_COMMENT_CHARS} \
             characters of text."
        );
        return Ok((StatusCode::BAD_REQUEST, Html(page::message("Note", &text))).into_response());
    }
    session
        .insert(&format!("note_{}", form.name), form.note)
        .await?;
    Ok(Html(page::message("Note", "Noted.")).into_response())
}

/// `POST /visits`: counts the visitor's visits with an atomic update, so concurrent requests
/// never lose an increment; answers the new count.
async fn visit(session: SessionHandle) -> Result<String, DemoError> {
    let visits = session
        .atomic_update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(visits.to_string())
}

/// `GET /login`: the form, and the test cookie to see on the POST whether cookies work.
async fn login_form(session: SessionHandle) -> Result<Html<String>, DemoError> {
    session.set_test_cookie().await?;
    Ok(Html(page::login_form()))
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: the test cookie must have come back, then the password must match.
async fn login(
    session: SessionHandle,
    Form(form): Form<LoginForm>,
) -> Result<Html<String>, DemoError> {
    if !session.test_cookie_worked().await? {
        return Ok(Html(page::message(
            "Log in",
            "Please enable cookies and try again.",
        )));
    }
    // PBKDF2 takes a while: off the executor.
    let member =
        tokio::task::spawn_blocking(move || members::authenticate(&form.username, &form.password))
            .await
            .map_err(|error| sessionkit::Error::Join(error.to_string()))?;
    let Some(member) = member else {
        // The test cookie stays, so the member can simply try again.
        return Ok(Html(page::message(
            "Log in",
            "Your username and password didn't match.",
        )));
    };
    session.delete_test_cookie().await?;
    let secret = session.lock().await.engine().settings().secret_key.clone();
    let login = auth::Login::new(member.id).session_auth_hash(members::session_auth_hash(&secret));
    auth::login_with(&session, login).await?;
    Ok(Html(page::message("Log in", "You're logged in.")))
}

/// `POST /logout`: Django's `logout()` flushes the session (the cookie is deleted).
async fn logout(session: SessionHandle) -> Result<Html<String>, DemoError> {
    auth::logout(&session).await?;
    Ok(Html(page::message("Log out", "You're logged out.")))
}
