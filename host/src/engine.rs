//! An opened engine ([`Engine`]) and its raw storage contract ([`Store`]).

use std::{fmt, sync::Arc};

use abi_stable::std_types::RString;
use sessionkit_codec::{
    SessionMap,
    expiry::{Clock, EXPIRY_KEY, SystemClock, expiry_date},
    key::is_valid_session_key,
    signing::{DecodeError, Encoded, SessionCodec, payload_segment},
    time::from_datetime,
};
use sessionkit_sdk::{
    Capabilities, ConditionalSave, EngineInfo, ErrorKind, KeyFormat, SessionRecord, SessionStore,
    SessionWrite, StoreBox, StoreResult, Timestamp,
};

use crate::{
    Error,
    loader::{self, EngineDescription, LoadError},
    memo::{DEFAULT_CAPACITY, DecodeMemo, Decoded},
    plugin::{Contract, PluginStore, SharedClock},
    serializer::{Serializer, serializer_for},
    session::Session,
    settings::Settings,
};

/// The longest signed payload (cookie value) a [`KeyFormat::SignedPayload`] engine may use as a
/// key: browsers drop cookies over 4096 bytes.
pub const MAX_SIGNED_PAYLOAD: usize = 4096;

/// The largest session, as JSON, the host saves: the codec refuses to decompress more than this
/// when loading, so a larger session would be written and then never read back.
pub const MAX_SESSION_JSON: usize = sessionkit_codec::signing::MAX_DECOMPRESSED_LEN;

/// How many freshly minted keys `create` tries before giving up ([`Error::CreateExhausted`]).
pub const CREATE_ATTEMPTS: u32 = 100;

/// An opened session engine: its library, its store, the settings and signing codec, and the
/// clock sessions are judged by. Cheap to clone (shared inside).
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    /// Decoded sessions by their exact `session_data` (engines with Django keys only; see
    /// `memo.rs`). Shared by clones.
    memo: Option<Arc<DecodeMemo>>,
}

struct Shared {
    description: EngineDescription,
    store: Store,
    settings: Settings,
    codec: SessionCodec,
    serializer: Arc<dyn Serializer>,
    /// The clock the engine's store was lent at open; [`Engine::with_clock`] replaces what it
    /// holds.
    store_clock: Arc<SharedClock>,
}

/// The storage contract of one opened engine, with host types in and out: every key is checked
/// against the engine's [`KeyFormat`] before any call, and every error carries the engine's
/// name, the operation and a key prefix.
///
/// Reads with a key outside the format answer as for an unknown key (`Ok(None)`,
/// `Ok(false)`, `Ok(())`) without calling the engine; writes with one fail with
/// [`Error::InvalidKey`].
pub struct Store {
    engine: String,
    key_format: KeyFormat,
    capabilities: Capabilities,
    inner: PluginStore,
}

/// What loading a session key found.
pub(crate) enum Fetched {
    /// A live record, decoded.
    Found(Decoded),
    /// No live record (unknown, expired, or unreadable by the store): Django drops the key.
    Gone,
    /// A record whose data did not decode: an empty session, key kept (Django's `decode`).
    Undecodable,
    /// A signed payload that did not verify: an empty, modified session (Django's cookie
    /// backend calls `create()`).
    Rejected,
}

/// A session encoded for a write, before a key is attached.
pub(crate) struct PendingWrite {
    encoded: Arc<Encoded>,
    expire_date: Timestamp,
    /// The map `encoded` was made from, when the engine memoises decoded sessions: after the
    /// write, the memo learns what the new `session_data` decodes to.
    map: Option<Arc<SessionMap>>,
}

impl Engine {
    /// Loads and opens the engine `settings.session_engine` names.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] for invalid settings, [`Error::Load`] when the engine cannot be
    /// found, loaded or opened.
    pub fn from_settings(settings: &Settings) -> Result<Engine, Error> {
        Self::load(&settings.session_engine, settings)
    }

