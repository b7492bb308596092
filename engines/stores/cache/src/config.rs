//! The cache alias a session store uses, parsed from Django's `CACHES` and
//! `SESSION_CACHE_ALIAS` settings.

use std::{fmt, time::Duration};

use serde_json::{Map, Value};
use sessionkit_codec::redact_url;

use crate::{
    key::KeyFunction,
    locmem::{DEFAULT_CULL_FREQUENCY, DEFAULT_MAX_ENTRIES, LocMemOptions},
    memcached::{MemcachedOptions, MemcachedServer},
    redis_backend::RedisOptions,
    redis_topology::{ClusterLocation, SentinelLocation, TopologyOptions, is_topology_location},
};

/// Django's default `SESSION_CACHE_ALIAS`.
pub const DEFAULT_CACHE_ALIAS: &str = "default";
/// Django's default cache `TIMEOUT` in seconds (sessions always pass their own).
pub const DEFAULT_TIMEOUT: i64 = 300;
/// Django's `BACKEND` path for the in-process cache.
pub const LOCMEM_BACKEND: &str = "django.core.cache.backends.locmem.LocMemCache";
/// Django's `BACKEND` path for the Redis cache.
pub const REDIS_BACKEND: &str = "django.core.cache.backends.redis.RedisCache";
/// Django's `BACKEND` path for the memcached cache (pymemcache's `HashClient`).
pub const MEMCACHED_BACKEND: &str = "django.core.cache.backends.memcached.PyMemcacheCache";
/// Django's default `KEY_FUNCTION`, the only one sessionkit implements.
pub const DEFAULT_KEY_FUNCTION: &str = "django.core.cache.backends.base.default_key_func";

/// One cache alias, resolved and checked: where the cache is and how keys are laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// The alias (`SESSION_CACHE_ALIAS`), for messages.
    pub alias: String,
    /// Which backend, and where.
    pub location: Location,
    /// `KEY_PREFIX` and `VERSION`.
    pub key_function: KeyFunction,
    /// `TIMEOUT` in seconds (`None`: never expires). Parsed and checked like Django does; the
    /// session stores do not use it, because every session write carries its own TTL.
    pub default_timeout: Option<i64>,
    /// `OPTIONS` of the in-process backend (`MAX_ENTRIES`, `CULL_FREQUENCY`).
    pub locmem: LocMemOptions,
    /// `OPTIONS` of the Redis backend (`socket_connect_timeout`, `socket_timeout`,
    /// `max_connections`, `pool_timeout`); defaults unless the location is Redis.
    pub redis: RedisOptions,
    /// `OPTIONS["read_from_replicas"]` of a Redis list, cluster or Sentinel location.
    pub redis_topology: TopologyOptions,
    /// `OPTIONS` of the memcached backend (`connect_timeout`, `timeout`, `max_pool_size`);
    /// defaults unless the location is memcached.
    pub memcached: MemcachedOptions,
}

/// Which backend a cache alias uses, from its `LOCATION` (and `BACKEND`, if given).
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// `locmem://` or `locmem://<name>` (or a bare name with Django's LocMem `BACKEND`): the
    /// in-process cache registered under `name` (empty for `locmem://`).
    LocMem {
        /// The LocMem store's name; caches with the same name share entries.
        name: String,
    },
    /// `redis://…`, `rediss://…` (TLS) or `unix://…` URLs: the Redis backend. Django allows a
    /// list: the first server takes writes, the others serve reads (see
    /// [`RedisReplicas`](crate::RedisReplicas)).
    Redis {
        /// The server URLs; may contain a password.
        urls: Vec<String>,
    },
    /// `redis+cluster://host:port,host:port` (`rediss+cluster://` for TLS): a Redis Cluster
    /// reached through these seed nodes.
    RedisCluster(ClusterLocation),
    /// `redis+sentinel://host:port,host:port/service_name/db`: the master these Sentinels name.
    RedisSentinel(SentinelLocation),
    /// Django's `PyMemcacheCache` `LOCATION` (`host:port`, `host`, `unix:/path`, a list, or a
    /// `;`/`,`-separated string) or `memcached://host:port[,host:port…]` (or a list of those):
    /// the memcached backend, keys spread over the servers as pymemcache spreads them.
    Memcached {
        /// The servers, in `LOCATION` order (the order does not change which key goes where).
        servers: Vec<MemcachedServer>,
    },
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LocMem { name } => f.debug_struct("LocMem").field("name", name).finish(),
            Self::Redis { urls } => {
                let redacted: Vec<String> = urls.iter().map(|url| redact_url(url)).collect();
                f.debug_struct("Redis").field("urls", &redacted).finish()
            }
            Self::RedisCluster(location) => f.debug_tuple("RedisCluster").field(location).finish(),
            Self::RedisSentinel(location) => {
                f.debug_tuple("RedisSentinel").field(location).finish()
            }
            Self::Memcached { servers } => {
                let servers: Vec<String> = servers.iter().map(ToString::to_string).collect();
                f.debug_struct("Memcached")
                    .field("servers", &servers)
                    .finish()
            }
        }
    }
}

