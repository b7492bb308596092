//! The PostgreSQL backend: `tokio-postgres` driven by a small runtime per connection, over a
//! small pool, with every statement prepared once per connection and every call bounded.
//!
//! Why not the synchronous `postgres` crate: it has no per-call timeout, and neither
//! `connect_timeout` nor `TCP_USER_TIMEOUT` bounds a call to a server that is alive but
//! silent (its kernel acknowledges every byte), so such a server held requests for minutes.
//! Here each connection owns a current-thread runtime (as the sync crate does inside) and each
//! call runs under `tokio::time::timeout_at`, so the bound holds whatever the server does;
//! a call cut by it leaves its connection mid-protocol, so that connection is closed, never
//! returned to the pool. Socket read timeouts were the other option: the async driver keeps
//! no blocking socket to put them on, and a per-read timeout would bound each read, not the
//! call (a server trickling bytes could still hold it).

use std::{
    future::{Future, poll_fn},
    pin::pin,
    task::Poll,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sessionkit_sdk::{ErrorKind, Progress, SessionRecord, StoreError, StoreResult, Timestamp};
use tokio::runtime::Runtime;
use tokio_postgres::{
    Client, Connection, NoTls, Socket, Statement, error::SqlState, tls::NoTlsStream,
};

use crate::{
    clear::{self, Batch, ClearBatches},
    pool::{Manager, Pool, Pooled},
    schema::{Dialect, Statements, create_index_statements, create_table_statement},
    time::{from_chrono, to_chrono},
    url::PostgresUrl,
};

/// Connections per store.
pub(crate) const POOL_SIZE: usize = 8;

/// Maps every `tokio-postgres` error to the contract's error kinds; `context` says what was being
/// done.
///
/// Server errors go by SQLSTATE: `23505` unique violation → `AlreadyExists`; connection
/// exceptions (`08…`), operator intervention (`57…`: shutdown, query cancelled by
/// `statement_timeout`), insufficient resources (`53…`, e.g. too many connections),
/// serialization failure and deadlock (`40…`), lock not available (`55P03`) and a read-only
/// server (`25006`, a standby after failover) → `Unavailable`; bad credentials (`28…`), a
/// missing database (`3D000`), missing privileges (`42501`) or a missing table or column
/// (`42P01`, `42703`) → `Config`; the rest → `Other`.
///
/// Client-side errors carry no SQLSTATE and the crate keeps their kind private, so they are
/// told apart by the crate's fixed `Display` text: a closed connection, I/O, connect failure
/// or timeout → `Unavailable`; authentication, TLS or configuration → `Config`; a column
/// that does not decode → `Corrupted`.
pub(crate) fn map_pg_error(context: &str, error: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        let class = &code.code()[..2];
        let kind = if *code == SqlState::UNIQUE_VIOLATION {
            ErrorKind::AlreadyExists
        } else if matches!(class, "08" | "57" | "53" | "40")
            || *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION
        {
            ErrorKind::Unavailable
        } else if matches!(class, "28" | "3D")
            || *code == SqlState::INSUFFICIENT_PRIVILEGE
            || *code == SqlState::UNDEFINED_TABLE
            || *code == SqlState::UNDEFINED_COLUMN
        {
            ErrorKind::Config
        } else {
            ErrorKind::Other
        };
        return StoreError::new(
            kind,
            format!(
                "PostgreSQL {context}: {} (SQLSTATE {})",
                db.message(),
                code.code()
            ),
        );
    }
    let text = error.to_string();
    let kind = if error.is_closed()
        || [
            "error communicating with the server",
            "error connecting to server",
            "timeout waiting for server",
            "unexpected message from server",
            "error parsing response from server",
            "error encoding message to server",
        ]
        .iter()
        .any(|prefix| text.starts_with(prefix))
    {
        ErrorKind::Unavailable
    } else if [
        "authentication error",
        "error performing TLS handshake",
        "invalid configuration",
        "invalid connection string",
    ]
    .iter()
    .any(|prefix| text.starts_with(prefix))
    {
        ErrorKind::Config
    } else if text.starts_with("error deserializing column") {
        ErrorKind::Corrupted
    } else {
        ErrorKind::Other
    };
    let cause = std::error::Error::source(error)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    StoreError::new(kind, format!("PostgreSQL {context}: {text}{cause}"))
}

