//! The bodies of sessionkit's fuzz targets: each takes arbitrary bytes, feeds them to one
//! parser of untrusted input, and panics only when an invariant breaks (a crash is a bug in the
//! crate under test, never "bad input").
//!
//! `fuzz/` (a cargo-fuzz crate outside the workspace) calls these from `fuzz_target!`, and
//! `tests/corpus.rs` replays every committed corpus file through the same function in
//! `cargo test --workspace`, so a crash once found stays fixed.

use std::path::{Component, Path};
use std::sync::OnceLock;

use http::{HeaderMap, HeaderValue, header::COOKIE};
use sessionkit::Settings;
use sessionkit_codec::{SESSION_STORE_SALT, SIGNED_COOKIES_SALT, SessionCodec};
use sessionkit_engine_file::{FileConfig, FileStore};

/// A fuzz target's body: any bytes in, a panic only when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by name, as the corpus directories and `fuzz/fuzz_targets/*.rs` are named.
pub const TARGETS: &[(&str, Target)] = &[
    ("cookie_header", cookie_header),
    ("session_data", session_data),
    ("signed_cookie", signed_cookie),
    ("settings", settings),
    ("file_key", file_key),
    ("pickle_dict", pickle_dict),
    ("compressed_round_trip", compressed_round_trip),
];

/// The secret every codec target signs and verifies with.
const SECRET: &[u8] = b"fuzz-secret-key-not-for-production";

/// A fixed "now" (2026-01-01), so a corpus file replays the same way on any day.
const NOW: i64 = 1_767_225_600;

/// Django's default `SESSION_COOKIE_AGE`, the `max_age` the signed-cookie engine loads with.
const COOKIE_AGE: i64 = 1_209_600;

/// The `Cookie` header(s) of a request (one per input line) searched for `sessionid`, as the
/// middleware does first with every request: never panics, and a value it finds is the Python-
/// unquoted text of one cookie, so quoting it again and unquoting gives it back.
pub fn cookie_header(data: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in data.split(|byte| *byte == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, value);
        }
    }
    let found = sessionkit_http::cookies::find_request_cookie(&headers, "sessionid");
    if let Some(value) = found.value() {
        let quoted = sessionkit_http::cookies::python_quote(value);
        assert_eq!(
            sessionkit_http::cookies::python_unquote(&quoted),
            value,
            "quote/unquote round trip of {value:?}"
        );
    }
}

/// Any text stored in a session encodes (through the codec's own payload-sized deflate when it
/// compresses, libdeflate above 16 KiB) to a payload that inflates and decodes back to the same
/// session: the compressor never writes a stream a real inflater rejects or reads differently.
pub fn compressed_round_trip(data: &[u8]) {
    let codec = SessionCodec::new(SESSION_STORE_SALT, SECRET, &[]);
    // Three copies of 64 KiB stay far below the codec's 1 MiB decompression cap.
    let text = String::from_utf8_lossy(&data[..data.len().min(64 * 1024)]);
    // The text alone, and beside a repeat of itself (matches reaching back across a key).
    let half = text.len() / 2;
    let session: sessionkit_codec::SessionMap = serde_json::from_value(serde_json::json!({
        "text": text,
        "again": text,
        "tail": text.get(half..).unwrap_or(""),
    }))
    .expect("a JSON object of strings is a session");
    let encoded = codec
        .encode(&session, NOW)
        .expect("a session of strings encodes");
    let decoded = codec
        .decode(&encoded.session_data, None, NOW)
        .unwrap_or_else(|error| panic!("our own payload does not decode: {error}"));
    assert_eq!(decoded, session, "the payload decodes to another session");
}

/// A stored `session_data` as the server-side engines load it: the raw input, and the input
/// signed as a payload (so decoding gets past the signature into base64, zlib and JSON).
pub fn session_data(data: &[u8]) {
    decode_both_ways(SESSION_STORE_SALT, data, None);
}

/// A signed-cookie session as the `signed_cookies` engine loads it (its salt, `max_age` =
/// the cookie age), through the same two paths as [`session_data`].
pub fn signed_cookie(data: &[u8]) {
    decode_both_ways(SIGNED_COOKIES_SALT, data, Some(COOKIE_AGE));
}

