//! The contract's evolution, proven with one host binary (this test's):
//!
//! - an engine built against the **0.1 SDK as released** (`tests/fixtures/contract-0.1`: a frozen
//!   copy of `sessionkit-sdk` 0.1.0 and the plugin template as released, renamed `legacy`)
//!   loads next to the current engines in one process, passes the conformance cases that apply
//!   to it, and the host says once, at open, in one log line, what it falls back from;
//! - the current engines load as contract 0.3 (0.2 and later get the host's clock and log);
//! - a current engine given to a **host of contract 0.1** (`host-0-1`, built from the same
//!   fixture against the frozen SDK) works there.
//!
//! The fixture is its own cargo workspace, built once per test binary with `cargo build` into
//! `<target>/tmp/contract-0.1-target` (persisting between runs; only the first run compiles
//! abi_stable for it). A lock file keeps two concurrent runs apart.

use std::{
    fs::File,
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex, OnceLock},
};

use serde_json::json;
use sessionkit::{Engine, Settings, plugin::Contract};
use sessionkit_conformance::{Target, run};
use sessionkit_testkit::build_fixture_workspace;

/// The built fixture: the `legacy` engine library and the `host-0-1` binary.
struct Fixture {
    legacy_engine: PathBuf,
    host_0_1: PathBuf,
    _lock: File,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let built = build_fixture_workspace(
            Path::new(env!("CARGO_MANIFEST_DIR")),
            Path::new(env!("CARGO_TARGET_TMPDIR")),
            "contract-0.1",
        );
        let debug = built.debug_dir;
        Fixture {
            legacy_engine: debug.join("libsessionkit_engine_legacy.so"),
            host_0_1: debug.join("host-0-1"),
            _lock: built.lock,
        }
    })
}

fn settings() -> Settings {
    let mut settings = Settings::new("contract-evolution-test-secret-key");
    settings.caches = json!({"default": {"LOCATION": "locmem://contract-evolution"}});
    settings
}

fn spec(path: &Path) -> &str {
    path.to_str().expect("library paths are UTF-8")
}

