use http::StatusCode;

/// Why the middleware could not finish a response; the response becomes a 400 or 500 without
/// a session `Set-Cookie`, with this error in its extensions (as `Arc<SessionError>`).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Django's `SessionInterrupted`: the session was deleted (for example by a logout in a
    /// concurrent request) before this request could save it. HTTP 400.
    #[error(
        "The request's session was deleted before the request completed. The user may have \
         logged out in a concurrent request, for example."
    )]
    Interrupted,
    /// Loading the session to compute its expiry failed. HTTP 500.
    #[error("loading the session to compute its cookie expiry failed: {0}")]
    Load(#[source] sessionkit::Error),
    /// Saving the session failed: nothing was stored, so no cookie is sent. HTTP 500.
    #[error("saving the session failed, so no session cookie was sent: {0}")]
    Save(#[source] sessionkit::Error),
    /// The engine returned no key after a successful save (an engine bug). HTTP 500.
    #[error("the engine saved the session but returned no session key")]
    NoKeyAfterSave,
    /// The key the engine returned cannot be sent in a header (an engine bug). HTTP 500.
    #[error("the session key returned by the engine cannot be sent in a Set-Cookie header")]
    UnsendableCookie,
}

impl SessionError {
    /// The status of the response that replaces the handler's.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Interrupted => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A handler asked for the session but no [`SessionLayer`](super::SessionLayer) wraps it: a
/// programming error, answered with a 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no session: the handler is not wrapped in sessionkit_http::SessionLayer")]
pub struct MissingSessionLayer;
