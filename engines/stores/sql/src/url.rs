//! Database URLs: which backend, where, and how, parsed once so a typo fails at start-up.

use std::{fmt, path::PathBuf, str::FromStr, time::Duration};

use sessionkit_codec::redact_url;

/// The bound on every PostgreSQL or MySQL call (pool checkout, connect, statement) when the URL sets no
/// `call_timeout`: a locked table or a server that is up but silent gives a clean
/// `Unavailable` error after this long instead of holding the request.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest `call_timeout` accepted (an hour): a bound, not a way to switch it off.
pub const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(3600);

/// Connections per PostgreSQL store, and per MySQL store when its URL sets no `pool_size`.
pub const DEFAULT_POOL_SIZE: usize = 8;

/// The largest MySQL `pool_size` accepted.
pub const MAX_POOL_SIZE: usize = 1024;

/// How long the TCP connect to one host may take when the URL sets no `connect_timeout` (with
/// several hosts, each gets this long). The whole connection set-up is also inside the call's
/// `call_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Linux `TCP_USER_TIMEOUT` when the URL sets no `tcp_user_timeout`: the kernel drops a
/// connection whose sent data stays unacknowledged this long (a host gone from the network),
/// so a dead connection is noticed. It does **not** bound a call to a server that is alive but
/// silent — that server's kernel acknowledges everything — so it is not what bounds calls:
/// [`DEFAULT_CALL_TIMEOUT`] (`call_timeout`) is.
pub const DEFAULT_TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);

/// A parsed `SESSION_DB_URL` / `DATABASE_URL`: the backend and where it lives.
///
/// Accepted forms:
///
/// - `sqlite:///abs/path.sqlite3` (absolute path), `sqlite://relative.sqlite3` (relative to the
///   working directory), `sqlite::memory:` (or `sqlite://:memory:`); an optional
///   `?synchronous=full|normal` query chooses SQLite's durability (default `full`), and
///   `group_commit=on|off` whether concurrent writes to a file share one commit (default `on`;
///   see the crate README; no effect on `:memory:`).
/// - `postgres://user:password@host:port/dbname?…` or `postgresql://…` (anything the
///   `tokio-postgres` URL parser accepts, plus `call_timeout`). The time bounds, all optional:
///   - `call_timeout=<seconds>` (fractions allowed, above 0, at most 3600; default 5): every
///     call — waiting for a pooled connection, connecting, the statement — ends within it,
///     enforced on the client, so a server that is alive but silent cannot hold a request.
///     The connection also gets `statement_timeout` and `lock_timeout` of 4/5 of it, so a
///     locked table is reported by the server (with the connection kept) before the client
///     bound cuts it (unless `options=-c statement_timeout=…` / `-c lock_timeout=…` set them);
///   - `connect_timeout=<seconds>` (default 5): the TCP connect to one host;
///   - `tcp_user_timeout=<seconds>` (default 30): Linux `TCP_USER_TIMEOUT`, to notice a host
///     that vanished from the network (it does not bound calls).
/// - `mysql://user:password@host:port/dbname?…` or `mariadb://…` (the same thing; the database
///   name is required). Our options:
///   - `call_timeout=<seconds>` as for PostgreSQL (default 5): every call — checkout, connect,
///     statement — ends within it, on the client; the connection also gets MariaDB's
///     `max_statement_time` (MySQL's `max_execution_time` for reads) of 4/5 of it and
///     `innodb_lock_wait_timeout` of that rounded up to whole seconds, so the server reports
///     a slow or blocked statement (keeping the connection) first;
///   - `pool_size=<n>` (1 to 1024, default 8): connections per store.
///
///   The `mysql_async` driver's own parameters pass through (`tcp_nodelay`, `tcp_keepalive`,
///   `stmt_cache_size`, `max_allowed_packet`, `wait_timeout`, `compression`, `socket`,
///   `prefer_socket` — off unless set, so the URL's host is where the store connects), except
///   its pool's (`pool_min`, `pool_max`, the `*_ttl` ones: the store pools connections itself,
///   `pool_size` sizes it) and `client_found_rows` (always on: an `UPDATE` that rewrites a row
///   with the same values must still count it), which are refused. No TLS (as for PostgreSQL).
///
/// `Debug` and `Display` never show a password.
#[derive(Clone)]
pub enum DatabaseUrl {
    /// An SQLite database file (or an in-memory database).
    Sqlite(SqliteUrl),
    /// A PostgreSQL server.
    Postgres(PostgresUrl),
    /// A MySQL or MariaDB server.
    Mysql(MysqlUrl),
}

