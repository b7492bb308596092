#![doc = include_str!("../README.md")]

pub mod config;
pub mod store;

use std::sync::Arc;

use sessionkit_codec::HostClock;
use sessionkit_sdk::{Capabilities, EngineInfo, Host, KeyFormat, StoreError};

pub use config::{AccountDbConfig, DEFAULT_TABLE};
pub use store::AccountDbStore;

/// The name `SESSION_ENGINE` uses for this engine.
pub const ENGINE_NAME: &str = "account_db";
/// What the engine offers: the `db` engine's capabilities plus the account index.
pub const CAPABILITIES: Capabilities = Capabilities::SERVER_SIDE_INVALIDATION
    .union(Capabilities::CLEAR_EXPIRED)
    .union(Capabilities::PERSISTENT)
    .union(Capabilities::SHARED_BETWEEN_PROCESSES)
    .union(Capabilities::ACCOUNT_INDEX)
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

/// The `account_db` engine: sessions as rows of Django's custom-session table with an indexed
/// `account_id`. Its store class is also named `SessionStore` in Django's documentation, so its
/// `session_data` is signed with the same salt as the stock table's.
pub struct AccountDbEngine;

impl sessionkit_sdk::Engine for AccountDbEngine {
    type Store = AccountDbStore;

    fn info() -> EngineInfo {
        INFO
    }

    fn open(settings_json: &str) -> Result<Self::Store, StoreError> {
        AccountDbStore::open(&AccountDbConfig::from_settings_json(settings_json)?)
    }

    fn open_with_host(settings_json: &str, host: &Host) -> Result<Self::Store, StoreError> {
        let config = AccountDbConfig::from_settings_json(settings_json)?;
        AccountDbStore::open(&config.with_clock(Arc::new(HostClock::new(host))))
    }
}

// The library's one exported symbol: the root module the host loads.
sessionkit_sdk::export_engine!(AccountDbEngine);

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
