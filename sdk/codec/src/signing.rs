//! Django's `signing.dumps` / `signing.loads` (a `TimestampSigner` with JSON, compression and
//! key rotation), the format of every stored session and of signed-cookie sessions.
//!
//! ```text
//! session_data = PAYLOAD ":" TS ":" SIG
//! PAYLOAD = ["."] base64url_nopad(BYTES)      "." marks zlib-compressed BYTES
//! BYTES   = zlib(JSON) if len(zlib(JSON)) < len(JSON) - 1 else JSON
//! TS      = base62(unix seconds)              "-" prefix when negative
//! SIG     = base64url_nopad(HMAC-SHA256(SHA256(salt + "signer" + secret), PAYLOAD ":" TS))
//! ```
//!
//! # Examples
//!
//! ```
//! use sessionkit_codec::{SESSION_STORE_SALT, SessionCodec, SessionMap};
//!
//! let codec = SessionCodec::new(SESSION_STORE_SALT, b"django-insecure-vector-key-0001", &[]);
//! let mut session = SessionMap::new();
//! session.insert("foo".into(), "bar".into());
//! let encoded = codec.encode(&session, 1_750_000_000).unwrap();
//! assert_eq!(
//!     encoded.session_data,
//!     "eyJmb28iOiJiYXIifQ:1uQowS:7pWrN0ZVJXSPFd6-WZMHSsUF6Cvf2A6L4PaT1EkjJ_c"
//! );
//! assert_eq!(codec.decode(&encoded.session_data, None, 1_750_000_000).unwrap(), session);
//! ```

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use libdeflater::{CompressionLvl, Compressor, DecompressionError, Decompressor};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::SessionMap;
use crate::deflate;
use crate::json::{JsonError, map_to_python_json, parse_python_json, to_python_json};

/// The default cap on a decompressed payload; a larger one is reported as malformed, so a
/// small signed "zip bomb" cannot make a decode allocate without bound.
pub const MAX_DECOMPRESSED_LEN: usize = 1 << 20;

/// Reads payload base64 the way Django does: padding optional, non-canonical trailing bits
/// tolerated (the HMAC has already authenticated the exact text).
const LENIENT_URL_SAFE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// One encoded session: what is stored, plus the JSON it was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The signed string Django stores (`signing.dumps` output).
    pub session_data: String,
    /// The session as compact JSON before compression and signing (engines that index
    /// something inside the session read this instead of decoding `session_data`).
    pub session_json: String,
}

/// Why a session could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The session holds a value JSON cannot round-trip.
    #[error("session cannot be stored: {0}")]
    Json(#[from] JsonError),
    /// The value to sign is not a JSON object (a session is always a dictionary).
    #[error("only a JSON object can be encoded as a session")]
    NotAnObject,
}

/// Why stored session data could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The signature does not verify with SECRET_KEY or any fallback key (tampered,
    /// truncated, wrong key or salt, or not signed data at all). Django logs this as
    /// "Session data corrupted" (WARN, target `sessionkit::security`).
    #[error("bad signature: session data corrupted")]
    BadSignature,
    /// The signature is valid but older than `max_age` seconds (signed cookies).
    #[error("signature age {age} s exceeds max_age {max_age} s")]
    Expired {
        /// Seconds since the data was signed.
        age: i64,
        /// The allowed age.
        max_age: i64,
    },
    /// The signature is valid but the content is unusable (bad timestamp, base64, zlib or
    /// JSON, or larger than the decompression cap).
    #[error("malformed session data: {0}")]
    Malformed(String),
    /// The signature is valid but the JSON is not an object.
    #[error("session data is not a JSON object")]
    NotAnObject,
}

/// Django's `signing.dumps`/`loads` for one salt, with SECRET_KEY and SECRET_KEY_FALLBACKS.
///
/// Derived keys are computed once in [`SessionCodec::new`] (the HMAC state after absorbing
/// the key is cloned per call), and the compressor is reused per thread, so encoding a
/// 200-byte session takes a few microseconds. Cheap to clone; `Debug` never shows a secret.
#[derive(Clone)]
pub struct SessionCodec {
    salt: Arc<str>,
    /// SECRET_KEY first, then each fallback, in order.
    keys: Arc<[Hmac<Sha256>]>,
    max_decompressed_len: usize,
}

impl fmt::Debug for SessionCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionCodec")
            .field("salt", &self.salt)
            .field("secret_key", &"<redacted>")
            .field(
                "fallback_keys",
                &format_args!("{} <redacted>", self.keys.len() - 1),
            )
            .field("max_decompressed_len", &self.max_decompressed_len)
            .finish()
    }
}

impl SessionCodec {
    /// A codec signing with `secret_key` under `salt` and also accepting data signed with any
    /// of `fallbacks` (Django's SECRET_KEY_FALLBACKS). Secrets are the UTF-8 bytes of Django's
    /// `str` settings.
    pub fn new(salt: &str, secret_key: &[u8], fallbacks: &[Vec<u8>]) -> Self {
        let keys: Vec<Hmac<Sha256>> = std::iter::once(secret_key)
            .chain(fallbacks.iter().map(Vec::as_slice))
            .map(|secret| derive_mac(salt, secret))
            .collect();
        Self {
            salt: salt.into(),
            keys: keys.into(),
            max_decompressed_len: MAX_DECOMPRESSED_LEN,
        }
    }

