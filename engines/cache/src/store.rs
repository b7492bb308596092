//! The `cache` engine's store: `sessionkit-cache`'s [`CacheStore`] on the configured backend.
//!
//! The contract's rules live in [`CacheStore`]; native cache errors are mapped to
//! `StoreError` in one function there (`sessionkit_cache::store::map_error`).

use sessionkit_cache::{CACHE_SESSION_PREFIX, CacheStore, DynBackend, open_store};
use sessionkit_sdk::StoreError;

use crate::config::CacheEngineConfig;

/// The store the `cache` engine opens.
pub type CacheEngineStore = CacheStore<DynBackend>;

/// Opens the store on the configured cache alias, with Django's `cache` key prefix.
///
/// # Errors
///
/// [`ErrorKind::Config`](sessionkit_sdk::ErrorKind::Config) when the alias's location cannot be
/// used (an unparsable Redis URL). A Redis server is not contacted here: connections open on
/// first use, so a server that is down fails the calls (`Unavailable`), not the open.
pub fn open(config: &CacheEngineConfig) -> Result<CacheEngineStore, StoreError> {
    Ok(open_store(&config.cache, CACHE_SESSION_PREFIX)?)
}
