//! The async surface (Django 5.1's `a*` methods): the async variants of
//! `SessionTestsMixin`, `DatabaseSessionTests.test_aclear_expired`,
//! `CacheSessionTests.test_create_and_save_async` and `SessionBaseTests.test_atest_cookie`.
//! Django's engine-reaching `a*` methods are the `_async` twins; its `a*` dictionary methods
//! are `ensure_loaded_async` followed by the plain method (see [`loaded`]), plus one case for
//! the `adelete_test_cookie` quirk sessionkit does not copy.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use sessionkit::{Capabilities, Expiry, KeyFormat, Session, TEST_COOKIE_NAME};

use super::{
    expiry::{cookie_age, now},
    lifecycle::is_update_error,
    reason,
};
use crate::{
    Case, Failure, Group, Target,
    support::{CaseResult, block_on, key_of, map, new_key, saved},
};

pub(super) fn cases() -> Vec<Case> {
    use Group::Async as G;
    let revocable =
        |case: Case| case.requires(Capabilities::SERVER_SIDE_INVALIDATION, reason::REVOCATION);
    let django_keys = |case: Case, why| case.key_format(KeyFormat::DjangoSessionKey, why);
    vec![
        case!(G, get_async_of_missing_key_is_none),
        case!(
            G,
            insert_async_marks_modified_and_pop_async_returns_the_value
        ),
        case!(
            G,
            pop_async_returns_the_value_and_marks_accessed_and_modified
        ),
        case!(
            G,
            pop_async_of_missing_key_returns_none_without_marking_modified
        ),
        case!(G, setdefault_async_inserts_once_and_marks_modified),
        case!(G, update_async_marks_accessed_and_modified),
        case!(G, contains_key_async_marks_accessed_not_modified),
        case!(G, values_async_mark_accessed_not_modified),
        case!(G, keys_async_mark_accessed_not_modified),
        case!(G, items_async_mark_accessed_not_modified),
        django_keys(
            case!(G, save_async_makes_the_key_exist),
            reason::EXISTS_MEANINGLESS,
        ),
        case!(G, save_async_keeps_the_data),
        case!(G, load_async_gives_the_saved_data),
        django_keys(
            case!(G, create_async_then_save_async_keeps_the_record),
            reason::EXISTS_MEANINGLESS,
        ),
        revocable(case!(G, delete_async_removes_the_session)),
        case!(G, flush_async_deletes_the_record_and_forgets_the_key),
        revocable(case!(G, cycle_key_async_moves_the_data_to_a_new_key)),
        case!(G, cycle_key_async_of_an_unloaded_session_keeps_the_data),
        case!(G, save_async_after_an_invalid_key_mints_a_new_key),
        revocable(case!(
            G,
            save_async_does_not_resurrect_a_session_deleted_elsewhere
        )),
        django_keys(
            case!(G, load_async_of_unknown_key_creates_nothing_cve_2015_5143),
            reason::NO_STORE,
        ),
        case!(G, default_expiry_async_is_the_cookie_age),
        case!(G, custom_expiry_async_in_seconds),
        case!(G, custom_expiry_async_as_a_duration),
        case!(G, custom_expiry_async_as_a_date),
        case!(G, custom_expiry_async_reset_restores_the_cookie_age),
        case!(
            G,
            expire_at_browser_close_async_follows_the_setting_and_the_expiry
        ),
        django_keys(
            case!(G, past_expiry_date_hides_the_session_async),
            reason::EXPIRY_19201,
        ),
        case!(G, clear_expired_async_removes_expired_sessions)
            .requires(Capabilities::CLEAR_EXPIRED, reason::CLEAR_EXPIRED)
            .exclusive(),
        case!(G, test_cookie_async_is_set_checked_and_deleted),
        case!(G, delete_test_cookie_after_an_async_load_marks_modified),
        case!(G, async_session_moves_between_worker_threads),
    ]
}

