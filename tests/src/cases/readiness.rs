//! One case per line of the `# Behavior` lists of `SessionStore::start_call` and `resume_call`
//! (contract 0.4: calls that do not block), exercised through `Engine::store()`, the raw
//! contract. The cases resume a waiting call by asking again (a spurious readiness, which the
//! contract allows) instead of waiting on its socket, so they see every answer the store gives.

use std::{thread, time::Duration};

use serde_json::json;
use sessionkit::{Capabilities, ConditionalSave, Engine, ErrorKind, KeyFormat, Store};
use sessionkit_sdk::{
    CallAnswer, CallStep, SessionRecord, StoreCall, StoreError,
    abi_stable::std_types::{ROption, RResult},
};

use super::reason;
use crate::{
    Case, Failure, Group,
    support::{CaseResult, block_on, live_write, new_key, stored_expiry_matches},
};

/// How many times a case asks a waiting call again, a millisecond apart, before it calls the
/// store stuck (a reply on a healthy server takes well under a second).
const MAX_RESUMES: u32 = 5_000;

/// How many calls one case keeps in flight at once.
const CALLS_IN_FLIGHT: usize = 8;

pub(super) fn cases() -> Vec<Case> {
    use Group::Contract as G;
    let readiness = |case: Case| {
        case.requires(Capabilities::READINESS_CALLS, reason::READINESS_CALLS)
            .key_format(KeyFormat::DjangoSessionKey, reason::DJANGO_KEYS)
    };
    vec![
        readiness(case!(
            G,
            started_calls_answer_what_the_blocking_methods_would
        )),
        readiness(case!(G, started_calls_in_flight_at_once_each_finish)),
        case!(G, start_call_without_the_capability_hands_every_call_back)
            .excludes(Capabilities::READINESS_CALLS, reason::HAS_READINESS_CALLS),
        readiness(case!(G, resume_call_timed_out_ends_the_call_as_unavailable)),
        case!(G, resume_call_of_an_unknown_ticket_fails_with_other),
    ]
}

/// Runs `call` through the raw contract to its end: `start_call`, then `resume_call` again and
/// again while it waits. A call handed back as `Blocking` must come back unchanged; it then
/// runs as an async session runs it (`Store::run_call`).
fn finish(store: &Store, call: StoreCall) -> Result<Result<CallAnswer, StoreError>, Failure> {
    let step = store.start_call(call.clone());
    let step = match step {
        CallStep::Blocking(back) => {
            ensure_eq!(back, call, "the call start_call handed back");
            return match block_on(store.run_call(back))? {
                Ok(answer) => Ok(Ok(answer)),
                Err(error) => Ok(Err(store_error(error)?)),
            };
        }
        other => other,
    };
    resume_until_done(store, step)
}

/// Resumes a started call until it answers.
fn resume_until_done(
    store: &Store,
    mut step: CallStep,
) -> Result<Result<CallAnswer, StoreError>, Failure> {
    for _ in 0..MAX_RESUMES {
        match step {
            CallStep::Done(result) => return Ok(result.into_result()),
            CallStep::Blocking(call) => {
                return Err(Failure::new(format!(
                    "resume_call handed back a {} call already started",
                    call.name()
                )));
            }
            CallStep::Wait(wait) => {
                thread::sleep(Duration::from_millis(1));
                step = store.resume_call(wait.ticket, false);
            }
        }
    }
    Err(Failure::new(format!(
        "a started call still waited after {MAX_RESUMES} resumes"
    )))
}

/// The engine's error inside a host error.
fn store_error(error: sessionkit::Error) -> Result<StoreError, Failure> {
    match error.kind() {
        Some(kind) => Ok(StoreError::new(kind, error.to_string())),
        None => Err(Failure::new(format!("the host failed the call: {error}"))),
    }
}

/// The answer of a call that must succeed.
fn answered(result: Result<CallAnswer, StoreError>, what: &str) -> Result<CallAnswer, Failure> {
    result.map_err(|error| Failure::new(format!("{what} failed: {error:?}")))
}

