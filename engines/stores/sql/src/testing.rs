//! Test helpers shared by the crates built on this one (feature `test-support`).

use std::{
    hash::{BuildHasher, Hasher, RandomState},
    time::{SystemTime, UNIX_EPOCH},
};

use postgres::{Client, NoTls};

/// What an SQLite store's group commit has done, from
/// [`SqlStore::group_commit_counts`](crate::SqlStore::group_commit_counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitCounts {
    /// Batches committed so far (a lone write is a batch of one): `writes / batches` writes
    /// shared each commit.
    pub batches: u64,
    /// Writes queued behind the commit running now, waiting for the next batch.
    pub queued: usize,
}

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

/// The variable naming a MySQL/MariaDB server tests may use (`mysql://root@127.0.0.1:3306/test`).
pub const MYSQL_URL_VAR: &str = "SESSIONKIT_TEST_MYSQL_URL";

/// `$SESSIONKIT_TEST_MYSQL_URL`, or `None` after printing that MySQL tests are skipped.
pub fn mysql_url() -> Option<String> {
    match std::env::var(MYSQL_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            println!("skipped: {MYSQL_URL_VAR} not set");
            None
        }
    }
}

/// A blocking MySQL connection for tests (setting up tables, reading rows back), with
/// `ANSI_QUOTES` on like the store's, so `"identifiers"` work.
pub struct MysqlClient {
    conn: Option<mysql_async::Conn>,
    runtime: tokio::runtime::Runtime,
}

impl MysqlClient {
    /// Connects to `url` (`mysql://` or `mariadb://`).
    ///
    /// # Panics
    ///
    /// When the server cannot be reached: the test cannot run.
    pub fn connect(url: &str) -> Self {
        use mysql_async::prelude::Queryable;
        let url = match url.split_once("://") {
            Some((_, rest)) => format!("mysql://{rest}"),
            None => url.to_owned(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let opts = mysql_async::Opts::from_url(&url)
            .unwrap_or_else(|e| panic!("bad {MYSQL_URL_VAR}: {e}"));
        let opts = mysql_async::OptsBuilder::from_opts(opts).prefer_socket(false);
        let conn = runtime.block_on(async {
            let mut conn = mysql_async::Conn::new(opts)
                .await
                .unwrap_or_else(|e| panic!("cannot connect to {MYSQL_URL_VAR}: {e}"));
            conn.query_drop(
                "SET SESSION sql_mode = TRIM(BOTH ',' FROM CONCAT(@@SESSION.sql_mode, ',ANSI_QUOTES'))",
            )
            .await
            .expect("sql_mode");
            conn
        });
        Self {
            conn: Some(conn),
            runtime,
        }
    }

    /// Runs SQL (several statements allowed).
    ///
    /// # Errors
    ///
    /// The server's error, as text.
    pub fn try_exec(&mut self, sql: &str) -> Result<(), String> {
        use mysql_async::prelude::Queryable;
        let conn = self.conn.as_mut().expect("connected");
        self.runtime
            .block_on(conn.query_drop(sql))
            .map_err(|e| e.to_string())
    }

    /// Runs SQL (several statements allowed).
    ///
    /// # Panics
    ///
    /// When the server refuses it.
    pub fn exec(&mut self, sql: &str) {
        if let Err(e) = self.try_exec(sql) {
            panic!("{sql}: {e}");
        }
    }

    /// The first column of every row of a query, as text (NULL → `None`).
    ///
    /// # Panics
    ///
    /// When the server refuses the query.
    pub fn strings(&mut self, sql: &str) -> Vec<Option<String>> {
        use mysql_async::prelude::Queryable;
        let conn = self.conn.as_mut().expect("connected");
        let rows: Vec<mysql_async::Row> = self
            .runtime
            .block_on(conn.query(sql))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.into_iter()
            .map(|mut row| match row.take::<mysql_async::Value, _>(0) {
                Some(mysql_async::Value::NULL) | None => None,
                Some(mysql_async::Value::Bytes(b)) => {
                    Some(String::from_utf8_lossy(&b).into_owned())
                }
                Some(other) => Some(other.as_sql(true).trim_matches('\'').to_owned()),
            })
            .collect()
    }
}

impl Drop for MysqlClient {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = self.runtime.block_on(conn.disconnect());
        }
    }
}

/// A fresh MySQL database `sessionkit_<random>` on the server of a base URL, dropped when this
/// value is dropped (never the base URL's own database).
pub struct TempMysqlDatabase {
    base_url: String,
    name: String,
    url: String,
}

impl TempMysqlDatabase {
    /// Creates the database through `base_url`.
    ///
    /// # Panics
    ///
    /// When the server cannot be reached or refuses `CREATE DATABASE`: the test cannot run.
    pub fn create(base_url: &str) -> Self {
        let name = format!("sessionkit_{}", random_suffix());
        MysqlClient::connect(base_url).exec(&format!("CREATE DATABASE `{name}`"));
        Self {
            url: with_database(base_url, &name),
            base_url: base_url.to_owned(),
            name,
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

impl Drop for TempMysqlDatabase {
    fn drop(&mut self) {
        let dropped = std::panic::catch_unwind(|| {
            MysqlClient::connect(&self.base_url)
                .try_exec(&format!("DROP DATABASE IF EXISTS `{}`", self.name))
        });
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: could not drop test database {}", self.name),
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
pub fn with_database(base_url: &str, database: &str) -> String {
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