/// The session with its data loaded on tokio's blocking pool (`ensure_loaded_async`), for a
/// plain dictionary operation: how async code spells Django's `a…` dictionary methods
/// (`aget` is `loaded(s).await?.get(…)`).
async fn loaded(session: &mut Session) -> Result<&mut Session, sessionkit::Error> {
    session.ensure_loaded_async().await?;
    Ok(session)
}

/// Runs an async case body on a fresh runtime.
fn run_async(body: impl Future<Output = CaseResult>) -> CaseResult {
    block_on(body)?
}

/// Clears both flags, as Django's tests do between steps.
fn reset_flags(session: &mut Session) {
    session.set_accessed(false);
    session.set_modified(false);
}

/// Checks both flags at once.
fn flags(session: &Session, accessed: bool, modified: bool, after: &str) -> CaseResult {
    ensure_eq!(
        (session.accessed(), session.modified()),
        (accessed, modified),
        "(accessed, modified) after {after}"
    );
    Ok(())
}

/// Django `test_get_empty_async`: `aget` of a missing key is `None`.
fn get_async_of_missing_key_is_none(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        ensure_eq!(
            loaded(&mut session).await?.get::<Value>("cat")?,
            None,
            "aget(\"cat\")"
        );
        flags(&session, true, false, "aget")
    })
}

/// Django `test_store_async`: `aset` marks the session modified; `apop` gives the value back.
fn insert_async_marks_modified_and_pop_async_returns_the_value(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        loaded(&mut session).await?.insert("cat", "dog")?;
        ensure!(session.modified(), "aset did not mark the session modified");
        ensure_eq!(
            loaded(&mut session).await?.pop::<String>("cat")?,
            Some("dog".to_owned()),
            "apop"
        );
        Ok(())
    })
}

/// Django `test_pop_async`: `apop` of a present key returns and removes it; accessed and
/// modified.
fn pop_async_returns_the_value_and_marks_accessed_and_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        loaded(&mut session).await?.insert("some key", "exists")?;
        reset_flags(&mut session);
        let popped = loaded(&mut session).await?.pop::<String>("some key")?;
        ensure_eq!(popped, Some("exists".to_owned()), "apop");
        flags(&session, true, true, "apop of a present key")?;
        ensure_eq!(
            loaded(&mut session).await?.get::<Value>("some key")?,
            None,
            "aget after apop"
        );
        Ok(())
    })
}

/// Django `test_pop_default_async`, `..._named_argument_async` and
/// `test_pop_no_default_keyerror_raised_async`: `apop` of a missing key gives `None`, accessed,
/// not modified.
fn pop_async_of_missing_key_returns_none_without_marking_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        ensure_eq!(
            loaded(&mut session).await?.pop::<String>("some key")?,
            None,
            "apop of a missing key"
        );
        flags(&session, true, false, "apop of a missing key")
    })
}

/// Django `test_setdefault_async`: inserts once, then returns the stored value; modified.
fn setdefault_async_inserts_once_and_marks_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        ensure_eq!(
            loaded(&mut session).await?.setdefault("foo", "bar")?,
            json!("bar"),
            "first"
        );
        ensure_eq!(
            loaded(&mut session).await?.setdefault("foo", "baz")?,
            json!("bar"),
            "second"
        );
        flags(&session, true, true, "asetdefault")
    })
}

/// Django `test_update_async`: `aupdate` marks accessed and modified; the value is there.
fn update_async_marks_accessed_and_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        loaded(&mut session)
            .await?
            .update(map(json!({"update key": 1})))?;
        flags(&session, true, true, "aupdate")?;
        ensure_eq!(
            loaded(&mut session).await?.get::<i64>("update key")?,
            Some(1),
            "the updated value"
        );
        Ok(())
    })
}

/// Django `test_has_key_async`: `ahas_key` marks accessed, not modified.
fn contains_key_async_marks_accessed_not_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        loaded(&mut session).await?.insert("some key", 1)?;
        reset_flags(&mut session);
        ensure!(
            loaded(&mut session).await?.contains_key("some key")?,
            "ahas_key gave false"
        );
        flags(&session, true, false, "ahas_key")
    })
}

