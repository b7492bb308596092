//! Expiry (Django's `get_expiry_age`, `get_expiry_date`, `set_expiry`): the arithmetic, the
//! browser-close flag, server-side expiry and `clear_expired`; ports of `SessionTestsMixin` 45–60,
//! `DatabaseSessionTests` 69 and `FileSessionTests.test_clearsessions_command` (sync), plus the
//! integer-expiry quirk.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::json;
use sessionkit::{Capabilities, Engine, ErrorKind, Expiry, KeyFormat};

use super::reason;
use crate::{
    Case, Failure, Group, Target,
    support::{
        CaseResult, expect_kind, expired_write, key_of, live_write, new_key, reopened,
        stored_expiry_matches, timestamp,
    },
};

pub(super) fn cases() -> Vec<Case> {
    use Group::Expiry as G;
    let server_side =
        |case: Case| case.key_format(KeyFormat::DjangoSessionKey, reason::EXPIRY_19201);
    let clears = |case: Case| {
        case.requires(Capabilities::CLEAR_EXPIRED, reason::CLEAR_EXPIRED)
            .exclusive()
    };
    vec![
        case!(G, default_expiry_is_the_cookie_age),
        case!(G, custom_expiry_in_seconds),
        case!(G, custom_expiry_as_a_duration),
        case!(G, custom_expiry_as_a_date),
        case!(G, custom_expiry_reset_restores_the_cookie_age),
        case!(
            G,
            expire_at_browser_close_follows_the_setting_and_the_expiry
        ),
        case!(G, browser_close_expiry_keeps_the_cookie_age_server_side)
            .key_format(KeyFormat::DjangoSessionKey, reason::NO_RECORD),
        case!(G, django_compatible_expiry_false_means_browser_close),
        case!(G, expiry_age_drops_fractions_of_a_second),
        case!(G, integer_expiry_slides_from_the_last_save),
        case!(G, date_expiry_is_absolute),
        case!(G, saved_record_expires_at_the_expiry_date)
            .key_format(KeyFormat::DjangoSessionKey, reason::NO_RECORD),
        server_side(case!(G, past_expiry_date_hides_the_session)),
        server_side(case!(G, past_integer_expiry_hides_the_session)),
        server_side(case!(
            G,
            fixed_positive_integer_expiry_is_enforced_server_side
        ))
        .excludes(Capabilities::DECODED_DATA, reason::TTL_ON_THE_SERVER),
        clears(case!(
            G,
            clear_expired_removes_expired_sessions_and_keeps_live_ones
        )),
        clears(case!(
            G,
            clear_expired_judges_sessions_without_expiry_by_the_cookie_age
        ))
        .excludes(Capabilities::DECODED_DATA, reason::TTL_ON_THE_SERVER),
        clears(case!(
            G,
            save_of_key_cleared_after_expiry_fails_with_not_found
        ))
        .key_format(KeyFormat::DjangoSessionKey, reason::DJANGO_KEYS),
    ]
}

/// The cookie age the engine was opened with (`SESSION_COOKIE_AGE`).
pub(crate) fn cookie_age(engine: &Engine) -> i64 {
    engine.settings().session_cookie_age
}

/// The host clock's now (the `ManualClock` of a clocked engine).
pub(crate) fn now(engine: &Engine) -> DateTime<Utc> {
    engine.clock().now_utc()
}

/// Django `test_default_expiry`: the expiry age is `SESSION_COOKIE_AGE`, also after
/// `set_expiry(0)` (which only means "at browser close").
fn default_expiry_is_the_cookie_age(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    ensure_eq!(
        session.get_expiry_age()?,
        cookie_age(&engine),
        "default expiry age"
    );
    session.set_expiry(Expiry::Seconds(0))?;
    ensure_eq!(
        session.get_expiry_age()?,
        cookie_age(&engine),
        "expiry age after set_expiry(0)"
    );
    Ok(())
}

/// Django `test_custom_expiry_seconds`: `set_expiry(10)` gives date = modification + 10 s and
/// age 10 (a modification time in Python's microsecond precision).
fn custom_expiry_in_seconds(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    let modification = Utc::now().trunc_subsecs(6);
    session.set_expiry(Expiry::Seconds(10))?;
    let date = session.get_expiry_date_at(Some(modification), None)?;
    ensure_eq!(date, modification + Duration::seconds(10), "expiry date");
    ensure_eq!(
        session.get_expiry_age_at(Some(modification), None)?,
        10,
        "expiry age"
    );
    Ok(())
}

