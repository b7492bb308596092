//! [`SessionHandle`]: the request's session, shared by the handler and the middleware.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use sessionkit::{Error, Expiry, Session};
use tokio::sync::{Mutex, MutexGuard};

/// The lazy [`Session`] of one request, as handlers see it (Django's `request.session`).
///
/// The middleware puts one in the request's extensions; the axum extractor and
/// [`SessionHandle::from_request`] take it out. Clones share the same session: whatever the
/// handler does is what the middleware saves when the response goes out.
///
/// Every method is `async` and runs any engine call on tokio's blocking pool, so handlers never
/// block the executor. For several operations in a row, [`lock`](Self::lock) once, call
/// [`Session::ensure_loaded_async`] on the guard, then its plain dictionary methods.
///
/// Method names are the session's, which are Django's (`get_expiry_age`, not `expiry_age`).
#[derive(Clone)]
pub struct SessionHandle {
    inner: Arc<Mutex<Session>>,
}

impl std::fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never prints the key or the data: both are secrets.
        f.debug_struct("SessionHandle").finish_non_exhaustive()
    }
}

impl SessionHandle {
    /// Wraps a session (the middleware does this for each request).
    pub fn new(session: Session) -> Self {
        Self {
            inner: Arc::new(Mutex::new(session)),
        }
    }

    /// The session handed to this request by [`SessionLayer`](crate::SessionLayer), if the
    /// layer is installed.
    pub fn from_request<B>(request: &http::Request<B>) -> Option<Self> {
        request.extensions().get::<Self>().cloned()
    }

