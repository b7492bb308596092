//! The stored record: Django's `AbstractBaseSession`, in FFI-safe types.

use abi_stable::{StableAbi, std_types::RString};

/// A point in time in UTC, as microseconds since the Unix epoch.
///
/// Django's `expire_date` is a microsecond-precision datetime; a plain integer crosses the ABI
/// without a date library on either side. Conversions live in `sessionkit-codec`.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Microseconds since 1970-01-01T00:00:00Z (negative before it).
    pub micros: i64,
}

impl Timestamp {
    /// The timestamp `micros` microseconds after the Unix epoch.
    pub const fn from_micros(micros: i64) -> Self {
        Self { micros }
    }

    /// The timestamp `secs` whole seconds after the Unix epoch (saturating).
    pub const fn from_secs(secs: i64) -> Self {
        Self {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    /// Whole seconds since the Unix epoch, rounded towards negative infinity.
    pub const fn as_secs(self) -> i64 {
        self.micros.div_euclid(1_000_000)
    }

    /// The current time from the system clock (engines judge expiry with it).
    pub fn now() -> Self {
        use std::time::{SystemTime, UNIX_EPOCH};
        let micros = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Self { micros }
    }
}

/// One stored session: Django's `AbstractBaseSession` row (`session_key`, `session_data`,
/// `expire_date`), and what every engine stores and returns.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session key: 32 characters of `[a-z0-9]` for server-side engines; the signed
    /// payload itself for engines whose key format is [`KeyFormat::SignedPayload`].
    ///
    /// [`KeyFormat::SignedPayload`]: crate::KeyFormat::SignedPayload
    pub session_key: RString,
    /// The encoded, signed session (Django's `signing.dumps` string); opaque to engines.
    pub session_data: RString,
    /// When the session stops being valid (UTC). Loads at or after it see no session.
    pub expire_date: Timestamp,
}

/// What a create or save hands an engine: the record to store, plus the session's plain JSON.
///
/// The host has just serialised the session to sign it; an engine that indexes something
/// inside the session (the `account_db` engine reads `_auth_user_id`) parses `session_json`
/// instead of verifying and decoding `session_data` again.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct SessionWrite {
    /// The record to store.
    pub record: SessionRecord,
    /// The session dictionary as compact JSON (a JSON object), before compression and signing.
    pub session_json: RString,
}

impl SessionRecord {
    /// A record from its three columns, so callers (tests, stores rebuilding a row) need not
    /// spell out the FFI string types.
    pub fn new(
        session_key: impl Into<RString>,
        session_data: impl Into<RString>,
        expire_date: Timestamp,
    ) -> Self {
        Self {
            session_key: session_key.into(),
            session_data: session_data.into(),
            expire_date,
        }
    }
}

impl SessionWrite {
    /// A write of `record` whose session dictionary is `session_json` (a JSON object).
    pub fn new(record: SessionRecord, session_json: impl Into<RString>) -> Self {
        Self {
            record,
            session_json: session_json.into(),
        }
    }
}