/// A cache setting that is missing, mistyped or names something sessionkit cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The settings handed to the engine are not a JSON object.
    #[error("the engine settings are not a JSON object: {0}")]
    Json(String),
    /// A setting has the wrong type or an out-of-range value.
    #[error("{setting} must be {expected}, not {found}")]
    BadValue {
        /// The setting, spelled as in Django (`CACHES['default']['VERSION']`).
        setting: String,
        /// What it must be.
        expected: &'static str,
        /// What it was.
        found: String,
    },
    /// `SESSION_CACHE_ALIAS` names an alias `CACHES` does not define (Django's
    /// `InvalidCacheBackendError`).
    #[error(
        "SESSION_CACHE_ALIAS '{alias}' is not configured in CACHES (configured aliases: {})",
        list(configured)
    )]
    UnknownAlias {
        /// The alias asked for.
        alias: String,
        /// The aliases `CACHES` defines.
        configured: Vec<String>,
    },
    /// `BACKEND` names a Django cache backend sessionkit does not implement.
    #[error(
        "CACHES['{alias}']['BACKEND'] '{backend}' is not supported (supported: {LOCMEM_BACKEND}, {REDIS_BACKEND}, {MEMCACHED_BACKEND})"
    )]
    UnsupportedBackend {
        /// The alias.
        alias: String,
        /// The `BACKEND` value.
        backend: String,
    },
    /// `LOCATION` names a kind of cache sessionkit does not implement.
    #[error(
        "CACHES['{alias}']['LOCATION'] '{location}' is not supported (use 'locmem://', 'locmem://<name>', 'redis://…', 'rediss://…', 'unix://…', 'redis+cluster://…', 'redis+sentinel://…' or 'memcached://host:port')"
    )]
    UnsupportedLocation {
        /// The alias.
        alias: String,
        /// The `LOCATION` value, with any password removed.
        location: String,
    },
    /// `KEY_FUNCTION` names a Python function sessionkit cannot call.
    #[error(
        "CACHES['{alias}']['KEY_FUNCTION'] '{function}' is not supported: only Django's default key function ({{KEY_PREFIX}}:{{VERSION}}:{{key}}) is implemented"
    )]
    UnsupportedKeyFunction {
        /// The alias.
        alias: String,
        /// The `KEY_FUNCTION` value.
        function: String,
    },
    /// `LOCATION` looks like a Redis URL but the Redis client cannot use it.
    #[error("CACHES['{alias}']['LOCATION'] '{location}' is not a usable Redis URL: {reason}")]
    BadRedisUrl {
        /// The alias.
        alias: String,
        /// The `LOCATION` value, with any password removed.
        location: String,
        /// Why the client refused it.
        reason: String,
    },
    /// `LOCATION` names memcached servers that cannot be used (a bad port, a Unix socket, a
    /// host name that does not resolve).
    #[error(
        "CACHES['{alias}']['LOCATION'] '{location}' is not a usable memcached location: {reason}"
    )]
    BadMemcachedLocation {
        /// The alias.
        alias: String,
        /// The `LOCATION` value, with any password removed.
        location: String,
        /// Why it cannot be used.
        reason: String,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

impl From<ConfigError> for sessionkit_sdk::StoreError {
    fn from(error: ConfigError) -> Self {
        Self::config(error.to_string())
    }
}

impl CacheConfig {
    /// The alias named by `SESSION_CACHE_ALIAS` in the engine settings JSON (see
    /// [`CacheConfig::from_settings`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Json`] when `json` is not a JSON object; otherwise as
    /// [`CacheConfig::from_settings`].
    pub fn from_settings_json(json: &str) -> Result<Self, ConfigError> {
        let value: Value =
            serde_json::from_str(json).map_err(|error| ConfigError::Json(error.to_string()))?;
        match value {
            Value::Object(settings) => Self::from_settings(&settings),
            other => Err(ConfigError::Json(format!("found {}", describe(&other)))),
        }
    }

    /// The alias named by `SESSION_CACHE_ALIAS` (default `"default"`) in `CACHES` (default
    /// `{"default": {"LOCATION": "locmem://"}}`).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting that is wrong, or the alias that is not configured.
    pub fn from_settings(settings: &Map<String, Value>) -> Result<Self, ConfigError> {
        let alias = match settings.get("SESSION_CACHE_ALIAS") {
            None | Some(Value::Null) => DEFAULT_CACHE_ALIAS.to_owned(),
            Some(Value::String(alias)) => alias.clone(),
            Some(other) => return Err(bad("SESSION_CACHE_ALIAS".into(), "a string", other)),
        };
        match settings.get("CACHES") {
            None | Some(Value::Null) => {
                let mut caches = Map::new();
                caches.insert(DEFAULT_CACHE_ALIAS.into(), default_alias());
                Self::from_caches(&caches, &alias)
            }
            Some(Value::Object(caches)) => Self::from_caches(caches, &alias),
            Some(other) => Err(bad("CACHES".into(), "an object of cache aliases", other)),
        }
    }

    /// The alias `alias` of a `CACHES` object.
    ///
    /// # Errors
    ///
    /// [`ConfigError::UnknownAlias`] listing the configured aliases, or a [`ConfigError`]
    /// naming the alias's setting that is wrong.
    pub fn from_caches(caches: &Map<String, Value>, alias: &str) -> Result<Self, ConfigError> {
        let Some(entry) = caches.get(alias) else {
            return Err(ConfigError::UnknownAlias {
                alias: alias.to_owned(),
                configured: caches.keys().cloned().collect(),
            });
        };
        let Value::Object(entry) = entry else {
            return Err(bad(format!("CACHES['{alias}']"), "an object", entry));
        };
        let setting = |name: &str| format!("CACHES['{alias}']['{name}']");

        let backend = match entry.get("BACKEND") {
            None | Some(Value::Null) => None,
            Some(Value::String(backend)) => Some(backend.as_str()),
            Some(other) => return Err(bad(setting("BACKEND"), "a string", other)),
        };
        let location = parse_location(alias, backend, entry.get("LOCATION"))?;

        match entry.get("KEY_FUNCTION") {
            None | Some(Value::Null) => {}
            Some(Value::String(function)) if function == DEFAULT_KEY_FUNCTION => {}
            Some(Value::String(function)) => {
                return Err(ConfigError::UnsupportedKeyFunction {
                    alias: alias.to_owned(),
                    function: function.clone(),
                });
            }
            Some(other) => return Err(bad(setting("KEY_FUNCTION"), "a string", other)),
        }
        let key_prefix = match entry.get("KEY_PREFIX") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(prefix)) => prefix.clone(),
            Some(other) => return Err(bad(setting("KEY_PREFIX"), "a string", other)),
        };
        let version = match entry.get("VERSION") {
            None | Some(Value::Null) => 1,
            Some(value) => {
                integer(value).ok_or_else(|| bad(setting("VERSION"), "an integer", value))?
            }
        };
        let default_timeout = match entry.get("TIMEOUT") {
            None => Some(DEFAULT_TIMEOUT),
            Some(Value::Null) => None,
            Some(value) => Some(integer(value).ok_or_else(|| {
                bad(
                    setting("TIMEOUT"),
                    "an integer number of seconds or null",
                    value,
                )
            })?),
        };

        let options = match entry.get("OPTIONS") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(options)) => options.clone(),
            Some(other) => return Err(bad(setting("OPTIONS"), "an object", other)),
        };
        let option = |name: &str| format!("CACHES['{alias}']['OPTIONS']['{name}']");
        let max_entries = match options.get("MAX_ENTRIES") {
            None | Some(Value::Null) => DEFAULT_MAX_ENTRIES,
            Some(value) => integer(value)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad(option("MAX_ENTRIES"), "a positive integer", value))?,
        };
        let cull_frequency = match options.get("CULL_FREQUENCY") {
            None | Some(Value::Null) => DEFAULT_CULL_FREQUENCY,
            Some(value) => integer(value)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| bad(option("CULL_FREQUENCY"), "a non-negative integer", value))?,
        };

        let is_redis = matches!(
            location,
            Location::Redis { .. } | Location::RedisCluster(_) | Location::RedisSentinel(_)
        );
        let (redis, redis_topology) = if is_redis {
            (
                redis_options(&options, &option)?,
                topology_options(&options, &option)?,
            )
        } else {
            (RedisOptions::default(), TopologyOptions::default())
        };
        let memcached = match location {
            Location::Memcached { .. } => memcached_options(&options, &option)?,
            _ => MemcachedOptions::default(),
        };

        Ok(Self {
            alias: alias.to_owned(),
            location,
            key_function: KeyFunction::new(key_prefix, version),
            default_timeout,
            locmem: LocMemOptions {
                max_entries,
                cull_frequency,
            },
            redis,
            redis_topology,
            memcached,
        })
    }
}