/// Django `test_values_async`: `avalues` is empty then `[1]`; accessed, never modified.
fn values_async_mark_accessed_not_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        ensure_eq!(
            loaded(&mut session).await?.values()?,
            Vec::<Value>::new(),
            "avalues of empty"
        );
        ensure!(
            session.accessed(),
            "avalues did not mark the session accessed"
        );
        loaded(&mut session).await?.insert("some key", 1)?;
        reset_flags(&mut session);
        ensure_eq!(
            loaded(&mut session).await?.values()?,
            vec![json!(1)],
            "avalues"
        );
        flags(&session, true, false, "avalues")
    })
}

/// Django `test_keys_async`.
fn keys_async_mark_accessed_not_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        loaded(&mut session).await?.insert("x", 1)?;
        reset_flags(&mut session);
        ensure_eq!(
            loaded(&mut session).await?.keys()?,
            vec!["x".to_owned()],
            "akeys"
        );
        flags(&session, true, false, "akeys")
    })
}

/// Django `test_items_async`.
fn items_async_mark_accessed_not_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        loaded(&mut session).await?.insert("x", 1)?;
        reset_flags(&mut session);
        ensure_eq!(
            loaded(&mut session).await?.items()?,
            vec![("x".to_owned(), json!(1))],
            "aitems"
        );
        flags(&session, true, false, "aitems")
    })
}

/// Django `test_save_async`: after `asave()`, the key exists.
fn save_async_makes_the_key_exist(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        session.save_async().await?;
        let key = key_of(&session)?;
        let exists = session.exists_async(&key).await?;
        session.delete_async().await?;
        ensure!(exists, "aexists of the saved key gave false");
        Ok(())
    })
}

/// Django `test_save_doesnt_clear_data_async`.
fn save_async_keeps_the_data(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        loaded(&mut session).await?.insert("a", "b")?;
        session.save_async().await?;
        let value = loaded(&mut session).await?.get::<String>("a")?;
        session.delete_async().await?;
        ensure_eq!(value, Some("b".to_owned()), "the value after asave");
        Ok(())
    })
}

/// `aload` of a saved session gives its data.
fn load_async_gives_the_saved_data(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (_, key) = saved(&engine, json!({"k": "v"}))?;
    run_async(async {
        let mut session = engine.session(Some(&key));
        let loaded = session.load_async().await?;
        session.delete_async().await?;
        ensure_eq!(loaded, map(json!({"k": "v"})), "aload");
        Ok(())
    })
}

/// Django `CacheSessionTests.test_create_and_save_async`.
fn create_async_then_save_async_keeps_the_record(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        session.create_async().await?;
        session.save_async().await?;
        let key = key_of(&session)?;
        let exists = session.exists_async(&key).await?;
        session.delete_async().await?;
        ensure!(exists, "the session does not exist after acreate and asave");
        Ok(())
    })
}

/// Django `test_delete_async`.
fn delete_async_removes_the_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (_, key) = saved(&engine, json!({"x": 1}))?;
    run_async(async {
        let mut session = engine.session(Some(&key));
        session.delete_async().await?;
        ensure!(
            !session.exists_async(&key).await?,
            "the key still exists after adelete"
        );
        Ok(())
    })
}

/// Django `test_flush_async`.
fn flush_async_deletes_the_record_and_forgets_the_key(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (mut session, key) = saved(&engine, json!({"foo": "bar"}))?;
    run_async(async move {
        reset_flags(&mut session);
        session.flush_async().await?;
        ensure!(
            !session.exists_async(&key).await?,
            "the old key still exists after aflush"
        );
        ensure_eq!(session.session_key(), None, "session_key after aflush");
        flags(&session, true, true, "aflush")?;
        ensure_eq!(
            loaded(&mut session).await?.get::<String>("foo")?,
            None,
            "the data after aflush"
        );
        Ok(())
    })
}