/// Where an SQLite database lives and how durable its commits are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteUrl {
    /// The file, or memory.
    pub location: SqliteLocation,
    /// SQLite's `synchronous` pragma (see the crate README for why `Full` is the default).
    pub synchronous: Synchronous,
    /// Whether concurrent writes to a file database are committed together, one transaction
    /// (one fsync) per batch (`?group_commit=off` restores one commit per write; see the
    /// crate README). Ignored for `:memory:`.
    pub group_commit: bool,
}

/// The SQLite database itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A database file; relative paths are relative to the working directory at open.
    File(PathBuf),
    /// A private in-memory database, lost when the store is dropped (tests, demos).
    Memory,
}

/// SQLite's `synchronous` setting in WAL mode: the durability of an acknowledged write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Each commit fsyncs the WAL: durable across power loss (the default).
    #[default]
    Full,
    /// Commits survive an application crash but may roll back after a power loss or OS crash.
    Normal,
}

impl Synchronous {
    /// The value for `PRAGMA synchronous`.
    pub const fn as_pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// A PostgreSQL URL with its parsed connection configuration.
#[derive(Clone)]
pub struct PostgresUrl {
    raw: String,
    /// Boxed: the configuration is large next to an SQLite URL.
    config: Box<tokio_postgres::Config>,
    call_timeout: Duration,
}

impl PostgresUrl {
    /// The connection configuration (connect timeout, TCP user timeout and application name
    /// filled in where the URL sets none; without `call_timeout`, which the driver would refuse).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The bound on every call: the URL's `call_timeout`, or [`DEFAULT_CALL_TIMEOUT`].
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// The URL as given, password included: only for handing to a driver, never for a log.
    pub fn expose(&self) -> &str {
        &self.raw
    }
}

/// A MySQL/MariaDB URL with its parsed driver options and our own.
#[derive(Clone)]
pub struct MysqlUrl {
    raw: String,
    /// Boxed: the driver's options are large next to an SQLite URL.
    opts: Box<mysql_async::Opts>,
    call_timeout: Duration,
    pool_size: usize,
}

impl MysqlUrl {
    /// The driver's connection options (`client_found_rows` on, `prefer_socket` off unless set).
    pub fn opts(&self) -> &mysql_async::Opts {
        &self.opts
    }

    /// The bound on every call: the URL's `call_timeout`, or [`DEFAULT_CALL_TIMEOUT`].
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Connections per store: the URL's `pool_size`, or [`DEFAULT_POOL_SIZE`].
    pub fn pool_size(&self) -> usize {
        self.pool_size
    }

    /// The URL as given, password included: only for handing to a driver, never for a log.
    pub fn expose(&self) -> &str {
        &self.raw
    }
}

impl fmt::Debug for MysqlUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.raw))
    }
}

