//! The axum extractor: a handler takes the request's [`SessionHandle`] as an argument.

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::{MissingSessionLayer, SessionHandle};

/// `async fn handler(session: SessionHandle)`: the same session the middleware saves.
///
/// Fails with [`MissingSessionLayer`] (a 500) when the router has no
/// [`SessionLayer`](crate::SessionLayer).
impl<S: Send + Sync> FromRequestParts<S> for SessionHandle {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SessionHandle>()
            .cloned()
            .ok_or(MissingSessionLayer)
    }
}

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        tracing::error!(target: "sessionkit::http", "{self}");
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}
