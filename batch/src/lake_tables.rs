//! The lake's Delta tables and what each holds: `events` (validated events, by event-time
//! hour), `dead-letter` (rejected records, by the hour they were received) and
//! `cdc/<table>` (each CDC table's raw changes, by source-time hour). Every one is
//! hour-partitioned ([`lambda_io::delta`]) and created by its first writer.
//!
//! [`LakeTables`] keeps the tables a process writes open, so a writer does not reload a
//! table's log for every flush (a refresh reads only the commits made since).

use std::collections::HashMap;

use arrow::datatypes::SchemaRef;
use lambda_io::delta::{
    schema::hour_partitioned, Table, DATE_COLUMN, EVENT_TYPE_COLUMN, HOUR_COLUMN,
};
use lambda_io::Lake;
use shared_logic::cdc::CdcTable;

use crate::error::BatchError;

/// One of the lake's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LakeTable {
    Events,
    DeadLetter,
    Cdc(CdcTable),
}

impl LakeTable {
    /// Every table the lake can hold.
    pub const ALL: [LakeTable; 5] = [
        LakeTable::Events,
        LakeTable::DeadLetter,
        LakeTable::Cdc(CdcTable::Orders),
        LakeTable::Cdc(CdcTable::Products),
        LakeTable::Cdc(CdcTable::Users),
    ];

    /// Its directory below the lake's root.
    pub fn dir(self) -> String {
        match self {
            LakeTable::Events => lambda_io::lake::EVENTS_TABLE.to_string(),
            LakeTable::DeadLetter => "dead-letter".to_string(),
            LakeTable::Cdc(t) => crate::lake_schemas::table_dir(t),
        }
    }

    /// The Arrow schema of its files.
    pub fn schema(self) -> SchemaRef {
        match self {
            LakeTable::Events => shared_logic::schema::event_schema(),
            LakeTable::DeadLetter => crate::lake_schemas::dead_letter_schema(),
            LakeTable::Cdc(_) => crate::lake_schemas::change_schema(),
        }
    }

    /// The columns its files may lack (written before they were added; read as null).
    pub fn added_columns(self) -> &'static [&'static str] {
        match self {
            LakeTable::Events => &shared_logic::schema::ADDED_COLUMNS,
            LakeTable::DeadLetter => &crate::lake_schemas::DEAD_LETTER_ADDED_COLUMNS,
            LakeTable::Cdc(_) => &[],
        }
    }

    /// Its Delta table name.
    pub fn name(self) -> String {
        self.dir().replace('/', "_")
    }

    /// Its location in `lake`.
    pub fn location(self, lake: &Lake) -> Lake {
        lake.child(&self.dir())
    }

    /// The partition columns it is created with: every table by hour, the events by
    /// event type below that (tables created before keep theirs until `lambda lake
    /// migrate` repartitions them).
    pub fn partition_columns(self) -> &'static [&'static str] {
        match self {
            LakeTable::Events => &[DATE_COLUMN, HOUR_COLUMN, EVENT_TYPE_COLUMN],
            LakeTable::DeadLetter | LakeTable::Cdc(_) => &[DATE_COLUMN, HOUR_COLUMN],
        }
    }

    /// Opens the table in `lake`, creating it when absent (with its partition columns).
    pub async fn open_or_create(self, lake: &Lake) -> Result<Table, BatchError> {
        self.open_or_create_by(lake, self.partition_columns()).await
    }

    /// Opens the table in `lake`, creating it partitioned by `partition_columns` when
    /// absent.
    pub async fn open_or_create_by(
        self,
        lake: &Lake,
        partition_columns: &[&str],
    ) -> Result<Table, BatchError> {
        let columns = hour_partitioned(&self.schema()).map_err(|reason| {
            BatchError::Usage(format!("table {}: no Delta schema: {reason}", self.dir()))
        })?;
        let location = self.location(lake);
        Ok(Table::open_or_create_by(&location, &self.name(), columns, partition_columns).await?)
    }

    /// Opens the table in `lake`; `None` when it does not exist.
    pub async fn open(self, lake: &Lake) -> Result<Option<Table>, BatchError> {
        Ok(Table::open(&self.location(lake)).await?)
    }
}

/// The tables of one lake a process writes, opened (and created) on first use.
pub struct LakeTables {
    lake: Lake,
    open: HashMap<LakeTable, Table>,
    /// (table, application id) → the table version of this process's last commit for the
    /// application and the transaction version it recorded.
    committed: HashMap<(LakeTable, String), (u64, i64)>,
}

impl LakeTables {
    /// No table opened yet.
    pub fn new(lake: Lake) -> Self {
        LakeTables {
            lake,
            open: HashMap::new(),
            committed: HashMap::new(),
        }
    }

    /// The lake.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// The table, opened or created on first use; not refreshed.
    pub async fn get(&mut self, table: LakeTable) -> Result<&mut Table, BatchError> {
        if !self.open.contains_key(&table) {
            let opened = table.open_or_create(&self.lake).await?;
            self.open.insert(table, opened);
        }
        self.open
            .get_mut(&table)
            .ok_or_else(|| BatchError::Usage(format!("table {} not open", table.dir())))
    }

    /// The transaction version of `app_id` in `table`, known without reading the log when
    /// this process made the snapshot's last commit for it (and the snapshot has not moved
    /// since): a commit of the same application by anyone else after that snapshot fails
    /// Delta's conflict check, so the writer re-reads then.
    pub fn known_transaction(&self, table: LakeTable, app_id: &str) -> Option<i64> {
        let (at, version) = self.committed.get(&(table, app_id.to_string()))?;
        let current = self.open.get(&table)?.version();
        (current == *at).then_some(*version)
    }

    /// Records this process's commit of `app_id` at `version` into `table`'s snapshot.
    pub fn committed(&mut self, table: LakeTable, app_id: &str, version: i64) {
        if let Some(t) = self.open.get(&table) {
            self.committed
                .insert((table, app_id.to_string()), (t.version(), version));
        }
    }

    /// The table refreshed to its latest version.
    pub async fn latest(&mut self, table: LakeTable) -> Result<&mut Table, BatchError> {
        let t = self.get(table).await?;
        t.refresh().await?;
        Ok(t)
    }
}
