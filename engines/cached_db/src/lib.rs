#![doc = include_str!("../README.md")]

pub mod config;
pub mod store;
mod suspects;

use std::sync::Arc;

use sessionkit_cache::clock::HostClock;
use sessionkit_sdk::{Capabilities, EngineInfo, Host, KeyFormat, StoreError};

pub use config::CachedDbConfig;
pub use store::{CachedDbStore, LOG_TARGET};

/// The name `SESSION_ENGINE` uses for this engine (Django's `django.contrib.sessions.backends.cached_db`).
pub const ENGINE_NAME: &str = "cached_db";
/// What the engine offers: the database's durability and sharing, its `clear_expired`, and
/// revocation by `delete`.
pub const CAPABILITIES: Capabilities = Capabilities::SERVER_SIDE_INVALIDATION
    .union(Capabilities::CLEAR_EXPIRED)
    .union(Capabilities::PERSISTENT)
    .union(Capabilities::SHARED_BETWEEN_PROCESSES);
/// What the engine says about itself before it is opened: name, version, salt, capabilities and
/// key format, read by the host through the ABI.
pub const INFO: EngineInfo = EngineInfo::new(
    ENGINE_NAME,
    env!("CARGO_PKG_VERSION"),
    EngineInfo::SESSION_STORE_SALT,
    CAPABILITIES,
    KeyFormat::DjangoSessionKey,
);

/// The `cached_db` engine: Django's table, with a write-through cache in front.
pub struct CachedDbEngine;

impl sessionkit_sdk::Engine for CachedDbEngine {
    type Store = CachedDbStore;

    fn info() -> EngineInfo {
        INFO
    }

    fn open(settings_json: &str) -> Result<Self::Store, StoreError> {
        CachedDbStore::open(&CachedDbConfig::from_settings_json(settings_json)?)
    }

    /// Both halves judge expiry by the host's clock.
    fn open_with_host(settings_json: &str, host: &Host) -> Result<Self::Store, StoreError> {
        CachedDbStore::open_with_clock(
            &CachedDbConfig::from_settings_json(settings_json)?,
            Arc::new(HostClock::new(host)),
        )
    }
}