/// `start_call`: "A finished call answers what the blocking method would, in the variant of the
/// same name; `Blocking` hands the call back unchanged and has done nothing with it."
fn started_calls_answer_what_the_blocking_methods_would(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = new_key();
    let first = live_write(&engine, &key, json!({"step": 1}))?;
    let created = answered(finish(store, StoreCall::Create(first.clone()))?, "create")?;
    ensure_eq!(created, CallAnswer::Create(key.clone().into()), "create");
    let taken = finish(store, StoreCall::Create(first))?;
    ensure_eq!(
        taken.map_err(|error| error.kind),
        Err(ErrorKind::AlreadyExists),
        "create of a taken key"
    );

    let stored = store.load(&key)?;
    let loaded = answered(finish(store, StoreCall::Load(key.clone().into()))?, "load")?;
    ensure_same_load(&engine, loaded, stored, "load")?;
    let unknown = answered(finish(store, StoreCall::Load(new_key().into()))?, "load")?;
    ensure_eq!(
        unknown,
        CallAnswer::Load(ROption::RNone),
        "load of an unknown key"
    );
    let exists = answered(
        finish(store, StoreCall::Exists(key.clone().into()))?,
        "exists",
    )?;
    ensure_eq!(exists, CallAnswer::Exists(true), "exists");
    let absent = answered(
        finish(store, StoreCall::Exists(new_key().into()))?,
        "exists",
    )?;
    ensure_eq!(
        absent,
        CallAnswer::Exists(false),
        "exists of an unknown key"
    );

    let second = live_write(&engine, &key, json!({"step": 2}))?;
    let saved = answered(finish(store, StoreCall::Save(second))?, "save")?;
    ensure_eq!(saved, CallAnswer::Save(key.clone().into()), "save");
    let after_save = loaded_record(store, &key)?;

    if engine
        .capabilities()
        .contains(Capabilities::CONDITIONAL_SAVE)
    {
        let third = live_write(&engine, &key, json!({"step": 3}))?;
        let conditional = StoreCall::SaveIfUnchanged {
            write: third,
            expected_data: after_save.session_data.clone(),
        };
        let outcome = answered(finish(store, conditional.clone())?, "save_if_unchanged")?;
        ensure_eq!(
            outcome,
            CallAnswer::conditional(ConditionalSave::Saved(key.clone())),
            "save_if_unchanged of an unchanged record"
        );
        let now = loaded_record(store, &key)?;
        // The same call again expects what the first one replaced: a conflict, with the
        // record as it is stored now.
        let stale = answered(finish(store, conditional)?, "save_if_unchanged")?;
        match stale {
            CallAnswer::SaveIfUnchanged(RResult::RErr(current)) => ensure_eq!(
                current.session_data,
                now.session_data,
                "the current record of a conflict"
            ),
            other => {
                return Err(Failure::new(format!(
                    "a stale save_if_unchanged answered {other:?}, not a conflict"
                )));
            }
        }
    }

    let deleted = answered(
        finish(store, StoreCall::Delete(key.clone().into()))?,
        "delete",
    )?;
    ensure_eq!(deleted, CallAnswer::Delete, "delete");
    ensure_eq!(store.load(&key)?, None, "load after the started delete");
    let vanished = finish(
        store,
        StoreCall::Save(live_write(&engine, &key, json!({"step": 4}))?),
    )?;
    ensure_eq!(
        vanished.map_err(|error| error.kind),
        Err(ErrorKind::NotFound),
        "save of a deleted key"
    );
    Ok(())
}

/// Checks that a started load answered `expected` (what the blocking load gave): the same
/// record, its expire date as the store keeps it (a TTL store's is recomputed on each load).
fn ensure_same_load(
    engine: &Engine,
    answer: CallAnswer,
    expected: Option<SessionRecord>,
    what: &str,
) -> CaseResult {
    let CallAnswer::Load(loaded) = answer else {
        return Err(Failure::new(format!(
            "{what}: answered {answer:?}, not a load"
        )));
    };
    match (loaded.into_option(), expected) {
        (Some(got), Some(want)) => {
            ensure_eq!(got.session_key, want.session_key, "{what}: session_key");
            ensure_eq!(got.session_data, want.session_data, "{what}: session_data");
            if !stored_expiry_matches(engine, got.expire_date, want.expire_date) {
                return Err(Failure::new(format!(
                    "{what}: expire_date {:?}, the blocking load gave {:?}",
                    got.expire_date, want.expire_date
                )));
            }
            Ok(())
        }
        (got, want) => {
            ensure_eq!(got, want, "{what}");
            Ok(())
        }
    }
}

/// The record a blocking load of `key` gives, which must be there.
fn loaded_record(store: &Store, key: &str) -> Result<SessionRecord, Failure> {
    store
        .load(key)?
        .ok_or_else(|| Failure::new("the record is gone after a started write"))
}

