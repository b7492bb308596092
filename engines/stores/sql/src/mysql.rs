//! The MySQL/MariaDB backend: `mysql_async` driven by a small runtime per connection, over the
//! crate's pool, with every call bounded — the same pattern as the PostgreSQL backend.
//!
//! Why `mysql_async` and not the synchronous `mysql` crate: the sync crate bounds a call only
//! by socket read/write timeouts, which bound each read, not the call (a server trickling bytes
//! holds it for as many reads as it likes), just as the PostgreSQL backend found. Here each
//! connection owns a current-thread runtime and each call runs under `tokio::time::timeout_at`,
//! so the bound holds whatever the server does; a call cut by it leaves the connection
//! mid-protocol, so that connection is closed, never returned to the pool. The driver's own
//! pool is not used (it spawns background tasks and has no per-call deadline); its statement
//! cache prepares each statement once per connection.
//!
//! Statements are the shared ones (`"identifiers"`, `:pN` named parameters): each connection
//! adds `ANSI_QUOTES` to its `sql_mode`, and the driver maps the names to positions.
//! `expire_date` is `datetime(6)` holding naive UTC, as Django stores it with `USE_TZ = True`.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use mysql_async::{Conn, Params, Row, Value, prelude::Queryable};
use sessionkit_sdk::{ErrorKind, Progress, SessionRecord, StoreError, StoreResult, Timestamp};
use tokio::runtime::Runtime;

use crate::{
    clear::{self, Batch, ClearBatches},
    pool::{Manager, Pool, Pooled},
    schema::{Dialect, Statements, create_table_statement, mysql_index_statements},
    time::{from_chrono, parse_sqlite_text, to_chrono},
    url::MysqlUrl,
};

/// Server error codes (MySQL's and MariaDB's `ER_*`) the contract gives a kind of their own.
mod code {
    /// `ER_DUP_ENTRY`, `ER_DUP_ENTRY_WITH_KEY_NAME`: a taken primary key.
    pub(super) const DUPLICATE: &[u16] = &[1062, 1586];
    /// The server is going away, overloaded, read-only or timed the statement out; the call
    /// may succeed later: too many connections (1040, 1203, 1226), out of memory (1041, 1037),
    /// handshake or network trouble (1042, 1043, 1152–1161, 2013), shutdown (1053), lock wait
    /// timeout (1205), deadlock (1213), a read-only server (1290, 1792, 1836), a query or
    /// connection killed (1317, 1927), MariaDB `max_statement_time` (1969), MySQL
    /// `max_execution_time` (3024), disconnected for inactivity (4031).
    pub(super) const UNAVAILABLE: &[u16] = &[
        1037, 1040, 1041, 1042, 1043, 1053, 1152, 1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160,
        1161, 1203, 1205, 1213, 1226, 1290, 1317, 1792, 1836, 1927, 1969, 2013, 3024, 4031,
    ];
    /// Credentials, privileges or a missing database, table or column: access denied (1044,
    /// 1045, 1142, 1143, 1227, 1698), auth plugin (1251), unknown database (1049), unknown
    /// table (1146), unknown column (1054).
    pub(super) const CONFIG: &[u16] = &[1044, 1045, 1049, 1054, 1142, 1143, 1146, 1227, 1251, 1698];
    /// Errors after which the server has closed the session: shutdown, killed, inactivity.
    pub(super) const FATAL: &[u16] = &[1053, 1927, 2013, 4031];
}

