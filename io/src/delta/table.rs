//! One Delta table at a location of the lake: opening and creating it, the files of its
//! snapshot, time travel, commits and vacuum.
//!
//! Commits are atomic and conditional: a commit is the create-only put of the log's next
//! version, so two writers can never both write version N; delta-rs's conflict checker then
//! decides whether the loser may retry on top of the winner (blind appends may; a commit
//! whose files were removed meanwhile, or that carries an application transaction id
//! another commit advanced, may not: [`IoError::TableConflict`], for the caller to re-plan
//! on the new snapshot).

use std::collections::HashMap;

use deltalake::kernel::transaction::{CommitBuilder, TransactionError};
use deltalake::kernel::{Action, Remove, StructField, Transaction};
use deltalake::operations::vacuum::VacuumMode;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableError};
use futures::StreamExt;
use serde_json::Value;

pub use super::files::{AddFile, TableFile};
use super::log_store::unopened;
use super::partition::{
    event_type_of, is_plain_value, HourPartition, DATE_COLUMN, EVENT_TYPE_COLUMN, HOUR_COLUMN,
};
use crate::error::IoError;
use crate::lake::Lake;

pub use super::operation::CommitKind;

/// One Delta table and the snapshot loaded of it.
pub struct Table {
    location: Lake,
    table: DeltaTable,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Table({} v{:?})",
            self.location.display(),
            self.table.version()
        )
    }
}