/// `OPTIONS["read_from_replicas"]` (or `READ_FROM_REPLICAS`): a boolean, `null` for the form's
/// default. sessionkit's own option: Django's `RedisCache` passes unknown `OPTIONS` to redis-py,
/// which refuses them, so it belongs only in the `CACHES` sessionkit reads.
fn topology_options(
    options: &Map<String, Value>,
    option: &dyn Fn(&str) -> String,
) -> Result<TopologyOptions, ConfigError> {
    let found = ["read_from_replicas", "READ_FROM_REPLICAS"]
        .into_iter()
        .find_map(|name| options.get(name).map(|value| (name, value)));
    let read_from_replicas = match found {
        None | Some((_, Value::Null)) => None,
        Some((_, Value::Bool(read))) => Some(*read),
        Some((name, other)) => return Err(bad(option(name), "true, false or null", other)),
    };
    Ok(TopologyOptions { read_from_replicas })
}

/// A cluster or Sentinel `LOCATION` (one string; its hosts are comma-separated, so it is
/// recognised before any splitting of a `;`/`,`-separated `LOCATION`).
fn parse_topology_location(
    alias: &str,
    backend: Option<&str>,
    location: &str,
) -> Result<Location, ConfigError> {
    if backend.is_some_and(|backend| backend != REDIS_BACKEND) {
        return Err(ConfigError::UnsupportedLocation {
            alias: alias.to_owned(),
            location: redact_url(location),
        });
    }
    let bad_url = |reason: String| ConfigError::BadRedisUrl {
        alias: alias.to_owned(),
        location: redact_url(location),
        reason,
    };
    if location.contains("+cluster://") {
        ClusterLocation::parse(location)
            .map(Location::RedisCluster)
            .map_err(bad_url)
    } else {
        SentinelLocation::parse(location)
            .map(Location::RedisSentinel)
            .map_err(bad_url)
    }
}

/// The Redis backend's `OPTIONS`: redis-py's names (which Django's `RedisCache` passes to
/// the client), or django-redis's upper-case ones. Timeouts are seconds (fractions allowed);
/// `null` keeps the default, since every operation stays bounded.
fn redis_options(
    options: &Map<String, Value>,
    option: &dyn Fn(&str) -> String,
) -> Result<RedisOptions, ConfigError> {
    let defaults = RedisOptions::default();
    let lookup = |names: [&'static str; 2]| {
        names
            .into_iter()
            .find_map(|name| options.get(name).map(|value| (name, value)))
            .filter(|(_, value)| !value.is_null())
    };
    let seconds = |names: [&'static str; 2], default: Duration| match lookup(names) {
        None => Ok(default),
        Some((name, value)) => value
            .as_f64()
            .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))
            .filter(|secs| secs.is_finite() && *secs > 0.0 && *secs <= 3600.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                bad(
                    option(name),
                    "a number of seconds above 0 and at most 3600",
                    value,
                )
            }),
    };
    let max_connections = match lookup(["max_connections", "MAX_CONNECTIONS"]) {
        None => defaults.max_connections,
        Some((name, value)) => integer(value)
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| bad(option(name), "an integer from 1 to 10000", value))?,
    };
    Ok(RedisOptions {
        connect_timeout: seconds(
            ["socket_connect_timeout", "SOCKET_CONNECT_TIMEOUT"],
            defaults.connect_timeout,
        )?,
        socket_timeout: seconds(
            ["socket_timeout", "SOCKET_TIMEOUT"],
            defaults.socket_timeout,
        )?,
        max_connections,
        pool_timeout: seconds(["pool_timeout", "POOL_TIMEOUT"], defaults.pool_timeout)?,
    })
}

/// `{"LOCATION": "locmem://"}`: Django's default cache is a LocMem cache.
fn default_alias() -> Value {
    let mut alias = Map::new();
    alias.insert("LOCATION".into(), Value::String("locmem://".into()));
    Value::Object(alias)
}

