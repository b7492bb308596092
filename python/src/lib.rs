//! `sessionkit._native`: the sessionkit host as a Python extension, for the Django session
//! backends in `sessionkit.django`.
//!
//! Two classes cross the boundary:
//!
//! - [`NativeEngine`]: one opened engine library (`Engine::load` through the host's loader) and
//!   the storage operations of its `Store` (`exists`, `load`, `create`, `save`, `delete`,
//!   `clear_expired`), each run with the GIL released.
//! - [`Codec`]: Django's `signing.dumps`/`loads` for one salt (Django salts per store class,
//!   `key_salt`), from `sessionkit_codec`.
//!
//! Session data crosses as JSON text made and read by the store's Django serializer on the
//! Python side, so Django's serializer semantics (tuples, non-string keys, custom
//! `SESSION_SERIALIZER`) are kept; signing, compression and storage run here.

use std::time::{SystemTime, UNIX_EPOCH};

use abi_stable::std_types::RString;
use pyo3::{create_exception, exceptions::PyException, prelude::*};
use serde_json::Value;
use sessionkit::{
    Capabilities, Engine, ErrorKind, KeyFormat, SessionRecord, SessionWrite, Settings, Timestamp,
};
use sessionkit_codec::{
    json::{parse_python_json, to_python_json},
    signing::{DecodeError, SessionCodec, decode_unsigned},
};

create_exception!(
    _native,
    EngineError,
    PyException,
    "An engine operation failed (its message names the engine, the operation and a key prefix)."
);
create_exception!(
    _native,
    SessionExists,
    EngineError,
    "A create found the key taken (Django's CreateError)."
);
create_exception!(
    _native,
    SessionNotFound,
    EngineError,
    "An update found the session gone (Django's UpdateError)."
);
create_exception!(
    _native,
    ConfigError,
    EngineError,
    "The engine could not be loaded or opened with these settings (Django's ImproperlyConfigured)."
);

/// What the binding itself refuses, before or after the host is called.
#[derive(Debug, thiserror::Error)]
enum BindingError {
    /// The host failed; the kind decides the Python exception.
    #[error(transparent)]
    Host(#[from] sessionkit::Error),
    /// The engine settings handed over are not a JSON object.
    #[error("engine settings must be a JSON object of Django setting names: {0}")]
    SettingsJson(String),
    /// A setting was refused by `Settings::set`.
    #[error("setting {name}: {source}")]
    Setting {
        /// The Django setting name.
        name: String,
        /// Why it was refused.
        source: sessionkit::SettingsError,
    },
    /// The serializer's output is not JSON the codec can sign.
    #[error("the session serializer's output is not a JSON object: {0}")]
    SessionJson(String),
}

impl From<BindingError> for PyErr {
    fn from(error: BindingError) -> PyErr {
        let message = error.to_string();
        match &error {
            BindingError::Host(host) => match host {
                sessionkit::Error::Load(_) | sessionkit::Error::Settings(_) => {
                    ConfigError::new_err(message)
                }
                other => match other.kind() {
                    Some(ErrorKind::AlreadyExists) => SessionExists::new_err(message),
                    Some(ErrorKind::NotFound) => SessionNotFound::new_err(message),
                    Some(ErrorKind::Config) => ConfigError::new_err(message),
                    _ => EngineError::new_err(message),
                },
            },
            BindingError::SettingsJson(_) | BindingError::Setting { .. } => {
                ConfigError::new_err(message)
            }
            BindingError::SessionJson(_) => pyo3::exceptions::PyValueError::new_err(message),
        }
    }
}

/// The outcome of reading stored session data, as the Python side acts on it.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Loaded {
    /// No live record: Django drops the key.
    Missing = 0,
    /// Decoded: the JSON text follows.
    Found = 1,
    /// The signature did not verify: Django logs "Session data corrupted" and uses `{}`.
    BadSignature = 2,
    /// Signed but unusable (bad payload, not an object, or too old for `max_age`): `{}`.
    Undecodable = 3,
}

/// Django's signing for one salt: what `SessionBase.encode`/`decode` (and the signed-cookie
/// backend's `signing.dumps`/`loads`) do, in Rust.
#[pyclass(frozen, module = "sessionkit._native")]
struct Codec {
    codec: SessionCodec,
}

#[pymethods]
impl Codec {
    /// A codec for `salt`, signing with `secret_key` and also accepting `fallbacks`.
    #[new]
    fn new(salt: &str, secret_key: &str, fallbacks: Vec<String>) -> Self {
        let fallbacks: Vec<Vec<u8>> = fallbacks.into_iter().map(String::into_bytes).collect();
        Codec {
            codec: SessionCodec::new(salt, secret_key.as_bytes(), &fallbacks),
        }
    }

