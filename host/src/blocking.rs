//! Where an async session operation runs its engine calls: [`run_blocking`] on tokio's
//! blocking pool for a store that blocks, and [`drive`] on the event loop for one that starts
//! calls without blocking (contract 0.4, `READINESS_CALLS`).

use std::{
    cell::Cell,
    os::{
        fd::{AsRawFd, RawFd},
        unix::net::UnixDatagram,
    },
    panic::{AssertUnwindSafe, catch_unwind},
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use sessionkit_sdk::{
    CallAnswer, CallStep, CallWait, Interest, SessionStore, StoreCall, StoreError, StoreResult,
};
use tokio::io::{Interest as TokioInterest, unix::AsyncFd};

use crate::{Error, plugin::PluginStore};

/// Where an operation's engine calls run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Run {
    /// In place, on the caller's thread (the sync methods, and async ones whose store never
    /// blocks).
    Inline,
    /// Awaited: on tokio's blocking pool for a store that blocks (the whole operation goes
    /// there, see `Session::call`), or on the event loop for one with `READINESS_CALLS`.
    Offload,
}

/// Runs an operation with [`Run::Inline`] to completion. Its engine calls run in place and it
/// awaits nothing else, so its first poll completes it.
pub(crate) fn inline<T>(operation: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let mut operation = pin!(operation);
    match operation
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(result) => result,
        // Unreachable: with `Run::Inline` no await point of the session's operations suspends.
        Poll::Pending => unreachable!("an inline session operation suspended"),
    }
}

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

thread_local! {
    /// The runtime this thread last asked about, and whether it can wait on a socket.
    static REACTOR_OF_THIS_THREAD: Cell<Option<(tokio::runtime::Id, bool)>> =
        const { Cell::new(None) };
}

/// Whether an async call can wait on a socket here: a tokio runtime is running and it has an
/// I/O and a time driver. A runtime built without them (`Builder` without `enable_all()`)
/// makes tokio panic at the first registration, so each thread probes each runtime it meets
/// once, with a socket of its own, and remembers the answer; such a runtime's calls take the
/// blocking pool.
pub(crate) fn reactor_available() -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    let id = runtime.id();
    if let Some((known, available)) = REACTOR_OF_THIS_THREAD.get()
        && known == id
    {
        return available;
    }
    let available = probe_reactor();
    if !available {
        tracing::warn!(
            target: "sessionkit::engine",
            "this tokio runtime has no I/O or time driver (build it with enable_all()): its \
             async session calls run on the blocking pool"
        );
    }
    REACTOR_OF_THIS_THREAD.set(Some((id, available)));
    available
}

/// Registers a socket of our own with the current runtime's reactor and starts a timer.
fn probe_reactor() -> bool {
    let Ok(socket) = UnixDatagram::unbound() else {
        return false;
    };
    if socket.set_nonblocking(true).is_err() {
        return false;
    }
    catch_unwind(AssertUnwindSafe(|| {
        drop(tokio::time::sleep(Duration::ZERO));
        tokio::net::UnixDatagram::from_std(socket).is_ok()
    }))
    .unwrap_or(false)
}

/// Runs `call` on `store` to its end without parking a thread: the store starts it, and while
/// it waits for its socket this task waits on tokio's reactor (an `AsyncFd` registered for
/// that one wait). A call the store hands back as `Blocking` runs on the blocking pool. When
/// the task is dropped mid-wait, the store is told to forget the call.
///
/// Needs a tokio runtime with I/O and time enabled (as any server's has); callers check
/// [`reactor_available`] first.
pub(crate) async fn drive(store: &Arc<PluginStore>, call: StoreCall) -> StoreResult<CallAnswer> {
    let mut step = store.start_call(call);
    loop {
        match step {
            CallStep::Done(result) => return result.into_result(),
            CallStep::Blocking(call) => {
                let name = call.name();
                return run_call_blocking(store, call)
                    .await
                    .unwrap_or_else(|error| {
                        Err(StoreError::other(format!(
                            "the blocking {name} call did not finish: {error}"
                        )))
                    });
            }
            CallStep::Wait(wait) => {
                let pending = Pending::register(store, &wait)?;
                let timed_out = pending.ready(&wait).await?;
                step = store.resume_call(pending.resumed(), timed_out);
            }
        }
    }
}

/// Runs `call` through the store's blocking method on the blocking pool (in place without a
/// tokio runtime); [`Error::Join`] when the pool lost it.
pub(crate) async fn run_call_blocking(
    store: &Arc<PluginStore>,
    call: StoreCall,
) -> Result<StoreResult<CallAnswer>, Error> {
    let store = Arc::clone(store);
    run_blocking(false, move || Ok(dispatch(&*store, call))).await
}

