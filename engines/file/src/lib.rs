#![doc = include_str!("../README.md")]

pub mod config;
pub mod store;

use abi_stable::std_types::RStr;
use sessionkit_codec::SESSION_STORE_SALT;
use sessionkit_sdk::{Capabilities, EngineInfo, KeyFormat, StoreError};

pub use crate::config::{ConfigError, FileConfig};
pub use crate::store::{FileStore, InvalidKey, MAX_FILE_BYTES, STALE_TEMP_AGE};
/// The contract [`FileStore`] implements, re-exported so embedders can call it without naming
/// the SDK crate.
pub use sessionkit_sdk::SessionStore;

/// The name `SESSION_ENGINE` uses for this engine (and the `file` in the library's file name).
pub const ENGINE_NAME: &str = "file";

/// What the file engine can do: real logout, stored expiry to sweep, survives restarts, and
/// several processes may share the directory.
pub const CAPABILITIES: Capabilities = Capabilities::SERVER_SIDE_INVALIDATION
    .union(Capabilities::CLEAR_EXPIRED)
    .union(Capabilities::PERSISTENT)
    .union(Capabilities::SHARED_BETWEEN_PROCESSES);

/// The `file` engine as the SDK sees it: its description and its constructor.
pub struct FileEngine;

impl sessionkit_sdk::Engine for FileEngine {
    type Store = FileStore;

    fn info() -> EngineInfo {
        EngineInfo {
            name: RStr::from_str(ENGINE_NAME),
            version: RStr::from_str(env!("CARGO_PKG_VERSION")),
            salt: RStr::from_str(SESSION_STORE_SALT),
            capabilities: CAPABILITIES,
            key_format: KeyFormat::DjangoSessionKey,
        }
    }

    fn open(settings_json: &str) -> Result<FileStore, StoreError> {
        FileStore::from_settings_json(settings_json)
    }
}

sessionkit_sdk::export_engine!(FileEngine);