    /// The same codec with a different cap on decompressed payloads (default
    /// [`MAX_DECOMPRESSED_LEN`]).
    #[must_use]
    pub fn with_max_decompressed_len(mut self, max: usize) -> Self {
        self.max_decompressed_len = max;
        self
    }

    /// The salt this codec signs with.
    pub fn salt(&self) -> &str {
        &self.salt
    }

    /// `signing.dumps(session, salt, compress=True)` at `now_unix` (seconds; the base62
    /// timestamp): Django's format, which Django's `signing.loads` decodes to the same dict.
    ///
    /// Byte for byte Django's output when the payload is stored uncompressed; a compressed
    /// payload is another valid zlib stream of the same JSON (not zlib's: see the crate README),
    /// compressed under Django's rule (only when at least 2 bytes shorter), and JSON of at most
    /// 51 bytes is never compressed.
    ///
    /// # Errors
    ///
    /// [`EncodeError::Json`] when a value nests deeper than [`crate::json::MAX_DEPTH`] or is not
    /// finite.
    pub fn encode(&self, session: &SessionMap, now_unix: i64) -> Result<Encoded, EncodeError> {
        let json = map_to_python_json(session)?;
        Ok(self.sign_json(json, now_unix))
    }

    /// Like [`SessionCodec::encode`] for any JSON value that is an object.
    ///
    /// # Errors
    ///
    /// [`EncodeError::NotAnObject`] for anything but an object, else as [`SessionCodec::encode`].
    pub fn encode_value(&self, value: &Value, now_unix: i64) -> Result<Encoded, EncodeError> {
        if !value.is_object() {
            return Err(EncodeError::NotAnObject);
        }
        let json = to_python_json(value)?;
        Ok(self.sign_json(json, now_unix))
    }

    /// Re-signs an already encoded payload segment at `now_unix`: `payload` is the part of an
    /// earlier `session_data` before its `:TS:SIG` (see [`payload_segment`]).
    ///
    /// Compression is deterministic, so when `payload` came from [`SessionCodec::encode`] of a
    /// session, the result is byte for byte `encode(session, now_unix).session_data`, without
    /// the JSON, zlib and base64 work: a host re-saving a session it has not changed
    /// (`SESSION_SAVE_EVERY_REQUEST`) only pays for the HMAC.
    pub fn sign_payload(&self, payload: &str, now_unix: i64) -> String {
        let mut data = String::with_capacity(payload.len() + 64);
        data.push_str(payload);
        self.sign_into(&mut data, now_unix);
        data
    }

    /// [`SessionCodec::encode`] that reuses `previous` when `session` serialises to the same JSON
    /// as `previous.session_json`: the compressed payload is then taken from
    /// `previous.session_data` and only signed anew at `now_unix` (see
    /// [`SessionCodec::sign_payload`]).
    ///
    /// `previous` must come from [`SessionCodec::encode`] (of any codec, at any time: the
    /// payload depends only on the JSON); then the output is byte for byte what
    /// `encode(session, now_unix)` gives. Data written by another program may have been
    /// compressed differently and must not be passed here.
    ///
    /// # Errors
    ///
    /// As [`SessionCodec::encode`].
    pub fn encode_reusing(
        &self,
        session: &SessionMap,
        previous: &Encoded,
        now_unix: i64,
    ) -> Result<Encoded, EncodeError> {
        let json = map_to_python_json(session)?;
        if json == previous.session_json
            && let Some(payload) = payload_segment(&previous.session_data)
        {
            return Ok(Encoded {
                session_data: self.sign_payload(payload, now_unix),
                session_json: json,
            });
        }
        Ok(self.sign_json(json, now_unix))
    }

    /// `signing.loads(session_data, salt, max_age)` judged at `now_unix`, requiring an object.
    ///
    /// # Errors
    ///
    /// See [`DecodeError`]; [`DecodeError::NotAnObject`] when the signed JSON is not an object.
    pub fn decode(
        &self,
        session_data: &str,
        max_age: Option<i64>,
        now_unix: i64,
    ) -> Result<SessionMap, DecodeError> {
        match self.decode_value(session_data, max_age, now_unix)? {
            Value::Object(map) => Ok(map),
            _ => Err(DecodeError::NotAnObject),
        }
    }