fn current_engine(name: &str) -> PathBuf {
    let path = sessionkit_testkit::plugin_dir().join(format!("libsessionkit_engine_{name}.so"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// A session written and read back through `engine`.
fn round_trip(engine: &Engine) {
    let mut session = engine.session(None);
    session
        .insert("owner", engine.description().name.clone())
        .expect("a string is JSON");
    session.save().expect("saving the session");
    let key = session
        .session_key()
        .expect("a saved session has a key")
        .to_owned();
    let mut again = engine.session(Some(&key));
    assert_eq!(
        again
            .get::<String>("owner")
            .expect("reading the session back")
            .as_deref(),
        Some(engine.description().name.as_str()),
        "engine '{}' lost the session",
        engine.description().name
    );
    again.delete().expect("deleting the session");
}

#[test]
fn engine_built_against_contract_0_1_runs_beside_current_engines_in_one_process() {
    let legacy = Engine::load(spec(&fixture().legacy_engine), &settings()).expect("legacy loads");
    let cache = Engine::load(spec(&current_engine("cache")), &settings()).expect("cache loads");
    let template =
        Engine::load(spec(&current_engine("template")), &settings()).expect("template loads");
    assert_eq!(legacy.contract(), Contract::V0_1);
    assert_eq!(cache.contract(), Contract::V0_4);
    assert_eq!(template.contract(), Contract::V0_4);
    assert_eq!(legacy.description().name, "legacy");
    for engine in [&legacy, &cache, &template, &legacy] {
        round_trip(engine);
    }
}

#[test]
fn engine_built_against_contract_0_1_passes_the_cases_that_apply_to_it() {
    let path = fixture().legacy_engine.clone();
    let settings = Arc::new(settings());
    let target = Target::new(Box::new(move || Engine::load(spec(&path), &settings)));
    let mut out = Vec::new();
    let report = run(&target, None, &mut out);
    let text = String::from_utf8_lossy(&out);
    println!(
        "legacy (contract 0.1): {}",
        text.lines().last().unwrap_or("")
    );
    assert_eq!(report.failed, 0, "cases failed:\n{text}");
    assert!(report.passed >= 140, "too few cases ran:\n{text}");
    // What 0.1 cannot express is skipped with its reason, not failed.
    assert!(
        text.contains("skip save_if_unchanged_of_an_unchanged_record_saves_it: the engine has no conditional save"),
        "the conditional-save cases were not skipped for lack of the capability:\n{text}"
    );
    assert!(
        text.contains("ok   save_if_unchanged_without_the_capability_fails_with_unsupported"),
        "{text}"
    );
}

/// Collects every formatted log line of the `tracing` events emitted while it is the default.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().expect("no writer panicked holding the log"))
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("no reader panicked holding the log")
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn capturing<T>(run: impl FnOnce() -> T) -> (T, Vec<String>) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let value = tracing::subscriber::with_default(subscriber, run);
    (value, captured.lines())
}

#[test]
fn opening_an_engine_of_contract_0_1_says_what_falls_back_once_in_one_line() {
    let path = fixture().legacy_engine.clone();
    let (engine, lines) = capturing(|| Engine::load(spec(&path), &settings()));
    let engine = engine.expect("legacy loads");
    let fallback: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("contract 0.1"))
        .collect();
    assert_eq!(
        fallback.len(),
        1,
        "expected one fallback line at open, got {lines:#?}"
    );
    assert!(fallback[0].contains("WARN"), "{}", fallback[0]);
    assert!(fallback[0].contains("'legacy'"), "{}", fallback[0]);
    assert!(
        fallback[0].contains("last-writer-wins"),
        "the line says what falls back: {}",
        fallback[0]
    );
    // Using the store says nothing more.
    let ((), later) = capturing(|| round_trip(&engine));
    assert!(
        later.iter().all(|l| !l.contains("contract 0.1")),
        "{later:#?}"
    );
}

#[test]
fn engine_of_contract_0_2_works_in_a_host_of_contract_0_1() {
    for (name, settings) in [
        ("template", "{}"),
        (
            "cache",
            r#"{"CACHES": {"default": {"LOCATION": "locmem://host-0-1"}}}"#,
        ),
    ] {
        let library = current_engine(name);
        let output = Command::new(&fixture().host_0_1)
            .arg(&library)
            .arg(settings)
            .output()
            .expect("host-0-1 runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "host-0-1 could not use engine '{name}' ({}):\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains(&format!("loaded {name} ")), "{stdout}");
        assert!(stdout.contains("round trip ok"), "{stdout}");
    }
}

#[test]
fn host_of_contract_0_1_refuses_a_foreign_library_in_one_line() {
    // The other half of "works or is refused with one clear line": a library that is not of
    // this contract family at all (the abi-mismatch fixture) gets one line, no crash.
    let library = sessionkit_testkit::plugin_dir().join("libsessionkit_fixture_abi_mismatch.so");
    let output = Command::new(&fixture().host_0_1)
        .arg(&library)
        .output()
        .expect("host-0-1 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("refused: "), "{stdout}");
}

#[test]
fn engine_log_events_reach_the_host_with_the_engine_name_and_level() {
    // The file engine warns when its directory can be listed by other users.
    let listable = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        listable.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut settings = settings();
    settings.session_file_path = Some(listable.path().to_path_buf());
    let (engine, lines) = capturing(|| Engine::load(spec(&current_engine("file")), &settings));
    engine.expect("file loads");
    let warning = lines
        .iter()
        .find(|l| l.contains("other users"))
        .unwrap_or_else(|| panic!("the file engine's warning did not reach the host: {lines:#?}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("sessionkit::engine"), "{warning}");
    assert!(warning.contains("engine=\"file\""), "{warning}");
}

#[test]
fn a_caught_engine_panic_prints_nothing() {
    // Re-run this test binary as a child that makes the faulty engine panic, with backtraces
    // on, and read what the child printed: the panic must come back as an error, not as text.
    if std::env::var_os("CONTRACT_EVOLUTION_PANIC_CHILD").is_some() {
        let path = sessionkit_testkit::plugin_dir().join("libsessionkit_fixture_faulty.so");
        let mut settings = settings();
        settings
            .extra
            .insert("FAULT".to_owned(), json!("method_panic"));
        let engine = Engine::load(spec(&path), &settings).expect("faulty opens");
        let error = engine
            .store()
            .load("abcdefghijklmnopqrstuvwxyz012345")
            .expect_err("the load panics");
        let mut stdout = std::io::stdout();
        writeln!(stdout, "child error: {error}").unwrap();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_caught_engine_panic_prints_nothing",
            "--nocapture",
        ])
        .env("CONTRACT_EVOLUTION_PANIC_CHILD", "1")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    let error = stdout
        .lines()
        .find(|l| l.starts_with("child error: "))
        .unwrap_or_else(|| panic!("the child reported no error:\n{stdout}"));
    assert!(error.contains("deliberate panic in load"), "{error}");
    assert!(
        error.contains("src/lib.rs:"),
        "the error says where: {error}"
    );
    assert!(
        !stderr.contains("panicked at") && !stderr.contains("stack backtrace"),
        "the plugin printed its panic:\n{stderr}"
    );
}

#[test]
fn engines_of_contract_0_2_judge_expiry_by_the_hosts_clock_and_0_1_by_their_own() {
    let record = |engine: &Engine| {
        let mut session = engine.session(None);
        session.insert("a", 1).unwrap();
        session.save().unwrap();
        session.session_key().unwrap().to_owned()
    };
    for (path, follows_host) in [
        (current_engine("template"), true),
        (fixture().legacy_engine.clone(), false),
    ] {
        let engine = Engine::load(spec(&path), &settings()).expect("loads");
        let key = record(&engine);
        // Two weeks and a day later by the host's clock: the session has expired.
        let later = sessionkit::ManualClock::new(chrono::Utc::now() + chrono::Duration::days(15));
        let engine = engine.with_clock(Arc::new(later));
        let loaded = engine.store().load(&key).expect("load");
        assert_eq!(
            loaded.is_none(),
            follows_host,
            "engine '{}' (contract {}) judged expiry by {}",
            engine.description().name,
            engine.contract().as_str(),
            if loaded.is_none() {
                "the host's clock"
            } else {
                "its own clock"
            }
        );
    }
}
