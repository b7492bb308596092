//! Loading-failure tests: every way an engine library can fail to load or misbehave, against the
//! host's real loader and real plugin libraries (the engines and the `tests/fixtures/*`
//! cdylibs, built by cargo before this binary because they are dev-dependencies).
//!
//! Two engines in one process keep their identity; each bad plugin gives its own error in one
//! line; a panicking plugin never takes the host down.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use serde_json::json;
use sessionkit::{
    Engine, ErrorKind, Settings,
    loader::{LoadError, discover_engines, load_library, resolve_engine},
};
use sessionkit_sdk::{SessionRecord, SessionWrite, Timestamp};

/// A session key of Django's format, distinct per test so shared caches never collide.
fn key(tag: &str) -> String {
    let mut key: String = tag
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .collect();
    while key.len() < 32 {
        key.push('0');
    }
    key.truncate(32);
    key
}

/// A record that stays live for an hour.
fn write(session_key: &str) -> SessionWrite {
    SessionWrite::new(
        SessionRecord::new(
            session_key,
            "opaque-signed-data",
            Timestamp::from_micros(Timestamp::now().micros + 3_600_000_000),
        ),
        "{}",
    )
}

fn settings() -> Settings {
    Settings::new("loading-tests-secret-key")
}

/// Settings for the `faulty` fixture with its `FAULT` key set.
fn faulty_settings(fault: &str) -> Settings {
    let mut settings = settings();
    settings.extra.insert("FAULT".to_owned(), json!(fault));
    settings
}

/// Settings for the `cache` engine on its own LocMem store.
fn cache_settings(location: &str) -> Settings {
    let mut settings = settings();
    settings.caches = json!({"default": {"LOCATION": location}});
    settings
}

fn plugin(file: &str) -> PathBuf {
    let path = sessionkit_testkit::plugin_dir().join(file);
    assert!(
        path.is_file(),
        "{} was not built (is its crate a dev-dependency?)",
        path.display()
    );
    path
}

fn engine_path(name: &str) -> PathBuf {
    plugin(&format!("libsessionkit_engine_{name}.so"))
}

fn spec(path: &Path) -> &str {
    path.to_str().expect("plugin paths are UTF-8")
}

/// The `LoadError` inside a failed `Engine::load`.
fn load_error(result: Result<Engine, sessionkit::Error>) -> LoadError {
    match result {
        Ok(engine) => panic!(
            "expected a load error, got engine '{}'",
            engine.description().name
        ),
        Err(sessionkit::Error::Load(error)) => error,
        Err(other) => panic!("expected Error::Load, got {other:?}"),
    }
}

fn assert_one_line(message: &str) {
    assert!(
        !message.contains('\n'),
        "message spans several lines:\n{message}"
    );
}

#[test]
fn missing_library_file_is_reported_as_missing() {
    let path = sessionkit_testkit::plugin_dir().join("libsessionkit_engine_doesnotexist.so");
    let error = load_library(&path).unwrap_err();
    assert!(
        matches!(&error, LoadError::Missing { path: p } if p == &path),
        "{error:?}"
    );
    let message = error.to_string();
    assert_one_line(&message);
    assert!(
        message.contains("libsessionkit_engine_doesnotexist.so"),
        "{message}"
    );

    let error = load_error(Engine::load(spec(&path), &settings()));
    assert!(matches!(error, LoadError::Missing { .. }), "{error:?}");
}

#[test]
fn random_bytes_named_so_are_not_a_library() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("libsessionkit_engine_garbage.so");
    // Pseudo-random bytes (xorshift), no ELF header anywhere.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

    let error = load_library(&path).unwrap_err();
    assert!(matches!(error, LoadError::NotALibrary { .. }), "{error:?}");
    let message = error.to_string();
    assert_one_line(&message);
    assert!(
        message.contains("libsessionkit_engine_garbage.so"),
        "{message}"
    );
}

#[test]
fn library_without_root_module_is_not_an_engine() {
    let path = plugin("libsessionkit_fixture_not_an_engine.so");
    let error = load_library(&path).unwrap_err();
    assert!(matches!(error, LoadError::NotAnEngine { .. }), "{error:?}");
    let message = error.to_string();
    assert_one_line(&message);
    assert!(
        message.contains("libsessionkit_fixture_not_an_engine.so"),
        "{message}"
    );
}

