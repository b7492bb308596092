//! [`Session`]: one user's session, Django's `SessionBase`.
//!
//! Data loads lazily on first access; `accessed` and `modified` follow Django's rules per
//! operation (the middleware decides from them whether to save and whether to send
//! `Vary: Cookie`). Every method that may reach the engine has an `_async` twin that runs the
//! engine call on tokio's blocking pool.

use std::{fmt, sync::Arc};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use sessionkit_codec::{
    SessionMap,
    expiry::{EXPIRY_KEY, expires_at_browser_close, expiry_age, expiry_date},
    json::check_storable,
    time::isoformat,
};
use sessionkit_sdk::KeyFormat;

use crate::{
    Engine, Error,
    engine::{Fetched, PendingWrite, run_blocking},
    error::key_prefix,
    memo::Decoded,
    storable::to_storable,
};

/// The session key Django's test cookie uses.
pub const TEST_COOKIE_NAME: &str = "testcookie";

/// The value Django's test cookie holds.
pub const TEST_COOKIE_VALUE: &str = "worked";

/// What [`Session::set_expiry`] sets: Django's `set_expiry(value)` by the type of `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Expire after this many seconds of inactivity (an int; `0` is browser close).
    Seconds(i64),
    /// Expire at this instant (stored as its ISO 8601 text, `+00:00`).
    At(DateTime<Utc>),
    /// Expire this long from now (stored as the instant, like `At`).
    In(Duration),
    /// Expire when the browser closes (stores `0`).
    BrowserClose,
    /// Back to the global policy: `SESSION_COOKIE_AGE` / `SESSION_EXPIRE_AT_BROWSER_CLOSE`
    /// (Django's `set_expiry(None)`).
    Default,
}

/// One user's session (Django's `SessionBase`): a lazily loaded dictionary, its key, and the
/// `accessed` / `modified` flags.
pub struct Session {
    engine: Engine,
    key: Option<String>,
    /// The data once loaded (Django's `_session_cache`), shared with the engine's decode memo
    /// until changed: reads never copy it, the first change does (copy on write).
    cache: Option<Arc<SessionMap>>,
    /// What the session was loaded or last saved as; lets a save of unchanged data reuse its
    /// compressed payload (see `Engine::prepare_write`).
    origin: Option<Decoded>,
    accessed: bool,
    modified: bool,
}

impl Session {
    /// The session key, if it has one (a valid key from the request, or one minted on save).
    pub fn session_key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Whether the data was touched (read or written); the middleware then adds
    /// `Vary: Cookie`.
    pub fn accessed(&self) -> bool {
        self.accessed
    }

    /// Whether the data changed since load; the middleware then saves it.
    pub fn modified(&self) -> bool {
        self.modified
    }

    /// Overrides `accessed` (Django's attribute is writable).
    pub fn set_accessed(&mut self, v: bool) {
        self.accessed = v;
    }

    /// Overrides `modified`, e.g. after changing a value in place (Django's attribute is
    /// writable).
    pub fn set_modified(&mut self, v: bool) {
        self.modified = v;
    }

    /// True iff there is no key and the data is unloaded or empty (Django's `is_empty`). Never
    /// loads.
    pub fn is_empty(&self) -> bool {
        self.key.is_none() && self.cache.as_ref().is_none_or(|map| map.is_empty())
    }

    /// Whether the data is loaded (or was set without loading).
    pub fn is_loaded(&self) -> bool {
        self.cache.is_some()
    }

    /// The value under `k`, deserialized (Django's `get`).
    ///
    /// # Errors
    ///
    /// [`Error::Type`] when the value is not a `T`; engine errors from the lazy load.
    pub fn get<T: DeserializeOwned>(&mut self, k: &str) -> Result<Option<T>, Error> {
        self.get_value(k)?
            .map(|value| serde_json::from_value(value).map_err(Error::Type))
            .transpose()
    }

    /// The JSON value under `k` (Django's `get`).
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn get_value(&mut self, k: &str) -> Result<Option<Value>, Error> {
        Ok(self.data()?.get(k).cloned())
    }

