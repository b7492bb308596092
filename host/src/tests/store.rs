//! The `Store` guard: keys are checked before any engine call; errors carry context.

use abi_stable::std_types::{RStr, RString};
use sessionkit_codec::SESSION_STORE_SALT;
use sessionkit_sdk::{
    Capabilities, EngineInfo, ErrorKind, KeyFormat, SessionRecord, SessionStore, SessionWrite,
    StoreResult, Timestamp, store::FfiAdapter,
};

use super::memory::{memory_engine, settings};
use crate::{Engine, Error};

fn write(key: &str) -> SessionWrite {
    SessionWrite {
        record: SessionRecord {
            session_key: RString::from(key),
            session_data: RString::from("data"),
            expire_date: Timestamp::from_secs(4_000_000_000),
        },
        session_json: RString::from("{}"),
    }
}

#[test]
fn reads_with_invalid_keys_answer_as_unknown_without_calling_the_engine() {
    let (engine, probe) = memory_engine();
    let store = engine.store();
    for bad in [
        "",
        "UPPERCASEKEY123",
        "abc/defghij",
        "abcdefgh\0",
        "abcdefgh ",
        &"k".repeat(41),
    ] {
        assert!(!store.exists(bad).unwrap());
        assert!(store.load(bad).unwrap().is_none());
        store.delete(bad).unwrap();
    }
    assert_eq!(probe.calls(), 0);
}

#[test]
fn writes_with_invalid_keys_are_refused_without_calling_the_engine() {
    let (engine, probe) = memory_engine();
    let store = engine.store();
    assert!(matches!(
        store.create(write("../etc/passwd")),
        Err(Error::InvalidKey { .. })
    ));
    assert!(matches!(
        store.save(write("SHORT")),
        Err(Error::InvalidKey { .. })
    ));
    assert_eq!(probe.calls(), 0);
}

#[test]
fn raw_create_and_save_follow_the_contract_with_portable_kinds() {
    let (engine, _) = memory_engine();
    let store = engine.store();
    let key = sessionkit_codec::key::new_session_key();
    assert_eq!(
        store.save(write(&key)).unwrap_err().kind(),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(store.create(write(&key)).unwrap(), key);
    assert_eq!(
        store.create(write(&key)).unwrap_err().kind(),
        Some(ErrorKind::AlreadyExists)
    );
    assert!(store.exists(&key).unwrap());
    assert_eq!(
        store.load(&key).unwrap().unwrap().session_data.as_str(),
        "data"
    );
    store.delete(&key).unwrap();
    assert!(!store.exists(&key).unwrap());
}

#[test]
fn store_errors_name_the_engine_the_operation_and_only_a_key_prefix() {
    let (engine, probe) = memory_engine();
    let key = sessionkit_codec::key::new_session_key();
    probe.fail_with(Some(ErrorKind::Unavailable));
    let error = engine.store().exists(&key).unwrap_err();
    match &error {
        Error::Engine {
            engine,
            operation,
            key_prefix,
            source,
        } => {
            assert_eq!(engine, "memory");
            assert_eq!(*operation, "exists");
            assert_eq!(
                key_prefix.as_deref(),
                Some(format!("{}…", &key[..6]).as_str())
            );
            assert_eq!(source.kind, ErrorKind::Unavailable);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!error.to_string().contains(&key));
    let error = engine.clear_expired().unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("engine 'memory' failed to clear_expired: "),
        "{error}"
    );
}

/// A store that answers writes with whatever key it was told to.
struct AnswersWith(&'static str);

impl SessionStore for AnswersWith {
    fn exists(&self, _key: &str) -> StoreResult<bool> {
        Ok(false)
    }
    fn load(&self, _key: &str) -> StoreResult<Option<SessionRecord>> {
        Ok(None)
    }
    fn create(&self, _write: SessionWrite) -> StoreResult<String> {
        Ok(self.0.to_owned())
    }
    fn save(&self, _write: SessionWrite) -> StoreResult<String> {
        Ok(self.0.to_owned())
    }
    fn delete(&self, _key: &str) -> StoreResult<()> {
        Ok(())
    }
    fn clear_expired(&self) -> StoreResult<u64> {
        Ok(0)
    }
}

fn answering(key: &'static str) -> Engine {
    let info = EngineInfo {
        name: RStr::from_str("answers"),
        version: RStr::from_str("0.0.0"),
        salt: RStr::from_str(SESSION_STORE_SALT),
        capabilities: Capabilities::NONE,
        key_format: KeyFormat::DjangoSessionKey,
    };
    let store = FfiAdapter::new("answers", AnswersWith(key)).into_box();
    Engine::from_store(info, store, &settings()).unwrap()
}

#[test]
fn writes_return_the_key_the_engine_stored_under_when_it_fits_the_format() {
    let sent = "sentkey000000000000000000000001";
    let engine = answering(sent);
    assert_eq!(engine.store().save(write(sent)).unwrap(), sent);
    let other = "otherkey00000000000000000000001";
    let engine = answering(other);
    assert_eq!(engine.store().create(write(sent)).unwrap(), other);
    assert_eq!(engine.store().save(write(sent)).unwrap(), other);
}

#[test]
fn a_returned_key_outside_the_format_is_an_engine_error() {
    let engine = answering("NOT A KEY");
    for result in [
        engine
            .store()
            .create(write("sentkey000000000000000000000001")),
        engine
            .store()
            .save(write("sentkey000000000000000000000001")),
    ] {
        let error = result.unwrap_err();
        assert!(matches!(error, Error::Engine { .. }), "{error}");
        assert!(
            error.to_string().contains("outside its key format"),
            "{error}"
        );
    }
}
