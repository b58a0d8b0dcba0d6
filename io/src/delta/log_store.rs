//! How a table at a [`Lake`] location is reached: delta-rs's log store over the lake's own
//! object store (commits by create-only puts of the log's next version, which local disks,
//! S3 and MinIO support), for every scheme a lake can have.

use std::sync::{Arc, Once};

use deltalake::logstore::{default_logstore, logstore_factories, LogStoreFactory, StorageConfig};
use deltalake::{DeltaTable, DeltaTableBuilder, ObjectStore};
use url::Url;

use crate::error::IoError;
use crate::lake::Lake;

/// Our object stores are built by [`Lake`]; Delta's default log store (commits by
/// create-only puts, which S3 and MinIO support) serves every scheme we open.
#[derive(Debug)]
struct ConditionalPutLogStores;

impl LogStoreFactory for ConditionalPutLogStores {
    fn with_options(
        &self,
        prefixed_store: Arc<dyn ObjectStore>,
        root_store: Arc<dyn ObjectStore>,
        location: &Url,
        options: &StorageConfig,
    ) -> deltalake::DeltaResult<Arc<dyn deltalake::logstore::LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

fn register_log_stores() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let registry = logstore_factories();
        for scheme in ["s3://", "s3a://"] {
            if let Ok(url) = Url::parse(scheme) {
                if registry.get(&url).is_none() {
                    registry.insert(url, Arc::new(ConditionalPutLogStores));
                }
            }
        }
    });
}

fn table_url(location: &Lake) -> Result<Url, IoError> {
    let text = format!("{}/", location.display().trim_end_matches('/'));
    Url::parse(&text).map_err(|e| IoError::Location {
        url: text,
        reason: e.to_string(),
    })
}

pub(super) fn unopened(location: &Lake) -> Result<DeltaTable, IoError> {
    register_log_stores();
    let url = table_url(location)?;
    DeltaTableBuilder::from_url(url.clone())
        .and_then(|b| {
            b.with_storage_backend(location.store().clone(), url)
                .build()
        })
        .map_err(IoError::table(location, "open"))
}