    /// Sets `k` to `v` (Django's `s[k] = v`); marks the session modified.
    ///
    /// # Errors
    ///
    /// [`Error::Unstorable`] for a value that could not be loaded back (nested deeper than 127,
    /// a NaN or infinite float) and [`Error::Type`] for one JSON cannot hold; the session is
    /// then unchanged. Engine errors from the lazy load.
    pub fn insert<T: Serialize>(&mut self, k: &str, v: T) -> Result<(), Error> {
        let value = to_storable(&v)?;
        self.insert_value(k, value)
    }

    /// Removes `k` and returns its value (Django's `del s[k]` / `pop`); modified iff it was
    /// present.
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn remove(&mut self, k: &str) -> Result<Option<Value>, Error> {
        if !self.data()?.contains_key(k) {
            return Ok(None);
        }
        let removed = self.data_mut()?.shift_remove(k);
        self.modified = true;
        Ok(removed)
    }

    /// Removes `k` and returns its value deserialized (Django's `pop`); modified iff present.
    ///
    /// # Errors
    ///
    /// [`Error::Type`] when the value is not a `T` (the value then stays); engine errors from
    /// the lazy load.
    pub fn pop<T: DeserializeOwned>(&mut self, k: &str) -> Result<Option<T>, Error> {
        let Some(value) = self.data()?.get(k) else {
            return Ok(None);
        };
        let typed = serde_json::from_value(value.clone()).map_err(Error::Type)?;
        self.remove(k)?;
        Ok(Some(typed))
    }

    /// The value under `k`, inserting `default` first if absent (Django's `setdefault`);
    /// modified only when it inserts.
    ///
    /// # Errors
    ///
    /// As [`Session::insert`] for the default.
    pub fn setdefault<T: Serialize>(&mut self, k: &str, default: T) -> Result<Value, Error> {
        if let Some(value) = self.data()?.get(k) {
            return Ok(value.clone());
        }
        let value = to_storable(&default)?;
        self.insert_value(k, value.clone())?;
        Ok(value)
    }

    /// Sets every entry of `entries` (Django's `update`); always marks the session modified,
    /// even for no entries.
    ///
    /// # Errors
    ///
    /// [`Error::Unstorable`] if any value could not be loaded back (nothing is set then);
    /// engine errors from the lazy load.
    pub fn update(&mut self, entries: SessionMap) -> Result<(), Error> {
        for value in entries.values() {
            check_storable(value).map_err(Error::Unstorable)?;
        }
        self.data_mut()?.extend(entries);
        self.modified = true;
        Ok(())
    }

    /// Whether `k` is set (Django's `k in s`).
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn contains_key(&mut self, k: &str) -> Result<bool, Error> {
        Ok(self.data()?.contains_key(k))
    }

    /// The keys, in insertion order.
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn keys(&mut self) -> Result<Vec<String>, Error> {
        Ok(self.data()?.keys().cloned().collect())
    }

    /// The values, in insertion order.
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn values(&mut self) -> Result<Vec<Value>, Error> {
        Ok(self.data()?.values().cloned().collect())
    }

