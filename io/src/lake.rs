//! Where the batch layer keeps things, in any `object_store`: a local path or `file://` URL
//! by default, `s3://bucket/prefix` with the usual AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT` for MinIO,
//! `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint).
//!
//! Layout under the root: Delta tables (the `delta` module) in the hive layout, so a plain
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
}

/// The events table, below the lake's root.
pub const EVENTS_TABLE: &str = "events";

#[cfg(test)]
mod tests {
    use super::*;
    use shared_logic::window::HourKey;

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