    /// Like [`SessionCodec::decode`] but returns whatever JSON value was signed.
    ///
    /// # Errors
    ///
    /// See [`DecodeError`].
    pub fn decode_value(
        &self,
        session_data: &str,
        max_age: Option<i64>,
        now_unix: i64,
    ) -> Result<Value, DecodeError> {
        let (value, sig) = session_data
            .rsplit_once(':')
            .ok_or(DecodeError::BadSignature)?;
        self.verify(value, sig)?;

        let (payload, ts) = value
            .rsplit_once(':')
            .ok_or_else(|| DecodeError::Malformed("no timestamp".into()))?;
        let ts = b62_decode(ts)
            .ok_or_else(|| DecodeError::Malformed(format!("bad base62 timestamp {ts:?}")))?;
        if let Some(max_age) = max_age {
            let age = now_unix.saturating_sub(ts);
            if age > max_age {
                return Err(DecodeError::Expired { age, max_age });
            }
        }

        let (compressed, b64) = match payload.strip_prefix('.') {
            Some(rest) => (true, rest),
            None => (false, payload),
        };
        let raw = LENIENT_URL_SAFE
            .decode(b64)
            .map_err(|e| DecodeError::Malformed(format!("payload is not base64: {e}")))?;
        let parse = |json: &[u8]| {
            parse_python_json(json)
                .map_err(|e| DecodeError::Malformed(format!("payload is not JSON: {e}")))
        };
        if compressed {
            with_inflated(&raw, self.max_decompressed_len, parse)?
        } else {
            parse(&raw)
        }
    }

    /// Checks `sig` against SECRET_KEY, then each fallback, in constant time per key.
    fn verify(&self, value: &str, sig: &str) -> Result<(), DecodeError> {
        // Django compares the base64 text; a strict decoder (no padding, canonical trailing
        // bits) makes "same bytes" equivalent to "same text".
        let mut tag = [0u8; 36];
        let len = URL_SAFE_NO_PAD
            .decode_slice(sig, &mut tag)
            .map_err(|_| DecodeError::BadSignature)?;
        let tag = &tag[..len];
        for key in self.keys.iter() {
            let mut mac = key.clone();
            mac.update(value.as_bytes());
            // verify_slice: exact length and constant-time comparison (never a truncated tag).
            if mac.verify_slice(tag).is_ok() {
                return Ok(());
            }
        }
        Err(DecodeError::BadSignature)
    }

    fn sign_json(&self, json: String, now_unix: i64) -> Encoded {
        let mut data = String::with_capacity(json.len() * 4 / 3 + 64);
        with_deflated(json.as_bytes(), |compressed| match compressed {
            Some(bytes) => {
                data.push('.');
                URL_SAFE_NO_PAD.encode_string(bytes, &mut data);
            }
            None => URL_SAFE_NO_PAD.encode_string(json.as_bytes(), &mut data),
        });
        self.sign_into(&mut data, now_unix);
        Encoded {
            session_data: data,
            session_json: json,
        }
    }

    /// Appends `:TS:SIG` to the payload segment in `data` (Django's `TimestampSigner.sign`).
    fn sign_into(&self, data: &mut String, now_unix: i64) {
        data.push(':');
        b62_encode(now_unix, data);
        let mut mac = self.keys[0].clone();
        mac.update(data.as_bytes());
        let tag = mac.finalize().into_bytes();
        data.push(':');
        URL_SAFE_NO_PAD.encode_string(tag, data);
    }
}

/// HMAC-SHA256 keyed with `SHA256(salt + "signer" + secret)` (Django's `salted_hmac`).
fn derive_mac(salt: &str, secret: &[u8]) -> Hmac<Sha256> {
    let key = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update(b"signer")
        .chain_update(secret)
        .finalize();
    // HMAC accepts keys of any length; a 32-byte key cannot be rejected.
    <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC accepts any key length")
}

/// libdeflate's fastest level that compresses (0 stores): on session-sized JSON it compresses
/// as well as zlib's level 6 (BENCHMARKS.md, "Codec write cost"). Used for JSON longer than
/// [`deflate::MAX_INPUT`], where its fixed cost per stream no longer matters.
const DEFLATE_LEVEL: CompressionLvl = match CompressionLvl::new(1) {
    Ok(level) => level,
    Err(_) => panic!("libdeflate has level 1"),
};

/// JSON of at most this many bytes is stored uncompressed: with zlib's 6 bytes of header and
/// checksum, a deflate stream of such short text rarely saves the 2 bytes Django requires, and
/// never more than a few.
const MIN_COMPRESSED_JSON: usize = 51;

/// Calls `f` with a zlib stream of `json` when it is at least 2 bytes shorter than `json`
/// (Django's rule: `len(compressed) < len(json) - 1`), else with `None`.
///
/// The stream is not zlib's: any valid zlib stream decodes in Django (`zlib.decompress`).
/// Session-sized JSON (up to [`deflate::MAX_INPUT`] bytes) goes through [`deflate::Deflate`],
/// whose state is sized to the payload; larger JSON through libdeflate at level 1
/// (BENCHMARKS.md, "Issue 11").
fn with_deflated<R>(json: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
    #[derive(Default)]
    struct Deflater {
        small: deflate::Deflate,
        /// Made on the first large payload (its state is a few hundred KiB).
        large: Option<Compressor>,
        /// Never shrinks, so a thread's buffer is zero-filled once per high-water mark.
        out: Vec<u8>,
    }
    impl Deflater {
        /// The stream's length when it is at most `room` bytes.
        fn deflate(&mut self, json: &[u8], room: usize) -> Option<usize> {
            if json.len() <= deflate::MAX_INPUT {
                self.out.clear();
                return self.small.zlib(json, &mut self.out, room);
            }
            let compressor = self
                .large
                .get_or_insert_with(|| Compressor::new(DEFLATE_LEVEL));
            // libdeflate needs slack past the end of its output to write a stream that fits
            // exactly, so it gets its worst-case bound and the length is judged afterwards.
            let bound = compressor.zlib_compress_bound(json.len());
            if self.out.len() < bound {
                self.out.resize(bound, 0);
            }
            compressor
                .zlib_compress(json, &mut self.out[..bound])
                .ok()
                .filter(|&len| len <= room)
        }
    }
    thread_local! {
        static DEFLATE: RefCell<Deflater> = RefCell::new(Deflater::default());
    }
    // Useful output is at most len - 2 bytes; JSON this short never gains enough to be worth
    // the work (libdeflate, used before, stored it too).
    if json.len() <= MIN_COMPRESSED_JSON {
        return f(None);
    }
    let room = json.len() - 2;
    DEFLATE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut d) => {
            let len = d.deflate(json, room);
            f(len.map(|n| &d.out[..n]))
        }
        // Only reachable by re-entrancy, which nothing here does; stay correct anyway.
        Err(_) => {
            let mut d = Deflater::default();
            let len = d.deflate(json, room);
            f(len.map(|n| &d.out[..n]))
        }
    })
}

