//! save, create, delete, flush, cycle_key and load as Django's `SessionBase` does them
//! (`django/contrib/sessions/backends/base.py`, `db.py`, `cache.py`); ports of `SessionTestsMixin`
//! 27–44 and 62–65, `DatabaseSessionTests` 66–68 and `CacheSessionTests.test_create_and_save`
//! (sync), with CVE-2015-3982, -5143 and -5963.

use serde_json::{Value, json};
use sessionkit::{Capabilities, Error, ErrorKind, KeyFormat};

use super::reason;
use crate::{
    Case, Failure, Group, Target,
    support::{CaseResult, expect_kind, key_of, live_write, map, new_key, reopened, saved},
};

pub(super) fn cases() -> Vec<Case> {
    use Group::Lifecycle as G;
    let revocable =
        |case: Case| case.requires(Capabilities::SERVER_SIDE_INVALIDATION, reason::REVOCATION);
    let django_keys = |case: Case, why| case.key_format(KeyFormat::DjangoSessionKey, why);
    vec![
        django_keys(
            case!(G, save_makes_the_key_exist),
            reason::EXISTS_MEANINGLESS,
        ),
        case!(G, save_keeps_the_data),
        case!(G, save_without_a_key_creates_a_record),
        django_keys(
            case!(G, create_then_save_keeps_the_record),
            reason::EXISTS_MEANINGLESS,
        ),
        revocable(case!(G, delete_removes_the_session)),
        django_keys(
            case!(G, delete_without_a_key_does_nothing),
            reason::COOKIE_DELETE_EMPTIES,
        ),
        case!(G, flush_deletes_the_record_and_forgets_the_key),
        case!(G, flushed_sessions_never_share_a_key_cve_2015_3982),
        case!(
            G,
            flush_of_a_session_without_a_key_stores_nothing_cve_2015_5963
        ),
        revocable(case!(G, cycle_key_moves_the_data_to_a_new_key)),
        case!(G, cycle_key_of_an_unloaded_session_keeps_the_data),
        case!(G, cycle_key_without_a_key_creates_a_session),
        django_keys(
            case!(
                G,
                save_with_must_create_on_a_taken_key_fails_with_already_exists
            ),
            reason::DJANGO_KEYS,
        ),
        revocable(case!(
            G,
            save_does_not_resurrect_a_session_deleted_elsewhere
        )),
        django_keys(
            case!(G, load_of_unknown_key_creates_nothing_cve_2015_5143),
            reason::NO_STORE,
        ),
        django_keys(
            case!(G, load_of_unknown_key_resets_the_key),
            reason::NO_STORE,
        ),
        case!(G, decoded_record_gives_the_session),
        django_keys(
            case!(G, record_saved_through_the_store_is_read_by_a_session),
            reason::DJANGO_KEYS,
        ),
        django_keys(
            case!(G, emptied_session_is_saved_empty_not_deleted),
            reason::EXISTS_MEANINGLESS,
        ),
        case!(G, keys_keep_their_insertion_order_across_save_and_load),
        case!(G, json_values_round_trip_through_the_store),
    ]
}

/// Whether `error` is Django's `UpdateError`: the session vanished before `save` (the host
/// reports it as `SessionInterrupted`, or as the engine's `NotFound`).
pub(crate) fn is_update_error(error: &Error) -> bool {
    matches!(error, Error::SessionInterrupted) || error.kind() == Some(ErrorKind::NotFound)
}

/// Django `test_save`: after `save()`, the key exists.
fn save_makes_the_key_exist(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.save()?;
    let key = key_of(&session)?;
    let exists = session.exists(&key)?;
    session.delete()?;
    ensure!(exists, "exists of the saved key gave false");
    Ok(())
}

/// Django `test_save_doesnt_clear_data`: the data is still there after `save()`, in this
/// session and in a new one opened with the key.
fn save_keeps_the_data(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("a", "b")?;
    session.save()?;
    ensure_eq!(
        session.get_value("a")?,
        Some(json!("b")),
        "the value after save"
    );
    let key = key_of(&session)?;
    let again = reopened(&engine, &key)?;
    session.delete()?;
    ensure_eq!(
        again.get("a"),
        Some(&json!("b")),
        "the value in a session reopened by key"
    );
    Ok(())
}

