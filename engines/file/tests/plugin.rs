//! The engine as the host sees it: the built cdylib, loaded through its abi_stable root module.

mod common;

use std::env;

use abi_stable::{
    library::RootModule,
    std_types::{ROption, RResult, RStr},
};
use serde_json::json;
use sessionkit_sdk::{EngineModuleRef, ErrorKind, KeyFormat};

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