/// Django `test_cycle_async`.
fn cycle_key_async_moves_the_data_to_a_new_key(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (mut session, old) = saved(&engine, json!({"a": "c", "b": "d"}))?;
    run_async(async move {
        let items = loaded(&mut session).await?.items()?;
        session.cycle_key_async().await?;
        let new = key_of(&session)?;
        let old_exists = session.exists_async(&old).await?;
        let new_exists = session.exists_async(&new).await?;
        let items_after = loaded(&mut session).await?.items()?;
        session.delete_async().await?;
        ensure!(new != old, "acycle_key kept the old key");
        ensure!(!old_exists, "the old key still exists after acycle_key");
        ensure!(new_exists, "the new key does not exist after acycle_key");
        ensure_eq!(items_after, items, "items after acycle_key");
        Ok(())
    })
}

/// Django `test_cycle_with_no_session_cache_async`.
fn cycle_key_async_of_an_unloaded_session_keeps_the_data(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (_, key) = saved(&engine, json!({"a": "c", "b": "d"}))?;
    run_async(async {
        let mut session = engine.session(Some(&key));
        session.cycle_key_async().await?;
        let items = loaded(&mut session).await?.items()?;
        let new = key_of(&session)?;
        let again = engine.session(Some(&new)).load_async().await?;
        session.delete_async().await?;
        let expected = vec![("a".to_owned(), json!("c")), ("b".to_owned(), json!("d"))];
        ensure_eq!(
            items,
            expected,
            "items after acycle_key of an unloaded session"
        );
        ensure_eq!(
            again,
            map(json!({"a": "c", "b": "d"})),
            "the data under the new key"
        );
        Ok(())
    })
}

/// Django `test_invalid_key_async`.
fn save_async_after_an_invalid_key_mints_a_new_key(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(Some("1"));
        session.save_async().await?;
        let key = key_of(&session)?;
        let cat = loaded(&mut session).await?.get::<Value>("cat")?;
        session.delete_async().await?;
        ensure!(key != "1", "asave kept the invalid key \"1\"");
        ensure_eq!(cat, None, "data of the new session");
        Ok(())
    })
}

/// Django `test_session_asave_does_not_resurrect_session_logged_out_in_other_context`.
fn save_async_does_not_resurrect_a_session_deleted_elsewhere(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut first = engine.session(None);
        loaded(&mut first).await?.insert("test_data", "value1")?;
        first.save_async().await?;
        let key = key_of(&first)?;
        engine.session(Some(&key)).delete_async().await?;
        loaded(&mut first).await?.insert("test_data", "value2")?;
        match first.save_async().await {
            Err(error) if is_update_error(&error) => {}
            other => {
                return Err(Failure::new(format!(
                    "asave of a session deleted elsewhere gave {other:?}, expected UpdateError"
                )));
            }
        }
        ensure!(
            first.load_async().await?.is_empty(),
            "aload after the failed asave gave data"
        );
        ensure!(
            !first.exists_async(&key).await?,
            "the deleted session exists again"
        );
        Ok(())
    })
}

/// Django `test_session_load_does_not_create_record_async` (CVE-2015-5143).
fn load_async_of_unknown_key_creates_nothing_cve_2015_5143(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let unknown = new_key();
        let mut session = engine.session(Some(&unknown));
        ensure!(
            session.load_async().await?.is_empty(),
            "aload of an unknown key gave data"
        );
        ensure!(
            !session.exists_async(&unknown).await?,
            "aload of an unknown key created it"
        );
        loaded(&mut session).await?.insert("x", 1)?;
        session.save_async().await?;
        let key = key_of(&session)?;
        session.delete_async().await?;
        ensure!(key != unknown, "the unknown key was reused");
        Ok(())
    })
}

/// Django `test_default_expiry_async`.
fn default_expiry_async_is_the_cookie_age(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        ensure_eq!(
            loaded(&mut session).await?.get_expiry_age()?,
            cookie_age(&engine),
            "default age"
        );
        loaded(&mut session).await?.set_expiry(Expiry::Seconds(0))?;
        let age = loaded(&mut session).await?.get_expiry_age()?;
        ensure_eq!(age, cookie_age(&engine), "age after aset_expiry(0)");
        Ok(())
    })
}

