//! One case per line of the `# Behavior` lists of `SessionStore` (sdk/src/store.rs), each named
//! after its line and exercised through `Engine::store()`, the raw contract.

use std::{collections::BTreeSet, sync::Arc};

use serde_json::json;
use sessionkit::{
    Capabilities, Engine, EngineLibrary, ErrorKind, KeyFormat, SystemClock,
    loader::load_library,
    plugin::{PluginStore, SharedClock},
};
use sessionkit_sdk::{SessionStore, SessionWrite};

use super::reason;
use crate::{
    Case, Failure, Group,
    support::{
        CaseResult, ensure_loaded_data, expect_kind, expired_write, is_unsupported, live_raw_write,
        live_write, new_account_id, new_key, stored_expiry_matches, write_for,
    },
};

pub(super) fn cases() -> Vec<Case> {
    use Group::Contract as G;
    let django_keys =
        |case: Case| case.key_format(KeyFormat::DjangoSessionKey, reason::DJANGO_KEYS);
    vec![
        // exists
        django_keys(case!(G, exists_of_unknown_key_is_false)),
        django_keys(case!(G, exists_is_true_after_create_and_false_after_delete)),
        django_keys(case!(
            G,
            exists_of_expired_key_answers_whether_the_key_is_taken
        )),
        // load
        django_keys(case!(G, load_of_unknown_key_creates_nothing)),
        case!(G, load_of_expired_record_gives_none)
            .key_format(KeyFormat::DjangoSessionKey, reason::EXPIRY_19201),
        case!(G, load_returns_the_stored_record_unchanged),
        // create
        case!(G, create_returns_the_key_it_stored_under),
        django_keys(case!(G, create_of_taken_key_fails_with_already_exists)),
        case!(G, load_after_create_gives_the_record),
        // save
        case!(G, save_returns_the_key_it_stored_under),
        django_keys(case!(
            G,
            save_of_vanished_key_fails_with_not_found_and_stores_nothing
        ))
        .requires(Capabilities::SERVER_SIDE_INVALIDATION, reason::REVOCATION),
        case!(G, load_after_save_gives_the_new_record),
        // delete
        django_keys(case!(G, delete_of_unknown_key_succeeds)),
        django_keys(case!(G, load_and_exists_see_nothing_after_delete))
            .requires(Capabilities::SERVER_SIDE_INVALIDATION, reason::REVOCATION),
        // clear_expired
        case!(G, clear_expired_keeps_live_records).exclusive(),
        case!(G, clear_expired_counts_what_it_removed)
            .requires(Capabilities::CLEAR_EXPIRED, reason::CLEAR_EXPIRED)
            .exclusive(),
        case!(G, clear_expired_of_many_records_lets_requests_through)
            .requires(Capabilities::CLEAR_EXPIRED, reason::CLEAR_EXPIRED)
            .exclusive(),
        case!(G, clear_expired_returns_zero_without_the_capability)
            .excludes(Capabilities::CLEAR_EXPIRED, reason::KEEPS_EXPIRED)
            .exclusive(),
        // capabilities
        case!(
            G,
            capabilities_answer_the_same_for_the_whole_life_of_the_store
        ),
        case!(
            G,
            capabilities_the_host_sees_are_the_union_of_declared_and_added
        ),
        // sessions_of_account
        case!(
            G,
            sessions_of_account_without_the_capability_fails_with_unsupported
        )
        .excludes(Capabilities::ACCOUNT_INDEX, reason::HAS_ACCOUNT_INDEX),
        case!(
            G,
            sessions_of_account_lists_each_live_session_of_the_account_once
        )
        .requires(Capabilities::ACCOUNT_INDEX, reason::ACCOUNT_INDEX),
        // delete_sessions_of_account
        case!(
            G,
            delete_sessions_of_account_without_the_capability_fails_with_unsupported
        )
        .excludes(Capabilities::ACCOUNT_INDEX, reason::HAS_ACCOUNT_INDEX),
        case!(G, delete_sessions_of_account_leaves_only_keep)
            .requires(Capabilities::ACCOUNT_INDEX, reason::ACCOUNT_INDEX),
        case!(
            G,
            delete_sessions_of_account_leaves_other_accounts_untouched
        )
        .requires(Capabilities::ACCOUNT_INDEX, reason::ACCOUNT_INDEX),
    ]
}

