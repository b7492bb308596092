//! The `cache` engine's settings: the cache alias named by `SESSION_CACHE_ALIAS` in `CACHES`.

use sessionkit_sdk::StoreError;

/// The `cache` engine's typed settings.
///
/// Parsed by `sessionkit-cache` (shared with `cached_db`); see its README for every key.
/// `Debug` shows no password (Redis URLs are redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// The cache alias sessions are stored in.
    pub cache: sessionkit_cache::CacheConfig,
}

impl CacheConfig {
    /// Reads `SESSION_CACHE_ALIAS` and `CACHES` from the settings JSON the host passes to
    /// `open`; other keys are ignored.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionkit_sdk::ErrorKind::Config) naming the wrong setting, or the
    /// alias that `CACHES` does not configure.
    pub fn from_settings_json(settings_json: &str) -> Result<Self, StoreError> {
        Ok(Self {
            cache: sessionkit_cache::CacheConfig::from_settings_json(settings_json)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sessionkit_cache::Location;
    use sessionkit_sdk::ErrorKind;

    use super::*;

    #[test]
    fn default_settings_use_the_unnamed_locmem_cache() {
        let config = CacheConfig::from_settings_json("{}").unwrap();
        assert_eq!(
            config.cache.location,
            Location::LocMem {
                name: String::new()
            }
        );
    }

    #[test]
    fn unknown_alias_is_a_config_error_naming_it() {
        let settings = json!({"SESSION_CACHE_ALIAS": "sessions", "CACHES": {"default": {}}});
        let error = CacheConfig::from_settings_json(&settings.to_string()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(error.message.contains("'sessions'"), "{error}");
    }

    #[test]
    fn bad_json_is_a_config_error() {
        let error = CacheConfig::from_settings_json("not json").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
    }
}
