#![doc = include_str!("../README.md")]

pub mod config;
pub mod store;

use sessionkit_sdk::{Capabilities, EngineInfo, Host, KeyFormat, StoreError};

pub use config::TemplateConfig;
pub use store::TemplateStore;

/// The short name `SESSION_ENGINE` uses for this engine. It must match the package name
/// (`sessionkit-engine-<name>` builds `libsessionkit_engine_<name>.so`): the host checks that a
/// library found by its short name reports that same name.
pub const ENGINE_NAME: &str = "template";
/// What every store of the engine can do: `delete` revokes a session; expired sessions wait for
/// `clear_expired`. In memory: not persistent, not shared between processes. (An in-memory store
/// could also declare `NON_BLOCKING`; a store that does I/O must not, so the template leaves it
/// out.)
pub const CAPABILITIES: Capabilities = Capabilities::SERVER_SIDE_INVALIDATION
    .union(Capabilities::CLEAR_EXPIRED)
    .union(Capabilities::CONDITIONAL_SAVE);
/// What the engine says about itself before it is opened: name, version, the salt the host signs
/// `session_data` with (Django's, as for every server-side engine), capabilities and key format.
pub const INFO: EngineInfo = EngineInfo::new(
    ENGINE_NAME,
    env!("CARGO_PKG_VERSION"),
    EngineInfo::SESSION_STORE_SALT,
    CAPABILITIES,
    KeyFormat::DjangoSessionKey,
);

/// The template engine: its description and its constructor.
pub struct TemplateEngine;

impl sessionkit_sdk::Engine for TemplateEngine {
    type Store = TemplateStore;

    fn info() -> EngineInfo {
        INFO
    }

    fn open(settings_json: &str) -> Result<Self::Store, StoreError> {
        TemplateStore::open(&TemplateConfig::from_settings_json(settings_json)?)
    }

    // The host lends its clock: judge expiry by it (contract 0.2; an older host calls `open`).
    fn open_with_host(settings_json: &str, host: &Host) -> Result<Self::Store, StoreError> {
        TemplateStore::open_with_host(&TemplateConfig::from_settings_json(settings_json)?, host)
    }
}

// The library's one exported symbol: the root module the host loads. Once per engine library.
sessionkit_sdk::export_engine!(TemplateEngine);

#[cfg(test)]
mod tests {
    use sessionkit_sdk::{
        Engine, ErrorKind,
        abi_stable::std_types::{RResult, RStr},
    };

    use super::*;

    #[test]
    fn info_describes_the_template_engine() {
        let info = TemplateEngine::info();
        assert_eq!(info.name.as_str(), "template");
        assert_eq!(info.salt.as_str(), "django.contrib.sessions.SessionStore");
        assert_eq!(info.key_format, KeyFormat::DjangoSessionKey);
        assert_eq!(
            info.capabilities,
            Capabilities::SERVER_SIDE_INVALIDATION
                | Capabilities::CLEAR_EXPIRED
                | Capabilities::CONDITIONAL_SAVE
        );
    }

    #[test]
    fn each_open_gets_its_own_empty_store() {
        let first = TemplateEngine::open("{}").unwrap();
        let second = TemplateEngine::open("{}").unwrap();
        let write = sessionkit_sdk::SessionWrite::new(
            sessionkit_sdk::SessionRecord::new(
                "openseparatelykey000001",
                "d",
                sessionkit_sdk::Timestamp::from_micros(i64::MAX),
            ),
            "{}",
        );
        sessionkit_sdk::SessionStore::create(&first, write).unwrap();
        assert!(second.is_empty());
    }

    #[test]
    fn exported_root_module_reports_bad_settings_as_config_errors() {
        let module = sessionkit_engine_root_module();
        assert_eq!(module.info()().name.as_str(), "template");
        let result = module.open()(RStr::from_str(r#"{"SESSION_TEMPLATE_MAX_SESSIONS": "x"}"#));
        assert!(matches!(result, RResult::RErr(e) if e.kind == ErrorKind::Config));
        assert!(matches!(
            module.open()(RStr::from_str("{}")),
            RResult::ROk(_)
        ));
    }
}
