#![doc = include_str!("../README.md")]

pub mod config;
pub mod store;

use std::sync::Arc;

use sessionkit_codec::HostClock;
use sessionkit_sdk::{Capabilities, EngineInfo, Host, KeyFormat, StoreError};

pub use config::DbConfig;
pub use store::DbStore;

/// The name `SESSION_ENGINE` uses for this engine (Django's `django.contrib.sessions.backends.db`).
pub const ENGINE_NAME: &str = "db";
/// What the engine offers: real logout, `clearsessions` work, durable and shared storage.
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

/// The `db` engine: sessions as rows of Django's `django_session` table.
pub struct DbEngine;

impl sessionkit_sdk::Engine for DbEngine {
    type Store = DbStore;

    fn info() -> EngineInfo {
        INFO
    }

    fn open(settings_json: &str) -> Result<Self::Store, StoreError> {
        DbStore::open(&DbConfig::from_settings_json(settings_json)?)
    }

    fn open_with_host(settings_json: &str, host: &Host) -> Result<Self::Store, StoreError> {
        let config = DbConfig::from_settings_json(settings_json)?;
        DbStore::open(&config.with_clock(Arc::new(HostClock::new(host))))
    }
}

// The library's one exported symbol: the root module the host loads.
sessionkit_sdk::export_engine!(DbEngine);

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
