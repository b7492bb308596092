#![doc = include_str!("../README.md")]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sessionkit_codec::redact_url;

pub mod redis_servers;

/// The Django versions the interop tests run against (the reference version is 5.2).
pub const DJANGO_REQUIREMENT: &str = "django>=5.2,<6";

/// Overrides where the Django virtualenv lives (default `<target dir>/django-venv`).
pub const DJANGO_VENV_ENV: &str = "SESSIONKIT_DJANGO_VENV";

/// The PostgreSQL server URL for tests that need one (unset = those tests skip).
pub const POSTGRES_URL_ENV: &str = "SESSIONKIT_TEST_POSTGRES_URL";

/// The Redis server URL for tests that need one (unset = those tests skip).
pub const REDIS_URL_ENV: &str = "SESSIONKIT_TEST_REDIS_URL";

/// Where MySQL/MariaDB tests find a server (a `mysql://` URL); unset means skip them.
pub const MYSQL_URL_ENV: &str = "SESSIONKIT_TEST_MYSQL_URL";

/// The directory holding this test's executable and the engine plugins cargo built for it
/// (`target/<profile>/deps`), so tests load the `.so` files of the same build without an env
/// var.
///
/// # Panics
///
/// If the path of the running executable cannot be determined.
pub fn plugin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path is readable");
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir
    } else {
        dir.join("deps")
    }
}

/// The path of engine `name`'s plugin in [`plugin_dir`]: `libsessionkit_engine_<name>.so`
/// (dashes in `name` become underscores, as cargo names the library file).
pub fn engine_library(name: &str) -> PathBuf {
    let stem = name.replace('-', "_");
    plugin_dir().join(format!(
        "{}sessionkit_engine_{stem}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// The Python interpreter of a virtualenv with Django 5.2.x installed, for interop tests.
///
/// The virtualenv lives in `$SESSIONKIT_DJANGO_VENV` or else `<target dir>/django-venv`. It is
/// reused when its interpreter already imports a matching Django; otherwise it is created with
/// `python3 -m venv` (`$PYTHON` picks another interpreter) and `pip install "django>=5.2,<6"`
/// (needs PyPI). Creation holds an
/// exclusive lock on `<venv>.lock`, so parallel test binaries neither race nor build it twice.
/// The result is cached for the life of the process.
///
/// # Panics
///
/// With a message naming the step and its output when the virtualenv cannot be made (no
/// `python3`, no `venv` module, PyPI unreachable, ...).
pub fn django_python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PYTHON.get_or_init(prepare_django_venv) {
        Ok(python) => python.clone(),
        Err(why) => panic!("cannot provide a Django virtualenv: {why}"),
    }
}

/// Runs a Python script with Django configured, and returns what it printed on stdout.
///
/// Before `script` runs, a prelude calls `settings.configure(...)` and `django.setup()`.
/// Settings come from `env`: every pair whose name is an upper-case identifier (`SECRET_KEY`,
/// `SECRET_KEY_FALLBACKS`, `SESSION_COOKIE_AGE`, `DATABASES`, ...) becomes a setting. Values are
/// parsed as JSON when they parse (`'["old-key"]'`, `1209600`, `true`), else used as text;
/// `SECRET_KEY` is always text. Defaults: `USE_TZ=True`, `INSTALLED_APPS` with
/// `django.contrib.sessions`, an in-memory SQLite database, and a fixed test `SECRET_KEY`.
/// All pairs are also exported as environment variables, so the script can read its own.
///
/// The prelude defines `emit(obj)`, which prints `obj` as one line of JSON; stdout carries only
/// what the script prints (Django logs to stderr), so a script can print JSON for the caller.
///
/// # Panics
///
/// When the script exits unsuccessfully, with its stderr in the message.
pub fn run_django(script: &str, env: &[(&str, &str)]) -> String {
    run_django_with_input(script, env, "")
}

/// Like [`run_django`], with `input` on the script's standard input (pass a large corpus this
/// way instead of embedding it in the script).
///
/// # Panics
///
/// As [`run_django`].
pub fn run_django_with_input(script: &str, env: &[(&str, &str)], input: &str) -> String {
    let python = django_python();
    let mut file = tempfile::Builder::new()
        .prefix("sessionkit-django-")
        .suffix(".py")
        .tempfile()
        .expect("a temporary file for the Django script can be created");
    file.write_all(DJANGO_PRELUDE.as_bytes())
        .and_then(|()| file.write_all(b"\n# --- test script ---\n"))
        .and_then(|()| file.write_all(script.as_bytes()))
        .and_then(|()| file.flush())
        .expect("the Django script can be written");

    let names: Vec<&str> = env
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| is_setting_name(name))
        .collect();
    let mut cmd = Command::new(&python);
    cmd.arg(file.path())
        .env("PYTHONIOENCODING", "utf-8")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("SESSIONKIT_DJANGO_SETTINGS", names.join(","))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        cmd.env(name, value);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let input = input.to_owned();
    // Write stdin on another thread so a script that prints a lot before reading cannot
    // deadlock against us.
    let writer = std::thread::spawn(move || {
        // A script that exits without reading its input closes the pipe; that is not an error
        // here, the exit status tells.
        let _ = stdin.write_all(input.as_bytes());
    });
    let output = child
        .wait_with_output()
        .expect("the Django script's output can be read");
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        panic!(
            "Django script failed ({}):\n--- stderr ---\n{}\n--- stdout ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            stdout
        );
    }
    stdout
}

