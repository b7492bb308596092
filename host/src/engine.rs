//! [`Engine`]: an opened engine, with the codec, the decode memo and Django's session rules
//! around its guarded [`Store`].

use std::{fmt, sync::Arc};

use abi_stable::std_types::RString;
use sessionkit_codec::{
    SessionMap,
    expiry::{Clock, EXPIRY_KEY, SystemClock, expiry_date},
    signing::{DecodeError, Encoded, SessionCodec, decode_unsigned, payload_segment},
    time::from_datetime,
};
use sessionkit_sdk::{
    Capabilities, ConditionalSave, EngineInfo, ErrorKind, SessionRecord, SessionWrite, StoreBox,
    Timestamp,
};

use crate::{
    Error,
    blocking::{Run, run_blocking},
    loader::{self, EngineDescription, LoadError},
    memo::{DEFAULT_CAPACITY, DecodeMemo, Decoded},
    mode::Mode,
    plugin::{Contract, PluginStore, ProgressListener, SharedClock, SharedProgress},
    save_turns::SaveTurns,
    session::Session,
    settings::{ConcurrentWrites, Settings},
    store::Store,
};

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
    /// Where the engine's key format changes the rules (`mode.rs`).
    mode: Mode,
    /// The clock the engine's store was lent at open; [`Engine::with_clock`] replaces what it
    /// holds.
    store_clock: Arc<SharedClock>,
    /// The progress display the engine's store reports to (contract 0.3).
    store_progress: Arc<SharedProgress>,
    /// This process's merging saves of one session take turns (`save_turns.rs`).
    save_turns: SaveTurns,
}

