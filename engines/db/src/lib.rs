#![doc = include_str!("../README.md")]

use sessionkit_sdk::{
    Capabilities, EngineInfo, KeyFormat, StoreError, abi_stable::std_types::RStr,
};

pub mod config;
pub mod store;

pub use config::DbConfig;
pub use store::DbStore;

/// The name `SESSION_ENGINE` uses for this engine (Django's `django.contrib.sessions.backends.db`).
pub const ENGINE_NAME: &str = "db";
/// The salt Django's server-side engines sign `session_data` with.
pub const SALT: &str = "django.contrib.sessions.SessionStore";
/// What the engine offers: real logout, `clearsessions` work, durable and shared storage.
pub const CAPABILITIES: Capabilities = Capabilities::SERVER_SIDE_INVALIDATION
    .union(Capabilities::CLEAR_EXPIRED)
    .union(Capabilities::PERSISTENT)
    .union(Capabilities::SHARED_BETWEEN_PROCESSES);

/// The `db` engine: sessions as rows of Django's `django_session` table.
pub struct DbEngine;

impl sessionkit_sdk::Engine for DbEngine {
    type Store = DbStore;

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
        DbStore::open(&DbConfig::from_settings_json(settings_json)?)
    }
}

sessionkit_sdk::export_engine!(DbEngine);
