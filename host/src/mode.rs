//! Where the two key formats part ways: every signed-payload rule in one place.
//!
//! A server-side engine (Django's `db`, `cache`, `file`, ...) keeps a record under a random key.
//! A signed-payload engine (Django's `signed_cookies`) keeps nothing: the key *is* the signed
//! session, so every rule that touches a record reads differently. Each method of [`Mode`] is
//! one of the overrides in Django's `signed_cookies.py`, next to what the server-side engines do:
//!
//! | Django (`signed_cookies.py`)                    | here                      |
//! |-------------------------------------------------|---------------------------|
//! | `load()`: `signing.loads(key, max_age=…)`, else `create()` | [`Mode::fetch`]  |
//! | `create()`: `self.modified = True`              | [`Mode::create`]          |
//! | `save()`: re-sign into the key, `modified = True` | [`Mode::after_write`]   |
//! | `delete()`: key `""`, cache `{}`, `modified = True` | [`Mode::after_delete`] |
//! | `cycle_key()`: `self.save()`                    | [`Mode::cycles_by_saving`] |
//! | the payload must fit a cookie                   | [`Mode::check_size`]      |
//! | (no record to memoise)                          | [`Mode::memoises`]        |

use std::sync::Arc;

use sessionkit_codec::signing::Encoded;
use sessionkit_sdk::{ErrorKind, KeyFormat};

use crate::{
    Engine, Error, Session,
    blocking::Run,
    engine::{CREATE_ATTEMPTS, Fetched, PendingWrite},
    memo::Decoded,
    store::MAX_SIGNED_PAYLOAD,
};

/// How an engine keeps sessions, from its [`KeyFormat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A record under a random Django session key.
    ServerSide,
    /// No record: the key is the signed session itself.
    SignedPayload,
}

impl Mode {
    /// The mode of an engine whose keys have `format`.
    pub(crate) fn of(format: KeyFormat) -> Self {
        match format {
            KeyFormat::DjangoSessionKey => Self::ServerSide,
            KeyFormat::SignedPayload => Self::SignedPayload,
        }
    }

    /// Whether decoded sessions are worth memoising: a record's `session_data` repeats from
    /// request to request; a signed payload is re-signed (and so differs) on every save.
    pub(crate) fn memoises(self) -> bool {
        self == Self::ServerSide
    }

    /// Django's `load()`, minus the state changes (which [`Session`] applies).
    ///
    /// Server side: the record under `key`, decoded; a record the store reports corrupted, or
    /// none, is [`Fetched::Gone`]; data that does not decode is [`Fetched::Undecodable`].
    /// Signed payload: the key itself, verified with `max_age = SESSION_COOKIE_AGE`; a payload
    /// that does not verify is [`Fetched::Rejected`] (Django calls `create()`).
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] when the store fails (never for a signed payload).
    pub(crate) async fn fetch(
        self,
        engine: &Engine,
        run: Run,
        key: &str,
    ) -> Result<Fetched, Error> {
        match self {
            Self::SignedPayload => {
                if !engine.is_valid_key(key) {
                    return Ok(Fetched::Rejected);
                }
                let max_age = Some(engine.settings().session_cookie_age);
                let now = engine.clock().now_utc().timestamp();
                Ok(match engine.codec().decode(key, max_age, now) {
                    Ok(map) => Fetched::Found(Decoded::from_decode(map), None),
                    Err(error) => {
                        engine.report_decode_failure(&error);
                        Fetched::Rejected
                    }
                })
            }
            Self::ServerSide => {
                // A session's key always fits the format (it came through `Engine::session` or
                // back from a checked write), so it is not checked again.
                debug_assert!(engine.is_valid_key(key), "a session key outside the format");
                let record = match engine.store().load_valid_key_in(run, key).await {
                    Ok(Some(record)) => record,
                    Ok(None) => return Ok(Fetched::Gone),
                    Err(error) if error.kind() == Some(ErrorKind::Corrupted) => {
                        tracing::warn!(
                            target: "sessionkit::security",
                            engine = engine.name(),
                            "Session data corrupted: {error}"
                        );
                        return Ok(Fetched::Gone);
                    }
                    Err(error) => return Err(error),
                };
                Ok(match engine.decode_stored(record.session_data.as_str()) {
                    Ok(decoded) => Fetched::Found(
                        decoded,
                        engine
                            .merges_writes()
                            .then(|| Arc::from(record.session_data.as_str())),
                    ),
                    Err(error) => {
                        engine.report_decode_failure(&error);
                        Fetched::Undecodable
                    }
                })
            }
        }
    }

    /// The size rule of the written form: a signed payload becomes the cookie, which browsers
    /// drop over [`MAX_SIGNED_PAYLOAD`] bytes. A record has no such limit.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] for a signed payload over the limit.
    pub(crate) fn check_size(self, engine: &Engine, encoded: &Encoded) -> Result<(), Error> {
        if self == Self::SignedPayload && encoded.session_data.len() > MAX_SIGNED_PAYLOAD {
            return Err(Error::TooLarge {
                engine: engine.name().to_owned(),
                what: "signed cookie",
                size: encoded.session_data.len(),
                max: MAX_SIGNED_PAYLOAD,
            });
        }
        Ok(())
    }

    /// Django's `create()`: stores `pending` under a fresh key; returns the key.
    ///
    /// Server side: a new random key per attempt while the engine reports it taken, up to
    /// [`CREATE_ATTEMPTS`]. Signed payload: nothing to mint and nothing can collide; the engine
    /// answers with the payload as the key.
    ///
    /// # Errors
    ///
    /// [`Error::CreateExhausted`] after [`CREATE_ATTEMPTS`] taken keys; [`Error::Engine`].
    pub(crate) async fn create(
        self,
        engine: &Engine,
        run: Run,
        pending: &PendingWrite,
    ) -> Result<String, Error> {
        if self == Self::SignedPayload {
            return engine.store().create_in(run, pending.to_write("")).await;
        }
        for _ in 0..CREATE_ATTEMPTS {
            let key = sessionkit_codec::key::new_session_key();
            match engine.store().create_in(run, pending.to_write(&key)).await {
                Err(error) if error.kind() == Some(ErrorKind::AlreadyExists) => continue,
                Ok(stored) => {
                    engine.remember(pending);
                    return Ok(stored);
                }
                Err(error) => return Err(error),
            }
        }
        Err(Error::CreateExhausted {
            engine: engine.name().to_owned(),
            attempts: CREATE_ATTEMPTS,
        })
    }

    /// What a successful save leaves in `session`: the key the engine stored it under and
    /// what it was saved as. A signed-payload save re-signs the data into the key and marks the
    /// session modified (Django's `save()`), so the middleware sends the new cookie.
    pub(crate) fn after_write(self, session: &mut Session, stored: String, saved: Option<Decoded>) {
        session.origin = saved;
        session.key = Some(stored);
        if self == Self::SignedPayload {
            session.modified = true;
        }
    }

    /// What a delete leaves in `session`. A record is simply gone. A signed payload cannot be
    /// revoked, so the session forgets its key and data instead and is marked modified
    /// (Django's `delete()`: `_session_key = ""`, `_session_cache = {}`).
    pub(crate) fn after_delete(self, session: &mut Session) {
        if self == Self::SignedPayload {
            session.key = None;
            session.cache = Some(Arc::default());
            session.modified = true;
        }
    }

    /// Whether `cycle_key()` is a plain save: a signed payload has no old record to delete and
    /// is re-signed by every save (Django's `cycle_key()` calls `save()`).
    pub(crate) fn cycles_by_saving(self) -> bool {
        self == Self::SignedPayload
    }
}
