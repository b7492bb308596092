//! What the host lends an engine when it opens a store: its clock and its log (contract 0.2),
//! and a progress display for long operations (contract 0.3).
//!
//! An engine library carries its own copy of `tracing`, so without help its log events never
//! reach the host's subscriber, and its own copy of the system clock, so a host that freezes
//! time in a test would see engines judge expiry by another clock. The host hands every store it
//! opens a [`HostBox`]; the SDK forwards the plugin's `tracing` events into it (see
//! [`crate::forward`]) and gives the engine a [`Host`] to read the clock from.

use std::cell::RefCell;

use abi_stable::{
    StableAbi, sabi_trait,
    std_types::{RArc, RStr},
};

use crate::Timestamp;

/// The severity of a forwarded log event, as it crosses the ABI (`tracing`'s five levels).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Very verbose diagnostics.
    Trace,
    /// Diagnostics for developers.
    Debug,
    /// Normal operation worth noting.
    Info,
    /// Something degraded that the operator should see (a cache write that failed, an unsafe
    /// directory).
    Warn,
    /// An operation failed.
    Error,
}

/// The host's services, in their FFI-safe form. The host implements it; engines use it
/// through [`Host`].
#[sabi_trait]
pub trait FfiHost: Send + Sync + Clone {
    /// The host's current time (a test may freeze it). Engines judge expiry by it.
    fn now(&self) -> Timestamp;

    /// The most verbose level the host records; events below it are not sent.
    fn max_level(&self) -> LogLevel;

    /// Records one event of the engine: its level, its `tracing` target, and its message with
    /// its fields already formatted (`message key=value ...`).
    #[sabi(last_prefix_field)]
    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>);

    // Contract 0.3 (sessionkit-sdk 0.1.2). Methods appended below `last_prefix_field`. The host
    // implements this trait and the engine calls it, so an engine of 0.3 may be handed the
    // vtable of an older host, which lacks them: abi_stable then runs the default bodies below
    // (nobody watches), which is how an engine skips progress in an older host. A newer host
    // lends an older engine the frozen 0.2 form (`crate::frozen::v0_2`).

    /// Whether the host shows the progress of `operation` (`clear_expired`) right now: an
    /// engine asks before it counts the work ahead, which costs a query nobody may want.
    fn wants_progress(&self, operation: RStr<'_>) -> bool {
        let _ = operation;
        false
    }

    /// `done` of `total` units of `operation` are done (rows, for `clear_expired`). `total`
    /// is the engine's count when it started (0 when it has none); `done` may pass it when more
    /// work appeared meanwhile (sessions that expired during the run).
    fn progress(&self, operation: RStr<'_>, done: u64, total: u64) {
        let _ = (operation, done, total);
    }
}

/// The host's services as the host hands them over: a shared, thread-safe FFI trait object.
pub type HostBox = FfiHost_TO<'static, RArc<()>>;

/// The host an engine's store was opened by: its clock and its log.
///
/// Cheap to clone; a store keeps one to read the time. [`Host::standalone`] stands in when no
/// host lent anything (an engine opened by a host of contract 0.1, or in an engine's own unit
/// tests): the system clock, and logs that go to the plugin's own `tracing` subscriber.
#[derive(Clone)]
pub struct Host {
    services: Option<HostBox>,
}

impl Host {
    /// The host behind `services`.
    pub fn new(services: HostBox) -> Self {
        Self {
            services: Some(services),
        }
    }

    /// No host: the system clock, and no log sink.
    pub fn standalone() -> Self {
        Self { services: None }
    }

    /// The host's current time: what the engine judges expiry by.
    pub fn now(&self) -> Timestamp {
        match &self.services {
            Some(services) => services.now(),
            None => Timestamp::now(),
        }
    }

    /// Whether the host lent its services (false for [`Host::standalone`]).
    pub fn is_connected(&self) -> bool {
        self.services.is_some()
    }
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("connected", &self.is_connected())
            .finish()
    }
}

thread_local! {
    /// The services of the host whose call this thread is running (see [`with_caller`]).
    static CALLER: RefCell<Option<HostBox>> = const { RefCell::new(None) };
}

/// Runs `call` with `host` as the host this thread works for, so [`Progress::of`] finds it
/// without every engine threading it through its store: the contract's calls are synchronous
/// and run on the host's calling thread. Restores the previous value afterwards, panic or not.
pub(crate) fn with_caller<T>(host: Option<&HostBox>, call: impl FnOnce() -> T) -> T {
    struct Restore(Option<HostBox>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CALLER.with(|caller| *caller.borrow_mut() = previous);
        }
    }
    let previous = CALLER.with(|caller| caller.replace(host.cloned()));
    let _restore = Restore(previous);
    call()
}

/// Where an engine reports the progress of a long operation (contract 0.3): the host that
/// called it, when that host shows progress. An engine asks for it once at the start of the
/// operation, counts the work ahead only if it gets one, and reports as it goes.
///
/// # Examples
///
/// ```
/// use sessionkit_sdk::host::Progress;
///
/// // Outside a host's call (or in a host that shows no progress) there is nobody to tell.
/// assert!(Progress::of("clear_expired").is_none());
/// ```
#[derive(Clone)]
pub struct Progress {
    host: HostBox,
    operation: &'static str,
}

impl Progress {
    /// The progress display for `operation` of the host whose call this thread is running, if
    /// it wants one (a host older than contract 0.3 never does). Clone it to report from
    /// another thread.
    pub fn of(operation: &'static str) -> Option<Progress> {
        let host = CALLER.with(|caller| caller.borrow().clone())?;
        host.wants_progress(RStr::from(operation))
            .then_some(Progress { host, operation })
    }

    /// `done` of `total` units are done (see [`FfiHost::progress`]).
    pub fn report(&self, done: u64, total: u64) {
        self.host.progress(RStr::from(self.operation), done, total);
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}