/// Calls `f` with the zlib-decompressed `input`, refusing output past `cap` bytes.
///
/// Like Python's `zlib.decompress`, data after the stream's checksum is ignored. The output
/// buffer is reused per thread (and shrunk again after an unusually large payload).
fn with_inflated<R>(
    input: &[u8],
    cap: usize,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, DecodeError> {
    /// Larger buffers are not kept for the next decode.
    const KEEP: usize = 64 * 1024;
    struct Inflater {
        decompressor: Decompressor,
        out: Vec<u8>,
    }
    thread_local! {
        static INFLATE: RefCell<Inflater> = RefCell::new(Inflater {
            decompressor: Decompressor::new(),
            out: Vec::new(),
        });
    }
    let inflate = |d: &mut Inflater| -> Result<usize, DecodeError> {
        // Session JSON compresses ~2-4x; grow by doubling (each try starts over) up to the cap.
        let mut size = input.len().saturating_mul(4).max(1024).min(cap);
        loop {
            if d.out.len() < size {
                d.out.resize(size, 0);
            }
            match d.decompressor.zlib_decompress(input, &mut d.out[..size]) {
                Ok(len) => return Ok(len),
                Err(DecompressionError::InsufficientSpace) if size < cap => {
                    size = size.saturating_mul(2).min(cap);
                }
                Err(DecompressionError::InsufficientSpace) => {
                    return Err(DecodeError::Malformed(format!(
                        "decompressed payload exceeds {cap} bytes"
                    )));
                }
                Err(DecompressionError::BadData) => {
                    return Err(DecodeError::Malformed(
                        "payload is not a valid zlib stream".into(),
                    ));
                }
            }
        }
    };
    INFLATE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut d) => {
            let result = inflate(&mut d).map(|len| f(&d.out[..len]));
            if d.out.len() > KEEP {
                d.out = Vec::new();
            }
            result
        }
        // Only reachable by re-entrancy, which nothing here does; stay correct anyway.
        Err(_) => {
            let mut d = Inflater {
                decompressor: Decompressor::new(),
                out: Vec::new(),
            };
            inflate(&mut d).map(|len| f(&d.out[..len]))
        }
    })
}

const B62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Parses a session dict kept unsigned, as Django's cache backends keep it (a store whose
/// engine declares `DECODED_DATA`): the same JSON rules as a signed payload, no signature.
///
/// # Errors
///
/// [`DecodeError::Malformed`] for text that is not JSON, [`DecodeError::NotAnObject`] for JSON
/// that is not an object.
pub fn decode_unsigned(session_json: &str) -> Result<SessionMap, DecodeError> {
    match crate::json::parse_python_json_text(session_json)
        .map_err(|e| DecodeError::Malformed(format!("unsigned session is not JSON: {e}")))?
    {
        Value::Object(map) => Ok(map),
        _ => Err(DecodeError::NotAnObject),
    }
}

/// The signing time (Unix seconds) written in `session_data`, WITHOUT verifying the signature.
///
/// For engines that must say when a signed payload expires (signed cookies) before the host
/// verifies it; never trust what it returns for anything else. `None` when there is no
/// `PAYLOAD:TS:SIG` shape or the timestamp is not base62.
pub fn signed_timestamp(session_data: &str) -> Option<i64> {
    let (value, _signature) = session_data.rsplit_once(':')?;
    let (_payload, timestamp) = value.rsplit_once(':')?;
    b62_decode(timestamp)
}

/// The payload segment of `session_data` (everything before `:TS:SIG`), WITHOUT verifying the
/// signature: what [`SessionCodec::sign_payload`] re-signs. `None` without that shape.
pub fn payload_segment(session_data: &str) -> Option<&str> {
    let (value, _signature) = session_data.rsplit_once(':')?;
    let (payload, _timestamp) = value.rsplit_once(':')?;
    Some(payload)
}

/// Django's `b62_encode`: most significant digit first, `-` for negatives.
fn b62_encode(n: i64, out: &mut String) {
    if n < 0 {
        out.push('-');
    }
    let mut v = n.unsigned_abs();
    let mut buf = [0u8; 12];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = B62[(v % 62) as usize];
        v /= 62;
        if v == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|&b| char::from(b)));
}