impl Table {
    /// Opens the table at `location`; `None` when there is no table there (no `_delta_log`).
    pub async fn open(location: &Lake) -> Result<Option<Table>, IoError> {
        let log = location.path("_delta_log");
        let mut listing = location.store().list(Some(&log));
        match listing.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(IoError::store("list", &log)(e)),
            Some(Ok(_)) => {}
        }
        drop(listing);
        let mut table = unopened(location)?;
        match table.load().await {
            Ok(()) => Ok(Some(Table {
                location: location.clone(),
                table,
            })),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(IoError::table(location, "load")(e)),
        }
    }

    /// Opens the table at `location`, creating it (hour-partitioned, with `columns` and the
    /// partition columns) when there is none. Two processes creating it at once are fine:
    /// one commit of version 0 wins and the other opens it. An existing table whose columns
    /// differ is an error naming both.
    pub async fn open_or_create(
        location: &Lake,
        name: &str,
        columns: Vec<StructField>,
    ) -> Result<Table, IoError> {
        Table::open_or_create_by(location, name, columns, &[DATE_COLUMN, HOUR_COLUMN]).await
    }

    /// [`Table::open_or_create`] creating the table partitioned by `partition_columns`
    /// (columns of `columns`). An existing table keeps its own partitioning, whatever it
    /// is ([`Table::partition_columns`] says which): a table changes its partitioning only
    /// by a [`CommitKind::Repartition`].
    pub async fn open_or_create_by(
        location: &Lake,
        name: &str,
        columns: Vec<StructField>,
        partition_columns: &[&str],
    ) -> Result<Table, IoError> {
        for _attempt in 0..3 {
            if let Some(table) = Table::open(location).await? {
                let schema = table
                    .table
                    .snapshot()
                    .map_err(IoError::table(location, "schema"))?
                    .schema();
                if !super::schema::same_columns(&schema, &columns) {
                    if super::schema::added_columns(&schema, &columns).is_some() {
                        let mut table = table;
                        let kind = CommitKind::AddColumns(columns.clone());
                        match table.commit(kind, &[], &[], None, HashMap::new()).await {
                            Ok(version) => {
                                tracing::info!(table = %location.display(), version, "added the columns this version writes to the table");
                                return Ok(table);
                            }
                            // Another writer changed the table meanwhile: open it again.
                            Err(IoError::TableConflict { .. }) => continue,
                            Err(e) => return Err(e),
                        }
                    }
                    return Err(IoError::TableConflict {
                        table: location.display(),
                        reason: format!(
                            "the table's columns are not those this version writes (table: {}; expected: {})",
                            schema.fields().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", "),
                            columns.iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    });
                }
                return Ok(table);
            }
            let table = unopened(location)?;
            let created = table
                .create()
                .with_table_name(name)
                .with_columns(columns.clone())
                .with_partition_columns(partition_columns.iter().copied())
                .with_save_mode(SaveMode::Ignore)
                .await;
            match created {
                Ok(table) => {
                    return Ok(Table {
                        location: location.clone(),
                        table,
                    })
                }
                // Another process created it first: open theirs.
                Err(DeltaTableError::VersionAlreadyExists(_))
                | Err(DeltaTableError::Transaction {
                    source: TransactionError::VersionAlreadyExists(_),
                }) => continue,
                Err(e) => return Err(IoError::table(location, "create")(e)),
            }
        }
        Err(IoError::TableConflict {
            table: location.display(),
            reason: "created and not found three times".into(),
        })
    }

    /// The snapshot's column names, in schema order (partition columns included).
    pub fn column_names(&self) -> Result<Vec<String>, IoError> {
        Ok(self
            .table
            .snapshot()
            .map_err(IoError::table(&self.location, "snapshot"))?
            .schema()
            .fields()
            .map(|f| f.name().clone())
            .collect())
    }

    /// The snapshot's partition columns, in order.
    pub fn partition_columns(&self) -> Result<Vec<String>, IoError> {
        Ok(self
            .table
            .snapshot()
            .map_err(IoError::table(&self.location, "snapshot"))?
            .metadata()
            .partition_columns()
            .to_vec())
    }

    /// Whether the snapshot is partitioned by event type below its hours.
    pub fn by_event_type(&self) -> Result<bool, IoError> {
        Ok(self
            .partition_columns()?
            .iter()
            .any(|c| c == EVENT_TYPE_COLUMN))
    }

    /// Where the table lives.
    pub fn location(&self) -> &Lake {
        &self.location
    }

    /// The snapshot's version.
    pub fn version(&self) -> u64 {
        self.table.version().unwrap_or(0)
    }

    /// When the snapshot's version was committed (ms since the epoch).
    pub fn version_timestamp(&self) -> Option<i64> {
        let snapshot = self.table.snapshot().ok()?;
        snapshot.version_timestamp(snapshot.version())
    }

    /// Moves the snapshot to the table's latest version.
    pub async fn refresh(&mut self) -> Result<(), IoError> {
        self.table
            .update_state()
            .await
            .map_err(IoError::table(&self.location, "refresh"))
    }

    /// Loads the snapshot of `version` (time travel).
    pub async fn load_version(&mut self, version: u64) -> Result<(), IoError> {
        self.table
            .load_version(version)
            .await
            .map_err(IoError::table(&self.location, "load version"))
    }

    /// Loads the snapshot of the latest version committed at or before `at` (time travel).
    pub async fn load_at(&mut self, at: chrono::DateTime<chrono::Utc>) -> Result<(), IoError> {
        self.table
            .load_with_datetime(at)
            .await
            .map_err(IoError::table(&self.location, "load at time"))
    }

    /// The snapshot's files, sorted by path.
    pub fn files(&self) -> Result<Vec<TableFile>, IoError> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(IoError::table(&self.location, "snapshot"))?;
        let mut files: Vec<TableFile> = snapshot
            .log_data()
            .iter()
            .map(|f| {
                #[allow(deprecated)] // tags are only reachable through the Add action
                let tags = f.add_action().tags.unwrap_or_default();
                TableFile {
                    path: f.path().to_string(),
                    size: f.size().max(0) as u64,
                    rows: f.num_records().map(|n| n as u64),
                    hour: HourPartition::from_values(&f.partition_values_map()).map(|h| h.0),
                    event_type: event_type_of(&f.partition_values_map()),
                    modified_ms: f.modification_time(),
                    tags: tags
                        .into_iter()
                        .filter_map(|(k, v)| Some((k, v?)))
                        .collect(),
                }
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// The value under `key` in the info of the newest of the last `limit` commits that
    /// recorded one (an application's metadata travels in its commits).
    pub async fn latest_commit_info(
        &self,
        key: &str,
        limit: usize,
    ) -> Result<Option<Value>, IoError> {
        Ok(self
            .history(limit)
            .await?
            .into_iter()
            .find_map(|(_, _, _, mut info)| info.remove(key)))
    }

    /// The last `limit` commits, newest first: version, commit time (ms), operation and
    /// the commit's info.
    pub async fn history(
        &self,
        limit: usize,
    ) -> Result<Vec<(u64, Option<i64>, String, HashMap<String, Value>)>, IoError> {
        use futures::TryStreamExt;
        let infos: Vec<_> = self
            .table
            .history(Some(limit))
            .try_collect()
            .await
            .map_err(IoError::table(&self.location, "read history"))?;
        let latest = self.version();
        Ok(infos
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    latest.saturating_sub(i as u64),
                    c.timestamp,
                    c.operation.unwrap_or_default(),
                    c.info,
                )
            })
            .collect())
    }

    /// The object-store path of a file of the table.
    pub fn file_path(&self, relative: &str) -> object_store::path::Path {
        self.location.path(relative)
    }

    /// The full URL of a file of the table.
    pub fn file_url(&self, relative: &str) -> String {
        self.location.object_url(&self.location.path(relative))
    }

    /// The last version an application recorded with [`Transaction`] actions (exactly-once
    /// writers: the last source position in the table), at this snapshot.
    pub async fn transaction_version(&self, app_id: &str) -> Result<Option<i64>, IoError> {
        let snapshot = self
            .table
            .snapshot()
            .map_err(IoError::table(&self.location, "snapshot"))?;
        snapshot
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await
            .map_err(IoError::table(&self.location, "read transaction version"))
    }

    /// Commits on top of this snapshot: `add` files, `remove` files of the snapshot, an
    /// application transaction, and `metadata` in the commit's info. Returns the new
    /// version; the snapshot moves to it. A conflict with a commit made meanwhile is
    /// [`IoError::TableConflict`]: refresh and plan again.
    pub async fn commit(
        &mut self,
        kind: CommitKind,
        add: &[AddFile],
        remove: &[TableFile],
        transaction: Option<(&str, i64)>,
        metadata: HashMap<String, Value>,
    ) -> Result<u64, IoError> {
        let transactions: Vec<(String, i64)> = transaction
            .map(|(app, version)| (app.to_string(), version))
            .into_iter()
            .collect();
        self.commit_with(kind, add, remove, &transactions, metadata)
            .await
    }

    /// [`Table::commit`] with any number of application transactions.
    pub async fn commit_with(
        &mut self,
        kind: CommitKind,
        add: &[AddFile],
        remove: &[TableFile],
        transactions: &[(String, i64)],
        metadata: HashMap<String, Value>,
    ) -> Result<u64, IoError> {
        let data_change = matches!(kind, CommitKind::Append | CommitKind::ReplaceHours(_));
        let now = chrono::Utc::now().timestamp_millis();
        let current = self.partition_columns()?;
        let mut actions: Vec<Action> = Vec::new();
        let snapshot = self
            .table
            .snapshot()
            .map_err(IoError::table(&self.location, "snapshot"))?;
        let (target, changed) = super::operation::metadata(
            &kind,
            snapshot.metadata(),
            &snapshot.schema(),
            current,
            &self.location.display(),
        )?;
        actions.extend(changed.map(Action::Metadata));
        for file in add {
            if file.partition_columns() != target
                || file
                    .event_type
                    .as_deref()
                    .is_some_and(|t| !is_plain_value(t))
            {
                return Err(IoError::Partition {
                    table: self.location.display(),
                    reason: format!(
                        "file `{}` names partition values {:?}, the table is partitioned by {target:?}",
                        file.path(),
                        file.partition_columns()
                    ),
                });
            }
            actions.push(file.action(data_change));
        }
        actions.extend(remove.iter().map(|f| {
            Action::Remove(Remove {
                path: f.path.clone(),
                data_change,
                deletion_timestamp: Some(now),
                extended_file_metadata: Some(true),
                size: Some(f.size as i64),
                partition_values: f
                    .hour
                    .map(|h| HourPartition(h).file_values(f.event_type.as_deref())),
                deletion_vector: None,
                tags: None,
                base_row_id: None,
                default_row_commit_version: None,
            })
        }));
        for (app_id, version) in transactions {
            actions.push(Action::Txn(Transaction::new_with_last_update(
                app_id,
                *version,
                Some(now),
            )));
        }
        let snapshot = self
            .table
            .snapshot()
            .map_err(IoError::table(&self.location, "snapshot"))?;
        let operation = super::operation::operation(&kind, target, &snapshot.schema());
        let committed = CommitBuilder::default()
            .with_actions(actions)
            .with_app_metadata(metadata)
            .with_max_retries(20)
            .build(Some(snapshot), self.table.log_store(), operation)
            .await;
        match committed {
            Ok(done) => {
                let version = done.version();
                self.table
                    .update_incremental(Some(done.version()))
                    .await
                    .map_err(IoError::table(&self.location, "refresh after commit"))?;
                Ok(version)
            }
            Err(DeltaTableError::Transaction {
                source: TransactionError::CommitConflict(conflict),
            }) => Err(IoError::TableConflict {
                table: self.location.display(),
                reason: conflict.to_string(),
            }),
            Err(e) => Err(IoError::table(&self.location, "commit")(e)),
        }
    }

    /// Deletes files no version newer than `retain` needs any more, and files no commit
    /// ever added (a writer that died before committing) once older than `retain`. Returns
    /// the files deleted (or that would be, when `dry_run`).
    pub async fn vacuum(
        &mut self,
        retain: chrono::Duration,
        dry_run: bool,
    ) -> Result<Vec<String>, IoError> {
        let (table, metrics) = self
            .table
            .clone()
            .vacuum()
            .with_retention_period(retain)
            .with_enforce_retention_duration(false)
            .with_mode(VacuumMode::Full)
            .with_dry_run(dry_run)
            .await
            .map_err(IoError::table(&self.location, "vacuum"))?;
        self.table = table;
        Ok(metrics.files_deleted)
    }
}