/// `exists`: "An unknown key gives `false`."
fn exists_of_unknown_key_is_false(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let key = new_key();
    ensure!(
        !engine.store().exists(&key)?,
        "exists of a key never stored gave true"
    );
    Ok(())
}

/// `exists`: "A key that `create` stored gives `true`; after `delete` it gives `false`."
fn exists_is_true_after_create_and_false_after_delete(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = store.create(live_write(&engine, &new_key(), json!({"a": 1}))?)?;
    ensure!(store.exists(&key)?, "exists gave false right after create");
    store.delete(&key)?;
    ensure!(!store.exists(&key)?, "exists gave true after delete");
    Ok(())
}

/// `exists`: "Expiry may be ignored (Django's db engine counts an expired, uncleared row):
/// `exists` answers 'is this key taken?' for key generation." So for an expired record still
/// stored, `exists` is `true` exactly when `create` of that key fails with `AlreadyExists`.
fn exists_of_expired_key_answers_whether_the_key_is_taken(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = store.create(expired_write(&engine, &new_key(), json!({"old": 1}))?)?;
    let taken = store.exists(&key)?;
    let created = store.create(live_write(&engine, &key, json!({"new": 1}))?);
    let outcome = if taken {
        expect_kind(
            created,
            ErrorKind::AlreadyExists,
            "create of a key exists calls taken",
        )
    } else {
        match created {
            Ok(_) => match store.load(&key)? {
                Some(_) => Ok(()),
                None => Err(Failure::new(
                    "create of a key exists called free stored nothing",
                )),
            },
            Err(error) => Err(Failure::new(format!(
                "exists said the expired key is free, but create of it failed: {error}"
            ))),
        }
    };
    store.delete(&key)?;
    outcome
}

/// `load`: "An unknown key gives `None` and stores nothing (CVE-2015-5143)."
fn load_of_unknown_key_creates_nothing(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = new_key();
    ensure!(
        store.load(&key)?.is_none(),
        "load of a key never stored gave a record"
    );
    ensure!(
        !store.exists(&key)?,
        "load of an unknown key left a record behind"
    );
    // The key is still free: a record created now is the only one under it.
    let created = store.create(live_write(&engine, &key, json!({"mine": 1}))?);
    ensure!(
        created.is_ok(),
        "load of an unknown key took the key: create then failed: {created:?}"
    );
    store.delete(&key)?;
    Ok(())
}

/// `load`: "A record whose `expire_date` is at or before now gives `None`."
fn load_of_expired_record_gives_none(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = store.create(expired_write(&engine, &new_key(), json!({"stale": true}))?)?;
    let loaded = store.load(&key)?;
    store.delete(&key)?;
    ensure!(
        loaded.is_none(),
        "load of a record that expired an hour ago gave {loaded:?}"
    );
    Ok(())
}

/// `load`: "A stored record comes back with the same `session_key`, `session_data` and
/// `expire_date` (to the microsecond where the store keeps microseconds, else the second). A
/// `KeyFormat::SignedPayload` engine stores no expire_date: it returns the payload's signing time
/// plus `SESSION_COOKIE_AGE`. A `DECODED_DATA` engine keeps Django's unsigned dict and a TTL: it
/// may give back the write's `session_json` as `session_data`, and `expire_date` to within a
/// second."
fn load_returns_the_stored_record_unchanged(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let expire = chrono::Utc::now() + chrono::Duration::microseconds(3_600_123_457);
    let write = write_for(&engine, &new_key(), json!({"k": "v"}), expire)?;
    let key = store.create(write.clone())?;
    let loaded = store
        .load(&key)?
        .ok_or_else(|| Failure::new("load after create gave None"))?;
    store.delete(&key)?;
    if engine.description().key_format == KeyFormat::DjangoSessionKey {
        ensure_eq!(
            loaded.session_key.as_str(),
            write.record.session_key.as_str(),
            "session_key"
        );
    }
    ensure_loaded_data(
        &engine,
        loaded.session_data.as_str(),
        &write,
        "session_data",
    )?;
    expire_date_as_stored(&engine, loaded.expire_date, write.record.expire_date)
}