/// The PostgreSQL URL from `$SESSIONKIT_TEST_POSTGRES_URL`, or `None` after printing
/// `skipped: ... not set` (so a skipping test says why).
pub fn postgres_url() -> Option<String> {
    server_url(POSTGRES_URL_ENV, "PostgreSQL")
}

/// The Redis URL from `$SESSIONKIT_TEST_REDIS_URL`, or `None` after printing
/// `skipped: ... not set`.
pub fn redis_url() -> Option<String> {
    server_url(REDIS_URL_ENV, "Redis")
}

/// The MySQL/MariaDB URL from `$SESSIONKIT_TEST_MYSQL_URL`
/// (`mysql://root@127.0.0.1:3306/test`), or `None` after printing `skipped: ... not set`.
pub fn mysql_url() -> Option<String> {
    server_url(MYSQL_URL_ENV, "MySQL/MariaDB")
}

/// Runs `sql` on the MySQL server of `url` (`mysql://` or `mariadb://`) over one connection.
fn mysql_exec(url: &str, sql: &str) -> Result<(), String> {
    use mysql_async::prelude::Queryable;
    let driver_url = match url.split_once("://") {
        Some((_, rest)) => format!("mysql://{rest}"),
        None => url.to_owned(),
    };
    let opts = mysql_async::Opts::from_url(&driver_url).map_err(|e| e.to_string())?;
    let opts = mysql_async::OptsBuilder::from_opts(opts).prefer_socket(false);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime
        .block_on(async {
            let mut conn = mysql_async::Conn::new(opts).await?;
            conn.query_drop(sql).await?;
            conn.disconnect().await
        })
        .map_err(|e| e.to_string())
}

/// Creates a new, empty MySQL/MariaDB database `sessionkit_<random>` on the server of
/// `base_url` and returns a URL for it (same credentials, host and query parameters). Drop it
/// with [`drop_mysql_database`] when done; the base URL's own database is never touched.
///
/// # Panics
///
/// When the server cannot be reached or the database cannot be created.
pub fn fresh_mysql_database(base_url: &str) -> String {
    let name = format!("sessionkit_{}", random_lowercase(16));
    // The name is generated from [a-z0-9_] only, so it needs no quoting.
    mysql_exec(base_url, &format!("CREATE DATABASE {name}")).unwrap_or_else(|e| {
        panic!(
            "cannot create database {name} on {}: {e}",
            redact_url(base_url)
        )
    });
    with_database(base_url, &name)
}

