//! [`SessionMiddleware`]: Django's `SessionMiddleware` over the `http` crate's types, for any
//! framework. The tower layer and the axum extractor are thin wrappers around it.

use std::sync::Arc;

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use sessionkit::{Engine, Error};

use crate::config::{ConfigError, CookieSettings};
use crate::cookies::{self, CookieLifetime, RequestCookie, SetCookie};
use crate::handle::SessionHandle;
use crate::layer::SessionError;
use crate::vary::{patch_cache_control_private, patch_vary_cookie};

/// Django's `SessionMiddleware`: gives each request a lazy session from the configured engine
/// and, on the way out, saves it and sets, refreshes or deletes the session cookie.
///
/// Cheap to clone (one `Arc`). See the crate README for every rule and where we differ from
/// Django.
#[derive(Clone)]
pub struct SessionMiddleware {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    cookie: CookieSettings,
}

impl std::fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("engine", &self.inner.engine.description().name)
            .field("cookie", &self.inner.cookie)
            .finish()
    }
}

/// What `process_request` hands the request, and `process_response` needs back.
#[derive(Debug, Clone)]
pub struct RequestSession {
    handle: SessionHandle,
    cookie_present: bool,
}

impl RequestSession {
    /// The request's session, to put where handlers find it.
    pub fn handle(&self) -> &SessionHandle {
        &self.handle
    }

    /// Whether the request carried the session cookie (even an empty or malformed one).
    pub fn cookie_present(&self) -> bool {
        self.cookie_present
    }
}

/// What [`SessionMiddleware::process_response_headers`] did to the response, for logs and
/// tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieAction {
    /// No `Set-Cookie` (the session was not modified, or the response is a 5xx).
    None,
    /// The session was saved and its cookie set or refreshed.
    Set,
    /// The session is empty and the request had a cookie: the cookie was deleted.
    Deleted,
}

impl SessionMiddleware {
    /// A middleware over `engine`, with the cookie settings of the engine's settings.
    ///
    /// # Errors
    ///
    /// A cookie setting that would produce a malformed `Set-Cookie` header (see
    /// [`CookieSettings::from_settings`]).
    pub fn new(engine: Engine) -> Result<Self, ConfigError> {
        let cookie = CookieSettings::from_settings(engine.settings())?;
        Ok(Self {
            inner: Arc::new(Inner { engine, cookie }),
        })
    }

    /// The engine sessions come from.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The validated cookie settings.
    pub fn cookie_settings(&self) -> &CookieSettings {
        &self.inner.cookie
    }

    /// Django's `process_request`: the session named by the request's session cookie.
    ///
    /// The first cookie called `SESSION_COOKIE_NAME` wins (see [`cookies::find_request_cookie`]).
    /// Nothing is loaded here: a key the engine's key format refuses becomes no key, and the
    /// session loads on first use.
    pub fn process_request(&self, headers: &HeaderMap) -> RequestSession {
        let found = cookies::find_request_cookie(headers, &self.inner.cookie.name);
        let session = self.inner.engine.session(found.value());
        RequestSession {
            handle: SessionHandle::new(session),
            cookie_present: matches!(found, RequestCookie::Present(_)),
        }
    }

    /// Django's `process_response` on a whole response: on success the response comes back
    /// with its cookie headers; on failure it is replaced by an empty-bodied 400
    /// ([`SessionError::Interrupted`]) or 500 that carries no `Set-Cookie`, with the error in
    /// its extensions (`Arc<SessionError>`) for an outer layer to render.
    pub async fn process_response<B: Default>(
        &self,
        request: RequestSession,
        mut response: Response<B>,
    ) -> Response<B> {
        let status = response.status();
        match self
            .process_response_headers(request, status, response.headers_mut())
            .await
        {
            Ok(_) => response,
            Err(error) => error_response(error),
        }
    }

