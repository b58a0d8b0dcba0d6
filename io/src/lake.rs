//! Where the batch layer keeps things, in any `object_store`: a local path or `file://` URL
//! by default, `s3://bucket/prefix` with the usual AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` for MinIO,
//! `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint).
//!
//! Layout under the root: Delta tables ([`crate::delta`]) in the hive layout, so a plain
//! Parquet reader finds the files where it always did (but only the table's snapshot says
//! which of them are data: a file no commit added is garbage for `lambda lake vacuum`):
//!
//! ```text
//! events/_delta_log/…                      the events table's commits
//! events/date=YYYY-MM-DD/hour=HH/<source>-p<partition>-<first>-<last>-<suffix>.parquet
//! dead-letter/date=YYYY-MM-DD/hour=HH/…    the dead letters (hour they were received)
//! cdc/<table>/date=YYYY-MM-DD/hour=HH/…    each CDC table's raw changes
//! views/batch/<metric>/date=YYYY-MM-DD/hour=HH/<run id>.parquet
//! views/batch/_manifests/<run id>.json     one record per run
//! views/batch/_current.json                the published state (coverage, boundary)
//! views/batch/_locks/<hour>.lock           who computes an hour now
//! ```

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use shared_logic::window::HourKey;
use url::Url;

use crate::error::IoError;

/// A root location in an object store.
#[derive(Clone)]
pub struct Lake {
    store: Arc<dyn ObjectStore>,
    root: Path,
    url: Url,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lake({})", self.display())
    }
}

/// `date=YYYY-MM-DD/hour=HH` of an hour.
pub fn hour_partition(hour: HourKey) -> String {
    let text = hour.to_string(); // 2026-11-24T10
    let (date, hh) = text.split_once('T').unwrap_or((&text, "00"));
    format!("date={date}/hour={hh}")
}

/// Parses `date=YYYY-MM-DD/hour=HH` (the two last segments of a path).
pub fn parse_hour_partition(date_segment: &str, hour_segment: &str) -> Option<HourKey> {
    let date = date_segment.strip_prefix("date=")?;
    let hour = hour_segment.strip_prefix("hour=")?;
    if hour.len() != 2 {
        return None;
    }
    HourKey::parse(&format!("{date}T{hour}"))
}