    /// `signing.dumps(session, salt, compress=True)` of the serializer's JSON output.
    fn encode(&self, json: &[u8]) -> PyResult<String> {
        let value = parse_session_json(json)?;
        let encoded = self
            .codec
            .encode_value(&value, now_unix())
            .map_err(|e| BindingError::SessionJson(e.to_string()))?;
        Ok(encoded.session_data)
    }

    /// `signing.loads(session_data, salt, max_age)`: `(outcome, json)` with outcome 1 and the
    /// JSON text when it verifies and decodes, 2 for a bad signature, 3 for anything else.
    #[pyo3(signature = (session_data, max_age=None))]
    fn decode(&self, session_data: &str, max_age: Option<i64>) -> (u8, Option<String>) {
        decode_with(&self.codec, session_data, max_age)
    }
}

/// One opened engine library and its store.
#[pyclass(frozen, module = "sessionkit._native")]
struct NativeEngine {
    engine: Engine,
}

#[pymethods]
impl NativeEngine {
    /// Loads the engine library at `library` (an absolute path, or a short name searched on
    /// `SESSIONKIT_ENGINE_PATH`) and opens its store with `settings_json`, a JSON object of
    /// Django setting names (`SECRET_KEY`, `SESSION_DB_URL`, `CACHES`, ...).
    #[new]
    fn new(py: Python<'_>, library: &str, settings_json: &str) -> PyResult<Self> {
        let settings = settings_from_json(settings_json)?;
        let library = library.to_owned();
        let engine = py
            .detach(move || Engine::load(&library, &settings))
            .map_err(BindingError::from)?;
        Ok(NativeEngine { engine })
    }

    /// The engine's short name (`db`, `cache`, ...).
    #[getter]
    fn name(&self) -> String {
        self.engine.description().name.clone()
    }

    /// The library the engine was loaded from.
    #[getter]
    fn path(&self) -> String {
        self.engine.description().path.display().to_string()
    }

    /// The salt the engine signs with (Django's, for its kind of store).
    #[getter]
    fn salt(&self) -> String {
        self.engine.description().salt.clone()
    }

    /// Whether the engine's keys are signed payloads (signed cookies) rather than session keys.
    #[getter]
    fn signed_payload_keys(&self) -> bool {
        self.engine.store().key_format() == KeyFormat::SignedPayload
    }

    /// Whether `key` fits the engine's key format (else no call reaches the engine).
    fn is_valid_key(&self, key: &str) -> bool {
        self.engine.store().is_valid_key(key)
    }

    /// Whether a record is stored under `key` (Django's `exists`).
    fn exists(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        let store = self.engine.store();
        Ok(py
            .detach(|| store.exists(key))
            .map_err(BindingError::from)?)
    }

    /// Loads the live record under `key` and decodes it with `codec`: `(outcome, json)` as
    /// `Codec.decode`, or outcome 0 when there is no live record.
    #[pyo3(signature = (codec, key, max_age=None))]
    fn load(
        &self,
        py: Python<'_>,
        codec: &Codec,
        key: &str,
        max_age: Option<i64>,
    ) -> PyResult<(u8, Option<String>)> {
        let store = self.engine.store();
        let record = py.detach(|| store.load(key)).map_err(BindingError::from)?;
        Ok(match record {
            None => (Loaded::Missing as u8, None),
            // A store that keeps Django's unsigned dict (the cache engines on Redis and
            // memcached, `DECODED_DATA`) hands it back as JSON text, as Django's cache does.
            Some(record)
                if record.session_data.starts_with('{')
                    && self
                        .engine
                        .capabilities()
                        .contains(Capabilities::DECODED_DATA) =>
            {
                match decode_unsigned(record.session_data.as_str()) {
                    Ok(map) => found(map),
                    Err(_) => (Loaded::Undecodable as u8, None),
                }
            }
            Some(record) => decode_with(&codec.codec, record.session_data.as_str(), max_age),
        })
    }

