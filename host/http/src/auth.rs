//! Login and logout as Django's `django.contrib.auth` does them to the session.

use sessionkit::Error;

use crate::SessionHandle;

/// `_auth_user_id`: the logged-in account's primary key, stored as a string like Django does.
pub const SESSION_KEY: &str = "_auth_user_id";
/// `_auth_user_backend`: the dotted path of the authentication backend that logged the user in.
pub const BACKEND_SESSION_KEY: &str = "_auth_user_backend";
/// `_auth_user_hash`: Django's session-verification hash of the user's password hash.
pub const HASH_SESSION_KEY: &str = "_auth_user_hash";
/// Django's default authentication backend, so a Django site sharing the sessions accepts ours.
pub const DEFAULT_BACKEND: &str = "django.contrib.auth.backends.ModelBackend";

/// The details of a login beyond the account id, with Django's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The account's id (`user.pk`), stored as a string.
    pub account_id: String,
    /// Stored in `_auth_user_backend`; [`DEFAULT_BACKEND`] unless set.
    pub backend: String,
    /// Stored in `_auth_user_hash` (Django's `get_session_auth_hash()`); empty unless set.
    pub session_auth_hash: String,
}

impl Login {
    /// A login of `account_id` through Django's default backend, without an auth hash.
    pub fn new(account_id: impl std::fmt::Display) -> Self {
        Self {
            account_id: account_id.to_string(),
            backend: DEFAULT_BACKEND.to_owned(),
            session_auth_hash: String::new(),
        }
    }

    /// The same login through another backend.
    pub fn backend(mut self, backend: impl Into<String>) -> Self {
        self.backend = backend.into();
        self
    }

    /// The same login with Django's session auth hash (so a Django site keeps the user logged
    /// in only while the password is unchanged).
    pub fn session_auth_hash(mut self, hash: impl Into<String>) -> Self {
        self.session_auth_hash = hash.into();
        self
    }
}

/// Logs `account_id` in: Django's `login(request, user)` applied to the session.
///
/// See [`login_with`].
pub async fn login(
    session: &SessionHandle,
    account_id: impl std::fmt::Display,
) -> Result<(), Error> {
    login_with(session, Login::new(account_id)).await
}

/// Logs a user in with explicit details: Django's `login(request, user, backend)`.
///
/// # Behavior
///
/// - Nobody logged in yet → `cycle_key()`: the data moves to a new key and the old key dies, so
///   a key planted before login (session fixation) is worthless afterwards.
/// - Another account logged in (different id, or a different non-empty auth hash) → `flush()`:
///   nothing of the previous user's session survives (CVE-2014-0482).
/// - The same account again → the key is kept, as Django does.
/// - Then `_auth_user_id` (a string), `_auth_user_backend` and `_auth_user_hash` are stored.
///
/// # Errors
///
/// Whatever the engine reports while loading, cycling or flushing.
pub async fn login_with(session: &SessionHandle, login: Login) -> Result<(), Error> {
    let mut session = session.lock().await;
    session.ensure_loaded_async().await?;
    let current = session.get_value(SESSION_KEY)?;
    match current {
        Some(current) => {
            // Django compares `to_python(stored)` with `user.pk`: a number stored by other code
            // counts as the same id as its decimal text.
            let current_id = match current {
                serde_json::Value::String(id) => id,
                other => other.to_string(),
            };
            let same_user = current_id == login.account_id;
            let stored_hash: Option<String> = session.get(HASH_SESSION_KEY)?;
            let hash_differs = !login.session_auth_hash.is_empty()
                && stored_hash.as_deref() != Some(login.session_auth_hash.as_str());
            if !same_user || hash_differs {
                session.flush_async().await?;
            }
        }
        None => session.cycle_key_async().await?,
    }
    // Loaded by the login step above (a flush leaves the data empty, not unloaded): no engine
    // call from here on.
    session.insert(SESSION_KEY, login.account_id)?;
    session.insert(BACKEND_SESSION_KEY, login.backend)?;
    session.insert(HASH_SESSION_KEY, login.session_auth_hash)?;
    Ok(())
}

/// The logged-in account's id, if any (`_auth_user_id`).
pub async fn logged_in_account(session: &SessionHandle) -> Result<Option<String>, Error> {
    Ok(match session.get_value(SESSION_KEY).await? {
        Some(serde_json::Value::String(id)) => Some(id),
        Some(serde_json::Value::Number(id)) => Some(id.to_string()),
        _ => None,
    })
}

/// Logs out: Django's `logout(request)` flushes the session, so the stored session is deleted,
/// the key forgotten and the cookie deleted by the middleware.
///
/// # Errors
///
/// Whatever the engine reports while deleting.
pub async fn logout(session: &SessionHandle) -> Result<(), Error> {
    session.flush().await
}
