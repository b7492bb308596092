#![doc = include_str!("../README.md")]

pub mod clock;
mod deflate;
pub mod expiry;
pub mod json;
pub mod key;
pub mod redact;
pub mod signing;
mod storable;
pub mod time;

pub use clock::{Clock, HostClock, ManualClock, SystemClock};
pub use expiry::EXPIRY_KEY;
pub use json::JsonError;
pub use redact::redact_url;
pub use signing::{DecodeError, EncodeError, Encoded, SessionCodec};

/// The salt of every server-side store (db, cache, cached_db, file): Django derives it from the
/// class name `SessionStore`, which all of them share.
pub const SESSION_STORE_SALT: &str = sessionkit_sdk::EngineInfo::SESSION_STORE_SALT;

/// The salt of signed-cookie sessions (Django's `signed_cookies` backend).
pub const SIGNED_COOKIES_SALT: &str = sessionkit_sdk::EngineInfo::SIGNED_COOKIES_SALT;

/// A session's data: a JSON object that keeps insertion order like a Python dict.
///
/// Remove keys with `shift_remove` so the remaining keys keep their order (and so the encoded
/// bytes match Django's).
pub type SessionMap = serde_json::Map<String, serde_json::Value>;