/// Whether the connection that gave `error` may be used again: not after a client-side
/// failure (I/O, protocol, closed) or a connection-level server error (`08…`, `57P…`
/// shutdown); yes after a statement error such as a unique violation or a statement or lock
/// timeout, which leave the session in step.
fn connection_survives(error: &tokio_postgres::Error) -> bool {
    match error.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            !error.is_closed() && !code.starts_with("08") && !code.starts_with("57P")
        }
        None => false,
    }
}

/// Why a call on a connection failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The driver or the server reported an error.
    Pg(tokio_postgres::Error),
    /// The call's deadline passed first (the server is slow, blocked or silent).
    TimedOut,
    /// The connection had already ended (the server closed it) with the request unanswered.
    Closed,
    /// The connection's runtime could not be made (out of threads or file descriptors).
    Runtime(std::io::Error),
}

impl From<tokio_postgres::Error> for CallError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Pg(error)
    }
}

/// The I/O side of one connection: its runtime, the protocol task's state, and the deadline
/// of the call in progress.
pub(crate) struct Driver {
    runtime: Runtime,
    connection: Connection<Socket, NoTlsStream>,
    deadline: Instant,
}

impl Driver {
    /// Runs `request` (a future on this connection's client) to completion while driving the
    /// connection's I/O, giving up at the deadline.
    fn run<T>(
        &mut self,
        request: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, CallError> {
        let connection = &mut self.connection;
        let driven = async {
            let mut request = pin!(request);
            poll_fn(|cx| {
                // Move the connection's bytes first; notices and notifications are dropped, and
                // a connection error ends the call (the request would only wait).
                let mut closed = false;
                loop {
                    match connection.poll_message(cx) {
                        Poll::Ready(Some(Ok(_))) => {}
                        Poll::Ready(Some(Err(error))) => {
                            return Poll::Ready(Err(CallError::Pg(error)));
                        }
                        Poll::Ready(None) => {
                            closed = true;
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
                match request.as_mut().poll(cx) {
                    Poll::Ready(result) => Poll::Ready(result.map_err(CallError::Pg)),
                    // Nothing will ever answer a request on a finished connection.
                    Poll::Pending if closed => Poll::Ready(Err(CallError::Closed)),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await
        };
        let deadline = tokio::time::Instant::from_std(self.deadline);
        match self
            .runtime
            .block_on(async { tokio::time::timeout_at(deadline, driven).await })
        {
            Ok(result) => result,
            Err(_elapsed) => Err(CallError::TimedOut),
        }
    }
}

/// Opens one connection that is connected and authenticated by `deadline`.
fn connect_raw(url: &PostgresUrl, deadline: Instant) -> Result<(Client, Driver), CallError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(CallError::Runtime)?;
    let tokio_deadline = tokio::time::Instant::from_std(deadline);
    let connected = runtime.block_on(async {
        tokio::time::timeout_at(tokio_deadline, url.config().connect(NoTls)).await
    });
    let (client, connection) = match connected {
        Ok(Ok(pair)) => pair,
        Ok(Err(error)) => return Err(CallError::Pg(error)),
        Err(_elapsed) => return Err(CallError::TimedOut),
    };
    Ok((
        client,
        Driver {
            runtime,
            connection,
            deadline,
        },
    ))
}

/// The server-side `statement_timeout` and `lock_timeout` for a call bound: 4/5 of it (at
/// least 1 ms, since 0 switches them off), so the server reports a blocked statement, keeping
/// the connection usable, before the client-side bound has to cut the connection.
fn server_timeout_millis(call_timeout: Duration) -> u128 {
    (call_timeout.as_millis() * 4 / 5).max(1)
}

/// The `SET`s that give a new connection its server-side timeouts, leaving out any the URL's
/// `options` already set (`options=-c statement_timeout=…`).
fn session_settings(url: &PostgresUrl) -> String {
    let millis = server_timeout_millis(url.call_timeout());
    let options = url.config().get_options().unwrap_or_default();
    ["statement_timeout", "lock_timeout"]
        .into_iter()
        .filter(|name| !options.contains(name))
        .map(|name| format!("SET {name} = {millis};"))
        .collect()
}

/// One pooled connection with the store's statements prepared on it.
pub(crate) struct PgConn {
    client: Client,
    st: Prepared,
    driver: Driver,
}

struct Prepared {
    load: Statement,
    exists: Statement,
    insert: Statement,
    update: Statement,
    update_if: Statement,
    delete: Statement,
    count_expired: Statement,
    of_account: Option<Statement>,
    delete_of_account: Option<Statement>,
    delete_of_account_keeping: Option<Statement>,
}
/// Opens connections to one database and prepares the statements on each.
pub(crate) struct PgManager {
    url: PostgresUrl,
    sql: Statements,
    account_column: bool,
}

impl Manager for PgManager {
    type Conn = PgConn;

    fn connect(&self) -> StoreResult<PgConn> {
        self.connect_until(Instant::now() + self.url.call_timeout())
    }

    fn connect_until(&self, deadline: Instant) -> StoreResult<PgConn> {
        let context = format!("connect to {:?}", self.url);
        let (client, mut driver) =
            connect_raw(&self.url, deadline).map_err(|e| self.map(&context, e))?;
        let settings = session_settings(&self.url);
        if !settings.is_empty() {
            driver
                .run(client.batch_execute(&settings))
                .map_err(|e| self.map(&context, e))?;
        }
        let st = self
            .prepare(&client, &mut driver)
            .map_err(|e| self.map("prepare", e))?;
        Ok(PgConn { client, st, driver })
    }
}

impl PgManager {
    fn prepare(&self, client: &Client, driver: &mut Driver) -> Result<Prepared, CallError> {
        let sql = &self.sql;
        let mut prepare = |text: &str| driver.run(client.prepare(text));
        let mut account = |text: &str| -> Result<Option<Statement>, CallError> {
            if self.account_column {
                prepare(text).map(Some)
            } else {
                Ok(None)
            }
        };
        let of_account = account(&sql.of_account)?;
        let delete_of_account = account(&sql.delete_of_account)?;
        let delete_of_account_keeping = account(&sql.delete_of_account_keeping)?;
        Ok(Prepared {
            load: prepare(&sql.load)?,
            exists: prepare(&sql.exists)?,
            insert: prepare(&sql.insert)?,
            update: prepare(&sql.update)?,
            update_if: prepare(&sql.update_if)?,
            delete: prepare(&sql.delete)?,
            count_expired: prepare(&sql.count_expired)?,
            of_account,
            delete_of_account,
            delete_of_account_keeping,
        })
    }

    /// A failed call as the contract's error; a timeout names the bound and how to change it.
    fn map(&self, context: &str, error: CallError) -> StoreError {
        match error {
            CallError::Pg(error) => map_pg_error(context, &error),
            CallError::TimedOut => StoreError::unavailable(format!(
                "PostgreSQL {context}: no answer within {:?} (the call bound; set call_timeout \
                 in the database URL to change it), connection closed",
                self.url.call_timeout()
            )),
            CallError::Closed => StoreError::unavailable(format!(
                "PostgreSQL {context}: the server closed the connection"
            )),
            CallError::Runtime(error) => StoreError::unavailable(format!(
                "PostgreSQL {context}: cannot start the connection's I/O runtime: {error}"
            )),
        }
    }
}

/// A store on one PostgreSQL database.
pub(crate) struct PgBackend {
    pool: Pool<PgManager>,
}

impl PgBackend {
    /// Creates the table and indexes if missing (under an advisory lock, since concurrent
    /// `CREATE … IF NOT EXISTS` can still collide in PostgreSQL's catalogs), checks the
    /// columns, and opens the pool. The whole set-up is one call: it ends within the URL's
    /// `call_timeout`.
    pub(crate) fn open(url: &PostgresUrl, table: &str, account_column: bool) -> StoreResult<Self> {
        let manager = PgManager {
            url: url.clone(),
            sql: Statements::new(Dialect::Postgres, table, account_column),
            account_column,
        };
        let deadline = Instant::now() + url.call_timeout();
        let create = format!("create table {table:?}");
        let connect = format!("connect to {url:?}");
        let (mut client, mut driver) =
            connect_raw(url, deadline).map_err(|e| manager.map(&connect, e))?;
        let settings = session_settings(url);
        if !settings.is_empty() {
            driver
                .run(client.batch_execute(&settings))
                .map_err(|e| manager.map(&connect, e))?;
        }
        let tx = driver
            .run(client.transaction())
            .map_err(|e| manager.map("begin schema transaction", e))?;
        driver
            .run(tx.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[&schema_lock_key(table)],
            ))
            .map_err(|e| manager.map(&create, e))?;
        driver
            .run(tx.batch_execute(&create_table_statement(
                Dialect::Postgres,
                table,
                account_column,
            )))
            .map_err(|e| manager.map(&create, e))?;
        driver.run(tx.prepare(&manager.sql.probe)).map_err(|e| {
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
        for statement in create_index_statements(Dialect::Postgres, table, account_column) {
            driver
                .run(tx.batch_execute(&statement))
                .map_err(|e| manager.map(&create, e))?;
        }
        driver
            .run(tx.commit())
            .map_err(|e| manager.map(&create, e))?;
        drop(client);
        Ok(Self {
            // A call's deadline bounds its checkout; this only serves `Pool::get`, unused here.
            pool: Pool::new(manager, POOL_SIZE, url.call_timeout()),
        })
    }

    /// Runs `op` on a pooled connection under one deadline for checkout, connect and
    /// statements. A connection whose call timed out or failed below the SQL level is closed
    /// (never returned to the pool), and so is every idle one (a restarted or hung server
    /// affects them all), so the next call reconnects.
    fn with<T>(
        &self,
        context: &str,
        op: impl FnOnce(&mut PgConn) -> Result<T, CallError>,
    ) -> StoreResult<T> {
        let manager = self.pool.manager();
        let deadline = Instant::now() + manager.url.call_timeout();
        let mut conn: Pooled<'_, PgManager> = self.pool.get_until(deadline)?;
        conn.driver.deadline = deadline;
        op(&mut conn).map_err(|e| {
            let survives = matches!(&e, CallError::Pg(error) if connection_survives(error));
            if !survives {
                conn.mark_broken();
                self.pool.discard_idle();
            }
            manager.map(context, e)
        })
    }

    pub(crate) fn exists(&self, key: &str) -> StoreResult<bool> {
        self.with("exists", |c| {
            Ok(c.driver
                .run(c.client.query_opt(&c.st.exists, &[&key]))?
                .is_some())
        })
    }

    pub(crate) fn load(&self, key: &str, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        let now = to_chrono(now);
        self.with("load", |c| {
            let Some(row) = c
                .driver
                .run(c.client.query_opt(&c.st.load, &[&key, &now]))?
            else {
                return Ok(None);
            };
            Ok(Some(SessionRecord {
                session_key: key.into(),
                session_data: row.try_get::<_, String>(0)?.into(),
                expire_date: from_chrono(row.try_get::<_, DateTime<Utc>>(1)?),
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
        let expire = to_chrono(record.expire_date);
        self.with("create", |c| {
            if account_column {
                c.driver.run(
                    c.client
                        .execute(&c.st.insert, &[&key, &data, &expire, &account]),
                )
            } else {
                c.driver
                    .run(c.client.execute(&c.st.insert, &[&key, &data, &expire]))
            }
            .map(drop)
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
        let expire = to_chrono(record.expire_date);
        self.with("save", |c| {
            if account_column {
                c.driver.run(
                    c.client
                        .execute(&c.st.update, &[&key, &data, &expire, &account]),
                )
            } else {
                c.driver
                    .run(c.client.execute(&c.st.update, &[&key, &data, &expire]))
            }
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
        let expire = to_chrono(record.expire_date);
        let now = to_chrono(now);
        self.with("save_if_unchanged", |c| {
            if account_column {
                c.driver.run(c.client.execute(
                    &c.st.update_if,
                    &[&key, &data, &expire, &account, &expected, &now],
                ))
            } else {
                c.driver.run(
                    c.client
                        .execute(&c.st.update_if, &[&key, &data, &expire, &expected, &now]),
                )
            }
        })
    }

    pub(crate) fn delete(&self, key: &str) -> StoreResult<()> {
        self.with("delete", |c| {
            c.driver
                .run(c.client.execute(&c.st.delete, &[&key]))
                .map(drop)
        })
    }

    /// Deletes expired rows batch after batch (sized by `batches`), each its own statement and
    /// transaction under its own call bound, so a sweep of millions of rows is as long as it
    /// needs while no statement is; rows another transaction holds are skipped (see `clear.rs`).
    /// Reports to `progress` when the host watches.
    pub(crate) fn clear_expired(
        &self,
        now: Timestamp,
        batches: &ClearBatches,
        progress: Option<&Progress>,
    ) -> StoreResult<u64> {
        let now = to_chrono(now);
        let total = match progress {
            Some(progress) => {
                let counted: StoreResult<i64> = self.with("clear_expired", |c| {
                    Ok(c.driver
                        .run(c.client.query_one(&c.st.count_expired, &[&now]))?
                        .try_get(0)?)
                });
                let total = clear::total_or_unknown(counted);
                progress.report(0, total);
                Some((progress, total))
            }
            None => None,
        };
        // Below every date PostgreSQL stores; each batch moves it to where it ended.
        let mut from = DateTime::<Utc>::from_timestamp(-62_135_596_800, 0).unwrap_or(now);
        // Sent as text, not prepared: an unnamed statement is planned with its parameters,
        // while a prepared one may switch to a generic plan that guesses the row count.
        let sql = self.pool.manager().sql.clear_batch.as_str();
        clear::run(batches, total, clear::no_pause, |size| {
            let limit = size as i64;
            let (deleted, last) = self.with("clear_expired", |c| {
                let row = c
                    .driver
                    .run(c.client.query_one(sql, &[&now, &from, &limit]))?;
                Ok((
                    row.try_get::<_, i64>(0)?,
                    row.try_get::<_, Option<DateTime<Utc>>>(1)?,
                ))
            })?;
            if let Some(last) = last {
                from = last;
            }
            Ok(Batch {
                deleted: u64::try_from(deleted).unwrap_or(0),
            })
        })
    }

    pub(crate) fn sessions_of_account(
        &self,
        account_id: i32,
        now: Timestamp,
    ) -> StoreResult<Vec<SessionRecord>> {
        let now = to_chrono(now);
        self.with("sessions_of_account", |c| {
            let Some(statement) = &c.st.of_account else {
                return Ok(Vec::new());
            };
            c.driver
                .run(c.client.query(statement, &[&account_id, &now]))?
                .iter()
                .map(|row| {
                    Ok(SessionRecord {
                        session_key: row.try_get::<_, String>(0)?.into(),
                        session_data: row.try_get::<_, String>(1)?.into(),
                        expire_date: from_chrono(row.try_get::<_, DateTime<Utc>>(2)?),
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
        self.with("delete_sessions_of_account", |c| match keep {
            Some(keep) => match &c.st.delete_of_account_keeping {
                Some(statement) => c
                    .driver
                    .run(c.client.execute(statement, &[&account_id, &keep])),
                None => Ok(0),
            },
            None => match &c.st.delete_of_account {
                Some(statement) => c.driver.run(c.client.execute(statement, &[&account_id])),
                None => Ok(0),
            },
        })
    }
}

/// The advisory-lock key that serialises schema creation for one table: the first 8 bytes
/// of md5("sessionkit schema " + table).
fn schema_lock_key(table: &str) -> i64 {
    use md5::{Digest, Md5};
    let digest = Md5::digest(format!("sessionkit schema {table}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}
