//! Session keys (Django's `SessionBase._get_new_session_key` and `_validate_session_key`): what is
//! minted, what is accepted, and that an invalid or hostile key (wrong length, characters outside
//! the alphabet, a path) never reaches the engine (CVE-2015-3982, CVE-2020-13254).

use serde_json::json;
use sessionkit::KeyFormat;
use sessionkit_codec::key::VALID_KEY_CHARS;

use super::reason;
use crate::{
    Case, Group, Target,
    support::{CaseResult, key_of, live_write, new_key, saved},
};

pub(super) fn cases() -> Vec<Case> {
    use Group::Keys as G;
    let django_keys =
        |case: Case| case.key_format(KeyFormat::DjangoSessionKey, reason::DJANGO_KEYS);
    vec![
        django_keys(case!(G, new_keys_are_32_characters_of_the_django_alphabet)),
        django_keys(case!(G, create_mints_a_new_key_each_time)),
        django_keys(case!(G, empty_key_is_no_key_cve_2015_3982)),
        django_keys(case!(G, key_shorter_than_8_characters_is_no_key)),
        django_keys(case!(G, key_of_8_characters_is_kept)),
        django_keys(case!(G, key_of_40_characters_is_kept_and_41_is_not)),
        django_keys(case!(G, fixed_key_outside_the_django_alphabet_is_no_key)),
        case!(G, save_after_an_invalid_key_mints_a_new_key),
        django_keys(case!(G, overlong_key_loads_an_empty_session_cve_2020_13254)),
        django_keys(case!(G, invalid_variants_of_a_live_key_reach_nothing)),
        case!(G, fixed_flush_of_a_session_with_an_invalid_key_succeeds),
    ]
}

/// Hostile or malformed keys that must all be treated as "no key" (none is 8–40 characters of
/// `[a-z0-9]`).
const HOSTILE_KEYS: &[&str] = &[
    "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF",
    "../../../../../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd00000",
    "a\\b\\c\\d\\e\\f\\g",
    "a/b/c/d/e/f/g/h",
    "abcdefgh abcdefgh",
    "abcdefgh\0abcdefgh",
    "abcdefgh;abcdefgh",
    "\"abcdefghabcdefgh\"",
    "abcdefgh\nabcdefgh",
    "abcdéfghabcdefgh",
    "0123456789abcdef-0123456789abcdef",
];

/// Django mints `get_random_string(32, VALID_KEY_CHARS)`: every key is 32 characters of
/// `[a-z0-9]` (lower case only, so keys are safe on case-insensitive file systems).
fn new_keys_are_32_characters_of_the_django_alphabet(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    for _ in 0..5 {
        let (_, key) = saved(&engine, json!({"n": 1}))?;
        engine.store().delete(&key)?;
        ensure_eq!(key.len(), 32, "length of minted key {key:?}");
        ensure!(
            key.chars().all(|c| VALID_KEY_CHARS.contains(c)),
            "minted key {key:?} has characters outside [a-z0-9]"
        );
    }
    Ok(())
}

/// Every `create()` mints a new key and marks the session modified (Django's `SessionBase.create`).
fn create_mints_a_new_key_each_time(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(None);
    session.create()?;
    let first = key_of(&session)?;
    ensure!(
        session.modified(),
        "create did not mark the session modified"
    );
    session.set_modified(false);
    session.create()?;
    let second = key_of(&session)?;
    ensure!(
        session.modified(),
        "the second create did not mark the session modified"
    );
    let first_exists = session.exists(&first)?;
    let second_exists = session.exists(&second)?;
    engine.store().delete(&first)?;
    engine.store().delete(&second)?;
    ensure!(first != second, "two creates gave the same key");
    ensure!(
        first_exists && second_exists,
        "a created session does not exist"
    );
    Ok(())
}

/// Django `test_session_key_empty_string_invalid` and CVE-2015-3982 (everyone with an empty
/// cookie shared one session): an empty key is no key.
fn empty_key_is_no_key_cve_2015_3982(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let session = engine.session(Some(""));
    ensure_eq!(session.session_key(), None, "session_key of an empty key");
    ensure!(
        !engine.is_valid_key(""),
        "the engine calls an empty key valid"
    );
    Ok(())
}

/// Django `test_session_key_too_short_invalid`: a 7-character key is no key.
fn key_shorter_than_8_characters_is_no_key(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let session = engine.session(Some("1234567"));
    ensure_eq!(
        session.session_key(),
        None,
        "session_key of a 7-character key"
    );
    Ok(())
}

/// Django `test_session_key_valid_string_saved`: an 8-character key is kept.
fn key_of_8_characters_is_kept(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let session = engine.session(Some("12345678"));
    ensure_eq!(
        session.session_key(),
        Some("12345678"),
        "session_key of an 8-character key"
    );
    Ok(())
}