    /// The rules of Django's `process_response`, applied to a response's status and headers.
    ///
    /// # Behavior
    ///
    /// - `accessed`, `modified` and `is_empty()` are read first, before anything can load.
    /// - Cookie in the request and the session empty → the deletion cookie and `Vary: Cookie`.
    /// - Otherwise `Vary: Cookie` if the session was accessed; and if it was modified (or
    ///   `SESSION_SAVE_EVERY_REQUEST`) and is not empty, and the status is below 500:
    ///   - the expiry is computed (this may load the session); **if the load emptied it** (an
    ///     unknown or expired key with `SESSION_SAVE_EVERY_REQUEST`), nothing is saved and the
    ///     cookie is deleted, as if the handler had read the session (Django creates an empty
    ///     record here);
    ///   - the session is saved; a key deleted meanwhile gives [`SessionError::Interrupted`]
    ///     (a 400), any other failure [`SessionError::Save`] (a 500), and no `Set-Cookie`;
    ///   - the cookie is set (`Max-Age` + `expires`, or none for a browser-session cookie),
    ///     with `Vary: Cookie` (the CVE-2026-35192 fix).
    /// - A 5xx response never saves and never sets the cookie (but still deletes one).
    /// - Any response that sets or deletes the cookie also gets `Cache-Control: private`.
    ///
    /// # Errors
    ///
    /// [`SessionError`]; the headers are then left without a session `Set-Cookie`.
    pub async fn process_response_headers(
        &self,
        request: RequestSession,
        status: StatusCode,
        headers: &mut HeaderMap,
    ) -> Result<CookieAction, SessionError> {
        let settings = &self.inner.cookie;
        let mut session = request.handle.lock().await;
        let accessed = session.accessed();
        let modified = session.modified();
        let empty = session.is_empty();

        if request.cookie_present && empty {
            self.delete_cookie(headers);
            return Ok(CookieAction::Deleted);
        }
        let mut action = CookieAction::None;
        if (modified || settings.save_every_request) && !empty && status.as_u16() < 500 {
            // Django computes the expiry before looking at the status; computing it may load,
            // and a 5xx uses none of it, so we skip it (and its engine call) for a 5xx.
            let lifetime = self.lifetime(&mut session).await?;
            if session.is_empty() {
                // The load found nothing (unknown or expired key) and reset the key: there is
                // nothing to save. Django saves here and so creates an empty record.
                drop(session);
                if request.cookie_present {
                    self.delete_cookie(headers);
                    return Ok(CookieAction::Deleted);
                }
            } else {
                session.save_async().await.map_err(save_error)?;
                let key = session.session_key().ok_or(SessionError::NoKeyAfterSave)?;
                let cookie = SetCookie::session(settings, key, &lifetime);
                append_set_cookie(headers, &cookie)?;
                patch_cache_control_private(headers);
                action = CookieAction::Set;
            }
        }
        if accessed || action == CookieAction::Set {
            patch_vary_cookie(headers);
        }
        Ok(action)
    }

    /// Django: `None` at browser close, else `Max-Age = get_expiry_age()` and
    /// `expires = http_date(now + max_age)` with `now` from the engine's clock.
    async fn lifetime(
        &self,
        session: &mut sessionkit::Session,
    ) -> Result<CookieLifetime, SessionError> {
        session
            .ensure_loaded_async()
            .await
            .map_err(SessionError::Load)?;
        if session
            .get_expire_at_browser_close()
            .map_err(SessionError::Load)?
        {
            return Ok(CookieLifetime::BrowserSession);
        }
        let seconds = session.get_expiry_age().map_err(SessionError::Load)?;
        let now = self.inner.engine.clock().now_utc();
        Ok(CookieLifetime::MaxAge {
            seconds,
            expires: cookies::expires_after(now, seconds),
        })
    }

    /// The deletion cookie, `Vary: Cookie` and `Cache-Control: private`.
    fn delete_cookie(&self, headers: &mut HeaderMap) {
        let cookie = SetCookie::deletion(&self.inner.cookie);
        // The name, path and domain were validated at startup and the value is empty.
        if append_set_cookie(headers, &cookie).is_ok() {
            patch_cache_control_private(headers);
        }
        patch_vary_cookie(headers);
    }
}

/// Adds one `Set-Cookie` field.
fn append_set_cookie(headers: &mut HeaderMap, cookie: &SetCookie) -> Result<(), SessionError> {
    let value = HeaderValue::try_from(cookie.to_header_string())
        .map_err(|_| SessionError::UnsendableCookie)?;
    headers.append(SET_COOKIE, value);
    Ok(())
}

/// Django turns `UpdateError` into `SessionInterrupted` (400); every other failure is a 500.
fn save_error(error: Error) -> SessionError {
    match error {
        Error::SessionInterrupted => SessionError::Interrupted,
        other => SessionError::Save(other),
    }
}

/// The 400 or 500 that replaces a response whose session could not be saved.
pub(crate) fn error_response<B: Default>(error: SessionError) -> Response<B> {
    let status = error.status();
    match status {
        StatusCode::BAD_REQUEST => {
            tracing::warn!(target: "sessionkit::http", %error, "bad request")
        }
        _ => tracing::error!(target: "sessionkit::http", %error, "session middleware failed"),
    }
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response.extensions_mut().insert(Arc::new(error));
    response
}