/// Django `test_custom_expiry_seconds_async` (with the host clock fixed).
fn custom_expiry_async_in_seconds(t: &Target) -> CaseResult {
    let (engine, _clock) = t.engine_with_clock()?;
    run_async(async {
        let mut session = engine.session(None);
        loaded(&mut session)
            .await?
            .set_expiry(Expiry::Seconds(10))?;
        let expected = now(&engine) + Duration::seconds(10);
        ensure_eq!(
            loaded(&mut session).await?.get_expiry_date()?,
            expected,
            "expiry date"
        );
        ensure_eq!(
            loaded(&mut session).await?.get_expiry_age()?,
            10,
            "expiry age"
        );
        Ok(())
    })
}

/// Django `test_custom_expiry_timedelta_async`.
fn custom_expiry_async_as_a_duration(t: &Target) -> CaseResult {
    let (engine, _clock) = t.engine_with_clock()?;
    run_async(async {
        let mut session = engine.session(None);
        loaded(&mut session)
            .await?
            .set_expiry(Expiry::In(Duration::seconds(10)))?;
        let expected = now(&engine) + Duration::seconds(10);
        ensure_eq!(
            loaded(&mut session).await?.get_expiry_date()?,
            expected,
            "expiry date"
        );
        ensure_eq!(
            loaded(&mut session).await?.get_expiry_age()?,
            10,
            "expiry age"
        );
        Ok(())
    })
}

/// Django `test_custom_expiry_datetime_async`.
fn custom_expiry_async_as_a_date(t: &Target) -> CaseResult {
    let (engine, _clock) = t.engine_with_clock()?;
    run_async(async {
        let mut session = engine.session(None);
        let date = now(&engine) + Duration::seconds(10);
        loaded(&mut session).await?.set_expiry(Expiry::At(date))?;
        ensure_eq!(
            loaded(&mut session).await?.get_expiry_date()?,
            date,
            "expiry date"
        );
        ensure_eq!(
            loaded(&mut session).await?.get_expiry_age()?,
            10,
            "expiry age"
        );
        Ok(())
    })
}

/// Django `test_custom_expiry_reset_async`.
fn custom_expiry_async_reset_restores_the_cookie_age(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        loaded(&mut session).await?.set_expiry(Expiry::Default)?;
        loaded(&mut session)
            .await?
            .set_expiry(Expiry::Seconds(10))?;
        loaded(&mut session).await?.set_expiry(Expiry::Default)?;
        let age = loaded(&mut session).await?.get_expiry_age()?;
        ensure_eq!(age, cookie_age(&engine), "age after the reset");
        Ok(())
    })
}

