//! The file engine's behaviour, one test per rule (see the crate README).

mod common;

use std::{
    fs,
    sync::{Arc, Barrier},
    thread,
    time::{Duration, SystemTime},
};

use chrono::{TimeDelta, Utc};
use serde_json::json;
use sessionkit_codec::{
    SESSION_STORE_SALT,
    expiry::ManualClock,
    signing::SessionCodec,
    time::{from_datetime, isoformat, to_datetime},
};
use sessionkit_engine_file::{
    CAPABILITIES, ENGINE_NAME, FileConfig, FileEngine, FileStore, MAX_FILE_BYTES,
};
use sessionkit_sdk::{Capabilities, Engine, ErrorKind, KeyFormat, SessionStore};

use common::{Fixture, SECRET, key, mtime_utc, write_of};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

// ---------------------------------------------------------------------------------------------
// Engine description and opening.

#[test]
fn engine_info_declares_the_file_engine() {
    let info = FileEngine::info();
    assert_eq!(info.name.as_str(), ENGINE_NAME);
    assert_eq!(info.name.as_str(), "file");
    assert_eq!(info.salt.as_str(), "django.contrib.sessions.SessionStore");
    assert_eq!(info.key_format, KeyFormat::DjangoSessionKey);
    let expected = Capabilities::SERVER_SIDE_INVALIDATION
        | Capabilities::CLEAR_EXPIRED
        | Capabilities::PERSISTENT
        | Capabilities::SHARED_BETWEEN_PROCESSES
        | Capabilities::CONDITIONAL_SAVE;
    assert_eq!(info.capabilities, expected);
    assert_eq!(CAPABILITIES, expected);
    assert!(!info.capabilities.contains(Capabilities::ACCOUNT_INDEX));
}

#[test]
fn open_through_the_engine_uses_session_file_path() {
    let dir = tempfile::tempdir().unwrap();
    let settings = json!({
        "SECRET_KEY": SECRET, "SECRET_KEY_FALLBACKS": [], "SESSION_COOKIE_NAME": "sid",
        "SESSION_COOKIE_AGE": 60, "SESSION_FILE_PATH": dir.path(), "CACHES": {},
    });
    let store = FileEngine::open(&settings.to_string()).unwrap();
    assert_eq!(store.config().directory(), dir.path());
    let fixture = Fixture::new();
    store
        .create(fixture.write(&key(1), json!({"a": 1})))
        .unwrap();
    assert!(dir.path().join(format!("sid{}", key(1))).is_file());
}

#[test]
fn missing_directory_is_a_config_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let error = FileStore::open(&FileConfig::new(&missing, SECRET)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert!(error.message.contains("SESSION_FILE_PATH"), "{error}");
    assert!(
        error.message.contains(&*missing.to_string_lossy()),
        "{error}"
    );

    let settings = json!({"SECRET_KEY": SECRET, "SESSION_FILE_PATH": missing});
    let error = FileEngine::open(&settings.to_string()).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert!(error.message.contains("no-such-dir"), "{error}");
}

#[test]
fn a_file_as_directory_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    fs::write(&file, b"x").unwrap();
    let error = FileStore::open(&FileConfig::new(&file, SECRET)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert!(error.message.contains("not a directory"), "{error}");
}

#[cfg(unix)]
#[test]
fn a_world_writable_directory_without_sticky_bit_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let error = FileStore::open(&FileConfig::new(dir.path(), SECRET)).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Config);
    assert!(error.message.contains("sticky"), "{error}");
    // /tmp's mode (1777) is accepted: the sticky bit stops others replacing our files.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    FileStore::open(&FileConfig::new(dir.path(), SECRET)).unwrap();
}

#[test]
fn bad_settings_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    for settings in [
        json!({"SESSION_FILE_PATH": dir.path()}),
        json!({"SECRET_KEY": SECRET, "SESSION_FILE_PATH": dir.path(), "SESSION_COOKIE_NAME": "../up"}),
        json!({"SECRET_KEY": SECRET, "SESSION_FILE_PATH": dir.path(), "SESSION_COOKIE_AGE": "x"}),
    ] {
        let error = FileEngine::open(&settings.to_string()).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config, "{settings}: {error}");
    }
    assert!(
        fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written"
    );
}

// ---------------------------------------------------------------------------------------------
// Keys never become paths outside the directory.

#[test]
fn key_to_path_refuses_every_non_key() {
    let fixture = Fixture::new();
    let hostile = [
        "../x",
        "../../../../etc/passwd",
        "..%2F..%2Fetc",
        "a/bcdefghij",
        "a\\bcdefghij",
        "abcdefgh\0ijk",
        "ABCDEFGHIJKL",
        "abcdefgHijkl",
        "..........",
        "abcdefg hij",
        "abcdéfghijk",
        "",
        "short",
        &"a".repeat(41),
    ];
    for key in hostile {
        assert!(
            fixture.store.key_to_path(key).is_err(),
            "{key:?} became a path"
        );
    }
    let path = fixture.store.key_to_path("abcdefgh").unwrap();
    assert_eq!(path.parent().unwrap(), fixture.dir.path());
    assert_eq!(path.file_name().unwrap(), "sessionidabcdefgh");
    let forty = "z9".repeat(20);
    assert_eq!(
        fixture.store.key_to_path(&forty).unwrap(),
        fixture.path(&forty)
    );
}