// The library's one exported symbol: the root module the host loads.
sessionkit_sdk::export_engine!(CachedDbEngine);

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

    fn settings(dir: &std::path::Path, location: &str) -> String {
        json!({
            "SECRET_KEY": "x",
            "SESSION_DB_URL": format!("sqlite://{}", dir.join("s.sqlite3").display()),
            "CACHES": {"default": {"LOCATION": location}}
        })
        .to_string()
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
    fn info_describes_the_cached_db_engine() {
        let info = CachedDbEngine::info();
        assert_eq!(info.name.as_str(), "cached_db");
        assert_eq!(info.salt.as_str(), "django.contrib.sessions.SessionStore");
        assert_eq!(info.key_format, KeyFormat::DjangoSessionKey);
        assert_eq!(
            info.capabilities,
            Capabilities::SERVER_SIDE_INVALIDATION
                | Capabilities::CLEAR_EXPIRED
                | Capabilities::PERSISTENT
                | Capabilities::SHARED_BETWEEN_PROCESSES
        );
        assert!(!info.capabilities.contains(Capabilities::EXPIRES_BY_ITSELF));
        assert!(!info.capabilities.contains(Capabilities::ACCOUNT_INDEX));
    }

    #[test]
    fn open_uses_the_database_and_djangos_cached_db_cache_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let store = CachedDbEngine::open(&settings(dir.path(), "locmem://lib-open")).unwrap();
        store.create(write("libopenkey0000000001")).unwrap();
        assert_eq!(
            store.cache().cache_key("libopenkey0000000001"),
            ":1:django.contrib.sessions.cached_dblibopenkey0000000001"
        );
        assert!(store.db().load("libopenkey0000000001").unwrap().is_some());
        assert!(
            store
                .cache()
                .load("libopenkey0000000001")
                .unwrap()
                .is_some()
        );
    }

    /// A host whose clock stands still at `.0`.
    #[derive(Clone)]
    struct FrozenHost(Timestamp);

    impl sessionkit_sdk::FfiHost for FrozenHost {
        fn now(&self) -> Timestamp {
            self.0
        }
        fn max_level(&self) -> sessionkit_sdk::LogLevel {
            sessionkit_sdk::LogLevel::Error
        }
        fn log(&self, _: sessionkit_sdk::LogLevel, _: RStr<'_>, _: RStr<'_>) {}
    }

    #[test]
    fn open_with_host_judges_expiry_by_the_hosts_clock_in_both_halves() {
        let dir = tempfile::tempdir().unwrap();
        let hour = 3_600_000_000;
        let day_ago = Timestamp::from_micros(Timestamp::now().micros - 24 * hour);
        let host = Host::new(sessionkit_sdk::HostBox::from_ptr(
            abi_stable::std_types::RArc::new(FrozenHost(day_ago)),
            abi_stable::sabi_trait::TD_Opaque,
        ));
        let json = settings(dir.path(), "locmem://lib-host-clock");
        let store = CachedDbEngine::open_with_host(&json, &host).unwrap();
        // Expired an hour ago by the wall clock, but the host's clock says a day ago.
        let key = "libhostclockkey00001";
        let record = SessionRecord::new(
            key,
            "data",
            Timestamp::from_micros(Timestamp::now().micros - hour),
        );
        store.create(SessionWrite::new(record, "{}")).unwrap();
        assert!(store.db().load(key).unwrap().is_some(), "the database half");
        assert!(store.cache().load(key).unwrap().is_some(), "the cache half");
        assert!(store.load(key).unwrap().is_some());
        // The same row through a store on the system clock is expired.
        let system = CachedDbEngine::open(&settings(dir.path(), "locmem://lib-sys-clock")).unwrap();
        assert_eq!(system.load(key).unwrap(), None);
    }

    #[test]
    fn an_entry_expired_by_the_stores_clock_does_not_outlive_its_cleared_row() {
        // The conformance case `clear_expired_judges_sessions_without_expiry_by_the_cookie_age`:
        // a record saved while the host's clock stood in the past is cached with a TTL (real
        // time) that outlasts its expire_date once the clock is set back to now.
        let dir = tempfile::tempdir().unwrap();
        let real_now = chrono::Utc::now();
        let clock = Arc::new(sessionkit_cache::ManualClock::new(
            real_now - chrono::TimeDelta::days(1),
        ));
        let config =
            CachedDbConfig::from_settings_json(&settings(dir.path(), "locmem://lib-clock-moves"))
                .unwrap();
        let store = CachedDbStore::open_with_clock(&config, clock.clone()).unwrap();
        let key = "libclockmoveskey0001";
        let ten_seconds_ago = Timestamp::from_micros(Timestamp::now().micros - 10_000_000);
        store
            .create(SessionWrite::new(
                SessionRecord::new(key, "data", ten_seconds_ago),
                "{}",
            ))
            .unwrap();
        assert!(
            store.exists(key).unwrap(),
            "live while the clock is a day back"
        );
        clock.set(real_now);
        assert_eq!(store.clear_expired().unwrap(), 1);
        assert!(!store.exists(key).unwrap());
        assert_eq!(store.load(key).unwrap(), None);
    }

    #[test]
    fn an_opened_store_adds_only_the_databases_conditional_save_even_over_locmem() {
        // SQLite does I/O, so a LocMem cache in front does not make the store non-blocking.
        let dir = tempfile::tempdir().unwrap();
        let store = CachedDbEngine::open(&settings(dir.path(), "locmem://lib-caps")).unwrap();
        let conditional = Capabilities::CONDITIONAL_SAVE;
        let expected = if store.db().capabilities().contains(conditional) {
            conditional
        } else {
            Capabilities::NONE
        };
        assert_eq!(store.capabilities(), expected);
    }

    #[test]
    fn account_index_is_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let store = CachedDbEngine::open(&settings(dir.path(), "locmem://lib-acct")).unwrap();
        assert_eq!(
            store.sessions_of_account(1).unwrap_err().kind,
            ErrorKind::Unsupported
        );
        assert_eq!(
            store.delete_sessions_of_account(1, None).unwrap_err().kind,
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn bad_settings_fail_open_with_a_config_error() {
        let error = CachedDbEngine::open(&json!({"SESSION_CACHE_ALIAS": "nope"}).to_string())
            .expect_err("unknown alias");
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("'nope'"), "{error}");
    }

    #[test]
    fn exported_root_module_opens_the_engine_through_the_ffi_types() {
        let dir = tempfile::tempdir().unwrap();
        let module = sessionkit_engine_root_module();
        assert_eq!(module.info()().name.as_str(), "cached_db");
        let json = settings(dir.path(), "locmem://lib-ffi");
        let store = match module.open()(RStr::from_str(&json)) {
            RResult::ROk(store) => store,
            RResult::RErr(error) => panic!("open failed: {error}"),
        };
        assert!(store.create(write("libffikey00000000001")).is_ok());
        assert!(matches!(
            store.exists(RStr::from_str("libffikey00000000001")),
            RResult::ROk(true)
        ));
    }
}