/// The contract's rule for the `expire_date` a load returns: the one written (to the store's
/// precision), except for signed-payload engines, whose payload carries no expire_date: there it
/// is the signing time plus `SESSION_COOKIE_AGE` (Django's max_age for signed cookies).
fn expire_date_as_stored(
    engine: &sessionkit::Engine,
    loaded: sessionkit::Timestamp,
    written: sessionkit::Timestamp,
) -> CaseResult {
    if engine.description().key_format == KeyFormat::SignedPayload {
        let age = engine.settings().session_cookie_age;
        let now = sessionkit::Timestamp::now().as_secs();
        let implied = loaded.as_secs() - age;
        ensure!(
            (now - 5..=now).contains(&implied),
            "expire_date {loaded:?} is not the signing time (about {now}) plus SESSION_COOKIE_AGE {age}"
        );
        return Ok(());
    }
    ensure!(
        stored_expiry_matches(engine, loaded, written),
        "expire_date came back as {loaded:?}, written {written:?} (neither exact nor truncated to the second)"
    );
    Ok(())
}

/// `create`: "Returns the key the record is stored under (the record's own key for
/// server-side engines; the signed payload for signed-payload engines)."
fn create_returns_the_key_it_stored_under(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let write = live_write(&engine, &new_key(), json!({"n": 1}))?;
    let key = store.create(write.clone())?;
    let loaded = store.load(&key)?;
    store.delete(&key)?;
    if engine.description().key_format == KeyFormat::DjangoSessionKey {
        ensure_eq!(
            key.as_str(),
            write.record.session_key.as_str(),
            "create's returned key"
        );
    }
    ensure!(
        loaded.is_some(),
        "load of the key create returned gave None"
    );
    Ok(())
}

/// `create`: "A key already taken fails with `AlreadyExists` and leaves the existing record
/// untouched; the host retries with a new key."
fn create_of_taken_key_fails_with_already_exists(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let first = live_write(&engine, &new_key(), json!({"owner": "first"}))?;
    let key = store.create(first.clone())?;
    let second = live_write(&engine, &key, json!({"owner": "second"}))?;
    let outcome = expect_kind(
        store.create(second),
        ErrorKind::AlreadyExists,
        "second create",
    );
    let loaded = store.load(&key)?;
    store.delete(&key)?;
    outcome?;
    let loaded = loaded.ok_or_else(|| Failure::new("the first record vanished"))?;
    ensure_loaded_data(
        &engine,
        loaded.session_data.as_str(),
        &first,
        "the first record after the failed create",
    )?;
    Ok(())
}

/// `create`: "After it returns, `load` of the key gives the record."
fn load_after_create_gives_the_record(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let write = live_write(&engine, &new_key(), json!({"hello": "world"}))?;
    let key = store.create(write.clone())?;
    let loaded = store.load(&key)?;
    store.delete(&key)?;
    let loaded = loaded.ok_or_else(|| Failure::new("load right after create gave None"))?;
    ensure_loaded_data(
        &engine,
        loaded.session_data.as_str(),
        &write,
        "session_data",
    )?;
    Ok(())
}

/// `save`: "Returns the key the record is stored under."
fn save_returns_the_key_it_stored_under(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = store.create(live_write(&engine, &new_key(), json!({"v": 1}))?)?;
    let update = live_write(&engine, &key, json!({"v": 2}))?;
    let saved = store.save(update.clone())?;
    let loaded = store.load(&saved)?;
    store.delete(&saved)?;
    if engine.description().key_format == KeyFormat::DjangoSessionKey {
        ensure_eq!(saved.as_str(), key.as_str(), "save's returned key");
    }
    let loaded = loaded.ok_or_else(|| Failure::new("load of the key save returned gave None"))?;
    ensure_loaded_data(
        &engine,
        loaded.session_data.as_str(),
        &update,
        "session_data",
    )?;
    Ok(())
}

