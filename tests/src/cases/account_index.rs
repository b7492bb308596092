//! Listing and deleting the sessions of an account through the session API (the `ACCOUNT_INDEX`
//! capability, the `account_id` example of Django's "Extending database-backed session engines" and
//! `CustomDatabaseSessionTests.test_extra_session_field`): the index follows every save, delete,
//! flush, key cycle and expiry.

use std::collections::BTreeSet;

use serde_json::json;
use sessionkit::{Capabilities, Engine, Expiry, Session};

use super::reason;
use crate::{
    Case, Failure, Group, Target,
    support::{CaseResult, key_of, new_account_id},
};

pub(super) fn cases() -> Vec<Case> {
    use Group::AccountIndex as G;
    let indexed = |case: Case| case.requires(Capabilities::ACCOUNT_INDEX, reason::ACCOUNT_INDEX);
    vec![
        indexed(case!(G, sessions_of_an_account_are_listed)),
        indexed(case!(G, index_forgets_a_deleted_session)),
        indexed(case!(G, index_forgets_a_flushed_session)),
        indexed(case!(G, index_follows_cycle_key)),
        indexed(case!(G, index_never_lists_an_expired_session)),
        indexed(case!(G, index_forgets_a_removed_auth_user_id)),
        indexed(case!(G, index_follows_a_changed_auth_user_id)),
        indexed(case!(G, non_integer_auth_user_id_is_saved_and_not_indexed)),
        indexed(case!(
            G,
            delete_sessions_of_account_keeps_the_current_session
        )),
        indexed(case!(
            G,
            delete_sessions_of_account_without_keep_logs_out_everywhere
        )),
    ]
}

/// A saved session logged in as `account` (auth stores `_auth_user_id` as a string).
fn login(engine: &Engine, account: i64) -> Result<(Session, String), Failure> {
    let mut session = engine.session(None);
    session.insert("_auth_user_id", account.to_string())?;
    session.insert(
        "_auth_user_backend",
        "django.contrib.auth.backends.ModelBackend",
    )?;
    session.save()?;
    let key = key_of(&session)?;
    Ok((session, key))
}

/// The keys listed for `account`.
fn listed(engine: &Engine, account: i64) -> Result<BTreeSet<String>, Failure> {
    let records = engine.sessions_of_account(account)?;
    let count = records.len();
    let keys: BTreeSet<String> = records
        .into_iter()
        .map(|r| r.session_key.to_string())
        .collect();
    ensure_eq!(keys.len(), count, "distinct keys among the {count} listed");
    Ok(keys)
}

/// The set of `keys`.
fn set<const N: usize>(keys: [&String; N]) -> BTreeSet<String> {
    keys.into_iter().cloned().collect()
}

/// Each session saved with the account is listed once; other accounts' are not.
fn sessions_of_an_account_are_listed(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let account = new_account_id();
    let (mut first, a) = login(&engine, account)?;
    let (mut second, b) = login(&engine, account)?;
    let (mut other, _) = login(&engine, new_account_id())?;
    second.insert("cart", 3)?;
    second.save()?;
    let keys = listed(&engine, account);
    for session in [&mut first, &mut second, &mut other] {
        session.delete()?;
    }
    ensure_eq!(keys?, set([&a, &b]), "sessions of the account");
    Ok(())
}

/// A deleted session is no longer listed.
fn index_forgets_a_deleted_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let account = new_account_id();
    let (mut session, _) = login(&engine, account)?;
    session.delete()?;
    ensure!(
        listed(&engine, account)?.is_empty(),
        "a deleted session is still listed"
    );
    Ok(())
}

/// A flushed session (auth's logout) is no longer listed.
fn index_forgets_a_flushed_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let account = new_account_id();
    let (mut session, _) = login(&engine, account)?;
    session.flush()?;
    ensure!(
        listed(&engine, account)?.is_empty(),
        "a flushed session is still listed"
    );
    Ok(())
}