#[test]
fn library_built_against_another_contract_is_an_abi_mismatch_in_one_line() {
    let path = plugin("libsessionkit_fixture_abi_mismatch.so");
    let error = load_library(&path).unwrap_err();
    assert!(matches!(error, LoadError::AbiMismatch { .. }), "{error:?}");
    let message = error.to_string();
    assert_one_line(&message);
    // abi_stable's own report runs to 1,000+ lines; the host shows a summary.
    assert!(
        message.len() < 2_000,
        "{} characters: {message}",
        message.len()
    );
    assert!(
        message.contains("libsessionkit_fixture_abi_mismatch.so"),
        "{message}"
    );
    assert!(message.contains("incompatible"), "{message}");
}

#[test]
fn constructor_error_comes_back_as_an_open_error_of_kind_config() {
    let path = plugin("libsessionkit_fixture_faulty.so");
    let error = load_error(Engine::load(spec(&path), &faulty_settings("open_error")));
    match &error {
        LoadError::Open {
            engine,
            error: store_error,
            ..
        } => {
            assert_eq!(engine, "faulty");
            assert_eq!(store_error.kind, ErrorKind::Config);
            assert!(store_error.message.contains("open_error"), "{store_error}");
        }
        other => panic!("expected LoadError::Open, got {other:?}"),
    }
    assert_one_line(&error.to_string());
    assert_eq!(
        sessionkit::Error::Load(error).kind(),
        Some(ErrorKind::Config)
    );
}

#[test]
fn constructor_panic_comes_back_as_a_panicked_open_error() {
    let path = plugin("libsessionkit_fixture_faulty.so");
    let error = load_error(Engine::load(spec(&path), &faulty_settings("open_panic")));
    match &error {
        LoadError::Open {
            engine,
            error: store_error,
            ..
        } => {
            assert_eq!(engine, "faulty");
            assert_eq!(store_error.kind, ErrorKind::Panicked);
            assert!(
                store_error.message.contains("deliberate panic in open"),
                "{store_error}"
            );
        }
        other => panic!("expected LoadError::Open, got {other:?}"),
    }
    assert_one_line(&error.to_string());
}

#[test]
fn panicking_method_returns_panicked_and_the_host_and_store_survive() {
    let path = plugin("libsessionkit_fixture_faulty.so");
    let engine =
        Engine::load(spec(&path), &faulty_settings("method_panic")).expect("open succeeds");
    let session_key = key("panickingmethod");

    let error = engine.store().load(&session_key).unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::Panicked), "{error}");
    assert!(
        error.to_string().contains("deliberate panic in load"),
        "{error}"
    );
    assert_one_line(&error.to_string());

    // The same store answers the next calls, each with its own clean error.
    let error = engine.store().exists(&session_key).unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::Panicked), "{error}");
    let error = engine.store().create(write(&session_key)).unwrap_err();
    assert_eq!(error.kind(), Some(ErrorKind::Panicked), "{error}");

    // And the process goes on serving: the same library without the fault works.
    let healthy = Engine::load(spec(&path), &settings()).expect("faulty without FAULT opens");
    healthy.store().create(write(&session_key)).unwrap();
    assert!(healthy.store().load(&session_key).unwrap().is_some());
}

#[test]
fn unknown_short_name_lists_the_available_engines() {
    let search = vec![sessionkit_testkit::plugin_dir()];
    let error = resolve_engine("nosuchengine", &search).unwrap_err();
    match &error {
        LoadError::UnknownEngine {
            name, available, ..
        } => {
            assert_eq!(name, "nosuchengine");
            assert!(available.iter().any(|n| n == "cache"), "{available:?}");
            assert!(available.iter().any(|n| n == "template"), "{available:?}");
            assert!(
                !available.iter().any(|n| n.contains("fixture")),
                "{available:?}"
            );
        }
        other => panic!("expected UnknownEngine, got {other:?}"),
    }
    let message = error.to_string();
    assert_one_line(&message);
    assert!(
        message.contains("nosuchengine")
            && message.contains("cache")
            && message.contains("template"),
        "{message}"
    );

    // Engine::load searches beside the executable (here: deps/) and fails the same way.
    let error = load_error(Engine::load("nosuchengine", &settings()));
    assert!(
        matches!(error, LoadError::UnknownEngine { .. }),
        "{error:?}"
    );
}

