//! Hostile or broken input that reaches the session layer (Django's `SessionBase.decode`, which
//! never raises, and `SECRET_KEY_FALLBACKS`):
//! tampered or foreign `session_data` loads as an empty session, unstorable values are refused
//! before anything is stored, oversize sessions are never silently lost, and extreme expiry
//! values never panic.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use serde_json::{Value, json};
use sessionkit::{Capabilities, Engine, Error, Expiry, KeyFormat, Timestamp};
use sessionkit_codec::{SESSION_STORE_SALT, SIGNED_COOKIES_SALT, signing::SessionCodec};

use super::reason;
use crate::{
    Case, Failure, Group, Target,
    support::{
        CaseResult, django, key_of, live_raw_write, map, nested_array, new_key, raw_write,
        reopened, saved,
    },
};

pub(super) fn cases() -> Vec<Case> {
    use Group::BadInput as G;
    let stored = |case: Case| case.key_format(KeyFormat::DjangoSessionKey, reason::DJANGO_KEYS);
    let signed =
        |case: Case| stored(case).excludes(Capabilities::DECODED_DATA, reason::UNSIGNED_STORE);
    vec![
        signed(case!(G, tampered_session_data_loads_as_an_empty_session)),
        signed(case!(G, garbage_session_data_loads_as_an_empty_session)),
        signed(case!(
            G,
            session_data_signed_with_another_secret_loads_as_an_empty_session
        )),
        signed(case!(
            G,
            session_data_signed_with_another_salt_loads_as_an_empty_session
        )),
        signed(case!(
            G,
            session_data_signed_with_a_fallback_secret_still_loads
        )),
        signed(case!(G, resaved_session_is_signed_with_the_current_secret)),
        signed(case!(
            G,
            fixed_validly_signed_non_object_loads_as_an_empty_session
        )),
        signed(case!(
            G,
            validly_signed_undecodable_payload_loads_as_an_empty_session
        )),
        signed(case!(G, decompression_bomb_loads_as_an_empty_session)),
        case!(G, insert_of_a_too_deep_value_is_refused),
        case!(G, insert_of_a_non_finite_float_is_refused),
        case!(G, unstorable_value_smuggled_in_by_update_is_never_stored),
        case!(G, oversize_session_is_refused_at_save_or_loads_back_whole),
        case!(G, extreme_expiry_values_never_panic),
        stored(case!(G, extreme_record_expiry_dates_never_panic)),
    ]
}

/// A fixed secret that is not the target's.
const FOREIGN_SECRET: &str = "conformance-foreign-secret-that-signed-nothing-of-ours";

/// Stores `data` raw under a fresh key and opens a session on it; returns the loaded map.
fn load_raw(engine: &Engine, data: &str) -> Result<serde_json::Map<String, Value>, Failure> {
    let store = engine.store();
    let key = store.create(live_raw_write(&new_key(), data))?;
    let loaded = reopened(engine, &key);
    store.delete(&key)?;
    loaded
}

/// Checks that each of `inputs` loads as an empty session, both stored and through `decode`.
fn each_loads_empty(engine: &Engine, inputs: &[(String, String)]) -> CaseResult {
    for (what, data) in inputs {
        let loaded = load_raw(engine, data)?;
        ensure!(
            loaded.is_empty(),
            "{what}: loaded as {loaded:?}, expected an empty session"
        );
        let decoded = engine.decode(data);
        ensure!(
            decoded.is_empty(),
            "{what}: decode gave {decoded:?}, expected an empty map"
        );
    }
    Ok(())
}

/// The engine's secret and salt.
fn secret_and_salt(engine: &Engine) -> (String, String) {
    (
        engine.settings().secret_key.clone(),
        engine.description().salt.clone(),
    )
}

/// Django `signing.dumps` of a JSON text with the engine's secret and salt, signed now.
fn signed_json(engine: &Engine, json: &[u8]) -> String {
    let (secret, salt) = secret_and_salt(engine);
    django::sign(
        &secret,
        &salt,
        &django::payload(json),
        Utc::now().timestamp(),
    )
}

