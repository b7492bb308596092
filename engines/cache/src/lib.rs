#![doc = include_str!("../README.md")]

pub mod config;
pub mod store;

use std::sync::Arc;

use sessionkit_cache::{HostClock, SystemClock};
use sessionkit_sdk::{Capabilities, EngineInfo, Host, KeyFormat, StoreError};

pub use config::CacheConfig;
pub use store::CacheStore;

/// The name `SESSION_ENGINE` uses for this engine (Django's `django.contrib.sessions.backends.cache`).
pub const ENGINE_NAME: &str = "cache";
/// What every location offers. Capabilities are declared before `open` sees the settings, so
/// they are the ones every location has: the in-process cache neither survives a restart nor is
/// seen by other processes, and both backends compare-and-set atomically (`CONDITIONAL_SAVE`).
/// An opened store adds what its location offers (see the README).
pub const CAPABILITIES: Capabilities = Capabilities::SERVER_SIDE_INVALIDATION
    .union(Capabilities::EXPIRES_BY_ITSELF)
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

/// The `cache` engine: sessions in a cache, with Django's cache backend rules.
pub struct CacheEngine;

impl sessionkit_sdk::Engine for CacheEngine {
    type Store = CacheStore;

    fn info() -> EngineInfo {
        INFO
    }

    /// Opens on the system clock (a host of contract 0.1).
    fn open(settings_json: &str) -> Result<Self::Store, StoreError> {
        store::open(
            &CacheConfig::from_settings_json(settings_json)?,
            Arc::new(SystemClock),
        )
    }

    /// Opens on the host's clock, so a host that freezes time freezes expiry here too.
    fn open_with_host(settings_json: &str, host: &Host) -> Result<Self::Store, StoreError> {
        store::open(
            &CacheConfig::from_settings_json(settings_json)?,
            Arc::new(HostClock::new(host)),
        )
    }
}

