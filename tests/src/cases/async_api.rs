//! The `_async` twins (Django 5.1's `a*` methods, §4.5): the async variants of
//! `SessionTestsMixin`, `DatabaseSessionTests.test_aclear_expired`,
//! `CacheSessionTests.test_create_and_save_async` and `SessionBaseTests.test_atest_cookie`, plus
//! the `adelete_test_cookie` quirk.

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
        case!(
            G,
            django_compatible_delete_test_cookie_async_does_not_mark_modified
        ),
        case!(G, async_session_moves_between_worker_threads),
    ]
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
            session.get_async::<Value>("cat").await?,
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
        session.insert_async("cat", "dog").await?;
        ensure!(session.modified(), "aset did not mark the session modified");
        ensure_eq!(
            session.pop_async::<String>("cat").await?,
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
        session.insert_async("some key", "exists").await?;
        reset_flags(&mut session);
        let popped = session.pop_async::<String>("some key").await?;
        ensure_eq!(popped, Some("exists".to_owned()), "apop");
        flags(&session, true, true, "apop of a present key")?;
        ensure_eq!(
            session.get_async::<Value>("some key").await?,
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
            session.pop_async::<String>("some key").await?,
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
            session.setdefault_async("foo", "bar").await?,
            json!("bar"),
            "first"
        );
        ensure_eq!(
            session.setdefault_async("foo", "baz").await?,
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
        session.update_async(map(json!({"update key": 1}))).await?;
        flags(&session, true, true, "aupdate")?;
        ensure_eq!(
            session.get_async::<i64>("update key").await?,
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
        session.insert_async("some key", 1).await?;
        reset_flags(&mut session);
        ensure!(
            session.contains_key_async("some key").await?,
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
            session.values_async().await?,
            Vec::<Value>::new(),
            "avalues of empty"
        );
        ensure!(
            session.accessed(),
            "avalues did not mark the session accessed"
        );
        session.insert_async("some key", 1).await?;
        reset_flags(&mut session);
        ensure_eq!(session.values_async().await?, vec![json!(1)], "avalues");
        flags(&session, true, false, "avalues")
    })
}

/// Django `test_keys_async`.
fn keys_async_mark_accessed_not_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        session.insert_async("x", 1).await?;
        reset_flags(&mut session);
        ensure_eq!(session.keys_async().await?, vec!["x".to_owned()], "akeys");
        flags(&session, true, false, "akeys")
    })
}

/// Django `test_items_async`.
fn items_async_mark_accessed_not_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        session.insert_async("x", 1).await?;
        reset_flags(&mut session);
        ensure_eq!(
            session.items_async().await?,
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
        session.insert_async("a", "b").await?;
        session.save_async().await?;
        let value = session.get_async::<String>("a").await?;
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
            session.get_async::<String>("foo").await?,
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
        let items = session.items_async().await?;
        session.cycle_key_async().await?;
        let new = key_of(&session)?;
        let old_exists = session.exists_async(&old).await?;
        let new_exists = session.exists_async(&new).await?;
        let items_after = session.items_async().await?;
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
        let items = session.items_async().await?;
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
        let cat = session.get_async::<Value>("cat").await?;
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
        first.insert_async("test_data", "value1").await?;
        first.save_async().await?;
        let key = key_of(&first)?;
        engine.session(Some(&key)).delete_async().await?;
        first.insert_async("test_data", "value2").await?;
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
        session.insert_async("x", 1).await?;
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
            session.get_expiry_age_async().await?,
            cookie_age(&engine),
            "default age"
        );
        session.set_expiry_async(Expiry::Seconds(0)).await?;
        let age = session.get_expiry_age_async().await?;
        ensure_eq!(age, cookie_age(&engine), "age after aset_expiry(0)");
        Ok(())
    })
}

/// Django `test_custom_expiry_seconds_async` (with the host clock fixed).
fn custom_expiry_async_in_seconds(t: &Target) -> CaseResult {
    let (engine, _clock) = t.engine_with_clock()?;
    run_async(async {
        let mut session = engine.session(None);
        session.set_expiry_async(Expiry::Seconds(10)).await?;
        let expected = now(&engine) + Duration::seconds(10);
        ensure_eq!(
            session.get_expiry_date_async().await?,
            expected,
            "expiry date"
        );
        ensure_eq!(session.get_expiry_age_async().await?, 10, "expiry age");
        Ok(())
    })
}

