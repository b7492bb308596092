//! The dict-like operations of a session (Django's `SessionBase` in
//! `django/contrib/sessions/backends/base.py`) and what each does to `accessed`
//! and `modified`; ports of `SessionTestsMixin` 1–26 and `SessionBaseTests` 124–126 (sync).

use serde_json::{Value, json};
use sessionkit::{TEST_COOKIE_NAME, TEST_COOKIE_VALUE};

use crate::{
    Case, Failure, Group, Target,
    support::{CaseResult, map, saved},
};

pub(super) fn cases() -> Vec<Case> {
    use Group::Mapping as G;
    vec![
        case!(G, new_session_is_neither_accessed_nor_modified),
        case!(G, get_of_missing_key_is_none),
        case!(G, insert_marks_modified_and_pop_returns_the_value),
        case!(G, pop_returns_the_value_and_marks_accessed_and_modified),
        case!(G, pop_of_missing_key_returns_none_without_marking_modified),
        case!(G, remove_of_present_key_marks_modified),
        case!(G, remove_of_missing_key_does_not_mark_modified),
        case!(G, setdefault_inserts_once_and_marks_modified),
        case!(G, setdefault_of_present_key_does_not_mark_modified),
        case!(G, update_marks_accessed_and_modified),
        case!(G, update_with_nothing_still_marks_modified),
        case!(G, contains_key_marks_accessed_not_modified),
        case!(G, values_mark_accessed_not_modified),
        case!(G, keys_mark_accessed_not_modified),
        case!(G, items_mark_accessed_not_modified),
        case!(G, clear_empties_and_marks_accessed_and_modified),
        case!(G, clear_of_unloaded_session_discards_the_stored_data),
        case!(G, get_of_a_value_of_another_type_fails_with_a_type_error),
        case!(G, test_cookie_is_set_checked_and_deleted),
        case!(G, delete_test_cookie_marks_modified),
        case!(G, new_session_is_empty),
        case!(G, session_with_a_key_is_not_empty_even_without_data),
        case!(G, is_empty_never_loads),
    ]
}

/// Clears both flags, as Django's tests do between steps.
fn reset_flags(session: &mut sessionkit::Session) {
    session.set_accessed(false);
    session.set_modified(false);
}

/// Checks both flags at once.
fn flags(session: &sessionkit::Session, accessed: bool, modified: bool, after: &str) -> CaseResult {
    ensure_eq!(
        (session.accessed(), session.modified()),
        (accessed, modified),
        "(accessed, modified) after {after}"
    );
    Ok(())
}

/// Django `test_new_session`: a fresh session is neither accessed nor modified.
fn new_session_is_neither_accessed_nor_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let session = engine.session(None);
    flags(&session, false, false, "creating the session")
}

/// Django `test_get_empty`: `get` of a missing key is `None` and marks nothing modified.
fn get_of_missing_key_is_none(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    ensure_eq!(
        session.get_value("cat")?,
        None,
        "get(\"cat\") of an empty session"
    );
    flags(&session, true, false, "get")
}

/// Django `test_store`: setting a value marks the session modified; `pop` gives it back.
fn insert_marks_modified_and_pop_returns_the_value(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("cat", "dog")?;
    ensure!(
        session.modified(),
        "insert did not mark the session modified"
    );
    ensure_eq!(
        session.pop::<String>("cat")?,
        Some("dog".to_owned()),
        "pop(\"cat\")"
    );
    Ok(())
}

/// Django `test_pop`: `pop` of a present key returns it, removes it, and marks the session
/// accessed and modified.
fn pop_returns_the_value_and_marks_accessed_and_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("some key", "exists")?;
    reset_flags(&mut session);
    ensure_eq!(
        session.pop::<String>("some key")?,
        Some("exists".to_owned()),
        "pop"
    );
    flags(&session, true, true, "pop of a present key")?;
    ensure_eq!(session.get_value("some key")?, None, "get after pop");
    Ok(())
}