    /// Loads and opens the engine `spec` names (a short name, a Django dotted name or a
    /// library path), searching [`loader::engine_search_path`].
    ///
    /// # Errors
    ///
    /// As [`Engine::from_settings`]; also [`LoadError::NameMismatch`] when the library found
    /// for a name reports another name.
    pub fn load(spec: &str, settings: &Settings) -> Result<Engine, Error> {
        settings.validate()?;
        let search = loader::engine_search_path();
        let path = loader::resolve_engine(spec, &search)?;
        let library = loader::load_library(&path)?;
        if let Some(expected) = loader::engine_name_of_spec(spec)
            && expected != library.info.name
        {
            return Err(LoadError::NameMismatch {
                path: library.path.clone(),
                expected: expected.to_owned(),
                found: library.info.name.clone(),
            }
            .into());
        }
        let store_clock = Arc::new(SharedClock::new(Arc::new(SystemClock)));
        let store = library.open(&settings.engine_settings_json(), store_clock.clone())?;
        Self::assemble(library.info, store, store_clock, settings)
    }

    /// An engine around a store built in-process, for unit tests of the session rules without
    /// a plugin library.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] for invalid settings.
    #[doc(hidden)]
    pub fn from_store_for_tests(
        info: EngineInfo,
        store: StoreBox,
        settings: &Settings,
    ) -> Result<Engine, Error> {
        settings.validate()?;
        let description = EngineDescription {
            name: info.name.as_str().to_owned(),
            version: info.version.as_str().to_owned(),
            salt: info.salt.as_str().to_owned(),
            capabilities: info.capabilities,
            key_format: info.key_format,
            path: Default::default(),
        };
        let store_clock = Arc::new(SharedClock::new(Arc::new(SystemClock)));
        Self::assemble(
            description,
            PluginStore::current(store),
            store_clock,
            settings,
        )
    }