/// Drops a database made by [`fresh_mysql_database`] (connecting through `base_url`); failures
/// are printed, not raised, since cleanup must not fail a passing test.
pub fn drop_mysql_database(base_url: &str, database_url: &str) {
    let Some(name) = database_name(database_url).filter(|n| n.starts_with("sessionkit_")) else {
        eprintln!(
            "not dropping {}: not a database made by the testkit",
            redact_url(database_url)
        );
        return;
    };
    if let Err(e) = mysql_exec(base_url, &format!("DROP DATABASE IF EXISTS {name}")) {
        eprintln!("could not drop test database {name}: {e}");
    }
}

/// Creates a new, empty database `sk_<random>` on the server of `base_url` and returns a URL
/// for it (same credentials, host and query parameters), so each test run has its own tables
/// on a shared server. Drop it with [`drop_postgres_database`] when done.
///
/// # Panics
///
/// When the server cannot be reached or the database cannot be created.
pub fn fresh_postgres_database(base_url: &str) -> String {
    let name = format!("sk_{}", random_lowercase(16));
    let mut client = postgres::Client::connect(base_url, postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "cannot connect to PostgreSQL at {}: {e}",
            redact_url(base_url)
        )
    });
    // The name is generated from [a-z0-9] only, so it needs no quoting.
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    with_database(base_url, &name)
}

/// Drops a database made by [`fresh_postgres_database`] (connecting through `base_url`);
/// failures are printed, not raised, since cleanup must not fail a passing test.
pub fn drop_postgres_database(base_url: &str, database_url: &str) {
    let Some(name) = database_name(database_url).filter(|n| n.starts_with("sk_")) else {
        eprintln!(
            "not dropping {}: not a database made by the testkit",
            redact_url(database_url)
        );
        return;
    };
    let result = postgres::Client::connect(base_url, postgres::NoTls).and_then(|mut client| {
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    });
    if let Err(e) = result {
        eprintln!("could not drop test database {name}: {e}");
    }
}

/// A random prefix for this run's keys (`sktest:<12 random chars>:`), so tests sharing a
/// Redis server never see each other's data and never need to flush it.
pub fn unique_prefix() -> String {
    format!("sktest:{}:", random_lowercase(12))
}

/// Configures Django from the environment; see [`run_django`].
const DJANGO_PRELUDE: &str = r#"
import json as _json
import os as _os
import sys as _sys

import django as _django
from django.conf import settings as _settings

_conf = {
    "SECRET_KEY": "sessionkit-testkit-default-secret-key",
    "USE_TZ": True,
    "INSTALLED_APPS": ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"],
    "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
}
for _name in filter(None, _os.environ.get("SESSIONKIT_DJANGO_SETTINGS", "").split(",")):
    _value = _os.environ[_name]
    if _name != "SECRET_KEY":
        try:
            _value = _json.loads(_value)
        except ValueError:
            pass
    _conf[_name] = _value
_settings.configure(**_conf)
_django.setup()


def emit(obj):
    """Print one JSON document on its own line (for the Rust side to parse)."""
    _sys.stdout.write(_json.dumps(obj) + "\n")
    _sys.stdout.flush()
"#;

fn is_setting_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

pub(crate) fn server_url(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            println!("skipped: {var} not set (needs a {what} server)");
            None
        }
    }
}

/// `len` characters of `[a-z0-9]` from the OS random source (uniform by rejection sampling).
fn random_lowercase(len: usize) -> String {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut pool = [0u8; 32];
    while out.len() < len {
        getrandom::fill(&mut pool).expect("the OS random number generator works");
        for &b in pool.iter().filter(|&&b| b < 252) {
            if out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b % 36)]));
            }
        }
    }
    out
}

