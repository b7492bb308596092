#![doc = include_str!("../README.md")]

pub mod config;
mod core;
pub mod store;

use std::sync::Arc;

use sessionkit_codec::HostClock;
use sessionkit_sdk::{Capabilities, EngineInfo, Host, KeyFormat, StoreError};

pub use config::{ConfigError, Durability, FileConfig};
pub use core::{MAX_FILE_BYTES, STALE_TEMP_AGE};
/// The contract [`FileStore`] implements, re-exported so embedders can call it without naming
/// the SDK crate.
pub use sessionkit_sdk::SessionStore;
pub use store::{FileStore, InvalidKey};

/// The name `SESSION_ENGINE` uses for this engine (and the `file` in the library's file name).
pub const ENGINE_NAME: &str = "file";
/// What the file engine can do: real logout, stored expiry to sweep, survives restarts, several
/// processes may share the directory, and a save can be made conditional on what was loaded
/// (so the host merges concurrent requests).
pub const CAPABILITIES: Capabilities = Capabilities::SERVER_SIDE_INVALIDATION
    .union(Capabilities::CLEAR_EXPIRED)
    .union(Capabilities::PERSISTENT)
    .union(Capabilities::SHARED_BETWEEN_PROCESSES)
    .union(Capabilities::CONDITIONAL_SAVE);
/// What the engine says about itself before it is opened: name, version, salt, capabilities and
/// key format, read by the host through the ABI.
pub const INFO: EngineInfo = EngineInfo::new(
    ENGINE_NAME,
    env!("CARGO_PKG_VERSION"),
    EngineInfo::SESSION_STORE_SALT,
    CAPABILITIES,
    KeyFormat::DjangoSessionKey,
);

/// The `file` engine: one file per session in `SESSION_FILE_PATH`, as Django's `file` backend.
pub struct FileEngine;

impl sessionkit_sdk::Engine for FileEngine {
    type Store = FileStore;

    fn info() -> EngineInfo {
        INFO
    }

    fn open(settings_json: &str) -> Result<Self::Store, StoreError> {
        FileStore::open(&FileConfig::from_settings_json(settings_json)?)
    }

    /// Opens the store judging expiry by the host's clock, so a host that freezes time sees
    /// this engine expire sessions by the same clock.
    fn open_with_host(settings_json: &str, host: &Host) -> Result<Self::Store, StoreError> {
        Ok(Self::open(settings_json)?.with_clock(Arc::new(HostClock::new(host))))
    }
}

// The library's one exported symbol: the root module the host loads.
sessionkit_sdk::export_engine!(FileEngine);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_lists_exactly_the_declared_capabilities() {
        sessionkit_testkit::check_readme_capabilities(
            include_str!("../README.md"),
            CAPABILITIES.names(),
        )
        .unwrap();
    }
}