/// `start_call`: "Never blocks: no connect, read or write that could wait, no lock held for
/// long." and `resume_call`: "Never blocks; may answer `Wait` again (readiness can be
/// spurious, or the reply is still incomplete)." What can be seen from outside: several calls
/// are in flight at once, each under its own ticket, and a call resumed before its reply is
/// there answers `Wait` again (never an error, never the answer of another call).
fn started_calls_in_flight_at_once_each_finish(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let mut keys = Vec::new();
    for step in 0..CALLS_IN_FLIGHT {
        let key = new_key();
        store.create(live_write(&engine, &key, json!({ "step": step }))?)?;
        keys.push(key);
    }
    // Warm the store up (a store may answer its first calls `Blocking` while it opens
    // connections), then start every load before resuming any.
    for key in &keys {
        finish(store, StoreCall::Load(key.clone().into()))?
            .map_err(|e| Failure::new(format!("a load failed: {e:?}")))?;
    }
    let started: Vec<(String, CallStep)> = keys
        .iter()
        .map(|key| {
            (
                key.clone(),
                store.start_call(StoreCall::Load(key.clone().into())),
            )
        })
        .collect();
    let tickets: Vec<u64> = started
        .iter()
        .filter_map(|(_, step)| match step {
            CallStep::Wait(wait) => Some(wait.ticket),
            _ => None,
        })
        .collect();
    let mut distinct = tickets.clone();
    distinct.sort_unstable();
    distinct.dedup();
    ensure_eq!(
        distinct.len(),
        tickets.len(),
        "tickets of calls in flight at once"
    );
    for (key, step) in started {
        let result = match step {
            // Handed back (no idle connection for this one): it was never started.
            CallStep::Blocking(call) => finish(store, call)?,
            started => resume_until_done(store, started)?,
        };
        let answer = answered(result, "a load in flight")?;
        let expected = store.load(&key)?;
        ensure_same_load(&engine, answer, expected, "a load in flight")?;
    }
    for key in &keys {
        store.delete(key)?;
    }
    Ok(())
}

/// `start_call`: "The default (a store without the capability) gives every call back as
/// `Blocking`."
fn start_call_without_the_capability_hands_every_call_back(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = new_key();
    let write = live_write(&engine, &key, json!({"a": 1}))?;
    let calls = [
        StoreCall::Exists(key.clone().into()),
        StoreCall::Load(key.clone().into()),
        StoreCall::Create(write.clone()),
        StoreCall::Save(write.clone()),
        StoreCall::Delete(key.clone().into()),
        StoreCall::SaveIfUnchanged {
            write,
            expected_data: "anything".into(),
        },
    ];
    for call in calls {
        let step = store.start_call(call.clone());
        ensure_eq!(step, CallStep::Blocking(call), "start_call");
    }
    Ok(())
}

/// `resume_call`: "`timed_out` ends the call with an [`ErrorKind::Unavailable`] error and drops
/// what it held (its connection may hold a late reply)."
fn resume_call_timed_out_ends_the_call_as_unavailable(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = new_key();
    store.create(live_write(&engine, &key, json!({"a": 1}))?)?;
    let expected = store.load(&key)?;
    let mut waited = None;
    // A store may hand its first calls back while it opens connections.
    for _ in 0..CALLS_IN_FLIGHT {
        match store.start_call(StoreCall::Load(key.clone().into())) {
            CallStep::Wait(wait) => {
                waited = Some(wait);
                break;
            }
            CallStep::Blocking(call) => {
                block_on(store.run_call(call))??;
            }
            CallStep::Done(_) => {}
        }
    }
    let wait = waited.ok_or_else(|| {
        Failure::new(format!(
            "{CALLS_IN_FLIGHT} loads never waited on a socket, so timing out cannot be checked"
        ))
    })?;
    match store.resume_call(wait.ticket, true) {
        CallStep::Done(RResult::RErr(error)) if error.kind == ErrorKind::Unavailable => {}
        other => {
            return Err(Failure::new(format!(
                "resume_call with timed_out answered {other:?}, not an unavailable error"
            )));
        }
    }
    // The late reply is never the next call's answer. A store may refuse calls for a while
    // after a timeout (a circuit breaker): ask until one is answered.
    for _ in 0..MAX_RESUMES {
        match finish(store, StoreCall::Load(key.clone().into()))? {
            Err(error) if error.kind == ErrorKind::Unavailable => {
                thread::sleep(Duration::from_millis(1));
            }
            Err(error) => {
                return Err(Failure::new(format!(
                    "the load after a timed-out one failed: {error:?}"
                )));
            }
            Ok(answer) => {
                store.delete(&key)?;
                return ensure_same_load(
                    &engine,
                    answer,
                    expected,
                    "the load after a timed-out one",
                );
            }
        }
    }
    Err(Failure::new(format!(
        "the store still refused loads {MAX_RESUMES} tries after a timed-out one"
    )))
}

/// `resume_call`: "An unknown ticket fails with [`ErrorKind::Other`]."
fn resume_call_of_an_unknown_ticket_fails_with_other(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    match engine.store().resume_call(u64::MAX - 4_242, false) {
        CallStep::Done(RResult::RErr(error)) if error.kind == ErrorKind::Other => Ok(()),
        other => Err(Failure::new(format!(
            "resume_call of an unknown ticket answered {other:?}"
        ))),
    }
}