impl Lake {
    /// Opens a location: a local path (created when `create`), a `file://` URL or an
    /// `s3://bucket/prefix` URL.
    pub fn open(location: &str, create: bool) -> Result<Lake, IoError> {
        let bad = |reason: String| IoError::Location {
            url: location.to_string(),
            reason,
        };
        if location.trim().is_empty() {
            return Err(bad("empty location".into()));
        }
        let url = match Url::parse(location) {
            Ok(url) if url.scheme().len() > 1 => url,
            _ => {
                let path = std::path::Path::new(location);
                if create {
                    std::fs::create_dir_all(path)
                        .map_err(|e| bad(format!("cannot create directory: {e}")))?;
                }
                let abs = std::fs::canonicalize(path)
                    .map_err(|e| bad(format!("no such directory ({e})")))?;
                Url::from_directory_path(&abs)
                    .map_err(|_| bad("not an absolute directory".into()))?
            }
        };
        match url.scheme() {
            "file" => {
                let dir = url
                    .to_file_path()
                    .map_err(|_| bad("not a local path".into()))?;
                if create {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| bad(format!("cannot create directory: {e}")))?;
                }
                if !dir.is_dir() {
                    return Err(bad("no such directory".into()));
                }
                let root = Path::from_absolute_path(&dir).map_err(|e| bad(e.to_string()))?;
                let url = Url::parse("file:///").map_err(|e| bad(e.to_string()))?;
                Ok(Lake {
                    store: Arc::new(LocalFileSystem::new()),
                    root,
                    url,
                })
            }
            "s3" | "s3a" => {
                let bucket = url
                    .host_str()
                    .ok_or_else(|| bad("no bucket in the URL".into()))?
                    .to_string();
                let store = AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .build()
                    .map_err(|e| bad(format!("S3 configuration: {e}")))?;
                let root = Path::from(url.path().trim_matches('/'));
                let url = Url::parse(&format!("s3://{bucket}/")).map_err(|e| bad(e.to_string()))?;
                Ok(Lake {
                    store: Arc::new(store),
                    root,
                    url,
                })
            }
            other => Err(bad(format!(
                "unsupported scheme `{other}` (use a path, file:// or s3://)"
            ))),
        }
    }

    /// A location below this one (e.g. `views` under the lake root).
    pub fn child(&self, segment: &str) -> Lake {
        Lake {
            store: self.store.clone(),
            root: self.path(segment),
            url: self.url.clone(),
        }
    }

    /// The object store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The URL of the store (scheme and bucket) for registering it with DataFusion.
    pub fn store_url(&self) -> &Url {
        &self.url
    }

    /// The location as a user wrote it (`file:///data/lake`, `s3://bucket/prefix`).
    pub fn display(&self) -> String {
        format!("{}{}", self.url, self.root)
    }

    /// A path below the root, from `/`-separated segments.
    pub fn path(&self, relative: &str) -> Path {
        let mut path = self.root.clone();
        for part in relative.split('/').filter(|p| !p.is_empty()) {
            path = path.join(part);
        }
        path
    }

    /// The full URL of an object (what DataFusion scans).
    pub fn object_url(&self, path: &Path) -> String {
        format!("{}{}", self.url, path)
    }

    /// The directory of an hour's event files.
    pub fn events_hour(&self, hour: HourKey) -> Path {
        self.path(&format!("events/{}", hour_partition(hour)))
    }

    /// Writes an object (atomically: readers see all of it or nothing).
    pub async fn put(&self, path: &Path, bytes: Vec<u8>) -> Result<(), IoError> {
        self.store
            .put(path, PutPayload::from(bytes))
            .await
            .map_err(IoError::store("write", path))?;
        Ok(())
    }

    /// Reads a whole object; `None` when it does not exist.
    pub async fn get(&self, path: &Path) -> Result<Option<bytes::Bytes>, IoError> {
        match self.store.get(path).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(IoError::store("read", path))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(IoError::store("read", path)(e)),
        }
    }

    /// Deletes an object (absent is fine).
    pub async fn delete(&self, path: &Path) -> Result<(), IoError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(IoError::store("delete", path)(e)),
        }
    }

    /// Every object below `prefix`, sorted by path.
    pub async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>, IoError> {
        let mut objects: Vec<ObjectMeta> = self
            .store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(IoError::store("list", prefix))?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    }

    /// The events table's location.
    pub fn events_table(&self) -> Lake {
        self.child(EVENTS_TABLE)
    }

    /// The files of the events table's current snapshot (none when there is no table yet).
    async fn event_files(&self) -> Result<Vec<crate::delta::TableFile>, IoError> {
        match crate::delta::Table::open(&self.events_table()).await? {
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
    pub fn table_object(&self, file: &crate::delta::TableFile) -> ObjectMeta {
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
}

/// The events table, below the lake's root.
pub const EVENTS_TABLE: &str = "events";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_partitions_round_trip() {
        let h = HourKey::parse("2026-11-24T07").unwrap();
        assert_eq!(hour_partition(h), "date=2026-11-24/hour=07");
        assert_eq!(parse_hour_partition("date=2026-11-24", "hour=07"), Some(h));
        assert_eq!(parse_hour_partition("date=2026-11-24", "hour=7"), None);
        assert_eq!(parse_hour_partition("day=2026-11-24", "hour=07"), None);
    }

    #[tokio::test]
    async fn hours_and_hour_files_are_the_events_tables_snapshot_not_the_directory() {
        use crate::delta::{schema::hour_partitioned, AddFile, CommitKind, Table};
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

    #[test]
    fn local_paths_open_and_missing_ones_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        assert!(lake.display().starts_with("file:///"));
        assert!(lake
            .object_url(&lake.events_hour(HourKey(0)))
            .ends_with("/events/date=1970-01-01/hour=00"));
        let missing = dir.path().join("nope");
        let err = Lake::open(missing.to_str().unwrap(), false).unwrap_err();
        assert!(err.to_string().contains("no such directory"), "{err}");
        assert!(Lake::open(missing.to_str().unwrap(), true).is_ok());
        let err = Lake::open("ftp://host/x", false).unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"), "{err}");
    }
}
