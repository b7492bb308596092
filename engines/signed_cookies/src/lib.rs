#![doc = include_str!("../README.md")]

pub mod config;
pub mod store;

use sessionkit_sdk::{Capabilities, EngineInfo, KeyFormat, StoreError};

pub use config::SignedCookiesConfig;
pub use store::SignedCookiesStore;

/// The name `SESSION_ENGINE` uses for this engine (Django's `django.contrib.sessions.backends.signed_cookies`).
pub const ENGINE_NAME: &str = "signed_cookies";
/// What the engine offers: the browser holds the data, so nothing to invalidate and nothing to
/// clear, and the signature's age (`SESSION_COOKIE_AGE`) expires it. No I/O, so the host may call
/// it on its async executor.
pub const CAPABILITIES: Capabilities =
    Capabilities::EXPIRES_BY_ITSELF.union(Capabilities::NON_BLOCKING);
/// What the engine says about itself before it is opened: name, version, salt, capabilities and
/// key format, read by the host through the ABI.
pub const INFO: EngineInfo = EngineInfo::new(
    ENGINE_NAME,
    env!("CARGO_PKG_VERSION"),
    EngineInfo::SIGNED_COOKIES_SALT,
    CAPABILITIES,
    KeyFormat::SignedPayload,
);

/// The `signed_cookies` engine: its session key is the signed session itself.
pub struct SignedCookiesEngine;

impl sessionkit_sdk::Engine for SignedCookiesEngine {
    type Store = SignedCookiesStore;

    fn info() -> EngineInfo {
        INFO
    }

    fn open(settings_json: &str) -> Result<Self::Store, StoreError> {
        SignedCookiesStore::open(&SignedCookiesConfig::from_settings_json(settings_json)?)
    }
}

// The library's one exported symbol: the root module the host loads.
sessionkit_sdk::export_engine!(SignedCookiesEngine);

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