/// A positive control for the hand-signed cases: what this suite signs with the engine's
/// secret must load, or every "loads as empty" below would pass for the wrong reason.
fn control_loads(engine: &Engine) -> CaseResult {
    let data = signed_json(engine, br#"{"control":"ok"}"#);
    let loaded = load_raw(engine, &data)?;
    ensure_eq!(
        loaded,
        map(json!({"control": "ok"})),
        "a session this suite signed with the engine's secret (positive control)"
    );
    Ok(())
}

/// Tampered `session_data` (Django `BadSignature`): one flipped character
/// anywhere, truncation, extra bytes, swapped segments or a missing signature load as an empty
/// session, never as the forged data.
fn tampered_session_data_loads_as_an_empty_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let good = engine.encode(&map(json!({"role": "user", "padding": "x".repeat(40)})))?;
    let data = good.session_data;
    ensure!(
        !load_raw(&engine, &data)?.is_empty(),
        "the untampered data does not load"
    );
    let mut inputs = Vec::new();
    for position in [
        0,
        data.len() / 3,
        data.len() / 2,
        data.len() - 20,
        data.len() - 1,
    ] {
        let mut bytes = data.clone().into_bytes();
        bytes[position] = if bytes[position] == b'A' { b'B' } else { b'A' };
        let mutant = String::from_utf8_lossy(&bytes).into_owned();
        inputs.push((format!("character {position} changed"), mutant));
    }
    inputs.push((
        "last character cut".to_owned(),
        data[..data.len() - 1].to_owned(),
    ));
    inputs.push(("cut in half".to_owned(), data[..data.len() / 2].to_owned()));
    inputs.push(("one byte appended".to_owned(), format!("{data}A")));
    let parts: Vec<&str> = data.rsplitn(3, ':').collect();
    if let [signature, timestamp, payload] = parts[..] {
        inputs.push((
            "signature removed".to_owned(),
            format!("{payload}:{timestamp}"),
        ));
        inputs.push((
            "signature empty".to_owned(),
            format!("{payload}:{timestamp}:"),
        ));
        inputs.push((
            "segments swapped".to_owned(),
            format!("{timestamp}:{payload}:{signature}"),
        ));
        inputs.push((
            "short signature".to_owned(),
            format!("{payload}:{timestamp}:{}", &signature[..1]),
        ));
    }
    each_loads_empty(&engine, &inputs)
}

/// Garbage `session_data` (Django `test_decode_failure_logged_to_security`): empty, no
/// signature, legacy pre-3.1 format, bad base64, arbitrary text.
fn garbage_session_data_loads_as_an_empty_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let legacy = base64::engine::general_purpose::STANDARD.encode("flaskdj:alkdjf");
    let inputs: Vec<(String, String)> = [
        ("empty", String::new()),
        ("bad:encoded:value", "bad:encoded:value".to_owned()),
        ("legacy pre-3.1 format", legacy),
        ("colons only", "::".to_owned()),
        ("no colon", "justtext".to_owned()),
        ("10 KiB of text", "x".repeat(10 * 1024)),
    ]
    .into_iter()
    .map(|(what, data)| (what.to_owned(), data))
    .collect();
    each_loads_empty(&engine, &inputs)?;
    // Django never writes non-ASCII data, so a store may refuse it; if stored, it loads empty.
    let non_ascii = "Zoë:ÿÿ:é";
    let store = engine.store();
    let key = new_key();
    if store.create(live_raw_write(&key, non_ascii)).is_ok() {
        let loaded = reopened(&engine, &key);
        store.delete(&key)?;
        let loaded = loaded?;
        ensure!(loaded.is_empty(), "non-ASCII data loaded as {loaded:?}");
    }
    ensure!(
        engine.decode(non_ascii).is_empty(),
        "decode of non-ASCII data gave a session"
    );
    Ok(())
}

/// Data signed with another secret is rejected (Django `BadSignature`: wrong key).
fn session_data_signed_with_another_secret_loads_as_an_empty_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let salt = engine.description().salt.clone();
    let foreign = SessionCodec::new(&salt, FOREIGN_SECRET.as_bytes(), &[]);
    let encoded = foreign
        .encode(&map(json!({"admin": true})), Utc::now().timestamp())
        .map_err(|e| Failure::new(format!("encoding with the codec failed: {e}")))?;
    each_loads_empty(
        &engine,
        &[(
            "signed with another secret".to_owned(),
            encoded.session_data,
        )],
    )
}