/// Why a database URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The scheme is not one of the supported backends.
    #[error(
        "unsupported database URL scheme {scheme:?} (expected sqlite:, postgres:, postgresql:, \
         mysql: or mariadb:)"
    )]
    UnknownScheme {
        /// The scheme found (text before the first ':').
        scheme: String,
    },
    /// An SQLite URL without a file name.
    #[error(
        "SQLite URL has no path (use sqlite:///abs/path.sqlite3, sqlite://relative.sqlite3 or \
         sqlite::memory:)"
    )]
    EmptySqlitePath,
    /// An SQLite URL not of the form `sqlite://…` or `sqlite::memory:`.
    #[error(
        "SQLite URL must start with sqlite:// (sqlite:///abs/path.sqlite3, \
         sqlite://relative.sqlite3) or be sqlite::memory:"
    )]
    MalformedSqlite,
    /// An SQLite URL query parameter that is unknown or has a bad value.
    #[error(
        "unsupported SQLite URL option {option:?} (only synchronous=full|normal and \
         group_commit=on|off)"
    )]
    SqliteOption {
        /// The offending `name=value` pair.
        option: String,
    },
    /// A `call_timeout` that is not a number of seconds above 0 and at most 3600.
    #[error(
        "invalid database URL option call_timeout={value:?} (expected seconds above 0 and at \
         most 3600, e.g. call_timeout=5 or call_timeout=0.5)"
    )]
    CallTimeout {
        /// The value given.
        value: String,
    },
    /// A MySQL `pool_size` that is not a whole number from 1 to 1024.
    #[error(
        "invalid MySQL URL option pool_size={value:?} (expected a whole number from 1 to 1024)"
    )]
    PoolSize {
        /// The value given.
        value: String,
    },
    /// The MySQL URL parser refused the URL, or it sets an option the store refuses.
    #[error("invalid MySQL URL {url}: {reason}")]
    Mysql {
        /// The URL with its password redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A `%` escape that is not two hex digits or decodes to invalid UTF-8.
    #[error("bad percent-encoding in SQLite path")]
    PercentEncoding,
    /// The PostgreSQL URL parser refused the URL.
    #[error("invalid PostgreSQL URL {url}: {reason}")]
    Postgres {
        /// The URL with its password redacted.
        url: String,
        /// What the parser said.
        reason: String,
    },
}

impl DatabaseUrl {
    /// Parses a database URL (see the type's docs for the accepted forms).
    ///
    /// # Errors
    ///
    /// [`UrlError`] naming what is wrong; the message never contains a password.
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let url = url.trim();
        let scheme = url.split_once(':').map_or(url, |(scheme, _)| scheme);
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => parse_sqlite(url).map(Self::Sqlite),
            "postgres" | "postgresql" => parse_postgres(url).map(Self::Postgres),
            "mysql" | "mariadb" => parse_mysql(url).map(Self::Mysql),
            _ => Err(UrlError::UnknownScheme {
                scheme: scheme.to_owned(),
            }),
        }
    }

    /// The backend's name, for messages: `sqlite`, `postgresql` or `mysql`.
    pub const fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgresql",
            Self::Mysql(_) => "mysql",
        }
    }

    /// The URL with any password replaced by `***`, for logs and error messages.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(sqlite) => sqlite.to_string(),
            Self::Postgres(pg) => redact_url(&pg.raw),
            Self::Mysql(my) => redact_url(&my.raw),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(sqlite) => f.debug_tuple("Sqlite").field(sqlite).finish(),
            Self::Postgres(pg) => f.debug_tuple("Postgres").field(pg).finish(),
            Self::Mysql(my) => f.debug_tuple("Mysql").field(my).finish(),
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.raw))
    }
}

impl fmt::Display for SqliteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            SqliteLocation::Memory => f.write_str("sqlite::memory:")?,
            SqliteLocation::File(path) => write!(f, "sqlite://{}", path.display())?,
        }
        let mut separator = '?';
        if self.synchronous != Synchronous::Full {
            write!(
                f,
                "{separator}synchronous={}",
                self.synchronous.as_pragma().to_ascii_lowercase()
            )?;
            separator = '&';
        }
        if !self.group_commit {
            write!(f, "{separator}group_commit=off")?;
        }
        Ok(())
    }
}