/// Django `test_custom_expiry_timedelta`: with the clock fixed, `set_expiry(timedelta(10 s))`
/// gives date = now + 10 s and age 10.
fn custom_expiry_as_a_duration(t: &Target) -> CaseResult {
    let (engine, _clock) = t.engine_with_clock()?;
    let mut session = engine.session(None);
    session.set_expiry(Expiry::In(Duration::seconds(10)))?;
    let expected = now(&engine) + Duration::seconds(10);
    ensure_eq!(session.get_expiry_date()?, expected, "expiry date");
    ensure_eq!(session.get_expiry_age()?, 10, "expiry age");
    Ok(())
}

/// Django `test_custom_expiry_datetime`: `set_expiry(modification + 10 s)` gives that date and
/// age 10.
fn custom_expiry_as_a_date(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    let modification = Utc::now().trunc_subsecs(6);
    session.set_expiry(Expiry::At(modification + Duration::seconds(10)))?;
    let date = session.get_expiry_date_at(Some(modification), None)?;
    ensure_eq!(date, modification + Duration::seconds(10), "expiry date");
    ensure_eq!(
        session.get_expiry_age_at(Some(modification), None)?,
        10,
        "expiry age"
    );
    Ok(())
}

/// Django `test_custom_expiry_reset`: `set_expiry(None)` after a custom expiry brings the age
/// back to `SESSION_COOKIE_AGE`.
fn custom_expiry_reset_restores_the_cookie_age(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.set_expiry(Expiry::Default)?;
    session.set_expiry(Expiry::Seconds(10))?;
    session.set_expiry(Expiry::Default)?;
    ensure_eq!(
        session.get_expiry_age()?,
        cookie_age(&engine),
        "expiry age after the reset"
    );
    Ok(())
}

/// Django `test_get_expire_at_browser_close`: with the setting off, expiry 10/0/None gives
/// False/True/False; with it on, False/True/True.
fn expire_at_browser_close_follows_the_setting_and_the_expiry(t: &Target) -> CaseResult {
    for setting in [false, true] {
        let engine = t.engine_with(|s| s.session_expire_at_browser_close = setting)?;
        let mut session = engine.session(None);
        for (expiry, expected) in [
            (Expiry::Seconds(10), false),
            (Expiry::Seconds(0), true),
            (Expiry::Default, setting),
            (Expiry::BrowserClose, true),
        ] {
            let what = format!("{expiry:?} with SESSION_EXPIRE_AT_BROWSER_CLOSE={setting}");
            session.set_expiry(expiry)?;
            ensure_eq!(session.get_expire_at_browser_close()?, expected, "{what}");
        }
    }
    Ok(())
}

/// Expiry 0 ("at browser close") still keeps the session on the server for
/// `SESSION_COOKIE_AGE`: the saved record expires at now + the cookie age.
fn browser_close_expiry_keeps_the_cookie_age_server_side(t: &Target) -> CaseResult {
    let (engine, _clock) = t.engine_with_clock()?;
    let mut session = engine.session(None);
    session.insert("x", 1)?;
    session.set_expiry(Expiry::BrowserClose)?;
    ensure!(
        session.get_expire_at_browser_close()?,
        "BrowserClose does not expire at close"
    );
    ensure_eq!(session.get_expiry_age()?, cookie_age(&engine), "expiry age");
    let expected = now(&engine) + Duration::seconds(cookie_age(&engine));
    session.save()?;
    let key = key_of(&session)?;
    let record = engine.store().load(&key)?;
    session.delete()?;
    let record = record.ok_or_else(|| Failure::new("the saved session has no record"))?;
    ensure!(
        stored_expiry_matches(&engine, record.expire_date, timestamp(expected)),
        "the record expires at {:?}, expected now + SESSION_COOKIE_AGE = {:?}",
        record.expire_date,
        timestamp(expected)
    );
    Ok(())
}

/// Quirk, Django-compatible: a stored `_session_expiry` of JSON `false` equals 0 in Python, so
/// it means "at browser close", and the age falls back to the cookie age.
fn django_compatible_expiry_false_means_browser_close(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("_session_expiry", false)?;
    ensure!(
        session.get_expire_at_browser_close()?,
        "expiry false does not expire at close"
    );
    ensure_eq!(
        session.get_expiry_age()?,
        cookie_age(&engine),
        "expiry age of expiry false"
    );
    Ok(())
}