/// Django `test_custom_expiry_timedelta_async`.
fn custom_expiry_async_as_a_duration(t: &Target) -> CaseResult {
    let (engine, _clock) = t.engine_with_clock()?;
    run_async(async {
        let mut session = engine.session(None);
        session
            .set_expiry_async(Expiry::In(Duration::seconds(10)))
            .await?;
        let expected = now(&engine) + Duration::seconds(10);
        ensure_eq!(
            session.get_expiry_date_async().await?,
            expected,
            "expiry date"
        );
        ensure_eq!(session.get_expiry_age_async().await?, 10, "expiry age");
        Ok(())
    })
}

/// Django `test_custom_expiry_datetime_async`.
fn custom_expiry_async_as_a_date(t: &Target) -> CaseResult {
    let (engine, _clock) = t.engine_with_clock()?;
    run_async(async {
        let mut session = engine.session(None);
        let date = now(&engine) + Duration::seconds(10);
        session.set_expiry_async(Expiry::At(date)).await?;
        ensure_eq!(session.get_expiry_date_async().await?, date, "expiry date");
        ensure_eq!(session.get_expiry_age_async().await?, 10, "expiry age");
        Ok(())
    })
}

/// Django `test_custom_expiry_reset_async`.
fn custom_expiry_async_reset_restores_the_cookie_age(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        session.set_expiry_async(Expiry::Default).await?;
        session.set_expiry_async(Expiry::Seconds(10)).await?;
        session.set_expiry_async(Expiry::Default).await?;
        let age = session.get_expiry_age_async().await?;
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
                session.set_expiry_async(expiry).await?;
                let at_close = session.get_expire_at_browser_close_async().await?;
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
        session.insert_async("foo", "bar").await?;
        session
            .set_expiry_async(Expiry::In(-Duration::seconds(10)))
            .await?;
        session.save_async().await?;
        let key = key_of(&session)?;
        let mut again = engine.session(Some(&key));
        let stale = again.get_async::<String>("foo").await?;
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
        live.insert_async("x", 1).await?;
        live.set_expiry_async(Expiry::At(Utc::now() + Duration::hours(1)))
            .await?;
        live.save_async().await?;
        let mut expired = engine.session(None);
        expired.insert_async("x", 1).await?;
        expired
            .set_expiry_async(Expiry::At(Utc::now() - Duration::hours(1)))
            .await?;
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
            !session.contains_key_async(TEST_COOKIE_NAME).await?,
            "a fresh session has it"
        );
        session.set_test_cookie_async().await?;
        ensure!(
            session.test_cookie_worked_async().await?,
            "atest_cookie_worked gave false"
        );
        session.delete_test_cookie_async().await?;
        ensure!(
            !session.contains_key_async(TEST_COOKIE_NAME).await?,
            "it survived the delete"
        );
        Ok(())
    })
}

/// Quirk, Django-compatible: `adelete_test_cookie` deletes from the dict directly and does not
/// mark the session modified (the sync `delete_test_cookie` does).
fn django_compatible_delete_test_cookie_async_does_not_mark_modified(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    run_async(async {
        let mut session = engine.session(None);
        session.set_test_cookie_async().await?;
        reset_flags(&mut session);
        session.delete_test_cookie_async().await?;
        ensure!(
            !session.modified(),
            "adelete_test_cookie marked the session modified"
        );
        ensure!(
            !session.contains_key_async(TEST_COOKIE_NAME).await?,
            "the test cookie survived"
        );
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
        session.insert_async("moved", true).await?;
        session.save_async().await?;
        tokio::task::yield_now().await;
        let key = key_of(&session)?;
        let mut again = engine.session(Some(&key));
        let moved = again.get_async::<bool>("moved").await?;
        again.delete_async().await?;
        ensure_eq!(moved, Some(true), "the value saved on a worker thread");
        Ok(())
    });
    runtime
        .block_on(task)
        .map_err(|error| Failure::new(format!("the task failed: {error}")))?
}