#[test]
fn hostile_keys_touch_no_file_inside_or_outside_the_directory() {
    let outer = tempfile::tempdir().unwrap();
    let inner = outer.path().join("sessions");
    fs::create_dir(&inner).unwrap();
    // A file just outside the directory that a traversal would hit.
    let victim = outer.path().join("victim");
    fs::write(&victim, b"keep me").unwrap();
    let store = FileStore::open(&FileConfig::new(&inner, SECRET)).unwrap();
    let fixture = Fixture::new();
    let data = fixture.encode(json!({"a": 1}));

    for key in [
        "../victim",
        "..\\victim",
        "../sessionidx",
        "victim\0abcd",
        "VICTIMABCDEF",
    ] {
        assert_eq!(store.load(key).unwrap(), None, "{key:?}");
        assert!(!store.exists(key).unwrap(), "{key:?}");
        store.delete(key).unwrap();
        let write = write_of(
            key,
            &data,
            "{}",
            from_datetime(Utc::now()).micros + 10_000_000,
        );
        assert!(store.create(write.clone()).is_err(), "create {key:?}");
        assert!(store.save(write).is_err(), "save {key:?}");
    }
    assert_eq!(fs::read(&victim).unwrap(), b"keep me");
    let outside: Vec<_> = fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside.len(), 2, "{outside:?}");
    assert!(
        fs::read_dir(&inner).unwrap().next().is_none(),
        "nothing written inside"
    );
}

// ---------------------------------------------------------------------------------------------
// Layout and writes.

#[test]
fn create_stores_exactly_the_session_data_under_django_file_name() {
    let fixture = Fixture::new();
    let write = fixture.write(&key(1), json!({"user": 7}));
    assert_eq!(fixture.store.create(write.clone()).unwrap(), key(1));
    assert_eq!(fixture.entries(), [format!("sessionid{}", key(1))]);
    let contents = fs::read_to_string(fixture.path(&key(1))).unwrap();
    assert_eq!(contents, write.record.session_data.as_str());
}

#[cfg(unix)]
#[test]
fn session_files_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt;
    let fixture = Fixture::new();
    fixture
        .store
        .create(fixture.write(&key(1), json!({"a": 1})))
        .unwrap();
    let mode = fs::metadata(fixture.path(&key(1)))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "created: {mode:o}");
    fixture
        .store
        .save(fixture.write(&key(1), json!({"a": 2})))
        .unwrap();
    let mode = fs::metadata(fixture.path(&key(1)))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "saved: {mode:o}");
}

#[test]
fn create_of_a_taken_key_fails_with_already_exists_and_keeps_the_file() {
    let fixture = Fixture::new();
    let first = fixture.write(&key(1), json!({"who": "first"}));
    fixture.store.create(first.clone()).unwrap();
    let error = fixture
        .store
        .create(fixture.write(&key(1), json!({"who": "second"})))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::AlreadyExists, "{error}");
    assert_eq!(
        fs::read_to_string(fixture.path(&key(1))).unwrap(),
        first.record.session_data.as_str()
    );
    assert_eq!(
        fixture.entries().len(),
        1,
        "no temporary left: {:?}",
        fixture.entries()
    );
}

#[test]
fn create_over_a_django_placeholder_fails_with_already_exists() {
    let fixture = Fixture::new();
    fixture.plant(&key(1), b"");
    let error = fixture
        .store
        .create(fixture.write(&key(1), json!({})))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::AlreadyExists);
}

#[test]
fn save_of_a_missing_key_fails_with_not_found_and_creates_nothing() {
    let fixture = Fixture::new();
    let error = fixture
        .store
        .save(fixture.write(&key(1), json!({"a": 1})))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound, "{error}");
    assert!(fixture.entries().is_empty(), "{:?}", fixture.entries());
}

#[test]
fn save_after_delete_never_resurrects_the_session() {
    let fixture = Fixture::new();
    fixture
        .store
        .create(fixture.write(&key(1), json!({"a": 1})))
        .unwrap();
    fixture.store.delete(&key(1)).unwrap();
    let error = fixture
        .store
        .save(fixture.write(&key(1), json!({"a": 2})))
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert_eq!(fixture.store.load(&key(1)).unwrap(), None);
    assert!(!fixture.store.exists(&key(1)).unwrap());
    assert!(fixture.entries().is_empty(), "{:?}", fixture.entries());
}

