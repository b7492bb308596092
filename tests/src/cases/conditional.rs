//! One case per line of the `# Behavior` list of `SessionStore::save_if_unchanged` (contract
//! 0.2), exercised through `Engine::store()`, the raw contract.

use std::sync::{Arc, Barrier};

use serde_json::json;
use sessionkit::{Capabilities, ConditionalSave, ErrorKind, KeyFormat};
use sessionkit_sdk::SessionWrite;

use super::reason;
use crate::{
    Case, Failure, Group,
    support::{
        CaseResult, ensure_loaded_data, expect_kind, expired_write, is_unsupported, live_write,
        new_key,
    },
};

/// How many writers race in the concurrency case.
const RACING_WRITERS: usize = 8;

pub(super) fn cases() -> Vec<Case> {
    use Group::Contract as G;
    let conditional = |case: Case| {
        case.requires(Capabilities::CONDITIONAL_SAVE, reason::CONDITIONAL_SAVE)
            .key_format(KeyFormat::DjangoSessionKey, reason::DJANGO_KEYS)
    };
    vec![
        case!(
            G,
            save_if_unchanged_without_the_capability_fails_with_unsupported
        )
        .excludes(Capabilities::CONDITIONAL_SAVE, reason::HAS_CONDITIONAL_SAVE),
        conditional(case!(G, save_if_unchanged_of_an_unchanged_record_saves_it)),
        conditional(case!(
            G,
            save_if_unchanged_of_a_changed_record_stores_nothing_and_returns_it
        )),
        conditional(case!(
            G,
            save_if_unchanged_of_a_vanished_key_fails_with_not_found
        )),
        conditional(case!(
            G,
            save_if_unchanged_of_an_expired_record_fails_with_not_found
        )),
        conditional(case!(G, concurrent_save_if_unchanged_saves_exactly_one)),
    ]
}

/// `save_if_unchanged`: "Without the capability, fails with `Unsupported` and stores nothing."
fn save_if_unchanged_without_the_capability_fails_with_unsupported(
    t: &crate::Target,
) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    if engine.description().key_format != KeyFormat::DjangoSessionKey {
        // A signed-payload engine stores nothing to compare with: the host refuses up front.
        let write = live_write(&engine, &new_key(), json!({"a": 1}))?;
        return match store.save_if_unchanged(write, "anything") {
            Err(error) if is_unsupported(&error) => Ok(()),
            other => Err(Failure::new(format!(
                "expected an 'unsupported' error, got {other:?}"
            ))),
        };
    }
    let key = store.create(live_write(&engine, &new_key(), json!({"v": 1}))?)?;
    let before = store
        .load(&key)?
        .ok_or_else(|| Failure::new("load after create gave None"))?;
    let outcome = store.save_if_unchanged(
        live_write(&engine, &key, json!({"v": 2}))?,
        before.session_data.as_str(),
    );
    let after = store.load(&key)?;
    store.delete(&key)?;
    match outcome {
        Err(error) if is_unsupported(&error) => {}
        other => {
            return Err(Failure::new(format!(
                "expected an 'unsupported' error, got {other:?}"
            )));
        }
    }
    ensure_eq!(
        after.map(|r| r.session_data),
        Some(before.session_data),
        "the record after the refused conditional save"
    );
    Ok(())
}

/// `save_if_unchanged`: "When the live record under the key holds `expected_data`, stores the
/// write as `save` does and returns `ConditionalSave::Saved` with the key; `load` then gives
/// the new record."
fn save_if_unchanged_of_an_unchanged_record_saves_it(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = store.create(live_write(&engine, &new_key(), json!({"step": 1}))?)?;
    // What this request loaded is what it expects (the stored form, whichever the engine keeps).
    let expected = loaded_data(store, &key)?;
    let second = live_write(&engine, &key, json!({"step": 2}))?;
    let outcome = store.save_if_unchanged(second.clone(), &expected)?;
    let loaded = store.load(&key)?;
    store.delete(&key)?;
    ensure_eq!(outcome, ConditionalSave::Saved(key.clone()), "the outcome");
    let loaded = loaded.ok_or_else(|| Failure::new("load after the conditional save gave None"))?;
    ensure_loaded_data(
        &engine,
        loaded.session_data.as_str(),
        &second,
        "session_data after the conditional save",
    )
}

/// The `session_data` a load of `key` gives (what a request holding it expects).
fn loaded_data(store: &sessionkit::Store, key: &str) -> Result<String, Failure> {
    Ok(store
        .load(key)?
        .ok_or_else(|| Failure::new("load after create gave None"))?
        .session_data
        .to_string())
}