/// What loading a session key found.
pub(crate) enum Fetched {
    /// A live record, decoded, with its `session_data` as stored when the engine merges
    /// concurrent writes (what a conditional save must find unchanged).
    Found(Decoded, Option<Arc<str>>),
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
        let store_progress = Arc::new(SharedProgress::default());
        let store = library.open_watched(
            &settings.engine_settings_json(),
            store_clock.clone(),
            store_progress.clone(),
        )?;
        Self::assemble(library.info, store, store_clock, store_progress, settings)
    }

    /// An engine around a store built in-process instead of loaded from a plugin library: an
    /// application's own store, or [`MemoryStore`](crate::testing::MemoryStore) in tests and
    /// examples. `info` plays the part of the library's exported description.
    ///
    /// # Examples
    ///
    /// ```
    /// use sessionkit::{Engine, Settings, testing::MemoryStore};
    /// use sessionkit_sdk::store::FfiAdapter;
    ///
    /// let store = FfiAdapter::new("memory", MemoryStore::new()).into_box();
    /// let engine = Engine::from_store(MemoryStore::INFO, store, &Settings::new("a secret"))?;
    /// assert_eq!(engine.description().name, "memory");
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] for invalid settings.
    pub fn from_store(
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
            Arc::default(),
            settings,
        )
    }

    /// The same engine judging time by `clock` (tests use a `ManualClock`). The engine's store
    /// judges expiry by it too (an engine of contract 0.2 or later), so every `Engine` sharing
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
        let memo = (enabled && self.shared.mode.memoises())
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
        self.shared.store.contract()
    }

    /// What the engine can do.
    pub fn capabilities(&self) -> Capabilities {
        self.shared.description.capabilities
    }

    /// Whether an async caller awaits the store's calls on the event loop (`READINESS_CALLS`)
    /// instead of the blocking pool.
    pub(crate) fn awaits_readiness(&self) -> bool {
        self.shared.store.awaits_readiness()
    }

    /// Whether the opened store never blocks (`NON_BLOCKING`), so async callers run it inline.
    pub(crate) fn is_non_blocking(&self) -> bool {
        self.capabilities().contains(Capabilities::NON_BLOCKING)
    }

    /// Waits for `key`'s turn among this process's async merging saves of that session.
    pub(crate) async fn save_turn(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.shared.save_turns.take(key).await
    }

    /// The settings the engine was opened with.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// The clock sessions of this engine use for "now".
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
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
            .encode(session, self.clock.now_utc().timestamp())
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

    /// [`Engine::clear_expired`], calling `on_progress(operation, done, total)` as the engine
    /// reports how far it got (an engine of contract 0.3 or later that reports; others
    /// never call it). `total` is the engine's count at the start, 0 when unknown.
    ///
    /// # Errors
    ///
    /// As [`Engine::clear_expired`].
    pub fn clear_expired_with_progress(
        &self,
        on_progress: Arc<ProgressListener>,
    ) -> Result<u64, Error> {
        self.shared
            .store_progress
            .watch(on_progress, || self.shared.store.clear_expired())
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
        store_progress: Arc<SharedProgress>,
        settings: &Settings,
    ) -> Result<Engine, Error> {
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
        let store = Store::new(
            description.name.clone(),
            description.key_format,
            description.capabilities,
            store,
        );
        let mut description = description;
        description.capabilities = store.capabilities();
        let mode = Mode::of(description.key_format);
        let shared = Shared {
            description,
            store,
            settings: settings.clone(),
            codec,
            mode,
            store_clock,
            store_progress,
            save_turns: SaveTurns::new(),
        };
        let memo = mode
            .memoises()
            .then(|| Arc::new(DecodeMemo::with_capacity(DEFAULT_CAPACITY)));
        Ok(Engine {
            shared: Arc::new(shared),
            clock: Arc::new(SystemClock),
            memo,
        })
    }

    /// The decode memo, if the engine has one (tests look inside).
    #[cfg(test)]
    pub(crate) fn memo(&self) -> Option<&DecodeMemo> {
        self.memo.as_deref()
    }

    pub(crate) fn name(&self) -> &str {
        &self.shared.description.name
    }

    /// The rules that depend on the engine's key format.
    pub(crate) fn mode(&self) -> Mode {
        self.shared.mode
    }

    /// The signing codec, with this engine's salt and the settings' keys.
    pub(crate) fn codec(&self) -> &SessionCodec {
        &self.shared.codec
    }

    /// Loads and decodes what `key` holds (Django's `load`, minus the state changes, which
    /// [`Session`] applies; see [`Mode::fetch`]).
    pub(crate) async fn fetch(&self, run: Run, key: &str) -> Result<Fetched, Error> {
        self.mode().fetch(self, run, key).await
    }

    /// Decodes stored `session_data` (no `max_age`), through the memo when the engine has one.
    ///
    /// For an engine with [`Capabilities::DECODED_DATA`], data beginning with `{` is the
    /// session dict itself (what Django's cache backends store) and is parsed, not verified;
    /// for every other engine such data is unsigned and fails like any bad signature.
    pub(crate) fn decode_stored(&self, session_data: &str) -> Result<Decoded, DecodeError> {
        let decode = || {
            if session_data.starts_with('{')
                && self.capabilities().contains(Capabilities::DECODED_DATA)
            {
                return decode_unsigned(session_data).map(Decoded::from_decode);
            }
            self.shared
                .codec
                .decode(session_data, None, self.clock.now_utc().timestamp())
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
        let now = self.clock.now_utc();
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
        self.mode().check_size(self, &encoded)?;
        Ok(PendingWrite {
            encoded: Arc::new(encoded),
            expire_date: from_datetime(expire),
            map: self.memo.is_some().then(|| Arc::clone(data)),
        })
    }

    /// Stores `pending` under `key`: a create (`must_create`) or an update, whose `NotFound`
    /// becomes [`Error::SessionInterrupted`]. Returns the key the engine stored it under.
    pub(crate) async fn write(
        &self,
        run: Run,
        key: &str,
        pending: &PendingWrite,
        must_create: bool,
    ) -> Result<String, Error> {
        let write = pending.to_write(key);
        let stored = if must_create {
            self.shared.store.create_in(run, write).await
        } else {
            (self.shared.store.save_in(run, write).await).map_err(interrupted_if_gone)
        }?;
        self.remember(pending);
        Ok(stored)
    }

    /// Whether saves of this engine merge concurrent requests' changes: the store has a
    /// conditional save and `SESSION_CONCURRENT_WRITES` is `merge`.
    pub(crate) fn merges_writes(&self) -> bool {
        self.capabilities().contains(Capabilities::CONDITIONAL_SAVE)
            && self.shared.settings.session_concurrent_writes == ConcurrentWrites::Merge
    }

    /// Stores `pending` under `key` only if the record still holds `expected` (what the session
    /// loaded or last saved). A vanished record is [`Error::SessionInterrupted`], as for
    /// [`Engine::write`].
    pub(crate) async fn write_if_unchanged(
        &self,
        run: Run,
        key: &str,
        pending: &PendingWrite,
        expected: &str,
    ) -> Result<ConditionalSave, Error> {
        let outcome = self
            .shared
            .store
            .save_if_unchanged_in(run, pending.to_write(key), expected)
            .await
            .map_err(interrupted_if_gone)?;
        if let ConditionalSave::Saved(_) = outcome {
            self.remember(pending);
        }
        Ok(outcome)
    }

    /// Stores `pending` under a fresh key (Django's `create()`; see [`Mode::create`]).
    pub(crate) async fn create_record(
        &self,
        run: Run,
        pending: &PendingWrite,
    ) -> Result<String, Error> {
        self.mode().create(self, run, pending).await
    }

    /// After a successful write: the memo learns what the stored `session_data` decodes to
    /// (the map it was encoded from), so the next request's load is a hit.
    pub(crate) fn remember(&self, pending: &PendingWrite) {
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

    pub(crate) fn report_decode_failure(&self, error: &DecodeError) {
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

    /// The `session_data` this write stores, shared (what a later conditional save expects).
    pub(crate) fn stored_data(&self) -> Arc<str> {
        Arc::from(self.encoded.session_data.as_str())
    }

    /// The contract's write of this session under `key`.
    pub(crate) fn to_write(&self, key: &str) -> SessionWrite {
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

/// An update that found its session gone is Django's `SessionInterrupted` (a logout in another
/// request); every other failure stays as it is.
fn interrupted_if_gone(error: Error) -> Error {
    match error.kind() {
        Some(ErrorKind::NotFound) => Error::SessionInterrupted,
        _ => error,
    }
}
