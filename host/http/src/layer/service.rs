use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::ResponseFuture;
use crate::{SessionHandle, SessionMiddleware};

/// The service [`SessionLayer`](super::SessionLayer) builds: puts a [`SessionHandle`] in each
/// request's extensions, calls the inner service, then applies Django's response rules.
///
/// Errors of the inner service pass through untouched (no session processing). A session that
/// cannot be saved turns the response into an empty-bodied 400 or 500 (hence `ResBody:
/// Default`) with the [`SessionError`](super::SessionError) in its extensions.
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    middleware: SessionMiddleware,
}

impl<S> SessionService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, middleware: SessionMiddleware) -> Self {
        Self { inner, middleware }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let session = self.middleware.process_request(request.headers());
        request
            .extensions_mut()
            .insert::<SessionHandle>(session.handle().clone());
        let future = self.inner.call(request);
        ResponseFuture::new(future, self.middleware.clone(), session)
    }
}
