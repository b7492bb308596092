//! What an engine can do, declared once so the host and the conformance suite can branch on it.

use std::fmt;

use abi_stable::{StableAbi, std_types::RStr};

/// A set of engine capabilities, as bits (new bits can be added without changing the layout).
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities {
    /// The raw bit set.
    pub bits: u64,
}

impl Capabilities {
    /// `delete` really revokes a session: a copy of the key held elsewhere stops working.
    /// Signed cookies cannot offer it.
    pub const SERVER_SIDE_INVALIDATION: Self = Self::from_bits(1 << 0);
    /// Expired sessions stay stored until `clear_expired` removes them (db, file), so
    /// `clearsessions` has work to do.
    pub const CLEAR_EXPIRED: Self = Self::from_bits(1 << 1);
    /// The store drops expired sessions by itself (a cache TTL, a cookie's age).
    pub const EXPIRES_BY_ITSELF: Self = Self::from_bits(1 << 2);
    /// Sessions survive a restart of the process and of the store.
    pub const PERSISTENT: Self = Self::from_bits(1 << 3);
    /// Several processes see the same sessions.
    pub const SHARED_BETWEEN_PROCESSES: Self = Self::from_bits(1 << 4);
    /// `sessions_of_account` and `delete_sessions_of_account` work ("log out everywhere").
    pub const ACCOUNT_INDEX: Self = Self::from_bits(1 << 5);

    /// Every call finishes in-process without I/O or waiting on anything but a short lock (an
    /// in-memory store, a signed cookie), so an async host may call the store on its executor
    /// instead of hopping to a blocking pool.
    pub const NON_BLOCKING: Self = Self::from_bits(1 << 6);

    /// `save_if_unchanged` works (contract 0.2): a save that only replaces the record if it
    /// still holds what the request loaded, so the host can merge concurrent requests to one
    /// session instead of losing all but the last one's writes.
    pub const CONDITIONAL_SAVE: Self = Self::from_bits(1 << 7);

    /// A `load` may hand back the session dictionary itself instead of signed data: a
    /// `session_data` that begins with `{` is the session as compact JSON, because the store
    /// keeps the dict as Django's cache backends do (pickled, unsigned: Django trusts its cache,
    /// and so does the host, for this engine only). Writes still carry both forms
    /// (`SessionWrite::record.session_data` signed, `SessionWrite::session_json` the dict), and
    /// a conditional save's `expected_data` is whichever form the load returned.
    pub const DECODED_DATA: Self = Self::from_bits(1 << 8);

    /// `start_call` / `resume_call` run calls without blocking (contract 0.4, see
    /// [`crate::call`]): an async host waits on the store's socket on its event loop instead of
    /// a blocking pool. A store may still hand any one call back to be run the blocking way.
    pub const READINESS_CALLS: Self = Self::from_bits(1 << 9);

    /// No capability at all.
    pub const NONE: Self = Self::from_bits(0);

    /// The set with exactly `bits`.
    pub const fn from_bits(bits: u64) -> Self {
        Self { bits }
    }

    /// Both sets together.
    pub const fn union(self, other: Self) -> Self {
        Self::from_bits(self.bits | other.bits)
    }

    /// Whether every capability of `other` is in this set.
    pub const fn contains(self, other: Self) -> bool {
        self.bits & other.bits == other.bits
    }

    /// Each known capability with its name, for listings.
    pub const ALL_NAMED: [(Self, &'static str); 10] = [
        (Self::SERVER_SIDE_INVALIDATION, "server_side_invalidation"),
        (Self::CLEAR_EXPIRED, "clear_expired"),
        (Self::EXPIRES_BY_ITSELF, "expires_by_itself"),
        (Self::PERSISTENT, "persistent"),
        (Self::SHARED_BETWEEN_PROCESSES, "shared_between_processes"),
        (Self::ACCOUNT_INDEX, "account_index"),
        (Self::NON_BLOCKING, "non_blocking"),
        (Self::CONDITIONAL_SAVE, "conditional_save"),
        (Self::DECODED_DATA, "decoded_data"),
        (Self::READINESS_CALLS, "readiness_calls"),
    ];

    /// The names of the known capabilities in this set.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::ALL_NAMED
            .into_iter()
            .filter(move |(cap, _)| self.contains(*cap))
            .map(|(_, name)| name)
    }
}

impl std::ops::BitOr for Capabilities {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// Which session keys an engine accepts; the host never hands an engine a key outside it.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyFormat {
    /// Django's keys: 8 to 40 characters of `[a-z0-9]` (sessionkit mints 32).
    DjangoSessionKey,
    /// The key is the signed session itself (the signed-cookie engine): at most 4096 bytes of
    /// cookie-safe ASCII, verified by the host with the engine's salt and
    /// `SESSION_COOKIE_AGE` as the maximum age.
    SignedPayload,
}

/// What an engine says about itself before it is opened.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct EngineInfo {
    /// The short name `SESSION_ENGINE` uses (`db`, `cache`, ...); the library file is
    /// `libsessionkit_engine_<name>.so`.
    pub name: RStr<'static>,
    /// The engine's own version.
    pub version: RStr<'static>,
    /// The salt the host signs this engine's `session_data` with. Django's server-side engines
    /// all use `django.contrib.sessions.SessionStore`.
    pub salt: RStr<'static>,
    /// What every store of the engine can do. An opened store may add more that depend on its
    /// settings ([`SessionStore::capabilities`](crate::SessionStore::capabilities)).
    pub capabilities: Capabilities,
    /// Which keys it accepts.
    pub key_format: KeyFormat,
}

impl EngineInfo {
    /// The salt of every server-side engine (db, cache, cached_db, file and custom stores):
    /// Django derives it from the class name `SessionStore`, which all of them share
    /// (`django/contrib/sessions/backends/base.py`, `SessionBase.key_salt`).
    pub const SESSION_STORE_SALT: &'static str = "django.contrib.sessions.SessionStore";

    /// The salt of signed-cookie sessions (`django/contrib/sessions/backends/signed_cookies.py`).
    pub const SIGNED_COOKIES_SALT: &'static str = "django.contrib.sessions.backends.signed_cookies";

    /// An engine's description from its five parts, usable in a `const`, so every engine's
    /// `INFO` is built the same way.
    pub const fn new(
        name: &'static str,
        version: &'static str,
        salt: &'static str,
        capabilities: Capabilities,
        key_format: KeyFormat,
    ) -> Self {
        Self {
            name: RStr::from_str(name),
            version: RStr::from_str(version),
            salt: RStr::from_str(salt),
            capabilities,
            key_format,
        }
    }
}
