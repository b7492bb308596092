//! Helpers the cases share: keys, records, sessions, error checks, async, and an independent
//! implementation of Django's signing for the wire-format and tampering cases.

use std::{
    fmt::Debug,
    io::{Read, Write},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use flate2::{Compression, read::ZlibDecoder, write::ZlibEncoder};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sessionkit::{
    Capabilities, Engine, Error, ErrorKind, Session, SessionMap, SessionRecord, Timestamp,
};
use sessionkit_codec::{key::new_session_key, time};
use sessionkit_sdk::SessionWrite;
use sha2::{Digest, Sha256};

use crate::Failure;

/// What every case function returns.
pub(crate) type CaseResult = Result<(), Failure>;

/// A fresh random session key, so cases never collide in a shared store.
pub(crate) fn new_key() -> String {
    new_session_key()
}

/// A random positive account id, so account-index cases never collide in a shared store.
pub(crate) fn new_account_id() -> i64 {
    let key = new_session_key();
    // Django's documented account column is an IntegerField (32-bit): ids outside it cannot be
    // indexed there (Django cannot store them either), so draw from 1..=i32::MAX. 11 base-36
    // digits are below 36^11 < 2^57, so the parse always fits in an i64.
    i64::from_str_radix(&key[..11], 36).unwrap_or(0) % i64::from(i32::MAX) + 1
}

/// The session map of a JSON object literal (`json!({...})`); anything else is an empty map.
pub(crate) fn map(value: Value) -> SessionMap {
    match value {
        Value::Object(map) => map,
        _ => SessionMap::new(),
    }
}

/// The session's key, or a failure saying the session has none.
pub(crate) fn key_of(session: &Session) -> Result<String, Failure> {
    session
        .session_key()
        .map(str::to_owned)
        .ok_or_else(|| Failure::new("the session has no key where one was expected"))
}

/// A new session holding `entries` (a JSON object), saved; returns it and its key.
pub(crate) fn saved(engine: &Engine, entries: Value) -> Result<(Session, String), Failure> {
    let mut session = engine.session(None);
    session.update(map(entries))?;
    session.save()?;
    let key = key_of(&session)?;
    Ok((session, key))
}

/// The whole map of a fresh session opened on `key` (a new request carrying the cookie).
pub(crate) fn reopened(engine: &Engine, key: &str) -> Result<SessionMap, Failure> {
    Ok(engine.session(Some(key)).load()?)
}

/// The timestamp of `when`.
pub(crate) fn timestamp(when: DateTime<Utc>) -> Timestamp {
    time::from_datetime(when)
}

/// A record as the host would write it for `entries` under `key`, expiring at `expire`: the
/// map carries `_session_expiry` as Django's ISO text for that date (what `set_expiry(date)`
/// stores), so a store that judges expiry from the data agrees with `expire_date`.
pub(crate) fn write_for(
    engine: &Engine,
    key: &str,
    entries: Value,
    expire: DateTime<Utc>,
) -> Result<SessionWrite, Failure> {
    let mut session = map(entries);
    session.insert(
        "_session_expiry".to_owned(),
        Value::String(time::isoformat(expire)),
    );
    let encoded = engine.encode(&session)?;
    Ok(raw_write(
        key,
        &encoded.session_data,
        &encoded.session_json,
        timestamp(expire),
    ))
}

/// A record of `entries` under `key` that stays live for an hour.
pub(crate) fn live_write(
    engine: &Engine,
    key: &str,
    entries: Value,
) -> Result<SessionWrite, Failure> {
    write_for(engine, key, entries, Utc::now() + Duration::hours(1))
}

/// A record of `entries` under `key` that expired an hour ago.
pub(crate) fn expired_write(
    engine: &Engine,
    key: &str,
    entries: Value,
) -> Result<SessionWrite, Failure> {
    write_for(engine, key, entries, Utc::now() - Duration::hours(1))
}

/// A record with exactly these fields (for tampered or hand-made `session_data`).
pub(crate) fn raw_write(key: &str, data: &str, json: &str, expire: Timestamp) -> SessionWrite {
    SessionWrite::new(SessionRecord::new(key, data, expire), json)
}

/// A live record under `key` whose `session_data` is exactly `data` (possibly garbage).
pub(crate) fn live_raw_write(key: &str, data: &str) -> SessionWrite {
    raw_write(key, data, "{}", timestamp(Utc::now() + Duration::hours(1)))
}

/// Checks that `loaded` (a loaded record's `session_data`) is what `write` stored: the same
/// signed data, or, for an engine that keeps the unsigned dict (`DECODED_DATA`, Django's cache
/// backends) and handed back JSON text, the write's session dict.
pub(crate) fn ensure_loaded_data(
    engine: &Engine,
    loaded: &str,
    write: &SessionWrite,
    what: &str,
) -> CaseResult {
    let unsigned = engine.capabilities().contains(Capabilities::DECODED_DATA);
    if !(unsigned && loaded.starts_with('{')) {
        ensure_eq!(loaded, write.record.session_data.as_str(), "{what}");
        return Ok(());
    }
    let parse = |text: &str, whose: &str| {
        serde_json::from_str::<Value>(text).map_err(|error| {
            Failure::new(format!("{what}: {whose} is not JSON ({error}): {text:?}"))
        })
    };
    ensure_eq!(
        parse(loaded, "the loaded dict")?,
        parse(write.session_json.as_str(), "the written session_json")?,
        "{what} (the unsigned dict a DECODED_DATA engine keeps)"
    );
    Ok(())
}

/// Checks that `result` failed with an error of `kind`.
pub(crate) fn expect_kind<T: Debug>(
    result: Result<T, Error>,
    kind: ErrorKind,
    what: &str,
) -> CaseResult {
    match result {
        Err(error) if error.kind() == Some(kind) => Ok(()),
        Err(error) => Err(Failure::new(format!(
            "{what}: failed with {:?} ({error}), expected a '{kind}' error",
            error.kind()
        ))),
        Ok(value) => Err(Failure::new(format!(
            "{what}: succeeded with {value:?}, expected a '{kind}' error"
        ))),
    }
}

/// Whether `error` says the operation is unsupported (refused by the host or the engine).
pub(crate) fn is_unsupported(error: &Error) -> bool {
    matches!(error, Error::Unsupported { .. }) || error.kind() == Some(ErrorKind::Unsupported)
}

/// Runs `future` to completion on a fresh current-thread tokio runtime with I/O and time (a
/// `readiness_calls` store waits on its socket there, as in a server).
pub(crate) fn block_on<F: Future>(future: F) -> Result<F::Output, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}