/// After `cycle_key` (auth's login) the new key is listed and the old one is gone.
fn index_follows_cycle_key(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let account = new_account_id();
    let (mut session, _) = login(&engine, account)?;
    session.cycle_key()?;
    let new = key_of(&session)?;
    let keys = listed(&engine, account);
    session.delete()?;
    ensure_eq!(
        keys?,
        set([&new]),
        "sessions of the account after cycle_key"
    );
    Ok(())
}

/// An expired session is never listed, even before `clear_expired` removes it.
fn index_never_lists_an_expired_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let account = new_account_id();
    let mut session = engine.session(None);
    session.insert("_auth_user_id", account.to_string())?;
    session.set_expiry(Expiry::Seconds(-10))?;
    session.save()?;
    let key = key_of(&session)?;
    let keys = listed(&engine, account);
    engine.store().delete(&key)?;
    ensure!(keys?.is_empty(), "an expired session is listed");
    Ok(())
}

/// Removing `_auth_user_id` and saving takes the session out of the index (the column becomes
/// NULL in Django's example).
fn index_forgets_a_removed_auth_user_id(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let account = new_account_id();
    let (mut session, _) = login(&engine, account)?;
    session.pop::<String>("_auth_user_id")?;
    session.save()?;
    let keys = listed(&engine, account);
    session.delete()?;
    ensure!(
        keys?.is_empty(),
        "a session without _auth_user_id is still listed"
    );
    Ok(())
}

/// Changing `_auth_user_id` and saving moves the session to the new account.
fn index_follows_a_changed_auth_user_id(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let (before, after) = (new_account_id(), new_account_id());
    let (mut session, key) = login(&engine, before)?;
    session.insert("_auth_user_id", after.to_string())?;
    session.save()?;
    let (old, new) = (listed(&engine, before), listed(&engine, after));
    session.delete()?;
    ensure!(
        old?.is_empty(),
        "the session is still listed under its old account"
    );
    ensure_eq!(new?, set([&key]), "sessions of the new account");
    Ok(())
}

/// A non-integer `_auth_user_id` is saved (Django's example stores NULL on ValueError) and the
/// session still loads.
fn non_integer_auth_user_id_is_saved_and_not_indexed(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.insert("_auth_user_id", "not-a-number")?;
    session.save()?;
    let key = key_of(&session)?;
    let again = engine.session(Some(&key)).load()?;
    session.delete()?;
    ensure_eq!(
        again.get("_auth_user_id"),
        Some(&json!("not-a-number")),
        "the saved value"
    );
    Ok(())
}

/// "Log out my other devices": deleting the account's sessions but the current one leaves only
/// the current one, which still loads.
fn delete_sessions_of_account_keeps_the_current_session(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let account = new_account_id();
    let (mut current, keep) = login(&engine, account)?;
    let (_, other_device) = login(&engine, account)?;
    let (_, third_device) = login(&engine, account)?;
    let deleted = engine.delete_sessions_of_account(account, Some(&keep))?;
    let keys = listed(&engine, account)?;
    let gone = [
        engine.session(Some(&other_device)).load()?.is_empty(),
        engine.session(Some(&third_device)).load()?.is_empty(),
    ];
    let still = engine.session(Some(&keep)).load()?;
    current.delete()?;
    ensure_eq!(deleted, 2, "sessions deleted");
    ensure_eq!(keys, set([&keep]), "sessions left");
    ensure_eq!(gone, [true, true], "the other devices' sessions are empty");
    ensure!(!still.is_empty(), "the kept session lost its data");
    Ok(())
}

/// "Log out everywhere": without `keep`, every session of the account goes.
fn delete_sessions_of_account_without_keep_logs_out_everywhere(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let account = new_account_id();
    let (_, a) = login(&engine, account)?;
    let (_, b) = login(&engine, account)?;
    let deleted = engine.delete_sessions_of_account(account, None)?;
    ensure_eq!(deleted, 2, "sessions deleted");
    ensure!(
        listed(&engine, account)?.is_empty(),
        "sessions are still listed"
    );
    ensure!(
        engine.session(Some(&a)).load()?.is_empty(),
        "a deleted session still loads"
    );
    ensure!(
        engine.session(Some(&b)).load()?.is_empty(),
        "a deleted session still loads"
    );
    Ok(())
}
