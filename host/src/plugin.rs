//! An opened engine store as the host holds it, whichever contract revision its library
//! speaks, and the services the host lends it (its clock, its log and its progress display).
//!
//! The SDK's contract only grows (see the SDK README, "Versioning"): a library built against
//! contract 0.1 is loaded through the frozen 0.1 root module and its store is adapted here —
//! `save_if_unchanged` answers `Unsupported`, and the store judges expiry by its own system
//! clock and logs into its own copy of `tracing` — while a 0.2 library gets the host's clock and
//! log (through the frozen 0.2 form of the services, without progress), and a 0.3 library gets
//! the progress display too. The rest of the host sees one [`SessionStore`].

use std::sync::Arc;

use abi_stable::std_types::{ROption, RStr};
use parking_lot::RwLock;
use sessionkit_codec::expiry::Clock;
use sessionkit_sdk::{
    CallStep, Capabilities, ConditionalSave, ErrorKind, FfiHost, HostBox, LogLevel, SessionRecord,
    SessionStore, SessionWrite, StoreBox, StoreCall, StoreError, StoreResult, Timestamp,
    frozen::{v0_1, v0_2, v0_3},
};

/// The contract revision an engine library was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Contract {
    /// The first release (sessionkit-sdk 0.1.0): no conditional save, no host services.
    V0_1,
    /// sessionkit-sdk 0.1.1: conditional save, the host's clock and log.
    V0_2,
    /// sessionkit-sdk 0.1.2: the host's progress display for long calls (`clear_expired`).
    V0_3,
    /// sessionkit-sdk 0.1.3: calls that do not block (`start_call` / `resume_call`).
    V0_4,
}

impl Contract {
    /// The revision as written in the SDK README (`0.1`, `0.2`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V0_1 => "0.1",
            Self::V0_2 => "0.2",
            Self::V0_3 => "0.3",
            Self::V0_4 => "0.4",
        }
    }

    /// The capabilities an engine of this revision can have at all: a 0.1 engine cannot
    /// offer what 0.1 could not express, whatever bits it sets.
    pub const fn possible_capabilities(self) -> Capabilities {
        match self {
            Self::V0_1 => Capabilities::from_bits((1 << 7) - 1),
            Self::V0_2 | Self::V0_3 => Capabilities::from_bits(!Capabilities::READINESS_CALLS.bits),
            Self::V0_4 => Capabilities::from_bits(u64::MAX),
        }
    }
}

/// A store opened from an engine library (or built in process), with one Rust interface
/// whichever contract revision it speaks.
pub struct PluginStore {
    inner: Inner,
}

enum Inner {
    Current(StoreBox),
    /// Contracts 0.2 and 0.3 (one store layout; 0.3 changed only the host's services).
    V0_2(v0_2::StoreBox, Contract),
    V0_1(v0_1::StoreBox),
}

impl PluginStore {
    /// A store of a library speaking the current contract.
    pub fn current(store: StoreBox) -> Self {
        Self {
            inner: Inner::Current(store),
        }
    }

    /// A store of a library built against contract 0.3.
    pub fn v0_3(store: v0_3::StoreBox) -> Self {
        Self {
            inner: Inner::V0_2(store, Contract::V0_3),
        }
    }

    /// A store of a library built against contract 0.2.
    pub fn v0_2(store: v0_2::StoreBox) -> Self {
        Self {
            inner: Inner::V0_2(store, Contract::V0_2),
        }
    }

    /// A store of a library built against contract 0.1.
    pub fn v0_1(store: v0_1::StoreBox) -> Self {
        Self {
            inner: Inner::V0_1(store),
        }
    }

    /// The contract revision the store's library speaks.
    pub fn contract(&self) -> Contract {
        match self.inner {
            Inner::Current(_) => Contract::V0_4,
            Inner::V0_2(_, contract) => contract,
            Inner::V0_1(_) => Contract::V0_1,
        }
    }
}

