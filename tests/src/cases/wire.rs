//! What is stored is Django's format (`SessionBase.encode`, `signing.dumps`: ASCII-only compact
//! JSON, zlib only when shorter, unpadded base64url, base62 timestamp, HMAC-SHA256), checked
//! against this suite's own implementation of `signing.dumps` (itself pinned to Django's worked
//! example in a unit test).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use sessionkit::{Capabilities, Engine, KeyFormat, ManualClock};

use super::reason;
use crate::{
    Case, Failure, Group, Target,
    support::{CaseResult, django, map, saved},
};

pub(super) fn cases() -> Vec<Case> {
    use Group::Wire as G;
    vec![
        case!(G, stored_session_data_is_signed_compact_ascii_json)
            .key_format(KeyFormat::DjangoSessionKey, reason::DJANGO_KEYS)
            .excludes(Capabilities::DECODED_DATA, reason::UNSIGNED_STORE),
        case!(G, encode_is_byte_identical_to_django_signing),
        case!(G, payload_is_compressed_only_when_it_shrinks),
    ]
}

/// The session of the wire cases, and Python's `json.dumps(separators=(",", ":"))` of it.
fn sample() -> (serde_json::Value, &'static str) {
    (
        json!({"foo": "bar", "n": 1, "u": "Zoë ✓ 😀", "list": [1, 2.5, null, true], "q": "\"/<"}),
        r#"{"foo":"bar","n":1,"u":"Zo\u00eb \u2713 \ud83d\ude00","list":[1,2.5,null,true],"q":"\"/<"}"#,
    )
}

/// A stored record's `session_data` is `payload:timestamp:signature` signed with `SECRET_KEY`
/// and the engine's salt, and its payload is Python's compact, ASCII-only JSON of the session
/// (non-ASCII as `\uXXXX`, astral characters as surrogate pairs, insertion order kept).
fn stored_session_data_is_signed_compact_ascii_json(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (value, python) = sample();
    let before = Utc::now().timestamp();
    let (mut session, key) = saved(&engine, value)?;
    let record = engine.store().load(&key)?;
    session.delete()?;
    let record = record.ok_or_else(|| Failure::new("the saved session has no record"))?;
    let secret = &engine.settings().secret_key;
    let salt = &engine.description().salt;
    let unsigned = django::unsign(secret, salt, record.session_data.as_str())
        .map_err(|why| Failure::new(format!("stored session_data is not Django-signed: {why}")))?;
    ensure!(
        unsigned.json.is_ascii(),
        "the stored JSON is not ASCII-only"
    );
    ensure_eq!(
        String::from_utf8_lossy(&unsigned.json),
        python,
        "the stored JSON"
    );
    let after = Utc::now().timestamp();
    ensure!(
        (before - 1..=after + 1).contains(&unsigned.timestamp),
        "the signing timestamp {} is not the save time ({before}..={after})",
        unsigned.timestamp
    );
    Ok(())
}

/// `Engine::encode` at a fixed time gives exactly what Django's `signing.dumps(session,
/// salt, compress=True)` gives (base62 timestamp, HMAC-SHA256 with the derived key, base64url
/// without padding).
fn encode_is_byte_identical_to_django_signing(t: &Target) -> CaseResult {
    let at = DateTime::<Utc>::from_timestamp(1_750_000_000, 0)
        .ok_or_else(|| Failure::new("a fixed timestamp is out of range"))?;
    let engine = t.engine()?.with_clock(Arc::new(ManualClock::new(at)));
    let (value, python) = sample();
    let encoded = engine.encode(&map(value))?;
    let secret = &engine.settings().secret_key;
    let expected = django::sign(
        secret,
        &engine.description().salt,
        &django::payload(python.as_bytes()),
        at.timestamp(),
    );
    ensure_eq!(encoded.session_data, expected, "session_data");
    ensure_eq!(
        encoded.session_json,
        python,
        "session_json (the compact JSON handed to engines)"
    );
    Ok(())
}

/// The payload is zlib-compressed (with the `.` marker) only when that is shorter by more than
/// one byte; both forms carry the exact JSON.
fn payload_is_compressed_only_when_it_shrinks(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let check = |engine: &Engine, entries, compressed: bool| -> CaseResult {
        let session = map(entries);
        let encoded = engine.encode(&session)?;
        let secret = &engine.settings().secret_key;
        let unsigned = django::unsign(secret, &engine.description().salt, &encoded.session_data)
            .map_err(|why| Failure::new(format!("encoded data is not Django-signed: {why}")))?;
        ensure_eq!(
            unsigned.compressed,
            compressed,
            "compressed, for {} bytes of JSON",
            unsigned.json.len()
        );
        ensure_eq!(
            String::from_utf8_lossy(&unsigned.json),
            encoded.session_json,
            "the payload's JSON"
        );
        Ok(())
    };
    check(&engine, json!({"foo": "bar"}), false)?;
    check(&engine, json!({"a": "x".repeat(1000)}), true)
}
