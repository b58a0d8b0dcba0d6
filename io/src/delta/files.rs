//! The files of a table: a file of a snapshot ([`TableFile`]) and a file a commit adds
//! ([`AddFile`]), with the partition it lives in and its Delta `add` action.

use std::collections::BTreeMap;

use deltalake::kernel::{Action, Add};
use shared_logic::window::HourKey;

use super::partition::{HourPartition, DATE_COLUMN, EVENT_TYPE_COLUMN, HOUR_COLUMN};

/// A file of a table's snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFile {
    /// Relative to the table's root (`date=…/hour=…/<name>.parquet`).
    pub path: String,
    pub size: u64,
    /// From the file's statistics (`numRecords`), when the writer recorded them.
    pub rows: Option<u64>,
    /// The hour partition, when the table is hour-partitioned.
    pub hour: Option<HourKey>,
    /// The event-type partition, when the table has that level.
    pub event_type: Option<String>,
    /// When the file was added (ms since the epoch).
    pub modified_ms: i64,
    /// The writer's tags on the file.
    pub tags: BTreeMap<String, String>,
}

/// A file written into an hour partition, to be added by a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddFile {
    /// The file's name inside its partition's directory.
    pub name: String,
    pub hour: HourKey,
    /// Its event type, in a table partitioned by event type (`None` in every other).
    pub event_type: Option<String>,
    pub size: u64,
    pub rows: u64,
    pub tags: BTreeMap<String, String>,
}

impl AddFile {
    /// Its path relative to the table's root.
    pub fn path(&self) -> String {
        format!(
            "{}/{}",
            HourPartition(self.hour).file_directory(self.event_type.as_deref()),
            self.name
        )
    }

    /// The partition columns its partition values name.
    pub(crate) fn partition_columns(&self) -> Vec<&'static str> {
        match self.event_type {
            Some(_) => vec![DATE_COLUMN, HOUR_COLUMN, EVENT_TYPE_COLUMN],
            None => vec![DATE_COLUMN, HOUR_COLUMN],
        }
    }

    pub(crate) fn action(&self, data_change: bool) -> Action {
        Action::Add(Add {
            path: self.path(),
            partition_values: HourPartition(self.hour).file_values(self.event_type.as_deref()),
            size: self.size as i64,
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change,
            stats: Some(format!("{{\"numRecords\":{}}}", self.rows)),
            tags: (!self.tags.is_empty()).then(|| {
                self.tags
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect()
            }),
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        })
    }
}