/// Django `test_pop_default`, `test_pop_default_named_argument` and
/// `test_pop_no_default_keyerror_raised`: `pop` of a missing key gives `None` (Rust's "default"
/// and "KeyError" both), marks the session accessed, and not modified.
fn pop_of_missing_key_returns_none_without_marking_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    ensure_eq!(
        session.pop::<String>("some key")?,
        None,
        "pop of a missing key"
    );
    flags(&session, true, false, "pop of a missing key")
}

/// `del s[k]` of a present key marks the session modified (Django's `SessionBase.__delitem__`).
fn remove_of_present_key_marks_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("k", 1)?;
    reset_flags(&mut session);
    ensure_eq!(
        session.remove("k")?,
        Some(json!(1)),
        "remove of a present key"
    );
    flags(&session, true, true, "remove of a present key")
}

/// `del s[k]` of a missing key raises KeyError in Django and leaves `modified` unset.
fn remove_of_missing_key_does_not_mark_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    ensure_eq!(session.remove("nope")?, None, "remove of a missing key");
    flags(&session, true, false, "remove of a missing key")
}

/// Django `test_setdefault`: the first call inserts and returns the default, the second returns
/// the stored value; the session is accessed and modified.
fn setdefault_inserts_once_and_marks_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    ensure_eq!(
        session.setdefault("foo", "bar")?,
        json!("bar"),
        "first setdefault"
    );
    ensure_eq!(
        session.setdefault("foo", "baz")?,
        json!("bar"),
        "second setdefault"
    );
    flags(&session, true, true, "setdefault")
}

/// `setdefault` of a present key changes nothing, so it does not mark the session modified.
fn setdefault_of_present_key_does_not_mark_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("foo", "bar")?;
    reset_flags(&mut session);
    ensure_eq!(
        session.setdefault("foo", "baz")?,
        json!("bar"),
        "setdefault of a present key"
    );
    flags(&session, true, false, "setdefault of a present key")
}

/// Django `test_update`: `update` marks the session accessed and modified; the value is there.
fn update_marks_accessed_and_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.update(map(json!({"update key": 1})))?;
    flags(&session, true, true, "update")?;
    ensure_eq!(
        session.get_value("update key")?,
        Some(json!(1)),
        "the updated value"
    );
    Ok(())
}

/// Django marks the session modified on every `update`, even with an empty dict
/// (`SessionBase.update`).
fn update_with_nothing_still_marks_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.update(map(json!({})))?;
    flags(&session, true, true, "update with an empty map")
}

/// Django `test_has_key`: `k in s` marks the session accessed, not modified.
fn contains_key_marks_accessed_not_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("some key", 1)?;
    reset_flags(&mut session);
    ensure!(
        session.contains_key("some key")?,
        "contains_key of a present key gave false"
    );
    flags(&session, true, false, "contains_key")
}

/// Django `test_values`: `values()` of an empty session is empty and marks it accessed; later it
/// gives the values; never modified.
fn values_mark_accessed_not_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    ensure_eq!(
        session.values()?,
        Vec::<Value>::new(),
        "values of an empty session"
    );
    ensure!(
        session.accessed(),
        "values did not mark the session accessed"
    );
    session.insert("some key", 1)?;
    reset_flags(&mut session);
    ensure_eq!(session.values()?, vec![json!(1)], "values");
    flags(&session, true, false, "values")
}

/// Django `test_keys`: `keys()` gives the keys, accessed and not modified.
fn keys_mark_accessed_not_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("x", 1)?;
    reset_flags(&mut session);
    ensure_eq!(session.keys()?, vec!["x".to_owned()], "keys");
    flags(&session, true, false, "keys")
}

/// Django `test_items`: `items()` gives the pairs, accessed and not modified.
fn items_mark_accessed_not_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("x", 1)?;
    reset_flags(&mut session);
    ensure_eq!(session.items()?, vec![("x".to_owned(), json!(1))], "items");
    flags(&session, true, false, "items")
}

