//! The `db` engine's settings: which database and which table.

use std::sync::Arc;

use sessionkit_codec::{Clock, SystemClock};
use sessionkit_sdk::StoreError;
use sessionkit_sql::{SqlSettings, SqlStoreOptions};

/// The `db` engine's typed settings, parsed from the settings JSON the host passes to `open`.
///
/// `SESSION_DB_URL`, else `DATABASE_URL`, else `sqlite://sessionkit.sqlite3`; `SESSION_DB_TABLE`
/// (default `django_session`). `Debug` shows no password.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// The database URL, where it came from, and the table.
    pub sql: SqlSettings,
    /// What the store judges expiry by: the host's clock when the host lends it (contract
    /// 0.2), else the system's.
    pub clock: Arc<dyn Clock>,
}

impl DbConfig {
    /// Reads the engine's settings; other keys are ignored.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](sessionkit_sdk::ErrorKind::Config) with a message naming the
    /// setting that is wrong (a URL that does not parse, a table name that is not a plain
    /// identifier, a value that is not a string).
    pub fn from_settings_json(settings_json: &str) -> Result<Self, StoreError> {
        Ok(Self {
            sql: SqlSettings::from_settings_json(settings_json)?,
            clock: Arc::new(SystemClock),
        })
    }

    /// The same settings, judging expiry by `clock` (the host's, lent at open).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The store layout: the configured table, without the `account_id` column (that is the
    /// `account_db` engine).
    pub fn store_options(&self) -> SqlStoreOptions {
        SqlStoreOptions::new(self.sql.table.clone()).with_clock(Arc::clone(&self.clock))
    }
}

#[cfg(test)]
mod tests {
    use sessionkit_sdk::ErrorKind;
    use sessionkit_sql::{DatabaseUrl, SqliteLocation};

    use super::*;

    #[test]
    fn defaults_are_a_sqlite_file_and_djangos_table() {
        let config = DbConfig::from_settings_json(r#"{"SECRET_KEY":"x"}"#).unwrap();
        let DatabaseUrl::Sqlite(url) = &config.sql.url else {
            panic!("not sqlite")
        };
        assert_eq!(
            url.location,
            SqliteLocation::File("sessionkit.sqlite3".into())
        );
        assert_eq!(
            config.store_options(),
            SqlStoreOptions::new("django_session")
        );
        assert!(!config.store_options().account_column);
    }

    #[test]
    fn debug_redacts_the_password() {
        let config = DbConfig::from_settings_json(
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
        ] {
            let err = DbConfig::from_settings_json(json).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Config);
            assert!(err.message.as_str().contains(setting), "{err}");
        }
    }
}
