//! The table, its indexes and every statement, written as Django's migration and ORM write
//! them, for one table name and dialect.

use md5::{Digest, Md5};

/// Which SQL dialect a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite: `?N` placeholders, `datetime` column, identifiers up to 200 characters in index
    /// names (Django's default when the backend sets no limit).
    Sqlite,
    /// PostgreSQL: `$N` placeholders, `timestamp with time zone`, 63-character identifiers.
    Postgres,
    /// MySQL/MariaDB: `:pN` named placeholders (the driver maps them), `datetime(6)` holding
    /// naive UTC, 64-character identifiers; `"identifiers"` need the connection's `ANSI_QUOTES`.
    Mysql,
}

impl Dialect {
    /// Django's `connection.ops.max_name_length() or 200`.
    const fn max_name_length(self) -> usize {
        match self {
            Self::Sqlite => 200,
            Self::Postgres => 63,
            Self::Mysql => 64,
        }
    }

    const fn expire_date_type(self) -> &'static str {
        match self {
            Self::Sqlite => "datetime",
            Self::Postgres => "timestamp with time zone",
            Self::Mysql => "datetime(6)",
        }
    }

    fn param(self, n: usize) -> String {
        match self {
            Self::Sqlite => format!("?{n}"),
            Self::Postgres => format!("${n}"),
            Self::Mysql => format!(":p{n}"),
        }
    }
}

/// The name Django gives an index (`BaseDatabaseSchemaEditor._create_index_name`): table,
/// columns and the first 8 hex digits of md5(table + columns), plus `suffix`, shortened the
/// way Django shortens it past the backend's identifier limit.
pub(crate) fn django_index_name(
    dialect: Dialect,
    table: &str,
    columns: &[&str],
    suffix: &str,
) -> String {
    let mut md5 = Md5::new();
    md5.update(table.as_bytes());
    for column in columns {
        md5.update(column.as_bytes());
    }
    let digest = md5.finalize();
    let mut hex = String::with_capacity(32);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    let mut hash_suffix = format!("{}{suffix}", &hex[..8]);
    let max = dialect.max_name_length();
    let joined = columns.join("_");
    let name = format!("{table}_{joined}_{hash_suffix}");
    if name.len() <= max {
        return name;
    }
    if hash_suffix.len() > max / 3 {
        hash_suffix.truncate(max / 3);
    }
    let other = (max - hash_suffix.len()) / 2 - 1;
    let mut name = format!(
        "{}_{}_{hash_suffix}",
        &table[..other.min(table.len())],
        &joined[..other.min(joined.len())]
    );
    if name.starts_with('_') || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.pop();
        name.insert(0, 'D');
    }
    name
}

/// `CREATE TABLE IF NOT EXISTS`: Django's `sqlmigrate sessions 0001` (plus the custom model's
/// `account_id` column), so a table made by Django's `migrate` is left untouched.
pub(crate) fn create_table_statement(
    dialect: Dialect,
    table: &str,
    account_column: bool,
) -> String {
    if dialect == Dialect::Mysql {
        // Django's MySQL DDL word for word (backticks, `longtext`).
        let account = if account_column {
            ", `account_id` integer NULL"
        } else {
            ""
        };
        return format!(
            "CREATE TABLE IF NOT EXISTS `{table}` (`session_key` varchar(40) NOT NULL PRIMARY KEY, `session_data` longtext NOT NULL, `expire_date` datetime(6) NOT NULL{account})"
        );
    }
    let account = if account_column {
        r#", "account_id" integer NULL"#
    } else {
        ""
    };
    format!(
        r#"CREATE TABLE IF NOT EXISTS "{table}" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" {} NOT NULL{account})"#,
        dialect.expire_date_type()
    )
}

/// `CREATE INDEX IF NOT EXISTS` for Django's indexes, under Django's names, so on a table
/// made by `migrate` each one is a no-op.
pub(crate) fn create_index_statements(
    dialect: Dialect,
    table: &str,
    account_column: bool,
) -> Vec<String> {
    let mut statements = Vec::new();
    if dialect == Dialect::Postgres {
        statements.push(format!(
            r#"CREATE INDEX IF NOT EXISTS "{}" ON "{table}" ("session_key" varchar_pattern_ops)"#,
            django_index_name(dialect, table, &["session_key"], "_like")
        ));
    }
    statements.push(format!(
        r#"CREATE INDEX IF NOT EXISTS "{}" ON "{table}" ("expire_date")"#,
        django_index_name(dialect, table, &["expire_date"], "")
    ));
    if account_column {
        statements.push(format!(
            r#"CREATE INDEX IF NOT EXISTS "{}" ON "{table}" ("account_id")"#,
            django_index_name(dialect, table, &["account_id"], "")
        ));
    }
    statements
}