fn parse_location(
    alias: &str,
    backend: Option<&str>,
    location: Option<&Value>,
) -> Result<Location, ConfigError> {
    let setting = format!("CACHES['{alias}']['LOCATION']");
    let unsupported_backend = || ConfigError::UnsupportedBackend {
        alias: alias.to_owned(),
        backend: backend.unwrap_or_default().to_owned(),
    };
    match backend {
        None | Some(LOCMEM_BACKEND) | Some(REDIS_BACKEND) | Some(MEMCACHED_BACKEND) => {}
        Some(_) => return Err(unsupported_backend()),
    }
    let unsupported = |location: &str| ConfigError::UnsupportedLocation {
        alias: alias.to_owned(),
        location: redact_url(location),
    };

    match location {
        Some(Value::String(url)) if is_topology_location(url) => {
            return parse_topology_location(alias, backend, url);
        }
        Some(Value::Array(items))
            if items
                .iter()
                .any(|item| item.as_str().is_some_and(is_topology_location)) =>
        {
            return Err(bad(
                setting,
                "one cluster or Sentinel location (its hosts separated by commas), not a list",
                location.unwrap_or(&Value::Null),
            ));
        }
        _ => {}
    }

    let urls: Vec<&str> = match location {
        // Django's default LOCATION is '' (one unnamed LocMem store).
        None | Some(Value::Null) if backend == Some(MEMCACHED_BACKEND) => {
            return Err(bad(setting, "memcached servers (host:port)", &Value::Null));
        }
        None | Some(Value::Null) if backend != Some(REDIS_BACKEND) => {
            return Ok(Location::LocMem {
                name: String::new(),
            });
        }
        None | Some(Value::Null) => return Err(bad(setting, "a Redis URL", &Value::Null)),
        Some(Value::String(url)) => split_location(backend, url),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| bad(setting.clone(), "a string or a list of strings", item))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(bad(setting, "a string or a list of strings", other)),
    };

    if backend == Some(MEMCACHED_BACKEND)
        || urls
            .first()
            .is_some_and(|url| url.starts_with(MEMCACHED_SCHEME))
    {
        return memcached_location(alias, backend, location, &urls);
    }

    let is_redis = |url: &str| {
        ["redis://", "rediss://", "unix://", "redis+unix://"]
            .iter()
            .any(|scheme| url.starts_with(scheme))
    };
    if !urls.is_empty() && urls.iter().all(|url| is_redis(url)) {
        if backend == Some(LOCMEM_BACKEND) {
            return Err(unsupported(urls[0]));
        }
        return Ok(Location::Redis {
            urls: urls.into_iter().map(str::to_owned).collect(),
        });
    }
    if backend == Some(REDIS_BACKEND) {
        let first_bad = urls
            .iter()
            .find(|url| !is_redis(url))
            .copied()
            .unwrap_or_default();
        return Err(unsupported(first_bad));
    }
    let [url] = urls[..] else {
        return Err(bad(
            setting,
            "one LocMem location (a list is only meaningful for Redis)",
            location.unwrap_or(&Value::Null),
        ));
    };
    if let Some(name) = url.strip_prefix("locmem://") {
        return Ok(Location::LocMem {
            name: name.to_owned(),
        });
    }
    // Django's LocMemCache takes a bare name; accept one only when BACKEND says LocMem, so a
    // misspelt URL without BACKEND is an error rather than a silently private cache.
    if backend == Some(LOCMEM_BACKEND) && !url.contains("://") {
        return Ok(Location::LocMem {
            name: url.to_owned(),
        });
    }
    Err(unsupported(url))
}

// --- memcached locations and OPTIONS, and Django's LOCATION string splitting ---

/// Our scheme for memcached locations: `memcached://host:port[,host:port…]`.
pub const MEMCACHED_SCHEME: &str = "memcached://";

/// pymemcache `HashClient` options Django users pass in `OPTIONS` that change nothing here
/// (sessionkit always pools, sets `TCP_NODELAY`, waits for replies and never drops a server
/// from the ring): accepted and ignored.
pub const IGNORED_MEMCACHED_OPTIONS: [&str; 10] = [
    "no_delay",
    "use_pooling",
    "pool_idle_timeout",
    "allow_unicode_keys",
    "default_noreply",
    "retry_attempts",
    "retry_timeout",
    "dead_timeout",
    "socket_keepalive",
    "encoding",
];

/// A string `LOCATION` split as Django's memcached and Redis backends split it
/// (`re.split("[;,]", LOCATION)`), each part trimmed and empty parts dropped: with the
/// memcached `BACKEND` or our `memcached://` scheme, and with the Redis `BACKEND` for
/// `redis://`, `rediss://` and `unix://` URLs. Anything else stays one location (a LocMem
/// name may hold a comma).
fn split_location<'a>(backend: Option<&str>, location: &'a str) -> Vec<&'a str> {
    let django_redis = backend == Some(REDIS_BACKEND)
        && ["redis://", "rediss://", "unix://"]
            .iter()
            .any(|scheme| location.starts_with(scheme));
    if backend == Some(MEMCACHED_BACKEND) || location.starts_with(MEMCACHED_SCHEME) || django_redis
    {
        location
            .split([';', ','])
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .collect()
    } else {
        vec![location]
    }
}

