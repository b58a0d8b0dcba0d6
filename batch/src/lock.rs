//! Locks in the object store, so that two batch runs never compute the same hour (or
//! publish a manifest) at once.
//!
//! A lock is an object created with a create-only put (`PutMode::Create`: atomic on local
//! disks and on S3), holding the run id and the time it was taken. A lock older than its
//! time-to-live is stale (its run died) and may be broken.

use std::time::Duration;

use lambda_io::Lake;
use object_store::path::Path;
use object_store::{PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::BatchError;

#[derive(Serialize, Deserialize)]
struct Holder {
    run_id: String,
    since_ms: i64,
}

/// A held lock; call [`Lock::release`] when done (a dropped lock expires after its TTL).
pub struct Lock {
    lake: Lake,
    path: Path,
}

impl Lock {
    /// Takes the lock `name` under `<views>/_locks/`, breaking it when older than `ttl`.
    pub async fn acquire(
        views: &Lake,
        name: &str,
        run_id: &str,
        ttl: Duration,
    ) -> Result<Lock, BatchError> {
        let path = views.path(&format!("_locks/{name}.lock"));
        for _attempt in 0..2 {
            let now = chrono::Utc::now().timestamp_millis();
            let body = serde_json::to_vec(&Holder {
                run_id: run_id.to_string(),
                since_ms: now,
            })
            .map_err(|e| BatchError::Usage(format!("lock body: {e}")))?;
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            match views
                .store()
                .put_opts(&path, PutPayload::from(body), opts)
                .await
            {
                Ok(_) => {
                    return Ok(Lock {
                        lake: views.clone(),
                        path,
                    })
                }
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let holder = match views.get(&path).await? {
                        Some(bytes) => serde_json::from_slice::<Holder>(&bytes).ok(),
                        None => continue, // released meanwhile
                    };
                    let stale = holder
                        .as_ref()
                        .is_none_or(|h| now - h.since_ms > ttl.as_millis() as i64);
                    if stale {
                        tracing::warn!(lock = %path, "breaking a stale lock");
                        views.delete(&path).await?;
                        continue;
                    }
                    let h = holder.expect("not stale, so present");
                    let since = chrono::DateTime::from_timestamp_millis(h.since_ms)
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_default();
                    return Err(BatchError::Locked {
                        hour: name.to_string(),
                        holder: h.run_id,
                        since,
                    });
                }
                Err(e) => return Err(lambda_io::IoError::store("create lock", &path)(e).into()),
            }
        }
        Err(BatchError::Locked {
            hour: name.to_string(),
            holder: "unknown".into(),
            since: "now".into(),
        })
    }

    /// Releases the lock.
    pub async fn release(self) -> Result<(), BatchError> {
        Ok(self.lake.delete(&self.path).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_lock_refuses_a_second_run_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let views = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let ttl = Duration::from_secs(3600);
        let first = Lock::acquire(&views, "2026-01-01T00", "run-a", ttl)
            .await
            .unwrap();
        let err = Lock::acquire(&views, "2026-01-01T00", "run-b", ttl)
            .await
            .err()
            .expect("locked");
        assert!(err.to_string().contains("locked by run run-a"), "{err}");
        first.release().await.unwrap();
        Lock::acquire(&views, "2026-01-01T00", "run-b", ttl)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_stale_lock_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let views = Lake::open(dir.path().to_str().unwrap(), false).unwrap();
        let _dead = Lock::acquire(&views, "h", "dead-run", Duration::from_secs(3600))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        Lock::acquire(&views, "h", "next-run", Duration::from_millis(1))
            .await
            .unwrap();
    }
}
