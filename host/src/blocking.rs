//! [`run_blocking`]: where an async session operation runs its engine call.

use crate::Error;

/// Runs an engine call on tokio's blocking pool, or inline when the store is `non_blocking`
/// (no I/O: the pool hop would cost far more than the call) or no tokio runtime is running (so
/// the async twins also work under other executors, just without offloading).
pub(crate) async fn run_blocking<T: Send + 'static>(
    non_blocking: bool,
    call: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    if non_blocking {
        return call();
    }
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(call)
            .await
            .map_err(|error| Error::Join(error.to_string()))?,
        Err(_) => call(),
    }
}
