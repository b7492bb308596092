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

    /// Runs `op` the blocking way, through the method of the same name: how the store runs a
    /// step of a call whether it waits here or on an event loop (one code path for both).
    fn execute(&self, op: CacheOp) -> Result<CacheReply, CacheError> {
        op.run_on(self)
    }

    /// Whether [`start`](Self::start) can run operations without blocking (so the store
    /// declares `READINESS_CALLS`). Answers the same for the life of the backend; the default
    /// is `false`.
    fn readiness_calls(&self) -> bool {
        false
    }

    /// Starts `op` without blocking: answers it, names the descriptor to wait on, or gives it
    /// back to be run the blocking way ([`CacheStep::Blocking`], having done nothing).
    ///
    /// # Behavior
    ///
    /// - Never blocks. The default answers `Blocking`.
    fn start(&self, op: CacheOp) -> CacheStep {
        let _ = op;
        CacheStep::Blocking
    }

    /// Goes on with the operation `ticket` names once its descriptor is ready (or its timeout
    /// passed: `timed_out`, which ends it as [`CacheError::Unavailable`]).
    ///
    /// # Behavior
    ///
    /// - Never blocks; may answer `Wait` again. `Blocking` here means the connection turned
    ///   out closed before any reply (a server restart): the caller runs the operation the
    ///   blocking way, which retries it on a new connection as a blocking call would.
    /// - An unknown ticket fails with [`CacheError::Backend`].
    fn resume(&self, ticket: u64, timed_out: bool) -> CacheStep {
        let _ = (ticket, timed_out);
        CacheStep::Done(Err(CacheError::Backend(
            "resume of a cache operation that was never started".to_owned(),
        )))
    }

    /// Forgets the operation `ticket` names, dropping its connection (a reply may be in flight).
    fn cancel(&self, ticket: u64) {
        let _ = ticket;
    }
}

/// One [`CacheBackend`] operation as data, so the store can run it blocking
/// ([`CacheBackend::execute`]) or without blocking ([`CacheBackend::start`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOp {
    /// [`CacheBackend::get`].
    Get(String),
    /// [`CacheBackend::get_with_ttl`].
    GetWithTtl(String),
    /// [`CacheBackend::contains`].
    Contains(String),
    /// [`CacheBackend::add`].
    Add(String, Vec<u8>, Duration),
    /// [`CacheBackend::set_if_present`].
    SetIfPresent(String, Vec<u8>, Duration),
    /// [`CacheBackend::set`].
    Set(String, Vec<u8>, Duration),
    /// [`CacheBackend::replace_if_prefixed`]: key, expected prefix, value, TTL.
    ReplaceIfPrefixed(String, Vec<u8>, Vec<u8>, Duration),
    /// [`CacheBackend::delete`].
    Delete(String),
}

impl CacheOp {
    /// Runs the operation through `backend`'s blocking method of the same name.
    ///
    /// # Errors
    ///
    /// The method's.
    pub fn run_on<B: CacheBackend + ?Sized>(self, backend: &B) -> Result<CacheReply, CacheError> {
        Ok(match self {
            Self::Get(key) => CacheReply::Value(backend.get(&key)?),
            Self::GetWithTtl(key) => CacheReply::ValueWithTtl(backend.get_with_ttl(&key)?),
            Self::Contains(key) => CacheReply::Flag(backend.contains(&key)?),
            Self::Add(key, value, ttl) => CacheReply::Flag(backend.add(&key, &value, ttl)?),
            Self::SetIfPresent(key, value, ttl) => {
                CacheReply::Flag(backend.set_if_present(&key, &value, ttl)?)
            }
            Self::Set(key, value, ttl) => {
                backend.set(&key, &value, ttl)?;
                CacheReply::Stored
            }
            Self::ReplaceIfPrefixed(key, prefix, value, ttl) => {
                CacheReply::CompareAndSet(backend.replace_if_prefixed(&key, &prefix, &value, ttl)?)
            }
            Self::Delete(key) => CacheReply::Flag(backend.delete(&key)?),
        })
    }
}

/// What a [`CacheOp`] answered: what its blocking method returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheReply {
    /// `get`'s value.
    Value(Option<Vec<u8>>),
    /// `get_with_ttl`'s value and TTL.
    ValueWithTtl(Option<ValueWithTtl>),
    /// `contains`, `add`, `set_if_present`, `delete`: the boolean they return.
    Flag(bool),
    /// `set` succeeded.
    Stored,
    /// `replace_if_prefixed`'s finding.
    CompareAndSet(CompareAndSet),
}

impl CacheReply {
    /// The reply's kind, for a message that shows no value.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Value(_) => "value",
            Self::ValueWithTtl(_) => "value with TTL",
            Self::Flag(_) => "flag",
            Self::Stored => "stored",
            Self::CompareAndSet(_) => "compare-and-set",
        }
    }
}

/// Where a non-blocking [`CacheOp`] stands (see [`CacheBackend::start`]).
#[derive(Debug)]
pub enum CacheStep {
    /// Finished.
    Done(Result<CacheReply, CacheError>),
    /// Waiting for the descriptor: resume with the ticket when ready or timed out.
    Wait(CacheWait),
    /// Run it the blocking way.
    Blocking,
}

/// Where a [`CacheStep::Wait`] waits: a descriptor, for what, how long, and the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheWait {
    /// The backend's socket, open until the ticket is resumed or cancelled.
    pub fd: i32,
    /// Wait for data to read (`true`) or for room to write (`false`).
    pub readable: bool,
    /// The longest wait, in milliseconds (the backend's socket timeout).
    pub timeout_ms: u64,
    /// The operation's name, unique among the backend's operations in flight.
    pub ticket: u64,
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

    fn execute(&self, op: CacheOp) -> Result<CacheReply, CacheError> {
        (**self).execute(op)
    }

    fn readiness_calls(&self) -> bool {
        (**self).readiness_calls()
    }

    fn start(&self, op: CacheOp) -> CacheStep {
        (**self).start(op)
    }

    fn resume(&self, ticket: u64, timed_out: bool) -> CacheStep {
        (**self).resume(ticket, timed_out)
    }

    fn cancel(&self, ticket: u64) {
        (**self).cancel(ticket)
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