/// `url` with its database path replaced by `/name` (query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = before_query.find("://").map_or(0, |i| i + 3);
    let base = match before_query[authority_start..].find('/') {
        Some(i) => &before_query[..authority_start + i],
        None => before_query,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

fn database_name(url: &str) -> Option<&str> {
    let before_query = url.split('?').next()?;
    let authority_start = before_query.find("://")? + 3;
    let path_start = before_query[authority_start..].find('/')? + authority_start;
    Some(&before_query[path_start + 1..]).filter(|n| !n.is_empty())
}

/// What an engine README's `## Capabilities` table says, read by each engine's test that the
/// README and the code agree.
///
/// The table's rows name capabilities in backticks in the first cell (several per row allowed).
/// The second cell decides what the row says: starting with `no` or `not declared`, the engine
/// does not declare it; starting with `added by an opened store`, the store adds it at open
/// (`SessionStore::capabilities`); anything else (`yes`, or a plain reason), it is declared.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReadmeCapabilities {
    /// The capabilities the README says the engine declares, sorted.
    pub declared: Vec<String>,
    /// The capabilities the README says an opened store may add, sorted.
    pub added_by_store: Vec<String>,
}

/// Reads the `## Capabilities` table of an engine README (see [`ReadmeCapabilities`]).
///
/// # Errors
///
/// When the README has no `## Capabilities` section or its table names no capability.
pub fn readme_capabilities(readme: &str) -> Result<ReadmeCapabilities, String> {
    let section = readme
        .split("\n## ")
        .find(|section| section.starts_with("Capabilities"))
        .ok_or("the README has no `## Capabilities` section")?;
    let mut found = ReadmeCapabilities::default();
    for row in section.lines().filter(|line| line.starts_with("| `")) {
        let mut cells = row.trim_matches('|').split('|').map(str::trim);
        let (Some(names), Some(says)) = (cells.next(), cells.next()) else {
            continue;
        };
        let says = says.to_ascii_lowercase();
        let list = if says.starts_with("no") {
            continue;
        } else if says.starts_with("added by an opened store") {
            &mut found.added_by_store
        } else {
            &mut found.declared
        };
        list.extend(names.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    if found.declared.is_empty() && found.added_by_store.is_empty() {
        return Err("the `## Capabilities` table names no capability".to_owned());
    }
    found.declared.sort();
    found.added_by_store.sort();
    Ok(found)
}

/// Checks that an engine README's capability table ([`readme_capabilities`]) lists exactly the
/// engine's `declared` capabilities (`CAPABILITIES.names()`), and that a store-added one is not
/// also declared.
///
/// # Errors
///
/// A message naming both lists when they differ, or why the table could not be read.
pub fn check_readme_capabilities<'a>(
    readme: &str,
    declared: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    let found = readme_capabilities(readme)?;
    let mut declared: Vec<String> = declared.into_iter().map(str::to_owned).collect();
    declared.sort();
    if found.declared != declared {
        return Err(format!(
            "the README declares {:?}, the code {declared:?}",
            found.declared
        ));
    }
    if let Some(both) = found
        .added_by_store
        .iter()
        .find(|name| declared.contains(name))
    {
        return Err(format!("`{both}` is both declared and added by the store"));
    }
    Ok(())
}

fn prepare_django_venv() -> Result<PathBuf, String> {
    let venv = match std::env::var_os(DJANGO_VENV_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => target_dir()?.join("django-venv"),
    };
    let python = venv.join("bin").join("python");
    if django_is_importable(&python) {
        return Ok(python);
    }
    let parent = venv.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let lock_path = venv.with_extension("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open lock file {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    // Another process may have built it while we waited for the lock.
    if django_is_importable(&python) {
        return Ok(python);
    }
    eprintln!(
        "creating the Django virtualenv in {} (once per target dir)",
        venv.display()
    );
    run_step(
        Command::new(std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into()))
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
        "python3 -m venv",
    )?;
    run_step(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            DJANGO_REQUIREMENT,
        ]),
        "pip install django",
    )?;
    if !django_is_importable(&python) {
        return Err(format!(
            "{} was created but does not import {DJANGO_REQUIREMENT}",
            venv.display()
        ));
    }
    // Closing the file would release the lock too; unlocking says so explicitly.
    let _ = lock.unlock();
    Ok(python)
}

