//! What a SQL store is opened with: the URL and table from the engine settings, and the
//! options an engine chooses (the `account_id` column).

use std::sync::Arc;

use serde_json::{Map, Value};
use sessionkit_codec::{Clock, SystemClock};
use sessionkit_sdk::StoreError;

use crate::{clear::ClearBatches, url::DatabaseUrl};

/// The database used when neither `SESSION_DB_URL` nor `DATABASE_URL` is set: a file in the
/// working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://sessionkit.sqlite3";

/// Django's table name for `django.contrib.sessions.models.Session`.
pub const DEFAULT_TABLE: &str = "django_session";

/// The longest table name accepted: PostgreSQL's identifier limit (NAMEDATALEN − 1).
pub const MAX_TABLE_NAME_LEN: usize = 63;

/// How a [`SqlStore`](crate::SqlStore) is opened: which table, whether it keeps Django's
/// `account_id` example column (the `account_db` engine), and the clock it judges expiry by.
#[derive(Debug, Clone)]
pub struct SqlStoreOptions {
    /// The table name (validated as an SQL identifier when the store opens).
    pub table: String,
    /// Keep an `account_id integer NULL` column, indexed and filled from `_auth_user_id` on
    /// every write, and answer `sessions_of_account` / `delete_sessions_of_account`.
    pub account_column: bool,
    /// Where the store reads "now" to judge `expire_date` (the system clock unless a test or the
    /// host hands it another); the store never reads the system clock itself.
    pub clock: Arc<dyn Clock>,
    /// How `clear_expired` sizes its batches (adaptive unless a test or an operator fixes it).
    pub clear_batches: ClearBatches,
}

impl SqlStoreOptions {
    /// Options for `table` without the account column (the `db` engine's layout).
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            account_column: false,
            clock: Arc::new(SystemClock),
            clear_batches: ClearBatches::ADAPTIVE,
        }
    }

    /// The same options with `clear_expired` sizing its batches by `batches`.
    pub fn with_clear_batches(mut self, batches: ClearBatches) -> Self {
        self.clear_batches = batches;
        self
    }

    /// The same options judging expiry by `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The same options with the `account_id` column switched on.
    pub fn with_account_column(mut self) -> Self {
        self.account_column = true;
        self
    }
}

/// Equal when the layout is: the clock is a source of time, not part of what is stored.
impl PartialEq for SqlStoreOptions {
    fn eq(&self, other: &Self) -> bool {
        self.table == other.table && self.account_column == other.account_column
    }
}

impl Eq for SqlStoreOptions {}

impl Default for SqlStoreOptions {
    fn default() -> Self {
        Self::new(DEFAULT_TABLE)
    }
}

/// The SQL settings an engine reads from the settings JSON, parsed and checked.
#[derive(Debug, Clone)]
pub struct SqlSettings {
    /// The database (its `Debug` redacts passwords).
    pub url: DatabaseUrl,
    /// Which setting the URL came from (`SESSION_DB_URL`, `DATABASE_URL`, or `default`), for
    /// messages.
    pub url_source: &'static str,
    /// `SESSION_DB_TABLE`, or [`DEFAULT_TABLE`].
    pub table: String,
}

