//! The contract for a session that lives in the cookie.
//!
//! The host signs the session (salt `django.contrib.sessions.backends.signed_cookies`) and
//! verifies it with `SESSION_COOKIE_AGE` as the maximum age; this store only hands the signed
//! string back as the key, refuses one a browser would drop, and reads the signing time to say
//! when the cookie expires.

use sessionkit_codec::signing::signed_timestamp;
use sessionkit_sdk::{
    SessionRecord, SessionStore, SessionWrite, StoreError, StoreResult, Timestamp,
};

use crate::SignedCookiesConfig;

/// The signed-cookie store: stateless, the browser holds every session.
#[derive(Debug, Clone)]
pub struct SignedCookiesStore {
    config: SignedCookiesConfig,
}

impl SignedCookiesStore {
    /// A store with `config`. Nothing is opened (the store holds no state), so this never fails;
    /// it returns a `Result` to keep every engine's `open` the same shape.
    ///
    /// # Errors
    ///
    /// None today.
    pub fn open(config: &SignedCookiesConfig) -> Result<Self, StoreError> {
        Ok(Self {
            config: config.clone(),
        })
    }

    /// The signed payload as the key, or an error if a browser would drop the cookie (Django
    /// emits it silently and the session is lost at the next request).
    fn key_for(&self, write: SessionWrite) -> StoreResult<String> {
        let value = write.record.session_data.into_string();
        let limit = self.config.max_value_len();
        if value.len() > limit {
            return Err(StoreError::other(format!(
                "the signed session is {} bytes, over the {limit} a browser keeps in cookie '{}'; \
                 store less in the session or use a server-side engine",
                value.len(),
                self.config.cookie_name
            )));
        }
        Ok(value)
    }
}

impl SessionStore for SignedCookiesStore {
    /// Always `false`: nothing is stored server-side, so every key is free (Django does the same).
    fn exists(&self, _key: &str) -> StoreResult<bool> {
        Ok(false)
    }

    /// The cookie as a record expiring `SESSION_COOKIE_AGE` after it was signed; `None` once that
    /// has passed or when no signing time can be read. The host verifies the signature.
    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        let Some(signed_at) = signed_timestamp(key) else {
            return Ok(None);
        };
        // Django accepts an age equal to max_age and refuses anything older, so the cookie is
        // valid through the whole second `signed_at + age` and expires one microsecond after.
        let expire_date = Timestamp::from_secs(signed_at.saturating_add(self.config.cookie_age))
            .micros
            .saturating_add(1);
        let expire_date = Timestamp::from_micros(expire_date);
        if expire_date <= Timestamp::now() {
            return Ok(None);
        }
        Ok(Some(SessionRecord {
            session_key: key.into(),
            session_data: key.into(),
            expire_date,
        }))
    }

    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        self.key_for(write)
    }

    /// Re-signing makes a new cookie; there is nothing server-side that could have vanished.
    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        self.key_for(write)
    }

    /// Nothing to delete: the browser drops the cookie when the host deletes it. A copy of the
    /// cookie stays valid until it expires (the engine lacks `SERVER_SIDE_INVALIDATION`).
    fn delete(&self, _key: &str) -> StoreResult<()> {
        Ok(())
    }

    /// Nothing is stored, so nothing expires here.
    fn clear_expired(&self) -> StoreResult<u64> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use sessionkit_codec::{SIGNED_COOKIES_SALT, SessionCodec};

    use super::*;

    fn store() -> SignedCookiesStore {
        SignedCookiesStore::open(&SignedCookiesConfig {
            cookie_age: 60,
            cookie_name: "sessionid".to_owned(),
        })
        .expect("opening a signed-cookie store cannot fail")
    }

    fn write(data: &str) -> SessionWrite {
        SessionWrite::new(SessionRecord::new("", data, Timestamp::now()), "{}")
    }

    fn signed(value: serde_json::Value, at: i64) -> String {
        SessionCodec::new(SIGNED_COOKIES_SALT, b"secret", &[])
            .encode_value(&value, at)
            .map(|encoded| encoded.session_data)
            .expect("a JSON object encodes")
    }

    #[test]
    fn create_returns_the_signed_payload_as_the_key() {
        let data = signed(serde_json::json!({"a": 1}), Timestamp::now().as_secs());
        assert_eq!(store().create(write(&data)).unwrap(), data);
        assert_eq!(store().save(write(&data)).unwrap(), data);
    }

    #[test]
    fn a_cookie_over_the_browser_limit_is_refused_at_save() {
        let data = "a".repeat(4096);
        let error = store().save(write(&data)).unwrap_err();
        assert_eq!(error.kind, sessionkit_sdk::ErrorKind::Other);
        assert!(error.message.contains("4086"), "{}", error.message);
    }

    #[test]
    fn load_expires_the_cookie_cookie_age_after_signing() {
        let now = Timestamp::now().as_secs();
        let fresh = signed(serde_json::json!({}), now - 30);
        let record = store()
            .load(&fresh)
            .unwrap()
            .expect("30 s old is within 60 s");
        assert_eq!(record.session_data.as_str(), fresh);
        assert_eq!(
            record.expire_date,
            Timestamp::from_micros(Timestamp::from_secs(now + 30).micros + 1)
        );
        let stale = signed(serde_json::json!({}), now - 61);
        assert_eq!(store().load(&stale).unwrap(), None);
    }

    #[test]
    fn load_of_something_that_is_not_signed_gives_none() {
        assert_eq!(store().load("no-colons-here").unwrap(), None);
        assert_eq!(
            store().load("a:!:c").unwrap(),
            None,
            "'!' is not a base62 timestamp"
        );
        assert_eq!(
            store().load("a:b:c").unwrap(),
            None,
            "signed 11 s after the epoch: long expired"
        );
    }

    #[test]
    fn nothing_is_stored_server_side() {
        assert!(!store().exists("anything").unwrap());
        assert!(store().delete("anything").is_ok());
        assert_eq!(store().clear_expired().unwrap(), 0);
    }
}