#[test]
fn save_replaces_the_content_and_leaves_no_temporary() {
    let fixture = Fixture::new();
    fixture
        .store
        .create(fixture.write(&key(1), json!({"n": 1})))
        .unwrap();
    let second = fixture.write(&key(1), json!({"n": 2}));
    assert_eq!(fixture.store.save(second.clone()).unwrap(), key(1));
    let loaded = fixture.store.load(&key(1)).unwrap().unwrap();
    assert_eq!(loaded.session_data, second.record.session_data);
    assert_eq!(fixture.decode(&loaded)["n"], 2);
    assert_eq!(fixture.entries(), [format!("sessionid{}", key(1))]);
}

#[test]
fn write_errors_are_reported_not_swallowed() {
    let fixture = Fixture::new();
    fixture
        .store
        .create(fixture.write(&key(1), json!({"a": 1})))
        .unwrap();
    // The directory disappears under a running store: Django drops this OSError silently.
    fs::remove_dir_all(fixture.dir.path()).unwrap();
    let error = fixture
        .store
        .save(fixture.write(&key(1), json!({"a": 2})))
        .unwrap_err();
    assert_ne!(
        error.kind,
        ErrorKind::NotFound,
        "an I/O failure is not a vanished session"
    );
    assert!(
        error.message.contains("save") || error.message.contains("write"),
        "{error}"
    );
    assert!(
        fixture
            .store
            .create(fixture.write(&key(2), json!({})))
            .is_err()
    );
}

#[test]
fn data_that_could_not_be_read_back_is_refused() {
    let fixture = Fixture::new();
    let future = from_datetime(Utc::now()).micros + 3_600_000_000;
    let too_big = "a".repeat(MAX_FILE_BYTES as usize + 1);
    let error = fixture
        .store
        .create(write_of(&key(1), &too_big, "{}", future))
        .unwrap_err();
    assert!(error.message.contains("limit"), "{error}");
    let error = fixture
        .store
        .create(write_of(&key(2), "ünïcode", "{}", future))
        .unwrap_err();
    assert!(error.message.contains("ASCII"), "{error}");
    assert!(fixture.entries().is_empty(), "{:?}", fixture.entries());
}

#[test]
fn error_messages_never_carry_a_whole_key() {
    let fixture = Fixture::new();
    let secret_key = "abcdefghijklmnopqrstuvwxyz012345";
    fixture
        .store
        .create(fixture.write(secret_key, json!({})))
        .unwrap();
    let error = fixture
        .store
        .create(fixture.write(secret_key, json!({})))
        .unwrap_err();
    assert!(!error.message.contains(secret_key), "{error}");
    let error = fixture
        .store
        .save(fixture.write(&key(9), json!({})))
        .unwrap_err();
    assert!(!error.message.contains(&key(9)), "{error}");
}

// ---------------------------------------------------------------------------------------------
// load, exists, delete.

#[test]
fn load_of_an_unknown_key_gives_none_and_creates_nothing() {
    let fixture = Fixture::new();
    assert_eq!(fixture.store.load(&key(1)).unwrap(), None);
    assert!(fixture.entries().is_empty());
}

#[test]
fn load_gives_back_the_record_with_its_expire_date() {
    let fixture = Fixture::new();
    let cases = [
        json!({"user": 1}),
        json!({"user": 2, "_session_expiry": 300}),
        json!({"user": 3, "_session_expiry": 2.5e3}),
        json!({"user": 4, "_session_expiry": isoformat(Utc::now() + TimeDelta::days(3))}),
        json!({"user": 5, "_session_expiry": null}),
    ];
    for (n, session) in cases.into_iter().enumerate() {
        let write = fixture.write(&key(n as u64), session.clone());
        fixture.store.create(write.clone()).unwrap();
        let loaded = fixture
            .store
            .load(&key(n as u64))
            .unwrap()
            .expect("live session");
        assert_eq!(loaded, write.record, "{session}");
    }
}

#[test]
fn exists_follows_create_and_delete_and_ignores_expiry() {
    let fixture = Fixture::new();
    assert!(!fixture.store.exists(&key(1)).unwrap());
    fixture
        .store
        .create(fixture.write(&key(1), json!({})))
        .unwrap();
    assert!(fixture.store.exists(&key(1)).unwrap());
    fixture.age_file(&fixture.path(&key(1)), Duration::from_secs(30 * 86_400));
    assert!(
        fixture.store.exists(&key(1)).unwrap(),
        "expired but still on disk"
    );
    fixture.store.delete(&key(1)).unwrap();
    assert!(!fixture.store.exists(&key(1)).unwrap());
    fixture.store.delete(&key(1)).unwrap();
}

