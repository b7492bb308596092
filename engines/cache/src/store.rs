//! The `cache` engine's store: `sessionkit-cache`'s [`sessionkit_cache::CacheStore`] on the configured backend.
//!
//! The contract's rules live in [`sessionkit_cache::CacheStore`]; native cache errors are mapped to
//! `StoreError` in one function there (`sessionkit_cache::store::map_error`).

use std::sync::Arc;

use sessionkit_cache::{CACHE_SESSION_PREFIX, Clock, DynBackend, open_store};
use sessionkit_sdk::StoreError;

use crate::config::CacheConfig;

/// The store the `cache` engine opens: the library's store over the backend chosen at run time.
///
/// A type alias of a generic type from another crate cannot have an inherent `open`, so this
/// engine alone opens through the free function [`open`].
pub type CacheStore = sessionkit_cache::CacheStore<DynBackend>;

/// Opens the store on the configured cache alias, with Django's `cache` key prefix, judging
/// expiry by `clock` (the host's, lent through `Engine::open_with_host`).
///
/// # Errors
///
/// [`ErrorKind::Config`](sessionkit_sdk::ErrorKind::Config) when the alias's location cannot be
/// used (an unparsable Redis URL). A Redis server is not contacted here: connections open on
/// first use, so a server that is down fails the calls (`Unavailable`), not the open.
pub fn open(config: &CacheConfig, clock: Arc<dyn Clock>) -> Result<CacheStore, StoreError> {
    Ok(open_store(&config.cache, CACHE_SESSION_PREFIX, clock)?)
}
