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
/// Every method that may reach the engine is `async` and runs the engine call on tokio's
/// blocking pool (through the session's `_async` methods), so handlers never block the
/// executor. For several operations in a row, [`lock`](Self::lock) once and call the
/// session's `_async` methods on the guard.
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
    /// Call the session's `_async` methods on the guard: its sync methods may load from or
    /// write to the engine and would block the executor.
    pub async fn lock(&self) -> MutexGuard<'_, Session> {
        self.inner.lock().await
    }

    /// The session key, if the session has one (after a load of an unknown key it has none).
    pub async fn session_key(&self) -> Option<String> {
        self.lock().await.session_key().map(str::to_owned)
    }

    /// The value stored under `key`, deserialized (`request.session.get(key)`).
    #[doc(alias = "aget")]
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        self.lock().await.get_async(key).await
    }

    /// The raw JSON value stored under `key`.
    pub async fn get_value(&self, key: &str) -> Result<Option<Value>, Error> {
        self.lock().await.get_value_async(key).await
    }

    /// Stores `value` under `key` (`request.session[key] = value`); marks the session modified.
    #[doc(alias = "aset")]
    pub async fn insert<T: Serialize + Send>(&self, key: &str, value: T) -> Result<(), Error> {
        self.lock().await.insert_async(key, value).await
    }

    /// Removes `key` and returns its value (`request.session.pop(key, None)`); marks the
    /// session modified iff the key was present.
    #[doc(alias = "apop")]
    pub async fn remove(&self, key: &str) -> Result<Option<Value>, Error> {
        self.lock().await.remove_async(key).await
    }

    /// Whether `key` is stored (`key in request.session`).
    #[doc(alias = "ahas_key")]
    pub async fn contains_key(&self, key: &str) -> Result<bool, Error> {
        self.lock().await.contains_key_async(key).await
    }

    /// Every key and value, in insertion order.
    #[doc(alias = "aitems")]
    pub async fn items(&self) -> Result<Vec<(String, Value)>, Error> {
        self.lock().await.items_async().await
    }

    /// Empties the session without loading it (`request.session.clear()`); the key stays.
    pub async fn clear(&self) {
        self.lock().await.clear();
    }

    /// Deletes the stored session and forgets the key (`request.session.flush()`): the
    /// middleware then deletes the cookie. Use it at logout.
    #[doc(alias = "aflush")]
    pub async fn flush(&self) -> Result<(), Error> {
        self.lock().await.flush_async().await
    }

    /// Moves the data to a new key and deletes the old one (`request.session.cycle_key()`):
    /// the defence against session fixation at login.
    #[doc(alias = "acycle_key")]
    pub async fn cycle_key(&self) -> Result<(), Error> {
        self.lock().await.cycle_key_async().await
    }

    /// Sets when the session expires (`request.session.set_expiry(value)`).
    #[doc(alias = "aset_expiry")]
    pub async fn set_expiry(&self, expiry: Expiry) -> Result<(), Error> {
        self.lock().await.set_expiry_async(expiry).await
    }

    /// Seconds until the session expires, counted from now.
    #[doc(alias = "aget_expiry_age")]
    pub async fn expiry_age(&self) -> Result<i64, Error> {
        self.lock().await.get_expiry_age_async().await
    }

    /// The date the session expires.
    #[doc(alias = "aget_expiry_date")]
    pub async fn expiry_date(&self) -> Result<DateTime<Utc>, Error> {
        self.lock().await.get_expiry_date_async().await
    }

    /// Whether the cookie lives only until the browser closes.
    #[doc(alias = "aget_expire_at_browser_close")]
    pub async fn expire_at_browser_close(&self) -> Result<bool, Error> {
        self.lock().await.get_expire_at_browser_close_async().await
    }

    /// Stores Django's test cookie value, to check on the next request that cookies work.
    #[doc(alias = "aset_test_cookie")]
    pub async fn set_test_cookie(&self) -> Result<(), Error> {
        self.lock().await.set_test_cookie_async().await
    }

    /// Whether the test cookie set on an earlier request came back.
    #[doc(alias = "atest_cookie_worked")]
    pub async fn test_cookie_worked(&self) -> Result<bool, Error> {
        self.lock().await.test_cookie_worked_async().await
    }

    /// Removes the test cookie value and marks the session modified, like Django's sync
    /// `delete_test_cookie` (Django's `adelete_test_cookie` forgets to mark it modified, so the
    /// removal would not be saved; this handle does not copy that quirk).
    #[doc(alias = "adelete_test_cookie")]
    pub async fn delete_test_cookie(&self) -> Result<(), Error> {
        let mut session = self.lock().await;
        session.delete_test_cookie_async().await?;
        session.set_modified(true);
        Ok(())
    }
}