/// Maps every `mysql_async` error to the contract's error kinds; `context` says what was being
/// done.
///
/// Server errors go by code (see [`code`]), and by SQLSTATE class for the rest: `08`
/// (connection) and `40` (transaction rollback) → `Unavailable`, `28` (authorization) →
/// `Config`, otherwise `Other`. Client-side errors: I/O and a closed connection →
/// `Unavailable`, a value that does not decode → `Corrupted`, a bad URL → `Config`, the rest
/// (protocol trouble) → `Unavailable`.
pub(crate) fn map_mysql_error(context: &str, error: &mysql_async::Error) -> StoreError {
    use mysql_async::{DriverError, Error};
    let kind = match error {
        Error::Server(server) => {
            let class = server.state.get(..2).unwrap_or("");
            if code::DUPLICATE.contains(&server.code) {
                ErrorKind::AlreadyExists
            } else if code::UNAVAILABLE.contains(&server.code) || matches!(class, "08" | "40") {
                ErrorKind::Unavailable
            } else if code::CONFIG.contains(&server.code) || class == "28" {
                ErrorKind::Config
            } else {
                ErrorKind::Other
            }
        }
        Error::Io(_) => ErrorKind::Unavailable,
        Error::Driver(DriverError::FromValue { .. } | DriverError::FromRow { .. }) => {
            ErrorKind::Corrupted
        }
        Error::Driver(DriverError::Params(_)) => ErrorKind::Other,
        Error::Driver(_) => ErrorKind::Unavailable,
        Error::Url(_) => ErrorKind::Config,
        Error::Other(_) => ErrorKind::Other,
    };
    let detail = match error {
        // The server's text quotes the whole key ("Duplicate entry '…' for key 'PRIMARY'").
        Error::Server(server) if kind == ErrorKind::AlreadyExists => format!(
            "duplicate primary key (error {}, SQLSTATE {})",
            server.code, server.state
        ),
        Error::Server(server) => format!(
            "{} (error {}, SQLSTATE {})",
            server.message, server.code, server.state
        ),
        other => other.to_string(),
    };
    StoreError::new(kind, format!("MySQL {context}: {detail}"))
}

/// Whether the connection that gave `error` may be used again: after a statement error such as
/// a duplicate key or a lock or statement timeout, yes; after a client-side failure or an error
/// that ends the server session, no.
fn connection_survives(error: &mysql_async::Error) -> bool {
    match error {
        mysql_async::Error::Server(server) => !code::FATAL.contains(&server.code),
        _ => false,
    }
}

/// Why a call on a connection failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The driver or the server reported an error.
    My(mysql_async::Error),
    /// The call's deadline passed first (the server is slow, blocked or silent).
    TimedOut,
    /// A column held something that is not a session's (not UTF-8, not a date).
    Corrupted(String),
    /// The connection's runtime could not be made (out of threads or file descriptors).
    Runtime(std::io::Error),
}

impl From<mysql_async::Error> for CallError {
    fn from(error: mysql_async::Error) -> Self {
        Self::My(error)
    }
}

/// Runs `call` on `runtime` until it ends or `deadline` passes.
fn block<T>(
    runtime: &Runtime,
    deadline: Instant,
    call: impl Future<Output = mysql_async::Result<T>>,
) -> Result<T, CallError> {
    let deadline = tokio::time::Instant::from_std(deadline);
    match runtime.block_on(async { tokio::time::timeout_at(deadline, call).await }) {
        Ok(result) => result.map_err(CallError::My),
        Err(_elapsed) => Err(CallError::TimedOut),
    }
}

/// One pooled connection: the driver's connection, the runtime that drives it, and the
/// deadline of the call in progress. (Fields drop in order: the connection before its runtime.)
pub(crate) struct MyConn {
    conn: Conn,
    runtime: Runtime,
    deadline: Instant,
}

impl MyConn {
    /// The first row of a statement, if any.
    fn first(&mut self, sql: &str, params: Params) -> Result<Option<Row>, CallError> {
        let call = self.conn.exec_first::<Row, _, _>(sql, params);
        block(&self.runtime, self.deadline, call)
    }

    /// Every row of a statement.
    fn rows(&mut self, sql: &str, params: Params) -> Result<Vec<Row>, CallError> {
        let call = self.conn.exec::<Row, _, _>(sql, params);
        block(&self.runtime, self.deadline, call)
    }

    /// Runs a statement; the rows it matched (`CLIENT_FOUND_ROWS`: matched, not only changed).
    fn execute(&mut self, sql: &str, params: Params) -> Result<u64, CallError> {
        let call = self.conn.exec_drop(sql, params);
        block(&self.runtime, self.deadline, call)?;
        Ok(self.conn.affected_rows())
    }

    /// Runs plain SQL without parameters (text protocol, for `SET` and DDL).
    fn batch(&mut self, sql: &str) -> Result<(), CallError> {
        let call = self.conn.query_drop(sql);
        block(&self.runtime, self.deadline, call)
    }
}

/// Named parameters `:p1`, `:p2`, … from values in order.
fn params<const N: usize>(values: [Value; N]) -> Params {
    Params::Named(
        values
            .into_iter()
            .enumerate()
            .map(|(i, value)| (format!("p{}", i + 1).into_bytes(), value))
            .collect(),
    )
}

