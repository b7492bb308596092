//! The template engine's store: sessions in a `HashMap` behind a `parking_lot::RwLock`.
//!
//! Each method below follows the `# Behavior` lines of [`SessionStore`]; the comment at each
//! rule names the line it implements. Native failures are a small enum mapped to the
//! contract's [`StoreError`] in exactly one function, `map_error`.

use std::collections::{HashMap, hash_map::Entry};

use parking_lot::RwLock;
use sessionkit_sdk::{
    ConditionalSave, Host, SessionRecord, SessionStore, SessionWrite, StoreError, StoreResult,
};

use crate::config::{MAX_SESSIONS_SETTING, TemplateConfig};

/// An in-memory session store: every `open` gets its own, empty map.
///
/// Like Django's db engine, an expired session stays stored until
/// [`clear_expired`](SessionStore::clear_expired) removes it: `exists` still counts it and
/// `create` cannot take its key, but `load` never returns it.
#[derive(Debug)]
pub struct TemplateStore {
    sessions: RwLock<HashMap<String, SessionRecord>>,
    max_sessions: usize,
    /// The host that opened the store: its clock tells "now" for expiry.
    host: Host,
}

/// What can go wrong inside this store, before it becomes a [`StoreError`].
#[derive(Debug)]
enum MemoryError {
    /// `create` found the key taken.
    Taken,
    /// `save` found no session under the key (or `save_if_unchanged` no live one).
    Missing,
    /// The store holds `max_sessions` live sessions.
    Full { max_sessions: usize },
}

/// The one place this store's failures become the contract's errors.
fn map_error(error: MemoryError) -> StoreError {
    match error {
        MemoryError::Taken => {
            StoreError::already_exists("a session with this key is already stored")
        }
        MemoryError::Missing => StoreError::not_found(
            "the session is no longer stored (deleted or cleared); it was not saved",
        ),
        MemoryError::Full { max_sessions } => StoreError::unavailable(format!(
            "the in-memory store holds its maximum of {max_sessions} sessions ({MAX_SESSIONS_SETTING})"
        )),
    }
}

impl TemplateStore {
    /// An empty store configured by `config`. A store that connects to a server or opens a
    /// file does it here and returns its failure as a `Config` or `Unavailable` error.
    ///
    /// # Errors
    ///
    /// None for the in-memory store.
    pub fn open(config: &TemplateConfig) -> Result<Self, StoreError> {
        Self::open_with_host(config, &Host::standalone())
    }

    /// [`TemplateStore::open`], judging expiry by the clock of `host` (the host that loaded
    /// the engine lends it; a test that freezes the host's time freezes this store's too).
    ///
    /// # Errors
    ///
    /// None for the in-memory store.
    pub fn open_with_host(config: &TemplateConfig, host: &Host) -> Result<Self, StoreError> {
        Ok(Self {
            sessions: RwLock::new(HashMap::new()),
            max_sessions: config.max_sessions,
            host: host.clone(),
        })
    }

