//! Shared by the integration tests: an in-process engine (the `cache` plugin), a scenario
//! language that both our middleware and real Django run, and header normalisation.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, TimeDelta, Utc};
use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{HeaderValue, Request, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sessionkit::{Engine, Expiry, ManualClock, Settings};
use sessionkit_http::{SessionHandle, SessionLayer};
use tower::ServiceExt;

/// A well-formed key that no store holds.
pub(crate) const UNKNOWN_KEY: &str = "unknownunknownunknownunknown1234";

/// The secret both worlds use (only the cache engine is involved; nothing is compared encoded).
pub(crate) const SECRET: &str = "sessionkit-http-parity-secret";

/// One step of a view, in the JSON form `django_middleware.py` reads.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// `session.get(k)`; the value is reported in `reads`.
    Get(&'static str),
    /// `session[k] = v`.
    Set(&'static str, Value),
    /// `session.flush()`.
    Flush,
    /// `session.cycle_key()`.
    CycleKey,
    /// `session.clear()`.
    Clear,
    /// `session.set_expiry(seconds)`.
    SetExpiry(i64),
    /// `session.set_expiry(now + seconds)` (a datetime: stored as ISO text).
    SetExpiryAt(i64),
    /// Deletes the stored record behind the session's back (a concurrent logout).
    DeleteRecord,
    /// `session.modified = True` without touching the data.
    MarkModified,
}

impl Action {
    fn to_json(&self) -> Value {
        match self {
            Self::Get(k) => json!(["get", k]),
            Self::Set(k, v) => json!(["set", k, v]),
            Self::Flush => json!(["flush"]),
            Self::CycleKey => json!(["cycle_key"]),
            Self::Clear => json!(["clear"]),
            Self::SetExpiry(s) => json!(["set_expiry", s]),
            Self::SetExpiryAt(s) => json!(["set_expiry_at", s]),
            Self::DeleteRecord => json!(["delete_record"]),
            Self::MarkModified => json!(["mark_modified"]),
        }
    }
}

/// A request through the middleware: settings, the `Cookie` header (with `{existing}`,
/// `{existing2}` and `{unknown}` placeholders), what the view does, and its response.
#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    /// Unique name, also the test's subject.
    pub name: &'static str,
    /// Django setting name → JSON value.
    pub settings: Vec<(&'static str, Value)>,
    /// The raw `Cookie` header, if any.
    pub cookie: Option<&'static str>,
    /// The view's steps.
    pub actions: Vec<Action>,
    /// The view's status.
    pub status: u16,
    /// A `Vary` header the view sets.
    pub vary: Option<&'static str>,
}

impl Scenario {
    /// A 200 view that does nothing, with default settings and no cookie.
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            settings: Vec::new(),
            cookie: None,
            actions: Vec::new(),
            status: 200,
            vary: None,
        }
    }

    /// With a setting.
    pub(crate) fn setting(mut self, name: &'static str, value: Value) -> Self {
        self.settings.push((name, value));
        self
    }

    /// With a `Cookie` header.
    pub(crate) fn cookie(mut self, cookie: &'static str) -> Self {
        self.cookie = Some(cookie);
        self
    }

    /// With a view step.
    pub(crate) fn action(mut self, action: Action) -> Self {
        self.actions.push(action);
        self
    }

    /// With a response status.
    pub(crate) fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// With a `Vary` header from the view.
    pub(crate) fn vary(mut self, vary: &'static str) -> Self {
        self.vary = Some(vary);
        self
    }

    fn to_json(&self) -> Value {
        let settings: serde_json::Map<String, Value> = self
            .settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        json!({
            "name": self.name,
            "settings": settings,
            "cookie": self.cookie,
            "actions": self.actions.iter().map(Action::to_json).collect::<Vec<_>>(),
            "status": self.status,
            "vary": self.vary,
        })
    }
}

