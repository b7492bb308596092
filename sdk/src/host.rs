//! What the host lends an engine when it opens a store (contract 0.2): its clock and its log.
//!
//! An engine library carries its own copy of `tracing`, so without help its log events never
//! reach the host's subscriber, and its own copy of the system clock, so a host that freezes
//! time in a test would see engines judge expiry by another clock. The host hands every store it
//! opens a [`HostBox`]; the SDK forwards the plugin's `tracing` events into it (see
//! [`crate::forward`]) and gives the engine a [`Host`] to read the clock from.

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