fn parse_sqlite(url: &str) -> Result<SqliteUrl, UrlError> {
    let rest = &url["sqlite:".len()..];
    let (body, query) = match rest.split_once('?') {
        Some((body, query)) => (body, Some(query)),
        None => (rest, None),
    };
    let location = if body == ":memory:" || body == "//:memory:" {
        SqliteLocation::Memory
    } else if let Some(path) = body.strip_prefix("//") {
        if path.is_empty() || path == "/" {
            return Err(UrlError::EmptySqlitePath);
        }
        SqliteLocation::File(PathBuf::from(percent_decode(path)?))
    } else {
        return Err(UrlError::MalformedSqlite);
    };
    let mut synchronous = Synchronous::Full;
    let mut group_commit = true;
    for pair in query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match (name, value.to_ascii_lowercase().as_str()) {
            ("synchronous", "full") => synchronous = Synchronous::Full,
            ("synchronous", "normal") => synchronous = Synchronous::Normal,
            ("group_commit", "on") => group_commit = true,
            ("group_commit", "off") => group_commit = false,
            _ => {
                return Err(UrlError::SqliteOption {
                    option: pair.to_owned(),
                });
            }
        }
    }
    Ok(SqliteUrl {
        location,
        synchronous,
        group_commit,
    })
}

fn parse_postgres(url: &str) -> Result<PostgresUrl, UrlError> {
    let (driver_url, call_timeout) = take_call_timeout(url)?;
    let mut config =
        tokio_postgres::Config::from_str(&driver_url).map_err(|e| UrlError::Postgres {
            url: redact_url(url),
            reason: e.to_string(),
        })?;
    if config.get_hosts().is_empty() {
        return Err(UrlError::Postgres {
            url: redact_url(url),
            reason: "no host".to_owned(),
        });
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(DEFAULT_TCP_USER_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("sessionkit");
    }
    Ok(PostgresUrl {
        raw: url.to_owned(),
        config: Box::new(config),
        call_timeout: call_timeout.unwrap_or(DEFAULT_CALL_TIMEOUT),
    })
}

/// The `mysql_async` URL parameters the store refuses: its pool's (the store pools connections
/// itself) and `client_found_rows` (the store needs it on).
const REFUSED_MYSQL_PARAMS: &[&str] = &[
    "pool_min",
    "pool_max",
    "inactive_connection_ttl",
    "ttl_check_interval",
    "conn_ttl",
    "abs_conn_ttl",
    "abs_conn_ttl_jitter",
    "client_found_rows",
];

fn parse_mysql(url: &str) -> Result<MysqlUrl, UrlError> {
    let bad = |reason: String| UrlError::Mysql {
        url: redact_url(url),
        reason,
    };
    let (driver_url, call_timeout) = take_call_timeout(url)?;
    let (driver_url, pool_size) = take_param(&driver_url, "pool_size");
    let pool_size = match pool_size {
        None => DEFAULT_POOL_SIZE,
        Some(value) => value
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_POOL_SIZE).contains(n))
            .ok_or(UrlError::PoolSize { value })?,
    };
    let query = driver_url.split_once('?').map_or("", |(_, q)| q);
    let names: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or(p, |(name, _)| name))
        .collect();
    if let Some(name) = names.iter().find(|n| REFUSED_MYSQL_PARAMS.contains(n)) {
        return Err(bad(format!(
            "option {name} is not accepted (the store pools connections itself: size the pool \
             with pool_size; client_found_rows is always on)"
        )));
    }
    // The driver knows only `mysql://`; `mariadb://` is the same protocol.
    let driver_url = match driver_url.split_once(':') {
        Some((_, rest)) => format!("mysql:{rest}"),
        None => driver_url.clone(),
    };
    let opts = mysql_async::Opts::from_url(&driver_url).map_err(|e| bad(e.to_string()))?;
    if opts.db_name().is_none_or(str::is_empty) {
        return Err(bad(
            "no database name (mysql://user:password@host:port/dbname)".to_owned(),
        ));
    }
    let prefer_socket = names.contains(&"prefer_socket") && opts.prefer_socket();
    let opts = mysql_async::OptsBuilder::from_opts(opts)
        .client_found_rows(true)
        .prefer_socket(prefer_socket);
    Ok(MysqlUrl {
        raw: url.to_owned(),
        opts: Box::new(opts.into()),
        call_timeout: call_timeout.unwrap_or(DEFAULT_CALL_TIMEOUT),
        pool_size,
    })
}

