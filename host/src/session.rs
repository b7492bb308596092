//! [`Session`]: one user's session, Django's `SessionBase`.
//!
//! Data loads lazily on first access; `accessed` and `modified` follow Django's rules per
//! operation (the middleware decides from them whether to save and whether to send
//! `Vary: Cookie`).
//!
//! # Sync and async
//!
//! Only nine operations reach the engine: `load`, `exists`, `create`, `save`, `save_with`,
//! `delete`, `delete_key`, `flush` and `cycle_key`. Each has an `_async` twin that runs the
//! engine call on tokio's blocking pool, or, on a store with `READINESS_CALLS` (contract 0.4),
//! waits on the store's socket on tokio's reactor (see `blocking::drive`). The dictionary operations (`get`, `insert`, ...) reach
//! the engine only through the lazy first load: in async code call
//! [`Session::ensure_loaded_async`] once, and they work on the loaded data from then on.
//!
//! Each engine-reaching operation is written once, as a private `async fn` taking a `Run`:
//! the `_async` twin awaits it with `Run::Offload`; the sync method runs it with
//! `Run::Inline`, whose engine calls complete in place, so it finishes on its first poll.

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

use sessionkit_sdk::ConditionalSave;

use crate::{
    Engine, Error,
    blocking::{Run, inline, reactor_available, run_blocking},
    changes::Changes,
    engine::{Fetched, PendingWrite},
    error::key_prefix,
    memo::Decoded,
    storable::to_storable,
};

/// How many times a save through a conditional-save engine reloads and replays after a
/// conflict before it gives up with [`Error::WriteConflict`]. This process's async saves of one
/// session take turns (`save_turns.rs`), so they conflict only with saves of other processes
/// (and sync saves); every round lets at least one of those through, so N processes saving one
/// session at once need at most N attempts: 64 covers far more than a browser sends.
pub const MERGE_ATTEMPTS: u32 = 64;

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
///
/// # Examples
///
/// ```
/// use sessionkit::{Settings, testing::MemoryStore};
///
/// let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
/// let mut session = engine.session(None);
/// session.insert("user_id", 42)?;
/// session.save()?;
///
/// // The next request brings the key back in its cookie.
/// let key = session.session_key().map(str::to_owned);
/// let mut next = engine.session(key.as_deref());
/// assert_eq!(next.get::<i64>("user_id")?, Some(42));
/// # Ok::<(), sessionkit::Error>(())
/// ```
pub struct Session {
    engine: Engine,
    /// The key (Django's `session_key`). Fields the signed-payload rules (`mode.rs`) set are
    /// crate-visible.
    pub(crate) key: Option<String>,
    /// The data once loaded (Django's `_session_cache`), shared with the engine's decode memo
    /// until changed: reads never copy it, the first change does (copy on write).
    pub(crate) cache: Option<Arc<SessionMap>>,
    /// What the session was loaded or last saved as; lets a save of unchanged data reuse its
    /// compressed payload (see `Engine::prepare_write`).
    pub(crate) origin: Option<Decoded>,
    accessed: bool,
    pub(crate) modified: bool,
    /// What this request changed since the load or the last save, when the engine merges
    /// concurrent writes (see `changes.rs`).
    changes: Changes,
    /// The `session_data` the store holds as far as this request knows (loaded, or last
    /// saved): what a conditional save expects to find. `None` when the engine does not merge
    /// or the session has no record yet.
    stored: Option<Arc<str>>,
}