/// The memcached servers of a `LOCATION` already split into `parts`: Django's forms with the
/// memcached `BACKEND`, `memcached://` ones (the scheme optional after the first part, a
/// trailing `/` allowed) with or without it.
fn memcached_location(
    alias: &str,
    backend: Option<&str>,
    location: Option<&Value>,
    parts: &[&str],
) -> Result<Location, ConfigError> {
    let shown = match location {
        Some(Value::String(text)) => text.clone(),
        _ => parts.join(","),
    };
    let bad_location = |reason: String| ConfigError::BadMemcachedLocation {
        alias: alias.to_owned(),
        location: redact_url(&shown),
        reason,
    };
    if backend.is_some() && backend != Some(MEMCACHED_BACKEND) {
        return Err(ConfigError::UnsupportedLocation {
            alias: alias.to_owned(),
            location: redact_url(&shown),
        });
    }
    if parts.is_empty() {
        return Err(bad_location("no server given".to_owned()));
    }
    let url = parts[0].starts_with(MEMCACHED_SCHEME);
    let mut servers = Vec::with_capacity(parts.len());
    for part in parts {
        let spec = part.strip_prefix(MEMCACHED_SCHEME).unwrap_or(part);
        let spec = if url {
            spec.strip_suffix('/').unwrap_or(spec)
        } else {
            spec
        };
        if spec.contains('@') {
            return Err(bad_location(
                "memcached locations carry no credentials (SASL is not supported)".to_owned(),
            ));
        }
        if url && (spec.contains('/') || spec.contains('?')) {
            return Err(bad_location(
                "a memcached:// URL is host:port only (no path or query)".to_owned(),
            ));
        }
        servers.push(MemcachedServer::parse(spec).map_err(bad_location)?);
    }
    Ok(Location::Memcached { servers })
}

/// The memcached backend's `OPTIONS`, in pymemcache's names (which Django's `PyMemcacheCache`
/// passes to `HashClient`): `connect_timeout` and `timeout` in seconds (fractions allowed,
/// `null` keeps the default, since every operation stays bounded) and `max_pool_size`. The
/// options in [`IGNORED_MEMCACHED_OPTIONS`] are accepted and ignored; any other is refused,
/// so a setting that would change behaviour (`key_prefix`, `ignore_exc`, `serde`, …) never
/// goes silently unapplied.
fn memcached_options(
    options: &Map<String, Value>,
    option: &dyn Fn(&str) -> String,
) -> Result<MemcachedOptions, ConfigError> {
    let defaults = MemcachedOptions::default();
    let mut result = defaults;
    for (name, value) in options {
        match name.as_str() {
            "connect_timeout" | "timeout" => {
                let secs = match value {
                    Value::Null => None,
                    _ => Some(
                        value
                            .as_f64()
                            .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))
                            .filter(|secs| secs.is_finite() && *secs > 0.0 && *secs <= 3600.0)
                            .map(Duration::from_secs_f64)
                            .ok_or_else(|| {
                                bad(
                                    option(name),
                                    "a number of seconds above 0 and at most 3600",
                                    value,
                                )
                            })?,
                    ),
                };
                if name == "timeout" {
                    result.timeout = secs.unwrap_or(defaults.timeout);
                } else {
                    result.connect_timeout = secs.unwrap_or(defaults.connect_timeout);
                }
            }
            "max_pool_size" => {
                result.max_pool_size = match value {
                    Value::Null => defaults.max_pool_size,
                    _ => integer(value)
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| (1..=10_000).contains(n))
                        .ok_or_else(|| bad(option(name), "an integer from 1 to 10000", value))?,
                };
            }
            ignored if IGNORED_MEMCACHED_OPTIONS.contains(&ignored) => {}
            _ => {
                return Err(bad(
                    option(name),
                    "absent: the memcached options are connect_timeout, timeout and max_pool_size (and pymemcache's no_delay, use_pooling, pool_idle_timeout, allow_unicode_keys, default_noreply, retry_attempts, retry_timeout, dead_timeout, socket_keepalive, encoding, which change nothing here)",
                    value,
                ));
            }
        }
    }
    Ok(result)
}

// --- end of memcached ---

/// A JSON integer, or a string holding one (Django runs `int()` on these settings).
fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

fn bad(setting: String, expected: &'static str, found: &Value) -> ConfigError {
    ConfigError::BadValue {
        setting,
        expected,
        found: describe(found),
    }
}

