//! The lake's events as the batch job reads them: the events table's current snapshot
//! (its hours, an hour's files), not a listing of its directories: a file no commit added
//! (a writer that died before committing) is not data.

use object_store::ObjectMeta;
use shared_logic::window::HourKey;

use crate::delta::{HourPartition, Table, TableFile};
use crate::error::IoError;
use crate::lake::{Lake, EVENTS_TABLE};

impl Lake {
    /// The events table's location.
    pub fn events_table(&self) -> Lake {
        self.child(EVENTS_TABLE)
    }

    /// The files of the events table's current snapshot (none when there is no table yet).
    async fn event_files(&self) -> Result<Vec<TableFile>, IoError> {
        match Table::open(&self.events_table()).await? {
            Some(table) => table.files(),
            None => Ok(Vec::new()),
        }
    }

    /// The event files of an hour in the events table's current snapshot, sorted by name
    /// (a file in the directory that no commit added is not one of them).
    pub async fn hour_files(&self, hour: HourKey) -> Result<Vec<ObjectMeta>, IoError> {
        let events = self.events_table();
        Ok(self
            .event_files()
            .await?
            .iter()
            .filter(|f| f.hour == Some(hour))
            .map(|f| events.table_object(f))
            .collect())
    }

    /// A file of the table at this location, as an object of the store.
    pub fn table_object(&self, file: &TableFile) -> ObjectMeta {
        ObjectMeta {
            location: self.path(&file.path),
            last_modified: chrono::DateTime::from_timestamp_millis(file.modified_ms)
                .unwrap_or_default(),
            size: file.size,
            e_tag: None,
            version: None,
        }
    }

    /// Every hour that has event files in the events table's current snapshot, sorted.
    pub async fn hours(&self) -> Result<Vec<HourKey>, IoError> {
        let hours: std::collections::BTreeSet<HourKey> = self
            .event_files()
            .await?
            .into_iter()
            .filter_map(|f| f.hour)
            .collect();
        Ok(hours.into_iter().collect())
    }

    /// The directory of an hour's event files.
    pub fn events_hour(&self, hour: HourKey) -> object_store::path::Path {
        self.events_table().path(&HourPartition(hour).directory())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hours_and_hour_files_are_the_events_tables_snapshot_not_the_directory() {
        use crate::delta::{schema::hour_partitioned, AddFile, CommitKind};
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let (h7, h8) = (
            HourKey::parse("2026-11-24T07").unwrap(),
            HourKey::parse("2026-11-24T08").unwrap(),
        );
        // No table yet: nothing, even with a stray file in an hour directory.
        let stray = lake.events_hour(h8).join("never-committed.parquet");
        lake.put(&stray, b"PAR1".to_vec()).await.unwrap();
        assert!(lake.hours().await.unwrap().is_empty());
        assert!(lake.hour_files(h8).await.unwrap().is_empty());

        let columns = hour_partitioned(&shared_logic::schema::event_schema()).unwrap();
        let mut table = Table::open_or_create(&lake.events_table(), "events", columns)
            .await
            .unwrap();
        let add = AddFile {
            name: "a.parquet".into(),
            hour: h7,
            event_type: None,
            size: 123,
            rows: 4,
            tags: Default::default(),
        };
        lake.put(&lake.events_hour(h7).join("a.parquet"), vec![0; 123])
            .await
            .unwrap();
        table
            .commit(CommitKind::Append, &[add], &[], None, Default::default())
            .await
            .unwrap();
        assert_eq!(lake.hours().await.unwrap(), vec![h7]);
        let files = lake.hour_files(h7).await.unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].location, lake.events_hour(h7).join("a.parquet"));
        assert_eq!(files[0].size, 123);
        assert!(lake.hour_files(h8).await.unwrap().is_empty());
    }
}
