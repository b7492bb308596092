//! Private by default (issue 9, defect 3): without `SESSION_FILE_PATH` the engine keeps
//! sessions in a 0700 directory of its own, files are 0600 whatever the umask, a default
//! directory someone else made or loosened is refused, and a configured directory others can
//! list or write is refused or warned about.
//!
//! The default directory lives in the system temp dir, which only the environment (`TMPDIR`)
//! moves; the tests that need it run as child processes of this test binary with their own
//! `TMPDIR` and umask, so they never touch the real temp dir or the umask of other tests.

// Test code: clippy's allow-unwrap-in-tests covers #[test] functions, not the helpers beside them.
#![allow(clippy::unwrap_used)]
#![cfg(unix)]

mod common;

use std::{
    env, fs,
    io::Write,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Mutex},
};

use serde_json::json;
use sessionkit_engine_file::{FileConfig, FileEngine, FileStore};
use sessionkit_sdk::{Engine, ErrorKind, SessionStore};

use common::{SECRET, Writer, key};

/// Set in a child process: what it does ("open-default").
const CHILD_WORK: &str = "SESSIONKIT_FILE_PRIVATE_CHILD_WORK";

/// The child's side; a no-op (that says so) in a normal test run. Opens the engine with no
/// `SESSION_FILE_PATH` under umask 000, stores a session, and prints what happened.
#[test]
fn child_process_work() {
    let Ok(work) = env::var(CHILD_WORK) else {
        println!("skipped: runs only as a child process of the tests in this file");
        return;
    };
    assert_eq!(work, "open-default");
    // The loosest umask there is: the engine's modes must not depend on it.
    rustix::process::umask(rustix::fs::Mode::empty());
    let settings = json!({"SECRET_KEY": SECRET}).to_string();
    match FileEngine::open(&settings) {
        Ok(store) => {
            if !store.exists(&key(1)).unwrap() {
                let write = Writer::new(1_209_600).write(&key(1), json!({"a": 1}));
                store.create(write).unwrap();
            }
            println!("opened {}", store.config().directory().display());
        }
        Err(error) => println!("refused {:?} {}", error.kind, error.message),
    }
}

/// Runs the child with `TMPDIR=tmp`; what it printed.
fn open_default_in(tmp: &Path) -> String {
    let output = Command::new(env::current_exe().unwrap())
        .args([
            "child_process_work",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_WORK, "open-default")
        .env("TMPDIR", tmp)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The default directory of this user under `tmp`.
fn default_dir_in(tmp: &Path) -> PathBuf {
    tmp.join(format!(
        "sessionkit-sessions-{}",
        rustix::process::geteuid().as_raw()
    ))
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn without_session_file_path_sessions_go_to_a_private_directory_even_under_umask_000() {
    let tmp = tempfile::tempdir().unwrap();
    let out = open_default_in(tmp.path());
    let dir = default_dir_in(tmp.path());
    assert!(out.contains(&format!("opened {}", dir.display())), "{out}");
    assert_eq!(mode(&dir), 0o700, "the directory is the user's alone");
    let file = dir.join(format!("sessionid{}", key(1)));
    assert_eq!(mode(&file), 0o600, "session files are the user's alone");
    let names: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "nothing else in the temp dir: {names:?}");

    // Opening again reuses it.
    let again = open_default_in(tmp.path());
    assert!(again.contains("opened"), "{again}");
}

#[test]
fn a_default_directory_others_can_open_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = default_dir_in(tmp.path());
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let out = open_default_in(tmp.path());
    assert!(out.contains("refused Config"), "{out}");
    assert!(
        out.contains("0755") && out.contains("SESSION_FILE_PATH"),
        "{out}"
    );
    assert!(
        fs::read_dir(&dir).unwrap().next().is_none(),
        "nothing stored"
    );
}

#[test]
fn a_symlink_in_place_of_the_default_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), default_dir_in(tmp.path())).unwrap();
    let out = open_default_in(tmp.path());
    assert!(out.contains("refused Config"), "{out}");
    assert!(fs::read_dir(elsewhere.path()).unwrap().next().is_none());
}

#[test]
fn a_default_directory_owned_by_another_user_is_refused() {
    if !rustix::process::geteuid().is_root() {
        println!("skipped: only root can give a directory to another user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = default_dir_in(tmp.path());
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
    let out = open_default_in(tmp.path());
    assert!(out.contains("refused Config"), "{out}");
    assert!(out.contains("owned by uid 65534"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// A configured directory.

/// The `sessionkit::security` warnings logged while opening a store in a directory of `mode`,
/// and whether it opened.
fn open_configured(mode: u32) -> (Result<(), ErrorKind>, String) {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).unwrap();
    let log = Log::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .finish();
    let opened = tracing::subscriber::with_default(subscriber, || {
        FileStore::open(&FileConfig::new(dir.path(), SECRET))
    });
    // Back to a mode tempfile can clean up.
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    (opened.map(drop).map_err(|e| e.kind), log.text())
}

#[test]
fn a_private_configured_directory_opens_without_a_word() {
    let (opened, log) = open_configured(0o700);
    assert_eq!(opened, Ok(()));
    assert!(log.is_empty(), "{log}");
}

#[test]
fn a_configured_directory_others_can_list_or_write_is_a_warning_naming_each_risk() {
    let cases = [
        (0o755, vec!["list"]),
        (0o750, vec!["list"]),
        (0o711, vec![]),
        (0o770, vec!["list", "add files"]),
        (0o730, vec!["add files"]),
        (0o1777, vec!["list", "add files"]),
    ];
    for (mode, risks) in cases {
        let (opened, log) = open_configured(mode);
        assert_eq!(opened, Ok(()), "{mode:o}");
        if risks.is_empty() {
            assert!(log.is_empty(), "{mode:o}: {log}");
            continue;
        }
        assert!(log.contains("WARN"), "{mode:o}: {log}");
        assert!(log.contains("sessionkit::security"), "{mode:o}: {log}");
        assert!(log.contains(&format!("{mode:04o}")), "{mode:o}: {log}");
        for risk in risks {
            assert!(log.contains(risk), "{mode:o} should warn '{risk}': {log}");
        }
    }
}

#[test]
fn a_configured_directory_everyone_may_write_without_the_sticky_bit_is_refused() {
    for mode in [0o777, 0o703] {
        let (opened, _) = open_configured(mode);
        assert_eq!(opened, Err(ErrorKind::Config), "{mode:o}");
    }
}

/// A `tracing` writer that keeps what is written.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Log {
    type Writer = Log;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