/// A short description of a JSON value for messages.
fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(settings: Value) -> Result<CacheConfig, ConfigError> {
        CacheConfig::from_settings_json(&settings.to_string())
    }

    #[test]
    fn defaults_give_djangos_default_locmem_cache() {
        let config = parse(json!({})).unwrap();
        assert_eq!(config.alias, "default");
        assert_eq!(
            config.location,
            Location::LocMem {
                name: String::new()
            }
        );
        assert_eq!(config.key_function, KeyFunction::new("", 1));
        assert_eq!(config.default_timeout, Some(300));
        assert_eq!(
            config.locmem,
            LocMemOptions {
                max_entries: 300,
                cull_frequency: 3
            }
        );
    }

    #[test]
    fn host_style_settings_with_nulls_use_defaults() {
        let config =
            parse(json!({"SESSION_CACHE_ALIAS": null, "CACHES": null, "SECRET_KEY": "x"})).unwrap();
        assert_eq!(
            config.location,
            Location::LocMem {
                name: String::new()
            }
        );
    }

    #[test]
    fn every_option_is_read() {
        let config = parse(json!({
            "SESSION_CACHE_ALIAS": "sessions",
            "CACHES": {
                "default": {"LOCATION": "locmem://other"},
                "sessions": {
                    "LOCATION": "locmem://sess",
                    "KEY_PREFIX": "site",
                    "VERSION": 3,
                    "TIMEOUT": null,
                    "OPTIONS": {"MAX_ENTRIES": 50, "CULL_FREQUENCY": 0}
                }
            }
        }))
        .unwrap();
        assert_eq!(config.alias, "sessions");
        assert_eq!(
            config.location,
            Location::LocMem {
                name: "sess".into()
            }
        );
        assert_eq!(config.key_function, KeyFunction::new("site", 3));
        assert_eq!(config.default_timeout, None);
        assert_eq!(
            config.locmem,
            LocMemOptions {
                max_entries: 50,
                cull_frequency: 0
            }
        );
    }

    #[test]
    fn numeric_strings_are_accepted_like_djangos_int() {
        let config = parse(json!({"CACHES": {"default": {
            "LOCATION": "locmem://", "VERSION": "2", "OPTIONS": {"MAX_ENTRIES": "10"}
        }}}))
        .unwrap();
        assert_eq!(config.key_function.version(), 2);
        assert_eq!(config.locmem.max_entries, 10);
    }

    #[test]
    fn unknown_alias_is_a_config_error_naming_it_and_the_configured_ones() {
        let error = parse(json!({"SESSION_CACHE_ALIAS": "sessions"})).unwrap_err();
        assert_eq!(
            error,
            ConfigError::UnknownAlias {
                alias: "sessions".into(),
                configured: vec!["default".into()]
            }
        );
        let message = error.to_string();
        assert!(
            message.contains("'sessions'") && message.contains("default"),
            "{message}"
        );
        let store_error = sessionkit_sdk::StoreError::from(error);
        assert_eq!(store_error.kind, sessionkit_sdk::ErrorKind::Config);
    }

    #[test]
    fn redis_locations_are_parsed_with_default_options() {
        for url in [
            "redis://127.0.0.1:6379/0",
            "rediss://cache.internal:6380",
            "unix:///run/redis.sock?db=2",
        ] {
            let config = parse(json!({"CACHES": {"default": {"LOCATION": url}}})).unwrap();
            assert_eq!(
                config.location,
                Location::Redis {
                    urls: vec![url.into()]
                }
            );
            assert_eq!(config.redis, RedisOptions::default());
        }
    }

    #[test]
    fn redis_options_are_read_in_redis_py_or_django_redis_spelling() {
        let config = parse(json!({"CACHES": {"default": {
            "LOCATION": "redis://h:6379",
            "OPTIONS": {"socket_connect_timeout": 0.25, "SOCKET_TIMEOUT": "1.5",
                        "max_connections": 4, "pool_timeout": 3}
        }}}))
        .unwrap();
        assert_eq!(
            config.redis,
            RedisOptions {
                connect_timeout: Duration::from_millis(250),
                socket_timeout: Duration::from_millis(1500),
                max_connections: 4,
                pool_timeout: Duration::from_secs(3),
            }
        );
        let nulls = parse(json!({"CACHES": {"default": {
            "LOCATION": "redis://h:6379", "OPTIONS": {"socket_timeout": null}
        }}}))
        .unwrap();
        assert_eq!(nulls.redis, RedisOptions::default());
    }

    #[test]
    fn bad_redis_options_name_the_option() {
        for (options, name) in [
            (json!({"socket_timeout": 0}), "socket_timeout"),
            (
                json!({"socket_connect_timeout": "soon"}),
                "socket_connect_timeout",
            ),
            (json!({"max_connections": 0}), "max_connections"),
            (json!({"POOL_TIMEOUT": -1}), "POOL_TIMEOUT"),
        ] {
            let error = parse(json!({"CACHES": {"default": {
                "LOCATION": "redis://h:6379", "OPTIONS": options
            }}}))
            .unwrap_err();
            let setting = format!("CACHES['default']['OPTIONS']['{name}']");
            assert!(
                matches!(&error, ConfigError::BadValue { setting: s, .. } if *s == setting),
                "{error}"
            );
        }
        // Redis options on a LocMem alias are not read (Django ignores unknown OPTIONS too).
        assert!(parse(json!({"CACHES": {"default": {"OPTIONS": {"socket_timeout": 0}}}})).is_ok());
    }

    #[test]
    fn djangos_backend_paths_are_understood() {
        let locmem = parse(json!({"CACHES": {"default": {
            "BACKEND": LOCMEM_BACKEND, "LOCATION": "unique-snowflake"
        }}}))
        .unwrap();
        assert_eq!(
            locmem.location,
            Location::LocMem {
                name: "unique-snowflake".into()
            }
        );
        let redis = parse(json!({"CACHES": {"default": {
            "BACKEND": REDIS_BACKEND, "LOCATION": ["redis://a:6379", "redis://b:6379"]
        }}}))
        .unwrap();
        assert!(matches!(redis.location, Location::Redis { ref urls } if urls.len() == 2));
        let no_location =
            parse(json!({"CACHES": {"default": {"BACKEND": LOCMEM_BACKEND}}})).unwrap();
        assert_eq!(
            no_location.location,
            Location::LocMem {
                name: String::new()
            }
        );
    }

    #[test]
    fn other_django_backends_are_config_errors_naming_them() {
        let error = parse(json!({"CACHES": {"default": {
            "BACKEND": "django.core.cache.backends.memcached.PyLibMCCache", "LOCATION": "127.0.0.1:11211"
        }}}))
        .unwrap_err();
        assert!(matches!(error, ConfigError::UnsupportedBackend { .. }));
        assert!(error.to_string().contains("PyLibMCCache"), "{error}");
    }

    #[test]
    fn unknown_scheme_or_bare_name_without_backend_is_an_error() {
        for location in ["memcache://127.0.0.1", "unique-snowflake", "redis//typo"] {
            let error = parse(json!({"CACHES": {"default": {"LOCATION": location}}})).unwrap_err();
            assert!(
                matches!(error, ConfigError::UnsupportedLocation { .. }),
                "{location}: {error}"
            );
            assert!(
                error.to_string().contains("CACHES['default']['LOCATION']"),
                "{error}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_setting() {
        let cases = [
            (json!({"SESSION_CACHE_ALIAS": 3}), "SESSION_CACHE_ALIAS"),
            (json!({"CACHES": []}), "CACHES"),
            (
                json!({"CACHES": {"default": "locmem://"}}),
                "CACHES['default']",
            ),
            (
                json!({"CACHES": {"default": {"LOCATION": 5}}}),
                "CACHES['default']['LOCATION']",
            ),
            (
                json!({"CACHES": {"default": {"VERSION": "one"}}}),
                "CACHES['default']['VERSION']",
            ),
            (
                json!({"CACHES": {"default": {"KEY_PREFIX": 1}}}),
                "CACHES['default']['KEY_PREFIX']",
            ),
            (
                json!({"CACHES": {"default": {"TIMEOUT": "soon"}}}),
                "CACHES['default']['TIMEOUT']",
            ),
            (
                json!({"CACHES": {"default": {"OPTIONS": 1}}}),
                "CACHES['default']['OPTIONS']",
            ),
            (
                json!({"CACHES": {"default": {"OPTIONS": {"MAX_ENTRIES": 0}}}}),
                "CACHES['default']['OPTIONS']['MAX_ENTRIES']",
            ),
            (
                json!({"CACHES": {"default": {"OPTIONS": {"CULL_FREQUENCY": -1}}}}),
                "CACHES['default']['OPTIONS']['CULL_FREQUENCY']",
            ),
            (
                json!({"CACHES": {"default": {"LOCATION": ["locmem://a", "locmem://b"]}}}),
                "CACHES['default']['LOCATION']",
            ),
        ];
        for (settings, setting) in cases {
            let error = parse(settings.clone()).unwrap_err();
            assert!(
                matches!(&error, ConfigError::BadValue { setting: s, .. } if s == setting),
                "{settings}: {error}"
            );
            assert!(error.to_string().starts_with(setting), "{error}");
        }
    }

    #[test]
    fn cluster_and_sentinel_locations_are_parsed_whole_despite_their_commas() {
        let cluster = parse(json!({"CACHES": {"default": {
            "BACKEND": REDIS_BACKEND,
            "LOCATION": "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000",
            "OPTIONS": {"socket_timeout": 0.5, "read_from_replicas": true}
        }}}))
        .unwrap();
        match &cluster.location {
            Location::RedisCluster(location) => assert_eq!(location.seeds().len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(cluster.redis.socket_timeout, Duration::from_millis(500));
        assert_eq!(cluster.redis_topology.read_from_replicas, Some(true));
        let debug = format!("{cluster:?}");
        assert!(!debug.contains(":pw@"), "{debug}");

        let sentinel = parse(json!({"CACHES": {"default": {
            "LOCATION": "redis+sentinel://s1:26379,s2:26379/mymaster/1"
        }}}))
        .unwrap();
        match &sentinel.location {
            Location::RedisSentinel(location) => {
                assert_eq!(location.service(), "mymaster");
                assert_eq!(location.db(), 1);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sentinel.redis_topology.read_from_replicas, None);
    }

    #[test]
    fn bad_cluster_and_sentinel_locations_are_config_errors_without_the_password() {
        for location in [
            "redis+cluster://:hunter2@h:1/2",
            "redis+cluster://:hunter2@h:x",
            "redis+sentinel://:hunter2@s1:26379",
        ] {
            let error = parse(json!({"CACHES": {"default": {"LOCATION": location}}})).unwrap_err();
            assert!(
                matches!(error, ConfigError::BadRedisUrl { .. }),
                "{location}: {error}"
            );
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
        // A cluster location in a list, or under LocMem's BACKEND, is refused.
        let listed = parse(json!({"CACHES": {"default": {
            "LOCATION": ["redis+cluster://a:1,b:2", "redis://c:3"]
        }}}))
        .unwrap_err();
        assert!(matches!(listed, ConfigError::BadValue { .. }), "{listed}");
        let locmem = parse(json!({"CACHES": {"default": {
            "BACKEND": LOCMEM_BACKEND, "LOCATION": "redis+cluster://a:1"
        }}}))
        .unwrap_err();
        assert!(
            matches!(locmem, ConfigError::UnsupportedLocation { .. }),
            "{locmem}"
        );
    }

    #[test]
    fn read_from_replicas_is_a_boolean_or_null() {
        let list = parse(json!({"CACHES": {"default": {
            "LOCATION": ["redis://a:6379", "redis://b:6379"],
            "OPTIONS": {"READ_FROM_REPLICAS": false}
        }}}))
        .unwrap();
        assert_eq!(list.redis_topology.read_from_replicas, Some(false));
        let error = parse(json!({"CACHES": {"default": {
            "LOCATION": "redis://a:6379", "OPTIONS": {"read_from_replicas": "yes"}
        }}}))
        .unwrap_err();
        assert!(
            matches!(&error, ConfigError::BadValue { setting, .. }
                if setting == "CACHES['default']['OPTIONS']['read_from_replicas']"),
            "{error}"
        );
    }

    #[test]
    fn custom_key_function_is_refused() {
        let error =
            parse(json!({"CACHES": {"default": {"KEY_FUNCTION": "myapp.keys.make"}}})).unwrap_err();
        assert!(
            matches!(error, ConfigError::UnsupportedKeyFunction { .. }),
            "{error}"
        );
        let default = parse(json!({"CACHES": {"default": {"KEY_FUNCTION": DEFAULT_KEY_FUNCTION}}}));
        assert!(default.is_ok());
    }

    #[test]
    fn non_object_settings_are_a_json_error() {
        assert!(matches!(
            CacheConfig::from_settings_json("[1]"),
            Err(ConfigError::Json(_))
        ));
        assert!(matches!(
            CacheConfig::from_settings_json("{"),
            Err(ConfigError::Json(_))
        ));
    }

    #[test]
    fn passwords_never_reach_messages_or_debug() {
        let config =
            parse(json!({"CACHES": {"default": {"LOCATION": "redis://user:hunter2@host:6379/0"}}}))
                .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("redis://user:***@host:6379/0"), "{debug}");
        let error =
            parse(json!({"CACHES": {"default": {"LOCATION": "memcached://u:hunter2@host"}}}))
                .unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    // --- memcached ---

    fn memcached_servers(settings: Value) -> Vec<String> {
        match parse(settings).unwrap().location {
            Location::Memcached { servers } => servers.iter().map(ToString::to_string).collect(),
            other => panic!("not memcached: {other:?}"),
        }
    }

    #[test]
    fn djangos_memcached_locations_are_understood() {
        let with_backend = |location: Value| {
            memcached_servers(json!({"CACHES": {"default": {
                "BACKEND": MEMCACHED_BACKEND, "LOCATION": location
            }}}))
        };
        assert_eq!(with_backend(json!("127.0.0.1:11211")), ["127.0.0.1:11211"]);
        assert_eq!(with_backend(json!("cache")), ["cache:11211"]);
        assert_eq!(
            with_backend(json!(["a:11311", "b:11312"])),
            ["a:11311", "b:11312"]
        );
        assert_eq!(
            with_backend(json!("a:11311;b:11312, c:11313")),
            ["a:11311", "b:11312", "c:11313"]
        );
        assert_eq!(
            with_backend(json!("unix:/run/memcached.sock")),
            ["unix:/run/memcached.sock"]
        );
        assert_eq!(with_backend(json!("[::1]:11311")), ["[::1]:11311"]);
    }

    #[test]
    fn memcached_scheme_locations_are_understood_without_backend() {
        let without_backend = |location: Value| {
            memcached_servers(json!({"CACHES": {"default": {"LOCATION": location}}}))
        };
        assert_eq!(
            without_backend(json!("memcached://127.0.0.1:11311")),
            ["127.0.0.1:11311"]
        );
        assert_eq!(
            without_backend(json!("memcached://127.0.0.1:11311,127.0.0.1:11312/")),
            ["127.0.0.1:11311", "127.0.0.1:11312"]
        );
        assert_eq!(
            without_backend(json!(["memcached://a:1", "memcached://b:2"])),
            ["a:1", "b:2"]
        );
        let config = parse(json!({"CACHES": {"default": {
            "BACKEND": MEMCACHED_BACKEND, "LOCATION": "memcached://a:1"
        }}}))
        .unwrap();
        assert_eq!(config.memcached, MemcachedOptions::default());
        assert_eq!(config.redis, RedisOptions::default());
    }

    #[test]
    fn bad_memcached_locations_are_errors_naming_the_setting() {
        for location in [
            json!("memcached://a:port"),
            json!("memcached://a:1/db"),
            json!(["memcached://a:1", "b:0"]),
            json!("memcached://"),
        ] {
            let error = parse(json!({"CACHES": {"default": {"LOCATION": location}}})).unwrap_err();
            assert!(
                matches!(error, ConfigError::BadMemcachedLocation { .. }),
                "{location}: {error}"
            );
            assert!(
                error.to_string().contains("CACHES['default']['LOCATION']"),
                "{error}"
            );
        }
        let error =
            parse(json!({"CACHES": {"default": {"BACKEND": MEMCACHED_BACKEND}}})).unwrap_err();
        assert!(matches!(error, ConfigError::BadValue { .. }), "{error}");
        let error = parse(json!({"CACHES": {"default": {
            "BACKEND": MEMCACHED_BACKEND, "LOCATION": ""
        }}}))
        .unwrap_err();
        assert!(
            matches!(error, ConfigError::BadMemcachedLocation { .. }),
            "{error}"
        );
        for backend in [LOCMEM_BACKEND, REDIS_BACKEND] {
            let error = parse(json!({"CACHES": {"default": {
                "BACKEND": backend, "LOCATION": "memcached://a:1"
            }}}))
            .unwrap_err();
            assert!(
                matches!(error, ConfigError::UnsupportedLocation { .. }),
                "{error}"
            );
        }
    }

    #[test]
    fn memcached_options_are_read_in_pymemcache_spelling() {
        let config = parse(json!({"CACHES": {"default": {
            "BACKEND": MEMCACHED_BACKEND, "LOCATION": "a:1",
            "OPTIONS": {"connect_timeout": 0.5, "timeout": "1.5", "max_pool_size": 4,
                        "no_delay": true, "use_pooling": true, "allow_unicode_keys": true}
        }}}))
        .unwrap();
        assert_eq!(
            config.memcached,
            MemcachedOptions {
                connect_timeout: Duration::from_millis(500),
                timeout: Duration::from_millis(1500),
                max_pool_size: 4,
            }
        );
        let nulls = parse(json!({"CACHES": {"default": {
            "BACKEND": MEMCACHED_BACKEND, "LOCATION": "a:1", "OPTIONS": {"timeout": null}
        }}}))
        .unwrap();
        assert_eq!(nulls.memcached, MemcachedOptions::default());
    }

    #[test]
    fn bad_or_unknown_memcached_options_name_the_option() {
        for (options, name) in [
            (json!({"timeout": 0}), "timeout"),
            (json!({"connect_timeout": "soon"}), "connect_timeout"),
            (json!({"max_pool_size": 0}), "max_pool_size"),
            (json!({"ignore_exc": true}), "ignore_exc"),
            (json!({"key_prefix": "x"}), "key_prefix"),
        ] {
            let error = parse(json!({"CACHES": {"default": {
                "BACKEND": MEMCACHED_BACKEND, "LOCATION": "a:1", "OPTIONS": options
            }}}))
            .unwrap_err();
            let setting = format!("CACHES['default']['OPTIONS']['{name}']");
            assert!(
                matches!(&error, ConfigError::BadValue { setting: s, .. } if *s == setting),
                "{error}"
            );
        }
    }

    #[test]
    fn djangos_redis_backend_splits_a_string_location_like_django() {
        let config = parse(json!({"CACHES": {"default": {
            "BACKEND": REDIS_BACKEND, "LOCATION": "redis://a:6379;redis://b:6379, redis://c:6379"
        }}}))
        .unwrap();
        assert_eq!(
            config.location,
            Location::Redis {
                urls: vec![
                    "redis://a:6379".into(),
                    "redis://b:6379".into(),
                    "redis://c:6379".into()
                ]
            }
        );
        // Without Django's BACKEND, and for LocMem names, a string stays one location.
        let locmem = parse(json!({"CACHES": {"default": {
            "BACKEND": LOCMEM_BACKEND, "LOCATION": "a,b"
        }}}))
        .unwrap();
        assert_eq!(locmem.location, Location::LocMem { name: "a,b".into() });
    }
}