#[test]
fn short_names_and_django_dotted_names_resolve_beside_the_executable() {
    let search = vec![sessionkit_testkit::plugin_dir()];
    let by_name = resolve_engine("cache", &search).unwrap();
    let by_dotted = resolve_engine("django.contrib.sessions.backends.cache", &search).unwrap();
    assert_eq!(by_name, engine_path("cache"));
    assert_eq!(by_dotted, by_name);
}

#[test]
fn discovery_finds_the_built_engines_and_no_fixture() {
    let found: Vec<String> = discover_engines(&[sessionkit_testkit::plugin_dir()])
        .into_iter()
        .filter_map(Result::ok)
        .map(|library| library.info.name)
        .collect();
    assert!(found.iter().any(|n| n == "cache"), "{found:?}");
    assert!(found.iter().any(|n| n == "template"), "{found:?}");
    assert!(!found.iter().any(|n| n == "faulty"), "{found:?}");
}

#[test]
fn two_different_engines_in_one_process_keep_their_own_identity_and_sessions() {
    let cache = Engine::load(
        spec(&engine_path("cache")),
        &cache_settings("locmem://loading-two-engines"),
    )
    .expect("cache loads");
    let template =
        Engine::load(spec(&engine_path("template")), &settings()).expect("template loads");

    // abi_stable's per-type module cache would hand the second load the first module.
    assert_eq!(cache.description().name, "cache");
    assert_eq!(template.description().name, "template");
    assert_ne!(cache.description().path, template.description().path);
    assert_ne!(cache.capabilities(), template.capabilities());

    let in_cache = key("writtenincache");
    cache.store().create(write(&in_cache)).unwrap();
    assert!(cache.store().load(&in_cache).unwrap().is_some());
    assert!(!template.store().exists(&in_cache).unwrap());
    assert!(template.store().load(&in_cache).unwrap().is_none());

    let in_template = key("writtenintemplate");
    template.store().create(write(&in_template)).unwrap();
    assert!(template.store().exists(&in_template).unwrap());
    assert!(!cache.store().exists(&in_template).unwrap());
}

#[test]
fn same_engine_loaded_twice_by_path_works() {
    let path = engine_path("template");
    let first = load_library(&path).unwrap();
    let second = load_library(&path).unwrap();
    assert_eq!(first.info, second.info);
    assert_eq!(first.path, second.path);

    // The template gives every open its own store; both work side by side.
    let one = Engine::load(spec(&path), &settings()).unwrap();
    let two = Engine::load(spec(&path), &settings()).unwrap();
    let session_key = key("loadedtwice");
    one.store().create(write(&session_key)).unwrap();
    two.store().create(write(&session_key)).unwrap();
    assert!(one.store().load(&session_key).unwrap().is_some());
    assert!(two.store().load(&session_key).unwrap().is_some());
    one.store().delete(&session_key).unwrap();
    assert!(!one.store().exists(&session_key).unwrap());
    assert!(two.store().exists(&session_key).unwrap());
}

#[test]
fn cache_engine_loaded_twice_with_one_location_shares_sessions() {
    // Django's LocMemCache shares one store per LOCATION name in a process; loading the same
    // library twice gives the same library (and registry), so two engines see one cache.
    let path = engine_path("cache");
    let one = Engine::load(spec(&path), &cache_settings("locmem://loading-shared")).unwrap();
    let two = Engine::load(spec(&path), &cache_settings("locmem://loading-shared")).unwrap();
    let other = Engine::load(spec(&path), &cache_settings("locmem://loading-other")).unwrap();
    let session_key = key("sharedlocmem");
    one.store().create(write(&session_key)).unwrap();
    assert!(two.store().load(&session_key).unwrap().is_some());
    assert!(!other.store().exists(&session_key).unwrap());
}
