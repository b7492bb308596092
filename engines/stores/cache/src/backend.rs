//! The cache backend trait: the few key-value operations the session store needs, so a new
//! backend (Redis) is one more implementation of it.

use std::{sync::Arc, time::Duration};

use sessionkit_sdk::Capabilities;

/// A key-value cache with per-entry TTLs, as the session store sees it.
///
/// Keys reaching a backend are already complete physical keys (`KEY_PREFIX`, `VERSION` and the
/// session prefix applied); values are opaque bytes. Methods are synchronous and may be called
/// from many threads at once.
///
/// # TTL
///
/// Every write carries the time the entry may live. A backend keeps the entry at least until
/// the TTL has passed, rounding up to its own resolution (Redis `PX` milliseconds), and drops it
/// afterwards by itself. A **zero** TTL means the value is already expired: the call behaves as
/// if it stored the value and the value expired at once (nothing is readable afterwards).
///
/// # Errors
///
/// A backend reports failures as [`CacheError`]; its messages never contain a key or a value.
pub trait CacheBackend: Send + Sync {
    /// The value stored under `key`.
    ///
    /// # Behavior
    ///
    /// - An absent or expired key gives `None`.
    /// - A live key gives its value and counts as a use (LRU backends move it to the front).
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;

    /// Whether a live value is stored under `key` (Django's `has_key`, Redis `EXISTS`).
    ///
    /// # Behavior
    ///
    /// - An absent or expired key gives `false`.
    /// - Does not count as a use.
    fn contains(&self, key: &str) -> Result<bool, CacheError>;

    /// Stores `value` only if `key` holds no live value (Django's `add`, Redis `SET NX`).
    ///
    /// # Behavior
    ///
    /// - Returns `true` if it stored (or, for a zero TTL, would have stored) the value.
    /// - Returns `false` and changes nothing if a live value is stored under `key`.
    fn add(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError>;

    /// Replaces the value under `key` only if a live one is stored (Redis `SET XX`).
    ///
    /// # Behavior
    ///
    /// - Returns `true` if it replaced the value (a zero TTL removes the entry instead).
    /// - Returns `false` and stores nothing if no live value is stored: an update never
    ///   brings back an entry that was deleted or expired.
    fn set_if_present(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError>;

    /// Stores `value` under `key` whether or not one is there (Django's `set`).
    ///
    /// # Behavior
    ///
    /// - Afterwards `get` gives `value` until the TTL passes (a zero TTL removes the entry).
    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError>;

    /// Replaces the value under `key` only if a live one is stored and begins with
    /// `expected_prefix`, in one atomic step: the compare-and-set a conditional save is made of
    /// (the store passes the encoded record up to its `session_data`, so the stored format stays
    /// as it is).
    ///
    /// # Behavior
    ///
    /// - A live value beginning with `expected_prefix` is replaced as `set_if_present` replaces
    ///   it (same TTL rules: a zero TTL removes the entry) and the call gives
    ///   [`CompareAndSet::Replaced`].
    /// - A live value that does not begin with it stays untouched and comes back as
    ///   [`CompareAndSet::Mismatch`].
    /// - No live value gives [`CompareAndSet::Missing`] and stores nothing: it never brings back
    ///   an entry that was deleted or expired.
    /// - The check and the write are one atomic step: of concurrent calls expecting the same
    ///   value, at most one replaces it; the others see its value as a mismatch.
    /// - The default, for a backend that cannot do this atomically, fails with
    ///   [`CacheError::Unsupported`] and stores nothing.
    fn replace_if_prefixed(
        &self,
        key: &str,
        expected_prefix: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> Result<CompareAndSet, CacheError> {
        let _ = (key, expected_prefix, value, ttl);
        Err(CacheError::Unsupported(
            "this cache backend has no atomic compare-and-set".to_owned(),
        ))
    }

    /// Removes the value under `key`.
    ///
    /// # Behavior
    ///
    /// - Returns whether a value was there; removing an absent key succeeds with `false`.
    fn delete(&self, key: &str) -> Result<bool, CacheError>;

    /// The value stored under `key` with the time it has left to live, in one round trip: how
    /// a store keeping Django's values (which carry no expire date) learns when an entry
    /// expires.
    ///
    /// # Behavior
    ///
    /// - An absent or expired key gives `None`.
    /// - A live key gives its value and its remaining TTL; `None` as the TTL means the entry
    ///   never expires (or the backend cannot tell).
    /// - The default asks `get` and reports no TTL.
    fn get_with_ttl(&self, key: &str) -> Result<Option<ValueWithTtl>, CacheError> {
        Ok(self.get(key)?.map(|value| (value, None)))
    }

    /// Whether the store keeps Django's own cache values on this backend (the pickled session
    /// dict, as Django's cache session backends store it) instead of sessionkit's JSON record:
    /// true for servers Django shares with us (Redis, memcached), false in process.
    ///
    /// # Behavior
    ///
    /// - Answers the same for the life of the backend. The default is `false`.
    fn stores_django_values(&self) -> bool {
        false
    }

    /// What a session store over this backend can do beyond the `cache` engine's declared
    /// capabilities (the store reports it as `SessionStore::capabilities`).
    ///
    /// # Behavior
    ///
    /// - Answers the same for the life of the backend.
    /// - An in-process backend gives `NON_BLOCKING`; a server several processes reach gives
    ///   `SHARED_BETWEEN_PROCESSES`. The default claims nothing.
    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
    }
}

/// A stored value and the time it has left to live (`None`: no expiry, or unknown), as
/// [`CacheBackend::get_with_ttl`] gives it.
pub type ValueWithTtl = (Vec<u8>, Option<Duration>);

/// A backend chosen at run time from the `CACHES` configuration.
pub type DynBackend = Arc<dyn CacheBackend>;

#[deny(clippy::missing_trait_methods)]
impl<B: CacheBackend + ?Sized> CacheBackend for Arc<B> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        (**self).get(key)
    }

    fn contains(&self, key: &str) -> Result<bool, CacheError> {
        (**self).contains(key)
    }

    fn add(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        (**self).add(key, value, ttl)
    }

    fn set_if_present(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        (**self).set_if_present(key, value, ttl)
    }

    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        (**self).set(key, value, ttl)
    }

    fn replace_if_prefixed(
        &self,
        key: &str,
        expected_prefix: &[u8],
        value: &[u8],
        ttl: Duration,
    ) -> Result<CompareAndSet, CacheError> {
        (**self).replace_if_prefixed(key, expected_prefix, value, ttl)
    }

    fn delete(&self, key: &str) -> Result<bool, CacheError> {
        (**self).delete(key)
    }

    fn get_with_ttl(&self, key: &str) -> Result<Option<ValueWithTtl>, CacheError> {
        (**self).get_with_ttl(key)
    }

    fn stores_django_values(&self) -> bool {
        (**self).stores_django_values()
    }

    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
}

/// What [`CacheBackend::replace_if_prefixed`] found, and so whether it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareAndSet {
    /// The live value began with the expected prefix and now holds the new value.
    Replaced,
    /// The live value did not begin with the expected prefix; it is unchanged, and here it is.
    Mismatch(Vec<u8>),
    /// No live value was stored; nothing was written.
    Missing,
}

/// A cache backend's failure.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache server cannot be reached right now (connection refused, timeout, pool
    /// exhausted); retrying later may work.
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error (a rejected command, an out-of-memory reply).
    #[error("cache error: {0}")]
    Backend(String),
    /// The backend does not offer the operation (a compare-and-set it cannot make atomic).
    #[error("cache operation unsupported: {0}")]
    Unsupported(String),
}