#[test]
fn a_file_django_wrote_loads_with_its_data() {
    // Django's exact bytes: the same signing.dumps string under the same SECRET_KEY.
    let fixture = Fixture::new();
    let data = fixture.encode(json!({"_auth_user_id": "42"}));
    fixture.plant(&key(1), data.as_bytes());
    let loaded = fixture.store.load(&key(1)).unwrap().unwrap();
    assert_eq!(loaded.session_data.as_str(), data);
    assert_eq!(fixture.decode(&loaded)["_auth_user_id"], "42");
}

#[test]
fn data_signed_with_a_fallback_key_is_judged_by_its_expiry() {
    let fixture = Fixture::with(|c| c.with_secret_key_fallbacks(vec!["old-secret".to_owned()]));
    let old = SessionCodec::new(SESSION_STORE_SALT, b"old-secret", &[]);
    let past = isoformat(Utc::now() - TimeDelta::hours(1));
    let map = json!({"_session_expiry": past})
        .as_object()
        .unwrap()
        .clone();
    let data = old
        .encode(&map, Utc::now().timestamp())
        .unwrap()
        .session_data;
    fixture.plant(&key(1), data.as_bytes());
    // Verified with the fallback, so its ISO expiry counts (a fresh mtime would say "live").
    assert_eq!(fixture.store.load(&key(1)).unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Expiry.

#[test]
fn iso_expiry_in_the_past_expires_and_the_file_is_deleted() {
    let fixture = Fixture::new();
    let data =
        fixture.encode(json!({"_session_expiry": isoformat(Utc::now() - TimeDelta::seconds(5))}));
    fixture.plant(&key(1), data.as_bytes());
    assert_eq!(fixture.store.load(&key(1)).unwrap(), None);
    assert!(
        fixture.entries().is_empty(),
        "expired file deleted: {:?}",
        fixture.entries()
    );
}

#[test]
fn iso_expiry_in_the_future_is_the_expire_date_whatever_the_mtime() {
    let fixture = Fixture::new();
    let at = Utc::now() + TimeDelta::days(40);
    let data = fixture.encode(json!({"_session_expiry": isoformat(at)}));
    let path = fixture.plant(&key(1), data.as_bytes());
    fixture.age_file(&path, Duration::from_secs(365 * 86_400));
    let loaded = fixture.store.load(&key(1)).unwrap().unwrap();
    assert_eq!(loaded.expire_date, from_datetime(at));
}

#[test]
fn naive_iso_expiry_counts_as_utc() {
    let fixture = Fixture::new();
    let at = (Utc::now() + TimeDelta::hours(2))
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let data = fixture.encode(json!({"_session_expiry": at}));
    fixture.plant(&key(1), data.as_bytes());
    let loaded = fixture.store.load(&key(1)).unwrap().unwrap();
    let seconds_left = to_datetime(loaded.expire_date) - Utc::now();
    assert!(seconds_left > TimeDelta::minutes(110) && seconds_left <= TimeDelta::hours(2));
}

#[test]
fn unparsable_iso_expiry_counts_as_absent_like_the_host() {
    // Django raises on these (a 500); the codec, and so the host, reads them as absent.
    let fixture = Fixture::new();
    for (n, bad) in ["next tuesday", "2025-13-45T99:00:00", "9999999-01-01"]
        .into_iter()
        .enumerate()
    {
        let data = fixture.encode(json!({"_session_expiry": bad}));
        let path = fixture.plant(&key(n as u64), data.as_bytes());
        let loaded = fixture.store.load(&key(n as u64)).unwrap().expect(bad);
        let since_mtime = to_datetime(loaded.expire_date) - mtime_utc(&path);
        assert_eq!(since_mtime.num_seconds(), fixture.cookie_age, "{bad}");
        fixture.age_file(&path, 15 * DAY);
        assert_eq!(fixture.store.load(&key(n as u64)).unwrap(), None, "{bad}");
    }
}

#[test]
fn absent_expiry_lives_cookie_age_from_the_mtime() {
    let fixture = Fixture::new();
    let data = fixture.encode(json!({"a": 1}));
    let path = fixture.plant(&key(1), data.as_bytes());
    fixture.age_file(&path, 13 * DAY);
    let loaded = fixture
        .store
        .load(&key(1))
        .unwrap()
        .expect("13 days old, age is 14");
    let expected = mtime_utc(&path) + TimeDelta::seconds(fixture.cookie_age);
    assert_eq!(loaded.expire_date, from_datetime(expected));

    fixture.age_file(&path, 15 * DAY);
    assert_eq!(fixture.store.load(&key(1)).unwrap(), None);
    assert!(!path.exists(), "expired file deleted");
}

#[test]
fn int_expiry_counts_seconds_from_the_last_save() {
    // The documented "fixed" decision: Django's file backend would load this forever.
    let fixture = Fixture::new();
    let data = fixture.encode(json!({"_session_expiry": 60}));
    let path = fixture.plant(&key(1), data.as_bytes());
    fixture.age_file(&path, Duration::from_secs(30));
    let loaded = fixture
        .store
        .load(&key(1))
        .unwrap()
        .expect("30 s into a 60 s expiry");
    let left = to_datetime(loaded.expire_date) - mtime_utc(&path);
    assert_eq!(left.num_seconds(), 60, "expires 60 s after the mtime");

    fixture.age_file(&path, Duration::from_secs(61));
    assert_eq!(
        fixture.store.load(&key(1)).unwrap(),
        None,
        "61 s into a 60 s expiry"
    );
    assert!(!path.exists());
}

#[test]
fn int_expiry_older_than_the_epoch_trick_in_djangos_test_expires() {
    // Django's own quirk check: `_session_expiry = 1` with the mtime at 1970 still loads there.
    let fixture = Fixture::new();
    let data = fixture.encode(json!({"_session_expiry": 1}));
    let path = fixture.plant(&key(1), data.as_bytes());
    fixture.set_mtime(&path, SystemTime::UNIX_EPOCH);
    assert_eq!(fixture.store.load(&key(1)).unwrap(), None);
}

#[test]
fn negative_int_expiry_expires_at_once() {
    let fixture = Fixture::new();
    let data = fixture.encode(json!({"_session_expiry": -1}));
    fixture.plant(&key(1), data.as_bytes());
    assert_eq!(fixture.store.load(&key(1)).unwrap(), None);
}

#[test]
fn zero_or_false_expiry_means_cookie_age() {
    let fixture = Fixture::new();
    for (n, expiry) in [json!(0), json!(false), json!("")].into_iter().enumerate() {
        let data = fixture.encode(json!({"_session_expiry": expiry}));
        let path = fixture.plant(&key(n as u64), data.as_bytes());
        assert!(
            fixture.store.load(&key(n as u64)).unwrap().is_some(),
            "{expiry} fresh"
        );
        fixture.age_file(&path, 15 * DAY);
        assert_eq!(
            fixture.store.load(&key(n as u64)).unwrap(),
            None,
            "{expiry} old"
        );
    }
}

#[test]
fn extreme_expiries_never_panic() {
    let fixture = Fixture::new();
    let values = [
        json!(i64::MAX),
        json!(i64::MIN),
        json!(1e300),
        json!(-1e300),
        json!("9999-12-31T23:59:59.999999+00:00"),
        json!("0001-01-01T00:00:00"),
        json!([1, 2]),
        json!({"nested": true}),
        json!(true),
    ];
    for (n, value) in values.into_iter().enumerate() {
        let data = fixture.encode(json!({"_session_expiry": value}));
        let path = fixture.plant(&key(n as u64), data.as_bytes());
        let _ = fixture.store.load(&key(n as u64)).unwrap();
        if path.exists() {
            fixture.set_mtime(&path, SystemTime::UNIX_EPOCH);
        }
        let _ = fixture.store.load(&key(n as u64)).unwrap();
    }
    fixture.store.clear_expired().unwrap();
}

#[test]
fn extreme_expire_dates_from_the_host_never_panic() {
    let fixture = Fixture::new();
    let data = fixture.encode(json!({"a": 1}));
    fixture
        .store
        .create(write_of(&key(1), &data, "{}", i64::MAX))
        .unwrap();
    assert!(fixture.store.load(&key(1)).unwrap().is_some(), "far future");
    fixture
        .store
        .create(write_of(&key(2), &data, "{}", i64::MIN))
        .unwrap();
    assert_eq!(fixture.store.load(&key(2)).unwrap(), None, "far past");
    fixture
        .store
        .create(write_of(&key(3), &data, "{}", 0))
        .unwrap();
    assert_eq!(fixture.store.load(&key(3)).unwrap(), None, "the epoch");
}

#[test]
fn a_manual_clock_judges_expiry() {
    let fixture = Fixture::new();
    let clock = ManualClock::new(Utc::now());
    let store = FileStore::open(&FileConfig::new(fixture.dir.path(), SECRET))
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    store
        .create(fixture.write(&key(1), json!({"_session_expiry": 600})))
        .unwrap();
    assert!(store.load(&key(1)).unwrap().is_some());
    clock.advance(TimeDelta::seconds(601));
    assert_eq!(store.load(&key(1)).unwrap(), None);
}

#[test]
fn expire_date_of_the_host_is_honoured_through_the_mtime() {
    // The host computed expire_date from a clock an hour behind; the file keeps that promise.
    let fixture = Fixture::new();
    let an_hour_ago = Utc::now() - TimeDelta::hours(1);
    let write = fixture.write_at(&key(1), json!({"a": 1}), an_hour_ago);
    fixture.store.create(write.clone()).unwrap();
    assert_eq!(
        fixture.store.load(&key(1)).unwrap().unwrap().expire_date,
        write.record.expire_date
    );

    // A record written already expired does not load.
    let write = fixture.write_at(&key(2), json!({"a": 1}), Utc::now() - TimeDelta::days(15));
    fixture.store.create(write).unwrap();
    assert_eq!(fixture.store.load(&key(2)).unwrap(), None);
}

#[test]
fn opaque_session_data_round_trips_with_its_expire_date() {
    // The contract calls session_data opaque: data the engine cannot decode keeps the
    // expire_date it was written with (through the mtime), and expires on time.
    let fixture = Fixture::new();
    let in_an_hour = from_datetime(Utc::now() + TimeDelta::hours(1)).micros;
    let write = write_of(&key(1), "opaque-payload-1", "{}", in_an_hour);
    fixture.store.create(write.clone()).unwrap();
    assert_eq!(fixture.store.load(&key(1)).unwrap(), Some(write.record));

    let updated = write_of(&key(1), "opaque-payload-2", "{}", in_an_hour + 5_000_000);
    fixture.store.save(updated.clone()).unwrap();
    assert_eq!(fixture.store.load(&key(1)).unwrap(), Some(updated.record));

    let a_second_ago = from_datetime(Utc::now() - TimeDelta::seconds(1)).micros;
    fixture
        .store
        .create(write_of(&key(2), "opaque-expired", "{}", a_second_ago))
        .unwrap();
    assert_eq!(fixture.store.load(&key(2)).unwrap(), None);
}

#[test]
fn the_expiry_is_read_from_signed_data_when_the_plain_json_is_missing() {
    let fixture = Fixture::new();
    let mut write = fixture.write(&key(1), json!({"_session_expiry": 600}));
    write.session_json = "".into();
    fixture.store.create(write.clone()).unwrap();
    // mtime = expire_date - 600 s, so the round trip is exact.
    assert_eq!(
        fixture.store.load(&key(1)).unwrap().unwrap().expire_date,
        write.record.expire_date
    );
}

// ---------------------------------------------------------------------------------------------
// Contents that are not a session.

#[test]
fn an_empty_placeholder_is_no_session_and_is_kept() {
    let fixture = Fixture::new();
    let path = fixture.plant(&key(1), b"");
    assert_eq!(fixture.store.load(&key(1)).unwrap(), None);
    assert!(
        path.exists(),
        "a fresh placeholder may belong to a Django save in progress"
    );
    assert!(fixture.store.exists(&key(1)).unwrap());
}

#[test]
fn undecodable_contents_load_as_stored_and_expire_by_mtime() {
    let fixture = Fixture::new();
    let other = SessionCodec::new(SESSION_STORE_SALT, b"another-secret", &[]);
    let map = json!({"a": 1}).as_object().unwrap().clone();
    let wrong_key = other
        .encode(&map, Utc::now().timestamp())
        .unwrap()
        .session_data;
    let contents = [wrong_key.as_str(), "garbage", "a:b:c", ".eJxxx:1abc:sig"];
    for (n, data) in contents.into_iter().enumerate() {
        let path = fixture.plant(&key(n as u64), data.as_bytes());
        let loaded = fixture
            .store
            .load(&key(n as u64))
            .unwrap()
            .expect("kept, like Django's {}");
        assert_eq!(loaded.session_data.as_str(), data);
        fixture.age_file(&path, 15 * DAY);
        assert_eq!(fixture.store.load(&key(n as u64)).unwrap(), None, "{data}");
    }
}

#[test]
fn non_ascii_contents_are_no_session_and_never_panic() {
    let fixture = Fixture::new();
    fixture.plant(&key(1), "sessión".as_bytes());
    fixture.plant(&key(2), &[0xff, 0xfe, 0x00, 0x80]);
    assert_eq!(fixture.store.load(&key(1)).unwrap(), None);
    assert_eq!(fixture.store.load(&key(2)).unwrap(), None);
}

#[test]
fn an_oversized_file_is_no_session() {
    let fixture = Fixture::new();
    let path = fixture.path(&key(1));
    let file = fs::File::create(&path).unwrap();
    // Sparse: cheap to make, and the engine must not read it all anyway.
    file.set_len(MAX_FILE_BYTES + 1).unwrap();
    drop(file);
    assert_eq!(fixture.store.load(&key(1)).unwrap(), None);
    assert!(path.exists());
}

#[cfg(unix)]
#[test]
fn a_symlink_named_like_a_session_is_never_followed() {
    let fixture = Fixture::new();
    let outside = tempfile::NamedTempFile::new().unwrap();
    fs::write(outside.path(), fixture.encode(json!({"planted": true}))).unwrap();
    std::os::unix::fs::symlink(outside.path(), fixture.path(&key(1))).unwrap();
    assert_eq!(fixture.store.load(&key(1)).unwrap(), None);
    assert_eq!(fixture.store.clear_expired().unwrap(), 0);
    assert!(outside.path().exists());
}

// ---------------------------------------------------------------------------------------------
// clear_expired and temporaries.

#[test]
fn clear_expired_removes_expired_sessions_only_and_counts_them() {
    let fixture = Fixture::new();
    let live = fixture.encode(json!({"live": true}));
    let old_iso =
        fixture.encode(json!({"_session_expiry": isoformat(Utc::now() - TimeDelta::minutes(1))}));
    let future_iso =
        fixture.encode(json!({"_session_expiry": isoformat(Utc::now() + TimeDelta::days(99))}));

    fixture.plant(&key(1), live.as_bytes()); // live
    let aged = fixture.plant(&key(2), live.as_bytes()); // expired by mtime
    fixture.age_file(&aged, 15 * DAY);
    fixture.plant(&key(3), old_iso.as_bytes()); // expired by ISO
    let long = fixture.plant(&key(4), future_iso.as_bytes()); // live by ISO despite old mtime
    fixture.age_file(&long, 30 * DAY);
    let placeholder = fixture.plant(&key(5), b""); // old placeholder
    fixture.age_file(&placeholder, 15 * DAY);
    fixture.plant(&key(6), b""); // fresh placeholder
    let garbage = fixture.plant(&key(7), b"garbage"); // old undecodable
    fixture.age_file(&garbage, 15 * DAY);
    // Not session files: another cookie name, an invalid key, unrelated files.
    for name in [
        "othercookie0123456789",
        "sessionidABCDEFGHIJK",
        "sessionidshort",
        "notes.txt",
    ] {
        let path = fixture.dir.path().join(name);
        fs::write(&path, b"x").unwrap();
        fixture.age_file(&path, 400 * DAY);
    }

    assert_eq!(fixture.store.clear_expired().unwrap(), 4);
    let left = fixture.entries();
    let expected_left = [
        "notes.txt".to_owned(),
        "othercookie0123456789".to_owned(),
        "sessionidABCDEFGHIJK".to_owned(),
        format!("sessionid{}", key(1)),
        format!("sessionid{}", key(4)),
        format!("sessionid{}", key(6)),
        "sessionidshort".to_owned(),
    ];
    let mut expected_left = expected_left.to_vec();
    expected_left.sort();
    assert_eq!(left, expected_left);
    assert!(fixture.store.load(&key(1)).unwrap().is_some());
    assert!(fixture.store.load(&key(4)).unwrap().is_some());
    assert_eq!(
        fixture.store.clear_expired().unwrap(),
        0,
        "nothing left to clear"
    );
}

#[test]
fn clear_expired_uses_the_cookie_name_as_prefix() {
    let fixture = Fixture::with(|c| c.with_cookie_name("sid"));
    let write = fixture.write(&key(1), json!({}));
    fixture.store.create(write).unwrap();
    let path = fixture.dir.path().join(format!("sid{}", key(1)));
    assert!(path.is_file());
    fixture.age_file(&path, 15 * DAY);
    let stranger = fixture.plant(&key(2), fixture.encode(json!({})).as_bytes()); // "sessionid…"
    fixture.age_file(&stranger, 15 * DAY);
    assert_eq!(fixture.store.clear_expired().unwrap(), 1);
    assert!(!path.exists());
    assert!(stranger.exists(), "another cookie name's file is not ours");
}

#[test]
fn a_leftover_temporary_is_never_read_and_is_swept_when_stale() {
    let fixture = Fixture::new();
    let data = fixture.encode(json!({"from": "a crashed save"}));
    // Ours and Django's mkstemp names, each for a key that has no session file.
    let ours = fixture
        .dir
        .path()
        .join(format!(".sessionid{}_out_a1b2c3", key(1)));
    let djangos = fixture
        .dir
        .path()
        .join(format!("sessionid{}_out_x9y8z7", key(2)));
    let fresh = fixture
        .dir
        .path()
        .join(format!(".sessionid{}_out_fresh1", key(3)));
    for path in [&ours, &djangos, &fresh] {
        fs::write(path, data.as_bytes()).unwrap();
    }
    fixture.age_file(&ours, 2 * HOUR);
    fixture.age_file(&djangos, 2 * HOUR);

    for n in 1..=3 {
        assert_eq!(fixture.store.load(&key(n)).unwrap(), None);
        assert!(!fixture.store.exists(&key(n)).unwrap());
    }
    assert_eq!(
        fixture.store.clear_expired().unwrap(),
        0,
        "temporaries are not sessions"
    );
    assert!(
        !ours.exists() && !djangos.exists(),
        "stale temporaries swept"
    );
    assert!(
        fresh.exists(),
        "a temporary younger than an hour may be a save in progress"
    );
}

#[test]
fn a_probe_file_left_by_an_older_version_is_swept_when_stale() {
    // Engine versions before the fix created `.sessionkit-probe…` at open; a crash there left
    // it for ever (issue 9, defect 7). Opening creates nothing now, and old ones are swept.
    let fixture = Fixture::new();
    assert!(
        fixture.entries().is_empty(),
        "open created {:?}",
        fixture.entries()
    );
    let old = fixture.dir.path().join(".sessionkit-probeAb3xYz");
    let fresh = fixture.dir.path().join(".sessionkit-probeQ9r8s7");
    for path in [&old, &fresh] {
        fs::write(path, b"").unwrap();
    }
    fixture.age_file(&old, 2 * HOUR);
    assert_eq!(
        fixture.store.clear_expired().unwrap(),
        0,
        "probes are not sessions"
    );
    assert!(!old.exists(), "a stale probe is swept");
    assert!(
        fresh.exists(),
        "a fresh one may be an older version opening right now"
    );
}

#[test]
fn clear_expired_of_an_empty_directory_is_zero() {
    let fixture = Fixture::new();
    assert_eq!(fixture.store.clear_expired().unwrap(), 0);
}

// ---------------------------------------------------------------------------------------------
// Concurrency.

#[test]
fn concurrent_saves_and_loads_never_observe_a_torn_file() {
    let fixture = Arc::new(Fixture::new());
    let k = key(1);
    fixture
        .store
        .create(fixture.write(&k, json!({"writer": 0, "n": 0})))
        .unwrap();
    let writers = 4;
    let rounds = 60;
    let barrier = Arc::new(Barrier::new(writers + 2));
    let mut handles = Vec::new();
    for writer in 1..=writers {
        let (fixture, barrier, k) = (fixture.clone(), barrier.clone(), k.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            for n in 1..=rounds {
                // Payloads of different sizes, so a torn file would show as a bad signature.
                let pad = "x".repeat((writer * 977 + n * 131) % 5000);
                fixture
                    .store
                    .save(fixture.write(&k, json!({"writer": writer, "n": n, "pad": pad})))
                    .unwrap();
            }
            0
        }));
    }
    for _ in 0..2 {
        let (fixture, barrier, k) = (fixture.clone(), barrier.clone(), k.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            let mut loads = 0;
            for _ in 0..rounds * 3 {
                let record = fixture
                    .store
                    .load(&k)
                    .unwrap()
                    .expect("the session always exists");
                let session = fixture.decode(&record);
                let writer = session["writer"].as_u64().unwrap();
                assert!(writer <= writers as u64);
                loads += 1;
            }
            loads
        }));
    }
    let loads: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(loads, rounds * 3 * 2);
    let last = fixture.store.load(&k).unwrap().unwrap();
    assert_eq!(fixture.decode(&last)["n"], rounds);
    assert_eq!(
        fixture.entries(),
        [format!("sessionid{k}")],
        "no temporary left"
    );
}

