//! The engine as the host sees it: the built cdylib, loaded through its abi_stable root module.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    env, fs,
    sync::{Arc, Mutex},
};

use abi_stable::{
    library::RootModule,
    sabi_trait::TD_Opaque,
    std_types::{RArc, ROption, RResult, RStr},
};
use chrono::{TimeDelta, Utc};
use serde_json::json;
use sessionkit_codec::time::from_datetime;
use sessionkit_sdk::{
    EngineModuleRef, ErrorKind, FfiHost, HostBox, KeyFormat, LogLevel, Timestamp,
};

use common::{SECRET, Writer, key};

#[test]
fn the_cdylib_exports_the_file_engine_and_its_store_works_across_the_abi() {
    // Cargo builds the package's cdylib next to its test executables (target/<profile>/deps).
    let exe = env::current_exe().unwrap();
    let library = exe.parent().unwrap().join("libsessionkit_engine_file.so");
    assert!(library.is_file(), "{} was not built", library.display());
    let module = EngineModuleRef::load_from_file(&library).unwrap();

    let info = module.info()();
    assert_eq!(info.name.as_str(), "file");
    assert_eq!(info.salt.as_str(), "django.contrib.sessions.SessionStore");
    assert_eq!(info.key_format, KeyFormat::DjangoSessionKey);

    let missing = json!({"SECRET_KEY": SECRET, "SESSION_FILE_PATH": "/no/such/sessionkit/dir"});
    match module.open()(RStr::from_str(&missing.to_string())) {
        RResult::RErr(error) => assert_eq!(error.kind, ErrorKind::Config, "{error}"),
        RResult::ROk(_) => panic!("opened a missing directory"),
    }

    let dir = tempfile::tempdir().unwrap();
    let settings = json!({"SECRET_KEY": SECRET, "SESSION_FILE_PATH": dir.path()});
    let store = module.open()(RStr::from_str(&settings.to_string())).unwrap();
    let writer = Writer::new(1_209_600);
    let write = writer.write(&key(1), json!({"via": "abi"}));
    assert_eq!(store.create(write.clone()).unwrap().as_str(), key(1));
    match store.load(RStr::from_str(&key(1))).unwrap() {
        ROption::RSome(record) => assert_eq!(record, write.record),
        ROption::RNone => panic!("the created session did not load"),
    }
    let error = store.create(write).unwrap_err();
    assert_eq!(error.kind, ErrorKind::AlreadyExists);
    assert!(store.sessions_of_account(1).is_err(), "no account index");
    store.delete(RStr::from_str(&key(1))).unwrap();
    assert!(!store.exists(RStr::from_str(&key(1))).unwrap());
    assert_eq!(store.clear_expired().unwrap(), 0);
}

/// A host of contract 0.2 as the engine sees it: a fixed clock, and a log that keeps every
/// event the engine sends.
#[derive(Clone)]
struct RecordingHost {
    now: Timestamp,
    events: Arc<Mutex<Vec<(LogLevel, String, String)>>>,
}

impl FfiHost for RecordingHost {
    fn now(&self) -> Timestamp {
        self.now
    }

    fn max_level(&self) -> LogLevel {
        LogLevel::Trace
    }

    fn log(&self, level: LogLevel, target: RStr<'_>, message: RStr<'_>) {
        self.events
            .lock()
            .unwrap()
            .push((level, target.to_string(), message.to_string()));
    }
}

#[cfg(unix)]
#[test]
fn a_host_of_contract_0_2_lends_its_clock_and_receives_the_directory_warning() {
    use std::os::unix::fs::PermissionsExt;

    let exe = env::current_exe().unwrap();
    let library = exe.parent().unwrap().join("libsessionkit_engine_file.so");
    let module = EngineModuleRef::load_from_file(&library).unwrap();
    let open_with_host = module
        .open_with_host()
        .expect("the engine is built against contract 0.2");

    // A directory other users can list (mkdir's usual 0755): opened, with a warning.
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let settings = json!({"SECRET_KEY": SECRET, "SESSION_FILE_PATH": dir.path()}).to_string();
    // The host's clock stands 15 days ahead: a session saved now for 14 days is expired by it.
    let host = RecordingHost {
        now: from_datetime(Utc::now() + TimeDelta::days(15)),
        events: Arc::default(),
    };
    let hosted = open_with_host(
        RStr::from_str(&settings),
        HostBox::from_ptr(RArc::new(host.clone()), TD_Opaque),
    )
    .unwrap();

    let events = host.events.lock().unwrap().clone();
    let warning = events
        .iter()
        .find(|(level, target, _)| *level == LogLevel::Warn && target == "sessionkit::security")
        .unwrap_or_else(|| panic!("no directory warning reached the host: {events:?}"));
    assert!(warning.2.contains("list"), "{}", warning.2);
    assert!(warning.2.contains("0755"), "{}", warning.2);

    let plain = module.open()(RStr::from_str(&settings)).unwrap();
    let writer = Writer::new(1_209_600);
    let write = writer.write(&key(1), json!({"saved": "now"}));
    hosted.create(write.clone()).unwrap();
    assert_eq!(
        plain.load(RStr::from_str(&key(1))).unwrap(),
        ROption::RSome(write.record),
        "live by the system clock"
    );
    assert_eq!(
        hosted.load(RStr::from_str(&key(1))).unwrap(),
        ROption::RNone,
        "expired by the host's clock"
    );
}