/// Django `test_clear`: `clear()` empties the session and marks it accessed and modified.
fn clear_empties_and_marks_accessed_and_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("x", 1)?;
    reset_flags(&mut session);
    ensure_eq!(
        session.items()?,
        vec![("x".to_owned(), json!(1))],
        "items before clear"
    );
    session.clear();
    ensure_eq!(
        session.items()?,
        Vec::<(String, Value)>::new(),
        "items after clear"
    );
    flags(&session, true, true, "clear")
}

/// `clear()` sets the data to `{}` without loading (`SessionBase.clear`), so the stored data of an
/// unloaded session is not read back afterwards.
fn clear_of_unloaded_session_discards_the_stored_data(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (_, key) = saved(&engine, json!({"stored": 1}))?;
    let mut session = engine.session(Some(&key));
    session.clear();
    ensure_eq!(
        session.get_value("stored")?,
        None,
        "a stored value after clear"
    );
    ensure!(
        session.modified(),
        "clear did not mark the session modified"
    );
    engine.store().delete(&key)?;
    Ok(())
}

/// A typed `get` of a value that does not deserialize into the type fails with a type error,
/// never a wrong value or a panic.
fn get_of_a_value_of_another_type_fails_with_a_type_error(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("n", "not a number")?;
    match session.get::<i64>("n") {
        Err(sessionkit::Error::Type(_)) => Ok(()),
        other => Err(Failure::new(format!(
            "get::<i64> of a string gave {other:?}"
        ))),
    }
}

/// Django `SessionBaseTests.test_test_cookie`: no test cookie at first; after
/// `set_test_cookie` it worked; after `delete_test_cookie` it is gone.
fn test_cookie_is_set_checked_and_deleted(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    ensure!(
        !session.contains_key(TEST_COOKIE_NAME)?,
        "a fresh session has the test cookie"
    );
    ensure!(
        !session.test_cookie_worked()?,
        "test_cookie_worked before set_test_cookie"
    );
    session.set_test_cookie()?;
    ensure!(
        session.test_cookie_worked()?,
        "test_cookie_worked after set_test_cookie is false"
    );
    ensure_eq!(
        session.get_value(TEST_COOKIE_NAME)?,
        Some(json!(TEST_COOKIE_VALUE)),
        "the stored test cookie"
    );
    session.delete_test_cookie()?;
    ensure!(
        !session.contains_key(TEST_COOKIE_NAME)?,
        "the test cookie survived delete_test_cookie"
    );
    Ok(())
}

/// The sync `delete_test_cookie` is `del s[name]`, so it marks the session modified (Django's
/// `adelete_test_cookie` does not: see `delete_test_cookie_after_an_async_load_marks_modified`).
fn delete_test_cookie_marks_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.set_test_cookie()?;
    reset_flags(&mut session);
    session.delete_test_cookie()?;
    ensure!(
        session.modified(),
        "delete_test_cookie did not mark the session modified"
    );
    Ok(())
}

/// Django `SessionBaseTests.test_is_empty`: a new session is empty.
fn new_session_is_empty(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let session = engine.session(None);
    ensure!(
        session.is_empty(),
        "a new session without a key is not empty"
    );
    Ok(())
}

/// `is_empty` is true only without a key *and* without data (`SessionBase.is_empty`): a keyed
/// session is not empty even before anything is loaded.
fn session_with_a_key_is_not_empty_even_without_data(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (_, key) = saved(&engine, json!({}))?;
    let session = engine.session(Some(&key));
    let empty = session.is_empty();
    engine.store().delete(&key)?;
    ensure!(!empty, "a session with a valid key counts as empty");
    Ok(())
}

/// `is_empty` never loads the session (`SessionBase.is_empty` reads the `_session_cache` attribute,
/// never `_session`).
fn is_empty_never_loads(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (_, key) = saved(&engine, json!({"x": 1}))?;
    let session = engine.session(Some(&key));
    let _ = session.is_empty();
    let loaded = session.is_loaded();
    engine.store().delete(&key)?;
    ensure!(!loaded, "is_empty loaded the session");
    ensure!(!session.accessed(), "is_empty marked the session accessed");
    Ok(())
}