/// Django's age of a date expiry is `delta.days * 86400 + delta.seconds`: fractions of a second
/// are dropped.
fn expiry_age_drops_fractions_of_a_second(t: &Target) -> CaseResult {
    let (engine, _clock) = t.engine_with_clock()?;
    let mut session = engine.session(None);
    let date = now(&engine) + Duration::milliseconds(10_750);
    session.set_expiry(Expiry::At(date))?;
    ensure_eq!(
        session.get_expiry_age()?,
        10,
        "age of an expiry 10.75 s away"
    );
    ensure_eq!(session.get_expiry_date()?, date, "date of the expiry");
    Ok(())
}

/// An integer expiry counts seconds of inactivity from the last save: as time
/// passes, the age stays and the date moves with it.
fn integer_expiry_slides_from_the_last_save(t: &Target) -> CaseResult {
    let (engine, clock) = t.engine_with_clock()?;
    let mut session = engine.session(None);
    session.set_expiry(Expiry::Seconds(100))?;
    let start = now(&engine);
    ensure_eq!(
        session.get_expiry_date()?,
        start + Duration::seconds(100),
        "date at the start"
    );
    clock.advance(Duration::seconds(30));
    ensure_eq!(session.get_expiry_age()?, 100, "age 30 s later");
    ensure_eq!(
        session.get_expiry_date()?,
        start + Duration::seconds(130),
        "date 30 s later"
    );
    Ok(())
}

/// A date expiry is absolute: as time passes, the age shrinks and the date stays.
fn date_expiry_is_absolute(t: &Target) -> CaseResult {
    let (engine, clock) = t.engine_with_clock()?;
    let mut session = engine.session(None);
    let date = now(&engine) + Duration::seconds(100);
    session.set_expiry(Expiry::At(date))?;
    clock.advance(Duration::seconds(30));
    ensure_eq!(session.get_expiry_age()?, 70, "age 30 s later");
    ensure_eq!(session.get_expiry_date()?, date, "date 30 s later");
    Ok(())
}

/// `save` stores `expire_date = get_expiry_date()` with modification = now, for each kind of
/// expiry.
fn saved_record_expires_at_the_expiry_date(t: &Target) -> CaseResult {
    let (engine, _clock) = t.engine_with_clock()?;
    let start = now(&engine);
    let fixed = start + Duration::seconds(7200) + Duration::microseconds(250_000);
    for (expiry, expected) in [
        (
            Expiry::Default,
            start + Duration::seconds(cookie_age(&engine)),
        ),
        (Expiry::Seconds(3600), start + Duration::seconds(3600)),
        (
            Expiry::In(Duration::seconds(600)),
            start + Duration::seconds(600),
        ),
        (Expiry::At(fixed), fixed),
    ] {
        let what = format!("{expiry:?}");
        let mut session = engine.session(None);
        session.insert("x", 1)?;
        session.set_expiry(expiry)?;
        session.save()?;
        let key = key_of(&session)?;
        let record = engine.store().load(&key)?;
        session.delete()?;
        let record = record.ok_or_else(|| Failure::new(format!("{what}: no record saved")))?;
        ensure!(
            stored_expiry_matches(&engine, record.expire_date, timestamp(expected)),
            "{what}: the record expires at {:?}, expected {:?}",
            record.expire_date,
            timestamp(expected)
        );
    }
    Ok(())
}

/// Django `test_actual_expiry`: with an expiry date in the past the session expires at once; a
/// session reopened with the key has none of the data (and no key).
fn past_expiry_date_hides_the_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("foo", "bar")?;
    session.set_expiry(Expiry::In(-Duration::seconds(10)))?;
    session.save()?;
    let key = key_of(&session)?;
    let mut again = engine.session(Some(&key));
    let stale = again.get_value("foo")?;
    let key_after = again.session_key().map(str::to_owned);
    engine.store().delete(&key)?;
    ensure_eq!(stale, None, "\"foo\" of the expired session");
    ensure_eq!(
        key_after,
        None,
        "session_key after loading an expired session"
    );
    Ok(())
}

/// An integer expiry in the past (`set_expiry(-10)`) expires the session at once too.
fn past_integer_expiry_hides_the_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("foo", "bar")?;
    session.set_expiry(Expiry::Seconds(-10))?;
    session.save()?;
    let key = key_of(&session)?;
    let again = reopened(&engine, &key)?;
    engine.store().delete(&key)?;
    ensure!(
        again.is_empty(),
        "the expired session reopened with {again:?}"
    );
    Ok(())
}

