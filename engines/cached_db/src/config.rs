//! The `cached_db` engine's settings: the database of the `db` engine plus the cache alias of
//! the `cache` engine, each parsed by its own library.

use serde_json::{Map, Value};
use sessionkit_cache::CacheConfig;
use sessionkit_codec::SessionCodec;
use sessionkit_sdk::{EngineInfo, StoreError};
use sessionkit_sql::{SqlSettings, SqlStoreOptions};

/// The `cached_db` engine's typed settings.
///
/// - Database: `SESSION_DB_URL`, else `DATABASE_URL`, else `sqlite://sessionkit.sqlite3`;
///   `SESSION_DB_TABLE` (default `django_session`). Parsed by `sessionkit-sql`.
/// - Cache: the alias `SESSION_CACHE_ALIAS` (default `default`) of `CACHES` (default
///   `{"default": {"LOCATION": "locmem://"}}`). Parsed by `sessionkit-cache`.
///
/// `Debug` shows no password (database and Redis URLs are redacted).
#[derive(Debug, Clone)]
pub struct CachedDbConfig {
    /// The database URL, where it came from, and the table.
    pub sql: SqlSettings,
    /// The cache alias sessions are cached in.
    pub cache: CacheConfig,
    /// `SECRET_KEY` and `SECRET_KEY_FALLBACKS`, to verify rows before caching their dict.
    secrets: Secrets,
}

/// The signing keys, never shown by `Debug`.
#[derive(Clone, Default)]
struct Secrets {
    secret_key: Option<String>,
    fallbacks: Vec<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "fallbacks",
                &format_args!("{} <redacted>", self.fallbacks.len()),
            )
            .finish()
    }
}

impl CachedDbConfig {
    /// Reads the engine's settings from the settings JSON the host passes to `open`; other
    /// keys are ignored.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionkit_sdk::ErrorKind::Config) naming the setting that is
    /// wrong, or the cache alias `CACHES` does not configure.
    pub fn from_settings_json(settings_json: &str) -> Result<Self, StoreError> {
        let value: Value = serde_json::from_str(settings_json)
            .map_err(|e| StoreError::config(format!("engine settings are not valid JSON: {e}")))?;
        let Value::Object(settings) = value else {
            return Err(StoreError::config("engine settings must be a JSON object"));
        };
        Self::from_settings(&settings)
    }

    /// Like [`from_settings_json`](Self::from_settings_json), for an already parsed object.
    ///
    /// # Errors
    ///
    /// As [`from_settings_json`](Self::from_settings_json).
    pub fn from_settings(settings: &Map<String, Value>) -> Result<Self, StoreError> {
        let secret_key = settings
            .get("SECRET_KEY")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let secret_key_fallbacks = match settings.get("SECRET_KEY_FALLBACKS") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(keys)) => keys
                .iter()
                .map(|key| {
                    key.as_str().map(str::to_owned).ok_or_else(|| {
                        StoreError::config("SECRET_KEY_FALLBACKS must be a list of strings")
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(StoreError::config(
                    "SECRET_KEY_FALLBACKS must be a list of strings",
                ));
            }
        };
        Ok(Self {
            sql: SqlSettings::from_settings(settings)?,
            cache: CacheConfig::from_settings(settings)?,
            secrets: Secrets {
                secret_key,
                fallbacks: secret_key_fallbacks,
            },
        })
    }

    /// The codec rows are verified with before their dict is cached (Django's cache keeps the
    /// dict, unsigned): `SECRET_KEY`, `SECRET_KEY_FALLBACKS` and the session-store salt;
    /// `None` without a `SECRET_KEY`.
    pub fn codec(&self) -> Option<SessionCodec> {
        let secret = self
            .secrets
            .secret_key
            .as_deref()
            .filter(|key| !key.is_empty())?;
        let fallbacks: Vec<Vec<u8>> = self
            .secrets
            .fallbacks
            .iter()
            .map(|key| key.as_bytes().to_vec())
            .collect();
        Some(SessionCodec::new(
            EngineInfo::SESSION_STORE_SALT,
            secret.as_bytes(),
            &fallbacks,
        ))
    }

    /// The table layout: Django's `django_session` shape without the `account_id` column.
    pub fn store_options(&self) -> SqlStoreOptions {
        SqlStoreOptions::new(self.sql.table.clone())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sessionkit_cache::Location;
    use sessionkit_sdk::ErrorKind;
    use sessionkit_sql::DatabaseUrl;

    use super::*;

    fn parse(settings: Value) -> Result<CachedDbConfig, StoreError> {
        CachedDbConfig::from_settings_json(&settings.to_string())
    }

    #[test]
    fn defaults_are_a_sqlite_file_and_the_default_locmem_cache() {
        let config = parse(json!({"SECRET_KEY": "x"})).unwrap();
        assert!(matches!(config.sql.url, DatabaseUrl::Sqlite(_)));
        assert_eq!(config.sql.table, "django_session");
        assert!(!config.store_options().account_column);
        assert_eq!(config.cache.alias, "default");
        assert_eq!(
            config.cache.location,
            Location::LocMem {
                name: String::new()
            }
        );
    }

    #[test]
    fn database_and_cache_settings_are_both_read() {
        let config = parse(json!({
            "SESSION_DB_URL": "postgres://app:hunter2@db.internal/sessions",
            "SESSION_DB_TABLE": "my_sessions",
            "SESSION_CACHE_ALIAS": "sessions",
            "CACHES": {"sessions": {"LOCATION": "redis://:hunter3@cache:6379/1", "KEY_PREFIX": "site"}}
        }))
        .unwrap();
        assert!(matches!(config.sql.url, DatabaseUrl::Postgres(_)));
        assert_eq!(config.store_options(), SqlStoreOptions::new("my_sessions"));
        assert_eq!(config.cache.alias, "sessions");
        assert!(matches!(config.cache.location, Location::Redis { .. }));
        assert_eq!(config.cache.key_function.key_prefix(), "site");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
        let with_keys =
            parse(json!({"SECRET_KEY": "s3cret-key", "SECRET_KEY_FALLBACKS": ["old-k3y"]}))
                .unwrap();
        let shown = format!("{with_keys:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("old-k3y"),
            "{shown}"
        );
        assert!(with_keys.codec().is_some());
        assert!(config.codec().is_none(), "no SECRET_KEY, no codec");
    }

    #[test]
    fn bad_settings_are_config_errors_naming_the_setting() {
        for (settings, setting) in [
            (json!({"SESSION_DB_URL": "oracle://x/y"}), "SESSION_DB_URL"),
            (
                json!({"SESSION_DB_TABLE": "drop table"}),
                "SESSION_DB_TABLE",
            ),
            (
                json!({"SESSION_CACHE_ALIAS": "nope"}),
                "SESSION_CACHE_ALIAS",
            ),
            (
                json!({"CACHES": {"default": {"LOCATION": "ftp://x"}}}),
                "CACHES['default']['LOCATION']",
            ),
        ] {
            let error = parse(settings.clone()).unwrap_err();
            assert_eq!(error.kind, ErrorKind::Config, "{settings}");
            assert!(error.message.contains(setting), "{settings}: {error}");
        }
        assert_eq!(
            CachedDbConfig::from_settings_json("[1]").unwrap_err().kind,
            ErrorKind::Config
        );
    }
}
