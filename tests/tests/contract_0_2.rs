//! Contract 0.3 appended the host's progress display to `FfiHost`, the trait the *host*
//! implements. Both directions, proven with real libraries:
//!
//! - an engine built against the **0.2 SDK** (`tests/fixtures/contract-0.2`: sessionkit-sdk
//!   0.1.1 as it stood before 0.3, and the fixture engine renamed `legacy02`) loads into this
//!   host through the frozen 0.2 layout, keeps its conditional save, and clears expired
//!   sessions without reporting progress;
//! - the current `db` engine given to a **host of contract 0.2** (`host-0-2`, built from the
//!   same fixture) finds no progress methods in that host's services, skips them, and clears.
//!
//! The fixture is its own cargo workspace, built once per test binary into
//! `<target>/tmp/contract-0.2-target` (a lock file keeps two concurrent runs apart).

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex, OnceLock},
};

use serde_json::json;
use sessionkit::{Engine, SessionRecord, SessionWrite, Settings, Timestamp, plugin::Contract};
use sessionkit_testkit::build_fixture_workspace;

/// The built fixture: the `legacy02` engine library and the `host-0-2` binary.
struct Fixture {
    legacy_engine: PathBuf,
    host_0_2: PathBuf,
    _lock: File,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let built = build_fixture_workspace(
            Path::new(env!("CARGO_MANIFEST_DIR")),
            Path::new(env!("CARGO_TARGET_TMPDIR")),
            "contract-0.2",
        );
        let debug = built.debug_dir;
        Fixture {
            legacy_engine: debug.join("libsessionkit_engine_legacy02.so"),
            host_0_2: debug.join("host-0-2"),
            _lock: built.lock,
        }
    })
}

fn settings() -> Settings {
    let mut settings = Settings::new("contract-0-2-test-secret-key");
    settings.caches = json!({"default": {"LOCATION": "locmem://contract-0-2"}});
    settings
}

fn record(key: &str, expire_date: Timestamp) -> SessionWrite {
    SessionWrite {
        record: SessionRecord {
            session_key: key.into(),
            session_data: "e30:placeholder".into(),
            expire_date,
        },
        session_json: "{}".into(),
    }
}

#[test]
fn engine_built_against_contract_0_2_loads_and_clears_without_progress() {
    let path = fixture().legacy_engine.to_str().expect("a UTF-8 path");
    let engine = Engine::load(path, &settings()).expect("the 0.2 engine loads");
    assert_eq!(engine.contract(), Contract::V0_2);
    assert_eq!(engine.description().name, "legacy02");

    let now = Timestamp::now().as_secs();
    let store = engine.store();
    store
        .create(record(
            "contract02expired0000000000000000",
            Timestamp::from_secs(now - 60),
        ))
        .expect("an expired record is stored");
    store
        .create(record(
            "contract02live00000000000000000000",
            Timestamp::from_secs(now + 3600),
        ))
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

    assert_eq!(removed, 1);
    assert!(
        events.lock().unwrap().is_empty(),
        "a 0.2 engine has no progress to report"
    );
    assert!(
        store
            .load("contract02live00000000000000000000")
            .expect("load")
            .is_some()
    );
}

#[test]
fn current_engine_works_in_a_host_of_contract_0_2() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database = dir.path().join("sessions.sqlite3");
    let engine = sessionkit_testkit::engine_library("db");
    let output = Command::new(&fixture().host_0_2)
        .arg(&engine)
        .arg(json!({"SESSION_DB_URL": format!("sqlite://{}", database.display())}).to_string())
        .output()
        .expect("host-0-2 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["loaded db 0.1.0", "round trip ok", "cleared 1"]
    );
}