/// Whether a timestamp read back from a store is `written`, to the microsecond or (for a store
/// that keeps whole seconds) to the second, truncated.
pub(crate) fn same_to_store_precision(read: Timestamp, written: Timestamp) -> bool {
    read == written || read == Timestamp::from_secs(written.as_secs())
}

/// Whether `read` is the expire date `written` as `engine`'s store keeps it: exact or truncated
/// to the second, or for a store that keeps only a TTL (`DECODED_DATA`: Django's cache keeps no
/// expire_date) within a second of it.
pub(crate) fn stored_expiry_matches(engine: &Engine, read: Timestamp, written: Timestamp) -> bool {
    same_to_store_precision(read, written)
        || (engine.capabilities().contains(Capabilities::DECODED_DATA)
            && (read.micros - written.micros).abs() <= 1_000_000)
}

/// A JSON array nested `depth` levels deep.
pub(crate) fn nested_array(depth: usize) -> Value {
    let mut value = Value::Array(Vec::new());
    for _ in 1..depth {
        value = Value::Array(vec![value]);
    }
    value
}

/// Django's signing, written here independently of `sessionkit-codec` so the suite can check
/// stored data against the format itself and forge validly signed hostile payloads.
pub(crate) mod django {
    use super::*;

    /// Django's base62 alphabet for the signing timestamp.
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    /// `signing.b62_encode`.
    pub(crate) fn base62(mut n: i64) -> String {
        if n == 0 {
            return "0".to_owned();
        }
        let negative = n < 0;
        let mut digits = Vec::new();
        while n != 0 {
            let digit = (n % 62).unsigned_abs() as usize;
            digits.push(BASE62[digit]);
            n /= 62;
        }
        if negative {
            digits.push(b'-');
        }
        digits.reverse();
        String::from_utf8_lossy(&digits).into_owned()
    }

