#![doc = include_str!("../README.md")]

use std::sync::Arc;

pub mod backend;
pub mod config;
pub mod key;
pub mod locmem;
pub mod memcached;
pub mod pickle;
pub mod redis_backend;
pub mod redis_cluster;
mod redis_ready;
pub mod redis_sentinel;
pub mod redis_topology;
pub mod store;

pub use backend::{
    CacheBackend, CacheError, CacheOp, CacheReply, CacheStep, CacheWait, CompareAndSet, DynBackend,
    ValueWithTtl,
};
pub use config::{CacheConfig, ConfigError, Location};
pub use key::KeyFunction;
pub use locmem::{LocMemBackend, LocMemOptions};
pub use memcached::{MemcachedBackend, MemcachedOptions, MemcachedServer};
pub use redis_backend::{RedisBackend, RedisConnection, RedisOptions};
pub use redis_cluster::ClusterOptions;
pub use redis_topology::{ClusterLocation, RedisReplicas, SentinelLocation};
/// The clock every store and backend of this crate reads time from (the codec's one `Clock`).
pub use sessionkit_codec::clock::{self, Clock, HostClock, ManualClock, SystemClock};
pub use store::{CACHE_SESSION_PREFIX, CACHED_DB_SESSION_PREFIX, CacheStore, LOG_TARGET};

/// Opens the backend a cache alias configures.
///
/// This is the one place that maps a [`Location`] to a backend: a new backend is a new module
/// implementing [`CacheBackend`] plus one arm here. A Redis backend does not connect here: its
/// connections open on first use, so a server that is down only fails the calls made while it
/// is down (call [`RedisBackend::ping`] to check at start-up). A memcached backend resolves its
/// host names here but connects on first use too ([`MemcachedBackend::ping`]).
///
/// # Errors
///
/// [`ConfigError::BadRedisUrl`] for a Redis location the client cannot parse;
/// [`ConfigError::BadMemcachedLocation`] for memcached servers that cannot be used (a Unix
/// socket, a host name that does not resolve).
pub fn connect(config: &CacheConfig, clock: Arc<dyn Clock>) -> Result<DynBackend, ConfigError> {
    match &config.location {
        Location::LocMem { name } => {
            Ok(Arc::new(LocMemBackend::shared(name, config.locmem, clock)))
        }
        Location::Redis { urls } => {
            let open = |url: &str| {
                RedisBackend::open(url, config.redis).map_err(|reason| ConfigError::BadRedisUrl {
                    alias: config.alias.clone(),
                    location: sessionkit_codec::redact_url(url),
                    reason,
                })
            };
            // The parser never yields an empty list; the first URL is the primary.
            let url = urls.first().map(String::as_str).unwrap_or_default();
            let primary = open(url)?;
            if urls.len() == 1 {
                return Ok(Arc::new(primary));
            }
            let replicas = urls[1..]
                .iter()
                .map(|url| open(url))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(RedisReplicas::new(
                primary,
                replicas,
                config.redis_topology.read_from_replicas.unwrap_or(true),
            )))
        }
        Location::RedisCluster(location) => {
            let cluster = ClusterOptions {
                read_from_replicas: config.redis_topology.read_from_replicas.unwrap_or(false),
            };
            let backend =
                RedisBackend::open_cluster(location, config.redis, cluster).map_err(|reason| {
                    ConfigError::BadRedisUrl {
                        alias: config.alias.clone(),
                        location: location.redacted(),
                        reason,
                    }
                })?;
            Ok(Arc::new(backend))
        }
        Location::RedisSentinel(location) => {
            let backend =
                RedisBackend::open_sentinel(location, config.redis).map_err(|reason| {
                    ConfigError::BadRedisUrl {
                        alias: config.alias.clone(),
                        location: location.redacted(),
                        reason,
                    }
                })?;
            Ok(Arc::new(backend))
        }
        Location::Memcached { servers } => {
            let backend = MemcachedBackend::open(servers, config.memcached).map_err(|reason| {
                ConfigError::BadMemcachedLocation {
                    alias: config.alias.clone(),
                    location: servers
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(","),
                    reason,
                }
            })?;
            Ok(Arc::new(backend))
        }
    }
}