fn text(s: &str) -> Value {
    Value::Bytes(s.as_bytes().to_vec())
}

/// `ts` as a `datetime(6)` value: naive UTC (clamped into years 1 to 9999).
fn datetime(ts: Timestamp) -> Value {
    use chrono::{Datelike, Timelike};
    let dt = to_chrono(ts);
    // The clamp keeps the year within 1..=9999 and the rest within their ranges.
    Value::Date(
        u16::try_from(dt.year()).unwrap_or(9999),
        dt.month() as u8,
        dt.day() as u8,
        dt.hour() as u8,
        dt.minute() as u8,
        dt.second() as u8,
        dt.timestamp_subsec_micros(),
    )
}

fn account_value(account: Option<i32>) -> Value {
    account.map_or(Value::NULL, |id| Value::Int(i64::from(id)))
}

/// Column `i` of `row` as text; anything but UTF-8 bytes is corruption.
fn take_text(row: &mut Row, i: usize, column: &str) -> Result<String, CallError> {
    match row.take::<Value, _>(i) {
        Some(Value::Bytes(bytes)) => String::from_utf8(bytes)
            .map_err(|_| CallError::Corrupted(format!("{column} is not UTF-8"))),
        other => Err(CallError::Corrupted(format!(
            "{column} is not text: {other:?}"
        ))),
    }
}

/// Column `i` of `row` as a timestamp (naive UTC); a zero or impossible date is corruption.
fn take_datetime(row: &mut Row, i: usize) -> Result<Timestamp, CallError> {
    timestamp_of(row.take::<Value, _>(i))
}

/// A `datetime` column's value as a timestamp (naive UTC).
fn timestamp_of(value: Option<Value>) -> Result<Timestamp, CallError> {
    let parsed = match &value {
        Some(Value::Date(y, mo, d, h, mi, s, us)) => {
            NaiveDate::from_ymd_opt(i32::from(*y), u32::from(*mo), u32::from(*d))
                .zip(NaiveTime::from_hms_micro_opt(
                    u32::from(*h),
                    u32::from(*mi),
                    u32::from(*s),
                    *us,
                ))
                .map(|(date, time)| from_chrono(NaiveDateTime::new(date, time).and_utc()))
        }
        Some(Value::Bytes(bytes)) => std::str::from_utf8(bytes).ok().and_then(parse_sqlite_text),
        _ => None,
    };
    parsed.ok_or_else(|| CallError::Corrupted(format!("expire_date is not a date: {value:?}")))
}

/// The server-side statement bound for a call bound: 4/5 of it (at least 1 ms), so the server
/// reports a slow statement, keeping the connection, before the client cuts it.
fn server_timeout(call_timeout: Duration) -> Duration {
    (call_timeout * 4 / 5).max(Duration::from_millis(1))
}

/// Opens one connection, connected, authenticated and set up by `deadline`: `ANSI_QUOTES`
/// added to `sql_mode`, and the server-side bounds (MariaDB's `max_statement_time`, MySQL's
/// `max_execution_time`, and `innodb_lock_wait_timeout` and `lock_wait_timeout` — row and
/// table/metadata locks — in whole seconds).
fn connect_raw(url: &MysqlUrl, deadline: Instant) -> Result<MyConn, CallError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(CallError::Runtime)?;
    let conn = block(&runtime, deadline, Conn::new(url.opts().clone()))?;
    let mut conn = MyConn {
        conn,
        runtime,
        deadline,
    };
    let bound = server_timeout(url.call_timeout());
    let mariadb = conn
        .first("SELECT @@version LIKE '%MariaDB%'", Params::Empty)?
        .and_then(|mut row| row.take::<i64, _>(0))
        .is_some_and(|flag| flag == 1);
    let lock_wait = bound.as_secs_f64().ceil().max(1.0);
    let statement_bound = if mariadb {
        format!("max_statement_time = {:.3}", bound.as_secs_f64())
    } else {
        format!("max_execution_time = {}", bound.as_millis().max(1))
    };
    conn.batch(&format!(
        "SET SESSION sql_mode = TRIM(BOTH ',' FROM CONCAT(@@SESSION.sql_mode, ',ANSI_QUOTES')), \
         SESSION innodb_lock_wait_timeout = {lock_wait}, SESSION lock_wait_timeout = {lock_wait}, \
         SESSION {statement_bound}"
    ))?;
    Ok(conn)
}