/// Django's `b62_decode`, with `None` where Python raises (empty text, a bad digit) or where
/// the value does not fit in `i64`.
fn b62_decode(s: &str) -> Option<i64> {
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None if s.is_empty() => return None,
        None => (false, s),
    };
    let mut v: i64 = 0;
    for b in digits.bytes() {
        let d = B62.iter().position(|&c| c == b)?;
        v = v.checked_mul(62)?.checked_add(i64::try_from(d).ok()?)?;
    }
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use flate2::{Compress, Compression, FlushCompress, Status};
    use serde_json::json;

    use super::*;
    use crate::{SESSION_STORE_SALT, SIGNED_COOKIES_SALT};

    const KEY: &[u8] = b"django-insecure-vector-key-0001";
    const T: i64 = 1_750_000_000;
    const VECTOR: &str = "eyJmb28iOiJiYXIifQ:1uQowS:7pWrN0ZVJXSPFd6-WZMHSsUF6Cvf2A6L4PaT1EkjJ_c";

    fn codec() -> SessionCodec {
        SessionCodec::new(SESSION_STORE_SALT, KEY, &[])
    }

    fn map(v: Value) -> SessionMap {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn perf_payload() -> SessionMap {
        map(json!({
            "_auth_user_id": "1234567",
            "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
            "_auth_user_hash": "705d8f9675f5d141680c20ceb39e05ad026064c3af07dc302135783e64af102a",
            "cart": [101, 202, 303],
            "theme": "dark",
        }))
    }

    #[test]
    fn encodes_the_django_worked_example_byte_for_byte() {
        let enc = codec().encode(&map(json!({"foo": "bar"})), T).unwrap();
        assert_eq!(enc.session_data, VECTOR);
        assert_eq!(enc.session_json, r#"{"foo":"bar"}"#);
    }

    #[test]
    fn derives_the_documented_hmac_key() {
        let key = Sha256::new()
            .chain_update(SESSION_STORE_SALT.as_bytes())
            .chain_update(b"signer")
            .chain_update(KEY)
            .finalize();
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            hex.starts_with("70780e92") && hex.ends_with("30955355"),
            "{hex}"
        );
    }

    #[test]
    fn decodes_the_django_worked_example() {
        let m = codec().decode(VECTOR, None, T).unwrap();
        assert_eq!(m, map(json!({"foo": "bar"})));
    }

    #[test]
    fn compresses_the_perf_payload_with_a_dot_marker() {
        let enc = codec().encode(&perf_payload(), T).unwrap();
        assert_eq!(enc.session_json.len(), 213);
        assert!(enc.session_data.starts_with('.'), "{}", enc.session_data);
        // Uncompressed it would be 284 base64 chars + ":1uQowS:" + 43; zlib saves ~50 bytes.
        assert!(
            enc.session_data.len() < 284 + 51,
            "{}",
            enc.session_data.len()
        );
        assert_eq!(
            codec().decode(&enc.session_data, None, T).unwrap(),
            perf_payload()
        );
    }

    #[test]
    fn compression_is_used_only_when_two_bytes_shorter() {
        // Random hex strings compress by a few bytes at best, and the gain grows with the
        // length, so a sweep passes through len - 1 and len - 2; the marker must appear
        // exactly when our compressor's output is at most len - 2 (Django's rule).
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut hex = |n: usize| -> String {
            (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    char::from(b"0123456789abcdef"[usize::try_from(seed >> 60).unwrap()])
                })
                .collect()
        };
        let mut seen_not = false;
        let mut seen_yes = false;
        for n in (0..120).chain(0..120) {
            let m = map(json!({"k": hex(n)}));
            let enc = codec().encode(&m, T).unwrap();
            let zlen = {
                let mut out = Vec::new();
                deflate::Deflate::default()
                    .zlib(enc.session_json.as_bytes(), &mut out, usize::MAX)
                    .unwrap()
            };
            let should =
                enc.session_json.len() > MIN_COMPRESSED_JSON && zlen < enc.session_json.len() - 1;
            assert_eq!(
                enc.session_data.starts_with('.'),
                should,
                "n={n} zlen={zlen}"
            );
            seen_not |= !should && zlen + 1 == enc.session_json.len();
            seen_yes |= should && zlen + 2 == enc.session_json.len();
            assert_eq!(codec().decode(&enc.session_data, None, T).unwrap(), m);
        }
        assert!(
            seen_not && seen_yes,
            "the sweep must cross the threshold exactly"
        );
    }

    #[test]
    fn reused_compressor_state_does_not_leak_between_calls() {
        let a = codec().encode(&perf_payload(), T).unwrap();
        let _ = codec()
            .encode(&map(json!({"x": "y".repeat(5000)})), T)
            .unwrap();
        let b = codec().encode(&perf_payload(), T).unwrap();
        assert_eq!(a, b);
        let other_thread = std::thread::spawn(|| codec().encode(&perf_payload(), T).unwrap())
            .join()
            .unwrap();
        assert_eq!(a, other_thread);
    }

    #[test]
    fn sessions_on_both_sides_of_the_small_compressor_limit_round_trip() {
        // JSON up to deflate::MAX_INPUT bytes goes through the crate's deflate, longer JSON
        // through libdeflate; both streams must inflate (libdeflate here, real zlib in the
        // Django vector tests).
        // `{"x":"…"}` is 8 bytes around the string: JSON of exactly MAX_INPUT, then 2 more.
        for len in [deflate::MAX_INPUT - 8, deflate::MAX_INPUT - 6, 40_000] {
            let m = map(json!({"x": "ab".repeat(len / 2)}));
            let enc = codec().encode(&m, T).unwrap();
            assert!(enc.session_data.starts_with('.'), "{len} compresses");
            assert_eq!(
                codec().decode(&enc.session_data, None, T).unwrap(),
                m,
                "{len}"
            );
            let mut out = Vec::new();
            let inflated = {
                use std::io::Read;
                let b64 = payload_segment(&enc.session_data).unwrap();
                let raw = URL_SAFE_NO_PAD.decode(&b64[1..]).unwrap();
                flate2::read::ZlibDecoder::new(&raw[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            };
            assert_eq!(inflated, enc.session_json.as_bytes(), "{len}: real zlib");
        }
    }

    #[test]
    fn sign_payload_of_an_encoded_payload_equals_a_fresh_encode() {
        let c = codec();
        let sessions = [
            perf_payload(),
            map(json!({"foo": "bar"})),
            map(json!({})),
            map(json!({"x": "y".repeat(5000), "n": [1.5, -2, null, true]})),
        ];
        for session in sessions {
            let first = c.encode(&session, T).unwrap();
            let payload = payload_segment(&first.session_data).unwrap();
            for later in [T, T + 1, T + 86_400, -5, 0] {
                assert_eq!(
                    c.sign_payload(payload, later),
                    c.encode(&session, later).unwrap().session_data,
                    "{session:?} at {later}"
                );
            }
        }
        // And what it signs verifies like anything encode made.
        let payload = payload_segment(VECTOR).unwrap();
        assert_eq!(payload, "eyJmb28iOiJiYXIifQ");
        assert_eq!(c.sign_payload(payload, T), VECTOR);
        assert_eq!(
            c.decode(&c.sign_payload(payload, T + 7), None, T).unwrap(),
            map(json!({"foo": "bar"}))
        );
    }

    #[test]
    fn encode_reusing_equals_a_fresh_encode_whether_or_not_the_json_matches() {
        let c = codec();
        let previous = c.encode(&perf_payload(), T).unwrap();
        let same = c
            .encode_reusing(&perf_payload(), &previous, T + 60)
            .unwrap();
        assert_eq!(same, c.encode(&perf_payload(), T + 60).unwrap());
        assert_ne!(same.session_data, previous.session_data, "new timestamp");
        let mut changed = perf_payload();
        changed.insert("theme".into(), json!("light"));
        assert_eq!(
            c.encode_reusing(&changed, &previous, T + 60).unwrap(),
            c.encode(&changed, T + 60).unwrap()
        );
        // A previous encoding without the PAYLOAD:TS:SIG shape is not reused.
        let broken = Encoded {
            session_data: "garbage".into(),
            session_json: previous.session_json.clone(),
        };
        assert_eq!(
            c.encode_reusing(&perf_payload(), &broken, T).unwrap(),
            previous
        );
    }

    #[test]
    fn payload_segment_needs_the_payload_ts_sig_shape() {
        assert_eq!(payload_segment(".eJx:1uQowS:sig"), Some(".eJx"));
        assert_eq!(payload_segment("::"), Some(""));
        for bad in ["", "nocolon", "one:colon"] {
            assert_eq!(payload_segment(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base62_timestamps_match_django() {
        let enc = |n: i64| {
            let mut s = String::new();
            b62_encode(n, &mut s);
            s
        };
        assert_eq!(enc(0), "0");
        assert_eq!(enc(61), "z");
        assert_eq!(enc(62), "10");
        assert_eq!(enc(T), "1uQowS");
        assert_eq!(enc(-T), "-1uQowS");
        for n in [0, 1, -1, 61, 62, T, -T, i64::MAX, i64::MIN + 1] {
            assert_eq!(b62_decode(&enc(n)), Some(n), "{n}");
        }
        assert_eq!(b62_decode(&enc(i64::MIN)), None, "|i64::MIN| does not fit");
        assert_eq!(b62_decode(""), None);
        assert_eq!(b62_decode("-"), Some(0), "Python decodes a lone '-' as 0");
        assert_eq!(b62_decode("1_"), None);
        assert_eq!(b62_decode("zzzzzzzzzzzzzz"), None);
    }

    #[test]
    fn signed_timestamp_reads_the_time_without_verifying() {
        assert_eq!(signed_timestamp(VECTOR), Some(T));
        assert_eq!(
            signed_timestamp("forged:-5:sig"),
            Some(-5),
            "not verified, by design"
        );
        for bad in ["", "nocolon", "one:colon", "a:b_:c", "e30::sig"] {
            assert_eq!(signed_timestamp(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn negative_timestamps_round_trip() {
        let m = map(json!({"a": 1}));
        let enc = codec().encode(&m, -5).unwrap();
        assert!(enc.session_data.contains(":-5:"), "{}", enc.session_data);
        assert_eq!(codec().decode(&enc.session_data, None, 0).unwrap(), m);
    }

    #[test]
    fn tampered_data_is_a_bad_signature() {
        let good = codec().encode(&perf_payload(), T).unwrap().session_data;
        let bytes = good.as_bytes();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.to_vec();
                b[i] ^= 1 << bit;
                let Ok(s) = String::from_utf8(b) else {
                    continue;
                };
                assert!(
                    codec().decode_value(&s, None, T).is_err(),
                    "flip {i}:{bit} accepted"
                );
            }
        }
    }

    #[test]
    fn truncated_or_extended_data_is_a_bad_signature() {
        let good = VECTOR;
        for end in 0..good.len() {
            assert_eq!(
                codec().decode(&good[..end], None, T),
                Err(DecodeError::BadSignature),
                "truncated to {end}"
            );
        }
        for extra in ["A", "=", "==", ":", "x:y"] {
            let s = format!("{good}{extra}");
            assert_eq!(
                codec().decode(&s, None, T),
                Err(DecodeError::BadSignature),
                "{s}"
            );
        }
    }

    #[test]
    fn empty_and_colonless_input_is_a_bad_signature() {
        for s in ["", "nocolon", "e30", ":", "::", "a:b", "e30:1uQowS:"] {
            assert_eq!(
                codec().decode(s, None, T),
                Err(DecodeError::BadSignature),
                "{s:?}"
            );
        }
    }

    #[test]
    fn swapped_segments_are_a_bad_signature() {
        let (rest, sig) = VECTOR.rsplit_once(':').unwrap();
        let (payload, ts) = rest.rsplit_once(':').unwrap();
        for s in [
            format!("{ts}:{payload}:{sig}"),
            format!("{sig}:{ts}:{payload}"),
        ] {
            assert_eq!(
                codec().decode(&s, None, T),
                Err(DecodeError::BadSignature),
                "{s}"
            );
        }
    }

    #[test]
    fn wrong_salt_or_key_is_a_bad_signature() {
        let cookie = SessionCodec::new(SIGNED_COOKIES_SALT, KEY, &[]);
        assert_eq!(
            cookie.decode(VECTOR, None, T),
            Err(DecodeError::BadSignature)
        );
        let other = SessionCodec::new(SESSION_STORE_SALT, b"another-secret", &[]);
        assert_eq!(
            other.decode(VECTOR, None, T),
            Err(DecodeError::BadSignature)
        );
    }

    #[test]
    fn padded_or_short_signatures_are_rejected() {
        let (rest, sig) = VECTOR.rsplit_once(':').unwrap();
        for bad in [
            format!("{sig}="),
            sig[..42].to_string(),
            sig[..1].to_string(),
            String::new(),
        ] {
            let s = format!("{rest}:{bad}");
            assert_eq!(
                codec().decode(&s, None, T),
                Err(DecodeError::BadSignature),
                "{s}"
            );
        }
    }

    #[test]
    fn fallback_keys_verify_in_order_and_encode_uses_the_new_key() {
        let old = codec();
        let signed_old = old.encode(&map(json!({"a": 1})), T).unwrap().session_data;
        let rotated = SessionCodec::new(
            SESSION_STORE_SALT,
            b"new-key",
            &[b"x".to_vec(), KEY.to_vec()],
        );
        assert_eq!(
            rotated.decode(&signed_old, None, T).unwrap(),
            map(json!({"a": 1}))
        );
        let resigned = rotated
            .encode(&map(json!({"a": 1})), T)
            .unwrap()
            .session_data;
        assert_ne!(resigned, signed_old);
        assert_eq!(
            old.decode(&resigned, None, T),
            Err(DecodeError::BadSignature)
        );
        let without = SessionCodec::new(SESSION_STORE_SALT, b"new-key", &[]);
        assert_eq!(
            without.decode(&signed_old, None, T),
            Err(DecodeError::BadSignature)
        );
    }

    #[test]
    fn max_age_is_strict_and_future_timestamps_are_valid() {
        let c = codec();
        assert!(c.decode(VECTOR, Some(10), T + 10).is_ok());
        assert_eq!(
            c.decode(VECTOR, Some(10), T + 11),
            Err(DecodeError::Expired {
                age: 11,
                max_age: 10
            })
        );
        assert!(c.decode(VECTOR, Some(10), T - 1000).is_ok());
        assert!(c.decode(VECTOR, None, i64::MAX).is_ok());
        assert_eq!(
            c.decode(VECTOR, Some(0), i64::MAX),
            Err(DecodeError::Expired {
                age: i64::MAX - T,
                max_age: 0
            })
        );
    }

    /// Signs an arbitrary value exactly as `signing.dumps` would, for malformed-payload tests.
    fn sign_raw(c: &SessionCodec, value: &str) -> String {
        let mut mac = c.keys[0].clone();
        mac.update(value.as_bytes());
        format!(
            "{value}:{}",
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::new(6), true);
        let mut out = Vec::with_capacity(bytes.len() + 128);
        assert_eq!(
            c.compress_vec(bytes, &mut out, FlushCompress::Finish)
                .unwrap(),
            Status::StreamEnd
        );
        out
    }

    #[test]
    fn validly_signed_non_objects_are_not_an_object() {
        let c = codec();
        for json in ["[1,2]", "null", "\"s\"", "3", "true"] {
            let s = sign_raw(&c, &format!("{}:1uQowS", b64(json.as_bytes())));
            assert_eq!(
                c.decode(&s, None, T),
                Err(DecodeError::NotAnObject),
                "{json}"
            );
            assert!(c.decode_value(&s, None, T).is_ok());
        }
    }

    #[test]
    fn validly_signed_garbage_is_malformed() {
        let c = codec();
        let deep = format!("{}{}", "[".repeat(128), "]".repeat(128));
        let cases = [
            b64(b"{}"),                                           // no timestamp
            format!("{}:", b64(b"{}")),                           // empty timestamp
            format!("{}:1_x", b64(b"{}")),                        // bad base62
            format!("{}:zzzzzzzzzzzzzzzz", b64(b"{}")),           // overflowing base62
            "e3!:1uQowS".to_string(),                             // bad base64
            "Q:1uQowS".to_string(),                               // truncated base64
            format!(".{}:1uQowS", b64(b"not zlib")),              // bad zlib
            format!(".{}:1uQowS", b64(&zlib(b"{\"a\":1}")[..6])), // truncated zlib
            format!("{}:1uQowS", b64(b"{\"a\":")),                // bad JSON
            format!("{}:1uQowS", b64(b"{\"a\":\"\\ud800\"}")),    // lone surrogate
            format!("{}:1uQowS", b64(b"{\"a\":1e400}")),          // out-of-range number
            format!("{}:1uQowS", b64(deep.as_bytes())),           // too deep
        ];
        for value in cases {
            let s = sign_raw(&c, &value);
            assert!(
                matches!(c.decode(&s, None, T), Err(DecodeError::Malformed(_))),
                "{value}: {:?}",
                c.decode(&s, None, T)
            );
        }
    }

    #[test]
    fn decompression_is_capped() {
        let c = codec().with_max_decompressed_len(64 * 1024);
        let bomb_json = format!("{{\"a\":\"{}\"}}", "x".repeat(1 << 20));
        let bomb = zlib(bomb_json.as_bytes());
        assert!(bomb.len() < 4096, "{} bytes", bomb.len());
        let s = sign_raw(&c, &format!(".{}:1uQowS", b64(&bomb)));
        match c.decode(&s, None, T) {
            Err(DecodeError::Malformed(msg)) => assert!(msg.contains("exceeds"), "{msg}"),
            other => panic!("{other:?}"),
        }
        // Under the default 1 MiB cap a just-too-large payload fails the same way...
        let s = sign_raw(&codec(), &format!(".{}:1uQowS", b64(&bomb)));
        assert!(matches!(
            codec().decode(&s, None, T),
            Err(DecodeError::Malformed(_))
        ));
        // ...and one exactly at the cap decodes.
        let exact = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_DECOMPRESSED_LEN - 8));
        assert_eq!(exact.len(), MAX_DECOMPRESSED_LEN);
        let s = sign_raw(
            &codec(),
            &format!(".{}:1uQowS", b64(&zlib(exact.as_bytes()))),
        );
        assert!(codec().decode(&s, None, T).is_ok());
    }

    #[test]
    fn padded_payload_base64_and_trailing_zlib_data_are_tolerated_like_django() {
        let c = codec();
        let s = sign_raw(&c, "e30=:1uQowS");
        assert_eq!(c.decode(&s, None, T).unwrap(), SessionMap::new());
        let mut z = zlib(b"{\"a\":1}");
        z.extend_from_slice(b"trailing");
        let s = sign_raw(&c, &format!(".{}:1uQowS", b64(&z)));
        assert_eq!(c.decode(&s, None, T).unwrap(), map(json!({"a": 1})));
    }

    #[test]
    fn raw_utf8_in_signed_json_is_read_as_latin1_like_django() {
        let c = codec();
        let s = sign_raw(&c, &format!("{}:1uQowS", b64("{\"n\":\"Zoë\"}".as_bytes())));
        assert_eq!(c.decode(&s, None, T).unwrap(), map(json!({"n": "ZoÃ«"})));
    }

    #[test]
    fn encode_rejects_non_objects_and_unstorable_values() {
        let c = codec();
        assert_eq!(
            c.encode_value(&json!([1]), T),
            Err(EncodeError::NotAnObject)
        );
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = Value::Array(vec![deep]);
        }
        let m = map(json!({ "deep": deep }));
        assert!(matches!(
            c.encode(&m, T),
            Err(EncodeError::Json(JsonError::TooDeep { .. }))
        ));
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let c = SessionCodec::new(
            SESSION_STORE_SALT,
            b"super-secret-value",
            &[b"old-secret".to_vec()],
        );
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("super-secret") && !dbg.contains("old-secret"),
            "{dbg}"
        );
        assert!(
            dbg.contains(SESSION_STORE_SALT) && dbg.contains("redacted"),
            "{dbg}"
        );
    }

    #[test]
    fn codec_is_send_sync_and_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>() {}
        assert_traits::<SessionCodec>();
    }
}