/// Calls `$method` on whichever trait object `$store` holds (all have it, same signature).
macro_rules! either {
    ($store:expr, $method:ident ( $($arg:expr),* )) => {
        match &$store.inner {
            Inner::Current(store) => store.$method($($arg),*),
            Inner::V0_2(store, _) => store.$method($($arg),*),
            Inner::V0_1(store) => store.$method($($arg),*),
        }
    };
}

impl SessionStore for PluginStore {
    fn exists(&self, key: &str) -> StoreResult<bool> {
        either!(self, exists(RStr::from(key))).into_result()
    }

    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        either!(self, load(RStr::from(key)))
            .into_result()
            .map(ROption::into_option)
    }

    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        either!(self, create(write))
            .into_result()
            .map(|key| key.into_string())
    }

    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        either!(self, save(write))
            .into_result()
            .map(|key| key.into_string())
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        either!(self, delete(RStr::from(key))).into_result()
    }

    fn clear_expired(&self) -> StoreResult<u64> {
        either!(self, clear_expired()).into_result()
    }

    fn capabilities(&self) -> Capabilities {
        let declared = either!(self, capabilities());
        Capabilities::from_bits(declared.bits & self.contract().possible_capabilities().bits)
    }

    fn sessions_of_account(&self, account_id: i64) -> StoreResult<Vec<SessionRecord>> {
        either!(self, sessions_of_account(account_id))
            .into_result()
            .map(Into::into)
    }

    fn delete_sessions_of_account(&self, account_id: i64, keep: Option<&str>) -> StoreResult<u64> {
        let keep = keep.map(RStr::from).into();
        either!(self, delete_sessions_of_account(account_id, keep)).into_result()
    }

    fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: &str,
    ) -> StoreResult<ConditionalSave> {
        match &self.inner {
            Inner::Current(store) => store
                .save_if_unchanged(write, RStr::from(expected_data))
                .into_result()
                .map(ConditionalSave::from_ffi),
            Inner::V0_2(store, _) => store
                .save_if_unchanged(write, RStr::from(expected_data))
                .into_result()
                .map(ConditionalSave::from_ffi),
            Inner::V0_1(_) => Err(StoreError::unsupported(
                "the engine was built against contract 0.1, which has no conditional save",
            )),
        }
    }

    fn start_call(&self, call: StoreCall) -> CallStep {
        match &self.inner {
            Inner::Current(store) => store.start_call(call),
            // Older contracts have no calls that do not block: every call runs the blocking way.
            Inner::V0_2(..) | Inner::V0_1(_) => CallStep::Blocking(call),
        }
    }

    fn resume_call(&self, ticket: u64, timed_out: bool) -> CallStep {
        match &self.inner {
            Inner::Current(store) => store.resume_call(ticket, timed_out),
            Inner::V0_2(..) | Inner::V0_1(_) => CallStep::done(Err(StoreError::new(
                ErrorKind::Other,
                format!(
                    "resume_call of an engine of contract {}, which starts no call",
                    self.contract().as_str()
                ),
            ))),
        }
    }

    fn cancel_call(&self, ticket: u64) {
        if let Inner::Current(store) = &self.inner {
            store.cancel_call(ticket);
        }
    }
}

/// The clock an engine's store judges expiry by: the host's, replaceable later
/// ([`Engine::with_clock`](crate::Engine::with_clock)) so a test that freezes time freezes it
/// for the engine too.
#[derive(Debug)]
pub struct SharedClock(RwLock<Arc<dyn Clock>>);

impl SharedClock {
    /// A slot holding `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self(RwLock::new(clock))
    }

    /// From now on, `clock` tells the time.
    pub fn set(&self, clock: Arc<dyn Clock>) {
        *self.0.write() = clock;
    }

    /// The current time by the clock in the slot.
    pub fn now(&self) -> Timestamp {
        self.0.read().now()
    }
}

/// Who watches the progress of a long engine call: called with the operation, the units done
/// and the engine's total (0 when unknown).
pub type ProgressListener = dyn Fn(&str, u64, u64) + Send + Sync;

/// The progress display a store's engine reports to (contract 0.3), shared by every `Engine`
/// holding the store. Empty unless someone watches, so an engine does not count the work ahead
/// for nobody.
#[derive(Default)]
pub struct SharedProgress(RwLock<Option<Arc<ProgressListener>>>);