/// `save()` of a session without a key creates a record under a new valid key.
fn save_without_a_key_creates_a_record(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    ensure_eq!(session.session_key(), None, "session_key of a new session");
    session.insert("n", 7)?;
    session.save()?;
    let key = key_of(&session)?;
    let again = reopened(&engine, &key)?;
    session.delete()?;
    ensure!(
        engine.is_valid_key(&key),
        "save minted an invalid key {key:?}"
    );
    ensure_eq!(again.get("n"), Some(&json!(7)), "the saved value, reopened");
    Ok(())
}

/// Django `CacheSessionTests.test_create_and_save`: `create()` then `save()` leaves the
/// session stored.
fn create_then_save_keeps_the_record(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.create()?;
    session.save()?;
    let key = key_of(&session)?;
    let exists = session.exists(&key)?;
    session.delete()?;
    ensure!(exists, "the session does not exist after create and save");
    Ok(())
}

/// Django `test_delete`: after `delete(key)` the key no longer exists.
fn delete_removes_the_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (mut session, key) = saved(&engine, json!({"x": 1}))?;
    session.delete_key(&key)?;
    ensure!(!session.exists(&key)?, "the key still exists after delete");
    ensure!(
        reopened(&engine, &key)?.is_empty(),
        "the deleted session still loads"
    );
    Ok(())
}

/// `delete()` without a key is a no-op (Django's `db.SessionStore.delete`).
fn delete_without_a_key_does_nothing(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("x", 1)?;
    session.delete()?;
    ensure_eq!(
        session.session_key(),
        None,
        "session_key after delete without a key"
    );
    ensure_eq!(
        session.get_value("x")?,
        Some(json!(1)),
        "the data after delete without a key"
    );
    Ok(())
}

/// Django `test_flush`: after `flush()` the old key no longer exists, the session has no key,
/// and it is accessed and modified.
fn flush_deletes_the_record_and_forgets_the_key(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (mut session, key) = saved(&engine, json!({"foo": "bar"}))?;
    session.set_accessed(false);
    session.set_modified(false);
    session.flush()?;
    ensure!(
        !session.exists(&key)?,
        "the old key still exists after flush"
    );
    ensure_eq!(session.session_key(), None, "session_key after flush");
    ensure!(
        session.modified(),
        "flush did not mark the session modified"
    );
    ensure!(
        session.accessed(),
        "flush did not mark the session accessed"
    );
    ensure_eq!(session.get_value("foo")?, None, "the data after flush");
    Ok(())
}

/// CVE-2015-3982: a flushed session's key was `""`, so every flushed visitor shared one
/// session. After flush the key is `None`, and two flushed sessions saved again get two
/// distinct new keys.
fn flushed_sessions_never_share_a_key_cve_2015_3982(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (mut first, old_first) = saved(&engine, json!({"who": "first"}))?;
    let (mut second, old_second) = saved(&engine, json!({"who": "second"}))?;
    first.flush()?;
    second.flush()?;
    ensure_eq!(first.session_key(), None, "session_key after flush");
    ensure_eq!(second.session_key(), None, "session_key after flush");
    first.insert("who", "first again")?;
    second.insert("who", "second again")?;
    first.save()?;
    second.save()?;
    let (new_first, new_second) = (key_of(&first)?, key_of(&second)?);
    let first_sees = reopened(&engine, &new_first)?;
    first.delete()?;
    second.delete()?;
    ensure!(
        new_first != new_second,
        "two flushed sessions were saved under one key"
    );
    ensure!(
        new_first != old_first && new_second != old_second,
        "a flushed session was saved under its old key"
    );
    ensure_eq!(
        first_sees.get("who"),
        Some(&json!("first again")),
        "the first session's data"
    );
    Ok(())
}

/// CVE-2015-5963/5964: flushing an anonymous session (logout without a login) must not create
/// a record: the session stays without a key and empty.
fn flush_of_a_session_without_a_key_stores_nothing_cve_2015_5963(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("x", 1)?;
    session.flush()?;
    ensure_eq!(
        session.session_key(),
        None,
        "session_key after flushing an anonymous session"
    );
    ensure!(
        session.is_empty(),
        "a flushed anonymous session is not empty"
    );
    Ok(())
}

