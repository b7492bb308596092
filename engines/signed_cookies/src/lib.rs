#![doc = include_str!("../README.md")]

pub mod config;
pub mod store;

use abi_stable::std_types::RStr;
use sessionkit_codec::SIGNED_COOKIES_SALT;
use sessionkit_sdk::{Capabilities, Engine, EngineInfo, KeyFormat, StoreError};

pub use config::SignedCookiesConfig;
pub use store::SignedCookieStore;

/// The `signed_cookies` engine: its session key is the signed session itself.
pub struct SignedCookiesEngine;

impl Engine for SignedCookiesEngine {
    type Store = SignedCookieStore;

    fn info() -> EngineInfo {
        EngineInfo {
            name: RStr::from_str("signed_cookies"),
            version: RStr::from_str(env!("CARGO_PKG_VERSION")),
            salt: RStr::from_str(SIGNED_COOKIES_SALT),
            // The browser holds the data: nothing to invalidate, nothing to clear, and the
            // signature's age (SESSION_COOKIE_AGE) expires it. No I/O, so the host may call it on
            // its async executor.
            capabilities: Capabilities::EXPIRES_BY_ITSELF.union(Capabilities::NON_BLOCKING),
            key_format: KeyFormat::SignedPayload,
        }
    }

    fn open(settings_json: &str) -> Result<SignedCookieStore, StoreError> {
        Ok(SignedCookieStore::new(
            SignedCookiesConfig::from_settings_json(settings_json)?,
        ))
    }
}

sessionkit_sdk::export_engine!(SignedCookiesEngine);