/// Data signed with the engine's secret but another salt (the signed-cookie salt for stored
/// sessions, and the other way round) is rejected: salts keep purposes apart (CVE-2026-6873's
/// lesson).
fn session_data_signed_with_another_salt_loads_as_an_empty_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (secret, salt) = secret_and_salt(&engine);
    let other = if salt == SIGNED_COOKIES_SALT {
        SESSION_STORE_SALT
    } else {
        SIGNED_COOKIES_SALT
    };
    let codec = SessionCodec::new(other, secret.as_bytes(), &[]);
    let encoded = codec
        .encode(&map(json!({"admin": true})), Utc::now().timestamp())
        .map_err(|e| Failure::new(format!("encoding with the codec failed: {e}")))?;
    each_loads_empty(
        &engine,
        &[(format!("signed with salt {other:?}"), encoded.session_data)],
    )
}

/// Key rotation (Django `SECRET_KEY_FALLBACKS`, ticket #34384 fixed in 4.1.8): data signed with a
/// secret now listed in `SECRET_KEY_FALLBACKS` still loads.
fn session_data_signed_with_a_fallback_secret_still_loads(t: &Target) -> CaseResult {
    let probe = t.engine()?;
    let old = probe.settings().secret_key.clone();
    let engine = t.engine_with(|s| {
        s.secret_key = FOREIGN_SECRET.to_owned();
        s.secret_key_fallbacks = vec![old.clone()];
    })?;
    let salt = engine.description().salt.clone();
    let codec = SessionCodec::new(&salt, old.as_bytes(), &[]);
    let encoded = codec
        .encode(&map(json!({"user": "42"})), Utc::now().timestamp())
        .map_err(|e| Failure::new(format!("encoding with the codec failed: {e}")))?;
    let loaded = load_raw(&engine, &encoded.session_data)?;
    ensure_eq!(
        loaded,
        map(json!({"user": "42"})),
        "a session signed with a fallback secret"
    );
    Ok(())
}

/// After rotation a session read through a fallback secret is re-signed with the current
/// `SECRET_KEY` when saved (Django signs with `SECRET_KEY` only): the old secret alone no longer
/// verifies it.
fn resaved_session_is_signed_with_the_current_secret(t: &Target) -> CaseResult {
    let probe = t.engine()?;
    let old = probe.settings().secret_key.clone();
    let engine = t.engine_with(|s| {
        s.secret_key = FOREIGN_SECRET.to_owned();
        s.secret_key_fallbacks = vec![old.clone()];
    })?;
    let salt = engine.description().salt.clone();
    let old_codec = SessionCodec::new(&salt, old.as_bytes(), &[]);
    let encoded = old_codec
        .encode(&map(json!({"user": "42"})), Utc::now().timestamp())
        .map_err(|e| Failure::new(format!("encoding with the codec failed: {e}")))?;
    let store = engine.store();
    let key = store.create(live_raw_write(&new_key(), &encoded.session_data))?;
    let mut session = engine.session(Some(&key));
    session.insert("seen", true)?;
    session.save()?;
    let record = store.load(&key)?;
    store.delete(&key)?;
    let record = record.ok_or_else(|| Failure::new("the re-saved session has no record"))?;
    let data = record.session_data.as_str();
    ensure!(
        django::unsign(FOREIGN_SECRET, &salt, data).is_ok(),
        "the re-saved session is not signed with the current SECRET_KEY"
    );
    ensure!(
        django::unsign(&old, &salt, data).is_err(),
        "the re-saved session still verifies with the old secret alone"
    );
    Ok(())
}

/// Quirk, fixed (Django's `SessionBase.decode`): Django returns a validly signed non-object
/// JSON value (list, string, number, null) as the "session"; here it is corrupt data and loads
/// as an empty session.
fn fixed_validly_signed_non_object_loads_as_an_empty_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    control_loads(&engine)?;
    let inputs: Vec<(String, String)> = [&b"[1,2,3]"[..], b"\"text\"", b"42", b"null", b"true"]
        .into_iter()
        .map(|json| {
            (
                format!("signed {}", String::from_utf8_lossy(json)),
                signed_json(&engine, json),
            )
        })
        .collect();
    each_loads_empty(&engine, &inputs)
}

