//! A damaged or rewritten engine library never takes the host down (issue 9, defect 4).
//!
//! Before the fix, a library truncated inside its segments was mapped as is and the first touch
//! of a missing page killed `sessionkit engines`, `session`, `conformance` and `demo` with
//! SIGBUS and no output; and a demo whose library file was rewritten in place (as `cp` does)
//! died at its next request. Now the file is checked before it is loaded and loaded from a
//! private sealed copy.

mod demo_support;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use demo_support::{Demo, Visitor};

/// Where the truncated copies are cut: past the ELF and program headers, inside the loadable
/// segments (every engine library's code alone is several times larger). Cutting at half the
/// file would land in the debug info of a debug build, which `dlopen` never maps.
const CUT_AT: usize = 64 * 1024;

/// A copy of engine `name`'s library in `dir`, cut at [`CUT_AT`] bytes.
fn truncated_copy(dir: &Path, name: &str) -> PathBuf {
    let bytes = std::fs::read(sessionkit_testkit::engine_library(name)).expect("built library");
    assert!(bytes.len() > 4 * CUT_AT, "{name}: {} bytes", bytes.len());
    let path = dir.join(format!("libsessionkit_engine_{name}.so"));
    std::fs::write(&path, &bytes[..CUT_AT]).expect("write the truncated copy");
    path
}

/// `sessionkit <args>` with the engine search path starting at `dir`, then this build's plugins.
fn sessionkit(dir: &Path, args: &[&str], engine: &str) -> Output {
    let search = std::env::join_paths([dir.to_path_buf(), sessionkit_testkit::plugin_dir()])
        .expect("paths without ':'");
    let work = tempfile::tempdir().expect("a working directory");
    Command::new(env!("CARGO_BIN_EXE_sessionkit"))
        .args(args)
        .current_dir(work.path())
        .env_remove("SESSIONKIT_SETTINGS")
        .env("SESSIONKIT_ENGINE_PATH", search)
        .env("SECRET_KEY", "damaged-library-test-secret")
        .env("SESSION_ENGINE", engine)
        .stdin(Stdio::null())
        .output()
        .expect("the sessionkit binary runs")
}

/// The run ended by itself, not killed by a signal (SIGBUS was the defect).
fn assert_clean_exit(output: &Output, what: &str) {
    assert_eq!(
        output.status.signal(),
        None,
        "{what} was killed by a signal: {output:?}"
    );
}

#[test]
fn engines_lists_a_truncated_library_as_one_failed_line_and_every_other_engine() {
    let dir = tempfile::tempdir().unwrap();
    let bad = truncated_copy(dir.path(), "db");
    let output = sessionkit(dir.path(), &["engines"], "db");
    assert_clean_exit(&output, "sessionkit engines");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("(failed)"))
        .collect();
    assert_eq!(failed.len(), 1, "{stdout}");
    assert!(failed[0].contains(&bad.display().to_string()), "{stdout}");
    assert!(failed[0].contains("engine 'db'"), "{stdout}");
    assert!(failed[0].contains("truncated"), "{stdout}");
    // The other engines on the search path still load and are listed.
    for other in ["cache", "file", "signed_cookies", "cached_db"] {
        assert!(
            stdout
                .lines()
                .any(|line| line.starts_with(&format!("{other}\t"))),
            "{other} missing from:\n{stdout}"
        );
    }
}

#[test]
fn session_and_conformance_on_a_truncated_library_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = truncated_copy(dir.path(), "cache");
    let spec = bad.display().to_string();
    for (what, args) in [
        ("session create", vec!["session", "create"]),
        ("conformance", vec!["conformance", spec.as_str()]),
    ] {
        let output = sessionkit(dir.path(), &args, &spec);
        assert_clean_exit(&output, what);
        assert_eq!(output.status.code(), Some(1), "{what}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{what}: {stderr}");
        assert!(lines[0].contains(&spec), "{what}: {stderr}");
        assert!(lines[0].contains("engine 'cache'"), "{what}: {stderr}");
        assert!(lines[0].contains("truncated"), "{what}: {stderr}");
    }
}

#[test]
fn a_running_demo_survives_its_library_file_being_rewritten_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("libsessionkit_engine_cache.so");
    std::fs::copy(sessionkit_testkit::engine_library("cache"), &library).unwrap();
    let demo = Demo::start_with(
        "cache",
        &[("SESSION_ENGINE", library.to_str().expect("a UTF-8 path"))],
    );
    let mut client = Visitor::new(&demo);
    let first = client.post("/comment", &[("comment", "before the deploy")]);
    assert_eq!(first.status, 200, "{first:?}");

    // What `cp new.so engine.so` does: truncate the same inode, then write new contents (here
    // another engine's library, so every page differs), leaving the old mapping's pages gone.
    let replacement = std::fs::read(sessionkit_testkit::engine_library("signed_cookies")).unwrap();
    std::fs::write(&library, &replacement[..replacement.len() / 3]).unwrap();
    std::fs::write(&library, &replacement).unwrap();

    for _ in 0..3 {
        let again = client.get("/");
        assert_eq!(again.status, 200, "{again:?}");
        assert!(again.body.contains("before the deploy"), "{}", again.body);
    }
    let comment = client.post("/comment", &[("comment", "after the deploy")]);
    assert_eq!(comment.status, 200, "{comment:?}");
    assert!(
        comment.body.contains("already commented"),
        "{}",
        comment.body
    );
}
