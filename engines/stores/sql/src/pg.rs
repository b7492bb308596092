//! The PostgreSQL backend: the synchronous `postgres` client over a small pool, with every
//! statement prepared once per connection.

use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::{Client, NoTls, Statement, error::SqlState};
use sessionkit_sdk::{ErrorKind, SessionRecord, StoreError, StoreResult, Timestamp};

use crate::{
    pool::{Manager, Pool, Pooled},
    schema::{CLEAR_BATCH, Dialect, Statements, create_index_statements, create_table_statement},
    time::{from_chrono, to_chrono},
    url::PostgresUrl,
};

/// Connections per store.
pub const POOL_SIZE: usize = 8;

/// How long a caller waits for a free pooled connection.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(15);

/// Maps every `postgres` error to the contract's error kinds; `context` says what was being
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
pub(crate) fn map_pg_error(context: &str, error: &postgres::Error) -> StoreError {
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

/// One pooled connection with the store's statements prepared on it.
pub(crate) struct PgConn {
    client: Client,
    st: Prepared,
}

struct Prepared {
    load: Statement,
    exists: Statement,
    insert: Statement,
    update: Statement,
    delete: Statement,
    clear_batch: Statement,
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
        let mut client = self
            .url
            .config()
            .connect(NoTls)
            .map_err(|e| map_pg_error(&format!("connect to {:?}", self.url), &e))?;
        let st = self
            .prepare(&mut client)
            .map_err(|e| map_pg_error("prepare", &e))?;
        Ok(PgConn { client, st })
    }
}

impl PgManager {
    fn prepare(&self, client: &mut Client) -> Result<Prepared, postgres::Error> {
        let sql = &self.sql;
        let mut account = |text: &str| -> Result<Option<Statement>, postgres::Error> {
            if self.account_column {
                client.prepare(text).map(Some)
            } else {
                Ok(None)
            }
        };
        let of_account = account(&sql.of_account)?;
        let delete_of_account = account(&sql.delete_of_account)?;
        let delete_of_account_keeping = account(&sql.delete_of_account_keeping)?;
        Ok(Prepared {
            load: client.prepare(&sql.load)?,
            exists: client.prepare(&sql.exists)?,
            insert: client.prepare(&sql.insert)?,
            update: client.prepare(&sql.update)?,
            delete: client.prepare(&sql.delete)?,
            clear_batch: client.prepare(&sql.clear_batch)?,
            of_account,
            delete_of_account,
            delete_of_account_keeping,
        })
    }
}

/// A store on one PostgreSQL database.
pub(crate) struct PgBackend {
    pool: Pool<PgManager>,
}

impl PgBackend {
    /// Creates the table and indexes if missing (under an advisory lock, since concurrent
    /// `CREATE … IF NOT EXISTS` can still collide in PostgreSQL's catalogs), checks the
    /// columns, and opens the pool.
    pub(crate) fn open(url: &PostgresUrl, table: &str, account_column: bool) -> StoreResult<Self> {
        let mut client = url
            .config()
            .connect(NoTls)
            .map_err(|e| map_pg_error(&format!("connect to {url:?}"), &e))?;
        let sql = Statements::new(Dialect::Postgres, table, account_column);
        let mut tx = client
            .transaction()
            .map_err(|e| map_pg_error("begin schema transaction", &e))?;
        let create = format!("create table {table:?}");
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&schema_lock_key(table)],
        )
        .map_err(|e| map_pg_error(&create, &e))?;
        tx.batch_execute(&create_table_statement(
            Dialect::Postgres,
            table,
            account_column,
        ))
        .map_err(|e| map_pg_error(&create, &e))?;
        tx.prepare(&sql.probe).map_err(|e| {
            let mut error = map_pg_error(&format!("check table {table:?}"), &e);
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
            tx.batch_execute(&statement)
                .map_err(|e| map_pg_error(&create, &e))?;
        }
        tx.commit().map_err(|e| map_pg_error(&create, &e))?;
        drop(client);
        let manager = PgManager {
            url: url.clone(),
            sql,
            account_column,
        };
        Ok(Self {
            pool: Pool::new(manager, POOL_SIZE, CHECKOUT_TIMEOUT),
        })
    }

    /// Runs `op` on a pooled connection; a connection-level failure closes it and every idle
    /// one (a restarted server kills them all), so the next call reconnects.
    fn with<T>(
        &self,
        context: &str,
        op: impl FnOnce(&mut PgConn) -> Result<T, postgres::Error>,
    ) -> StoreResult<T> {
        let mut conn: Pooled<'_, PgManager> = self.pool.get()?;
        op(&mut conn).map_err(|e| {
            let error = map_pg_error(context, &e);
            if error.kind == ErrorKind::Unavailable || conn.client.is_closed() {
                conn.mark_broken();
                self.pool.discard_idle();
            }
            error
        })
    }

    pub(crate) fn exists(&self, key: &str) -> StoreResult<bool> {
        self.with("exists", |c| {
            Ok(c.client.query_opt(&c.st.exists, &[&key])?.is_some())
        })
    }

    pub(crate) fn load(&self, key: &str, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        let now = to_chrono(now);
        self.with("load", |c| {
            let Some(row) = c.client.query_opt(&c.st.load, &[&key, &now])? else {
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
                c.client
                    .execute(&c.st.insert, &[&key, &data, &expire, &account])
            } else {
                c.client.execute(&c.st.insert, &[&key, &data, &expire])
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
                c.client
                    .execute(&c.st.update, &[&key, &data, &expire, &account])
            } else {
                c.client.execute(&c.st.update, &[&key, &data, &expire])
            }
        })
    }

    pub(crate) fn delete(&self, key: &str) -> StoreResult<()> {
        self.with("delete", |c| {
            c.client.execute(&c.st.delete, &[&key]).map(drop)
        })
    }

    /// Deletes expired rows [`CLEAR_BATCH`] at a time, each batch its own transaction.
    pub(crate) fn clear_expired(&self, now: Timestamp) -> StoreResult<u64> {
        let now = to_chrono(now);
        self.with("clear_expired", |c| {
            let mut total = 0;
            loop {
                let deleted = c.client.execute(&c.st.clear_batch, &[&now])?;
                total += deleted;
                if deleted < CLEAR_BATCH as u64 {
                    return Ok(total);
                }
            }
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
            c.client
                .query(statement, &[&account_id, &now])?
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
                Some(statement) => c.client.execute(statement, &[&account_id, &keep]),
                None => Ok(0),
            },
            None => match &c.st.delete_of_account {
                Some(statement) => c.client.execute(statement, &[&account_id]),
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