impl SqlSettings {
    /// Reads `SESSION_DB_URL`, else `DATABASE_URL`, else [`DEFAULT_DATABASE_URL`], and
    /// `SESSION_DB_TABLE` (default [`DEFAULT_TABLE`]) from the engine settings JSON.
    ///
    /// A null or empty URL setting counts as unset.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionkit_sdk::ErrorKind::Config) with a message naming the
    /// setting: the JSON is not an object, a setting is not a string, the URL does not parse,
    /// or the table name is not a plain SQL identifier.
    pub fn from_settings_json(settings_json: &str) -> Result<Self, StoreError> {
        let value: Value = serde_json::from_str(settings_json)
            .map_err(|e| StoreError::config(format!("engine settings are not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(StoreError::config("engine settings must be a JSON object"));
        };
        Self::from_settings(&map)
    }

    /// Like [`from_settings_json`](Self::from_settings_json), for an already parsed object.
    ///
    /// # Errors
    ///
    /// As [`from_settings_json`](Self::from_settings_json).
    pub fn from_settings(settings: &Map<String, Value>) -> Result<Self, StoreError> {
        let (url_source, raw) = match string_setting(settings, "SESSION_DB_URL")? {
            Some(url) => ("SESSION_DB_URL", url),
            None => match string_setting(settings, "DATABASE_URL")? {
                Some(url) => ("DATABASE_URL", url),
                None => ("default", DEFAULT_DATABASE_URL),
            },
        };
        let url = DatabaseUrl::parse(raw)
            .map_err(|e| StoreError::config(format!("{url_source}: {e}")))?;
        let table = string_setting(settings, "SESSION_DB_TABLE")?.unwrap_or(DEFAULT_TABLE);
        validate_table_name(table)
            .map_err(|reason| StoreError::config(format!("SESSION_DB_TABLE: {reason}")))?;
        Ok(Self {
            url,
            url_source,
            table: table.to_owned(),
        })
    }
}

/// A string setting: `None` when absent, null or blank; a Config error naming it otherwise.
fn string_setting<'a>(
    settings: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, StoreError> {
    match settings.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(StoreError::config(format!(
            "{name} must be a string, got {}",
            json_type(other)
        ))),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks that `name` is a plain SQL identifier: an ASCII letter or `_`, then letters, digits
/// or `_`, at most [`MAX_TABLE_NAME_LEN`] characters. Table names are interpolated into SQL
/// (quoted), so nothing else is accepted.
///
/// # Errors
///
/// A sentence saying what is wrong with the name.
pub fn validate_table_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err("the table name is empty".to_owned());
    };
    if name.len() > MAX_TABLE_NAME_LEN {
        return Err(format!(
            "table name {name:?} is longer than {MAX_TABLE_NAME_LEN} characters"
        ));
    }
    if !(first.is_ascii_alphabetic() || first == '_')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(format!(
            "table name {name:?} is not a plain SQL identifier (ASCII letters, digits and _, not \
             starting with a digit)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sessionkit_sdk::ErrorKind;

    use super::*;
    use crate::url::{SqliteLocation, SqliteUrl, Synchronous};

    fn settings(json: &str) -> Result<SqlSettings, StoreError> {
        SqlSettings::from_settings_json(json)
    }

    #[test]
    fn session_db_url_wins_over_database_url() {
        let s = settings(r#"{"SESSION_DB_URL":"sqlite:///a.db","DATABASE_URL":"sqlite:///b.db"}"#)
            .unwrap();
        assert_eq!(s.url_source, "SESSION_DB_URL");
        assert!(
            matches!(s.url, DatabaseUrl::Sqlite(SqliteUrl { location: SqliteLocation::File(ref p), .. }) if p.as_os_str() == "/a.db")
        );
    }

    #[test]
    fn database_url_is_the_fallback() {
        let s = settings(r#"{"SESSION_DB_URL":null,"DATABASE_URL":"sqlite:///b.db"}"#).unwrap();
        assert_eq!(s.url_source, "DATABASE_URL");
    }

    #[test]
    fn sqlite_file_in_working_directory_is_the_default() {
        let s = settings(r#"{"SESSION_DB_URL":"","SECRET_KEY":"x"}"#).unwrap();
        assert_eq!(s.url_source, "default");
        let DatabaseUrl::Sqlite(url) = s.url else {
            panic!("not sqlite")
        };
        assert_eq!(
            url.location,
            SqliteLocation::File("sessionkit.sqlite3".into())
        );
        assert_eq!(url.synchronous, Synchronous::Full);
        assert_eq!(s.table, "django_session");
    }

    #[test]
    fn bad_url_error_names_the_setting() {
        let err = settings(r#"{"SESSION_DB_URL":"oracle://x/y"}"#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config);
        assert!(err.message.as_str().starts_with("SESSION_DB_URL:"), "{err}");
        let err = settings(r#"{"DATABASE_URL":"nonsense"}"#).unwrap_err();
        assert!(err.message.as_str().starts_with("DATABASE_URL:"), "{err}");
        let err = settings(r#"{"SESSION_DB_URL":5}"#).unwrap_err();
        assert!(
            err.message
                .as_str()
                .contains("SESSION_DB_URL must be a string"),
            "{err}"
        );
    }

    #[test]
    fn mysql_and_mariadb_urls_are_database_settings() {
        for url in [
            "mysql://root@127.0.0.1:3306/app",
            "mariadb://root@127.0.0.1/app",
        ] {
            let s = settings(&format!(r#"{{"SESSION_DB_URL":"{url}"}}"#)).unwrap();
            assert!(matches!(s.url, DatabaseUrl::Mysql(_)), "{url}");
        }
        let err = settings(r#"{"DATABASE_URL":"mysql://root@h/app?pool_size=0"}"#).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config);
        assert!(err.message.as_str().starts_with("DATABASE_URL:"), "{err}");
    }

    #[test]
    fn table_setting_is_validated_as_an_identifier() {
        let s = settings(r#"{"SESSION_DB_TABLE":"acct_customsession"}"#).unwrap();
        assert_eq!(s.table, "acct_customsession");
        for bad in [
            r#""x; DROP TABLE y""#,
            r#""1abc""#,
            r#""a.b""#,
            r#""sess\"ion""#,
            "7",
        ] {
            let err = settings(&format!(r#"{{"SESSION_DB_TABLE":{bad}}}"#)).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Config, "{bad}");
            assert!(err.message.as_str().contains("SESSION_DB_TABLE"), "{err}");
        }
        assert!(validate_table_name(&"t".repeat(63)).is_ok());
        assert!(validate_table_name(&"t".repeat(64)).is_err());
        assert!(validate_table_name("").is_err());
        assert!(validate_table_name("_sessions2").is_ok());
    }

    #[test]
    fn settings_that_are_not_an_object_are_a_config_error() {
        assert_eq!(settings("[]").unwrap_err().kind, ErrorKind::Config);
        assert_eq!(settings("{").unwrap_err().kind, ErrorKind::Config);
    }
}
