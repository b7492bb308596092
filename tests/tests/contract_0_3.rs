//! Contract 0.4 appended the calls that do not block (`start_call` / `resume_call` /
//! `cancel_call`) to `FfiStore`, the trait the *engine* implements, and gave capability bit
//! `1 << 9` its meaning (`READINESS_CALLS`). Both directions, proven with real libraries:
//!
//! - an engine built against the **0.3 SDK** (`tests/fixtures/contract-0.3`: sessionkit-sdk
//!   0.1.2 as it stood before 0.4, and the contract-0.2 fixture engine renamed `legacy03`) loads
//!   into this host through the frozen 0.3 layout, has the bit it sets masked off (its store has
//!   none of the 0.4 calls), keeps its conditional save, and reports the progress of its
//!   `clear_expired` to this host (the progress display 0.3 added);
//! - the current `db` engine given to a **host of contract 0.3** (`host-0-3`, built from the
//!   same fixture), whose `FfiStore` vtable lacks the 0.4 calls, runs a session, clears, and
//!   reports its progress to that host.
//!
//! The fixture is its own cargo workspace, built once per test binary into
//! `<target>/tmp/contract-0.3-target` (a lock file keeps two concurrent runs apart).

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex, OnceLock},
};

use serde_json::json;
use sessionkit::{
    Capabilities, ConditionalSave, Engine, SessionRecord, SessionWrite, Settings, Timestamp,
    plugin::Contract,
};
use sessionkit_sdk::{abi_stable::library::lib_header_from_path, frozen::v0_3};
use sessionkit_testkit::build_fixture_workspace;

/// The built fixture: the `legacy03` engine library and the `host-0-3` binary.
struct Fixture {
    legacy_engine: PathBuf,
    host_0_3: PathBuf,
    _lock: File,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let built = build_fixture_workspace(
            Path::new(env!("CARGO_MANIFEST_DIR")),
            Path::new(env!("CARGO_TARGET_TMPDIR")),
            "contract-0.3",
        );
        let debug = built.debug_dir;
        Fixture {
            legacy_engine: debug.join(format!(
                "{}sessionkit_engine_legacy03{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_SUFFIX
            )),
            host_0_3: debug.join(format!("host-0-3{}", std::env::consts::EXE_SUFFIX)),
            _lock: built.lock,
        }
    })
}

fn settings() -> Settings {
    let mut settings = Settings::new("contract-0-3-test-secret-key");
    settings.caches = json!({"default": {"LOCATION": "locmem://contract-0-3"}});
    settings
}

fn record(key: &str, data: &str, expire_date: Timestamp) -> SessionWrite {
    SessionWrite {
        record: SessionRecord {
            session_key: key.into(),
            session_data: data.into(),
            expire_date,
        },
        session_json: "{}".into(),
    }
}

/// How many expired records the 0.3 engine's clear removes in the progress test: more than one
/// of its batches, so it reports more than once.
const EXPIRED: usize = 250;

#[test]
fn engine_built_against_contract_0_3_loads_with_the_0_4_bit_masked_off() {
    let path = fixture().legacy_engine.to_str().expect("a UTF-8 path");
    let engine = Engine::load(path, &settings()).expect("the 0.3 engine loads");
    assert_eq!(engine.contract(), Contract::V0_3);
    assert_eq!(engine.description().name, "legacy03");

    // The library really declares bit 1 << 9, read through the 0.3 layout the loader matched...
    let declared = lib_header_from_path(path.as_ref())
        .and_then(|header| header.init_root_module::<v0_3::EngineModuleRef>())
        .expect("the 0.3 root module")
        .info()()
    .capabilities;
    assert!(declared.contains(Capabilities::READINESS_CALLS));
    // ...and the host masks it off, from the engine's description and from the opened store's
    // own capabilities (the fixture's store reports it too), keeping what 0.3 could express.
    for (seen, capabilities) in [
        ("the engine", engine.capabilities()),
        ("the store", engine.store().capabilities()),
    ] {
        assert!(
            !capabilities.contains(Capabilities::READINESS_CALLS),
            "{seen} of a 0.3 library claims readiness calls: {capabilities:?}"
        );
        assert!(
            capabilities.contains(Capabilities::CONDITIONAL_SAVE | Capabilities::CLEAR_EXPIRED),
            "{seen} lost a capability 0.3 has: {capabilities:?}"
        );
    }
}

