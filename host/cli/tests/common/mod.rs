//! Shared helpers of the Django interop tests: the `sessionkit` binary with Django-named
//! settings, and a real Django 5.2 app (tests/django/peer.py) driven over a pipe.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

/// The salt of Django's server-side session stores (db, file, cache).
pub(crate) const SESSION_STORE_SALT: &str = "django.contrib.sessions.SessionStore";
/// The salt of Django's signed_cookies session backend.
pub(crate) const SIGNED_COOKIES_SALT: &str = "django.contrib.sessions.backends.signed_cookies";
/// Django's default SESSION_COOKIE_AGE (two weeks).
pub(crate) const DEFAULT_COOKIE_AGE: i64 = 1_209_600;

/// What one `sessionkit` run did.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output, after asserting the run succeeded.
    pub(crate) fn expect_ok(self, what: &str) -> String {
        assert_eq!(self.code, Some(0), "{what} failed: {self:?}");
        self.stdout
    }
}

/// The `sessionkit` command line with a fixed set of Django-named settings in its environment
/// (and nothing else: the inherited environment and any `sessionkit.toml` are kept out).
#[derive(Debug, Clone)]
pub(crate) struct Sessionkit {
    env: Vec<(String, String)>,
}

/// One session as `sessionkit session show` prints it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shown {
    /// The session key.
    pub session_key: String,
    /// The record's expiry.
    pub expire_date: DateTime<Utc>,
    /// The decoded session.
    pub data: Value,
}

impl Sessionkit {
    /// The CLI with `SECRET_KEY` and the engine plugins of this build.
    pub(crate) fn new(secret_key: &str) -> Self {
        let plugins = sessionkit_testkit::plugin_dir();
        Self {
            env: vec![
                ("SECRET_KEY".to_owned(), secret_key.to_owned()),
                (
                    "SESSIONKIT_ENGINE_PATH".to_owned(),
                    plugins.display().to_string(),
                ),
            ],
        }
    }

    /// The same CLI with one more setting (or a changed one).
    pub(crate) fn with(mut self, name: &str, value: &str) -> Self {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Runs `sessionkit ARGS` with `stdin` as its input.
    pub(crate) fn run(&self, args: &[&str], stdin: &str) -> Run {
        // An empty working directory: no stray sessionkit.toml or relative database.
        let cwd = tempfile::tempdir().expect("a temporary working directory");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sessionkit"))
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(n, v)| (n, v)))
            .current_dir(cwd.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sessionkit binary starts");
        let mut input = child.stdin.take().expect("stdin is piped");
        // Commands that take no input may exit without reading it; their status tells.
        let _ = input.write_all(stdin.as_bytes());
        drop(input);
        let output = child
            .wait_with_output()
            .expect("sessionkit's output is readable");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// `sessionkit session create --data DATA [--expiry SECONDS]`: the printed key.
    pub(crate) fn create(&self, data: &Value, expiry: Option<i64>) -> String {
        let data = data.to_string();
        let expiry = expiry.map(|seconds| seconds.to_string());
        let mut args = vec!["session", "create", "--data", data.as_str()];
        if let Some(seconds) = &expiry {
            args.extend(["--expiry", seconds.as_str()]);
        }
        let out = self.run(&args, "").expect_ok("session create");
        let key = out.trim();
        assert_eq!(
            out.lines().count(),
            1,
            "session create prints only the key: {out:?}"
        );
        key.to_owned()
    }

    /// `sessionkit session show KEY`: the session, or `None` when it exits 1 (no live session).
    pub(crate) fn show(&self, key: &str) -> Option<Shown> {
        let run = self.run(&["session", "show", key], "");
        if run.code == Some(1) && run.stdout.is_empty() {
            return None;
        }
        let out = run.expect_ok("session show");
        let value: Value = serde_json::from_str(&out).expect("session show prints JSON");
        Some(Shown {
            session_key: value["session_key"]
                .as_str()
                .expect("session_key")
                .to_owned(),
            expire_date: parse_time(value["expire_date"].as_str().expect("expire_date")),
            data: value["data"].clone(),
        })
    }

    /// `sessionkit clearsessions`: how many sessions it removed.
    pub(crate) fn clearsessions(&self) -> u64 {
        let out = self.run(&["clearsessions"], "").expect_ok("clearsessions");
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("clearsessions prints a count: {out:?}"))
    }
}

/// A running Django 5.2 app (tests/django/peer.py) with its own settings; requests go over its
/// stdin, replies come back as JSON lines.
pub(crate) struct DjangoPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr_path: tempfile::TempPath,
}

impl DjangoPeer {
    /// Starts Django with `settings` (Django names) and, if given, the database at
    /// `database_url` (`sqlite:///abs/path` or `postgres://…`; migrate it with `migrate`).
    pub(crate) fn start(settings: Value, database_url: Option<&str>) -> Self {
        let python = sessionkit_testkit::django_python();
        if database_url.is_some_and(|url| url.starts_with("postgres")) {
            ensure_psycopg(&python);
        }
        let config = json!({"settings": settings, "database_url": database_url});
        let stderr_path = tempfile::NamedTempFile::new()
            .expect("a file for Django's stderr")
            .into_temp_path();
        let stderr = File::create(&stderr_path).expect("Django's stderr file opens");
        let mut child = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/django/peer.py"))
            .env("SK_PEER_CONFIG", config.to_string())
            .env("PYTHONIOENCODING", "utf-8")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("DJANGO_SETTINGS_MODULE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Self {
            child,
            stdin,
            stdout,
            stderr_path,
        }
    }