/// Django `test_get_expire_at_browser_close_async`.
fn expire_at_browser_close_async_follows_the_setting_and_the_expiry(t: &Target) -> CaseResult {
    for setting in [false, true] {
        let engine = t.engine_with(|s| s.session_expire_at_browser_close = setting)?;
        run_async(async {
            let mut session = engine.session(None);
            for (expiry, expected) in [
                (Expiry::Seconds(10), false),
                (Expiry::Seconds(0), true),
                (Expiry::Default, setting),
            ] {
                let what = format!("{expiry:?} with SESSION_EXPIRE_AT_BROWSER_CLOSE={setting}");
                loaded(&mut session).await?.set_expiry(expiry)?;
                let at_close = loaded(&mut session).await?.get_expire_at_browser_close()?;
                ensure_eq!(at_close, expected, "{what}");
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Django `test_actual_expiry_async`.
fn past_expiry_date_hides_the_session_async(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        loaded(&mut session).await?.insert("foo", "bar")?;
        loaded(&mut session)
            .await?
            .set_expiry(Expiry::In(-Duration::seconds(10)))?;
        session.save_async().await?;
        let key = key_of(&session)?;
        let mut again = engine.session(Some(&key));
        let stale = loaded(&mut again).await?.get::<String>("foo")?;
        engine.store().delete(&key)?;
        ensure_eq!(stale, None, "\"foo\" of the expired session");
        Ok(())
    })
}

/// Django `DatabaseSessionTests.test_aclear_expired`: of a live and an expired session,
/// `aclear_expired` removes the expired one.
fn clear_expired_async_removes_expired_sessions(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut live = engine.session(None);
        loaded(&mut live).await?.insert("x", 1)?;
        loaded(&mut live)
            .await?
            .set_expiry(Expiry::At(Utc::now() + Duration::hours(1)))?;
        live.save_async().await?;
        let mut expired = engine.session(None);
        loaded(&mut expired).await?.insert("x", 1)?;
        loaded(&mut expired)
            .await?
            .set_expiry(Expiry::At(Utc::now() - Duration::hours(1)))?;
        expired.save_async().await?;
        let (live_key, expired_key) = (key_of(&live)?, key_of(&expired)?);
        let removed = engine.clear_expired_async().await?;
        let live_exists = live.exists_async(&live_key).await?;
        let expired_exists = live.exists_async(&expired_key).await?;
        live.delete_async().await?;
        engine.store().delete(&expired_key)?;
        ensure!(
            removed >= 1,
            "aclear_expired removed {removed}, but this case left 1 expired"
        );
        ensure!(live_exists, "aclear_expired removed the live session");
        ensure!(!expired_exists, "the expired session is still stored");
        Ok(())
    })
}

/// Django `SessionBaseTests.test_atest_cookie`.
fn test_cookie_async_is_set_checked_and_deleted(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        ensure!(
            !loaded(&mut session).await?.contains_key(TEST_COOKIE_NAME)?,
            "a fresh session has it"
        );
        loaded(&mut session).await?.set_test_cookie()?;
        ensure!(
            loaded(&mut session).await?.test_cookie_worked()?,
            "atest_cookie_worked gave false"
        );
        loaded(&mut session).await?.delete_test_cookie()?;
        ensure!(
            !loaded(&mut session).await?.contains_key(TEST_COOKIE_NAME)?,
            "it survived the delete"
        );
        Ok(())
    })
}

/// Django's `adelete_test_cookie` deletes from the dict directly and forgets to mark the session
/// modified, so the removal is never saved. sessionkit has no separate async form: after
/// `ensure_loaded_async`, `delete_test_cookie` is Django's sync `del s[name]` and marks the
/// session modified, and the removal survives a save and a reload.
fn delete_test_cookie_after_an_async_load_marks_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut first = engine.session(None);
        loaded(&mut first).await?.set_test_cookie()?;
        first.save_async().await?;
        let mut session = engine.session(Some(&key_of(&first)?));
        loaded(&mut session).await?;
        reset_flags(&mut session);
        session.delete_test_cookie()?;
        let modified = session.modified();
        session.save_async().await?;
        let mut again = engine.session(Some(&key_of(&session)?));
        let survived = loaded(&mut again).await?.contains_key(TEST_COOKIE_NAME)?;
        again.delete_async().await?;
        ensure!(
            modified,
            "delete_test_cookie did not mark the session modified"
        );
        ensure!(!survived, "the test cookie survived the delete and a save");
        Ok(())
    })
}

/// A session and its async methods can be driven from a multi-threaded runtime's worker
/// threads (the futures are `Send`), with the engine calls on the blocking pool.
fn async_session_moves_between_worker_threads(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    let task = runtime.spawn(async move {
        let mut session = engine.session(None);
        loaded(&mut session).await?.insert("moved", true)?;
        session.save_async().await?;
        tokio::task::yield_now().await;
        let key = key_of(&session)?;
        let mut again = engine.session(Some(&key));
        let moved = loaded(&mut again).await?.get::<bool>("moved")?;
        again.delete_async().await?;
        ensure_eq!(moved, Some(true), "the value saved on a worker thread");
        Ok(())
    });
    runtime
        .block_on(task)
        .map_err(|error| Failure::new(format!("the task failed: {error}")))?
}