/// What a response looked like, with session keys replaced by placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Outcome {
    /// The scenario's name.
    pub name: String,
    /// The response status; `None` when Django's middleware raised.
    pub status: Option<u16>,
    /// The exception class Django's middleware raised, if any.
    pub exception: Option<String>,
    /// Every `Set-Cookie` value, keys normalised.
    pub set_cookie: Vec<String>,
    /// The `Vary` header.
    pub vary: Option<String>,
    /// What the view's `Get` steps read.
    pub reads: Vec<Value>,
    /// `Cache-Control` (ours only; Django never sets it here).
    #[serde(default)]
    pub cache_control: Option<String>,
}

/// The frozen "now" of every scenario: the current second, so the stores (which judge expiry
/// by the real clock) see live records.
pub(crate) fn frozen_now() -> DateTime<Utc> {
    static NOW: OnceLock<DateTime<Utc>> = OnceLock::new();
    *NOW.get_or_init(|| {
        let now = Utc::now().timestamp();
        DateTime::from_timestamp(now, 0).expect("now is a valid timestamp")
    })
}

/// Real Django's outcome of every scenario, run once per test binary (one Python process).
pub(crate) fn django_outcomes(scenarios: &[Scenario]) -> &'static HashMap<String, Outcome> {
    static OUTCOMES: OnceLock<HashMap<String, Outcome>> = OnceLock::new();
    OUTCOMES.get_or_init(|| {
        let input = json!({
            "now": frozen_now().timestamp(),
            "scenarios": scenarios.iter().map(Scenario::to_json).collect::<Vec<_>>(),
        });
        let caches =
            json!({"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}});
        let stdout = sessionkit_testkit::run_django_with_input(
            include_str!("django_middleware.py"),
            &[
                ("SECRET_KEY", SECRET),
                ("SESSION_ENGINE", "django.contrib.sessions.backends.cache"),
                ("CACHES", &caches.to_string()),
            ],
            &input.to_string(),
        );
        let line = stdout
            .lines()
            .last()
            .expect("the Django script printed its outcomes");
        let outcomes: Vec<Outcome> =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad Django output {line}: {e}"));
        outcomes.into_iter().map(|o| (o.name.clone(), o)).collect()
    })
}

/// Host settings for a scenario.
pub(crate) fn settings_for(scenario_settings: &[(&'static str, Value)]) -> Settings {
    let mut settings = Settings::new(SECRET);
    settings.session_engine = "cache".to_owned();
    for (name, value) in scenario_settings {
        settings
            .set(name, value.clone())
            .unwrap_or_else(|e| panic!("setting {name} = {value}: {e}"));
    }
    settings
}

/// The `cache` engine plugin (in-process locmem) over `settings`, with time frozen.
pub(crate) fn cache_engine(settings: &Settings) -> Engine {
    engine_named("cache", settings)
}

/// Engine `name`'s plugin from the test's plugin directory, with time frozen at
/// [`frozen_now`].
pub(crate) fn engine_named(name: &str, settings: &Settings) -> Engine {
    let library = sessionkit_testkit::engine_library(name);
    let engine = Engine::load(&library.to_string_lossy(), settings)
        .unwrap_or_else(|e| panic!("engine {name} loads from {}: {e}", library.display()));
    engine.with_clock(Arc::new(ManualClock::new(frozen_now())))
}

/// A stored session holding `{"seed": seed}`; returns its key.
pub(crate) fn stored_session(engine: &Engine, seed: &str) -> String {
    let mut session = engine.session(None);
    session.insert("seed", seed).expect("insert");
    session.save().expect("save");
    session
        .session_key()
        .expect("a saved session has a key")
        .to_owned()
}

/// What the test view needs.
#[derive(Clone)]
struct ViewState {
    engine: Engine,
    scenario: Arc<Scenario>,
    reads: Arc<std::sync::Mutex<Vec<Value>>>,
}

/// The scenario's view as an axum handler: runs the steps on the extracted session.
async fn view(State(state): State<ViewState>, session: SessionHandle) -> impl IntoResponse {
    for action in &state.scenario.actions {
        match action {
            Action::Get(k) => {
                let value = session
                    .get_value(k)
                    .await
                    .expect("get")
                    .unwrap_or(Value::Null);
                state.reads.lock().expect("reads lock").push(value);
            }
            Action::Set(k, v) => session.insert(k, v.clone()).await.expect("set"),
            Action::Flush => session.flush().await.expect("flush"),
            Action::CycleKey => session.cycle_key().await.expect("cycle_key"),
            Action::Clear => session.clear().await,
            Action::SetExpiry(s) => session
                .set_expiry(Expiry::Seconds(*s))
                .await
                .expect("expiry"),
            Action::SetExpiryAt(s) => {
                let at = frozen_now() + TimeDelta::seconds(*s);
                session.set_expiry(Expiry::At(at)).await.expect("expiry at");
            }
            Action::DeleteRecord => {
                let key = session.session_key().await.expect("a key to delete");
                let mut other = state.engine.session(Some(&key));
                other.delete_async().await.expect("delete behind the back");
            }
            Action::MarkModified => session.lock().await.set_modified(true),
        }
    }
    let mut response = (
        StatusCode::from_u16(state.scenario.status).expect("status"),
        "ok",
    )
        .into_response();
    if let Some(vary) = state.scenario.vary {
        response
            .headers_mut()
            .insert(VARY, HeaderValue::from_static(vary));
    }
    response
}

/// Runs a scenario through our middleware on the `cache` engine.
pub(crate) async fn run_ours(scenario: &Scenario) -> Outcome {
    let settings = settings_for(&scenario.settings);
    let engine = cache_engine(&settings);
    run_ours_on(scenario, engine).await
}

/// Runs a scenario through our middleware on `engine`.
pub(crate) async fn run_ours_on(scenario: &Scenario, engine: Engine) -> Outcome {
    let keys = [
        ("existing", stored_session(&engine, "one")),
        ("existing2", stored_session(&engine, "two")),
        ("unknown", UNKNOWN_KEY.to_owned()),
    ];
    let reads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let state = ViewState {
        engine: engine.clone(),
        scenario: Arc::new(scenario.clone()),
        reads: reads.clone(),
    };
    let app = Router::new()
        .route("/", get(view))
        .with_state(state)
        .layer(SessionLayer::new(engine).expect("valid cookie settings"));
    let mut request = Request::get("/");
    if let Some(cookie) = scenario.cookie {
        let mut cookie = cookie.to_owned();
        for (name, key) in &keys {
            cookie = cookie.replace(&format!("{{{name}}}"), key);
        }
        request = request.header(COOKIE, cookie);
    }
    let response = app
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let headers = response.headers();
    let set_cookie = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| normalise(v.to_str().expect("ascii Set-Cookie"), &keys))
        .collect();
    let header = |name| {
        headers
            .get(name)
            .map(|v: &HeaderValue| v.to_str().expect("ascii").to_owned())
    };
    let reads = reads.lock().expect("reads lock").clone();
    Outcome {
        name: scenario.name.to_owned(),
        status: Some(response.status().as_u16()),
        exception: None,
        set_cookie,
        vary: header(VARY),
        reads,
        cache_control: header(CACHE_CONTROL),
    }
}

/// Replaces the cookie value by its placeholder, like `normalise` in the Python script.
pub(crate) fn normalise(header: &str, keys: &[(&str, String)]) -> String {
    let (name, rest) = header.split_once('=').expect("name=value");
    let (value, attributes) = match rest.find(';') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let value = keys
        .iter()
        .find(|(_, key)| key == value)
        .map(|(placeholder, _)| format!("{{{placeholder}}}"))
        .unwrap_or_else(|| {
            if value == "\"\"" {
                value.to_owned()
            } else {
                "{new}".to_owned()
            }
        });
    format!("{name}={value}{attributes}")
}

/// The attributes of a `Set-Cookie` value as (lower-case name → value), for order-free
/// comparison; the first entry is the cookie's own name=value.
pub(crate) fn attributes(set_cookie: &str) -> Vec<(String, String)> {
    let mut parts: Vec<(String, String)> = set_cookie
        .split(';')
        .map(str::trim)
        .map(|part| match part.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
            None => (part.to_ascii_lowercase(), String::new()),
        })
        .collect();
    if parts.len() > 1 {
        parts[1..].sort();
    }
    parts
}