    /// The entries, in insertion order.
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn items(&mut self) -> Result<Vec<(String, Value)>, Error> {
        Ok(self
            .data()?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    /// Empties the data without loading it (Django's `clear`); accessed and modified.
    pub fn clear(&mut self) {
        self.cache = Some(Arc::new(SessionMap::new()));
        self.accessed = true;
        self.modified = true;
    }

    /// Sets Django's test cookie value, to check that the browser keeps cookies.
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn set_test_cookie(&mut self) -> Result<(), Error> {
        self.insert_value(TEST_COOKIE_NAME, Value::from(TEST_COOKIE_VALUE))
    }

    /// Whether the test cookie came back.
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn test_cookie_worked(&mut self) -> Result<bool, Error> {
        Ok(self
            .get_value(TEST_COOKIE_NAME)?
            .is_some_and(|value| value == TEST_COOKIE_VALUE))
    }

    /// Removes the test cookie value (modified iff it was set; Django raises `KeyError` when
    /// absent, this does nothing).
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn delete_test_cookie(&mut self) -> Result<(), Error> {
        self.remove(TEST_COOKIE_NAME).map(drop)
    }

    /// Sets when the session expires (Django's `set_expiry`); stores `_session_expiry` and marks
    /// the session modified, except `Expiry::Default` on a session without a custom expiry,
    /// which changes nothing.
    ///
    /// Instants are clamped to Python's datetime range (years 1 to 9999) so Django can always
    /// read them.
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn set_expiry(&mut self, e: Expiry) -> Result<(), Error> {
        let value = match e {
            Expiry::Default => return self.remove(EXPIRY_KEY).map(drop),
            Expiry::Seconds(seconds) => Value::from(seconds),
            Expiry::BrowserClose => Value::from(0),
            Expiry::At(at) => Value::String(isoformat(clamp_to_python(at))),
            Expiry::In(after) => {
                let now = self.engine.clock().now_utc();
                let at = now
                    .checked_add_signed(after)
                    .unwrap_or(if after < Duration::zero() {
                        DateTime::<Utc>::MIN_UTC
                    } else {
                        DateTime::<Utc>::MAX_UTC
                    });
                Value::String(isoformat(clamp_to_python(at)))
            }
        };
        self.insert_value(EXPIRY_KEY, value)
    }

    /// Seconds until the session expires, counted from now (Django's `get_expiry_age()`).
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn get_expiry_age(&mut self) -> Result<i64, Error> {
        self.get_expiry_age_at(None, None)
    }

    /// Django's `get_expiry_age(modification=…, expiry=…)`: `modification` defaults to now;
    /// passing `expiry` (the `_session_expiry` value; `Some(&Value::Null)` for none) avoids a
    /// load.
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load (only when `expiry` is `None`).
    pub fn get_expiry_age_at(
        &mut self,
        modification: Option<DateTime<Utc>>,
        expiry: Option<&Value>,
    ) -> Result<i64, Error> {
        let modification = modification.unwrap_or_else(|| self.engine.clock().now_utc());
        let stored;
        let expiry = match expiry {
            Some(expiry) => Some(expiry),
            None => {
                stored = self.get_value(EXPIRY_KEY)?;
                stored.as_ref()
            }
        };
        Ok(expiry_age(
            modification,
            expiry,
            self.engine.settings().session_cookie_age,
        ))
    }

    /// When the session expires, if saved now (Django's `get_expiry_date()`).
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn get_expiry_date(&mut self) -> Result<DateTime<Utc>, Error> {
        self.get_expiry_date_at(None, None)
    }

    /// Django's `get_expiry_date(modification=…, expiry=…)`; see
    /// [`Session::get_expiry_age_at`].
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load (only when `expiry` is `None`).
    pub fn get_expiry_date_at(
        &mut self,
        modification: Option<DateTime<Utc>>,
        expiry: Option<&Value>,
    ) -> Result<DateTime<Utc>, Error> {
        let modification = modification.unwrap_or_else(|| self.engine.clock().now_utc());
        let stored;
        let expiry = match expiry {
            Some(expiry) => Some(expiry),
            None => {
                stored = self.get_value(EXPIRY_KEY)?;
                stored.as_ref()
            }
        };
        Ok(expiry_date(
            modification,
            expiry,
            self.engine.settings().session_cookie_age,
        ))
    }

    /// Whether the cookie should expire with the browser: `SESSION_EXPIRE_AT_BROWSER_CLOSE`
    /// without a custom expiry, else whether the custom expiry is `0`.
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    pub fn get_expire_at_browser_close(&mut self) -> Result<bool, Error> {
        let expiry = self.get_value(EXPIRY_KEY)?;
        Ok(expires_at_browser_close(
            expiry.as_ref(),
            self.engine.settings().session_expire_at_browser_close,
        ))
    }

    /// Loads the data for the current key and returns it (Django's `load()`): an unknown or
    /// expired key gives an empty dictionary and drops the key (it never creates a record); data
    /// that does not decode gives an empty dictionary. Does not fill the session's cache
    /// (accessing the data does).
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] when the engine fails (unreachable store, ...).
    pub fn load(&mut self) -> Result<SessionMap, Error> {
        let Some(key) = self.key.clone() else {
            return Ok(SessionMap::new());
        };
        let fetched = self.engine.fetch(&key)?;
        Ok(self.apply_fetched(fetched))
    }

    /// Whether a record is stored under `key` (Django's `exists`).
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        self.engine.store().exists(key)
    }