/// `save`: "A key that is no longer stored (deleted, or removed after expiry) fails with
/// `NotFound` and stores nothing: an update never resurrects a session that was logged out in
/// another request." (The removed-after-expiry half is `expiry::save_of_key_cleared_after_
/// expiry_fails_with_not_found`.)
fn save_of_vanished_key_fails_with_not_found_and_stores_nothing(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    // Never stored.
    let never = new_key();
    let result = store.save(live_write(&engine, &never, json!({"ghost": 1}))?);
    expect_kind(result, ErrorKind::NotFound, "save of a key never stored")?;
    ensure!(
        store.load(&never)?.is_none(),
        "save of a key never stored stored a record"
    );
    ensure!(
        !store.exists(&never)?,
        "save of a key never stored made it exist"
    );
    // Deleted meanwhile (logged out in another request).
    let key = store.create(live_write(&engine, &new_key(), json!({"user": "42"}))?)?;
    store.delete(&key)?;
    let result = store.save(live_write(&engine, &key, json!({"user": "42", "cart": 3}))?);
    expect_kind(result, ErrorKind::NotFound, "save of a deleted key")?;
    ensure!(
        store.load(&key)?.is_none(),
        "save of a deleted key resurrected it"
    );
    ensure!(
        !store.exists(&key)?,
        "save of a deleted key made it exist again"
    );
    Ok(())
}

/// `save`: "After it returns, `load` of the key gives the new record."
fn load_after_save_gives_the_new_record(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = store.create(live_write(&engine, &new_key(), json!({"step": 1}))?)?;
    let update = live_write(&engine, &key, json!({"step": 2}))?;
    let key = store.save(update.clone())?;
    let loaded = store.load(&key)?;
    store.delete(&key)?;
    let loaded = loaded.ok_or_else(|| Failure::new("load right after save gave None"))?;
    ensure_loaded_data(
        &engine,
        loaded.session_data.as_str(),
        &update,
        "session_data",
    )?;
    expire_date_as_stored(&engine, loaded.expire_date, update.record.expire_date)
}

/// `delete`: "Deleting an unknown key succeeds."
fn delete_of_unknown_key_succeeds(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let key = new_key();
    engine.store().delete(&key)?;
    ensure!(
        !engine.store().exists(&key)?,
        "delete of an unknown key made it exist"
    );
    Ok(())
}

/// `delete`: "After it returns, `load` and `exists` of the key see nothing."
fn load_and_exists_see_nothing_after_delete(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = store.create(live_write(&engine, &new_key(), json!({"bye": 1}))?)?;
    store.delete(&key)?;
    ensure!(
        store.load(&key)?.is_none(),
        "load after delete gave a record"
    );
    ensure!(!store.exists(&key)?, "exists after delete gave true");
    Ok(())
}

/// `clear_expired`: "Live records stay loadable."
fn clear_expired_keeps_live_records(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let write = live_write(&engine, &new_key(), json!({"alive": true}))?;
    let key = store.create(write.clone())?;
    store.clear_expired()?;
    let loaded = store.load(&key)?;
    store.delete(&key)?;
    let loaded =
        loaded.ok_or_else(|| Failure::new("a live record was gone after clear_expired"))?;
    ensure_loaded_data(
        &engine,
        loaded.session_data.as_str(),
        &write,
        "session_data",
    )?;
    Ok(())
}

/// `clear_expired`: "Expired records are gone afterwards, and the count says how many went."
/// (Other cases may leave expired records too, so the count is at least ours.)
fn clear_expired_counts_what_it_removed(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let mut expired = Vec::new();
    for n in 0..3 {
        expired.push(store.create(expired_write(&engine, &new_key(), json!({"n": n}))?)?);
    }
    let live = store.create(live_write(&engine, &new_key(), json!({"live": 1}))?)?;
    let removed = store.clear_expired()?;
    let live_loaded = store.load(&live)?.is_some();
    store.delete(&live)?;
    ensure!(
        removed >= 3,
        "clear_expired removed {removed}, but this case alone had 3 expired"
    );
    for key in &expired {
        ensure!(
            !store.exists(key)?,
            "an expired record still exists after clear_expired"
        );
    }
    ensure!(live_loaded, "clear_expired removed a live record");
    Ok(())
}