/// `save_if_unchanged`: "When the live record holds other data, stores nothing and returns
/// `ConditionalSave::Conflict` with the record as it is stored now."
fn save_if_unchanged_of_a_changed_record_stores_nothing_and_returns_it(
    t: &crate::Target,
) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let first = live_write(&engine, &new_key(), json!({"seen": "by this request"}))?;
    let loaded_by_this_request = first.record.session_data.to_string();
    let key = store.create(first)?;
    // Another request saves in between.
    store.save(live_write(&engine, &key, json!({"seen": "by another"}))?)?;
    let stored_now = store
        .load(&key)?
        .ok_or_else(|| Failure::new("load after the other save gave None"))?;
    let outcome = store.save_if_unchanged(
        live_write(&engine, &key, json!({"seen": "lost update"}))?,
        &loaded_by_this_request,
    )?;
    let after = store.load(&key)?;
    store.delete(&key)?;
    match outcome {
        // A DECODED_DATA engine may hand either form of the same session (the cached dict, or
        // the signed row behind it): compare what they decode to.
        ConditionalSave::Conflict(current)
            if engine.capabilities().contains(Capabilities::DECODED_DATA) =>
        {
            let current = engine.decode(current.session_data.as_str());
            ensure_eq!(
                current.get("seen"),
                Some(&json!("by another")),
                "the record a conflict returns, decoded"
            );
            ensure_eq!(
                current,
                engine.decode(stored_now.session_data.as_str()),
                "the record a conflict returns, decoded"
            );
        }
        ConditionalSave::Conflict(current) => ensure_eq!(
            current.session_data.as_str(),
            stored_now.session_data.as_str(),
            "the record a conflict returns"
        ),
        ConditionalSave::Saved(_) => {
            return Err(Failure::new(
                "a conditional save over another request's write succeeded (a lost update)",
            ));
        }
    }
    if engine.capabilities().contains(Capabilities::DECODED_DATA) {
        ensure_eq!(
            after.map(|r| engine.decode(r.session_data.as_str())),
            Some(engine.decode(stored_now.session_data.as_str())),
            "the record after the conflict, decoded"
        );
    } else {
        ensure_eq!(
            after.map(|r| r.session_data),
            Some(stored_now.session_data),
            "the record after the conflict"
        );
    }
    Ok(())
}

/// `save_if_unchanged`: "A key that is no longer stored (deleted, or expired) fails with
/// `NotFound` and stores nothing, as `save` does." — the deleted half: a logged-out session is
/// never brought back.
fn save_if_unchanged_of_a_vanished_key_fails_with_not_found(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let first = live_write(&engine, &new_key(), json!({"a": 1}))?;
    let expected = first.record.session_data.to_string();
    let key = store.create(first)?;
    store.delete(&key)?;
    let outcome = store.save_if_unchanged(live_write(&engine, &key, json!({"a": 2}))?, &expected);
    let revived = store.load(&key)?;
    store.delete(&key)?;
    expect_kind(
        outcome,
        ErrorKind::NotFound,
        "conditional save of a deleted key",
    )?;
    ensure!(
        revived.is_none(),
        "the conditional save brought a deleted session back"
    );
    Ok(())
}

/// `save_if_unchanged`: "A key that is no longer stored (deleted, or expired) fails with
/// `NotFound` and stores nothing, as `save` does." — the expired half, even when the expired
/// record holds exactly the expected data.
fn save_if_unchanged_of_an_expired_record_fails_with_not_found(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let stale = expired_write(&engine, &new_key(), json!({"old": 1}))?;
    let expected = stale.record.session_data.to_string();
    let key = store.create(stale)?;
    let outcome = store.save_if_unchanged(live_write(&engine, &key, json!({"new": 1}))?, &expected);
    let revived = store.load(&key)?;
    store.delete(&key)?;
    expect_kind(
        outcome,
        ErrorKind::NotFound,
        "conditional save of an expired record",
    )?;
    ensure!(
        revived.is_none(),
        "the conditional save revived an expired session"
    );
    Ok(())
}

/// `save_if_unchanged`: "Of concurrent conditional saves expecting the same data, exactly one
/// is saved; the others see a conflict (or `NotFound`), never a lost update."
fn concurrent_save_if_unchanged_saves_exactly_one(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let key = engine
        .store()
        .create(live_write(&engine, &new_key(), json!({"writer": "none"}))?)?;
    let expected: Arc<str> = loaded_data(engine.store(), &key)?.into();
    let start = Arc::new(Barrier::new(RACING_WRITERS));
    let writers: Vec<_> = (0..RACING_WRITERS)
        .map(|writer| {
            let (engine, key, expected, start) =
                (engine.clone(), key.clone(), expected.clone(), start.clone());
            std::thread::spawn(
                move || -> Result<(ConditionalSave, SessionWrite), Failure> {
                    let write = live_write(&engine, &key, json!({ "writer": writer }))?;
                    start.wait();
                    Ok((
                        engine.store().save_if_unchanged(write.clone(), &expected)?,
                        write,
                    ))
                },
            )
        })
        .collect();
    let mut outcomes = Vec::new();
    for writer in writers {
        outcomes.push(
            writer
                .join()
                .map_err(|_| Failure::new("a writer thread panicked"))??,
        );
    }
    let stored = engine.store().load(&key)?;
    engine.store().delete(&key)?;
    let winners: Vec<&SessionWrite> = outcomes
        .iter()
        .filter(|(outcome, _)| matches!(outcome, ConditionalSave::Saved(_)))
        .map(|(_, write)| write)
        .collect();
    ensure_eq!(winners.len(), 1, "conditional saves that succeeded");
    let stored = stored.ok_or_else(|| Failure::new("the session vanished after the race"))?;
    ensure_loaded_data(
        &engine,
        stored.session_data.as_str(),
        winners[0],
        "the stored record is the one winner's write",
    )
}