/// Django's column holds up to 40 characters: a 40-character key is a key (a Django row may
/// have one), a 41-character key is not.
fn key_of_40_characters_is_kept_and_41_is_not(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let forty = "a".repeat(40);
    let forty_one = "a".repeat(41);
    ensure_eq!(
        engine.session(Some(&forty)).session_key(),
        Some(forty.as_str()),
        "40 characters"
    );
    ensure_eq!(
        engine.session(Some(&forty_one)).session_key(),
        None,
        "41 characters"
    );
    Ok(())
}

/// Quirk, fixed: Django's base class accepts any key of 8+ characters (only the file engine
/// checks the alphabet, and raises). sessionkit treats every key outside `[a-z0-9]{8,40}` as no
/// key for every engine: upper case, path traversal, separators, NUL, spaces, quotes, non-ASCII
/// (Django `FileSessionTests.test_invalid_key_backslash`/`_forwardslash` included).
fn fixed_key_outside_the_django_alphabet_is_no_key(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    for key in HOSTILE_KEYS {
        ensure!(
            !engine.is_valid_key(key),
            "the engine calls {key:?} a valid key"
        );
        let mut session = engine.session(Some(key));
        ensure_eq!(session.session_key(), None, "session_key of {key:?}");
        ensure!(
            session.load()?.is_empty(),
            "load with key {key:?} gave data"
        );
    }
    Ok(())
}

/// Django `test_invalid_key`: a session opened with an invalid key ("1") and saved gets a new,
/// valid key and no data.
fn save_after_an_invalid_key_mints_a_new_key(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(Some("1"));
    session.save()?;
    let key = key_of(&session)?;
    let cat = session.get_value("cat")?;
    session.delete()?;
    ensure!(key != "1", "save kept the invalid key \"1\"");
    ensure!(
        engine.is_valid_key(&key),
        "save minted an invalid key {key:?}"
    );
    ensure_eq!(cat, None, "data of the new session");
    Ok(())
}

/// Django `test_load_overlong_key` (cache and cached_db) and CVE-2020-13254: overlong keys
/// (1 240 characters as in Django's test, 4 096, 1 MiB) load an empty session without an error,
/// and the raw contract sees nothing under them.
fn overlong_key_loads_an_empty_session_cve_2020_13254(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    for length in [1240, 4096, 1 << 20] {
        let key = "a".repeat(length);
        let mut session = engine.session(Some(&key));
        ensure!(
            session.load()?.is_empty(),
            "load with a {length}-character key gave data"
        );
        ensure_eq!(
            session.session_key(),
            None,
            "session_key of a {length}-character key"
        );
        ensure!(
            engine.store().load(&key)?.is_none(),
            "the store loaded a {length}-character key"
        );
        ensure!(
            !engine.store().exists(&key)?,
            "a {length}-character key exists"
        );
    }
    Ok(())
}

/// Invalid keys never reach the engine (wrong length or alphabet): variants of a live key that
/// a lenient store might match (upper case, padded, NUL-terminated, with a path, truncated,
/// extended past 40) neither load, exist, nor delete the live session.
fn invalid_variants_of_a_live_key_reach_nothing(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let store = engine.store();
    let key = store.create(live_write(&engine, &new_key(), json!({"secret": "mine"}))?)?;
    let variants = [
        key.to_uppercase(),
        format!("{key} "),
        format!(" {key}"),
        format!("{key}\0"),
        format!("{key}\0garbage"),
        format!("{key}\n"),
        format!("{key}/"),
        format!("../{key}"),
        format!("./{key}"),
        format!("{key}{}", "a".repeat(9)),
        key[..7].to_owned(),
        format!("{key}%00"),
    ];
    let mut outcome = Ok(());
    for variant in &variants {
        let mut session = engine.session(Some(variant));
        let checks = [
            (session.session_key().is_none(), "the session kept the key"),
            (
                session.get_value("secret")?.is_none(),
                "the session read the live data",
            ),
            (store.load(variant)?.is_none(), "the store loaded a record"),
            (!store.exists(variant)?, "the store says it exists"),
        ];
        store.delete(variant)?;
        if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
            outcome = Err(crate::Failure::new(format!("variant {variant:?}: {what}")));
            break;
        }
    }
    let survived = store.load(&key)?.is_some();
    store.delete(&key)?;
    outcome?;
    ensure!(
        survived,
        "deleting invalid variants of a live key deleted the live session"
    );
    Ok(())
}

/// Quirk, fixed: Django's file engine raises SuspiciousOperation when `flush()` runs on an
/// unloaded session built from an upper-case cookie. Here an invalid key is no key, so flush
/// succeeds and leaves no key.
fn fixed_flush_of_a_session_with_an_invalid_key_succeeds(t: &Target) -> CaseResult {
    let engine = t.engine()?;
    let mut session = engine.session(Some("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF"));
    session.flush()?;
    ensure_eq!(session.session_key(), None, "session_key after flush");
    Ok(())
}