#[test]
fn a_save_racing_a_delete_never_resurrects_the_session() {
    let fixture = Arc::new(Fixture::new());
    for round in 0..100 {
        let k = key(round);
        fixture
            .store
            .create(fixture.write(&k, json!({"v": 0})))
            .unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let saver = {
            let (fixture, barrier, k) = (fixture.clone(), barrier.clone(), k.clone());
            thread::spawn(move || {
                let write = fixture.write(&k, json!({"v": 1}));
                barrier.wait();
                fixture.store.save(write)
            })
        };
        barrier.wait();
        fixture.store.delete(&k).unwrap();
        match saver.join().unwrap() {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind, ErrorKind::NotFound, "{e}"),
        }
        // Whatever the order, the delete happened and a save never creates: nothing is left.
        assert!(
            !fixture.store.exists(&k).unwrap(),
            "round {round}: session resurrected"
        );
    }
    assert!(fixture.entries().is_empty(), "{:?}", fixture.entries());
}

#[test]
fn concurrent_creates_of_one_key_let_exactly_one_win() {
    let fixture = Arc::new(Fixture::new());
    for round in 0..50 {
        let k = key(round);
        let barrier = Arc::new(Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|who| {
                let (fixture, barrier, k) = (fixture.clone(), barrier.clone(), k.clone());
                thread::spawn(move || {
                    let write = fixture.write(&k, json!({"who": who}));
                    barrier.wait();
                    fixture.store.create(write.clone()).map(|_| write)
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}");
        for loser in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(loser.kind, ErrorKind::AlreadyExists);
        }
        let stored = fixture.store.load(&k).unwrap().unwrap();
        assert_eq!(stored.session_data, winners[0].record.session_data);
    }
}

#[test]
fn two_stores_on_one_directory_see_each_other() {
    // Two processes' worth of state: separate locks, same files.
    let fixture = Fixture::new();
    let other = FileStore::open(&FileConfig::new(fixture.dir.path(), SECRET)).unwrap();
    fixture
        .store
        .create(fixture.write(&key(1), json!({"a": 1})))
        .unwrap();
    assert!(other.load(&key(1)).unwrap().is_some());
    other.delete(&key(1)).unwrap();
    let error = fixture
        .store
        .save(fixture.write(&key(1), json!({"a": 2})))
        .unwrap_err();
    assert_eq!(
        error.kind,
        ErrorKind::NotFound,
        "no resurrection across stores"
    );
}