    /// The base64 signature of `value` (`salted_hmac(salt + "signer", value, secret)`).
    pub(crate) fn signature(secret: &str, salt: &str, value: &str) -> String {
        let key = Sha256::digest(format!("{salt}signer{secret}").as_bytes());
        // HMAC accepts keys of any length, so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(value.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// `TimestampSigner.sign(payload)` at `unix_seconds`: `payload:ts:sig`. The payload is
    /// signed as given, so it may be anything (valid or hostile).
    pub(crate) fn sign(secret: &str, salt: &str, payload: &str, unix_seconds: i64) -> String {
        let value = format!("{payload}:{}", base62(unix_seconds));
        let signature = signature(secret, salt, &value);
        format!("{value}:{signature}")
    }

    /// The payload segment Django writes for `json` bytes: compressed with a `.` marker when
    /// that is shorter by more than one byte, else plain, base64url without padding.
    pub(crate) fn payload(json: &[u8]) -> String {
        let compressed = zlib(json);
        if compressed.len() < json.len().saturating_sub(1) {
            format!(".{}", URL_SAFE_NO_PAD.encode(compressed))
        } else {
            URL_SAFE_NO_PAD.encode(json)
        }
    }

    /// zlib-compresses `bytes` at the default level, as Python's `zlib.compress`.
    pub(crate) fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        // Writing to a Vec cannot fail.
        encoder.write_all(bytes).expect("writing to a Vec");
        encoder.finish().expect("writing to a Vec")
    }

    /// What [`unsign`] found in a stored `session_data`.
    #[derive(Debug)]
    pub(crate) struct Unsigned {
        /// The JSON text.
        pub(crate) json: Vec<u8>,
        /// Whether the payload carried the `.` compression marker.
        pub(crate) compressed: bool,
        /// The signing time (unix seconds).
        pub(crate) timestamp: i64,
    }

    /// Verifies `data` as `signing.loads` would (with `secret` only) and returns its JSON text.
    pub(crate) fn unsign(secret: &str, salt: &str, data: &str) -> Result<Unsigned, String> {
        let (value, signature) = data.rsplit_once(':').ok_or("no ':' before a signature")?;
        if signature.len() != 43 {
            return Err(format!(
                "signature of {} characters, expected 43",
                signature.len()
            ));
        }
        if self::signature(secret, salt, value) != signature {
            return Err("the signature does not verify with SECRET_KEY and the salt".to_owned());
        }
        let (payload, ts) = value.rsplit_once(':').ok_or("no timestamp segment")?;
        let timestamp = base62_decode(ts).ok_or_else(|| format!("bad base62 timestamp {ts:?}"))?;
        let (compressed, encoded) = match payload.strip_prefix('.') {
            Some(rest) => (true, rest),
            None => (false, payload),
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|e| format!("bad base64: {e}"))?;
        let json = if compressed {
            let mut json = Vec::new();
            ZlibDecoder::new(bytes.as_slice())
                .read_to_end(&mut json)
                .map_err(|e| format!("bad zlib stream: {e}"))?;
            json
        } else {
            bytes
        };
        Ok(Unsigned {
            json,
            compressed,
            timestamp,
        })
    }

    fn base62_decode(text: &str) -> Option<i64> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if digits.is_empty() {
            return None;
        }
        let mut n: i64 = 0;
        for byte in digits.bytes() {
            let digit = BASE62.iter().position(|&c| c == byte)?;
            n = n.checked_mul(62)?.checked_add(i64::try_from(digit).ok()?)?;
        }
        Some(if negative { -n } else { n })
    }
}

#[cfg(test)]
mod tests {
    use super::django;

    /// The suite's own signer reproduces Django's worked example (the `db-simple`
    /// vector of `sdk/codec/tests/django_vectors.rs`, made by `django.core.signing.dumps`), so the wire cases check against Django, not against themselves.
    #[test]
    fn own_signer_reproduces_djangos_worked_example() {
        let signed = django::sign(
            "django-insecure-vector-key-0001",
            "django.contrib.sessions.SessionStore",
            &django::payload(br#"{"foo":"bar"}"#),
            1_750_000_000,
        );
        assert_eq!(
            signed,
            "eyJmb28iOiJiYXIifQ:1uQowS:7pWrN0ZVJXSPFd6-WZMHSsUF6Cvf2A6L4PaT1EkjJ_c"
        );
        let unsigned = django::unsign(
            "django-insecure-vector-key-0001",
            "django.contrib.sessions.SessionStore",
            &signed,
        )
        .expect("the vector verifies");
        assert_eq!(unsigned.json, br#"{"foo":"bar"}"#);
        assert_eq!(unsigned.timestamp, 1_750_000_000);
        assert!(!unsigned.compressed);
    }

    /// base62 matches Django's `b62_encode` on zero, negatives and the vector's timestamp.
    #[test]
    fn base62_matches_django() {
        assert_eq!(django::base62(0), "0");
        assert_eq!(django::base62(61), "z");
        assert_eq!(django::base62(62), "10");
        assert_eq!(django::base62(-62), "-10");
        assert_eq!(django::base62(1_750_000_000), "1uQowS");
    }
}
