//! Django's default cache `KEY_FUNCTION`: how a cache alias's `KEY_PREFIX` and `VERSION` turn a
//! key into the physical key the backend stores.

/// Django's `default_key_func`: `f"{KEY_PREFIX}:{VERSION}:{key}"`.
///
/// Applied by the store before it calls the backend, so every backend (LocMem today, Redis
/// later) lays keys out exactly as Django's cache framework does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFunction {
    key_prefix: String,
    version: i64,
}

impl KeyFunction {
    /// The key function of a cache alias with `KEY_PREFIX` and `VERSION`.
    pub fn new(key_prefix: impl Into<String>, version: i64) -> Self {
        Self {
            key_prefix: key_prefix.into(),
            version,
        }
    }

    /// The physical key for `key`: `{KEY_PREFIX}:{VERSION}:{key}`.
    pub fn make_key(&self, key: &str) -> String {
        format!("{}:{}:{}", self.key_prefix, self.version, key)
    }

    /// The alias's `KEY_PREFIX`.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// The alias's `VERSION`.
    pub fn version(&self) -> i64 {
        self.version
    }
}

impl Default for KeyFunction {
    /// Django's defaults: `KEY_PREFIX` `""`, `VERSION` 1.
    fn default() -> Self {
        Self::new("", 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_key_function_matches_django() {
        // Django: cache.make_key("django.contrib.sessions.cacheabc") == ":1:django.contrib.sessions.cacheabc"
        let keys = KeyFunction::default();
        assert_eq!(
            keys.make_key("django.contrib.sessions.cacheabc"),
            ":1:django.contrib.sessions.cacheabc"
        );
    }

    #[test]
    fn key_prefix_and_version_are_applied() {
        let keys = KeyFunction::new("site", 7);
        assert_eq!(keys.make_key("k"), "site:7:k");
    }
}
