use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use crate::{RequestSession, SessionMiddleware};

/// The boxed second half of a request: Django's `process_response` (locks, may load, saves).
type Finishing<B> = Pin<Box<dyn Future<Output = Response<B>> + Send>>;

pin_project! {
    /// Response future of [`SessionService`](super::SessionService): the inner service's
    /// response, then the session's save and cookie headers.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Inner {
            #[pin]
            future: F,
            middleware: Option<SessionMiddleware>,
            session: Option<RequestSession>,
        },
        Finishing {
            future: Finishing<B>,
        },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn new(future: F, middleware: SessionMiddleware, session: RequestSession) -> Self {
        Self {
            state: State::Inner {
                future,
                middleware: Some(middleware),
                session: Some(session),
            },
        }
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default + Send + 'static,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Inner {
                    future,
                    middleware,
                    session,
                } => {
                    let response = ready!(future.poll(cx))?;
                    // Both are taken exactly once: the state changes right below.
                    let (Some(middleware), Some(session)) = (middleware.take(), session.take())
                    else {
                        unreachable!("ResponseFuture polled after its inner future finished");
                    };
                    let finishing: Finishing<B> =
                        Box::pin(
                            async move { middleware.process_response(session, response).await },
                        );
                    this.state.set(State::Finishing { future: finishing });
                }
                StateProj::Finishing { future } => {
                    return Poll::Ready(Ok(ready!(future.as_mut().poll(cx))));
                }
            }
        }
    }
}