#[test]
fn engine_built_against_contract_0_3_runs_a_session_with_its_conditional_save() {
    let path = fixture().legacy_engine.to_str().expect("a UTF-8 path");
    let engine = Engine::load(path, &settings()).expect("the 0.3 engine loads");
    let store = engine.store();
    let key = "contract03session0000000000000000";
    let in_an_hour = Timestamp::from_secs(Timestamp::now().as_secs() + 3600);

    store
        .create(record(key, "first", in_an_hour))
        .expect("create");
    let loaded = store.load(key).expect("load").expect("the created record");
    assert_eq!(loaded.session_data.as_str(), "first");
    store.save(record(key, "second", in_an_hour)).expect("save");
    assert_eq!(
        store
            .save_if_unchanged(record(key, "third", in_an_hour), "second")
            .expect("a conditional save over what was loaded"),
        ConditionalSave::Saved(key.to_owned())
    );
    let stale = store
        .save_if_unchanged(record(key, "lost", in_an_hour), "second")
        .expect("a conditional save over stale data");
    match stale {
        ConditionalSave::Conflict(current) => assert_eq!(current.session_data.as_str(), "third"),
        ConditionalSave::Saved(key) => panic!("a stale conditional save was stored under {key}"),
    }
    let stored = store.load(key).expect("load").expect("the saved record");
    assert_eq!(stored.session_data.as_str(), "third");
    store.delete(key).expect("delete");
    assert!(store.load(key).expect("load").is_none());
}

#[test]
fn engine_built_against_contract_0_3_reports_clear_progress_to_this_host() {
    let path = fixture().legacy_engine.to_str().expect("a UTF-8 path");
    let engine = Engine::load(path, &settings()).expect("the 0.3 engine loads");
    let store = engine.store();
    let now = Timestamp::now().as_secs();
    for n in 0..EXPIRED {
        store
            .create(record(
                &format!("contract03expired{n:016}"),
                "old",
                Timestamp::from_secs(now - 60),
            ))
            .expect("an expired record is stored");
    }
    let live = "contract03live0000000000000000000";
    store
        .create(record(live, "live", Timestamp::from_secs(now + 3600)))
        .expect("a live record is stored");
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let removed = engine
        .clear_expired_with_progress(Arc::new(move |operation: &str, done, total| {
            seen.lock()
                .unwrap()
                .push((operation.to_owned(), done, total));
        }))
        .expect("clear_expired");

    assert_eq!(removed, EXPIRED as u64);
    let events = events.lock().unwrap().clone();
    assert!(
        events.len() > 1,
        "a clear of {EXPIRED} records reports after each batch: {events:?}"
    );
    for (operation, _, total) in &events {
        assert_eq!(operation, "clear_expired");
        assert_eq!(*total, EXPIRED as u64, "{events:?}");
    }
    assert!(
        events.windows(2).all(|pair| pair[0].1 < pair[1].1),
        "progress only goes forward: {events:?}"
    );
    assert_eq!(
        events.last().map(|(_, done, _)| *done),
        Some(removed),
        "the last report is the whole clear"
    );
    assert!(store.load(live).expect("load").is_some());
}

#[test]
fn current_engine_works_in_a_host_of_contract_0_3() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = dir.path().join("sessions.sqlite3");
    let engine = sessionkit_testkit::engine_library("db");
    let output = Command::new(&fixture().host_0_3)
        .arg(&engine)
        .arg(json!({"SESSION_DB_URL": format!("sqlite://{}", database.display())}).to_string())
        .output()
        .expect("host-0-3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // host-0-3 stores one expired record and clears: the db engine counts it and reports how
    // far it got through the 0.3 host's progress display, ending with it done.
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 3, "too few lines: {stdout}");
    assert_eq!(lines[..2], ["loaded db 0.1.0", "round trip ok"], "{stdout}");
    assert_eq!(lines.last(), Some(&"cleared 1"), "{stdout}");
    let progress = &lines[2..lines.len() - 1];
    assert!(
        progress
            .iter()
            .all(|line| line.starts_with("progress clear_expired ") && line.ends_with("/1")),
        "only progress reports of the clear, of a total of 1, come between: {stdout}"
    );
    assert_eq!(
        progress.last(),
        Some(&"progress clear_expired 1/1"),
        "{stdout}"
    );
}