/// How many expired records the long-clear case leaves for `clear_expired`.
const MANY_EXPIRED: usize = 200;

/// `clear_expired`: "It may take long (millions of rows): it should never hold a lock for long,
/// and may report how far it got through
/// [`Progress::of`](sessionkit_sdk::host::Progress::of)`("clear_expired")`." — requests on
/// another thread load and save a live session while a clear of many records runs, and every
/// one of them succeeds (a clear holding one lock throughout would time them out).
fn clear_expired_of_many_records_lets_requests_through(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let mut expired = Vec::with_capacity(MANY_EXPIRED);
    for n in 0..MANY_EXPIRED {
        expired.push(store.create(expired_write(&engine, &new_key(), json!({"n": n}))?)?);
    }
    let live = store.create(live_write(&engine, &new_key(), json!({"turn": 0}))?)?;
    let clearing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let requests = {
        let (engine, live, clearing) = (engine.clone(), live.clone(), Arc::clone(&clearing));
        std::thread::spawn(move || -> Result<usize, Failure> {
            let mut served = 0;
            while clearing.load(std::sync::atomic::Ordering::Acquire) || served == 0 {
                ensure!(
                    engine.store().load(&live)?.is_some(),
                    "a live session did not load during clear_expired"
                );
                engine
                    .store()
                    .save(live_write(&engine, &live, json!({ "turn": served }))?)?;
                served += 1;
            }
            Ok(served)
        })
    };
    let removed = store.clear_expired();
    clearing.store(false, std::sync::atomic::Ordering::Release);
    let served = requests
        .join()
        .map_err(|_| Failure::new("the request thread panicked"))?;
    let left = expired
        .iter()
        .map(|key| store.exists(key))
        .collect::<Result<Vec<_>, _>>()?;
    store.delete(&live)?;
    let removed = removed?;
    served?;
    ensure!(
        removed >= MANY_EXPIRED as u64,
        "clear_expired removed {removed}, but this case alone had {MANY_EXPIRED} expired"
    );
    ensure!(
        !left.contains(&true),
        "expired records still exist after clear_expired"
    );
    Ok(())
}

/// `clear_expired`: "An engine that expires records by itself (no `CLEAR_EXPIRED` capability)
/// returns 0."
fn clear_expired_returns_zero_without_the_capability(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = store.create(expired_write(&engine, &new_key(), json!({"old": 1}))?)?;
    let removed = store.clear_expired();
    store.delete(&key)?;
    ensure_eq!(
        removed?,
        0,
        "clear_expired of an engine without CLEAR_EXPIRED"
    );
    Ok(())
}

/// The engine's library and a store of it opened with the engine's own settings, so a case can ask
/// the store itself (the host caches its answer at open). `None` for an engine built in-process
/// (`Engine::from_store`), which has no library to reopen.
fn raw_store(engine: &Engine) -> Result<Option<(EngineLibrary, PluginStore)>, Failure> {
    let path = &engine.description().path;
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    let library = load_library(path).map_err(|error| Failure::new(error.to_string()))?;
    let clock = Arc::new(SharedClock::new(Arc::new(SystemClock)));
    let store = library
        .open(&engine.settings().engine_settings_json(), clock)
        .map_err(|error| Failure::new(error.to_string()))?;
    Ok(Some((library, store)))
}