/// Opens connections to one database.
pub(crate) struct MyManager {
    url: MysqlUrl,
    sql: Statements,
}

impl Manager for MyManager {
    type Conn = MyConn;

    fn connect(&self) -> StoreResult<MyConn> {
        self.connect_until(Instant::now() + self.url.call_timeout())
    }

    fn connect_until(&self, deadline: Instant) -> StoreResult<MyConn> {
        connect_raw(&self.url, deadline)
            .map_err(|e| self.map(&format!("connect to {:?}", self.url), e))
    }
}

impl MyManager {
    /// A failed call as the contract's error; a timeout names the bound and how to change it.
    fn map(&self, context: &str, error: CallError) -> StoreError {
        match error {
            CallError::My(error) => map_mysql_error(context, &error),
            CallError::TimedOut => StoreError::unavailable(format!(
                "MySQL {context}: no answer within {:?} (the call bound; set call_timeout in the \
                 database URL to change it), connection closed",
                self.url.call_timeout()
            )),
            CallError::Corrupted(what) => {
                StoreError::new(ErrorKind::Corrupted, format!("MySQL {context}: {what}"))
            }
            CallError::Runtime(error) => StoreError::unavailable(format!(
                "MySQL {context}: cannot start the connection's I/O runtime: {error}"
            )),
        }
    }
}

/// A store on one MySQL or MariaDB database.
pub(crate) struct MysqlBackend {
    pool: Pool<MyManager>,
}

impl MysqlBackend {
    /// Creates the table and Django's indexes if missing (under a named lock, `GET_LOCK`, so
    /// concurrent openers do not race on the index check), checks the columns, and opens the
    /// pool. The whole set-up is one call: it ends within the URL's `call_timeout`.
    pub(crate) fn open(url: &MysqlUrl, table: &str, account_column: bool) -> StoreResult<Self> {
        let manager = MyManager {
            url: url.clone(),
            sql: Statements::new(Dialect::Mysql, table, account_column),
        };
        let deadline = Instant::now() + url.call_timeout();
        let create = format!("create table {table:?}");
        let mut conn = connect_raw(url, deadline)
            .map_err(|e| manager.map(&format!("connect to {url:?}"), e))?;
        let lock = schema_lock_name(table);
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
            .ceil()
            .max(1.0);
        let locked = conn
            .first(
                "SELECT GET_LOCK(:p1, :p2)",
                params([text(&lock), Value::Double(wait)]),
            )
            .map_err(|e| manager.map(&create, e))?
            .and_then(|mut row| row.take::<Option<i64>, _>(0).flatten());
        if locked != Some(1) {
            return Err(StoreError::unavailable(format!(
                "MySQL {create}: another process held the schema lock {lock:?} for {wait}s"
            )));
        }
        conn.batch(&create_table_statement(
            Dialect::Mysql,
            table,
            account_column,
        ))
        .map_err(|e| manager.map(&create, e))?;
        conn.execute(&manager.sql.probe, Params::Empty)
            .map_err(|e| {
                let mut error = manager.map(&format!("check table {table:?}"), e);
                if error.kind == ErrorKind::Config {
                    error.message = format!(
                        "table {table:?} lacks a column the store needs: {}",
                        error.message
                    )
                    .into();
                }
                error
            })?;
        for (name, statement) in mysql_index_statements(table, account_column) {
            let present = conn
                .first(
                    "SELECT 1 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
                     AND TABLE_NAME = :p1 AND INDEX_NAME = :p2 LIMIT 1",
                    params([text(table), text(&name)]),
                )
                .map_err(|e| manager.map(&create, e))?
                .is_some();
            if !present {
                conn.batch(&statement)
                    .map_err(|e| manager.map(&create, e))?;
            }
        }
        conn.first("SELECT RELEASE_LOCK(:p1)", params([text(&lock)]))
            .map_err(|e| manager.map(&create, e))?;
        let pool_size = url.pool_size();
        Ok(Self {
            // A call's deadline bounds its checkout; this only serves `Pool::get`, unused here.
            pool: Pool::new(manager, pool_size, url.call_timeout()),
        })
    }

