//! The local broker's sqlite store, made right before the broker serves: tansu 0.6.0's
//! schema lacks indexes that its per-record statements need (`tansu_store.sql`), so a store
//! that has served for a while slows every fetch down (docs/broker.md). [`prepare`] creates
//! them idempotently: on an existing store before the broker starts, and on a fresh one as
//! soon as the broker has created its schema (tansu applies its DDL before it listens).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::IoError;

/// The store's file name inside the broker's directory (`--storage-engine sqlite://tansu.db`).
pub const DATABASE_FILE: &str = "tansu.db";

/// The statements [`prepare`] runs: `create index if not exists`, one per finding.
pub const STORE_SQL: &str = include_str!("tansu_store.sql");

/// What [`prepare`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// No store yet, or the broker has not created its schema: nothing to do until it has.
    NoSchema,
    /// The indexes are in place; `created` names those this call made.
    Ready { created: Vec<String> },
}

/// Creates the indexes of [`STORE_SQL`] in the store at `db` when they are missing, waiting
/// up to 30 s for the broker's own writes (sqlite's busy timeout; tansu keeps the store in
/// WAL mode, so its readers are not blocked).
pub fn prepare(db: &Path) -> Result<Prepared, IoError> {
    let failed = |reason: String| IoError::LocalBroker {
        dir: db.display().to_string(),
        reason,
    };
    if !db.exists() {
        return Ok(Prepared::NoSchema);
    }
    let connection = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| failed(format!("open the store: {e}")))?;
    connection
        .busy_timeout(Duration::from_secs(30))
        .map_err(|e| failed(format!("busy timeout: {e}")))?;
    let has_schema: bool = connection
        .query_row(
            "select count(*) > 0 from sqlite_master where type = 'table' and name = 'header'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| failed(format!("read the schema: {e}")))?;
    if !has_schema {
        return Ok(Prepared::NoSchema);
    }
    let before = index_names(&connection).map_err(|e| failed(format!("read the schema: {e}")))?;
    connection
        .execute_batch(STORE_SQL)
        .map_err(|e| failed(format!("create the missing indexes: {e}")))?;
    let after = index_names(&connection).map_err(|e| failed(format!("read the schema: {e}")))?;
    Ok(Prepared::Ready {
        created: after.into_iter().filter(|n| !before.contains(n)).collect(),
    })
}

fn index_names(connection: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement =
        connection.prepare("select name from sqlite_master where type = 'index' order by name")?;
    let names = statement.query_map([], |row| row.get(0))?;
    names.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables tansu 0.6.0 makes (`ddl/*.sql`) that our indexes are on, with the columns
    /// the indexes use.
    const TANSU_TABLES: &str = "create table header (topition integer, offset_id integer, \
        k blob, v blob); \
        create table watermark (id integer primary key, topition integer, low integer, high integer); \
        create table txn_topition (id integer primary key, txn_detail integer, topition integer); \
        create table txn (id integer primary key, cluster integer, name text); \
        create table consumer_offset (id integer primary key, consumer_group integer, topition integer); \
        create table producer_detail (id integer primary key, producer_epoch integer, topition integer);";

    fn plan(connection: &Connection, sql: &str) -> String {
        let mut statement = connection
            .prepare(&format!("explain query plan {sql}"))
            .unwrap();
        let rows = statement
            .query_map([], |row| row.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn a_missing_store_or_schema_is_left_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DATABASE_FILE);
        assert_eq!(prepare(&db).unwrap(), Prepared::NoSchema);
        Connection::open(&db).unwrap();
        assert_eq!(prepare(&db).unwrap(), Prepared::NoSchema);
    }

    #[test]
    fn header_lookups_by_record_search_an_index_once_prepared() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DATABASE_FILE);
        let connection = Connection::open(&db).unwrap();
        connection.execute_batch(TANSU_TABLES).unwrap();
        let lookup = "select k, v from header where topition = 1 and offset_id = 7";
        assert!(plan(&connection, lookup).starts_with("SCAN header"));

        let Prepared::Ready { created } = prepare(&db).unwrap() else {
            panic!("the schema is there");
        };
        assert_eq!(
            created,
            [
                "lambda_consumer_offset_topition",
                "lambda_header_topition_offset",
                "lambda_producer_detail_topition",
                "lambda_txn_name",
                "lambda_txn_topition_topition",
                "lambda_watermark_topition",
            ]
        );
        let connection = Connection::open(&db).unwrap();
        assert!(
            plan(&connection, lookup).contains("USING INDEX lambda_header_topition_offset"),
            "{}",
            plan(&connection, lookup)
        );
        // Idempotent: a second start creates nothing.
        assert_eq!(prepare(&db).unwrap(), Prepared::Ready { created: vec![] });
    }

    #[test]
    fn a_store_that_is_not_sqlite_is_an_error_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DATABASE_FILE);
        std::fs::write(
            &db,
            b"not a database, just bytes that are long enough to matter",
        )
        .unwrap();
        let err = prepare(&db).unwrap_err().to_string();
        assert!(err.contains(DATABASE_FILE), "{err}");
    }
}