/// Splits the query parameter `name` off `url`: the URL without it, and its last value.
fn take_param(url: &str, name: &str) -> (String, Option<String>) {
    let Some((head, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut value = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some((key, v)) if key == name => value = Some(v.to_owned()),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    (url, value)
}

/// Splits our own `call_timeout` query parameter off a PostgreSQL or MySQL URL (the driver refuses
/// parameters it does not know): the URL without it, and its value if given.
fn take_call_timeout(url: &str) -> Result<(String, Option<Duration>), UrlError> {
    let Some((head, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), None));
    };
    let mut call_timeout = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("call_timeout", value)) => {
                let seconds = value
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(Duration::from_secs_f64)
                    .filter(|d| !d.is_zero() && *d <= MAX_CALL_TIMEOUT)
                    .ok_or_else(|| UrlError::CallTimeout {
                        value: value.to_owned(),
                    })?;
                call_timeout = Some(seconds);
            }
            _ => kept.push(pair),
        }
    }
    let driver_url = if kept.is_empty() {
        head.to_owned()
    } else {
        format!("{head}?{}", kept.join("&"))
    };
    Ok((driver_url, call_timeout))
}

/// Decodes `%XX` escapes in an SQLite path (`sqlite:///tmp/my%20db.sqlite3`).
fn percent_decode(path: &str) -> Result<String, UrlError> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(UrlError::PercentEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| UrlError::PercentEncoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UrlError::PercentEncoding)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::PercentEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(url: &str) -> SqliteUrl {
        match DatabaseUrl::parse(url) {
            Ok(DatabaseUrl::Sqlite(s)) => s,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn sqlite_absolute_path_keeps_its_leading_slash() {
        let url = sqlite("sqlite:///var/lib/app/sessions.sqlite3");
        assert_eq!(
            url.location,
            SqliteLocation::File("/var/lib/app/sessions.sqlite3".into())
        );
        assert_eq!(url.synchronous, Synchronous::Full);
    }

    #[test]
    fn sqlite_relative_path_is_relative() {
        let url = sqlite("sqlite://sessionkit.sqlite3");
        assert_eq!(
            url.location,
            SqliteLocation::File("sessionkit.sqlite3".into())
        );
    }

    #[test]
    fn sqlite_memory_forms_are_accepted() {
        assert_eq!(sqlite("sqlite::memory:").location, SqliteLocation::Memory);
        assert_eq!(sqlite("sqlite://:memory:").location, SqliteLocation::Memory);
    }

    #[test]
    fn sqlite_synchronous_option_is_parsed_and_others_refused() {
        assert_eq!(
            sqlite("sqlite://a.db?synchronous=normal").synchronous,
            Synchronous::Normal
        );
        assert_eq!(
            sqlite("sqlite://a.db?synchronous=FULL").synchronous,
            Synchronous::Full
        );
        assert!(matches!(
            DatabaseUrl::parse("sqlite://a.db?mode=ro"),
            Err(UrlError::SqliteOption { .. })
        ));
    }

    #[test]
    fn sqlite_group_commit_is_on_unless_switched_off() {
        assert!(sqlite("sqlite://a.db").group_commit);
        assert!(sqlite("sqlite://a.db?group_commit=on").group_commit);
        let off = sqlite("sqlite://a.db?synchronous=normal&group_commit=OFF");
        assert!(!off.group_commit);
        assert_eq!(off.synchronous, Synchronous::Normal);
        for bad in ["sqlite://a.db?group_commit=1", "sqlite://a.db?group_commit"] {
            assert!(
                matches!(DatabaseUrl::parse(bad), Err(UrlError::SqliteOption { .. })),
                "{bad}"
            );
        }
        // Display round-trips the options that are not the defaults.
        assert_eq!(
            off.to_string(),
            "sqlite://a.db?synchronous=normal&group_commit=off"
        );
        assert_eq!(
            sqlite("sqlite://a.db?group_commit=off").to_string(),
            "sqlite://a.db?group_commit=off"
        );
        assert_eq!(sqlite("sqlite://a.db").to_string(), "sqlite://a.db");
    }

    #[test]
    fn sqlite_path_is_percent_decoded() {
        let url = sqlite("sqlite:///tmp/my%20db.sqlite3");
        assert_eq!(
            url.location,
            SqliteLocation::File("/tmp/my db.sqlite3".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/%zz").unwrap_err(),
            UrlError::PercentEncoding
        );
    }

    #[test]
    fn sqlite_url_without_path_or_slashes_is_refused() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://").unwrap_err(),
            UrlError::EmptySqlitePath
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///").unwrap_err(),
            UrlError::EmptySqlitePath
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:foo.db").unwrap_err(),
            UrlError::MalformedSqlite
        );
    }

    #[test]
    fn unknown_scheme_is_named() {
        let err = DatabaseUrl::parse("oracle://root@localhost/db").unwrap_err();
        assert_eq!(
            err,
            UrlError::UnknownScheme {
                scheme: "oracle".into()
            }
        );
        assert!(err.to_string().contains("oracle"));
    }

    #[test]
    fn postgres_url_gets_a_bounded_connect_timeout() {
        let Ok(DatabaseUrl::Postgres(pg)) = DatabaseUrl::parse("postgres://u@localhost/db") else {
            panic!("not postgres")
        };
        assert_eq!(
            pg.config().get_connect_timeout(),
            Some(&DEFAULT_CONNECT_TIMEOUT)
        );
        assert_eq!(pg.config().get_dbname(), Some("db"));
        let Ok(DatabaseUrl::Postgres(pg)) =
            DatabaseUrl::parse("postgresql://u@localhost/db?connect_timeout=2")
        else {
            panic!("not postgres")
        };
        assert_eq!(
            pg.config().get_connect_timeout(),
            Some(&Duration::from_secs(2))
        );
    }

    fn postgres(url: &str) -> PostgresUrl {
        match DatabaseUrl::parse(url) {
            Ok(DatabaseUrl::Postgres(pg)) => pg,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn postgres_calls_are_bounded_by_default_and_the_url_overrides_it() {
        assert_eq!(
            postgres("postgres://u@localhost/db").call_timeout(),
            DEFAULT_CALL_TIMEOUT
        );
        let pg = postgres("postgres://u@localhost/db?sslmode=disable&call_timeout=0.5&user=v");
        assert_eq!(pg.call_timeout(), Duration::from_millis(500));
        // The driver still sees the other parameters, and never ours.
        assert_eq!(pg.config().get_user(), Some("v"));
        assert_eq!(
            postgres("postgres://u@localhost/db?call_timeout=7").call_timeout(),
            Duration::from_secs(7)
        );
        assert_eq!(
            postgres("postgres://u@localhost/db")
                .config()
                .get_tcp_user_timeout(),
            Some(&DEFAULT_TCP_USER_TIMEOUT)
        );
    }

    #[test]
    fn a_bad_call_timeout_is_refused_by_name() {
        for value in ["0", "-1", "abc", "", "NaN", "inf", "3601", "0.0000000001"] {
            let url = format!("postgres://u:hunter2@localhost/db?call_timeout={value}");
            let err = DatabaseUrl::parse(&url).unwrap_err();
            assert_eq!(
                err,
                UrlError::CallTimeout {
                    value: value.to_owned()
                },
                "{value}"
            );
            assert!(err.to_string().contains("call_timeout"), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn debug_and_display_redact_passwords() {
        let url = DatabaseUrl::parse("postgres://alice:s3cr%40t@db.example:5432/app").unwrap();
        for shown in [format!("{url:?}"), url.to_string(), url.redacted()] {
            assert!(!shown.contains("s3cr"), "{shown}");
            assert!(shown.contains("alice:***@db.example"), "{shown}");
        }
        let url = DatabaseUrl::parse("postgres://alice@db.example/app?password=hunter2").unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(format!("{url:?}").contains("password=***"));
    }

    #[test]
    fn bad_postgres_url_error_does_not_leak_the_password() {
        let err = DatabaseUrl::parse("postgres://alice:hunter2@host:notaport/db").unwrap_err();
        assert!(matches!(err, UrlError::Postgres { .. }));
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    fn mysql(url: &str) -> MysqlUrl {
        match DatabaseUrl::parse(url) {
            Ok(DatabaseUrl::Mysql(my)) => my,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn mysql_and_mariadb_urls_parse_alike() {
        for scheme in ["mysql", "mariadb", "MariaDB"] {
            let my = mysql(&format!("{scheme}://root:pw@db.example:3307/app"));
            assert_eq!(my.opts().ip_or_hostname(), "db.example");
            assert_eq!(my.opts().tcp_port(), 3307);
            assert_eq!(my.opts().db_name(), Some("app"));
            assert_eq!(my.opts().user(), Some("root"));
            assert_eq!(my.call_timeout(), DEFAULT_CALL_TIMEOUT);
            assert_eq!(my.pool_size(), DEFAULT_POOL_SIZE);
            // Always: a rewrite with equal values must count as the row updated.
            assert!(my.opts().client_found_rows());
            assert!(!my.opts().prefer_socket());
        }
        assert_eq!(
            DatabaseUrl::parse("mariadb://u@h/d").unwrap().backend(),
            "mysql"
        );
    }

    #[test]
    fn mysql_options_are_ours_or_the_drivers() {
        let my = mysql(
            "mysql://u@h/d?call_timeout=0.25&pool_size=3&tcp_nodelay=false&prefer_socket=true",
        );
        assert_eq!(my.call_timeout(), Duration::from_millis(250));
        assert_eq!(my.pool_size(), 3);
        assert!(!my.opts().tcp_nodelay());
        assert!(my.opts().prefer_socket());
        for value in ["0", "1025", "x", ""] {
            assert_eq!(
                DatabaseUrl::parse(&format!("mysql://u@h/d?pool_size={value}")).unwrap_err(),
                UrlError::PoolSize {
                    value: value.to_owned()
                }
            );
        }
        assert!(matches!(
            DatabaseUrl::parse("mysql://u@h/d?call_timeout=0"),
            Err(UrlError::CallTimeout { .. })
        ));
        for refused in ["pool_max=20", "client_found_rows=false", "conn_ttl=5"] {
            let err = DatabaseUrl::parse(&format!("mysql://u:hunter2@h/d?{refused}")).unwrap_err();
            assert!(matches!(err, UrlError::Mysql { .. }), "{refused}: {err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let err = DatabaseUrl::parse("mysql://u:hunter2@h/d?no_such_option=1").unwrap_err();
        assert!(err.to_string().contains("no_such_option"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn mysql_url_needs_a_database_and_hides_its_password() {
        for url in ["mysql://u:hunter2@h", "mysql://u:hunter2@h/"] {
            let err = DatabaseUrl::parse(url).unwrap_err();
            assert!(err.to_string().contains("no database name"), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let url = DatabaseUrl::parse("mariadb://alice:s3cret@db.example/app").unwrap();
        for shown in [format!("{url:?}"), url.to_string()] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("alice:***@db.example"), "{shown}");
        }
    }
}
