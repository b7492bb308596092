//! The `account_db` engine's settings: which database and which table.

use serde_json::{Map, Value};
use std::sync::Arc;

use sessionkit_codec::{Clock, SystemClock};
use sessionkit_sdk::StoreError;
use sessionkit_sql::{SqlSettings, SqlStoreOptions};

/// The table used when `SESSION_DB_TABLE` is not set.
///
/// Not `django_session`: Django's stock table has no `account_id` column (the store would refuse
/// it with a `Config` error). A Django project with the documented `CustomSession` model points
/// `SESSION_DB_TABLE` at that model's table instead (`<app>_customsession`, or its `db_table`).
pub const DEFAULT_TABLE: &str = "account_sessions";

/// The setting naming the table.
const TABLE_SETTING: &str = "SESSION_DB_TABLE";

/// The `account_db` engine's typed settings, parsed from the settings JSON the host passes to
/// `open`.
///
/// `SESSION_DB_URL`, else `DATABASE_URL`, else `sqlite://sessionkit.sqlite3`; `SESSION_DB_TABLE`
/// (default [`DEFAULT_TABLE`]). `Debug` shows no password.
#[derive(Debug, Clone)]
pub struct AccountDbConfig {
    /// The database URL, where it came from, and the table.
    pub sql: SqlSettings,
    /// What the store judges expiry by: the host's clock when the host lends it (contract
    /// 0.2), else the system's.
    pub clock: Arc<dyn Clock>,
}

impl AccountDbConfig {
    /// Reads the engine's settings; other keys are ignored. A null or blank `SESSION_DB_TABLE`
    /// counts as unset.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionkit_sdk::ErrorKind::Config) with a message naming the
    /// setting that is wrong (a URL that does not parse, a table name that is not a plain
    /// identifier, a value that is not a string), or when the settings are not a JSON object.
    pub fn from_settings_json(settings_json: &str) -> Result<Self, StoreError> {
        let value: Value = serde_json::from_str(settings_json)
            .map_err(|e| StoreError::config(format!("engine settings are not valid JSON: {e}")))?;
        let Value::Object(mut settings) = value else {
            return Err(StoreError::config("engine settings must be a JSON object"));
        };
        default_table(&mut settings);
        Ok(Self {
            sql: SqlSettings::from_settings(&settings)?,
            clock: Arc::new(SystemClock),
        })
    }

    /// The same settings, judging expiry by `clock` (the host's, lent at open).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The store layout: the configured table with Django's `account_id` example column,
    /// indexed and recomputed from `_auth_user_id` on every write.
    pub fn store_options(&self) -> SqlStoreOptions {
        SqlStoreOptions::new(self.sql.table.clone())
            .with_clock(Arc::clone(&self.clock))
            .with_account_column()
    }
}

/// Fills in [`DEFAULT_TABLE`] where `SESSION_DB_TABLE` is absent, null or blank (the SQL
/// library's own default is the stock `django_session`).
fn default_table(settings: &mut Map<String, Value>) {
    let unset = match settings.get(TABLE_SETTING) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(_) => false,
    };
    if unset {
        settings.insert(TABLE_SETTING.to_owned(), Value::from(DEFAULT_TABLE));
    }
}

#[cfg(test)]
mod tests {
    use sessionkit_sdk::ErrorKind;
    use sessionkit_sql::{DatabaseUrl, SqliteLocation};

    use super::*;

    #[test]
    fn defaults_are_a_sqlite_file_and_the_account_sessions_table() {
        let config = AccountDbConfig::from_settings_json(r#"{"SECRET_KEY":"x"}"#).unwrap();
        let DatabaseUrl::Sqlite(url) = &config.sql.url else {
            panic!("not sqlite")
        };
        assert_eq!(
            url.location,
            SqliteLocation::File("sessionkit.sqlite3".into())
        );
        assert_eq!(
            config.store_options(),
            SqlStoreOptions::new("account_sessions").with_account_column()
        );
    }

    #[test]
    fn null_or_blank_table_means_the_default() {
        for json in [
            r#"{"SESSION_DB_TABLE":null}"#,
            r#"{"SESSION_DB_TABLE":"  "}"#,
        ] {
            let config = AccountDbConfig::from_settings_json(json).unwrap();
            assert_eq!(config.sql.table, DEFAULT_TABLE, "{json}");
        }
    }

    #[test]
    fn session_db_table_names_a_django_custom_session_table() {
        let config =
            AccountDbConfig::from_settings_json(r#"{"SESSION_DB_TABLE":"acct_customsession"}"#)
                .unwrap();
        let options = config.store_options();
        assert_eq!(options.table, "acct_customsession");
        assert!(options.account_column);
    }

    #[test]
    fn debug_redacts_the_password() {
        let config = AccountDbConfig::from_settings_json(
            r#"{"SESSION_DB_URL":"postgres://app:hunter2@db.internal/sessions"}"#,
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("app:***@db.internal"), "{shown}");
    }

    #[test]
    fn bad_settings_are_config_errors_naming_the_setting() {
        for (json, setting) in [
            (r#"{"SESSION_DB_URL":"redis://x"}"#, "SESSION_DB_URL"),
            (r#"{"DATABASE_URL":"sqlite:"}"#, "DATABASE_URL"),
            (r#"{"SESSION_DB_TABLE":"drop table"}"#, "SESSION_DB_TABLE"),
            (r#"{"SESSION_DB_TABLE":7}"#, "SESSION_DB_TABLE"),
        ] {
            let err = AccountDbConfig::from_settings_json(json).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Config);
            assert!(err.message.as_str().contains(setting), "{err}");
        }
    }

    #[test]
    fn settings_that_are_not_an_object_are_a_config_error() {
        for json in ["[]", "{", "\"x\""] {
            let err = AccountDbConfig::from_settings_json(json).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Config, "{json}");
        }
    }
}
