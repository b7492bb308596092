#![doc = include_str!("../README.md")]

use sessionkit_sdk::{
    Capabilities, EngineInfo, KeyFormat, StoreError, abi_stable::std_types::RStr,
};

pub mod config;
pub mod store;

pub use config::{AccountDbConfig, DEFAULT_TABLE};
pub use store::AccountDbStore;

/// The name `SESSION_ENGINE` uses for this engine.
pub const ENGINE_NAME: &str = "account_db";
/// The salt of Django's server-side engines: the documented custom store class is also named
/// `SessionStore`, so its `session_data` is signed exactly as the stock table's.
pub const SALT: &str = "django.contrib.sessions.SessionStore";
/// What the engine offers: the `db` engine's capabilities plus the account index.
pub const CAPABILITIES: Capabilities = Capabilities::SERVER_SIDE_INVALIDATION
    .union(Capabilities::CLEAR_EXPIRED)
    .union(Capabilities::PERSISTENT)
    .union(Capabilities::SHARED_BETWEEN_PROCESSES)
    .union(Capabilities::ACCOUNT_INDEX);

/// The `account_db` engine: sessions as rows of Django's custom-session table with an indexed
/// `account_id`.
pub struct AccountDbEngine;

impl sessionkit_sdk::Engine for AccountDbEngine {
    type Store = AccountDbStore;

    fn info() -> EngineInfo {
        EngineInfo {
            name: RStr::from_str(ENGINE_NAME),
            version: RStr::from_str(env!("CARGO_PKG_VERSION")),
            salt: RStr::from_str(SALT),
            capabilities: CAPABILITIES,
            key_format: KeyFormat::DjangoSessionKey,
        }
    }

    fn open(settings_json: &str) -> Result<Self::Store, StoreError> {
        AccountDbStore::open(&AccountDbConfig::from_settings_json(settings_json)?)
    }
}

sessionkit_sdk::export_engine!(AccountDbEngine);
