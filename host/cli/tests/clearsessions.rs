//! `sessionkit clearsessions` on the `db` engine (SQLite file): the progress the engine reports
//! through the real plugin ABI, and what the command prints with and without a terminal.

// Test helpers unwrap like the tests they serve (clippy.toml allows it in `#[test]` bodies only).
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    path::Path,
    process::Command,
    sync::{Arc, Mutex},
};

use common::Sessionkit;
use sessionkit::{Engine, SessionRecord, SessionWrite, Settings, Timestamp};

const KEY: &str = "clearsessions-test-secret-key";

/// The `db` engine on the SQLite file `path`, loaded from its library.
fn db_engine(path: &Path) -> Engine {
    let mut settings = Settings::new(KEY);
    settings.session_db_url = Some(sqlite_url(path));
    let library = sessionkit_testkit::engine_library("db");
    Engine::load(library.to_str().expect("a UTF-8 path"), &settings).expect("the db engine loads")
}

/// Synchronous `normal`: the fill is thousands of commits, durability is not under test.
fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?synchronous=normal", path.display())
}

/// Stores `expired` sessions that expired an hour ago and `live` ones live for an hour;
/// returns the live keys.
fn fill(engine: &Engine, expired: usize, live: usize) -> Vec<String> {
    let now = Timestamp::now().as_secs();
    let mut keys = Vec::new();
    for i in 0..expired + live {
        let is_live = i >= expired;
        let key = format!("{}{i:030}", if is_live { "lv" } else { "ex" });
        let expire_date = Timestamp::from_secs(if is_live { now + 3600 } else { now - 3600 });
        engine
            .store()
            .create(SessionWrite {
                record: SessionRecord {
                    session_key: key.clone().into(),
                    session_data: "e30:placeholder".into(),
                    expire_date,
                },
                session_json: "{}".into(),
            })
            .expect("a session is stored");
        if is_live {
            keys.push(key);
        }
    }
    keys
}

#[test]
fn the_db_engine_reports_its_progress_through_the_plugin_abi() {
    let dir = tempfile::tempdir().unwrap();
    let engine = db_engine(&dir.path().join("sessions.sqlite3"));
    let live = fill(&engine, 2_500, 3);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);

    let removed = engine
        .clear_expired_with_progress(Arc::new(move |operation: &str, done, total| {
            seen.lock()
                .unwrap()
                .push((operation.to_owned(), done, total));
        }))
        .unwrap();

    assert_eq!(removed, 2_500);
    let events = events.lock().unwrap().clone();
    assert!(events.len() >= 3, "a count and several batches: {events:?}");
    assert_eq!(
        events[0],
        ("clear_expired".to_owned(), 0, 2_500),
        "{events:?}"
    );
    assert_eq!(
        events.last().map(|e| e.1),
        Some(2_500),
        "the last report is the whole count: {events:?}"
    );
    assert!(
        events
            .windows(2)
            .all(|w| w[0].1 < w[1].1 && w[1].2 == 2_500 && w[1].0 == "clear_expired"),
        "each batch moves forward: {events:?}"
    );
    for key in &live {
        assert!(engine.store().load(key).unwrap().is_some(), "{key} is live");
    }
    // Nobody watching: no listener is left behind, and nothing is counted for nobody.
    assert_eq!(engine.clear_expired().unwrap(), 0);
}

#[test]
fn without_a_terminal_it_prints_the_count_and_one_plain_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.sqlite3");
    fill(&db_engine(&path), 1_200, 2);
    let cli = Sessionkit::new(KEY)
        .with("SESSION_ENGINE", "db")
        .with("SESSION_DB_URL", &sqlite_url(&path));

    let run = cli.run(&["clearsessions"], "");

    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "1200\n", "stdout is the count alone: {run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {run:?}");
    assert!(
        lines[0].starts_with("removed 1200 expired sessions from 'db' in "),
        "{run:?}"
    );
    assert!(
        !run.stderr.contains('\u{1b}') && !run.stderr.contains('\r'),
        "no bar drawn without a terminal: {run:?}"
    );
    assert_eq!(cli.clearsessions(), 0, "nothing left to clear");
}

#[test]
fn on_a_terminal_it_draws_progress_then_prints_the_summary() {
    // util-linux `script` runs the command on a pseudo-terminal and copies what it prints.
    if Command::new("script").arg("--version").output().is_err() {
        println!("skipped: util-linux `script` (a pseudo-terminal) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.sqlite3");
    fill(&db_engine(&path), 3_000, 2);
    let plugins = sessionkit_testkit::plugin_dir();
    let output = Command::new("script")
        .args(["--quiet", "--return", "--command"])
        .arg(format!(
            "{} clearsessions",
            env!("CARGO_BIN_EXE_sessionkit")
        ))
        .arg("/dev/null")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .env("SECRET_KEY", KEY)
        .env("SESSION_ENGINE", "db")
        .env("SESSION_DB_URL", sqlite_url(&path))
        .env("SESSIONKIT_ENGINE_PATH", &plugins)
        .current_dir(dir.path())
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&output.stdout);

    assert!(output.status.success(), "{output:?}");
    assert!(
        shown.contains("clearing expired sessions from 'db'"),
        "the bar is drawn on the terminal: {shown:?}"
    );
    assert!(
        shown.contains('\u{1b}'),
        "the bar redraws in place: {shown:?}"
    );
    assert!(shown.contains("3000\r\n"), "the count: {shown:?}");
    assert!(
        shown.contains("removed 3000 expired sessions from 'db' in "),
        "the summary after the bar: {shown:?}"
    );
}