/// Django `test_decode_serializer_exception`: a valid signature
/// over a payload that does not decode (bad base64, bad zlib, not JSON, a lone surrogate, a
/// number out of range, nesting past the limit) loads as an empty session without an error.
fn validly_signed_undecodable_payload_loads_as_an_empty_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    control_loads(&engine)?;
    let (secret, salt) = secret_and_salt(&engine);
    let now = Utc::now().timestamp();
    let sign = |payload: &str| django::sign(&secret, &salt, payload, now);
    let deep = format!("{{\"a\":{}}}", "[".repeat(200) + &"]".repeat(200));
    let inputs = vec![
        ("bad base64".to_owned(), sign("!!!not*base64!!!")),
        ("non-canonical base64".to_owned(), sign("QR")),
        (
            "compression marker over plain bytes".to_owned(),
            sign(&format!(".{}", URL_SAFE_NO_PAD.encode(b"{\"a\":1}"))),
        ),
        (
            "not JSON".to_owned(),
            sign(&URL_SAFE_NO_PAD.encode(b"not json at all")),
        ),
        (
            "truncated JSON".to_owned(),
            sign(&URL_SAFE_NO_PAD.encode(b"{\"a\":")),
        ),
        (
            "lone surrogate".to_owned(),
            sign(&URL_SAFE_NO_PAD.encode(br#"{"a":"\ud800"}"#)),
        ),
        (
            "number out of range".to_owned(),
            sign(&URL_SAFE_NO_PAD.encode(br#"{"a":1e400}"#)),
        ),
        (
            "200 levels of nesting".to_owned(),
            sign(&django::payload(deep.as_bytes())),
        ),
        ("no timestamp".to_owned(), {
            let payload = URL_SAFE_NO_PAD.encode(b"{\"a\":1}");
            format!("{payload}:{}", django::signature(&secret, &salt, &payload))
        }),
    ];
    each_loads_empty(&engine, &inputs)
}

/// A validly signed zlib bomb: a few KiB that inflate to 16 MiB load as
/// an empty session instead of being inflated whole (the cap is 1 MiB).
fn decompression_bomb_loads_as_an_empty_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let small = format!("{{\"a\":\"{}\"}}", "x".repeat(2000));
    let loaded = load_raw(&engine, &signed_json(&engine, small.as_bytes()))?;
    ensure_eq!(
        loaded.get("a").and_then(Value::as_str).map(str::len),
        Some(2000),
        "a small compressed session (positive control)"
    );
    let mut bomb = Vec::with_capacity(16 * 1024 * 1024 + 16);
    bomb.extend_from_slice(b"{\"a\":\"");
    bomb.resize(16 * 1024 * 1024, b'x');
    bomb.extend_from_slice(b"\"}");
    let data = signed_json(&engine, &bomb);
    ensure!(
        data.len() < 64 * 1024,
        "the bomb did not compress ({} bytes)",
        data.len()
    );
    each_loads_empty(&engine, &[("a 16 MiB zlib bomb".to_owned(), data)])
}

/// Deep JSON built by the application (which would overflow the stack when serialised or
/// dropped) is refused at insert with
/// `Unstorable` (past 127 levels it could not be loaded back, and deeper it overflows the
/// stack); the session is left without it. A shallow value is accepted.
fn insert_of_a_too_deep_value_is_refused(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("shallow", nested_array(20))?;
    match session.insert("deep", nested_array(1000)) {
        Err(Error::Unstorable(_)) => {}
        other => {
            return Err(Failure::new(format!(
                "insert of 1000 levels gave {other:?}"
            )));
        }
    }
    ensure!(
        !session.contains_key("deep")?,
        "the refused value is in the session"
    );
    Ok(())
}

/// NaN and ±infinity have no JSON form; serde would silently store them
/// as `null`. They are refused at insert with `Unstorable`.
fn insert_of_a_non_finite_float_is_refused(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        match session.insert("x", value) {
            Err(Error::Unstorable(_)) => {}
            other => return Err(Failure::new(format!("insert of {value} gave {other:?}"))),
        }
        ensure!(
            !session.contains_key("x")?,
            "the refused {value} is in the session"
        );
    }
    Ok(())
}

/// A too-deep value that bypasses `insert` (through `update`) is refused either at `update` or
/// at `save`; either way nothing is stored.
fn unstorable_value_smuggled_in_by_update_is_never_stored(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (_, key) = saved(&engine, json!({"before": 1}))?;
    let mut session = engine.session(Some(&key));
    let updated = session.update(map(json!({"deep": nested_array(1000)})));
    let outcome = match updated {
        Err(_) => {
            ensure!(
                !session.contains_key("deep")?,
                "update failed but kept the value"
            );
            Ok(())
        }
        Ok(()) => match session.save() {
            Err(_) => Ok(()),
            Ok(()) => Err(Failure::new("a 1000-level value was saved")),
        },
    };
    let stored = reopened(&engine, &key)?;
    engine.store().delete(&key)?;
    outcome?;
    ensure_eq!(
        stored,
        map(json!({"before": 1})),
        "the stored session after the refusal"
    );
    Ok(())
}

/// A session larger than the payload limit (1 MiB of JSON)
/// is refused at save with nothing stored, or else it loads back whole: never saved and then
/// unreadable.
fn oversize_session_is_refused_at_save_or_loads_back_whole(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let big = "x".repeat(1024 * 1024 + 1);
    let mut session = engine.session(None);
    session.insert("big", &big)?;
    match session.save() {
        Err(_) => {
            ensure_eq!(
                session.session_key(),
                None,
                "a refused new session got a key"
            );
            Ok(())
        }
        Ok(()) => {
            let key = key_of(&session)?;
            let again = reopened(&engine, &key)?;
            engine.store().delete(&key)?;
            let length = again.get("big").and_then(Value::as_str).map(str::len);
            ensure_eq!(
                length,
                Some(big.len()),
                "length of the saved oversize value, reloaded"
            );
            Ok(())
        }
    }
}

/// Extreme or malformed `_session_expiry` values (CVE-2017-18589's
/// shape) never panic in the expiry methods, in save or in load; a far-future date is live and a
/// far-past integer is expired.
fn extreme_expiry_values_never_panic(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let values = [
        json!("9999-12-31T23:59:59.999999+00:00"),
        json!("0001-01-01T00:00:00+00:00"),
        json!("not a date"),
        json!(""),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1e300),
        json!(-1e300),
        json!(0.5),
        json!([1]),
        json!({"a": 1}),
    ];
    for value in values {
        let mut session = engine.session(None);
        session.insert("_session_expiry", &value)?;
        let _ = session.get_expiry_age();
        let _ = session.get_expiry_date();
        let _ = session.get_expire_at_browser_close();
        if session.save().is_ok() {
            let key = key_of(&session)?;
            let _ = reopened(&engine, &key);
            engine.store().delete(&key)?;
        }
    }
    let mut far = engine.session(None);
    let end_of_python_time = chrono::DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z")
        .map_err(|e| Failure::new(format!("parsing a fixed date: {e}")))?
        .with_timezone(&Utc);
    far.set_expiry(Expiry::At(end_of_python_time))?;
    ensure!(
        far.get_expiry_age()? > 0,
        "an expiry in the year 9999 is not in the future"
    );
    let mut gone = engine.session(None);
    gone.insert("x", 1)?;
    gone.insert("_session_expiry", i64::MIN)?;
    ensure!(
        gone.get_expiry_age()? < 0,
        "an expiry of i64::MIN seconds is not in the past"
    );
    Ok(())
}

/// Records with extreme `expire_date`s (CVE-2017-18589's shape) never panic:
/// the end of representable time is live (or refused at create), the start of it is expired.
fn extreme_record_expiry_dates_never_panic(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let data = engine.encode(&map(json!({"x": 1})))?;
    for (micros, live) in [
        (i64::MAX, true),
        (i64::MIN, false),
        (253_402_300_799_000_000, true),
    ] {
        let key = new_key();
        let write = raw_write(
            &key,
            &data.session_data,
            &data.session_json,
            Timestamp::from_micros(micros),
        );
        if store.create(write).is_ok() {
            let loaded = store.load(&key);
            let session = reopened(&engine, &key);
            store.delete(&key)?;
            let loaded = loaded?;
            let session = session?;
            ensure_eq!(
                loaded.is_some(),
                live,
                "a record expiring at {micros} µs is loadable"
            );
            ensure_eq!(
                !session.is_empty(),
                live,
                "a session expiring at {micros} µs has data"
            );
        }
    }
    Ok(())
}
