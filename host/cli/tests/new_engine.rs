//! `sessionkit new-engine`: a crate made from the plugin template builds with a plain
//! `cargo build --release`, passes `sessionkit conformance`, loads by path next to a bundled
//! engine, and, dropped into a directory of `SESSIONKIT_ENGINE_PATH`, is listed by
//! `sessionkit engines` and found by its short name. Bad names and occupied directories are
//! refused.
//!
//! The crate is made once per test binary in `<target>/tmp/new-engine/` (inside this repository's
//! workspace directory, so the build also proves that the crate's own `[workspace]` table keeps
//! the parent workspace out) and built with `CARGO_TARGET_DIR=<target>/tmp/new-engine-target`,
//! which persists between runs, with cargo's usual download cache: only the first run compiles
//! abi_stable and its dependencies. A lock file keeps two concurrent runs apart.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::OnceLock,
    time::Instant,
};

use sessionkit::{Capabilities, Engine, Settings, loader::resolve_engine};
use sessionkit_testkit::engine_library;

/// The new engine's name.
const NAME: &str = "acme";

/// The `sessionkit` binary under test.
const SESSIONKIT: &str = env!("CARGO_BIN_EXE_sessionkit");

/// The secret the in-process engines sign with.
const SECRET_KEY: &str = "new-engine-test-secret-key-not-for-production";

/// The engine crate made and built once for this test binary.
struct Built {
    /// The crate's directory.
    dir: PathBuf,
    /// Its release library, `libsessionkit_engine_acme.so`.
    library: PathBuf,
    /// Held for the life of the process: keeps another run of this test out of the directories.
    _lock: File,
}

/// Makes the crate with `sessionkit new-engine` and builds it with `cargo build --release`
/// (once; later callers get the same result).
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let work = Path::new(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(work).expect("the test work directory");
        let lock =
            File::create(work.join("new-engine.lock")).expect("the new-engine test lock file");
        lock.lock().expect("the new-engine test lock");
        let parent = work.join("new-engine");
        if parent.exists() {
            fs::remove_dir_all(&parent).expect("removing the previous new-engine crate");
        }
        let dir = parent.join(NAME);
        let made = sessionkit(&["new-engine", NAME, "--path", &dir.to_string_lossy()]);
        assert_success(&made, "sessionkit new-engine");
        let target_dir = work.join("new-engine-target");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let started = Instant::now();
        let build = Command::new(cargo)
            .args(["build", "--release"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &target_dir)
            .output()
            .expect("cargo runs");
        println!(
            "cargo build --release of the new crate took {:.1} s (target dir {})",
            started.elapsed().as_secs_f64(),
            target_dir.display()
        );
        assert_success(&build, "cargo build --release in the new crate");
        let library = target_dir
            .join("release")
            .join(format!("libsessionkit_engine_{NAME}.so"));
        assert!(library.is_file(), "{} was not built", library.display());
        Built {
            dir,
            library,
            _lock: lock,
        }
    })
}

/// Runs `sessionkit` with `args`, without a settings file from the environment.
fn sessionkit(args: &[&str]) -> Output {
    sessionkit_in(args, None, &[])
}

