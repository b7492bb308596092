#![doc = include_str!("../README.md")]

mod account;
mod clear;
pub mod config;
mod mysql;
mod pg;
mod pool;
mod schema;
mod sqlite;
mod store;
#[cfg(feature = "test-support")]
pub mod testing;
mod time;
pub mod url;

pub use account::{AUTH_USER_ID_KEY, account_id_of};
pub use clear::ClearBatches;
pub use config::{
    DEFAULT_DATABASE_URL, DEFAULT_TABLE, SqlSettings, SqlStoreOptions, validate_table_name,
};
pub use sqlite::BUSY_TIMEOUT as SQLITE_BUSY_TIMEOUT;
pub use store::SqlStore;
pub use url::{
    DatabaseUrl, MysqlUrl, PostgresUrl, SqliteLocation, SqliteUrl, Synchronous, UrlError,
};