/// Django's indexes on MySQL as (name, `CREATE INDEX`), Django's DDL word for word. MySQL has
/// no `CREATE INDEX IF NOT EXISTS` (MariaDB has), so the store creates the ones whose name the
/// table lacks.
pub(crate) fn mysql_index_statements(table: &str, account_column: bool) -> Vec<(String, String)> {
    let mut columns = vec!["expire_date"];
    if account_column {
        columns.push("account_id");
    }
    columns
        .into_iter()
        .map(|column| {
            let name = django_index_name(Dialect::Mysql, table, &[column], "");
            let statement = format!("CREATE INDEX `{name}` ON `{table}` (`{column}`)");
            (name, statement)
        })
        .collect()
}

/// Every statement a store runs, built once per store.
///
/// Parameter order: session key `1`; data `2`; expire date `3` (or `2` where it is the only
/// other one); account id `4` (or `1` in the account queries).
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    /// Columns the store needs, selected from zero rows: fails if the table lacks one.
    pub probe: String,
    /// Django's load: the live row (`expire_date > now`).
    pub load: String,
    /// Django's exists: any row, expired or not.
    pub exists: String,
    /// create: a plain INSERT (a taken key is a unique violation).
    pub insert: String,
    /// save: UPDATE by key, never an upsert.
    pub update: String,
    /// save_if_unchanged: the UPDATE of `update`, only where the live row still holds the
    /// expected data (parameters after `update`'s: the expected data, then now).
    pub update_if: String,
    /// delete by key.
    pub delete: String,
    /// One batch of `clear_expired` (`expire_date < now`, as Django), its size a parameter
    /// (see `clear.rs`). SQLite: `?1` now, `?2` the row count; the batch's changes count is
    /// what went. PostgreSQL: `$1` now, `$2` where the previous batch ended (expire dates below
    /// are gone already), `$3` the row count; it returns the rows that went and the latest
    /// `expire_date` among them.
    pub clear_batch: String,
    /// How many rows `clear_expired` would remove now (the total its progress counts to).
    pub count_expired: String,
    /// Live sessions of one account.
    pub of_account: String,
    /// Delete every session of one account.
    pub delete_of_account: String,
    /// Delete every session of one account but one key.
    pub delete_of_account_keeping: String,
}