/// `capabilities`: "Answers the same for the whole life of the store." Asked of the store itself
/// before and after a round of every contract call. An in-process engine has no library to
/// reopen, so there two fresh opens must agree instead.
fn capabilities_answer_the_same_for_the_whole_life_of_the_store(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let Some((_library, store)) = raw_store(&engine)? else {
        ensure_eq!(
            t.engine()?.capabilities(),
            engine.capabilities(),
            "capabilities of two opens of the same settings"
        );
        return Ok(());
    };
    let before = store.capabilities();
    let key = new_key();
    // The results are other cases' business; this one only needs every call made.
    let stored = store.create(live_raw_write(&key, "data")).unwrap_or(key);
    let _ = store.exists(&stored);
    let _ = store.load(&stored);
    let _ = store.save(live_raw_write(&stored, "more"));
    let _ = store.clear_expired();
    let _ = store.delete(&stored);
    let _ = store.sessions_of_account(new_account_id());
    ensure_eq!(
        store.capabilities(),
        before,
        "capabilities after create, exists, load, save, clear_expired and delete"
    );
    ensure_eq!(
        store.capabilities(),
        before,
        "capabilities asked twice in a row"
    );
    Ok(())
}

/// `capabilities`: "The host's view of the store is the union of both sets; a store cannot take
/// away a declared capability." The declared set is the library's `EngineInfo`; the added set is
/// the opened store's answer. An in-process engine has no library to read them from apart, so
/// there the host's view must hold at least what every open reports.
fn capabilities_the_host_sees_are_the_union_of_declared_and_added(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let Some((library, store)) = raw_store(&engine)? else {
        let other = t.engine()?.capabilities();
        ensure!(
            engine.capabilities().contains(other),
            "the host's view {:?} lacks part of another open's {other:?}",
            engine.capabilities()
        );
        return Ok(());
    };
    let declared = library.info.capabilities;
    let added = store.capabilities();
    ensure_eq!(
        engine.capabilities(),
        declared | added,
        "the host's view against declared {declared:?} | added {added:?}"
    );
    ensure!(
        engine.capabilities().contains(declared),
        "the host's view lost a declared capability"
    );
    Ok(())
}

/// `sessions_of_account`: "Without the capability, fails with `Unsupported`."
fn sessions_of_account_without_the_capability_fails_with_unsupported(
    t: &crate::Target,
) -> CaseResult {
    let engine = t.engine()?;
    match engine.sessions_of_account(new_account_id()) {
        Err(error) if is_unsupported(&error) => Ok(()),
        other => Err(Failure::new(format!(
            "expected an 'unsupported' error, got {other:?}"
        ))),
    }
}

/// `delete_sessions_of_account`: "Without the capability, fails with `Unsupported`."
fn delete_sessions_of_account_without_the_capability_fails_with_unsupported(
    t: &crate::Target,
) -> CaseResult {
    let engine = t.engine()?;
    match engine.delete_sessions_of_account(new_account_id(), None) {
        Err(error) if is_unsupported(&error) => Ok(()),
        other => Err(Failure::new(format!(
            "expected an 'unsupported' error, got {other:?}"
        ))),
    }
}

/// A live record of `account` (`_auth_user_id` as Django's auth stores it: a string).
fn account_write(engine: &Engine, key: &str, account: i64) -> Result<SessionWrite, Failure> {
    live_write(
        engine,
        key,
        json!({"_auth_user_id": account.to_string(), "k": key}),
    )
}

/// The keys `sessions_of_account` lists, failing on a key listed twice.
fn listed(engine: &Engine, account: i64) -> Result<BTreeSet<String>, Failure> {
    let records = engine.sessions_of_account(account)?;
    let mut keys = BTreeSet::new();
    for record in records {
        let key = record.session_key.to_string();
        ensure!(
            keys.insert(key.clone()),
            "sessions_of_account listed {key} twice"
        );
    }
    Ok(keys)
}