    /// Stores the current data under a new key (Django's `create()`): mints a key, saves with
    /// must-create, and retries with another key while the engine reports it taken. Marks the
    /// session modified. Does not load.
    ///
    /// # Errors
    ///
    /// [`Error::CreateExhausted`] after [`CREATE_ATTEMPTS`](crate::engine::CREATE_ATTEMPTS)
    /// taken keys; [`Error::TooLarge`], [`Error::Encode`], [`Error::Engine`]. The session keeps
    /// its previous key on failure.
    pub fn create(&mut self) -> Result<(), Error> {
        let pending = self.prepare()?;
        let key = self.engine.create_record(&pending)?;
        self.origin = pending.decoded();
        self.key = Some(key);
        self.modified = true;
        Ok(())
    }

    /// Saves the session (Django's `save()`): creates it when it has no key, else updates it.
    ///
    /// # Errors
    ///
    /// [`Error::SessionInterrupted`] when the record was deleted meanwhile (never resurrected);
    /// as [`Session::create`] otherwise.
    pub fn save(&mut self) -> Result<(), Error> {
        self.save_with(false)
    }

    /// Django's `save(must_create)`: with `must_create` the current data (or none, without
    /// loading) is stored as a new record under the current key; without, the record is
    /// updated. Either way `expire_date` is `get_expiry_date()` at the clock's now.
    ///
    /// # Errors
    ///
    /// With `must_create`, [`Error::Engine`] of kind `AlreadyExists` when the key is taken
    /// (Django's `CreateError`); without, [`Error::SessionInterrupted`]; as
    /// [`Session::create`] otherwise.
    pub fn save_with(&mut self, must_create: bool) -> Result<(), Error> {
        let Some(key) = self.key.clone() else {
            return self.create();
        };
        if !must_create {
            self.data()?;
            self.check_still_keyed()?;
        }
        let pending = self.prepare()?;
        let stored = self.engine.write(&key, &pending, must_create)?;
        self.after_write(stored, &pending);
        Ok(())
    }

    /// Deletes the current key's record (Django's `delete()`); nothing without a key. A
    /// signed-payload session is emptied instead (a cookie cannot be revoked).
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn delete(&mut self) -> Result<(), Error> {
        match self.key.clone() {
            Some(key) => self.delete_key(&key),
            None => {
                self.after_delete();
                Ok(())
            }
        }
    }

    /// Deletes the record under `key` (Django's `delete(session_key)`).
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn delete_key(&mut self, key: &str) -> Result<(), Error> {
        self.engine.store().delete(key)?;
        self.after_delete();
        Ok(())
    }