    /// The same engine judging time by `clock` (tests use a `ManualClock`). The engine's store
    /// judges expiry by it too (an engine of contract 0.2 or later): every `Engine` sharing
    /// the store sees the change.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Engine {
        self.shared.store_clock.set(clock.clone());
        Engine {
            shared: self.shared,
            clock,
            memo: self.memo,
        }
    }

    /// The same engine with its decode memo on (a fresh, empty one) or off, for benchmarks
    /// that measure what the memo saves. It is on by default for engines with Django session
    /// keys and cannot be turned on for signed-payload engines.
    #[doc(hidden)]
    pub fn with_decode_memo(self, enabled: bool) -> Engine {
        let memo = (enabled && self.key_format() == KeyFormat::DjangoSessionKey)
            .then(|| Arc::new(DecodeMemo::with_capacity(DEFAULT_CAPACITY)));
        Engine { memo, ..self }
    }

    /// The engine's name, version, salt, capabilities, key format and library path.
    pub fn description(&self) -> &EngineDescription {
        &self.shared.description
    }

    /// The contract revision the engine's library was built against (an in-process store
    /// speaks the current one).
    pub fn contract(&self) -> Contract {
        self.shared.store.inner.contract()
    }

    /// What the engine can do.
    pub fn capabilities(&self) -> Capabilities {
        self.shared.description.capabilities
    }

    /// Whether the opened store never blocks (`NON_BLOCKING`), so async callers run it inline.
    pub(crate) fn is_non_blocking(&self) -> bool {
        self.capabilities().contains(Capabilities::NON_BLOCKING)
    }

    /// The settings the engine was opened with.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// The clock sessions of this engine use for "now".
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The serializer `SESSION_SERIALIZER` selected.
    pub fn serializer(&self) -> &Arc<dyn Serializer> {
        &self.shared.serializer
    }

    /// A session for `key` (the request's cookie value), loaded lazily on first access. A key
    /// outside the engine's key format is treated as no key: a fresh session.
    pub fn session(&self, key: Option<&str>) -> Session {
        let key = key.filter(|key| self.is_valid_key(key)).map(str::to_owned);
        Session::new(self.clone(), key)
    }

    /// Whether `key` fits the engine's key format (and so may reach the engine).
    pub fn is_valid_key(&self, key: &str) -> bool {
        self.shared.store.is_valid_key(key)
    }

    /// Signs `session` with this engine's salt, as it would be stored (Django's `encode`).
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when the session cannot be written as JSON.
    pub fn encode(&self, session: &SessionMap) -> Result<Encoded, Error> {
        self.shared
            .codec
            .encode(session, self.clock.now().timestamp())
            .map_err(Error::Encode)
    }

    /// Verifies and decodes stored `session_data` (Django's `get_decoded`): any failure gives
    /// an empty session, with a warning for a bad signature.
    pub fn decode(&self, session_data: &str) -> SessionMap {
        match self.decode_stored(session_data) {
            Ok(decoded) => Arc::unwrap_or_clone(decoded.map),
            Err(error) => {
                self.report_decode_failure(&error);
                SessionMap::new()
            }
        }
    }

    /// Removes every expired session (Django's `clearsessions`); returns how many went.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn clear_expired(&self) -> Result<u64, Error> {
        self.shared.store.clear_expired()
    }

    /// [`Engine::clear_expired`] on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Engine::clear_expired`], plus [`Error::Join`].
    #[doc(alias = "aclear_expired")]
    pub async fn clear_expired_async(&self) -> Result<u64, Error> {
        let engine = self.clone();
        run_blocking(self.is_non_blocking(), move || engine.clear_expired()).await
    }

    /// The live sessions of `account_id` (the `ACCOUNT_INDEX` capability).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] without the capability; [`Error::Engine`] otherwise.
    pub fn sessions_of_account(&self, account_id: i64) -> Result<Vec<SessionRecord>, Error> {
        self.shared.store.sessions_of_account(account_id)
    }

    /// Deletes every session of `account_id` except `keep` ("log out everywhere"); returns how
    /// many went.
    ///
    /// # Errors
    ///
    /// As [`Engine::sessions_of_account`].
    pub fn delete_sessions_of_account(
        &self,
        account_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, Error> {
        self.shared
            .store
            .delete_sessions_of_account(account_id, keep)
    }

    /// The raw storage contract, for the conformance suite and the CLI.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    fn assemble(
        description: EngineDescription,
        store: PluginStore,
        store_clock: Arc<SharedClock>,
        settings: &Settings,
    ) -> Result<Engine, Error> {
        let serializer = serializer_for(&settings.session_serializer)?;
        let fallbacks: Vec<Vec<u8>> = settings
            .secret_key_fallbacks
            .iter()
            .map(|key| key.as_bytes().to_vec())
            .collect();
        let codec = SessionCodec::new(
            &description.salt,
            settings.secret_key.as_bytes(),
            &fallbacks,
        );
        // What the opened store adds to what its engine declared (e.g. `non_blocking` for an
        // in-process cache): the host's view is the union.
        let mut description = description;
        description.capabilities = description.capabilities | store.capabilities();
        let store = Store {
            engine: description.name.clone(),
            key_format: description.key_format,
            capabilities: description.capabilities,
            inner: store,
        };
        let shared = Shared {
            description,
            store,
            settings: settings.clone(),
            codec,
            serializer,
            store_clock,
        };
        let memo = (shared.description.key_format == KeyFormat::DjangoSessionKey)
            .then(|| Arc::new(DecodeMemo::with_capacity(DEFAULT_CAPACITY)));
        Ok(Engine {
            shared: Arc::new(shared),
            clock: Arc::new(SystemClock),
            memo,
        })
    }

    pub(crate) fn key_format(&self) -> KeyFormat {
        self.shared.description.key_format
    }

    /// The decode memo, if the engine has one (tests look inside).
    #[cfg(test)]
    pub(crate) fn memo(&self) -> Option<&DecodeMemo> {
        self.memo.as_deref()
    }

    pub(crate) fn name(&self) -> &str {
        &self.shared.description.name
    }

    /// Loads and decodes what `key` holds (Django's `load`, minus the state changes, which
    /// [`Session`] applies).
    ///
    /// `key` must fit the engine's key format: a session's key always does (it came through
    /// [`Engine::session`] or back from a checked write), so the store is called without
    /// checking it again.
    pub(crate) fn fetch(&self, key: &str) -> Result<Fetched, Error> {
        if self.key_format() == KeyFormat::SignedPayload {
            if !self.is_valid_key(key) {
                return Ok(Fetched::Rejected);
            }
            let now = self.clock.now().timestamp();
            let max_age = Some(self.shared.settings.session_cookie_age);
            return Ok(match self.shared.codec.decode(key, max_age, now) {
                Ok(map) => Fetched::Found(Decoded::from_decode(map)),
                Err(error) => {
                    self.report_decode_failure(&error);
                    Fetched::Rejected
                }
            });
        }
        debug_assert!(self.is_valid_key(key), "a session key outside the format");
        let record = match self.shared.store.load_valid_key(key) {
            Ok(record) => record,
            Err(error) if error.kind() == Some(ErrorKind::Corrupted) => {
                tracing::warn!(
                    target: "sessionkit::security",
                    engine = self.name(),
                    "Session data corrupted: {error}"
                );
                return Ok(Fetched::Gone);
            }
            Err(error) => return Err(error),
        };
        let Some(record) = record else {
            return Ok(Fetched::Gone);
        };
        Ok(match self.decode_stored(record.session_data.as_str()) {
            Ok(decoded) => Fetched::Found(decoded),
            Err(error) => {
                self.report_decode_failure(&error);
                Fetched::Undecodable
            }
        })
    }

    /// Decodes stored `session_data` (no `max_age`), through the memo when the engine has one.
    fn decode_stored(&self, session_data: &str) -> Result<Decoded, DecodeError> {
        let decode = || {
            self.shared
                .codec
                .decode(session_data, None, self.clock.now().timestamp())
                .map(Decoded::from_decode)
        };
        let Some(memo) = &self.memo else {
            return decode();
        };
        if let Some(hit) = memo.get(session_data) {
            return Ok(hit);
        }
        // Failures are not remembered: they are rare, and each one must be reported.
        let decoded = decode()?;
        memo.insert(session_data, decoded.clone());
        Ok(decoded)
    }

    /// Encodes `data` for a write at the clock's now, with Django's `expire_date =
    /// get_expiry_date()`.
    ///
    /// `origin` is what the session was loaded (or last saved) as. When this engine encoded it
    /// and `data` still has the same JSON (`SESSION_SAVE_EVERY_REQUEST` re-saving an unchanged
    /// session), the compressed payload is reused and only signed anew: the same bytes as a
    /// fresh encode, since compression is deterministic, without the zlib work.
    pub(crate) fn prepare_write(
        &self,
        data: &Arc<SessionMap>,
        origin: Option<&Decoded>,
    ) -> Result<PendingWrite, Error> {
        let now = self.clock.now();
        let now_unix = now.timestamp();
        let expire = expiry_date(
            now,
            data.get(EXPIRY_KEY),
            self.shared.settings.session_cookie_age,
        );
        let codec = &self.shared.codec;
        let previous = origin.and_then(|origin| {
            let encoded = origin.encoded.as_ref()?;
            Some((Arc::ptr_eq(&origin.map, data), encoded))
        });
        let encoded = match previous {
            // The very map `previous` was encoded from (a Decoded's map is never mutated):
            // not even the JSON needs writing again.
            Some((true, previous)) => match payload_segment(&previous.session_data) {
                Some(payload) => Ok(Encoded {
                    session_data: codec.sign_payload(payload, now_unix),
                    session_json: previous.session_json.clone(),
                }),
                None => codec.encode(data, now_unix),
            },
            Some((false, previous)) => codec.encode_reusing(data, previous, now_unix),
            None => codec.encode(data, now_unix),
        }
        .map_err(Error::Encode)?;
        if encoded.session_json.len() > MAX_SESSION_JSON {
            return Err(Error::TooLarge {
                engine: self.name().to_owned(),
                what: "JSON",
                size: encoded.session_json.len(),
                max: MAX_SESSION_JSON,
            });
        }
        if self.key_format() == KeyFormat::SignedPayload
            && encoded.session_data.len() > MAX_SIGNED_PAYLOAD
        {
            return Err(Error::TooLarge {
                engine: self.name().to_owned(),
                what: "signed cookie",
                size: encoded.session_data.len(),
                max: MAX_SIGNED_PAYLOAD,
            });
        }
        Ok(PendingWrite {
            encoded: Arc::new(encoded),
            expire_date: from_datetime(expire),
            map: self.memo.is_some().then(|| Arc::clone(data)),
        })
    }

    /// Stores `pending` under `key`: a create (`must_create`) or an update, whose `NotFound`
    /// becomes [`Error::SessionInterrupted`]. Returns the key the engine stored it under.
    pub(crate) fn write(
        &self,
        key: &str,
        pending: &PendingWrite,
        must_create: bool,
    ) -> Result<String, Error> {
        let write = pending.to_write(key);
        let stored = if must_create {
            self.shared.store.create(write)
        } else {
            self.shared
                .store
                .save(write)
                .map_err(|error| match error.kind() {
                    Some(ErrorKind::NotFound) => Error::SessionInterrupted,
                    _ => error,
                })
        }?;
        self.remember(pending);
        Ok(stored)
    }

    /// Stores `pending` under a fresh key (Django's `create()` loop): a new key per attempt
    /// while the engine reports it taken, up to [`CREATE_ATTEMPTS`].
    pub(crate) fn create_record(&self, pending: &PendingWrite) -> Result<String, Error> {
        if self.key_format() == KeyFormat::SignedPayload {
            // The key is the payload itself: nothing to mint, nothing can collide.
            return self.shared.store.create(pending.to_write(""));
        }
        for _ in 0..CREATE_ATTEMPTS {
            let key = sessionkit_codec::key::new_session_key();
            match self.shared.store.create(pending.to_write(&key)) {
                Err(error) if error.kind() == Some(ErrorKind::AlreadyExists) => continue,
                Ok(stored) => {
                    self.remember(pending);
                    return Ok(stored);
                }
                Err(error) => return Err(error),
            }
        }
        Err(Error::CreateExhausted {
            engine: self.name().to_owned(),
            attempts: CREATE_ATTEMPTS,
        })
    }

    /// After a successful write: the memo learns what the stored `session_data` decodes to
    /// (the map it was encoded from), so the next request's load is a hit.
    fn remember(&self, pending: &PendingWrite) {
        let (Some(memo), Some(decoded)) = (&self.memo, pending.decoded()) else {
            return;
        };
        let data = pending.encoded.session_data.as_str();
        // Encoding is exact: decoding what was written gives back the same map.
        debug_assert!(
            self.shared
                .codec
                .decode(data, None, 0)
                .is_ok_and(|map| map == *decoded.map),
            "decode(encode(map)) differs from map"
        );
        memo.insert(data, decoded);
    }

    fn report_decode_failure(&self, error: &DecodeError) {
        match error {
            DecodeError::BadSignature => {
                tracing::warn!(target: "sessionkit::security", engine = self.name(), "Session data corrupted");
            }
            other => {
                tracing::debug!(target: "sessionkit", engine = self.name(), "session data not decoded: {other}");
            }
        }
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("description", &self.shared.description)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl PendingWrite {
    /// What the session is, once this write succeeds: its map and how it was encoded (only
    /// when the engine memoises).
    pub(crate) fn decoded(&self) -> Option<Decoded> {
        self.map.as_ref().map(|map| Decoded {
            map: Arc::clone(map),
            encoded: Some(Arc::clone(&self.encoded)),
        })
    }

    /// The `session_data` this write stores (tests look inside).
    #[cfg(test)]
    pub(crate) fn session_data(&self) -> &str {
        &self.encoded.session_data
    }

    fn to_write(&self, key: &str) -> SessionWrite {
        SessionWrite {
            record: SessionRecord {
                session_key: RString::from(key),
                session_data: RString::from(self.encoded.session_data.as_str()),
                expire_date: self.expire_date,
            },
            session_json: RString::from(self.encoded.session_json.as_str()),
        }
    }
}

impl Store {
    /// The engine's short name.
    pub fn engine_name(&self) -> &str {
        &self.engine
    }

    /// Which keys the engine accepts.
    pub fn key_format(&self) -> KeyFormat {
        self.key_format
    }

    /// Whether `key` fits the engine's key format: Django's 8 to 40 characters of `[a-z0-9]`,
    /// or for signed payloads 1 to 4096 bytes of `[A-Za-z0-9-_.:]`.
    pub fn is_valid_key(&self, key: &str) -> bool {
        is_valid_key(self.key_format, key)
    }

    /// Whether a record is stored under `key` (Django's `exists`).
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        if !self.is_valid_key(key) {
            return Ok(false);
        }
        self.inner
            .exists(key)
            .map_err(|e| self.error("exists", Some(key), e))
    }

    /// The live record under `key`, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn load(&self, key: &str) -> Result<Option<SessionRecord>, Error> {
        if !self.is_valid_key(key) {
            return Ok(None);
        }
        self.load_valid_key(key)
    }

    /// [`Store::load`] of a key already known to fit the key format.
    pub(crate) fn load_valid_key(&self, key: &str) -> Result<Option<SessionRecord>, Error> {
        self.inner
            .load(key)
            .map_err(|e| self.error("load", Some(key), e))
    }

    /// Stores a new record (`save(must_create=True)`); returns the key it is stored under.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] of kind `AlreadyExists` when the key is taken; [`Error::InvalidKey`]
    /// for a key outside the format (signed-payload engines take any key here: theirs is
    /// minted by the engine).
    pub fn create(&self, write: SessionWrite) -> Result<String, Error> {
        self.write("create", write, |inner, write| inner.create(write))
    }

    /// Replaces an existing record (`save(must_create=False)`); returns the key it is stored
    /// under.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] of kind `NotFound` when the record is gone; [`Error::InvalidKey`] as
    /// for [`Store::create`].
    pub fn save(&self, write: SessionWrite) -> Result<String, Error> {
        self.write("save", write, |inner, write| inner.save(write))
    }

    /// Replaces the record under the write's key only if it still holds `expected_data` (what
    /// the caller loaded): [`ConditionalSave::Conflict`] with the record stored now otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] without the `CONDITIONAL_SAVE` capability (the engine is not
    /// called); [`Error::Engine`] of kind `NotFound` when the record is gone;
    /// [`Error::InvalidKey`] for a key outside the format.
    pub fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: &str,
    ) -> Result<ConditionalSave, Error> {
        const OPERATION: &str = "save_if_unchanged";
        self.require(Capabilities::CONDITIONAL_SAVE, OPERATION)?;
        let key = write.record.session_key.to_string();
        if !self.is_valid_key(&key) {
            return Err(Error::InvalidKey {
                engine: self.engine.clone(),
                operation: OPERATION,
            });
        }
        let outcome = self
            .inner
            .save_if_unchanged(write, expected_data)
            .map_err(|e| self.error(OPERATION, Some(&key), e))?;
        if let ConditionalSave::Saved(stored) = &outcome
            && *stored != key
        {
            return Err(self.error(
                OPERATION,
                Some(&key),
                sessionkit_sdk::StoreError::other("the engine saved under another key"),
            ));
        }
        Ok(outcome)
    }

    /// Removes the record under `key`; unknown keys succeed.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        if !self.is_valid_key(key) {
            return Ok(());
        }
        self.inner
            .delete(key)
            .map_err(|e| self.error("delete", Some(key), e))
    }

    /// Removes every expired record; returns how many went.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn clear_expired(&self) -> Result<u64, Error> {
        self.inner
            .clear_expired()
            .map_err(|e| self.error("clear_expired", None, e))
    }

    /// The live sessions of `account_id`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] without the `ACCOUNT_INDEX` capability (the engine is not
    /// called); [`Error::Engine`] otherwise.
    pub fn sessions_of_account(&self, account_id: i64) -> Result<Vec<SessionRecord>, Error> {
        self.require(Capabilities::ACCOUNT_INDEX, "sessions_of_account")?;
        self.inner
            .sessions_of_account(account_id)
            .map_err(|e| self.error("list sessions of account", None, e))
    }

    /// Deletes every session of `account_id` except `keep`; returns how many went. A `keep`
    /// outside the key format cannot be a session of the account and is ignored.
    ///
    /// # Errors
    ///
    /// As [`Store::sessions_of_account`].
    pub fn delete_sessions_of_account(
        &self,
        account_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, Error> {
        self.require(Capabilities::ACCOUNT_INDEX, "delete_sessions_of_account")?;
        let keep = keep.filter(|key| self.is_valid_key(key));
        self.inner
            .delete_sessions_of_account(account_id, keep)
            .map_err(|e| self.error("delete sessions of account", keep, e))
    }

    fn write(
        &self,
        operation: &'static str,
        write: SessionWrite,
        call: impl FnOnce(&PluginStore, SessionWrite) -> StoreResult<String>,
    ) -> Result<String, Error> {
        let key = write.record.session_key.to_string();
        if self.key_format == KeyFormat::DjangoSessionKey && !self.is_valid_key(&key) {
            return Err(Error::InvalidKey {
                engine: self.engine.clone(),
                operation,
            });
        }
        let key_context = (!key.is_empty()).then_some(key.as_str());
        let stored = call(&self.inner, write).map_err(|e| self.error(operation, key_context, e))?;
        if self.key_format == KeyFormat::DjangoSessionKey && stored == key {
            return Ok(key);
        }
        if !self.is_valid_key(&stored) {
            return Err(self.error(
                operation,
                key_context,
                sessionkit_sdk::StoreError::other(
                    "the engine returned a key outside its key format",
                ),
            ));
        }
        Ok(stored)
    }

    fn require(&self, capability: Capabilities, operation: &'static str) -> Result<(), Error> {
        if self.capabilities.contains(capability) {
            Ok(())
        } else {
            Err(Error::Unsupported {
                engine: self.engine.clone(),
                operation,
            })
        }
    }

    fn error(
        &self,
        operation: &'static str,
        key: Option<&str>,
        source: sessionkit_sdk::StoreError,
    ) -> Error {
        Error::engine(&self.engine, operation, key, source)
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.engine)
            .field("key_format", &self.key_format)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

/// Whether `key` fits `format` (see [`Store::is_valid_key`]).
pub fn is_valid_key(format: KeyFormat, key: &str) -> bool {
    match format {
        KeyFormat::DjangoSessionKey => is_valid_session_key(key),
        KeyFormat::SignedPayload => {
            (1..=MAX_SIGNED_PAYLOAD).contains(&key.len())
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        }
    }
}

/// Runs an engine call on tokio's blocking pool, or inline when the store is `non_blocking`
/// (no I/O: the pool hop would cost far more than the call) or no tokio runtime is running (so
/// the async twins also work under other executors, just without offloading).
pub(crate) async fn run_blocking<T: Send + 'static>(
    non_blocking: bool,
    call: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    if non_blocking {
        return call();
    }
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(call)
            .await
            .map_err(|error| Error::Join(error.to_string()))?,
        Err(_) => call(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_keys_are_8_to_40_lowercase_alphanumerics() {
        let format = KeyFormat::DjangoSessionKey;
        assert!(is_valid_key(format, "abcdefgh"));
        assert!(is_valid_key(format, &"a1".repeat(16)));
        assert!(is_valid_key(format, &"z".repeat(40)));
        for bad in [
            "",
            "abcdefg",
            &"a".repeat(41),
            "ABCDEFGHIJ",
            "abcdefgh\0",
            "../../etc/passwd",
            "abcd/efgh",
            "abcd efgh",
            "abcdefgh\n",
            "abcdéfghij",
            "abcd;efgh",
        ] {
            assert!(!is_valid_key(format, bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn signed_payload_keys_are_cookie_safe_ascii_up_to_4096_bytes() {
        let format = KeyFormat::SignedPayload;
        assert!(is_valid_key(format, "e30:1uQ2nF:abcDEF-_"));
        assert!(is_valid_key(
            format,
            ".eJxTKkktLlGyUlAqS8wpTVUCADHLBTk:1uQ2nF:x"
        ));
        assert!(is_valid_key(format, &"a".repeat(4096)));
        for bad in [
            "",
            &"a".repeat(4097),
            "a b",
            "a;b",
            "a\0b",
            "a/b",
            "a=b",
            "a\"b",
            "é",
        ] {
            assert!(!is_valid_key(format, bad), "{bad:?} accepted");
        }
    }
}