/// `sessions_of_account`: "Lists each live session saved with that account exactly once; never
/// an expired one, a deleted one, or one whose `_auth_user_id` was removed or changed by a later
/// save."
fn sessions_of_account_lists_each_live_session_of_the_account_once(
    t: &crate::Target,
) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let account = new_account_id();
    let other = new_account_id();
    let live_a = store.create(account_write(&engine, &new_key(), account)?)?;
    let live_b = store.create(account_write(&engine, &new_key(), account)?)?;
    // Saved twice with the account: still listed once.
    store.save(account_write(&engine, &live_b, account)?)?;
    let expired = new_key();
    store.create(expired_write(
        &engine,
        &expired,
        json!({"_auth_user_id": account.to_string()}),
    )?)?;
    let deleted = store.create(account_write(&engine, &new_key(), account)?)?;
    store.delete(&deleted)?;
    let removed = store.create(account_write(&engine, &new_key(), account)?)?;
    store.save(live_write(&engine, &removed, json!({"k": "logged out"}))?)?;
    let changed = store.create(account_write(&engine, &new_key(), account)?)?;
    store.save(account_write(&engine, &changed, other)?)?;
    let listed_account = listed(&engine, account);
    let listed_other = listed(&engine, other);
    for key in [&live_a, &live_b, &expired, &removed, &changed] {
        store.delete(key)?;
    }
    let expected: BTreeSet<String> = [live_a, live_b].into_iter().collect();
    ensure_eq!(listed_account?, expected, "sessions of the account");
    let expected_other: BTreeSet<String> = [changed].into_iter().collect();
    ensure_eq!(
        listed_other?,
        expected_other,
        "sessions of the account it changed to"
    );
    Ok(())
}

/// `delete_sessions_of_account`: "Afterwards `sessions_of_account` lists only `keep` (if it
/// belongs to the account)."
fn delete_sessions_of_account_leaves_only_keep(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let account = new_account_id();
    let keys: Vec<String> = (0..3)
        .map(|_| {
            store
                .create(account_write(&engine, &new_key(), account)?)
                .map_err(Failure::from)
        })
        .collect::<Result<_, _>>()?;
    let deleted = engine.delete_sessions_of_account(account, Some(&keys[0]))?;
    ensure_eq!(deleted, 2, "deleted count with keep");
    let expected: BTreeSet<String> = [keys[0].clone()].into_iter().collect();
    ensure_eq!(
        listed(&engine, account)?,
        expected,
        "sessions left with keep"
    );
    ensure!(
        store.load(&keys[0])?.is_some(),
        "the kept session no longer loads"
    );
    ensure!(
        store.load(&keys[1])?.is_none(),
        "a deleted session still loads"
    );
    // A `keep` of another account protects nothing of this one.
    let stranger = store.create(account_write(&engine, &new_key(), new_account_id())?)?;
    let deleted = engine.delete_sessions_of_account(account, Some(&stranger))?;
    ensure_eq!(
        deleted,
        1,
        "deleted count when keep belongs to another account"
    );
    ensure!(
        listed(&engine, account)?.is_empty(),
        "sessions were left after deleting them all"
    );
    ensure!(
        store.load(&stranger)?.is_some(),
        "the other account's kept session was deleted"
    );
    store.delete(&stranger)?;
    Ok(())
}