/// Quirk, fixed: Django's file engine returns a positive integer `_session_expiry` verbatim as
/// the age, so such a file never expires on the server. Here a session saved with
/// `set_expiry(60)` an hour ago (host clock set back) has expired.
fn fixed_positive_integer_expiry_is_enforced_server_side(t: &Target) -> CaseResult {
    let (engine, clock) = t.engine_with_clock()?;
    clock.set(Utc::now() - Duration::hours(1));
    let mut session = engine.session(None);
    session.insert("foo", "bar")?;
    session.set_expiry(Expiry::Seconds(60))?;
    session.save()?;
    let key = key_of(&session)?;
    clock.set(Utc::now());
    let again = reopened(&engine, &key)?;
    engine.store().delete(&key)?;
    ensure!(
        again.is_empty(),
        "a session idle for an hour with expiry 60 s still loads: {again:?}"
    );
    Ok(())
}

/// Django `test_clearsessions_command` / `test_aclear_expired` (sync): of a session expiring in
/// an hour and one that expired an hour ago, `clear_expired` removes only the expired one.
fn clear_expired_removes_expired_sessions_and_keeps_live_ones(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let live = saved_with_expiry(&engine, Expiry::Seconds(3600))?;
    let expired = saved_with_expiry(&engine, Expiry::Seconds(-3600))?;
    let removed = engine.clear_expired()?;
    let store = engine.store();
    let (live_exists, expired_exists) = (store.exists(&live)?, store.exists(&expired)?);
    store.delete(&live)?;
    store.delete(&expired)?;
    ensure!(
        removed >= 1,
        "clear_expired removed {removed}, but this case left 1 expired"
    );
    ensure!(live_exists, "clear_expired removed the live session");
    ensure!(!expired_exists, "the expired session is still stored");
    Ok(())
}

/// Django `FileSessionTests.test_clearsessions_command` (engine-agnostic): of sessions with
/// expiry +3600 s, −3600 s and none (saved by a host whose clock stood `SESSION_COOKIE_AGE` + 10
/// s in the past, so its cookie age has run out), `clear_expired` keeps only the first. (Django
/// sets the cookie age to 0 instead, which would expire every other session of a shared store.)
fn clear_expired_judges_sessions_without_expiry_by_the_cookie_age(t: &Target) -> CaseResult {
    let (engine, clock) = t.engine_with_clock()?;
    let future = saved_with_expiry(&engine, Expiry::Seconds(3600))?;
    let past = saved_with_expiry(&engine, Expiry::Seconds(-3600))?;
    clock.set(Utc::now() - Duration::seconds(cookie_age(&engine) + 10));
    let unset = saved_with_expiry(&engine, Expiry::Default)?;
    // Back to the present: engines of contract 0.2 judge expiry by the host's clock too.
    clock.set(Utc::now());
    let removed = engine.clear_expired()?;
    let store = engine.store();
    let exists = [
        store.exists(&future)?,
        store.exists(&past)?,
        store.exists(&unset)?,
    ];
    for key in [&future, &past, &unset] {
        store.delete(key)?;
    }
    ensure!(
        removed >= 2,
        "clear_expired removed {removed}, but this case left 2 expired"
    );
    ensure_eq!(
        exists,
        [true, false, false],
        "(future, past, unset) stored after clear_expired"
    );
    Ok(())
}

/// `save` of the contract: "A key that is no longer stored (... removed after expiry) fails
/// with `NotFound` and stores nothing."
fn save_of_key_cleared_after_expiry_fails_with_not_found(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = store.create(expired_write(&engine, &new_key(), json!({"old": 1}))?)?;
    store.clear_expired()?;
    let result = store.save(live_write(&engine, &key, json!({"new": 1}))?);
    let resurrected = store.load(&key)?.is_some();
    store.delete(&key)?;
    expect_kind(
        result,
        ErrorKind::NotFound,
        "save of a key removed by clear_expired",
    )?;
    ensure!(
        !resurrected,
        "save of a key removed by clear_expired stored it again"
    );
    Ok(())
}

/// A saved session with data and `expiry`; returns its key.
fn saved_with_expiry(engine: &Engine, expiry: Expiry) -> Result<String, Failure> {
    let mut session = engine.session(None);
    session.insert("x", 1)?;
    session.set_expiry(expiry)?;
    session.save()?;
    key_of(&session)
}