/// Runs `call` through the blocking method of the same name.
pub(crate) fn dispatch(store: &impl SessionStore, call: StoreCall) -> StoreResult<CallAnswer> {
    Ok(match call {
        StoreCall::Exists(key) => CallAnswer::Exists(store.exists(&key)?),
        StoreCall::Load(key) => CallAnswer::Load(store.load(&key)?.into()),
        StoreCall::Create(write) => CallAnswer::Create(store.create(write)?.into()),
        StoreCall::Save(write) => CallAnswer::Save(store.save(write)?.into()),
        StoreCall::Delete(key) => {
            store.delete(&key)?;
            CallAnswer::Delete
        }
        StoreCall::SaveIfUnchanged {
            write,
            expected_data,
        } => CallAnswer::conditional(store.save_if_unchanged(write, &expected_data)?),
    })
}

/// A call waiting for its socket, registered with the reactor. Dropped before it is resumed
/// (the task went away, or the wait failed), it ends the registration and then cancels the
/// call, in that order: the store may close the descriptor when it forgets the call, and a
/// registration outliving it could remove another socket that reuses the number.
struct Pending<'a> {
    store: &'a PluginStore,
    fd: Option<AsyncFd<StoreFd>>,
    ticket: Option<u64>,
}

impl<'a> Pending<'a> {
    /// Registers `wait`'s descriptor for its interest.
    ///
    /// A runtime built without I/O or timers cannot wait on a socket (tokio panics at the
    /// registration; [`reactor_available`] keeps such runtimes off this path): the call ends
    /// with an error that says so.
    fn register(store: &'a PluginStore, wait: &CallWait) -> StoreResult<Self> {
        let mut pending = Self {
            store,
            fd: None,
            ticket: Some(wait.ticket),
        };
        let registered = catch_unwind(AssertUnwindSafe(|| Self::registration(wait)));
        match registered {
            Ok(fd) => pending.fd = Some(fd?),
            // Unreachable after `reactor_available`, kept so a misjudged runtime is an error,
            // never a panic.
            Err(_) => {
                return Err(StoreError::unavailable(
                    "the tokio runtime has no I/O or time driver to wait on the store's socket \
                     (build it with enable_all())",
                ));
            }
        }
        Ok(pending)
    }

    /// The registration of `wait`'s descriptor with the reactor.
    fn registration(wait: &CallWait) -> StoreResult<AsyncFd<StoreFd>> {
        // tokio deprecates its safe constructors because they cannot prove the descriptor
        // outlives the registration; the contract does (the store keeps it open until the
        // ticket is resumed or cancelled, and `Pending` ends the registration before either).
        // The alternatives need `unsafe` (borrowing or duplicating a raw descriptor), which
        // this crate forbids.
        #[allow(deprecated)]
        let fd =
            AsyncFd::with_interest(StoreFd(wait.fd), interest(wait.interest)).map_err(|error| {
                StoreError::unavailable(format!(
                    "cannot wait on the store's socket (fd {}): {error}",
                    wait.fd
                ))
            })?;
        Ok(fd)
    }

    /// Waits until the descriptor is ready, or the timeout passes first (`Ok(true)`).
    async fn ready(&self, wait: &CallWait) -> StoreResult<bool> {
        let Some(fd) = &self.fd else {
            return Ok(true);
        };
        let readiness = fd.ready(interest(wait.interest));
        let outcome = if wait.timeout_ms == 0 {
            readiness.await.map(|_| false)
        } else {
            match tokio::time::timeout(Duration::from_millis(wait.timeout_ms), readiness).await {
                Ok(ready) => ready.map(|_| false),
                Err(_elapsed) => Ok(true),
            }
        };
        outcome.map_err(|error| {
            StoreError::unavailable(format!(
                "waiting on the store's socket (fd {}) failed: {error}",
                wait.fd
            ))
        })
    }

    /// Ends the registration and gives the ticket to resume (instead of cancelling it).
    fn resumed(mut self) -> u64 {
        self.fd = None;
        self.ticket.take().unwrap_or_default()
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.fd = None;
        if let Some(ticket) = self.ticket.take() {
            self.store.cancel_call(ticket);
        }
    }
}

fn interest(interest: Interest) -> TokioInterest {
    match interest {
        Interest::Readable => TokioInterest::READABLE,
        Interest::Writable => TokioInterest::WRITABLE,
    }
}

/// The store's descriptor, borrowed for one wait (the store owns and closes it).
struct StoreFd(RawFd);

impl AsRawFd for StoreFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}