/// Decodes `data` as given and signed; whatever decodes must encode and decode back equal.
fn decode_both_ways(salt: &str, data: &[u8], max_age: Option<i64>) {
    let codec = SessionCodec::new(salt, SECRET, &[]);
    let text = String::from_utf8_lossy(data);
    let signed = codec.sign_payload(&text, NOW);
    for input in [text.as_ref(), signed.as_str()] {
        let Ok(session) = codec.decode(input, max_age, NOW) else {
            continue;
        };
        let Ok(encoded) = codec.encode(&session, NOW) else {
            continue;
        };
        let again = codec
            .decode(&encoded.session_data, max_age, NOW)
            .expect("what the codec encodes, it decodes");
        assert_eq!(again, session, "round trip of {input:?}");
    }
}

/// A settings file (`Settings::from_toml_str`) and, with the first input byte choosing which,
/// an environment value that takes JSON (`SECRET_KEY_FALLBACKS`, `CACHES`) or another setting:
/// errors are fine, panics are not.
pub fn settings(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = Settings::from_toml_str(&text);
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    const NAMES: [&str; 6] = [
        "SECRET_KEY_FALLBACKS",
        "CACHES",
        "SESSION_COOKIE_AGE",
        "SESSION_COOKIE_SAMESITE",
        "SESSION_SAVE_EVERY_REQUEST",
        "SESSION_FILE_PATH",
    ];
    let name = NAMES[usize::from(selector) % NAMES.len()];
    let value = String::from_utf8_lossy(rest).into_owned();
    let env = [
        ("SECRET_KEY".to_owned(), "fuzz".to_owned()),
        (name.to_owned(), value),
    ];
    let _ = Settings::from_sources(None, env);
}

/// A session key given to the file engine: either refused, or a path of exactly one normal
/// component inside the session directory, named cookie name + key.
pub fn file_key(data: &[u8]) {
    let (dir, store) = file_store();
    let key = String::from_utf8_lossy(data);
    let Ok(path) = store.key_to_path(&key) else {
        return;
    };
    let relative = path
        .strip_prefix(dir)
        .unwrap_or_else(|_| panic!("{path:?} is outside {dir:?} for key {key:?}"));
    let components: Vec<Component<'_>> = relative.components().collect();
    assert!(
        matches!(components.as_slice(), [Component::Normal(_)]),
        "{path:?} is not one file inside {dir:?} for key {key:?}"
    );
    assert_eq!(
        relative.as_os_str().to_str(),
        Some(format!("sessionid{key}").as_str()),
        "file name for key {key:?}"
    );
}

/// A cache entry as the cache stores read it (`sessionkit_cache::pickle::loads_dict`): never
/// panics, refuses or reads a dict; whatever it reads, written back, reads back equal, and
/// the JSON it turned into stays within the reader's output budget.
pub fn pickle_dict(data: &[u8]) {
    use sessionkit_cache::pickle::{
        OUTPUT_BUDGET_BASE, OUTPUT_BUDGET_FACTOR, dumps_dict, loads_dict,
    };
    let Ok(session) = loads_dict(data) else {
        return;
    };
    let written = dumps_dict(&session);
    let again = loads_dict(&written).expect("a pickle we wrote reads back");
    assert_eq!(again, session, "pickle round trip");
    let json = serde_json::to_string(&session).expect("a session map serialises");
    assert!(
        json.len() <= data.len() * OUTPUT_BUDGET_FACTOR + OUTPUT_BUDGET_BASE,
        "{} bytes of JSON from {} bytes of pickle",
        json.len(),
        data.len()
    );
}

/// One file store in a private temporary directory, opened once per process.
fn file_store() -> &'static (std::path::PathBuf, FileStore) {
    static STORE: OnceLock<(std::path::PathBuf, FileStore)> = OnceLock::new();
    STORE.get_or_init(|| {
        // Kept for the life of the process: the store's directory.
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let store = FileStore::open(&FileConfig::new(&dir, "fuzz-secret"))
            .expect("the file store opens in a fresh private directory");
        (dir, store)
    })
}

/// Runs every file in `dir` through `target`; the number of files run.
///
/// # Panics
///
/// If the directory cannot be read, or `target` panics on a file (the replay failed).
pub fn replay_dir(dir: &Path, target: Target) -> usize {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("corpus {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    for file in &files {
        let data = std::fs::read(file).expect("a corpus file");
        target(&data);
    }
    files.len()
}