    /// Exclusive access to the session, for several operations in a row.
    ///
    /// Call [`Session::ensure_loaded_async`] on the guard first: after it the dictionary
    /// methods never reach the engine. Use the `_async` twins for `save`, `flush`,
    /// `cycle_key` and the other operations that always reach it.
    pub async fn lock(&self) -> MutexGuard<'_, Session> {
        self.inner.lock().await
    }

    /// The session key, if the session has one (after a load of an unknown key it has none).
    pub async fn session_key(&self) -> Option<String> {
        self.lock().await.session_key().map(str::to_owned)
    }

    /// The value stored under `key`, deserialized (`request.session.get(key)`).
    ///
    /// # Errors
    ///
    /// As [`Session::get`] and [`Session::ensure_loaded_async`].
    #[doc(alias = "aget")]
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.loaded().await?.get(key)
    }

    /// The raw JSON value stored under `key`.
    ///
    /// # Errors
    ///
    /// As [`Session::get_value`] and [`Session::ensure_loaded_async`].
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, Error> {
        self.loaded().await?.get_value(key)
    }

    /// Stores `value` under `key` (`request.session[key] = value`); marks the session modified.
    ///
    /// # Errors
    ///
    /// As [`Session::insert`] and [`Session::ensure_loaded_async`].
    #[doc(alias = "aset")]
    pub async fn insert<T: Serialize + Send>(&self, key: &str, value: T) -> Result<(), Error> {
        self.loaded().await?.insert(key, value)
    }

    /// Removes `key` and returns its value (`request.session.pop(key, None)`); marks the
    /// session modified iff the key was present.
    ///
    /// # Errors
    ///
    /// As [`Session::ensure_loaded_async`].
    #[doc(alias = "apop")]
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, Error> {
        self.loaded().await?.remove(key)
    }

    /// Whether `key` is stored (`key in request.session`).
    ///
    /// # Errors
    ///
    /// As [`Session::ensure_loaded_async`].
    #[doc(alias = "ahas_key")]
    pub async fn contains_key(&self, key: &str) -> Result<bool, Error> {
        self.loaded().await?.contains_key(key)
    }

    /// Every key and value, in insertion order.
    ///
    /// # Errors
    ///
    /// As [`Session::ensure_loaded_async`].
    #[doc(alias = "aitems")]
    pub async fn items(&self) -> Result<Vec<(String, Value)>, Error> {
        self.loaded().await?.items()
    }

    /// Empties the session without loading it (`request.session.clear()`); the key stays.
    pub async fn clear(&self) {
        self.lock().await.clear();
    }

    /// Reads, changes and saves one key as one step, re-running `update` on the newest value
    /// when another request saved in between (a counter, a cart); see
    /// [`Session::atomic_update`]. The session is saved at once; the middleware's save at the
    /// end of the request then has only later changes to store.
    ///
    /// # Errors
    ///
    /// As [`Session::atomic_update`].
    pub async fn atomic_update<T, F>(&self, key: &str, update: F) -> Result<T, Error>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnMut(Option<T>) -> T + Send + 'static,
    {
        self.lock().await.atomic_update_async(key, update).await
    }

    /// Deletes the stored session and forgets the key (`request.session.flush()`): the
    /// middleware then deletes the cookie. Use it at logout.
    ///
    /// # Errors
    ///
    /// As [`Session::flush`].
    #[doc(alias = "aflush")]
    pub async fn flush(&self) -> Result<(), Error> {
        self.lock().await.flush_async().await
    }

    /// Moves the data to a new key and deletes the old one (`request.session.cycle_key()`):
    /// the defence against session fixation at login.
    ///
    /// # Errors
    ///
    /// As [`Session::cycle_key`].
    #[doc(alias = "acycle_key")]
    pub async fn cycle_key(&self) -> Result<(), Error> {
        self.lock().await.cycle_key_async().await
    }

    /// Sets when the session expires (`request.session.set_expiry(value)`).
    ///
    /// # Errors
    ///
    /// As [`Session::ensure_loaded_async`].
    #[doc(alias = "aset_expiry")]
    pub async fn set_expiry(&self, expiry: Expiry) -> Result<(), Error> {
        self.loaded().await?.set_expiry(expiry)
    }

    /// Seconds until the session expires, counted from now (Django's `get_expiry_age()`).
    ///
    /// # Errors
    ///
    /// As [`Session::ensure_loaded_async`].
    #[doc(alias = "aget_expiry_age", alias = "expiry_age")]
    pub async fn get_expiry_age(&self) -> Result<i64, Error> {
        self.loaded().await?.get_expiry_age()
    }

    /// The date the session expires (Django's `get_expiry_date()`).
    ///
    /// # Errors
    ///
    /// As [`Session::ensure_loaded_async`].
    #[doc(alias = "aget_expiry_date", alias = "expiry_date")]
    pub async fn get_expiry_date(&self) -> Result<DateTime<Utc>, Error> {
        self.loaded().await?.get_expiry_date()
    }

    /// Whether the cookie lives only until the browser closes (Django's
    /// `get_expire_at_browser_close()`).
    ///
    /// # Errors
    ///
    /// As [`Session::ensure_loaded_async`].
    #[doc(
        alias = "aget_expire_at_browser_close",
        alias = "expire_at_browser_close"
    )]
    pub async fn get_expire_at_browser_close(&self) -> Result<bool, Error> {
        self.loaded().await?.get_expire_at_browser_close()
    }

    /// Stores Django's test cookie value, to check on the next request that cookies work.
    ///
    /// # Errors
    ///
    /// As [`Session::ensure_loaded_async`].
    #[doc(alias = "aset_test_cookie")]
    pub async fn set_test_cookie(&self) -> Result<(), Error> {
        self.loaded().await?.set_test_cookie()
    }

    /// Whether the test cookie set on an earlier request came back.
    ///
    /// # Errors
    ///
    /// As [`Session::ensure_loaded_async`].
    #[doc(alias = "atest_cookie_worked")]
    pub async fn test_cookie_worked(&self) -> Result<bool, Error> {
        self.loaded().await?.test_cookie_worked()
    }

    /// Removes the test cookie value and marks the session modified, like Django's sync
    /// `delete_test_cookie` (Django's `adelete_test_cookie` forgets to mark it modified, so the
    /// removal would not be saved; this handle does not copy that quirk).
    ///
    /// # Errors
    ///
    /// As [`Session::ensure_loaded_async`].
    #[doc(alias = "adelete_test_cookie")]
    pub async fn delete_test_cookie(&self) -> Result<(), Error> {
        self.loaded().await?.delete_test_cookie()
    }

    /// The locked session with its data loaded (on tokio's blocking pool), so the session's
    /// dictionary operations that follow never reach the engine.
    async fn loaded(&self) -> Result<MutexGuard<'_, Session>, Error> {
        let mut session = self.lock().await;
        session.ensure_loaded_async().await?;
        Ok(session)
    }
}