    /// Encodes the serializer's JSON with `codec` and stores it under `key` expiring at
    /// `expire_micros` (Unix microseconds): a create when `must_create` (raises
    /// `SessionExists` when the key is taken), else an update (raises `SessionNotFound` when
    /// the record is gone). Returns the key stored under (for signed cookies, the cookie).
    fn write(
        &self,
        py: Python<'_>,
        codec: &Codec,
        key: &str,
        json: &[u8],
        expire_micros: i64,
        must_create: bool,
    ) -> PyResult<String> {
        let value = parse_session_json(json)?;
        let encoded = codec
            .codec
            .encode_value(&value, now_unix())
            .map_err(|e| BindingError::SessionJson(e.to_string()))?;
        let write = SessionWrite {
            record: SessionRecord {
                session_key: RString::from(key),
                session_data: RString::from(encoded.session_data),
                expire_date: Timestamp::from_micros(expire_micros),
            },
            session_json: RString::from(encoded.session_json),
        };
        let store = self.engine.store();
        let stored = py.detach(move || {
            if must_create {
                store.create(write)
            } else {
                store.save(write)
            }
        });
        Ok(stored.map_err(BindingError::from)?)
    }

    /// Removes the record under `key`; unknown keys succeed.
    fn delete(&self, py: Python<'_>, key: &str) -> PyResult<()> {
        let store = self.engine.store();
        Ok(py
            .detach(|| store.delete(key))
            .map_err(BindingError::from)?)
    }

    /// Removes every expired record (Django's `clearsessions`); returns how many went.
    fn clear_expired(&self, py: Python<'_>) -> PyResult<u64> {
        let store = self.engine.store();
        Ok(py
            .detach(|| store.clear_expired())
            .map_err(BindingError::from)?)
    }

    /// The keys of `account_id`'s live sessions (engines with the account index: account_db).
    fn sessions_of_account(&self, py: Python<'_>, account_id: i64) -> PyResult<Vec<String>> {
        let store = self.engine.store();
        let records = py
            .detach(|| store.sessions_of_account(account_id))
            .map_err(BindingError::from)?;
        Ok(records
            .into_iter()
            .map(|record| record.session_key.into_string())
            .collect())
    }

    /// Deletes every session of `account_id` except `keep` ("log out everywhere else");
    /// returns how many went.
    #[pyo3(signature = (account_id, keep=None))]
    fn delete_sessions_of_account(
        &self,
        py: Python<'_>,
        account_id: i64,
        keep: Option<&str>,
    ) -> PyResult<u64> {
        let store = self.engine.store();
        Ok(py
            .detach(|| store.delete_sessions_of_account(account_id, keep))
            .map_err(BindingError::from)?)
    }

    fn __repr__(&self) -> String {
        let description = self.engine.description();
        format!(
            "<NativeEngine {} {} from {}>",
            description.name,
            description.version,
            description.path.display()
        )
    }
}

/// Settings for the engine: `SECRET_KEY` first (required), then every other name through
/// `Settings::set`, exactly as the Rust host reads them.
fn settings_from_json(settings_json: &str) -> Result<Settings, BindingError> {
    let value: Value = serde_json::from_str(settings_json)
        .map_err(|e| BindingError::SettingsJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(BindingError::SettingsJson("not an object".to_owned()));
    };
    let mut settings = Settings::new(String::new());
    for (name, value) in map {
        settings
            .set(&name, value)
            .map_err(|source| BindingError::Setting {
                name: name.clone(),
                source,
            })?;
    }
    Ok(settings)
}

/// The serializer's bytes (Django's JSONSerializer writes ASCII; latin-1 is read as Python
/// does) as a JSON object.
fn parse_session_json(json: &[u8]) -> Result<Value, BindingError> {
    let value = parse_python_json(json).map_err(|e| BindingError::SessionJson(e.to_string()))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(BindingError::SessionJson(
            "a session must serialize to a JSON object".to_owned(),
        ))
    }
}

fn decode_with(
    codec: &SessionCodec,
    session_data: &str,
    max_age: Option<i64>,
) -> (u8, Option<String>) {
    // Object-only, as the Rust host: a validly signed non-object payload is an empty session.
    match codec.decode(session_data, max_age, now_unix()) {
        Ok(map) => found(map),
        Err(DecodeError::BadSignature) => (Loaded::BadSignature as u8, None),
        Err(_) => (Loaded::Undecodable as u8, None),
    }
}

/// A decoded session as `(Loaded::Found, json)` in Python's JSON.
fn found(map: serde_json::Map<String, Value>) -> (u8, Option<String>) {
    match to_python_json(&Value::Object(map)) {
        Ok(json) => (Loaded::Found as u8, Some(json)),
        Err(_) => (Loaded::Undecodable as u8, None),
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// The `sessionkit._native` module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<NativeEngine>()?;
    m.add_class::<Codec>()?;
    m.add("EngineError", py.get_type::<EngineError>())?;
    m.add("SessionExists", py.get_type::<SessionExists>())?;
    m.add("SessionNotFound", py.get_type::<SessionNotFound>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ENGINE_PATH_VAR", sessionkit::loader::ENGINE_PATH_VAR)?;
    Ok(())
}
