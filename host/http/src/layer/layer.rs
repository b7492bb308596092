use sessionkit::Engine;
use tower_layer::Layer;

use super::SessionService;
use crate::{ConfigError, SessionMiddleware};

/// Adds Django's session middleware to a tower service (or an axum `Router` via `.layer()`).
///
/// # Examples
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use sessionkit::{Engine, Settings};
/// use sessionkit_http::{SessionHandle, SessionLayer};
///
/// async fn visits(session: SessionHandle) -> String {
///     let count: i64 = session.get("visits").await.ok().flatten().unwrap_or(0) + 1;
///     let _ = session.insert("visits", count).await;
///     format!("visit {count}")
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let engine = Engine::from_settings(&Settings::load()?)?;
/// let app: Router = Router::new().route("/", get(visits)).layer(SessionLayer::new(engine)?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SessionLayer {
    middleware: SessionMiddleware,
}

impl SessionLayer {
    /// A layer giving each request a session from `engine`, with the cookie settings of the
    /// engine's settings.
    ///
    /// # Errors
    ///
    /// A cookie setting that would produce a malformed `Set-Cookie` header.
    pub fn new(engine: Engine) -> Result<Self, ConfigError> {
        Ok(Self {
            middleware: SessionMiddleware::new(engine)?,
        })
    }

    /// A layer around an existing framework-agnostic middleware.
    pub fn from_middleware(middleware: SessionMiddleware) -> Self {
        Self { middleware }
    }

    /// The middleware this layer installs.
    pub fn middleware(&self) -> &SessionMiddleware {
        &self.middleware
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, self.middleware.clone())
    }
}