// The library's one exported symbol: the root module the host loads.
sessionkit_sdk::export_engine!(CacheEngine);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sessionkit_sdk::{
        Engine, ErrorKind, SessionRecord, SessionStore, SessionWrite, Timestamp,
        abi_stable::std_types::{RResult, RStr},
    };

    use super::*;

    #[test]
    fn readme_lists_exactly_the_declared_capabilities() {
        sessionkit_testkit::check_readme_capabilities(
            include_str!("../README.md"),
            CAPABILITIES.names(),
        )
        .unwrap();
    }

    fn settings(location: &str) -> String {
        json!({"SECRET_KEY": "x", "CACHES": {"default": {"LOCATION": location}}}).to_string()
    }

    fn write(key: &str) -> SessionWrite {
        SessionWrite::new(
            SessionRecord::new(
                key,
                "data",
                Timestamp::from_micros(Timestamp::now().micros + 3_600_000_000),
            ),
            "{}",
        )
    }

    #[test]
    fn info_describes_the_cache_engine() {
        let info = CacheEngine::info();
        assert_eq!(info.name.as_str(), "cache");
        assert_eq!(info.salt.as_str(), "django.contrib.sessions.SessionStore");
        assert_eq!(info.key_format, KeyFormat::DjangoSessionKey);
        assert_eq!(
            info.capabilities,
            Capabilities::SERVER_SIDE_INVALIDATION
                | Capabilities::EXPIRES_BY_ITSELF
                | Capabilities::CONDITIONAL_SAVE
        );
        assert!(!info.capabilities.contains(Capabilities::PERSISTENT));
        assert!(
            !info
                .capabilities
                .contains(Capabilities::SHARED_BETWEEN_PROCESSES)
        );
        assert!(!info.capabilities.contains(Capabilities::CLEAR_EXPIRED));
    }

    /// A host whose clock stands still at `now`.
    #[derive(Clone)]
    struct FrozenHost {
        now: Timestamp,
    }

    impl sessionkit_sdk::FfiHost for FrozenHost {
        fn now(&self) -> Timestamp {
            self.now
        }
        fn max_level(&self) -> sessionkit_sdk::LogLevel {
            sessionkit_sdk::LogLevel::Error
        }
        fn log(&self, _: sessionkit_sdk::LogLevel, _: RStr<'_>, _: RStr<'_>) {}
    }

    fn frozen_host(now: Timestamp) -> Host {
        Host::new(sessionkit_sdk::HostBox::from_ptr(
            sessionkit_sdk::abi_stable::std_types::RArc::new(FrozenHost { now }),
            sessionkit_sdk::abi_stable::sabi_trait::TD_Opaque,
        ))
    }

    #[test]
    fn open_with_host_judges_expiry_by_the_hosts_clock() {
        const HOUR: i64 = 3_600_000_000;
        let real_now = Timestamp::now().micros;
        let json = settings("locmem://engine-test-host-clock");
        // The host's clock stands two hours back: a record that expired an hour ago by the
        // system clock is live for it, stored with an hour's TTL, and loads.
        let host = frozen_host(Timestamp::from_micros(real_now - 2 * HOUR));
        let store = CacheEngine::open_with_host(&json, &host).unwrap();
        let record = SessionRecord::new(
            "enginehostclockkey01",
            "data",
            Timestamp::from_micros(real_now - HOUR),
        );
        store
            .create(SessionWrite::new(record.clone(), "{}"))
            .unwrap();
        assert_eq!(store.load("enginehostclockkey01").unwrap(), Some(record));
        // The same entry, judged by the system clock, has expired.
        let system = CacheEngine::open(&json).unwrap();
        assert_eq!(system.load("enginehostclockkey01").unwrap(), None);
        // A host that says the record has expired sees it expired.
        let later = frozen_host(Timestamp::from_micros(real_now));
        let store = CacheEngine::open_with_host(&json, &later).unwrap();
        assert_eq!(store.load("enginehostclockkey01").unwrap(), None);
    }

    #[test]
    fn open_with_default_settings_gives_a_working_store() {
        let store = CacheEngine::open("{}").unwrap();
        store.create(write("enginedefaultkey0001")).unwrap();
        assert!(store.load("enginedefaultkey0001").unwrap().is_some());
        assert_eq!(
            store.cache_key("enginedefaultkey0001"),
            ":1:django.contrib.sessions.cacheenginedefaultkey0001"
        );
    }

    #[test]
    fn two_opens_of_one_location_share_sessions() {
        let first = CacheEngine::open(&settings("locmem://engine-test-shared")).unwrap();
        let second = CacheEngine::open(&settings("locmem://engine-test-shared")).unwrap();
        first.create(write("enginesharedkey00001")).unwrap();
        assert!(second.exists("enginesharedkey00001").unwrap());
        second.delete("enginesharedkey00001").unwrap();
        assert!(!first.exists("enginesharedkey00001").unwrap());
    }

    #[test]
    fn opens_of_different_locations_are_separate() {
        let first = CacheEngine::open(&settings("locmem://engine-test-left")).unwrap();
        let second = CacheEngine::open(&settings("locmem://engine-test-right")).unwrap();
        first.create(write("engineseparatekey001")).unwrap();
        assert!(!second.exists("engineseparatekey001").unwrap());
    }

    #[test]
    fn unknown_cache_alias_fails_open_with_a_config_error_naming_it() {
        let json = json!({"SESSION_CACHE_ALIAS": "nope"}).to_string();
        let error = CacheEngine::open(&json).err().expect("unknown alias");
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("'nope'"), "{error}");
    }

    #[test]
    fn redis_location_opens_and_an_unreachable_server_is_unavailable_not_a_hang() {
        // Nothing listens on port 1; connections open on first use.
        let store = CacheEngine::open(&settings("redis://127.0.0.1:1/0")).unwrap();
        let error = store.load("engineredisunreach01").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert!(error.message.contains("cannot connect to Redis"), "{error}");
    }

    #[test]
    fn unusable_redis_url_fails_open_with_a_config_error() {
        let error = CacheEngine::open(&settings("redis://host:notaport/0"))
            .err()
            .expect("bad port");
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(
            error.message.contains("CACHES['default']['LOCATION']"),
            "{error}"
        );
    }

    #[test]
    fn exported_root_module_opens_the_engine_through_the_ffi_types() {
        let module = sessionkit_engine_root_module();
        assert_eq!(module.info()().name.as_str(), "cache");
        let json = settings("locmem://engine-test-ffi");
        let store = match module.open()(RStr::from_str(&json)) {
            RResult::ROk(store) => store,
            RResult::RErr(error) => panic!("open failed: {error}"),
        };
        assert!(store.create(write("engineffikey00000001")).is_ok());
        assert!(matches!(
            store.exists(RStr::from_str("engineffikey00000001")),
            RResult::ROk(true)
        ));
        let bad = settings("ftp://x");
        assert!(
            matches!(module.open()(RStr::from_str(&bad)), RResult::RErr(e) if e.kind == ErrorKind::Config)
        );
    }
}