fn django_is_importable(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .args([
                "-c",
                "import django, sys; sys.exit(0 if (5, 2) <= django.VERSION[:2] < (6, 0) else 1)",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn run_step(cmd: &mut Command, what: &str) -> Result<(), String> {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let mut msg = format!("{what} failed ({})", output.status);
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        if !text.trim().is_empty() {
            msg.push('\n');
            msg.push_str(text.trim_end());
        }
    }
    Err(msg)
}

/// The cargo target directory of the running test (`<target>/<profile>/deps/<exe>`).
fn target_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let deps = plugin_dir();
    deps.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("cannot find the target dir above {}", deps.display()))
}

/// Runs `child` (a test binary re-run as a writer that prints `ack N` after each write it made
/// durable), kills it with SIGKILL after `after`, and returns the last `N` it acknowledged (0 if
/// none): the crash tests then check that every acknowledged write survived.
///
/// # Panics
///
/// When the child cannot be started or reaped (a test failure).
pub fn kill_after(mut child: std::process::Command, after: std::time::Duration) -> u64 {
    use std::io::BufRead as _;
    use std::sync::atomic::{AtomicU64, Ordering};

    let mut child = child
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the writer process starts");
    let acked = std::sync::Arc::new(AtomicU64::new(0));
    let reader = {
        let stdout = child.stdout.take().expect("stdout is piped");
        let acked = acked.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may print "test child_process_work ... " before the first ack on the
                // same line.
                let ack = line.rfind("ack ").map(|at| &line[at + 4..]);
                if let Some(n) = ack.and_then(|n| n.trim().parse().ok()) {
                    acked.store(n, Ordering::SeqCst);
                }
            }
        })
    };
    std::thread::sleep(after);
    child.kill().expect("SIGKILL the writer");
    child.wait().expect("reap the writer");
    reader.join().expect("the ack reader");
    acked.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_library_names_follow_cargo() {
        let p = engine_library("db");
        assert_eq!(p.file_name().unwrap(), "libsessionkit_engine_db.so");
        assert_eq!(p.parent().unwrap(), plugin_dir());
        assert!(engine_library("my-engine").ends_with("libsessionkit_engine_my_engine.so"));
    }

    #[test]
    fn plugin_dir_is_the_deps_dir_of_this_build() {
        assert_eq!(plugin_dir().file_name().unwrap(), "deps");
        assert!(std::env::current_exe().unwrap().starts_with(plugin_dir()));
    }

    #[test]
    fn database_urls_get_the_new_name_and_keep_the_rest() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "sk_x"),
            "postgres://postgres@127.0.0.1:5432/sk_x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "sk_x"),
            "postgresql://u:p@h/sk_x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "sk_x"),
            "postgres://h:5432/sk_x"
        );
        assert_eq!(database_name("postgres://h/sk_abc?x=1"), Some("sk_abc"));
        assert_eq!(database_name("postgres://h"), None);
    }

    #[test]
    fn unique_prefixes_differ() {
        let a = unique_prefix();
        assert!(
            a.starts_with("sktest:") && a.ends_with(':') && a.len() == 20,
            "{a}"
        );
        assert_ne!(a, unique_prefix());
    }

    #[test]
    fn only_upper_case_identifiers_become_settings() {
        assert!(is_setting_name("SECRET_KEY"));
        assert!(is_setting_name("SESSION_COOKIE_AGE"));
        assert!(!is_setting_name("PATH_lower"));
        assert!(!is_setting_name("_X"));
        assert!(!is_setting_name(""));
    }

    #[test]
    fn run_django_configures_settings_from_env_and_prints_json() {
        let out = run_django(
            "from django.conf import settings\n\
             emit({'key': settings.SECRET_KEY, 'fb': settings.SECRET_KEY_FALLBACKS,\n\
                   'age': settings.SESSION_COOKIE_AGE, 'tz': settings.USE_TZ,\n\
                   'mine': __import__('os').environ['my_var']})",
            &[
                ("SECRET_KEY", "123"),
                ("SECRET_KEY_FALLBACKS", r#"["old"]"#),
                ("SESSION_COOKIE_AGE", "60"),
                ("my_var", "x"),
            ],
        );
        assert_eq!(
            out.trim(),
            r#"{"key": "123", "fb": ["old"], "age": 60, "tz": true, "mine": "x"}"#
        );
    }

    #[test]
    fn run_django_feeds_input_on_stdin() {
        let out = run_django_with_input("import sys\nemit(sys.stdin.read()[::-1])", &[], "abc");
        assert_eq!(out.trim(), r#""cba""#);
    }

    #[test]
    #[should_panic(expected = "Django script failed")]
    fn a_failing_script_panics_with_its_stderr() {
        run_django("raise SystemExit('boom')", &[]);
    }

    #[test]
    fn mysql_databases_are_fresh_usable_and_dropped() {
        let Some(base) = mysql_url() else { return };
        let url = fresh_mysql_database(&base);
        let name = database_name(&url).unwrap().to_owned();
        assert!(
            name.starts_with("sessionkit_") && name.len() == 27,
            "{name}"
        );
        mysql_exec(&url, "CREATE TABLE t (x integer); INSERT INTO t VALUES (1)").unwrap();
        // Only the testkit's own databases are dropped, never the base URL's.
        drop_mysql_database(&base, &base);
        mysql_exec(&base, "SELECT 1").unwrap();
        drop_mysql_database(&base, &url);
        let err = mysql_exec(&url, "SELECT 1").unwrap_err();
        assert!(err.contains("Unknown database"), "{err}");
    }

    #[test]
    fn postgres_databases_are_fresh_and_usable() {
        let Some(base) = postgres_url() else { return };
        let url = fresh_postgres_database(&base);
        let name = database_name(&url).unwrap().to_owned();
        assert!(name.starts_with("sk_") && name.len() == 19, "{name}");
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let row = client.query_one("SELECT current_database()", &[]).unwrap();
        assert_eq!(row.get::<_, String>(0), name);
        let tables = client
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )
            .unwrap();
        assert_eq!(tables.get::<_, i64>(0), 0);
        drop(client);
        drop_postgres_database(&base, &url);
        let mut admin = postgres::Client::connect(&base, postgres::NoTls).unwrap();
        let left = admin
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&name],
            )
            .unwrap();
        assert_eq!(left.get::<_, i64>(0), 0);
    }
}

