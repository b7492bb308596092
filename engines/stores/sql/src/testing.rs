//! Test helpers shared by the crates built on this one (feature `test-support`).

use std::{
    hash::{BuildHasher, Hasher, RandomState},
    time::{SystemTime, UNIX_EPOCH},
};

use postgres::{Client, NoTls};

/// The variable naming a PostgreSQL server tests may use (`postgres://…/test`).
pub const POSTGRES_URL_VAR: &str = "SESSIONKIT_TEST_POSTGRES_URL";

/// `$SESSIONKIT_TEST_POSTGRES_URL`, or `None` after printing that PostgreSQL tests are skipped.
pub fn postgres_url() -> Option<String> {
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            println!("skipped: {POSTGRES_URL_VAR} not set");
            None
        }
    }
}

/// A random lowercase suffix for database, table and key names (not for secrets).
pub fn random_suffix() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}

/// A fresh PostgreSQL database `sk_test_<random>` on the server of a base URL, dropped (with
/// `FORCE`, closing leftover connections) when this value is dropped.
pub struct TempPostgresDatabase {
    base_url: String,
    name: String,
    url: String,
}

impl TempPostgresDatabase {
    /// Creates the database through `base_url` (any database the user may connect to).
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or refuses `CREATE DATABASE`: the test cannot run.
    pub fn create(base_url: &str) -> Self {
        let name = format!("sk_test_{}", random_suffix());
        let mut admin = Client::connect(base_url, NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {POSTGRES_URL_VAR}: {e}"));
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let url = with_database(base_url, &name);
        Self {
            base_url: base_url.to_owned(),
            name,
            url,
        }
    }

    /// The URL of the fresh database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TempPostgresDatabase {
    fn drop(&mut self) {
        let dropped = Client::connect(&self.base_url, NoTls).and_then(|mut admin| {
            admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
        });
        if let Err(e) = dropped {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

/// `base_url` with its database path replaced by `database`.
fn with_database(base_url: &str, database: &str) -> String {
    let (head, query) = match base_url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (base_url, None),
    };
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let path_start = head[authority_start..]
        .find('/')
        .map_or(head.len(), |i| authority_start + i);
    let mut url = format!("{}/{database}", &head[..path_start]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_swapped_in_the_url() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            with_database("postgres://u@h/t?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