    /// How many sessions are stored, expired ones included.
    pub fn len(&self) -> usize {
        self.sessions.read().len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SessionStore for TemplateStore {
    fn exists(&self, key: &str) -> StoreResult<bool> {
        // "An unknown key gives false"; "a key that create stored gives true; after delete it
        // gives false"; expiry is ignored ("is this key taken?").
        Ok(self.sessions.read().contains_key(key))
    }

    fn load(&self, key: &str) -> StoreResult<Option<SessionRecord>> {
        // "An unknown key gives None and stores nothing": a read lock cannot store anything.
        // "A record whose expire_date is at or before now gives None."
        let now = self.host.now();
        Ok(self
            .sessions
            .read()
            .get(key)
            .filter(|record| record.expire_date > now)
            .cloned())
    }

    fn create(&self, write: SessionWrite) -> StoreResult<String> {
        let key = write.record.session_key.to_string();
        let mut sessions = self.sessions.write();
        if sessions.len() >= self.max_sessions && !sessions.contains_key(&key) {
            // Make room from expired sessions before refusing.
            let now = self.host.now();
            sessions.retain(|_, record| record.expire_date > now);
            if sessions.len() >= self.max_sessions {
                return Err(map_error(MemoryError::Full {
                    max_sessions: self.max_sessions,
                }));
            }
        }
        match sessions.entry(key.clone()) {
            // "A key already taken fails with AlreadyExists and leaves the existing record
            // untouched."
            Entry::Occupied(_) => Err(map_error(MemoryError::Taken)),
            // "Returns the key the record is stored under"; "after it returns, load of the key
            // gives the record."
            Entry::Vacant(slot) => {
                slot.insert(write.record);
                Ok(key)
            }
        }
    }

    fn save(&self, write: SessionWrite) -> StoreResult<String> {
        let key = write.record.session_key.to_string();
        match self.sessions.write().get_mut(&key) {
            // "After it returns, load of the key gives the new record."
            Some(slot) => {
                *slot = write.record;
                Ok(key)
            }
            // "A key that is no longer stored fails with NotFound and stores nothing": never an
            // insert, which would resurrect a session logged out by another request.
            None => Err(map_error(MemoryError::Missing)),
        }
    }

    fn save_if_unchanged(
        &self,
        write: SessionWrite,
        expected_data: &str,
    ) -> StoreResult<ConditionalSave> {
        let key = write.record.session_key.to_string();
        let now = self.host.now();
        // One write lock around the comparison and the replacement: "of concurrent conditional
        // saves expecting the same data, exactly one is saved".
        let mut sessions = self.sessions.write();
        match sessions.get_mut(&key) {
            // "When the live record holds expected_data, stores the write as save does."
            Some(slot) if slot.expire_date > now && slot.session_data.as_str() == expected_data => {
                *slot = write.record;
                Ok(ConditionalSave::Saved(key))
            }
            // "When the live record holds other data, stores nothing and returns Conflict with
            // the record as it is stored now."
            Some(slot) if slot.expire_date > now => Ok(ConditionalSave::Conflict(slot.clone())),
            // "A key that is no longer stored (deleted, or expired) fails with NotFound."
            _ => Err(map_error(MemoryError::Missing)),
        }
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        // "Deleting an unknown key succeeds."
        self.sessions.write().remove(key);
        Ok(())
    }

    fn clear_expired(&self) -> StoreResult<u64> {
        // "Live records stay loadable"; "expired records are gone afterwards, and the count
        // says how many went."
        let now = self.host.now();
        let mut sessions = self.sessions.write();
        let before = sessions.len();
        sessions.retain(|_, record| record.expire_date > now);
        Ok((before - sessions.len()) as u64)
    }

    // sessions_of_account and delete_sessions_of_account keep the trait's defaults: they fail
    // with Unsupported, as the contract requires of an engine without ACCOUNT_INDEX.
}

#[cfg(test)]
mod tests {
    use sessionkit_sdk::{ErrorKind, Timestamp};

    use super::*;

    const KEY: &str = "sessionkeyofthestoretests0000001";

    fn store() -> TemplateStore {
        TemplateStore::open(&TemplateConfig::default()).unwrap()
    }

    fn write(key: &str, data: &str, expire_date: Timestamp) -> SessionWrite {
        SessionWrite {
            record: SessionRecord {
                session_key: key.into(),
                session_data: data.into(),
                expire_date,
            },
            session_json: "{}".into(),
        }
    }

    fn in_an_hour() -> Timestamp {
        Timestamp::from_micros(Timestamp::now().micros + 3_600_000_000)
    }

    fn an_hour_ago() -> Timestamp {
        Timestamp::from_micros(Timestamp::now().micros - 3_600_000_000)
    }

    #[test]
    fn exists_of_an_unknown_key_is_false() {
        assert!(!store().exists(KEY).unwrap());
    }

    #[test]
    fn exists_is_true_after_create_and_false_after_delete() {
        let store = store();
        store.create(write(KEY, "d", in_an_hour())).unwrap();
        assert!(store.exists(KEY).unwrap());
        store.delete(KEY).unwrap();
        assert!(!store.exists(KEY).unwrap());
    }

    #[test]
    fn load_of_an_unknown_key_gives_none_and_stores_nothing() {
        let store = store();
        assert_eq!(store.load(KEY).unwrap(), None);
        assert!(store.is_empty());
    }

    #[test]
    fn load_of_an_expired_record_gives_none() {
        let store = store();
        store.create(write(KEY, "d", an_hour_ago())).unwrap();
        assert_eq!(store.load(KEY).unwrap(), None);
    }

    #[test]
    fn load_gives_back_the_stored_record_exactly() {
        let store = store();
        let expire = Timestamp::from_micros(in_an_hour().micros + 7);
        store.create(write(KEY, "data:1", expire)).unwrap();
        let record = store.load(KEY).unwrap().unwrap();
        assert_eq!(record, write(KEY, "data:1", expire).record);
    }

    #[test]
    fn create_returns_the_key() {
        assert_eq!(store().create(write(KEY, "d", in_an_hour())).unwrap(), KEY);
    }

    #[test]
    fn create_of_a_taken_key_fails_with_already_exists_and_keeps_the_record() {
        let store = store();
        store.create(write(KEY, "first", in_an_hour())).unwrap();
        let error = store
            .create(write(KEY, "second", in_an_hour()))
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::AlreadyExists);
        assert_eq!(
            store.load(KEY).unwrap().unwrap().session_data.as_str(),
            "first"
        );
    }

    #[test]
    fn save_replaces_the_record_and_returns_the_key() {
        let store = store();
        store.create(write(KEY, "first", in_an_hour())).unwrap();
        assert_eq!(store.save(write(KEY, "second", in_an_hour())).unwrap(), KEY);
        assert_eq!(
            store.load(KEY).unwrap().unwrap().session_data.as_str(),
            "second"
        );
    }

    #[test]
    fn save_of_a_deleted_key_fails_with_not_found_and_stores_nothing() {
        let store = store();
        store.create(write(KEY, "d", in_an_hour())).unwrap();
        store.delete(KEY).unwrap();
        let error = store.save(write(KEY, "stale", in_an_hour())).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
        assert!(!store.exists(KEY).unwrap());
    }

    #[test]
    fn save_of_a_cleared_expired_key_fails_with_not_found() {
        let store = store();
        store.create(write(KEY, "d", an_hour_ago())).unwrap();
        store.clear_expired().unwrap();
        assert_eq!(
            store.save(write(KEY, "d", in_an_hour())).unwrap_err().kind,
            ErrorKind::NotFound
        );
    }

    #[test]
    fn delete_of_an_unknown_key_succeeds() {
        store().delete(KEY).unwrap();
    }

    #[test]
    fn clear_expired_removes_expired_records_counts_them_and_keeps_live_ones() {
        let store = store();
        store
            .create(write("expiredkey000001", "d", an_hour_ago()))
            .unwrap();
        store
            .create(write("expiredkey000002", "d", an_hour_ago()))
            .unwrap();
        store.create(write(KEY, "live", in_an_hour())).unwrap();
        assert_eq!(store.clear_expired().unwrap(), 2);
        assert!(!store.exists("expiredkey000001").unwrap());
        assert!(store.load(KEY).unwrap().is_some());
        assert_eq!(store.clear_expired().unwrap(), 0);
    }

    #[test]
    fn account_index_is_unsupported() {
        let store = store();
        assert_eq!(
            store.sessions_of_account(7).unwrap_err().kind,
            ErrorKind::Unsupported
        );
        assert_eq!(
            store.delete_sessions_of_account(7, None).unwrap_err().kind,
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn a_full_store_makes_room_from_expired_sessions_then_refuses_with_unavailable() {
        let store = TemplateStore::open(&TemplateConfig { max_sessions: 2 }).unwrap();
        store
            .create(write("fullkey000000001", "d", an_hour_ago()))
            .unwrap();
        store
            .create(write("fullkey000000002", "d", in_an_hour()))
            .unwrap();
        store
            .create(write("fullkey000000003", "d", in_an_hour()))
            .unwrap();
        assert!(!store.exists("fullkey000000001").unwrap());
        let error = store
            .create(write("fullkey000000004", "d", in_an_hour()))
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unavailable);
        assert!(
            error.message.contains("SESSION_TEMPLATE_MAX_SESSIONS"),
            "{error}"
        );
        // A taken key is still reported as taken, not as a full store.
        let taken = store
            .create(write("fullkey000000002", "d", in_an_hour()))
            .unwrap_err();
        assert_eq!(taken.kind, ErrorKind::AlreadyExists);
    }

    #[test]
    fn save_if_unchanged_replaces_only_what_the_caller_loaded() {
        let store = store();
        store.create(write(KEY, "loaded", in_an_hour())).unwrap();
        assert_eq!(
            store
                .save_if_unchanged(write(KEY, "mine", in_an_hour()), "loaded")
                .unwrap(),
            ConditionalSave::Saved(KEY.to_owned())
        );
        match store
            .save_if_unchanged(write(KEY, "lost", in_an_hour()), "loaded")
            .unwrap()
        {
            ConditionalSave::Conflict(current) => assert_eq!(current.session_data.as_str(), "mine"),
            saved => panic!("a stale conditional save went through: {saved:?}"),
        }
        store.delete(KEY).unwrap();
        let gone = store.save_if_unchanged(write(KEY, "late", in_an_hour()), "mine");
        assert_eq!(gone.unwrap_err().kind, ErrorKind::NotFound);
        assert!(
            store.load(KEY).unwrap().is_none(),
            "a deleted session came back"
        );
    }
}