/// A frozen-contract fixture workspace built for a test binary: its `target/debug` directory,
/// and the lock that keeps other test binaries from building it at the same time (hold it as
/// long as the built files are used).
#[derive(Debug)]
pub struct FixtureBuild {
    /// `<work>/<name>-target/debug`: the fixture's libraries and binaries.
    pub debug_dir: PathBuf,
    /// The held lock on `<work>/<name>.lock`.
    pub lock: fs::File,
}

/// Builds the fixture workspace `fixtures/<name>` below `crate_dir` (`cargo build --locked`,
/// its own target directory `<work>/<name>-target`, no `RUSTFLAGS`) under the lock file
/// `<work>/<name>.lock`, and says how long the build took.
///
/// # Panics
///
/// If the work directory, the lock or the build fails (with cargo's output).
pub fn build_fixture_workspace(crate_dir: &Path, work: &Path, name: &str) -> FixtureBuild {
    fs::create_dir_all(work).expect("the test work directory");
    let lock = fs::File::create(work.join(format!("{name}.lock")))
        .unwrap_or_else(|error| panic!("the {name} test lock file: {error}"));
    lock.lock()
        .unwrap_or_else(|error| panic!("the {name} fixture lock: {error}"));
    let target_dir = work.join(format!("{name}-target"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let started = std::time::Instant::now();
    let build = Command::new(cargo)
        .args(["build", "--locked"])
        .current_dir(crate_dir.join("fixtures").join(name))
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo runs");
    println!(
        "cargo build of the {name} fixture took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        build.status.success(),
        "building tests/fixtures/{name} failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    FixtureBuild {
        debug_dir: target_dir.join("debug"),
        lock,
    }
}