    /// Runs `op` with `args` (a JSON object) in Django and returns its result.
    ///
    /// # Panics
    ///
    /// When Django raised (with the traceback) or the peer died (with its stderr).
    pub(crate) fn call(&mut self, op: &str, args: Value) -> Value {
        let mut request = match args {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            other => panic!("peer arguments must be an object, not {other}"),
        };
        request.insert("op".to_owned(), json!(op));
        let stdin = self.stdin.as_mut().expect("the peer is running");
        let sent = writeln!(stdin, "{}", Value::Object(request)).and_then(|()| stdin.flush());
        let mut line = String::new();
        let read = self.stdout.read_line(&mut line);
        if sent.is_err() || !matches!(read, Ok(n) if n > 0) {
            panic!(
                "the Django peer died during '{op}':\n{}",
                self.stderr_text()
            );
        }
        let reply: Value = serde_json::from_str(&line).expect("the peer replies with JSON");
        match reply.get("error") {
            Some(error) => panic!(
                "Django raised in '{op}':\n{}",
                error.as_str().unwrap_or("?")
            ),
            None => reply["ok"].clone(),
        }
    }

    fn stderr_text(&self) -> String {
        let mut text = String::new();
        let _ = File::open(&self.stderr_path).and_then(|mut f| f.read_to_string(&mut text));
        text
    }
}

impl Drop for DjangoPeer {
    fn drop(&mut self) {
        // End of input ends the peer's request loop.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// How a session's expiry was set, on either side.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expiry {
    /// Not set: SESSION_COOKIE_AGE from the save.
    Default,
    /// `set_expiry(seconds)` / `--expiry seconds`.
    Seconds(i64),
    /// `set_expiry(datetime)`: Django stores its ISO form in `_session_expiry`.
    At(&'static str),
}

impl Expiry {
    /// What the peer's `create` op passes to Django's `set_expiry` (null: no call).
    pub(crate) fn for_django(self) -> Value {
        match self {
            Self::Default => Value::Null,
            Self::Seconds(n) => json!(n),
            Self::At(iso) => json!(iso),
        }
    }

    /// The session as stored: `data` plus `_session_expiry` (last, as set_expiry adds it).
    pub(crate) fn stored(self, data: &Value) -> Value {
        let mut stored = data.clone();
        let map = stored.as_object_mut().expect("session data is an object");
        match self {
            Self::Default => {}
            Self::Seconds(n) => {
                map.insert("_session_expiry".to_owned(), json!(n));
            }
            Self::At(iso) => {
                map.insert("_session_expiry".to_owned(), json!(iso));
            }
        }
        stored
    }

    /// A session saved by sessionkit: `--expiry` for seconds, `_session_expiry` in `--data` for
    /// an ISO time (what Django's `set_expiry(datetime)` would have stored).
    pub(crate) fn create_with(self, sessionkit: &Sessionkit, data: &Value) -> String {
        match self {
            Self::Default => sessionkit.create(data, None),
            Self::Seconds(n) => sessionkit.create(data, Some(n)),
            Self::At(_) => sessionkit.create(&self.stored(data), None),
        }
    }
}

/// Asserts two sessions are the same JSON, key order included (a session is a Python dict).
pub(crate) fn assert_same_session(actual: &Value, expected: &Value, what: &str) {
    assert_eq!(actual, expected, "{what}: session data");
    assert_eq!(
        actual.to_string(),
        expected.to_string(),
        "{what}: key order"
    );
}

/// An ISO-8601 / RFC 3339 time as printed by sessionkit or Python's `isoformat()`.
pub(crate) fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not an ISO-8601 time: {e}"))
        .with_timezone(&Utc)
}

/// A JSON value holding an ISO time (a Django reply field).
pub(crate) fn time_of(value: &Value) -> DateTime<Utc> {
    parse_time(
        value
            .as_str()
            .unwrap_or_else(|| panic!("{value} is not a time string")),
    )
}

/// The current time, truncated to the microsecond as stored expiries are (so a bracket taken
/// before a save cannot be later than the save's own, truncated, clock reading).
pub(crate) fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// `seconds` as a chrono duration.
pub(crate) fn seconds(seconds: i64) -> TimeDelta {
    TimeDelta::seconds(seconds)
}

/// Asserts that `actual` lies within `[earliest, latest]` (an expiry computed by a process that
/// ran between two readings of the clock).
pub(crate) fn assert_between(
    actual: DateTime<Utc>,
    earliest: DateTime<Utc>,
    latest: DateTime<Utc>,
    what: &str,
) {
    assert!(
        earliest <= actual && actual <= latest,
        "{what}: {actual} is not within [{earliest}, {latest}]"
    );
}

/// The keys in `keys` (a JSON array of strings), sorted.
pub(crate) fn sorted_keys(keys: &Value) -> Vec<String> {
    let mut keys: Vec<String> = keys
        .as_array()
        .expect("a list of keys")
        .iter()
        .map(|k| k.as_str().expect("a key").to_owned())
        .collect();
    keys.sort();
    keys
}

/// Makes sure the Django virtualenv can talk to PostgreSQL (Django's `postgresql` backend needs
/// psycopg, which the testkit's virtualenv does not install): installs `psycopg[binary]` from
/// PyPI once, under a lock so parallel tests do not race.
fn ensure_psycopg(python: &Path) {
    let importable = || {
        Command::new(python)
            .args(["-c", "import psycopg"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if importable() {
        return;
    }
    let venv: PathBuf = python
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let lock_path = venv.with_extension("psycopg.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", lock_path.display()));
    if importable() {
        return;
    }
    let output = Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg("psycopg[binary]>=3.1,<4")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run pip: {e}"));
    assert!(
        output.status.success() && importable(),
        "pip install psycopg[binary] into {} failed:\n{}",
        venv.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}