    /// Runs `op` on a pooled connection under one deadline for checkout, connect and
    /// statements. A connection whose call timed out or failed below the SQL level is closed
    /// (never returned to the pool), and so is every idle one (a restarted or hung server
    /// affects them all), so the next call reconnects.
    fn with<T>(
        &self,
        context: &str,
        op: impl FnOnce(&mut MyConn, &Statements) -> Result<T, CallError>,
    ) -> StoreResult<T> {
        let manager = self.pool.manager();
        let deadline = Instant::now() + manager.url.call_timeout();
        let mut conn: Pooled<'_, MyManager> = self.pool.get_until(deadline)?;
        conn.deadline = deadline;
        op(&mut conn, &manager.sql).map_err(|e| {
            let survives = match &e {
                CallError::My(error) => connection_survives(error),
                // The statement completed; the connection is in step.
                CallError::Corrupted(_) => true,
                CallError::TimedOut | CallError::Runtime(_) => false,
            };
            if !survives {
                conn.mark_broken();
                self.pool.discard_idle();
            }
            manager.map(context, e)
        })
    }

    pub(crate) fn exists(&self, key: &str) -> StoreResult<bool> {
        self.with("exists", |c, sql| {
            Ok(c.first(&sql.exists, params([text(key)]))?.is_some())
        })
    }

    pub(crate) fn load(&self, key: &str, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        self.with("load", |c, sql| {
            let Some(mut row) = c.first(&sql.load, params([text(key), datetime(now)]))? else {
                return Ok(None);
            };
            Ok(Some(SessionRecord {
                session_key: key.into(),
                session_data: take_text(&mut row, 0, "session_data")?.into(),
                expire_date: take_datetime(&mut row, 1)?,
            }))
        })
    }

    pub(crate) fn insert(
        &self,
        record: &SessionRecord,
        account: Option<i32>,
        account_column: bool,
    ) -> StoreResult<()> {
        let (key, data) = (record.session_key.as_str(), record.session_data.as_str());
        let expire = datetime(record.expire_date);
        self.with("create", |c, sql| {
            let values = if account_column {
                params([text(key), text(data), expire, account_value(account)])
            } else {
                params([text(key), text(data), expire])
            };
            c.execute(&sql.insert, values).map(drop)
        })
    }

    /// The number of rows updated (0 when the key is not stored).
    pub(crate) fn update(
        &self,
        record: &SessionRecord,
        account: Option<i32>,
        account_column: bool,
    ) -> StoreResult<u64> {
        let (key, data) = (record.session_key.as_str(), record.session_data.as_str());
        let expire = datetime(record.expire_date);
        self.with("save", |c, sql| {
            let values = if account_column {
                params([text(key), text(data), expire, account_value(account)])
            } else {
                params([text(key), text(data), expire])
            };
            c.execute(&sql.update, values)
        })
    }

    /// The number of rows updated: 1 when the live row held `expected`, else 0.
    pub(crate) fn update_if(
        &self,
        record: &SessionRecord,
        account: Option<i32>,
        account_column: bool,
        expected: &str,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let (key, data) = (record.session_key.as_str(), record.session_data.as_str());
        let expire = datetime(record.expire_date);
        self.with("save_if_unchanged", |c, sql| {
            let values = if account_column {
                params([
                    text(key),
                    text(data),
                    expire,
                    account_value(account),
                    text(expected),
                    datetime(now),
                ])
            } else {
                params([text(key), text(data), expire, text(expected), datetime(now)])
            };
            c.execute(&sql.update_if, values)
        })
    }

    pub(crate) fn delete(&self, key: &str) -> StoreResult<()> {
        self.with("delete", |c, sql| {
            c.execute(&sql.delete, params([text(key)])).map(drop)
        })
    }

    /// Deletes expired rows in batches sized by `batches`, each its own autocommit statement
    /// (InnoDB locks only the expired rows of that batch), reporting to `progress`.
    pub(crate) fn clear_expired(
        &self,
        now: Timestamp,
        batches: &ClearBatches,
        progress: Option<&Progress>,
    ) -> StoreResult<u64> {
        let total = match progress {
            Some(progress) => {
                let counted = self.with("clear_expired", |c, sql| {
                    let row = c.first(&sql.count_expired, params([datetime(now)]))?;
                    Ok(row.and_then(|row| row.get::<i64, _>(0)).unwrap_or(0))
                });
                let total = clear::total_or_unknown(counted);
                progress.report(0, total);
                Some((progress, total))
            }
            None => None,
        };
        clear::run(batches, total, clear::no_pause, |size| {
            let deleted = self.with("clear_expired", |c, sql| {
                c.execute(
                    &sql.clear_batch,
                    params([datetime(now), Value::UInt(size as u64)]),
                )
            })?;
            Ok::<_, StoreError>(Batch { deleted })
        })
    }