/// Opens a session store on the cache alias `config`, under `session_prefix`
/// ([`CACHE_SESSION_PREFIX`] or [`CACHED_DB_SESSION_PREFIX`]), judging expiry by `clock`.
///
/// # Errors
///
/// As [`connect`].
pub fn open_store(
    config: &CacheConfig,
    session_prefix: &str,
    clock: Arc<dyn Clock>,
) -> Result<CacheStore<DynBackend>, ConfigError> {
    Ok(CacheStore::new(
        connect(config, Arc::clone(&clock))?,
        config.key_function.clone(),
        session_prefix,
        clock,
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sessionkit_sdk::{SessionRecord, SessionStore, SessionWrite, Timestamp};

    use super::*;
    use crate::clock::SystemClock;

    fn config(location: &str) -> CacheConfig {
        CacheConfig::from_settings_json(
            &json!({"CACHES": {"default": {"LOCATION": location}}}).to_string(),
        )
        .unwrap()
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
    fn stores_opened_on_one_locmem_location_share_sessions() {
        let first = open_store(
            &config("locmem://lib-test-shared"),
            CACHE_SESSION_PREFIX,
            Arc::new(SystemClock),
        )
        .unwrap();
        let second = open_store(
            &config("locmem://lib-test-shared"),
            CACHE_SESSION_PREFIX,
            Arc::new(SystemClock),
        )
        .unwrap();
        first.create(write("sharedsessionkey0001")).unwrap();
        assert!(second.load("sharedsessionkey0001").unwrap().is_some());
    }

    #[test]
    fn stores_opened_on_different_locmem_locations_are_separate() {
        let first = open_store(
            &config("locmem://lib-test-a"),
            CACHE_SESSION_PREFIX,
            Arc::new(SystemClock),
        )
        .unwrap();
        let second = open_store(
            &config("locmem://lib-test-b"),
            CACHE_SESSION_PREFIX,
            Arc::new(SystemClock),
        )
        .unwrap();
        first.create(write("separatesessionkey01")).unwrap();
        assert!(second.load("separatesessionkey01").unwrap().is_none());
    }

    #[test]
    fn redis_location_opens_a_redis_backend_without_connecting() {
        // Nothing listens on port 1: opening still works, the first call fails.
        let store = open_store(
            &config("redis://127.0.0.1:1/0"),
            CACHE_SESSION_PREFIX,
            Arc::new(SystemClock),
        )
        .unwrap();
        let error = store.load("redislocationkey0001").unwrap_err();
        assert_eq!(error.kind, sessionkit_sdk::ErrorKind::Unavailable);
        assert!(error.message.contains("redis://127.0.0.1:1/0"), "{error}");
    }

    #[test]
    fn stores_report_their_backends_capabilities() {
        use sessionkit_sdk::Capabilities;
        let locmem = open_store(
            &config("locmem://lib-test-caps"),
            CACHE_SESSION_PREFIX,
            Arc::new(SystemClock),
        )
        .unwrap();
        assert_eq!(locmem.capabilities(), Capabilities::NON_BLOCKING);
        let redis = open_store(
            &config("redis://127.0.0.1:1/0"),
            CACHE_SESSION_PREFIX,
            Arc::new(SystemClock),
        )
        .unwrap();
        // One server over TCP: calls that do not block too (contract 0.4).
        assert_eq!(
            redis.capabilities(),
            Capabilities::SHARED_BETWEEN_PROCESSES
                | Capabilities::DECODED_DATA
                | Capabilities::READINESS_CALLS
        );
    }

    #[test]
    fn memcached_location_opens_a_shared_backend_without_connecting() {
        // Nothing listens on port 1: opening still works, the first call fails.
        let store = open_store(
            &config("memcached://127.0.0.1:1"),
            CACHE_SESSION_PREFIX,
            Arc::new(SystemClock),
        )
        .unwrap();
        assert_eq!(
            store.capabilities(),
            sessionkit_sdk::Capabilities::SHARED_BETWEEN_PROCESSES
                | sessionkit_sdk::Capabilities::DECODED_DATA
        );
        let error = store.load("memcachedlocationkey01").unwrap_err();
        assert_eq!(error.kind, sessionkit_sdk::ErrorKind::Unavailable);
        assert!(error.message.contains("127.0.0.1:1"), "{error}");
        assert!(!error.message.contains("memcachedlocationkey01"), "{error}");
    }

    #[test]
    fn memcached_unix_socket_is_a_config_error_at_open() {
        let config = CacheConfig::from_settings_json(
            &json!({"CACHES": {"default": {
                "BACKEND": config::MEMCACHED_BACKEND, "LOCATION": "unix:/run/memcached.sock"
            }}})
            .to_string(),
        )
        .unwrap();
        let error = connect(&config, Arc::new(SystemClock))
            .err()
            .expect("unix sockets are refused");
        assert!(
            matches!(error, ConfigError::BadMemcachedLocation { .. }),
            "{error}"
        );
        assert!(error.to_string().contains("TCP only"), "{error}");
    }

    #[test]
    fn unusable_redis_url_is_a_config_error_without_the_password() {
        let error = connect(
            &config("redis://:hunter2@host:notaport/0"),
            Arc::new(SystemClock),
        )
        .err()
        .expect("bad port");
        assert!(matches!(error, ConfigError::BadRedisUrl { .. }), "{error}");
        let store_error = sessionkit_sdk::StoreError::from(error);
        assert_eq!(store_error.kind, sessionkit_sdk::ErrorKind::Config);
        assert!(
            store_error
                .message
                .contains("CACHES['default']['LOCATION']"),
            "{store_error}"
        );
        assert!(!store_error.message.contains("hunter2"), "{store_error}");
    }
}