/// Runs `sessionkit` with `args` in `cwd` (default: a directory without `sessionkit.toml`) and
/// extra environment variables.
fn sessionkit_in(args: &[&str], cwd: Option<&Path>, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(SESSIONKIT);
    command
        .args(args)
        .current_dir(cwd.unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR"))))
        .env_remove("SESSIONKIT_SETTINGS")
        .env_remove("SESSIONKIT_ENGINE_PATH")
        .env_remove("SESSION_ENGINE");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the sessionkit binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
}

/// Asserts the suite's closing line says `N passed, 0 failed` with N > 0, and returns N.
fn assert_all_passed(output: &Output) -> usize {
    let out = stdout(output);
    assert_success(output, "sessionkit conformance");
    assert!(
        !out.lines().any(|line| line.starts_with("FAIL")),
        "a case failed:\n{out}"
    );
    let last = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let mut parts = last.split(", ");
    let passed = parts
        .next()
        .and_then(|p| p.strip_suffix(" passed"))
        .and_then(|n| n.parse::<usize>().ok());
    assert_eq!(
        parts.next(),
        Some("0 failed"),
        "closing line {last:?}:\n{out}"
    );
    let passed = passed.unwrap_or_else(|| panic!("closing line {last:?} has no passed count"));
    assert!(passed > 0, "no case ran: {last:?}");
    passed
}

#[test]
fn new_engine_crate_builds_and_passes_the_conformance_suite() {
    let built = built();
    let manifest = fs::read_to_string(built.dir.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("name = \"sessionkit-engine-acme\""),
        "{manifest}"
    );
    assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
    let library = built.library.to_string_lossy();
    let output = sessionkit_in(&["conformance", &library], Some(&built.dir), &[]);
    let passed = assert_all_passed(&output);
    println!("sessionkit conformance {library}: {passed} passed, 0 failed");
}

#[test]
fn new_engine_loads_by_path_beside_a_bundled_engine_and_keeps_its_own_sessions() {
    let built = built();
    let settings = Settings::new(SECRET_KEY);
    let acme = Engine::load(&built.library.to_string_lossy(), &settings).expect("acme loads");
    let cache_library = engine_library("cache");
    let cache = Engine::load(&cache_library.to_string_lossy(), &settings).expect("cache loads");

    assert_eq!(acme.description().name, NAME);
    assert_eq!(
        acme.description().path,
        fs::canonicalize(&built.library).unwrap()
    );
    assert_eq!(
        acme.capabilities(),
        Capabilities::SERVER_SIDE_INVALIDATION
            | Capabilities::CLEAR_EXPIRED
            | Capabilities::CONDITIONAL_SAVE
    );
    assert_eq!(cache.description().name, "cache");

    let mut in_acme = acme.session(None);
    in_acme.insert("written_in", "acme").unwrap();
    in_acme.save().unwrap();
    let acme_key = in_acme.session_key().expect("saved with a key").to_owned();

    let mut in_cache = cache.session(None);
    in_cache.insert("written_in", "cache").unwrap();
    in_cache.save().unwrap();
    let cache_key = in_cache.session_key().expect("saved with a key").to_owned();

    // Each engine reads back its own session...
    let mut again = acme.session(Some(&acme_key));
    assert_eq!(
        again.get::<String>("written_in").unwrap().as_deref(),
        Some("acme")
    );
    let mut again = cache.session(Some(&cache_key));
    assert_eq!(
        again.get::<String>("written_in").unwrap().as_deref(),
        Some("cache")
    );
    // ...and never sees the other's.
    assert!(acme.session(None).exists(&acme_key).unwrap());
    assert!(!cache.session(None).exists(&acme_key).unwrap());
    assert!(cache.session(None).exists(&cache_key).unwrap());
    assert!(!acme.session(None).exists(&cache_key).unwrap());
    let mut foreign = cache.session(Some(&acme_key));
    assert!(foreign.load().unwrap().is_empty());
    assert_eq!(foreign.session_key(), None, "an unknown key is dropped");
    let mut foreign = acme.session(Some(&cache_key));
    assert!(foreign.load().unwrap().is_empty());

    // Deleting in one leaves the other untouched.
    acme.session(Some(&acme_key)).delete().unwrap();
    assert!(!acme.session(None).exists(&acme_key).unwrap());
    assert!(cache.session(None).exists(&cache_key).unwrap());
}

/// Every bundled engine and the generated one, loaded into this one process at once, each
/// keeping its own sessions: a session saved in each reads back from it, and the generated
/// engine never sees a key of another.
#[test]
fn every_bundled_engine_and_a_generated_one_work_side_by_side() {
    let built = built();
    let dir = tempfile::tempdir().unwrap();
    let files = dir.path().join("files");
    fs::create_dir(&files).unwrap();
    let sqlite = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let mut engines = Vec::new();
    for name in [
        "cache",
        "db",
        "file",
        "cached_db",
        "signed_cookies",
        "account_db",
        "template",
    ] {
        let mut settings = Settings::new(SECRET_KEY);
        settings.session_engine = name.to_owned();
        settings.session_db_url = Some(sqlite(&format!("{name}.sqlite3")));
        settings.session_file_path = Some(files.clone());
        let library = engine_library(name);
        let engine = Engine::load(&library.to_string_lossy(), &settings)
            .unwrap_or_else(|error| panic!("{name} loads: {error}"));
        assert_eq!(engine.description().name, name);
        engines.push(engine);
    }
    let acme = Engine::load(&built.library.to_string_lossy(), &Settings::new(SECRET_KEY))
        .expect("acme loads");
    engines.push(acme.clone());

    let mut keys = Vec::new();
    for engine in &engines {
        let name = engine.description().name.clone();
        let mut session = engine.session(None);
        session.insert("written_in", &name).unwrap();
        session.save().unwrap();
        keys.push(session.session_key().expect("saved with a key").to_owned());
    }
    for (engine, key) in engines.iter().zip(&keys) {
        let name = &engine.description().name;
        let mut again = engine.session(Some(key));
        assert_eq!(
            again.get::<String>("written_in").unwrap().as_deref(),
            Some(name.as_str()),
            "{name} reads back its own session"
        );
    }
    let acme_key = keys.last().expect("acme's key");
    for (engine, key) in engines
        .iter()
        .zip(&keys)
        .filter(|(e, _)| e.description().name != NAME)
    {
        let name = &engine.description().name;
        let mut foreign = acme.session(Some(key));
        assert!(
            foreign.load().unwrap().is_empty(),
            "acme sees {name}'s session"
        );
        if engine.description().key_format == sessionkit::KeyFormat::DjangoSessionKey {
            assert!(
                !engine.session(None).exists(acme_key).unwrap(),
                "{name} sees acme's session"
            );
        }
    }
}

#[test]
fn engine_dropped_into_the_engine_path_is_listed_and_resolves_by_short_name() {
    let built = built();
    let dir = tempfile::tempdir().unwrap();
    let dropped = dir.path().join(format!("libsessionkit_engine_{NAME}.so"));
    fs::copy(&built.library, &dropped).unwrap();
    let engine_path = dir.path().to_string_lossy().into_owned();
    let env = [("SESSIONKIT_ENGINE_PATH", engine_path.as_str())];

    let listing = sessionkit_in(&["engines"], None, &env);
    assert_success(&listing, "sessionkit engines");
    let out = stdout(&listing);
    let canonical = fs::canonicalize(&dropped).unwrap();
    let line = out
        .lines()
        .find(|line| line.starts_with(&format!("{NAME}\t")))
        .unwrap_or_else(|| panic!("no '{NAME}' line in `sessionkit engines`:\n{out}"));
    assert!(
        line.ends_with(&canonical.to_string_lossy().into_owned()),
        "{line}"
    );
    assert!(
        line.contains("capabilities [server_side_invalidation, clear_expired, conditional_save]"),
        "{line}"
    );
    // The bundled engines beside the binary are still listed.
    assert!(out.lines().any(|l| l.starts_with("cache\t")), "{out}");

    // The host resolves the short name to the dropped file...
    assert_eq!(
        resolve_engine(NAME, &[dir.path().to_path_buf()]).unwrap(),
        dropped
    );
    // ...and so does the command line, by argument and by SESSION_ENGINE.
    let suite = sessionkit_in(
        &[
            "conformance",
            NAME,
            "--filter",
            "load_of_unknown_key_creates_nothing",
        ],
        None,
        &env,
    );
    assert_all_passed(&suite);
    let create_env = [
        ("SESSIONKIT_ENGINE_PATH", engine_path.as_str()),
        ("SESSION_ENGINE", NAME),
        ("SECRET_KEY", SECRET_KEY),
    ];
    let created = sessionkit_in(
        &["session", "create", "--data", r#"{"a": 1}"#],
        None,
        &create_env,
    );
    assert_success(
        &created,
        "sessionkit session create with SESSION_ENGINE=acme",
    );
    let key = stdout(&created).trim().to_owned();
    assert_eq!(key.len(), 32, "a new Django session key: {key:?}");

    // Without the directory in the search path the name is unknown, and the error says so.
    let unknown = sessionkit_in(
        &["session", "create"],
        None,
        &[("SESSION_ENGINE", NAME), ("SECRET_KEY", SECRET_KEY)],
    );
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains(&format!("unknown engine '{NAME}'")),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn new_engine_refuses_a_bad_name_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("crate");
    for bad in [
        "Acme", "1acme", "_acme", "ac-me", "ac.me", "ac/me", "ac me", "acmé", "",
    ] {
        let output = sessionkit(&["new-engine", bad, "--path", &target.to_string_lossy()]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{bad:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("invalid engine name")
                && stderr(&output).contains("[a-z][a-z0-9_]*"),
            "{bad:?}: {}",
            stderr(&output)
        );
        assert!(!target.exists(), "{bad:?} wrote {}", target.display());
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn new_engine_refuses_a_non_empty_directory_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("occupied");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("notes.txt"), "mine").unwrap();
    let output = sessionkit(&["new-engine", NAME, "--path", &target.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is not empty"),
        "{}",
        stderr(&output)
    );
    let entries: Vec<_> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["notes.txt"]);
    assert_eq!(
        fs::read_to_string(target.join("notes.txt")).unwrap(),
        "mine"
    );
    // No staging directory is left beside it either.
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    let file = dir.path().join("a-file");
    fs::write(&file, "x").unwrap();
    let output = sessionkit(&["new-engine", NAME, "--path", &file.to_string_lossy()]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is not a directory"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn new_engine_fills_an_empty_directory_and_defaults_to_dot_slash_name() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let output = sessionkit(&["new-engine", "zed", "--path", &empty.to_string_lossy()]);
    assert_success(&output, "new-engine into an empty directory");
    for file in [
        "Cargo.toml",
        "README.md",
        "src/lib.rs",
        "src/config.rs",
        "src/store.rs",
    ] {
        assert!(empty.join(file).is_file(), "{file} missing");
    }
    assert!(
        !empty.join("tests").exists(),
        "the in-repo test stays behind"
    );

    let output = sessionkit_in(&["new-engine", "by_default"], Some(dir.path()), &[]);
    assert_success(&output, "new-engine without --path");
    let lib = fs::read_to_string(dir.path().join("by_default/src/lib.rs")).unwrap();
    assert!(
        lib.contains("pub const ENGINE_NAME: &str = \"by_default\";"),
        "{lib}"
    );
    assert!(lib.contains("pub struct ByDefaultEngine;"), "{lib}");
    assert!(
        stdout(&output).contains("libsessionkit_engine_by_default.so"),
        "{}",
        stdout(&output)
    );
    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["by_default", "empty"],
        "no staging directory left behind"
    );
}

#[test]
fn new_engine_depends_on_the_sdk_it_is_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let published = dir.path().join("published");
    let output = sessionkit(&[
        "new-engine",
        "pub1",
        "--path",
        &published.to_string_lossy(),
        "--sdk-version",
        "0.1",
    ]);
    assert_success(&output, "new-engine --sdk-version");
    let manifest = fs::read_to_string(published.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("\nsessionkit-sdk = \"0.1\"\n"),
        "{manifest}"
    );

    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
    let by_path = dir.path().join("by_path");
    let output = sessionkit(&[
        "new-engine",
        "path1",
        "--path",
        &by_path.to_string_lossy(),
        "--sdk-path",
        &sdk.to_string_lossy(),
    ]);
    assert_success(&output, "new-engine --sdk-path");
    let manifest = fs::read_to_string(by_path.join("Cargo.toml")).unwrap();
    let canonical = fs::canonicalize(&sdk).unwrap();
    assert!(
        manifest.contains(&format!(
            "sessionkit-sdk = {{ path = \"{}\" }}",
            canonical.display()
        )),
        "{manifest}"
    );

    // A directory that is not the SDK is refused before anything is written.
    let wrong = dir.path().join("wrong");
    let output = sessionkit(&[
        "new-engine",
        "wrong1",
        "--path",
        &wrong.to_string_lossy(),
        "--sdk-path",
        env!("CARGO_MANIFEST_DIR"),
    ]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not the sessionkit-sdk crate"),
        "{}",
        stderr(&output)
    );
    assert!(!wrong.exists());
}