/// A change to the data. Every change a caller makes goes through [`Session::apply`]: the one
/// place that knows what this request changed.
enum Change<'a> {
    /// Sets a key (`s[k] = v`).
    Set(&'a str, Value),
    /// Removes a key if present (`s.pop(k, None)`).
    Remove(&'a str),
    /// Sets every entry (`s.update(entries)`).
    Extend(SessionMap),
    /// Empties the data without loading it (`s.clear()`).
    Clear,
}

impl Session {
    /// The session key, if it has one (a valid key from the request, or one minted on save).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// assert_eq!(session.session_key(), None);
    /// session.save()?;
    /// assert_eq!(session.session_key().map(str::len), Some(32));
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    pub fn session_key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Whether the data was touched (read or written); the middleware then adds
    /// `Vary: Cookie`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// assert!(!session.accessed());
    /// session.contains_key("cart")?;
    /// assert!(session.accessed());
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    pub fn accessed(&self) -> bool {
        self.accessed
    }

    /// Whether the data changed since load; the middleware then saves it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.get::<i64>("visits")?;
    /// assert!(!session.modified());
    /// session.insert("visits", 1)?;
    /// assert!(session.modified());
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// assert!(session.is_empty());
    /// session.insert("k", "v")?;
    /// assert!(!session.is_empty());
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.key.is_none() && self.cache.as_ref().is_none_or(|map| map.is_empty())
    }

    /// Whether the data is loaded (or was set without loading).
    pub fn is_loaded(&self) -> bool {
        self.cache.is_some()
    }

    /// The value under `k`, deserialized (Django's `get`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.insert("cart", vec![3, 5])?;
    /// assert_eq!(session.get::<Vec<u32>>("cart")?, Some(vec![3, 5]));
    /// assert_eq!(session.get::<u32>("missing")?, None);
    /// assert!(session.get::<String>("cart").is_err());
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Type`] when the value is not a `T`; engine errors from the lazy load.
    #[doc(alias = "aget")]
    pub fn get<T: DeserializeOwned>(&mut self, k: &str) -> Result<Option<T>, Error> {
        self.get_value(k)?
            .map(|value| serde_json::from_value(value).map_err(Error::Type))
            .transpose()
    }

    /// The JSON value under `k` (Django's `get`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.insert("theme", "dark")?;
    /// assert_eq!(session.get_value("theme")?, Some(serde_json::json!("dark")));
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(alias = "aget")]
    pub fn get_value(&mut self, k: &str) -> Result<Option<Value>, Error> {
        Ok(self.data()?.get(k).cloned())
    }

    /// Sets `k` to `v` (Django's `s[k] = v`); marks the session modified.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.insert("visits", 1)?;
    /// assert!(session.modified());
    /// assert!(session.insert("bad", f64::NAN).is_err());
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Unstorable`] for a value that could not be loaded back (nested deeper than 127,
    /// a NaN or infinite float) and [`Error::Type`] for one JSON cannot hold; the session is
    /// then unchanged. Engine errors from the lazy load.
    #[doc(alias = "aset")]
    pub fn insert<T: Serialize>(&mut self, k: &str, v: T) -> Result<(), Error> {
        let value = to_storable(&v)?;
        self.apply(Change::Set(k, value)).map(drop)
    }

    /// Removes `k` and returns its value (Django's `del s[k]` / `pop`); modified iff it was
    /// present.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// assert_eq!(session.remove("flash")?, None);
    /// assert!(!session.modified());
    /// session.insert("flash", "saved")?;
    /// assert_eq!(session.remove("flash")?, Some(serde_json::json!("saved")));
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(alias = "apop")]
    pub fn remove(&mut self, k: &str) -> Result<Option<Value>, Error> {
        self.apply(Change::Remove(k))
    }

    /// Removes `k` and returns its value deserialized (Django's `pop`); modified iff present.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.insert("next", "/cart")?;
    /// assert_eq!(session.pop::<String>("next")?.as_deref(), Some("/cart"));
    /// assert_eq!(session.pop::<String>("next")?, None);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Type`] when the value is not a `T` (the value then stays); engine errors from
    /// the lazy load.
    #[doc(alias = "apop")]
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
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// assert_eq!(session.setdefault("lang", "en")?, "en");
    /// assert_eq!(session.setdefault("lang", "fr")?, "en");
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Session::insert`] for the default.
    #[doc(alias = "asetdefault")]
    pub fn setdefault<T: Serialize>(&mut self, k: &str, default: T) -> Result<Value, Error> {
        if let Some(value) = self.data()?.get(k) {
            return Ok(value.clone());
        }
        let value = to_storable(&default)?;
        self.apply(Change::Set(k, value.clone()))?;
        Ok(value)
    }

    /// Sets every entry of `entries` (Django's `update`); always marks the session modified,
    /// even for no entries.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore, SessionMap};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// let mut entries = SessionMap::new();
    /// entries.insert("a".to_owned(), 1.into());
    /// entries.insert("b".to_owned(), 2.into());
    /// session.update(entries)?;
    /// assert_eq!(session.keys()?, ["a", "b"]);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Unstorable`] if any value could not be loaded back (nothing is set then);
    /// engine errors from the lazy load.
    #[doc(alias = "aupdate")]
    pub fn update(&mut self, entries: SessionMap) -> Result<(), Error> {
        for value in entries.values() {
            check_storable(value).map_err(Error::Unstorable)?;
        }
        self.apply(Change::Extend(entries)).map(drop)
    }

    /// Reads, changes and saves one key as one step: `update` gets the key's current value
    /// (`None` when unset) and returns the new one, which is saved at once with the rest of
    /// the session; returns the value saved.
    ///
    /// Through an engine that merges concurrent writes (the `CONDITIONAL_SAVE` capability with
    /// `SESSION_CONCURRENT_WRITES = "merge"`, the default), a save that finds another request's
    /// write in between re-runs `update` on the value stored now, so concurrent increments of
    /// a counter never lose one. Through any other engine the save overwrites, as every save
    /// does there.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.save()?;
    /// let key = session.session_key().unwrap().to_owned();
    /// // Two requests of one visitor, both loaded before either saved:
    /// let mut first = engine.session(Some(&key));
    /// let mut second = engine.session(Some(&key));
    /// first.load()?;
    /// second.load()?;
    /// first.atomic_update("views", |n: Option<i64>| n.unwrap_or(0) + 1)?;
    /// let views = second.atomic_update("views", |n: Option<i64>| n.unwrap_or(0) + 1)?;
    /// assert_eq!(views, 2);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Type`] when the stored value is not a `T` (the key is then left as it is, and
    /// the session's other changes are still saved); [`Error::Unstorable`] for a new value that
    /// could not be loaded back; as [`Session::save`] otherwise, [`Error::WriteConflict`]
    /// included.
    pub fn atomic_update<T, F>(&mut self, key: &str, update: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnMut(Option<T>) -> T + Send + 'static,
    {
        let outcome = self.stage_atomic_update(key, update)?;
        self.save()?;
        take_atomic_outcome(&outcome)
    }

    /// [`Session::atomic_update`] with the engine calls on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::atomic_update`], plus [`Error::Join`].
    pub async fn atomic_update_async<T, F>(&mut self, key: &str, update: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnMut(Option<T>) -> T + Send + 'static,
    {
        self.ensure_loaded_async().await?;
        let outcome = self.stage_atomic_update(key, update)?;
        self.save_async().await?;
        take_atomic_outcome(&outcome)
    }

    /// Whether `k` is set (Django's `k in s`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.insert("cart", 1)?;
    /// assert!(session.contains_key("cart")?);
    /// assert!(!session.contains_key("wishlist")?);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(alias = "ahas_key")]
    pub fn contains_key(&mut self, k: &str) -> Result<bool, Error> {
        Ok(self.data()?.contains_key(k))
    }

    /// The keys, in insertion order.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.insert("b", 1)?;
    /// session.insert("a", 2)?;
    /// assert_eq!(session.keys()?, ["b", "a"]);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(alias = "akeys")]
    pub fn keys(&mut self) -> Result<Vec<String>, Error> {
        Ok(self.data()?.keys().cloned().collect())
    }

    /// The values, in insertion order.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.insert("b", 1)?;
    /// session.insert("a", 2)?;
    /// assert_eq!(session.values()?, [1, 2]);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(alias = "avalues")]
    pub fn values(&mut self) -> Result<Vec<Value>, Error> {
        Ok(self.data()?.values().cloned().collect())
    }

    /// The entries, in insertion order.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.insert("visits", 3)?;
    /// assert_eq!(session.items()?, [("visits".to_owned(), 3.into())]);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(alias = "aitems")]
    pub fn items(&mut self) -> Result<Vec<(String, Value)>, Error> {
        Ok(self
            .data()?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    /// Empties the data without loading it (Django's `clear`); accessed and modified. The key
    /// stays.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.insert("cart", 1)?;
    /// session.clear();
    /// assert!(session.keys()?.is_empty());
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    pub fn clear(&mut self) {
        // `Clear` never loads, so never fails.
        let _ = self.apply(Change::Clear);
    }

    /// Sets Django's test cookie value, to check that the browser keeps cookies.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.set_test_cookie()?;
    /// assert!(session.test_cookie_worked()?);
    /// session.delete_test_cookie()?;
    /// assert!(!session.test_cookie_worked()?);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(alias = "aset_test_cookie")]
    pub fn set_test_cookie(&mut self) -> Result<(), Error> {
        self.apply(Change::Set(
            TEST_COOKIE_NAME,
            Value::from(TEST_COOKIE_VALUE),
        ))
        .map(drop)
    }

    /// Whether the test cookie came back (see [`Session::set_test_cookie`]).
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(alias = "atest_cookie_worked")]
    pub fn test_cookie_worked(&mut self) -> Result<bool, Error> {
        Ok(self
            .get_value(TEST_COOKIE_NAME)?
            .is_some_and(|value| value == TEST_COOKIE_VALUE))
    }

    /// Removes the test cookie value (see [`Session::set_test_cookie`]); modified iff it was
    /// set. Django raises `KeyError` when absent, this does nothing. Django's async
    /// `adelete_test_cookie` forgets to mark the session modified; this is its replacement
    /// after [`Session::ensure_loaded_async`] and does not copy that quirk.
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(alias = "adelete_test_cookie")]
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
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// use sessionkit::Expiry;
    ///
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.set_expiry(Expiry::Seconds(300))?;
    /// assert_eq!(session.get_expiry_age()?, 300);
    /// session.set_expiry(Expiry::Default)?;
    /// assert_eq!(session.get_expiry_age()?, 1_209_600); // SESSION_COOKIE_AGE, two weeks
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(alias = "aset_expiry")]
    pub fn set_expiry(&mut self, e: Expiry) -> Result<(), Error> {
        let value = match e {
            Expiry::Default => return self.apply(Change::Remove(EXPIRY_KEY)).map(drop),
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
        self.apply(Change::Set(EXPIRY_KEY, value)).map(drop)
    }

    /// Seconds until the session expires, counted from now (Django's `get_expiry_age()`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// assert_eq!(session.get_expiry_age()?, engine.settings().session_cookie_age);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(alias = "aget_expiry_age", alias = "expiry_age")]
    pub fn get_expiry_age(&mut self) -> Result<i64, Error> {
        self.get_expiry_age_at(None, None)
    }

    /// Django's `get_expiry_age(modification=…, expiry=…)`: `modification` defaults to now;
    /// passing `expiry` (the `_session_expiry` value; `Some(&Value::Null)` for none) avoids a
    /// load.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// let age = session.get_expiry_age_at(None, Some(&serde_json::json!(60)))?;
    /// assert_eq!(age, 60);
    /// assert!(!session.is_loaded());
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load (only when `expiry` is `None`).
    #[doc(alias = "aget_expiry_age")]
    pub fn get_expiry_age_at(
        &mut self,
        modification: Option<DateTime<Utc>>,
        expiry: Option<&Value>,
    ) -> Result<i64, Error> {
        let modification = modification.unwrap_or_else(|| self.engine.clock().now_utc());
        let stored = self.stored_expiry(expiry)?;
        Ok(expiry_age(
            modification,
            expiry.or(stored.as_ref()),
            self.engine.settings().session_cookie_age,
        ))
    }

    /// When the session expires, if saved now (Django's `get_expiry_date()`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// use chrono::{TimeZone, Utc};
    /// use sessionkit::Expiry;
    ///
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// let new_year = Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap();
    /// session.set_expiry(Expiry::At(new_year))?;
    /// assert_eq!(session.get_expiry_date()?, new_year);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(alias = "aget_expiry_date", alias = "expiry_date")]
    pub fn get_expiry_date(&mut self) -> Result<DateTime<Utc>, Error> {
        self.get_expiry_date_at(None, None)
    }

    /// Django's `get_expiry_date(modification=…, expiry=…)`; see
    /// [`Session::get_expiry_age_at`].
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load (only when `expiry` is `None`).
    #[doc(alias = "aget_expiry_date")]
    pub fn get_expiry_date_at(
        &mut self,
        modification: Option<DateTime<Utc>>,
        expiry: Option<&Value>,
    ) -> Result<DateTime<Utc>, Error> {
        let modification = modification.unwrap_or_else(|| self.engine.clock().now_utc());
        let stored = self.stored_expiry(expiry)?;
        Ok(expiry_date(
            modification,
            expiry.or(stored.as_ref()),
            self.engine.settings().session_cookie_age,
        ))
    }

    /// Whether the cookie should expire with the browser: `SESSION_EXPIRE_AT_BROWSER_CLOSE`
    /// without a custom expiry, else whether the custom expiry is `0`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// use sessionkit::Expiry;
    ///
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// assert!(!session.get_expire_at_browser_close()?);
    /// session.set_expiry(Expiry::BrowserClose)?;
    /// assert!(session.get_expire_at_browser_close()?);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Engine errors from the lazy load.
    #[doc(
        alias = "aget_expire_at_browser_close",
        alias = "expire_at_browser_close"
    )]
    pub fn get_expire_at_browser_close(&mut self) -> Result<bool, Error> {
        let expiry = self.get_value(EXPIRY_KEY)?;
        Ok(expires_at_browser_close(
            expiry.as_ref(),
            self.engine.settings().session_expire_at_browser_close,
        ))
    }

    /// The engine this session belongs to.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    // ---- the operations that reach the engine -------------------------------------------

    /// Loads the data now, on tokio's blocking pool, if it is not loaded yet (Django's
    /// `_session` access from an `a…` method): after it, the dictionary operations (`get`,
    /// `insert`, ...) work on the loaded data and never reach the engine, so async code calls
    /// them directly. Marks the session accessed, as any access to the data does.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let mut session = engine.session(None);
    /// session.ensure_loaded_async().await?;
    /// session.insert("visits", 1)?; // no engine call from here on
    /// session.save_async().await?;
    /// # Ok::<(), sessionkit::Error>(())
    /// # })?;
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] when the engine fails; [`Error::Join`].
    #[doc(alias(
        "aget",
        "aset",
        "apop",
        "asetdefault",
        "aupdate",
        "ahas_key",
        "akeys",
        "avalues",
        "aitems",
        "aset_test_cookie",
        "atest_cookie_worked",
        "adelete_test_cookie",
        "aset_expiry",
        "aget_expiry_age",
        "aget_expiry_date",
        "aget_expire_at_browser_close"
    ))]
    pub async fn ensure_loaded_async(&mut self) -> Result<(), Error> {
        self.ensure_loaded_in(Run::Offload).await
    }

    /// Loads the data for the current key and returns it (Django's `load()`): an unknown or
    /// expired key gives an empty dictionary and drops the key (it never creates a record); data
    /// that does not decode gives an empty dictionary. Does not fill the session's cache
    /// (accessing the data does).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut unknown = engine.session(Some("unknownkey0000000000000000000000"));
    /// assert!(unknown.load()?.is_empty());
    /// assert_eq!(unknown.session_key(), None); // dropped, never created
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] when the engine fails (unreachable store, ...).
    pub fn load(&mut self) -> Result<SessionMap, Error> {
        inline(self.load_in(Run::Inline))
    }

    /// [`Session::load`] with the engine call on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::load`], plus [`Error::Join`].
    #[doc(alias = "aload")]
    pub async fn load_async(&mut self) -> Result<SessionMap, Error> {
        self.load_in(Run::Offload).await
    }

    /// Whether a record is stored under `key` (Django's `exists`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.save()?;
    /// let key = session.session_key().unwrap().to_owned();
    /// assert!(session.exists(&key)?);
    /// assert!(!session.exists("unknownkey0000000000000000000000")?);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn exists(&self, key: &str) -> Result<bool, Error> {
        inline(self.exists_in(Run::Inline, key))
    }

    /// [`Session::exists`] on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::exists`], plus [`Error::Join`].
    #[doc(alias = "aexists")]
    pub async fn exists_async(&self, key: &str) -> Result<bool, Error> {
        self.exists_in(Run::Offload, key).await
    }

    /// Stores the current data under a new key (Django's `create()`): mints a key, saves with
    /// must-create, and retries with another key while the engine reports it taken. Marks the
    /// session modified. Does not load.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.create()?;
    /// assert!(session.session_key().is_some());
    /// assert!(session.modified());
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::CreateExhausted`] after [`CREATE_ATTEMPTS`](crate::engine::CREATE_ATTEMPTS)
    /// taken keys; [`Error::TooLarge`], [`Error::Encode`], [`Error::Engine`]. The session keeps
    /// its previous key on failure.
    pub fn create(&mut self) -> Result<(), Error> {
        inline(self.create_in(Run::Inline))
    }

    /// [`Session::create`] with the engine calls on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::create`], plus [`Error::Join`].
    #[doc(alias = "acreate")]
    pub async fn create_async(&mut self) -> Result<(), Error> {
        self.create_in(Run::Offload).await
    }

    /// Saves the session (Django's `save()`): creates it when it has no key, else updates it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// let store = MemoryStore::new();
    /// # let engine = store.engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.insert("cart", 1)?;
    /// session.save()?; // creates
    /// session.insert("cart", 2)?;
    /// session.save()?; // updates the same record
    /// assert_eq!(store.len(), 1);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::SessionInterrupted`] when the record was deleted meanwhile (never resurrected);
    /// as [`Session::create`] otherwise.
    pub fn save(&mut self) -> Result<(), Error> {
        self.save_with(false)
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

    /// Django's `save(must_create)`: with `must_create` the current data (or none, without
    /// loading) is stored as a new record under the current key; without, the record is
    /// updated. Either way `expire_date` is `get_expiry_date()` at the clock's now.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.save()?;
    /// let key = session.session_key().unwrap().to_owned();
    /// let mut twin = engine.session(Some(&key));
    /// let taken = twin.save_with(true).unwrap_err();
    /// assert_eq!(taken.kind(), Some(sessionkit::ErrorKind::AlreadyExists));
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// With `must_create`, [`Error::Engine`] of kind `AlreadyExists` when the key is taken
    /// (Django's `CreateError`); without, [`Error::SessionInterrupted`]; as
    /// [`Session::create`] otherwise.
    pub fn save_with(&mut self, must_create: bool) -> Result<(), Error> {
        inline(self.save_with_in(Run::Inline, must_create))
    }

    /// [`Session::save_with`] with the engine calls on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::save_with`], plus [`Error::Join`].
    #[doc(alias = "asave")]
    pub async fn save_with_async(&mut self, must_create: bool) -> Result<(), Error> {
        self.save_with_in(Run::Offload, must_create).await
    }

    /// Deletes the current key's record (Django's `delete()`); nothing without a key. A
    /// signed-payload session is emptied instead (a cookie cannot be revoked).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// let store = MemoryStore::new();
    /// # let engine = store.engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.save()?;
    /// session.delete()?;
    /// assert!(store.is_empty());
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn delete(&mut self) -> Result<(), Error> {
        inline(self.delete_in(Run::Inline))
    }

    /// [`Session::delete`] on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::delete`], plus [`Error::Join`].
    #[doc(alias = "adelete")]
    pub async fn delete_async(&mut self) -> Result<(), Error> {
        self.delete_in(Run::Offload).await
    }

    /// Deletes the record under `key` (Django's `delete(session_key)`).
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut other = engine.session(None);
    /// other.save()?;
    /// let key = other.session_key().unwrap().to_owned();
    /// let mut session = engine.session(None);
    /// session.delete_key(&key)?;
    /// assert!(!session.exists(&key)?);
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn delete_key(&mut self, key: &str) -> Result<(), Error> {
        inline(self.delete_key_in(Run::Inline, key))
    }

    /// [`Session::delete_key`] on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::delete_key`], plus [`Error::Join`].
    #[doc(alias = "adelete")]
    pub async fn delete_key_async(&mut self, key: &str) -> Result<(), Error> {
        self.delete_key_in(Run::Offload, key).await
    }

    /// Empties the session, deletes its record and drops its key (Django's `flush()`, used by
    /// logout). Nothing new is stored.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// let store = MemoryStore::new();
    /// # let engine = store.engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.insert("user_id", 42)?;
    /// session.save()?;
    /// session.flush()?;
    /// assert_eq!(session.session_key(), None);
    /// assert!(session.keys()?.is_empty());
    /// assert!(store.is_empty());
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Engine`] with the engine's failure.
    pub fn flush(&mut self) -> Result<(), Error> {
        inline(self.flush_in(Run::Inline))
    }

    /// [`Session::flush`] on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::flush`], plus [`Error::Join`].
    #[doc(alias = "aflush")]
    pub async fn flush_async(&mut self) -> Result<(), Error> {
        self.flush_in(Run::Offload).await
    }

    /// Moves the data to a new key and deletes the old record (Django's `cycle_key()`, used by
    /// login against session fixation). Signed-payload sessions are re-signed instead.
    ///
    /// # Examples
    ///
    /// ```
    /// # use sessionkit::{Settings, testing::MemoryStore};
    /// # let engine = MemoryStore::new().engine(&Settings::new("a secret"))?;
    /// let mut session = engine.session(None);
    /// session.insert("cart", 1)?;
    /// session.save()?;
    /// let before = session.session_key().unwrap().to_owned();
    /// session.cycle_key()?;
    /// assert_ne!(session.session_key(), Some(before.as_str()));
    /// assert!(!session.exists(&before)?);
    /// assert_eq!(session.get::<i64>("cart")?, Some(1));
    /// # Ok::<(), sessionkit::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Session::create`] and [`Session::delete_key`].
    pub fn cycle_key(&mut self) -> Result<(), Error> {
        inline(self.cycle_key_in(Run::Inline))
    }

    /// [`Session::cycle_key`] on tokio's blocking pool.
    ///
    /// # Errors
    ///
    /// As [`Session::cycle_key`], plus [`Error::Join`].
    #[doc(alias = "acycle_key")]
    pub async fn cycle_key_async(&mut self) -> Result<(), Error> {
        self.cycle_key_in(Run::Offload).await
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
            changes: Changes::default(),
            stored: None,
        }
    }

    /// Applies `change` to the data, loading it first (except for `Clear`), and marks the
    /// session modified when the data changed. Returns the removed value of `Remove`.
    fn apply(&mut self, change: Change<'_>) -> Result<Option<Value>, Error> {
        if self.engine.merges_writes() {
            match &change {
                Change::Set(k, value) => self.changes.set(k, value),
                Change::Remove(k) => self.changes.remove(k),
                Change::Extend(entries) => {
                    for (k, value) in entries {
                        self.changes.set(k, value);
                    }
                }
                Change::Clear => self.changes.clear(),
            }
        }
        let removed = match change {
            Change::Set(k, value) => {
                self.data_mut()?.insert(k.to_owned(), value);
                None
            }
            Change::Remove(k) => {
                if !self.data()?.contains_key(k) {
                    return Ok(None);
                }
                self.data_mut()?.shift_remove(k)
            }
            Change::Extend(entries) => {
                self.data_mut()?.extend(entries);
                None
            }
            Change::Clear => {
                self.cache = Some(Arc::default());
                self.accessed = true;
                None
            }
        };
        self.modified = true;
        Ok(removed)
    }

    /// Applies an atomic update of `key` to the data and records it so a merge re-runs it;
    /// returns the slot where each run leaves its result (the last run's is the saved one).
    fn stage_atomic_update<T, F>(
        &mut self,
        key: &str,
        mut update: F,
    ) -> Result<AtomicOutcome<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnMut(Option<T>) -> T + Send + 'static,
    {
        let outcome: AtomicOutcome<T> = Arc::new(parking_lot::Mutex::new(None));
        let slot = Arc::clone(&outcome);
        let mut run = move |old: Option<&Value>| -> Value {
            let typed = match old.map(|value| serde_json::from_value::<T>(value.clone())) {
                Some(Err(error)) => {
                    *slot.lock() = Some(Err(Error::Type(error)));
                    return old.cloned().unwrap_or(Value::Null);
                }
                Some(Ok(typed)) => Some(typed),
                None => None,
            };
            let new = update(typed);
            match to_storable(&new) {
                Ok(value) => {
                    *slot.lock() = Some(Ok(new));
                    value
                }
                Err(error) => {
                    *slot.lock() = Some(Err(error));
                    old.cloned().unwrap_or(Value::Null)
                }
            }
        };
        let value = run(self.data()?.get(key));
        let failed = outcome.lock().take_if(|result| result.is_err());
        if let Some(Err(error)) = failed {
            return Err(error);
        }
        self.data_mut()?.insert(key.to_owned(), value);
        self.modified = true;
        if self.engine.merges_writes() {
            self.changes.update(key, Box::new(run));
        }
        Ok(outcome)
    }

    /// Django's `_session`: marks accessed and loads on first use.
    fn data(&mut self) -> Result<&SessionMap, Error> {
        self.accessed = true;
        if self.cache.is_none() {
            inline(self.ensure_loaded_in(Run::Inline))?;
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

    /// The stored `_session_expiry` when the caller passed none (loading for it).
    fn stored_expiry(&mut self, given: Option<&Value>) -> Result<Option<Value>, Error> {
        match given {
            Some(_) => Ok(None),
            None => self.get_value(EXPIRY_KEY),
        }
    }

    /// Runs `call` (an operation's engine work) where `run` says: in place; awaited on the
    /// event loop for a store with `READINESS_CALLS` (its engine calls wait on the store's
    /// socket, no thread parked); else, for an async caller, all of it on the blocking pool
    /// (one hop), or in place when the store never blocks.
    async fn call<T, F, Work>(&self, run: Run, call: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(Engine, Run) -> Work + Send + 'static,
        Work: Future<Output = Result<T, Error>> + Send,
    {
        let engine = self.engine.clone();
        match run {
            // A store that never blocks runs in place for async callers too.
            Run::Inline => call(engine, Run::Inline).await,
            Run::Offload if engine.is_non_blocking() => call(engine, Run::Inline).await,
            Run::Offload if engine.awaits_readiness() && reactor_available() => {
                call(engine, Run::Offload).await
            }
            Run::Offload => run_blocking(false, move || inline(call(engine, Run::Inline))).await,
        }
    }

    /// Django's `_session` (marks accessed) loading into the session: the decoded map stays
    /// shared, and what it was decoded from is remembered.
    async fn ensure_loaded_in(&mut self, run: Run) -> Result<(), Error> {
        self.accessed = true;
        if self.cache.is_some() {
            return Ok(());
        }
        let loaded = match self.key.clone() {
            Some(key) => {
                let fetched = self
                    .call(run, move |engine, run| async move {
                        engine.fetch(run, &key).await
                    })
                    .await?;
                self.apply_fetched_shared(fetched)
            }
            None => Arc::default(),
        };
        self.cache = Some(loaded);
        Ok(())
    }

    async fn load_in(&mut self, run: Run) -> Result<SessionMap, Error> {
        let Some(key) = self.key.clone() else {
            return Ok(SessionMap::new());
        };
        let fetched = self
            .call(run, move |engine, run| async move {
                engine.fetch(run, &key).await
            })
            .await?;
        Ok(self.apply_fetched(fetched))
    }

    async fn exists_in(&self, run: Run, key: &str) -> Result<bool, Error> {
        let key = key.to_owned();
        self.call(run, move |engine, run| async move {
            engine.store().exists_in(run, &key).await
        })
        .await
    }

    async fn create_in(&mut self, run: Run) -> Result<(), Error> {
        let pending = self.prepare()?;
        let (key, pending) = self
            .call(run, move |engine, run| async move {
                let key = engine.create_record(run, &pending).await?;
                Ok((key, pending))
            })
            .await?;
        self.origin = pending.decoded();
        self.saved(&pending);
        self.key = Some(key);
        self.modified = true;
        Ok(())
    }

    async fn save_with_in(&mut self, run: Run, must_create: bool) -> Result<(), Error> {
        let Some(key) = self.key.clone() else {
            return self.create_in(run).await;
        };
        if !must_create {
            self.ensure_loaded_in(run).await?;
            // If the load found the session gone (expired or deleted), the update must not go
            // ahead under the old key, which could revive an expired record. Django mints a
            // fresh key there and its forced update fails the same way.
            if self.key.is_none() {
                return Err(Error::SessionInterrupted);
            }
        }
        self.write_in(run, key, must_create).await
    }

    /// The save step: encodes the data and stores it under `key`, as a new record
    /// (`must_create`) or over the existing one, then takes the key the engine stored it under.
    async fn write_in(&mut self, run: Run, key: String, must_create: bool) -> Result<(), Error> {
        if !must_create && let Some(expected) = self.stored.clone() {
            return self.merge_in(run, key, expected).await;
        }
        let pending = self.prepare()?;
        let (stored, pending) = self
            .call(run, move |engine, run| async move {
                let stored = engine.write(run, &key, &pending, must_create).await?;
                Ok((stored, pending))
            })
            .await?;
        self.saved(&pending);
        self.engine
            .mode()
            .after_write(self, stored, pending.decoded());
        Ok(())
    }

    /// The save step with a conditional save: stores the data only if the record still holds
    /// `expected`; on a conflict, replays this request's changes onto the record stored now
    /// and tries again, at most [`MERGE_ATTEMPTS`] times. A record deleted meanwhile is
    /// [`Error::SessionInterrupted`] and is never brought back.
    async fn merge_in(
        &mut self,
        run: Run,
        key: String,
        mut expected: Arc<str>,
    ) -> Result<(), Error> {
        // The async saves of this process take turns per session (a sync caller cannot wait
        // on an async queue and goes straight to the conditional save, as another process does).
        let _turn = match run {
            Run::Offload => Some(self.engine.save_turn(&key).await),
            Run::Inline => None,
        };
        for _ in 0..MERGE_ATTEMPTS {
            let pending = self.prepare()?;
            let (outcome, pending) = {
                let key = key.clone();
                let expected = Arc::clone(&expected);
                self.call(run, move |engine, run| async move {
                    let outcome = engine
                        .write_if_unchanged(run, &key, &pending, &expected)
                        .await?;
                    Ok((outcome, pending))
                })
                .await?
            };
            match outcome {
                ConditionalSave::Saved(stored) => {
                    self.saved(&pending);
                    self.engine
                        .mode()
                        .after_write(self, stored, pending.decoded());
                    return Ok(());
                }
                ConditionalSave::Conflict(current) => {
                    let decoded = match self.engine.decode_stored(current.session_data.as_str()) {
                        Ok(decoded) => decoded,
                        Err(error) => {
                            // What another writer stored does not decode: Django would read it
                            // as an empty session, and so does the replay.
                            self.engine.report_decode_failure(&error);
                            Decoded::from_decode(SessionMap::new())
                        }
                    };
                    let mut merged = (*decoded.map).clone();
                    self.changes.replay(&mut merged);
                    self.cache = Some(Arc::new(merged));
                    self.origin = Some(decoded);
                    expected = Arc::from(current.session_data.as_str());
                }
            }
        }
        Err(Error::WriteConflict {
            engine: self.engine.description().name.clone(),
            attempts: MERGE_ATTEMPTS,
        })
    }

    /// After a successful write of `pending`: its changes are stored, and a later conditional
    /// save expects what it wrote.
    fn saved(&mut self, pending: &PendingWrite) {
        self.changes.reset();
        self.stored = self.engine.merges_writes().then(|| pending.stored_data());
    }

    async fn delete_in(&mut self, run: Run) -> Result<(), Error> {
        match self.key.clone() {
            Some(key) => self.delete_key_in(run, &key).await,
            None => {
                self.engine.mode().after_delete(self);
                Ok(())
            }
        }
    }

    async fn delete_key_in(&mut self, run: Run, key: &str) -> Result<(), Error> {
        let key = key.to_owned();
        self.call(run, move |engine, run| async move {
            engine.store().delete_in(run, &key).await
        })
        .await?;
        self.engine.mode().after_delete(self);
        Ok(())
    }

    async fn flush_in(&mut self, run: Run) -> Result<(), Error> {
        self.clear();
        self.delete_in(run).await?;
        self.key = None;
        // A new session starts: nothing to merge into, and the old record must never return.
        self.changes.reset();
        self.stored = None;
        Ok(())
    }

    async fn cycle_key_in(&mut self, run: Run) -> Result<(), Error> {
        if self.engine.mode().cycles_by_saving() {
            return self.save_with_in(run, false).await;
        }
        self.ensure_loaded_in(run).await?;
        let old = self.key.clone();
        self.create_in(run).await?;
        if let Some(old) = old {
            self.call(run, move |engine, run| async move {
                engine.store().delete_in(run, &old).await
            })
            .await?;
        }
        Ok(())
    }

    /// Encodes the data for a write. Django's `_get_session(no_load=True)`: marks accessed and
    /// uses `{}` where nothing is loaded (callers that must load do so first).
    fn prepare(&mut self) -> Result<PendingWrite, Error> {
        self.accessed = true;
        let data = self.cache.get_or_insert_with(Default::default);
        self.engine.prepare_write(data, self.origin.as_ref())
    }

    /// Applies what a load found (dropping the key of a gone session, ...) and returns the
    /// data, owned (public `load`: the session's own data is left as it is).
    fn apply_fetched(&mut self, fetched: Fetched) -> SessionMap {
        match fetched {
            Fetched::Found(decoded, _) => Arc::unwrap_or_clone(decoded.map),
            other => Arc::unwrap_or_clone(self.apply_fetched_shared(other)),
        }
    }

    /// Applies what a load found and returns the data to keep as the session's, remembering
    /// what a found session was decoded from.
    fn apply_fetched_shared(&mut self, fetched: Fetched) -> Arc<SessionMap> {
        match fetched {
            Fetched::Found(decoded, stored) => {
                let map = Arc::clone(&decoded.map);
                self.origin = Some(decoded);
                self.stored = stored;
                map
            }
            Fetched::Gone => {
                self.key = None;
                self.stored = None;
                Arc::default()
            }
            Fetched::Undecodable => {
                self.stored = None;
                Arc::default()
            }
            Fetched::Rejected => {
                self.modified = true;
                Arc::default()
            }
        }
    }
}

/// Where each run of an atomic update leaves its result: the new value, or why the key was
/// left as it was.
type AtomicOutcome<T> = Arc<parking_lot::Mutex<Option<Result<T, Error>>>>;

/// The result of the last run of an atomic update.
fn take_atomic_outcome<T>(outcome: &AtomicOutcome<T>) -> Result<T, Error> {
    outcome
        .lock()
        .take()
        .unwrap_or(Err(Error::SessionInterrupted))
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