/// Django `test_cycle`: `cycle_key()` moves the data to a new key and deletes the old one.
fn cycle_key_moves_the_data_to_a_new_key(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (mut session, old) = saved(&engine, json!({"a": "c", "b": "d"}))?;
    let items = session.items()?;
    session.set_modified(false);
    session.cycle_key()?;
    let new = key_of(&session)?;
    let old_exists = session.exists(&old)?;
    let new_exists = session.exists(&new)?;
    let modified = session.modified();
    let items_after = session.items()?;
    let again = reopened(&engine, &new)?;
    session.delete()?;
    ensure!(new != old, "cycle_key kept the old key");
    ensure!(!old_exists, "the old key still exists after cycle_key");
    ensure!(new_exists, "the new key does not exist after cycle_key");
    ensure!(modified, "cycle_key did not mark the session modified");
    ensure_eq!(items_after, items, "items after cycle_key");
    ensure_eq!(
        again,
        map(json!({"a": "c", "b": "d"})),
        "the data reopened under the new key"
    );
    Ok(())
}

/// Django `test_cycle_with_no_session_cache`: `cycle_key()` on a session opened by key and not
/// yet loaded keeps the data.
fn cycle_key_of_an_unloaded_session_keeps_the_data(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (_, key) = saved(&engine, json!({"a": "c", "b": "d"}))?;
    let mut session = engine.session(Some(&key));
    session.cycle_key()?;
    let new = key_of(&session)?;
    let items = session.items()?;
    let again = reopened(&engine, &new)?;
    session.delete()?;
    let expected = vec![("a".to_owned(), json!("c")), ("b".to_owned(), json!("d"))];
    ensure_eq!(
        items,
        expected,
        "items after cycle_key of an unloaded session"
    );
    ensure_eq!(
        again,
        map(json!({"a": "c", "b": "d"})),
        "the data reopened under the new key"
    );
    Ok(())
}

/// `cycle_key()` of a session that has no key yet creates one holding its data.
fn cycle_key_without_a_key_creates_a_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("x", 1)?;
    session.cycle_key()?;
    let key = key_of(&session)?;
    let again = reopened(&engine, &key)?;
    session.delete()?;
    ensure_eq!(
        again.get("x"),
        Some(&json!(1)),
        "the data under the new key"
    );
    Ok(())
}

/// `save(must_create=True)` on a key that is taken fails with Django's `CreateError`
/// (`AlreadyExists`) and leaves the stored session alone.
fn save_with_must_create_on_a_taken_key_fails_with_already_exists(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (_, key) = saved(&engine, json!({"owner": "first"}))?;
    let mut intruder = engine.session(Some(&key));
    intruder.insert("owner", "second")?;
    let result = intruder.save_with(true);
    let stored = reopened(&engine, &key)?;
    engine.store().delete(&key)?;
    expect_kind(
        result,
        ErrorKind::AlreadyExists,
        "save_with(must_create) of a taken key",
    )?;
    ensure_eq!(
        stored.get("owner"),
        Some(&json!("first")),
        "the stored session afterwards"
    );
    Ok(())
}

/// Django `test_session_save_does_not_resurrect_session_logged_out_in_other_context` (ticket
/// #21608): a session deleted by another request is not brought back by a later `save()`,
/// which fails with `UpdateError` (here `SessionInterrupted` / `NotFound`).
fn save_does_not_resurrect_a_session_deleted_elsewhere(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut first = engine.session(None);
    first.insert("test_data", "value1")?;
    first.save_with(true)?;
    let key = key_of(&first)?;
    let mut other = engine.session(Some(&key));
    other.delete()?;
    first.insert("test_data", "value2")?;
    match first.save() {
        Err(error) if is_update_error(&error) => {}
        other => {
            return Err(Failure::new(format!(
                "save of a session deleted elsewhere gave {other:?}, expected UpdateError"
            )));
        }
    }
    ensure!(
        first.load()?.is_empty(),
        "load after the failed save gave data"
    );
    ensure!(!first.exists(&key)?, "the deleted session exists again");
    Ok(())
}

/// Django `test_session_load_does_not_create_record` (CVE-2015-5143): loading an unknown key
/// creates nothing, and the key is not reused.
fn load_of_unknown_key_creates_nothing_cve_2015_5143(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let unknown = new_key();
    let mut session = engine.session(Some(&unknown));
    ensure!(
        session.load()?.is_empty(),
        "load of an unknown key gave data"
    );
    ensure!(
        !session.exists(&unknown)?,
        "load of an unknown key created a record"
    );
    session.insert("x", 1)?;
    session.save()?;
    let key = key_of(&session)?;
    session.delete()?;
    ensure!(
        key != unknown,
        "the unknown key was reused for the new session"
    );
    Ok(())
}

