//! `sessionkit session list --account` and `session delete --account [--except]` against the
//! `account_db` engine, through the built binary: sessions created from the shell for two
//! accounts, listed by account, one account logged out of its other devices, then out of
//! everywhere. On a SQLite file in a temporary directory, and on a fresh PostgreSQL database
//! when `SESSIONKIT_TEST_POSTGRES_URL` is set.

use std::{
    collections::BTreeSet,
    path::Path,
    process::{Command, Output},
};

use serde_json::{Value, json};
use sessionkit_testkit::{
    drop_postgres_database, fresh_postgres_database, plugin_dir, postgres_url,
};

const SECRET: &str = "account-sessions-cli-test-secret";

/// The `sessionkit` binary configured for `account_db` on one database.
struct Cli<'a> {
    /// The working directory (holds no `sessionkit.toml`, so only the environment counts).
    dir: &'a Path,
    db_url: String,
}

impl Cli<'_> {
    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sessionkit"));
        // Settings from the test's own environment must not leak into the binary's.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("SESSION") || name == "DATABASE_URL" || name == "SECRET_KEY" {
                command.env_remove(&*name);
            }
        }
        command
            .args(args)
            .current_dir(self.dir)
            .env("SESSIONKIT_ENGINE_PATH", plugin_dir())
            .env("SESSIONKIT_LOG", "warn")
            .env("SECRET_KEY", SECRET)
            .env("SESSION_ENGINE", "account_db")
            .env("SESSION_DB_URL", &self.db_url)
            .output()
            .expect("the sessionkit binary runs")
    }

    /// Runs `args`, requires success, and returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "sessionkit {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// `session create --data DATA`, returning the new key.
    fn create(&self, data: &Value) -> String {
        let key = self
            .ok(&["session", "create", "--data", &data.to_string()])
            .trim()
            .to_owned();
        assert_eq!(key.len(), 32, "a Django session key: {key:?}");
        key
    }

    /// `session list --account ID`: each line's JSON object, by session key.
    fn list(&self, account: i64) -> Vec<Value> {
        self.ok(&["session", "list", "--account", &account.to_string()])
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect()
    }

    fn listed_keys(&self, account: i64) -> BTreeSet<String> {
        self.list(account)
            .iter()
            .map(|s| s["session_key"].as_str().expect("a key").to_owned())
            .collect()
    }

    /// Whether `session show KEY` finds a live session (exit 0) or none (exit 1).
    fn shows(&self, key: &str) -> bool {
        let out = self.run(&["session", "show", key]);
        match out.status.code() {
            Some(0) => true,
            Some(1) => false,
            _ => panic!(
                "session show failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
}

fn set<const N: usize>(keys: [&String; N]) -> BTreeSet<String> {
    keys.into_iter().cloned().collect()
}

/// The whole story on one database.
fn log_out_everywhere_from_the_shell(cli: &Cli<'_>) {
    let engines = cli.ok(&["engines"]);
    let line = engines
        .lines()
        .find(|l| l.starts_with("account_db\t"))
        .unwrap_or_else(|| panic!("account_db is not among the engines:\n{engines}"));
    assert!(line.contains("account_index"), "{line}");

    let phone = cli.create(&json!({"_auth_user_id": "1", "cart": [1, 2]}));
    let laptop = cli.create(&json!({"_auth_user_id": "1"}));
    let tablet = cli.create(&json!({"_auth_user_id": "1", "theme": "dark"}));
    let other = cli.create(&json!({"_auth_user_id": "2"}));
    let anonymous = cli.create(&json!({"theme": "light"}));

    let sessions = cli.list(1);
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    let phone_listed = sessions
        .iter()
        .find(|s| s["session_key"] == json!(phone))
        .expect("the phone's session is listed");
    assert_eq!(
        phone_listed["data"],
        json!({"_auth_user_id": "1", "cart": [1, 2]}),
        "list shows the decoded data"
    );
    assert!(phone_listed["expire_date"].as_str().is_some());
    assert_eq!(cli.listed_keys(1), set([&phone, &laptop, &tablet]));
    assert_eq!(cli.listed_keys(2), set([&other]));
    assert!(cli.listed_keys(3).is_empty(), "an account without sessions");

    // "Log out my other devices" from the phone.
    let deleted = cli.ok(&["session", "delete", "--account", "1", "--except", &phone]);
    assert_eq!(deleted.trim(), "2");
    assert_eq!(cli.listed_keys(1), set([&phone]));
    assert!(cli.shows(&phone));
    assert!(!cli.shows(&laptop), "a logged-out device's session is gone");
    assert!(!cli.shows(&tablet), "a logged-out device's session is gone");
    assert_eq!(
        cli.listed_keys(2),
        set([&other]),
        "other accounts untouched"
    );
    assert!(cli.shows(&anonymous), "anonymous sessions untouched");

    // "Log out everywhere" for account 2, then for account 1.
    assert_eq!(cli.ok(&["session", "delete", "--account", "2"]).trim(), "1");
    assert!(cli.listed_keys(2).is_empty());
    assert!(!cli.shows(&other));
    assert_eq!(cli.ok(&["session", "delete", "--account", "1"]).trim(), "1");
    assert!(cli.listed_keys(1).is_empty());
    assert!(cli.shows(&anonymous));
    assert_eq!(
        cli.ok(&["session", "delete", "--account", "1"]).trim(),
        "0",
        "nothing left to delete"
    );
}

#[test]
fn sessions_are_listed_and_deleted_by_account_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.sqlite3");
    let cli = Cli {
        dir: dir.path(),
        db_url: format!("sqlite://{}", db.display()),
    };
    log_out_everywhere_from_the_shell(&cli);
    assert!(db.exists(), "SESSION_DB_URL names the file used");
}

#[test]
fn sessions_are_listed_and_deleted_by_account_on_postgres() {
    let Some(base) = postgres_url() else { return };
    let database = fresh_postgres_database(&base);
    /// Drops the database even when an assertion fails.
    struct DropDatabase<'a>(&'a str, &'a str);
    impl Drop for DropDatabase<'_> {
        fn drop(&mut self) {
            drop_postgres_database(self.0, self.1);
        }
    }
    let _cleanup = DropDatabase(&base, &database);
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli {
        dir: dir.path(),
        db_url: database.clone(),
    };
    log_out_everywhere_from_the_shell(&cli);
}