/// `delete_sessions_of_account`: "Sessions of other accounts are untouched."
fn delete_sessions_of_account_leaves_other_accounts_untouched(t: &crate::Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let account = new_account_id();
    let other = new_account_id();
    let mine = store.create(account_write(&engine, &new_key(), account)?)?;
    let theirs = store.create(account_write(&engine, &new_key(), other)?)?;
    let anonymous = store.create(live_write(&engine, &new_key(), json!({"cart": 1}))?)?;
    let deleted = engine.delete_sessions_of_account(account, None)?;
    let theirs_listed = listed(&engine, other)?;
    let theirs_loads = store.load(&theirs)?.is_some();
    let anonymous_loads = store.load(&anonymous)?.is_some();
    let mine_loads = store.load(&mine)?.is_some();
    for key in [&theirs, &anonymous] {
        store.delete(key)?;
    }
    ensure_eq!(deleted, 1, "deleted count");
    ensure!(!mine_loads, "the account's session still loads");
    ensure!(
        theirs_loads && theirs_listed.contains(&theirs),
        "another account's session was touched"
    );
    ensure!(anonymous_loads, "a session without an account was deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The build checks that every `# Behavior` bullet of the contract has a case: each bullet
    //! must be quoted, whole, in the doc of a case (`` `method`: "bullet" ``) in `src/cases/`.
    //! Bullets added to `sdk/src/store.rs` later are enforced without touching this test.

    use std::{fs, path::Path};

    /// The contract, read at compile time so a new bullet rebuilds this test.
    const CONTRACT: &str = include_str!("../../../sdk/src/store.rs");

    /// Each `# Behavior` bullet of the contract with the method it belongs to.
    fn behavior_bullets(source: &str) -> Vec<(String, String)> {
        let mut bullets = Vec::new();
        let mut docs: Vec<String> = Vec::new();
        for line in source.lines() {
            let trimmed = line.trim_start();
            if let Some(doc) = trimmed.strip_prefix("///") {
                docs.push(doc.strip_prefix(' ').unwrap_or(doc).to_owned());
                continue;
            }
            if let Some(method) = trimmed
                .strip_prefix("fn ")
                .and_then(|rest| rest.split('(').next())
            {
                let mut in_behavior = false;
                for doc in &docs {
                    if doc.starts_with('#') {
                        in_behavior = doc.trim() == "# Behavior";
                    } else if in_behavior && let Some(first) = doc.strip_prefix("- ") {
                        bullets.push((method.to_owned(), first.to_owned()));
                    } else if in_behavior
                        && doc.starts_with("  ")
                        && let Some((_, text)) = bullets.last_mut()
                    {
                        text.push(' ');
                        text.push_str(doc.trim());
                    }
                }
            }
            docs.clear();
        }
        bullets
    }

    /// `text` as it reads, not as it links: rustdoc links reduced to their text, paths to their
    /// last segment, quotes unified and whitespace collapsed.
    fn normalize(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('[') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find(']') {
                Some(close) => {
                    out.push_str(&after[..close]);
                    rest = &after[close + 1..];
                    if rest.starts_with('(')
                        && let Some(end) = rest.find(')')
                    {
                        rest = &rest[end + 1..];
                    }
                }
                None => {
                    out.push('[');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        let out = out.replace("ErrorKind::", "").replace('"', "'");
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Every doc comment block (consecutive `///` lines) of the case files, normalized.
    fn case_docs() -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cases");
        let mut blocks = Vec::new();
        for entry in fs::read_dir(&dir).expect("src/cases is readable") {
            let path = entry.expect("a directory entry").path();
            if path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let source = fs::read_to_string(&path).expect("a case file is readable");
            let mut block = String::new();
            for line in source.lines() {
                match line.trim_start().strip_prefix("///") {
                    Some(doc) => {
                        block.push(' ');
                        block.push_str(doc);
                    }
                    None if !block.is_empty() => {
                        blocks.push(normalize(&std::mem::take(&mut block)))
                    }
                    None => {}
                }
            }
        }
        blocks
    }

    #[test]
    fn the_contract_has_behavior_bullets_to_check() {
        let bullets = behavior_bullets(CONTRACT);
        assert!(
            bullets.len() >= 24,
            "found only {} bullets; did the doc layout of sdk/src/store.rs change? {bullets:#?}",
            bullets.len()
        );
        assert!(
            bullets.iter().any(|(method, text)| method == "load"
                && text.starts_with("An unknown key gives `None`"))
        );
    }

    #[test]
    fn every_behavior_bullet_of_the_contract_is_quoted_by_a_case() {
        let docs = case_docs();
        let missing: Vec<String> = behavior_bullets(CONTRACT)
            .into_iter()
            .filter(|(method, text)| {
                let quote = normalize(&format!("`{method}`: '{text}'"));
                // A case may end its quote inside the closing quote mark: "... text."
                let open_quote = quote.trim_end_matches('\'');
                !docs.iter().any(|doc| doc.contains(open_quote))
            })
            .map(|(method, text)| format!("{method}: {text}"))
            .collect();
        assert!(
            missing.is_empty(),
            "no case quotes these contract bullets (add a case whose doc is \
             `method`: \"bullet\"):\n{}",
            missing.join("\n")
        );
    }
}