impl Statements {
    /// The statements for `table` (already validated as an identifier) in `dialect`.
    pub(crate) fn new(dialect: Dialect, table: &str, account_column: bool) -> Self {
        let p = |n| dialect.param(n);
        let (account_col, account_param, account_set) = if account_column {
            (
                r#", "account_id""#.to_owned(),
                format!(", {}", p(4)),
                format!(r#", "account_id" = {}"#, p(4)),
            )
        } else {
            (String::new(), String::new(), String::new())
        };
        // SQLite deletes a batch by rowid, found through the expire_date index (deleted entries
        // leave its b-tree, so each batch starts where the last ended). PostgreSQL deletes by
        // ctid (a TID scan, whatever the planner thinks of the row count; the rows are locked
        // by the same statement, so their ctids hold), skips rows another transaction holds,
        // and starts each batch where the last ended: its index keeps the dead entries of
        // earlier batches until vacuum, and every batch would otherwise walk over them again.
        let clear_batch = match dialect {
            Dialect::Sqlite => format!(
                r#"DELETE FROM "{table}" WHERE rowid IN (SELECT rowid FROM "{table}" WHERE "expire_date" < ?1 LIMIT ?2)"#
            ),
            Dialect::Postgres => format!(
                r#"WITH "batch" AS (DELETE FROM "{table}" WHERE ctid = ANY(ARRAY(SELECT ctid FROM "{table}" WHERE "expire_date" < $1 AND "expire_date" >= $2 ORDER BY "expire_date" LIMIT $3 FOR UPDATE SKIP LOCKED)) RETURNING "expire_date") SELECT count(*), max("expire_date") FROM "batch""#
            ),
            // MySQL deletes with a LIMIT directly (it refuses LIMIT in an IN subquery), oldest
            // first along the expire_date index; each batch is its own autocommit statement.
            Dialect::Mysql => format!(
                r#"DELETE FROM "{table}" WHERE "expire_date" < :p1 ORDER BY "expire_date" LIMIT :p2"#
            ),
        };
        // MySQL compares text under the column's collation, usually case- and
        // trailing-space-insensitive: the conditional save compares the bytes.
        let data_is = |n: usize| match dialect {
            Dialect::Mysql => format!(
                r#"CAST("session_data" AS BINARY) = CAST({} AS BINARY)"#,
                p(n)
            ),
            Dialect::Sqlite | Dialect::Postgres => format!(r#""session_data" = {}"#, p(n)),
        };
        Self {
            probe: format!(
                r#"SELECT "session_key", "session_data", "expire_date"{account_col} FROM "{table}" WHERE 1 = 0"#
            ),
            load: format!(
                r#"SELECT "session_data", "expire_date" FROM "{table}" WHERE "session_key" = {} AND "expire_date" > {}"#,
                p(1),
                p(2)
            ),
            exists: format!(
                r#"SELECT 1 FROM "{table}" WHERE "session_key" = {} LIMIT 1"#,
                p(1)
            ),
            insert: format!(
                r#"INSERT INTO "{table}" ("session_key", "session_data", "expire_date"{account_col}) VALUES ({}, {}, {}{account_param})"#,
                p(1),
                p(2),
                p(3)
            ),
            update: format!(
                r#"UPDATE "{table}" SET "session_data" = {}, "expire_date" = {}{account_set} WHERE "session_key" = {}"#,
                p(2),
                p(3),
                p(1)
            ),
            update_if: {
                let next = if account_column { 5 } else { 4 };
                format!(
                    r#"UPDATE "{table}" SET "session_data" = {}, "expire_date" = {}{account_set} WHERE "session_key" = {} AND {} AND "expire_date" > {}"#,
                    p(2),
                    p(3),
                    p(1),
                    data_is(next),
                    p(next + 1)
                )
            },
            delete: format!(r#"DELETE FROM "{table}" WHERE "session_key" = {}"#, p(1)),
            clear_batch,
            count_expired: format!(
                r#"SELECT count(*) FROM "{table}" WHERE "expire_date" < {}"#,
                p(1)
            ),
            of_account: format!(
                r#"SELECT "session_key", "session_data", "expire_date" FROM "{table}" WHERE "account_id" = {} AND "expire_date" > {} ORDER BY "expire_date" DESC, "session_key""#,
                p(1),
                p(2)
            ),
            delete_of_account: format!(r#"DELETE FROM "{table}" WHERE "account_id" = {}"#, p(1)),
            delete_of_account_keeping: format!(
                r#"DELETE FROM "{table}" WHERE "account_id" = {} AND "session_key" <> {}"#,
                p(1),
                p(2)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_match_djangos_migration() {
        // From `sqlmigrate sessions 0001` (Django 5.2.19) on SQLite and PostgreSQL.
        assert_eq!(
            django_index_name(Dialect::Sqlite, "django_session", &["expire_date"], ""),
            "django_session_expire_date_a5c62663"
        );
        assert_eq!(
            django_index_name(
                Dialect::Postgres,
                "django_session",
                &["session_key"],
                "_like"
            ),
            "django_session_session_key_c0390e0f_like"
        );
        // From `sqlmigrate` of Django's documented CustomSession model in an app `acct`.
        assert_eq!(
            django_index_name(Dialect::Postgres, "acct_customsession", &["account_id"], ""),
            "acct_customsession_account_id_089004f6"
        );
        assert_eq!(
            django_index_name(Dialect::Sqlite, "acct_customsession", &["expire_date"], ""),
            "acct_customsession_expire_date_5c8cc0aa"
        );
        assert_eq!(
            django_index_name(
                Dialect::Postgres,
                "acct_customsession",
                &["session_key"],
                "_like"
            ),
            "acct_customsession_session_key_580c2e55_like"
        );
    }

    #[test]
    fn long_index_names_are_shortened_like_django() {
        let table = "t".repeat(63);
        let name = django_index_name(Dialect::Postgres, &table, &["session_key"], "_like");
        assert!(name.len() <= 63, "{name}");
        // Django: hash_suffix "xxxxxxxx_like" (13) fits in 63/3; other = (63-13)//2-1 = 24.
        assert!(
            name.starts_with(&format!("{}_session_key_", "t".repeat(24))),
            "{name}"
        );
        assert!(name.ends_with("_like"));
    }

    #[test]
    fn default_table_ddl_is_djangos() {
        let all = |dialect| {
            let mut all = vec![create_table_statement(dialect, "django_session", false)];
            all.extend(create_index_statements(dialect, "django_session", false));
            all
        };
        let sqlite = all(Dialect::Sqlite);
        assert_eq!(
            sqlite,
            [
                r#"CREATE TABLE IF NOT EXISTS "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" datetime NOT NULL)"#,
                r#"CREATE INDEX IF NOT EXISTS "django_session_expire_date_a5c62663" ON "django_session" ("expire_date")"#,
            ]
        );
        let pg = all(Dialect::Postgres);
        assert_eq!(
            pg,
            [
                r#"CREATE TABLE IF NOT EXISTS "django_session" ("session_key" varchar(40) NOT NULL PRIMARY KEY, "session_data" text NOT NULL, "expire_date" timestamp with time zone NOT NULL)"#,
                r#"CREATE INDEX IF NOT EXISTS "django_session_session_key_c0390e0f_like" ON "django_session" ("session_key" varchar_pattern_ops)"#,
                r#"CREATE INDEX IF NOT EXISTS "django_session_expire_date_a5c62663" ON "django_session" ("expire_date")"#,
            ]
        );
    }

    #[test]
    fn mysql_ddl_is_djangos() {
        // From `sqlmigrate sessions 0001` and `sqlmigrate acct 0001` (Django 5.2.20, MariaDB).
        assert_eq!(
            create_table_statement(Dialect::Mysql, "django_session", false),
            "CREATE TABLE IF NOT EXISTS `django_session` (`session_key` varchar(40) NOT NULL PRIMARY KEY, `session_data` longtext NOT NULL, `expire_date` datetime(6) NOT NULL)"
        );
        assert_eq!(
            mysql_index_statements("django_session", false),
            [(
                "django_session_expire_date_a5c62663".to_owned(),
                "CREATE INDEX `django_session_expire_date_a5c62663` ON `django_session` (`expire_date`)".to_owned()
            )]
        );
        assert_eq!(
            create_table_statement(Dialect::Mysql, "acct_customsession", true),
            "CREATE TABLE IF NOT EXISTS `acct_customsession` (`session_key` varchar(40) NOT NULL PRIMARY KEY, `session_data` longtext NOT NULL, `expire_date` datetime(6) NOT NULL, `account_id` integer NULL)"
        );
        let indexes: Vec<String> = mysql_index_statements("acct_customsession", true)
            .into_iter()
            .map(|(_, statement)| statement)
            .collect();
        assert_eq!(
            indexes,
            [
                "CREATE INDEX `acct_customsession_expire_date_5c8cc0aa` ON `acct_customsession` (`expire_date`)",
                "CREATE INDEX `acct_customsession_account_id_089004f6` ON `acct_customsession` (`account_id`)",
            ]
        );
    }

    #[test]
    fn mysql_statements_name_their_parameters_and_compare_data_as_bytes() {
        let s = Statements::new(Dialect::Mysql, "t", true);
        assert_eq!(
            s.update_if,
            r#"UPDATE "t" SET "session_data" = :p2, "expire_date" = :p3, "account_id" = :p4 WHERE "session_key" = :p1 AND CAST("session_data" AS BINARY) = CAST(:p5 AS BINARY) AND "expire_date" > :p6"#
        );
        assert_eq!(
            s.clear_batch,
            r#"DELETE FROM "t" WHERE "expire_date" < :p1 ORDER BY "expire_date" LIMIT :p2"#
        );
    }

    #[test]
    fn account_column_ddl_is_djangos_custom_session() {
        let table = create_table_statement(Dialect::Sqlite, "acct_customsession", true);
        assert!(table.ends_with(r#""expire_date" datetime NOT NULL, "account_id" integer NULL)"#));
        assert_eq!(
            create_index_statements(Dialect::Sqlite, "acct_customsession", true)[1],
            r#"CREATE INDEX IF NOT EXISTS "acct_customsession_account_id_089004f6" ON "acct_customsession" ("account_id")"#
        );
    }

    #[test]
    fn statements_use_the_dialects_placeholders() {
        let s = Statements::new(Dialect::Postgres, "t", true);
        assert_eq!(
            s.update,
            r#"UPDATE "t" SET "session_data" = $2, "expire_date" = $3, "account_id" = $4 WHERE "session_key" = $1"#
        );
        let s = Statements::new(Dialect::Sqlite, "t", false);
        assert_eq!(
            s.load,
            r#"SELECT "session_data", "expire_date" FROM "t" WHERE "session_key" = ?1 AND "expire_date" > ?2"#
        );
        assert_eq!(
            s.insert,
            r#"INSERT INTO "t" ("session_key", "session_data", "expire_date") VALUES (?1, ?2, ?3)"#
        );
    }
}
