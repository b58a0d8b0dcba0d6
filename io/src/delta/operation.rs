//! What a commit of each [`CommitKind`] records in the log besides its files: the
//! operation its commit info names, and the new metadata of the kinds that change the
//! table's schema or partitioning.

use deltalake::kernel::{Metadata, StructField, StructType};
use deltalake::protocol::{DeltaOperation, SaveMode};
use shared_logic::window::HourKey;

use super::partition::{HourPartition, DATE_COLUMN, HOUR_COLUMN};
use crate::error::IoError;

/// What a commit does, as recorded in the table's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitKind {
    /// New files only (the lake writer's flushes, imports).
    Append,
    /// The files of these hours are replaced (a batch run publishing its views).
    ReplaceHours(Vec<HourKey>),
    /// Files rewritten without changing the data (compaction).
    Compact,
    /// Files rewritten without changing the data into a new partitioning: these partition
    /// columns replace the table's (`lambda lake migrate`).
    Repartition(Vec<String>),
    /// No files: the table's columns become these, which add nullable columns to the
    /// table's ([`super::schema::added_columns`]); files written before read them as null.
    AddColumns(Vec<StructField>),
}

/// The partition columns the commit's files are written under, and the table's new
/// metadata when the commit changes it (a repartition, added columns). `table` names the
/// table in errors.
pub(super) fn metadata(
    kind: &CommitKind,
    current: &Metadata,
    schema: &StructType,
    partition_columns: Vec<String>,
    table: &str,
) -> Result<(Vec<String>, Option<Metadata>), IoError> {
    match kind {
        CommitKind::Repartition(columns) => {
            let changed = super::schema::with_partition_columns(current, schema, columns).map_err(
                |reason| IoError::Partition {
                    table: table.to_string(),
                    reason,
                },
            )?;
            Ok((columns.clone(), Some(changed)))
        }
        CommitKind::AddColumns(columns) => {
            let invalid = |reason: String| IoError::TableConflict {
                table: table.to_string(),
                reason,
            };
            if super::schema::added_columns(schema, columns).is_none() {
                return Err(invalid(
                    "the new columns drop or change a column of the table".into(),
                ));
            }
            let new_schema = StructType::try_new(columns.iter().cloned())
                .map_err(|e| invalid(format!("the new columns: {e}")))?;
            let changed =
                super::schema::with_partition_columns(current, &new_schema, &partition_columns)
                    .map_err(invalid)?;
            Ok((partition_columns, Some(changed)))
        }
        _ => Ok((partition_columns, None)),
    }
}

/// The operation the commit info of a `kind` commit names; `target` is its partition
/// columns, `table_schema` the table's schema before it.
pub(super) fn operation(
    kind: &CommitKind,
    target: Vec<String>,
    table_schema: &StructType,
) -> DeltaOperation {
    match kind {
        CommitKind::Append => DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(target),
            predicate: None,
        },
        CommitKind::Repartition(_) => DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(target),
            predicate: None,
        },
        CommitKind::ReplaceHours(hours) => DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(target),
            predicate: Some(
                hours
                    .iter()
                    .map(|h| {
                        let v = HourPartition(*h).values();
                        format!(
                            "({DATE_COLUMN} = '{}' AND {HOUR_COLUMN} = {})",
                            v[DATE_COLUMN].as_deref().unwrap_or_default(),
                            v[HOUR_COLUMN].as_deref().unwrap_or_default()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" OR "),
            ),
        },
        CommitKind::Compact => DeltaOperation::Optimize {
            predicate: None,
            target_size: 0,
        },
        CommitKind::AddColumns(columns) => DeltaOperation::AddColumn {
            fields: super::schema::added_columns(table_schema, columns).unwrap_or_default(),
        },
    }
}