/// Django's load of an unknown key resets the key to `None` (a new one is minted only when the
/// session is saved), so the session becomes empty.
fn load_of_unknown_key_resets_the_key(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let unknown = new_key();
    let mut session = engine.session(Some(&unknown));
    ensure!(
        !session.is_empty(),
        "a session with a key counts as empty before loading"
    );
    let _ = session.get_value("anything")?;
    ensure_eq!(
        session.session_key(),
        None,
        "session_key after loading an unknown key"
    );
    ensure!(
        session.is_empty(),
        "the session is not empty after loading an unknown key"
    );
    Ok(())
}

/// Django `test_session_get_decoded`: the stored record decodes to the session.
fn decoded_record_gives_the_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (mut session, key) = saved(&engine, json!({"x": 1}))?;
    let record = engine.store().load(&key)?;
    session.delete()?;
    let record = record.ok_or_else(|| Failure::new("the saved session has no record"))?;
    ensure_eq!(
        engine.decode(&record.session_data),
        map(json!({"x": 1})),
        "the decoded record"
    );
    Ok(())
}

/// Django `test_sessionmanager_save`: a record written straight to the store replaces the
/// session, and a new session opened by key reads the new data.
fn record_saved_through_the_store_is_read_by_a_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (mut session, key) = saved(&engine, json!({"x": 1}))?;
    engine
        .store()
        .save(live_write(&engine, &key, json!({"y": 2}))?)?;
    let again = reopened(&engine, &key)?;
    session.delete()?;
    ensure_eq!(
        again.get("y"),
        Some(&json!(2)),
        "the value written through the store"
    );
    ensure_eq!(again.get("x"), None, "the replaced value");
    Ok(())
}

/// Django `test_empty_session_saved`: a session emptied with `del` (not flushed) keeps its key
/// and is saved as `{}`; the record is not deleted.
fn emptied_session_is_saved_empty_not_deleted(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (_, key) = saved(&engine, json!({"foo": "bar"}))?;
    let mut session = engine.session(Some(&key));
    session.remove("foo")?;
    session.save()?;
    let still = key_of(&session)?;
    let exists = session.exists(&still)?;
    let again = reopened(&engine, &still)?;
    session.delete()?;
    ensure_eq!(still, key, "the key of the emptied session");
    ensure!(exists, "the emptied session's record was deleted");
    ensure!(
        again.is_empty(),
        "the emptied session reopened with data: {again:?}"
    );
    Ok(())
}

/// A session is a Python dict: its keys keep their insertion order through save and load, and
/// removing one keeps the order of the rest.
fn keys_keep_their_insertion_order_across_save_and_load(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    for key in ["zeta", "alpha", "mid", "beta"] {
        session.insert(key, key.len())?;
    }
    session.remove("alpha")?;
    session.save()?;
    let key = key_of(&session)?;
    let mut again = engine.session(Some(&key));
    let keys = again.keys()?;
    session.delete()?;
    ensure_eq!(
        keys,
        vec!["zeta", "mid", "beta"],
        "keys after save and load"
    );
    Ok(())
}

/// JSON values of every kind come back unchanged after save and load: big integers, floats
/// in Python's repr, escapes, non-ASCII and astral characters, nesting, null and booleans.
fn json_values_round_trip_through_the_store(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let values: Value = json!({
        "int": 9_007_199_254_740_993_i64,
        "min": i64::MIN,
        "u64": u64::MAX,
        "neg": -1,
        "float": 1.5,
        "tiny": 1e-7,
        "huge": 1e16,
        "true": true,
        "null": null,
        "empty": "",
        "text": "Zoë ✓ 😀 \u{2028} \u{7f} \u{0} \"quoted\" back\\slash </script>",
        "nested": {"list": [1, [2, [3, {"deep": "yes"}]]], "obj": {}},
        "_auth_user_id": "42",
    });
    let (mut session, key) = saved(&engine, values.clone())?;
    let again = reopened(&engine, &key)?;
    session.delete()?;
    ensure_eq!(
        Value::Object(again),
        values,
        "the values after save and load"
    );
    Ok(())
}
