//! Checkpoints: each partition's state together with its next offset, in one object per
//! partition (`<location>/<group>/<topic>/p<partition>.ckpt`), written with one atomic put.
//!
//! The offset lives inside the checkpoint, so state and offsets can never disagree; Kafka
//! offsets are committed only after the checkpoint is durable, and on restore any record
//! below the checkpoint's offset is skipped, so a crash between the two changes nothing.
//! A checkpoint records its format and the metric logic's fingerprint: state encoded by
//! another format, or computed under other logic, windows or rates, is refused (replay
//! instead).

use lambda_io::Lake;
use serde::{Deserialize, Serialize};
use shared_logic::MetricContext;

use crate::error::SpeedError;
use crate::partition::PartitionState;

/// Format 3: dedup ids in increasing order (the compact id table); format 2 held them in
/// hash-set order and the record-time-bounded watermark progress.
const FORMAT: u32 = 3;

#[derive(Serialize, Deserialize)]
struct Envelope {
    format: u32,
    logic: String,
    state: PartitionState,
}

/// Where checkpoints of one consumer group and topic live.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    location: Lake,
    prefix: String,
}

impl CheckpointStore {
    /// Checkpoints under `location` for `group` on `topic`.
    pub fn new(location: Lake, group: &str, topic: &str) -> Self {
        CheckpointStore {
            location,
            prefix: format!("{group}/{topic}"),
        }
    }

    /// Whether no partition of this group and topic has a checkpoint.
    pub async fn is_empty(&self) -> Result<bool, SpeedError> {
        let prefix = self.location.path(&self.prefix);
        let files = self
            .location
            .list(&prefix)
            .await
            .map_err(|e| SpeedError::Checkpoint {
                partition: -1,
                reason: format!("listing {}: {e}", self.location.object_url(&prefix)),
            })?;
        Ok(files.is_empty())
    }

    fn path(&self, partition: i32) -> object_store::path::Path {
        self.location
            .path(&format!("{}/p{partition}.ckpt", self.prefix))
    }

    /// Writes a partition's state atomically.
    pub async fn save(
        &self,
        partition: i32,
        state: &PartitionState,
        ctx: &MetricContext,
    ) -> Result<usize, SpeedError> {
        let envelope = Envelope {
            format: FORMAT,
            logic: ctx.fingerprint(),
            state: state.clone(),
        };
        let bytes = postcard::to_stdvec(&envelope).map_err(|e| SpeedError::Checkpoint {
            partition,
            reason: format!("encode: {e}"),
        })?;
        let len = bytes.len();
        self.location
            .put(&self.path(partition), bytes)
            .await
            .map_err(|e| SpeedError::Checkpoint {
                partition,
                reason: e.to_string(),
            })?;
        Ok(len)
    }

    /// Reads a partition's state; `None` when it was never checkpointed.
    pub async fn load(
        &self,
        partition: i32,
        ctx: &MetricContext,
    ) -> Result<Option<PartitionState>, SpeedError> {
        let path = self.path(partition);
        let Some(bytes) = self
            .location
            .get(&path)
            .await
            .map_err(|e| SpeedError::Checkpoint {
                partition,
                reason: e.to_string(),
            })?
        else {
            return Ok(None);
        };
        // The format comes first, so a checkpoint of another format is named as such
        // rather than failing to decode.
        if let Ok((format, _)) = postcard::take_from_bytes::<u32>(&bytes) {
            if format != FORMAT {
                return Err(SpeedError::Checkpoint {
                    partition,
                    reason: format!(
                        "{} has checkpoint format {format}, this build reads format {FORMAT}: replay from the beginning into a new group",
                        self.location.object_url(&path)
                    ),
                });
            }
        }
        let envelope: Envelope =
            postcard::from_bytes(&bytes).map_err(|e| SpeedError::Checkpoint {
                partition,
                reason: format!("{} is unreadable: {e}", self.location.object_url(&path)),
            })?;
        if envelope.logic != ctx.fingerprint() {
            return Err(SpeedError::Checkpoint {
                partition,
                reason: format!(
                    "{} was written by other metric logic ({}; this is {}): replay from the beginning into a new group",
                    self.location.object_url(&path),
                    envelope.logic,
                    ctx.fingerprint()
                ),
            });
        }
        Ok(Some(envelope.state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checkpoints_round_trip_and_refuse_other_logic() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(
            Lake::open(dir.path().to_str().unwrap(), false).unwrap(),
            "g",
            "t",
        );
        let ctx = MetricContext::default();
        assert_eq!(store.load(3, &ctx).await.unwrap(), None);
        assert!(store.is_empty().await.unwrap());
        let mut state = PartitionState::default();
        state.next_offset = 42;
        store.save(3, &state, &ctx).await.unwrap();
        assert!(!store.is_empty().await.unwrap());
        assert_eq!(store.load(3, &ctx).await.unwrap(), Some(state));
        let other = MetricContext {
            windows: shared_logic::WindowSpec::tumbling(300_000).unwrap(),
            ..ctx
        };
        let err = store.load(3, &other).await.unwrap_err();
        assert!(err.to_string().contains("other metric logic"), "{err}");
        // A checkpoint of the previous format (before the record-time-bounded watermark).
        let ctx = MetricContext::default();
        let old = postcard::to_stdvec(&(1u32, ctx.fingerprint())).unwrap();
        store.location.put(&store.path(4), old).await.unwrap();
        let err = store.load(4, &ctx).await.unwrap_err();
        assert!(err.to_string().contains("checkpoint format 1"), "{err}");
    }
}
