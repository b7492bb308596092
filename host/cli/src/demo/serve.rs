//! Serving the demo with bounds on what a client can hold: a request's headers must arrive
//! within [`Limits::header_timeout`], its body within [`Limits::body_timeout`], and at most
//! [`Limits::max_connections`] connections are served at once (more wait in the listen backlog).
//!
//! `axum::serve` offers none of these (3,000 half-sent requests stayed open for 30+ s, issue 9),
//! so connections are served with hyper's HTTP/1 builder (its header read timeout) and
//! tower-http's `RequestBodyDeadlineLayer` bounds the body.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower_http::timeout::RequestBodyDeadlineLayer;

/// What one client may hold of the server, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// From a connection's first byte of a request (or its opening, for the first request) to
    /// the end of the request's headers; then the connection is closed.
    pub header_timeout: Duration,
    /// From the end of the headers to the end of the body; then the request fails (400) and
    /// the connection is closed.
    pub body_timeout: Duration,
    /// Connections served at once; further ones are accepted only when one closes.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes (then stops accepting
/// and returns; connections still open end with the runtime). Accept errors are logged and
/// retried, never fatal.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let app = app.layer(RequestBodyDeadlineLayer::new(limits.body_timeout));
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return,
            permit = Arc::clone(&permits).acquire_owned() => permit,
        };
        // The semaphore is never closed, so acquiring only waits.
        let Ok(permit) = permit else {
            return;
        };
        let (stream, _) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(target: "sessionkit::demo", %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        tokio::spawn(async move {
            // A client that misbehaves or goes away is its own problem, not the server's.
            if let Err(error) = connection.await {
                tracing::debug!(target: "sessionkit::demo", %error, "connection ended");
            }
            drop(permit);
        });
    }
}

/// Errors of one connection that `accept` reports; the listener itself is fine.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}