    pub(crate) fn sessions_of_account(
        &self,
        account_id: i32,
        now: Timestamp,
    ) -> StoreResult<Vec<SessionRecord>> {
        self.with("sessions_of_account", |c, sql| {
            c.rows(
                &sql.of_account,
                params([Value::Int(i64::from(account_id)), datetime(now)]),
            )?
            .into_iter()
            .map(|mut row| {
                Ok(SessionRecord {
                    session_key: take_text(&mut row, 0, "session_key")?.into(),
                    session_data: take_text(&mut row, 1, "session_data")?.into(),
                    expire_date: take_datetime(&mut row, 2)?,
                })
            })
            .collect()
        })
    }

    pub(crate) fn delete_sessions_of_account(
        &self,
        account_id: i32,
        keep: Option<&str>,
    ) -> StoreResult<u64> {
        let id = Value::Int(i64::from(account_id));
        self.with("delete_sessions_of_account", |c, sql| match keep {
            Some(keep) => c.execute(&sql.delete_of_account_keeping, params([id, text(keep)])),
            None => c.execute(&sql.delete_of_account, params([id])),
        })
    }
}

/// The named lock that serialises schema creation for one table (at most 64 characters):
/// `sessionkit_schema_` and 16 hex digits of md5(table).
fn schema_lock_name(table: &str) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(table.as_bytes());
    let mut name = String::from("sessionkit_schema_");
    for byte in &digest[..8] {
        name.push_str(&format!("{byte:02x}"));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_become_naive_utc_datetimes_and_back() {
        // 2030-01-02T03:04:05.000123Z.
        let ts = Timestamp::from_micros(1_893_553_445_000_123);
        let value = datetime(ts);
        assert_eq!(value, Value::Date(2030, 1, 2, 3, 4, 5, 123));
        assert_eq!(timestamp_of(Some(value)).unwrap(), ts);
        // The text form, should a server send one.
        assert_eq!(
            timestamp_of(Some(text("2030-01-02 03:04:05.000123"))).unwrap(),
            ts
        );
        assert!(timestamp_of(Some(Value::Date(0, 0, 0, 0, 0, 0, 0))).is_err());
        assert!(timestamp_of(Some(Value::NULL)).is_err());
        // Python's datetime.max is the clamp.
        assert_eq!(
            datetime(Timestamp::from_micros(i64::MAX)),
            Value::Date(9999, 12, 31, 23, 59, 59, 999_999)
        );
    }

    #[test]
    fn server_errors_map_to_contract_kinds() {
        let server = |code, state: &str| {
            mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: "m".into(),
                state: state.into(),
            })
        };
        let kind = |e: &mysql_async::Error| map_mysql_error("t", e).kind;
        assert_eq!(kind(&server(1062, "23000")), ErrorKind::AlreadyExists);
        assert_eq!(kind(&server(1205, "HY000")), ErrorKind::Unavailable);
        assert_eq!(kind(&server(1969, "70100")), ErrorKind::Unavailable);
        assert_eq!(kind(&server(1213, "40001")), ErrorKind::Unavailable);
        assert_eq!(kind(&server(1045, "28000")), ErrorKind::Config);
        assert_eq!(kind(&server(1146, "42S02")), ErrorKind::Config);
        assert_eq!(kind(&server(1064, "42000")), ErrorKind::Other);
        let io = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::other("x")));
        assert_eq!(kind(&io), ErrorKind::Unavailable);
        assert!(connection_survives(&server(1062, "23000")));
        assert!(connection_survives(&server(1969, "70100")));
        assert!(!connection_survives(&server(1927, "70100")));
        assert!(!connection_survives(&io));
        assert!(
            map_mysql_error("load", &server(1205, "HY000"))
                .message
                .as_str()
                .contains("error 1205")
        );
    }

    #[test]
    fn schema_lock_names_fit_mysqls_limit() {
        let name = schema_lock_name(&"t".repeat(63));
        assert_eq!(name.len(), "sessionkit_schema_".len() + 16);
        assert!(name.len() <= 64);
    }
}
