//! An engine's log events reach the host's output at their level with the engine's name: the
//! file engine's warning about a session directory other users can list shows on the console of
//! `sessionkit demo` (the engine logs into its own copy of `tracing`; the SDK forwards it).

use std::{
    io::{BufRead, BufReader, Read},
    os::unix::fs::PermissionsExt,
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// Strips the terminal colour codes the log formatter writes.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_file_engines_directory_warning_shows_on_the_demo_console() {
    let work = tempfile::tempdir().expect("a working directory");
    let sessions = work.path().join("sessions");
    std::fs::create_dir(&sessions).expect("the session directory");
    // Listable by everyone: the engine warns (file names are session keys).
    std::fs::set_permissions(&sessions, std::fs::Permissions::from_mode(0o755)).expect("chmod 755");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessionkit"))
        .args(["demo", "--addr", "127.0.0.1:0"])
        .current_dir(work.path())
        .env_remove("SESSIONKIT_SETTINGS")
        .env_remove("SESSIONKIT_LOG")
        .env("SESSIONKIT_ENGINE_PATH", sessionkit_testkit::plugin_dir())
        .env("SECRET_KEY", "demo-engine-log-test-secret")
        .env("SESSION_ENGINE", "file")
        .env("SESSION_FILE_PATH", &sessions)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sessionkit binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let first = BufReader::new(stdout).lines().next();
        let _ = tx.send(first);
    });
    let started = rx.recv_timeout(Duration::from_secs(60));
    let _ = child.kill();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    let _ = child.wait();
    assert!(
        matches!(&started, Ok(Some(Ok(line))) if line.starts_with("listening on")),
        "the demo did not start: {started:?}\n{stderr}"
    );
    let stderr = plain(&stderr);
    let warning = stderr
        .lines()
        .find(|line| line.contains("other users"))
        .unwrap_or_else(|| panic!("no directory warning on the demo's console:\n{stderr}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("sessionkit::engine"), "{warning}");
    assert!(warning.contains("engine=\"file\""), "{warning}");
}