    /// Empties the session, deletes its record and drops its key (Django's `flush()`, used by
    /// logout). Nothing new is stored.
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.clear();
        self.delete()?;
        self.key = None;
        Ok(())
    }

    /// Moves the data to a new key and deletes the old record (Django's `cycle_key()`, used by
    /// login against session fixation). Signed-payload sessions are re-signed instead.
    ///
    /// # Errors
    ///
    /// As [`Session::create`] and [`Session::delete_key`].
    pub fn cycle_key(&mut self) -> Result<(), Error> {
        if self.engine.key_format() == KeyFormat::SignedPayload {
            return self.save();
        }
        self.data()?;
        let old = self.key.clone();
        self.create()?;
        if let Some(old) = old {
            self.engine.store().delete(&old)?;
        }
        Ok(())
    }

    /// The engine this session belongs to.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    // ---- async twins ---------------------------------------------------------------------

    /// [`Session::get`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::get`], plus [`Error::Join`].
    #[doc(alias = "aget")]
    pub async fn get_async<T: DeserializeOwned>(&mut self, k: &str) -> Result<Option<T>, Error> {
        self.data_async().await?;
        self.get(k)
    }

    /// [`Session::get_value`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::get_value`], plus [`Error::Join`].
    #[doc(alias = "aget")]
    pub async fn get_value_async(&mut self, k: &str) -> Result<Option<Value>, Error> {
        self.data_async().await?;
        self.get_value(k)
    }

    /// [`Session::insert`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::insert`], plus [`Error::Join`].
    #[doc(alias = "aset")]
    pub async fn insert_async<T: Serialize>(&mut self, k: &str, v: T) -> Result<(), Error> {
        // Converted before the first await, so the future never holds a `T` (and stays `Send`
        // for any `T`).
        let value = to_storable(&v)?;
        drop(v);
        self.data_async().await?;
        self.insert_value(k, value)
    }

    /// [`Session::remove`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::remove`], plus [`Error::Join`].
    #[doc(alias = "apop")]
    pub async fn remove_async(&mut self, k: &str) -> Result<Option<Value>, Error> {
        self.data_async().await?;
        self.remove(k)
    }

    /// [`Session::pop`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::pop`], plus [`Error::Join`].
    #[doc(alias = "apop")]
    pub async fn pop_async<T: DeserializeOwned>(&mut self, k: &str) -> Result<Option<T>, Error> {
        self.data_async().await?;
        self.pop(k)
    }

    /// [`Session::setdefault`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::setdefault`], plus [`Error::Join`].
    #[doc(alias = "asetdefault")]
    pub async fn setdefault_async<T: Serialize>(
        &mut self,
        k: &str,
        default: T,
    ) -> Result<Value, Error> {
        let value = to_storable(&default)?;
        drop(default);
        self.data_async().await?;
        self.setdefault(k, value)
    }

    /// [`Session::update`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::update`], plus [`Error::Join`].
    #[doc(alias = "aupdate")]
    pub async fn update_async(&mut self, entries: SessionMap) -> Result<(), Error> {
        self.data_async().await?;
        self.update(entries)
    }

    /// [`Session::contains_key`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::contains_key`], plus [`Error::Join`].
    #[doc(alias = "ahas_key")]
    pub async fn contains_key_async(&mut self, k: &str) -> Result<bool, Error> {
        self.data_async().await?;
        self.contains_key(k)
    }

    /// [`Session::keys`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::keys`], plus [`Error::Join`].
    #[doc(alias = "akeys")]
    pub async fn keys_async(&mut self) -> Result<Vec<String>, Error> {
        self.data_async().await?;
        self.keys()
    }

    /// [`Session::values`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::values`], plus [`Error::Join`].
    #[doc(alias = "avalues")]
    pub async fn values_async(&mut self) -> Result<Vec<Value>, Error> {
        self.data_async().await?;
        self.values()
    }

    /// [`Session::items`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::items`], plus [`Error::Join`].
    #[doc(alias = "aitems")]
    pub async fn items_async(&mut self) -> Result<Vec<(String, Value)>, Error> {
        self.data_async().await?;
        self.items()
    }

    /// [`Session::set_test_cookie`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::set_test_cookie`], plus [`Error::Join`].
    #[doc(alias = "aset_test_cookie")]
    pub async fn set_test_cookie_async(&mut self) -> Result<(), Error> {
        self.data_async().await?;
        self.set_test_cookie()
    }

    /// [`Session::test_cookie_worked`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::test_cookie_worked`], plus [`Error::Join`].
    #[doc(alias = "atest_cookie_worked")]
    pub async fn test_cookie_worked_async(&mut self) -> Result<bool, Error> {
        self.data_async().await?;
        self.test_cookie_worked()
    }

    /// Removes the test cookie value. Django-compatible quirk: unlike
    /// [`Session::delete_test_cookie`], this does **not** mark the session modified (Django's
    /// `adelete_test_cookie` deletes from the dictionary directly).
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load, plus [`Error::Join`].
    #[doc(alias = "adelete_test_cookie")]
    pub async fn delete_test_cookie_async(&mut self) -> Result<(), Error> {
        self.data_async().await?;
        if self.data()?.contains_key(TEST_COOKIE_NAME) {
            self.data_mut()?.shift_remove(TEST_COOKIE_NAME);
        }
        Ok(())
    }

    /// [`Session::set_expiry`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::set_expiry`], plus [`Error::Join`].
    #[doc(alias = "aset_expiry")]
    pub async fn set_expiry_async(&mut self, e: Expiry) -> Result<(), Error> {
        self.data_async().await?;
        self.set_expiry(e)
    }

    /// [`Session::get_expiry_age`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::get_expiry_age`], plus [`Error::Join`].
    #[doc(alias = "aget_expiry_age")]
    pub async fn get_expiry_age_async(&mut self) -> Result<i64, Error> {
        self.data_async().await?;
        self.get_expiry_age()
    }

    /// [`Session::get_expiry_age_at`], loading on tokio's blocking pool when needed.
    ///
    /// # Errors
    ///
    /// As [`Session::get_expiry_age_at`], plus [`Error::Join`].
    #[doc(alias = "aget_expiry_age")]
    pub async fn get_expiry_age_at_async(
        &mut self,
        modification: Option<DateTime<Utc>>,
        expiry: Option<&Value>,
    ) -> Result<i64, Error> {
        if expiry.is_none() {
            self.data_async().await?;
        }
        self.get_expiry_age_at(modification, expiry)
    }

    /// [`Session::get_expiry_date`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::get_expiry_date`], plus [`Error::Join`].
    #[doc(alias = "aget_expiry_date")]
    pub async fn get_expiry_date_async(&mut self) -> Result<DateTime<Utc>, Error> {
        self.data_async().await?;
        self.get_expiry_date()
    }

    /// [`Session::get_expiry_date_at`], loading on tokio's blocking pool when needed.
    ///
    /// # Errors
    ///
    /// As [`Session::get_expiry_date_at`], plus [`Error::Join`].
    #[doc(alias = "aget_expiry_date")]
    pub async fn get_expiry_date_at_async(
        &mut self,
        modification: Option<DateTime<Utc>>,
        expiry: Option<&Value>,
    ) -> Result<DateTime<Utc>, Error> {
        if expiry.is_none() {
            self.data_async().await?;
        }
        self.get_expiry_date_at(modification, expiry)
    }

    /// [`Session::get_expire_at_browser_close`], loading on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::get_expire_at_browser_close`], plus [`Error::Join`].
    #[doc(alias = "aget_expire_at_browser_close")]
    pub async fn get_expire_at_browser_close_async(&mut self) -> Result<bool, Error> {
        self.data_async().await?;
        self.get_expire_at_browser_close()
    }

    /// [`Session::load`] with the engine call on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::load`], plus [`Error::Join`].
    #[doc(alias = "aload")]
    pub async fn load_async(&mut self) -> Result<SessionMap, Error> {
        let Some(key) = self.key.clone() else {
            return Ok(SessionMap::new());
        };
        let engine = self.engine.clone();
        let fetched =
            run_blocking(self.engine.is_non_blocking(), move || engine.fetch(&key)).await?;
        Ok(self.apply_fetched(fetched))
    }

    /// [`Session::exists`] on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::exists`], plus [`Error::Join`].
    #[doc(alias = "aexists")]
    pub async fn exists_async(&self, key: &str) -> Result<bool, Error> {
        let engine = self.engine.clone();
        let key = key.to_owned();
        run_blocking(self.engine.is_non_blocking(), move || {
            engine.store().exists(&key)
        })
        .await
    }

    /// [`Session::create`] with the engine calls on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::create`], plus [`Error::Join`].
    #[doc(alias = "acreate")]
    pub async fn create_async(&mut self) -> Result<(), Error> {
        let pending = self.prepare()?;
        let origin = pending.decoded();
        let engine = self.engine.clone();
        let key = run_blocking(self.engine.is_non_blocking(), move || {
            engine.create_record(&pending)
        })
        .await?;
        self.origin = origin;
        self.key = Some(key);
        self.modified = true;
        Ok(())
    }

    /// [`Session::save`] with the engine calls on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::save`], plus [`Error::Join`].
    #[doc(alias = "asave")]
    pub async fn save_async(&mut self) -> Result<(), Error> {
        self.save_with_async(false).await
    }

    /// [`Session::save_with`] with the engine calls on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::save_with`], plus [`Error::Join`].
    #[doc(alias = "asave")]
    pub async fn save_with_async(&mut self, must_create: bool) -> Result<(), Error> {
        let Some(key) = self.key.clone() else {
            return self.create_async().await;
        };
        if !must_create {
            self.data_async().await?;
            self.check_still_keyed()?;
        }
        let pending = self.prepare()?;
        let engine = self.engine.clone();
        let (stored, pending) = run_blocking(self.engine.is_non_blocking(), move || {
            engine
                .write(&key, &pending, must_create)
                .map(|stored| (stored, pending))
        })
        .await?;
        self.after_write(stored, &pending);
        Ok(())
    }

    /// [`Session::delete`] on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::delete`], plus [`Error::Join`].
    #[doc(alias = "adelete")]
    pub async fn delete_async(&mut self) -> Result<(), Error> {
        match self.key.clone() {
            Some(key) => self.delete_key_async(&key).await,
            None => {
                self.after_delete();
                Ok(())
            }
        }
    }

    /// [`Session::delete_key`] on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::delete_key`], plus [`Error::Join`].
    #[doc(alias = "adelete")]
    pub async fn delete_key_async(&mut self, key: &str) -> Result<(), Error> {
        let engine = self.engine.clone();
        let key = key.to_owned();
        run_blocking(self.engine.is_non_blocking(), move || {
            engine.store().delete(&key)
        })
        .await?;
        self.after_delete();
        Ok(())
    }

    /// [`Session::flush`] on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::flush`], plus [`Error::Join`].
    #[doc(alias = "aflush")]
    pub async fn flush_async(&mut self) -> Result<(), Error> {
        self.clear();
        self.delete_async().await?;
        self.key = None;
        Ok(())
    }

    /// [`Session::cycle_key`] on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::cycle_key`], plus [`Error::Join`].
    #[doc(alias = "acycle_key")]
    pub async fn cycle_key_async(&mut self) -> Result<(), Error> {
        if self.engine.key_format() == KeyFormat::SignedPayload {
            return self.save_async().await;
        }
        self.data_async().await?;
        let old = self.key.clone();
        self.create_async().await?;
        if let Some(old) = old {
            let engine = self.engine.clone();
            run_blocking(self.engine.is_non_blocking(), move || {
                engine.store().delete(&old)
            })
            .await?;
        }
        Ok(())
    }

    // ---- internals -------------------------------------------------------------------------

    pub(crate) fn new(engine: Engine, key: Option<String>) -> Self {
        Self {
            engine,
            key,
            cache: None,
            origin: None,
            accessed: false,
            modified: false,
        }
    }

    /// Django's `_session`: marks accessed and loads on first use.
    fn data(&mut self) -> Result<&SessionMap, Error> {
        self.accessed = true;
        if self.cache.is_none() {
            let loaded = self.load_shared()?;
            self.cache = Some(loaded);
        }
        Ok(self.cache.get_or_insert_with(Default::default))
    }

    /// [`Session::data`] for a change: the map is copied first if the memo (or anyone) still
    /// shares it.
    fn data_mut(&mut self) -> Result<&mut SessionMap, Error> {
        self.data()?;
        Ok(Arc::make_mut(
            self.cache.get_or_insert_with(Default::default),
        ))
    }

    /// Django's `load()` into the session: like [`Session::load`], keeping the decoded map
    /// shared and remembering what it was decoded from.
    fn load_shared(&mut self) -> Result<Arc<SessionMap>, Error> {
        let fetched = match self.key.as_deref() {
            Some(key) => self.engine.fetch(key)?,
            None => return Ok(Default::default()),
        };
        Ok(self.apply_fetched_shared(fetched))
    }

    /// Encodes the data for a write. Django's `_get_session(no_load=True)`: marks accessed and
    /// uses `{}` where nothing is loaded (callers that must load do so first).
    fn prepare(&mut self) -> Result<PendingWrite, Error> {
        self.accessed = true;
        let data = self.cache.get_or_insert_with(Default::default);
        self.engine.prepare_write(data, self.origin.as_ref())
    }

    /// [`Session::data`] with the load on tokio's blocking pool.
    async fn data_async(&mut self) -> Result<(), Error> {
        self.accessed = true;
        if self.cache.is_none() {
            let loaded = match self.key.clone() {
                Some(key) => {
                    let engine = self.engine.clone();
                    let fetched =
                        run_blocking(self.engine.is_non_blocking(), move || engine.fetch(&key))
                            .await?;
                    self.apply_fetched_shared(fetched)
                }
                None => Default::default(),
            };
            self.cache = Some(loaded);
        }
        Ok(())
    }

    fn insert_value(&mut self, k: &str, value: Value) -> Result<(), Error> {
        self.data_mut()?.insert(k.to_owned(), value);
        self.modified = true;
        Ok(())
    }

    /// After the load inside an update: if the load found the session gone (expired or
    /// deleted), the update must not go ahead under the old key, which could revive an expired
    /// record. Django mints a fresh key there and its forced update fails the same way.
    fn check_still_keyed(&self) -> Result<(), Error> {
        if self.key.is_none() {
            Err(Error::SessionInterrupted)
        } else {
            Ok(())
        }
    }

    /// Applies what a load found (dropping the key of a gone session, ...) and returns the
    /// data, owned (public `load`: the session's own data is left as it is).
    fn apply_fetched(&mut self, fetched: Fetched) -> SessionMap {
        match fetched {
            Fetched::Found(decoded) => Arc::unwrap_or_clone(decoded.map),
            other => Arc::unwrap_or_clone(self.apply_fetched_shared(other)),
        }
    }

    /// Applies what a load found and returns the data to keep as the session's, remembering
    /// what a found session was decoded from.
    fn apply_fetched_shared(&mut self, fetched: Fetched) -> Arc<SessionMap> {
        match fetched {
            Fetched::Found(decoded) => {
                let map = Arc::clone(&decoded.map);
                self.origin = Some(decoded);
                map
            }
            Fetched::Gone => {
                self.key = None;
                Default::default()
            }
            Fetched::Undecodable => Default::default(),
            Fetched::Rejected => {
                self.modified = true;
                Default::default()
            }
        }
    }

    fn after_write(&mut self, stored: String, pending: &PendingWrite) {
        self.origin = pending.decoded();
        if self.engine.key_format() == KeyFormat::SignedPayload {
            // Django's signed-cookie save re-signs into the key and marks the session modified.
            self.modified = true;
        }
        self.key = Some(stored);
    }

    fn after_delete(&mut self) {
        if self.engine.key_format() == KeyFormat::SignedPayload {
            // Django's signed-cookie delete: the cookie value is dropped with the data.
            self.key = None;
            self.cache = Some(Default::default());
            self.modified = true;
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("engine", &self.engine.name())
            .field("key", &self.key.as_deref().map(key_prefix))
            .field("loaded", &self.cache.is_some())
            .field("accessed", &self.accessed)
            .field("modified", &self.modified)
            .finish()
    }
}

/// `at` moved into Python's datetime range (years 1 to 9999), so Django can parse what is
/// stored.
fn clamp_to_python(at: DateTime<Utc>) -> DateTime<Utc> {
    // Both dates are valid calendar dates well inside chrono's range.
    let min = NaiveDate::from_ymd_opt(1, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
    let max = NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999));
    match (min, max) {
        (Some(min), _) if at.naive_utc() < min => min.and_utc(),
        (_, Some(max)) if at.naive_utc() > max => max.and_utc(),
        _ => at,
    }
}