impl SharedProgress {
    /// Runs `call` with `listener` watching the store's progress, then removes it (panic or
    /// not). One call watches at a time; a nested watch replaces the outer one until it ends.
    pub fn watch<T>(&self, listener: Arc<ProgressListener>, call: impl FnOnce() -> T) -> T {
        struct Unwatch<'a>(&'a SharedProgress, Option<Arc<ProgressListener>>);
        impl Drop for Unwatch<'_> {
            fn drop(&mut self) {
                *self.0.0.write() = self.1.take();
            }
        }
        let previous = self.0.write().replace(listener);
        let _unwatch = Unwatch(self, previous);
        call()
    }

    fn listener(&self) -> Option<Arc<ProgressListener>> {
        self.0.read().clone()
    }
}

impl std::fmt::Debug for SharedProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedProgress")
            .field("watched", &self.0.read().is_some())
            .finish()
    }
}

/// What the host lends one opened store: the clock, a log that records the engine's events
/// in the host's subscriber under target `sessionkit::engine` with the engine's name, and the
/// progress display.
#[derive(Clone)]
pub(crate) struct HostServices {
    engine: Arc<str>,
    clock: Arc<SharedClock>,
    progress: Arc<SharedProgress>,
}

impl HostServices {
    /// The services for a store of engine `engine`, telling time by `clock` and showing
    /// progress to whoever watches `progress`.
    pub(crate) fn new(
        engine: &str,
        clock: Arc<SharedClock>,
        progress: Arc<SharedProgress>,
    ) -> Self {
        Self {
            engine: engine.into(),
            clock,
            progress,
        }
    }

    /// The FFI form handed to the engine's `open_with_host`.
    pub(crate) fn into_box(self) -> HostBox {
        HostBox::from_ptr(
            abi_stable::std_types::RArc::new(self),
            abi_stable::sabi_trait::TD_Opaque,
        )
    }

    /// The contract-0.2 form, for an engine built against it: clock and log only.
    pub(crate) fn into_v0_2_box(self) -> v0_2::HostBox {
        v0_2::HostBox::from_ptr(
            abi_stable::std_types::RArc::new(self),
            abi_stable::sabi_trait::TD_Opaque,
        )
    }

    fn max_level(&self) -> LogLevel {
        use tracing::level_filters::LevelFilter;
        match LevelFilter::current() {
            LevelFilter::TRACE => LogLevel::Trace,
            LevelFilter::DEBUG => LogLevel::Debug,
            LevelFilter::INFO => LogLevel::Info,
            LevelFilter::WARN => LogLevel::Warn,
            _ => LogLevel::Error,
        }
    }

    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        let (engine, origin, message) = (&*self.engine, target.as_str(), message.as_str());
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "sessionkit::engine", engine, origin, "{message}");
            }
            LogLevel::Debug => {
                tracing::debug!(target: "sessionkit::engine", engine, origin, "{message}");
            }
            LogLevel::Info => {
                tracing::info!(target: "sessionkit::engine", engine, origin, "{message}");
            }
            LogLevel::Warn => {
                tracing::warn!(target: "sessionkit::engine", engine, origin, "{message}");
            }
            LogLevel::Error => {
                tracing::error!(target: "sessionkit::engine", engine, origin, "{message}");
            }
        }
    }
}

impl FfiHost for HostServices {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn max_level(&self) -> LogLevel {
        HostServices::max_level(self)
    }

    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        HostServices::log(self, level, target, message);
    }

    fn wants_progress(&self, _operation: RStr<'_>) -> bool {
        self.progress.listener().is_some()
    }

    fn progress(&self, operation: RStr<'_>, done: u64, total: u64) {
        if let Some(listener) = self.progress.listener() {
            listener(operation.as_str(), done, total);
        }
    }
}

impl v0_2::FfiHost for HostServices {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn max_level(&self) -> LogLevel {
        HostServices::max_level(self)
    }

    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        HostServices::log(self, level, target, message);
    }
}
