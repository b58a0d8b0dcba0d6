//! Checkpoints: each partition's state together with its next offset, as a whole state
//! (a *base*) followed by the *deltas* of what changed at each later checkpoint
//! ([`crate::changes`]), named by one manifest per partition
//! (`<location>/<group>/<topics>/p<partition>.ckpt`, [`CheckpointStore::for_topics`]) that is written last, with one atomic
//! put. The objects are `p<partition>/<sequence>.base|.delta` beside it.
//!
//! A checkpoint writes what changed since the previous one: a delta holds the windows whose
//! keys changed, the dedup ids added and the users whose sessions changed, so its cost
//! follows the change, not the state. Once the deltas since the base add up to more bytes
//! than the base, the next checkpoint writes a new base instead (so a restore reads at most
//! about twice the state, and the writes stay proportional to the change over time) and
//! the replaced objects are deleted. A failed write makes the next checkpoint a base.
//!
//! The offset lives inside the checkpoint, so state and offsets can never disagree; Kafka
//! offsets are committed only after the manifest is durable, and on restore any record
//! below the checkpoint's offset is skipped, so a crash between the two changes nothing; a
//! crash before the manifest's put leaves the previous manifest, whose objects are intact.
//! A manifest records its format and the metric logic's fingerprint: state encoded by
//! another format, or computed under other logic, windows or rates, is refused (replay
//! instead).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lambda_io::Lake;
use serde::{Deserialize, Serialize};
use shared_logic::MetricContext;

use crate::changes::Delta;
use crate::error::SpeedError;
use crate::partition::PartitionState;

/// Format 6: a state's arrival counts and dead-letter samples (the quality report). Format 5
/// added a state's offsets and event-time progress per topic (a state may read several
/// topics). Format 4 was a manifest naming a base and deltas with one topic's offset;
/// format 3 one whole state with dedup ids in increasing order; format 2 held them in
/// hash-set order.
const FORMAT: u32 = 6;

/// The manifest of one partition's checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    logic: String,
    /// Sequence number of the last object written.
    seq: u64,
    /// The base object and its size.
    base: String,
    base_bytes: usize,
    /// The deltas after it, in order, and their total size.
    deltas: Vec<String>,
    delta_bytes: usize,
}

/// What a checkpoint of one partition writes: the state whole, or what changed.
pub enum Prepared {
    Base(Vec<u8>),
    Delta(Vec<u8>),
}

impl Prepared {
    /// Bytes to write.
    pub fn len(&self) -> usize {
        match self {
            Prepared::Base(b) | Prepared::Delta(b) => b.len(),
        }
    }

    /// True when there is nothing to write (never: a checkpoint always has its scalars).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True for a whole state.
    pub fn is_base(&self) -> bool {
        matches!(self, Prepared::Base(_))
    }
}

/// Where checkpoints of one consumer group and topic live.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    location: Lake,
    prefix: String,
    /// The manifest last written or read, per partition: the chain the next delta extends.
    chains: Arc<Mutex<HashMap<i32, Manifest>>>,
}

fn encode<T: Serialize>(partition: i32, value: &T) -> Result<Vec<u8>, SpeedError> {
    postcard::to_stdvec(value).map_err(|e| SpeedError::Checkpoint {
        partition,
        reason: format!("encode: {e}"),
    })
}

impl CheckpointStore {
    /// The store of a group reading `topics`: `<group>/<topic>` for one topic, and
    /// `<group>/<topic>+<topic>...` (sorted) for several (Kafka topic names hold no `+`).
    pub fn for_topics(location: Lake, group: &str, topics: &[String]) -> Self {
        let mut sorted: Vec<&str> = topics.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        CheckpointStore::new(location, group, &sorted.join("+"))
    }

    /// Checkpoints under `location` for `group` on `topic`.
    pub fn new(location: Lake, group: &str, topic: &str) -> Self {
        CheckpointStore {
            location,
            prefix: format!("{group}/{topic}"),
            chains: Arc::default(),
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

    fn object(&self, partition: i32, name: &str) -> object_store::path::Path {
        self.location
            .path(&format!("{}/p{partition}/{name}", self.prefix))
    }

    fn chain(&self, partition: i32) -> Option<Manifest> {
        let chains = self.chains.lock().unwrap_or_else(|p| p.into_inner());
        chains.get(&partition).cloned()
    }

    fn set_chain(&self, partition: i32, manifest: Option<Manifest>) {
        let mut chains = self.chains.lock().unwrap_or_else(|p| p.into_inner());
        match manifest {
            Some(m) => chains.insert(partition, m),
            None => chains.remove(&partition),
        };
    }

    /// What the next checkpoint of `partition` writes: a delta of the changes since the
    /// last one when this store wrote or read that partition's chain and the deltas are
    /// still smaller than the base, else the whole state. Cheap enough to run under the
    /// views' lock: it encodes only the changes, or the state once per base.
    pub fn prepare(
        &self,
        partition: i32,
        state: &mut PartitionState,
    ) -> Result<Prepared, SpeedError> {
        if let Some(chain) = self.chain(partition).filter(|_| state.is_tracking()) {
            let delta: Delta = state.take_delta();
            let bytes = encode(partition, &delta)?;
            if chain.delta_bytes + bytes.len() <= chain.base_bytes {
                return Ok(Prepared::Delta(bytes));
            }
        }
        state.start_tracking();
        Ok(Prepared::Base(encode(partition, &*state)?))
    }

    /// Writes a prepared checkpoint of `partition`: its object, then the manifest that
    /// names it. Returns the bytes written.
    pub async fn write(
        &self,
        partition: i32,
        prepared: Prepared,
        ctx: &MetricContext,
    ) -> Result<usize, SpeedError> {
        let result = self.write_chain(partition, prepared, ctx).await;
        if result.is_err() {
            // The changes taken for this checkpoint are not on disk: the next one is whole.
            self.set_chain(partition, None);
        }
        result
    }

    async fn write_chain(
        &self,
        partition: i32,
        prepared: Prepared,
        ctx: &MetricContext,
    ) -> Result<usize, SpeedError> {
        let failed = |e: lambda_io::IoError| SpeedError::Checkpoint {
            partition,
            reason: e.to_string(),
        };
        let old = self.chain(partition);
        let seq = old.as_ref().map_or(0, |m| m.seq) + 1;
        let len = prepared.len();
        let (manifest, replaced) = match prepared {
            Prepared::Base(bytes) => {
                let name = format!("{seq:012}.base");
                self.location
                    .put(&self.object(partition, &name), bytes)
                    .await
                    .map_err(failed)?;
                let manifest = Manifest {
                    format: FORMAT,
                    logic: ctx.fingerprint(),
                    seq,
                    base: name,
                    base_bytes: len,
                    ..Manifest::default()
                };
                (manifest, old)
            }
            Prepared::Delta(bytes) => {
                let Some(mut manifest) = old else {
                    return Err(SpeedError::Checkpoint {
                        partition,
                        reason: "a delta without a base".into(),
                    });
                };
                let name = format!("{seq:012}.delta");
                self.location
                    .put(&self.object(partition, &name), bytes)
                    .await
                    .map_err(failed)?;
                manifest.seq = seq;
                manifest.deltas.push(name);
                manifest.delta_bytes += len;
                (manifest, None)
            }
        };
        let bytes = encode(partition, &manifest)?;
        self.location
            .put(&self.path(partition), bytes)
            .await
            .map_err(failed)?;
        self.set_chain(partition, Some(manifest));
        if let Some(old) = replaced {
            // The new manifest no longer names them; a failure leaves garbage, not damage.
            for name in std::iter::once(&old.base).chain(&old.deltas) {
                let _ = self.location.delete(&self.object(partition, name)).await;
            }
        }
        Ok(len)
    }

    /// Writes a partition's whole state (a new base).
    pub async fn save(
        &self,
        partition: i32,
        state: &PartitionState,
        ctx: &MetricContext,
    ) -> Result<usize, SpeedError> {
        let bytes = encode(partition, state)?;
        self.write(partition, Prepared::Base(bytes), ctx).await
    }

    async fn read(
        &self,
        partition: i32,
        path: &object_store::path::Path,
    ) -> Result<Option<Vec<u8>>, SpeedError> {
        let bytes = self
            .location
            .get(path)
            .await
            .map_err(|e| SpeedError::Checkpoint {
                partition,
                reason: e.to_string(),
            })?;
        Ok(bytes.map(|b| b.to_vec()))
    }

    /// Reads a partition's state (its base and deltas); `None` when it was never
    /// checkpointed. The next checkpoint through this store extends the chain read.
    pub async fn load(
        &self,
        partition: i32,
        ctx: &MetricContext,
    ) -> Result<Option<PartitionState>, SpeedError> {
        let path = self.path(partition);
        let unreadable = |what: &object_store::path::Path, e: String| SpeedError::Checkpoint {
            partition,
            reason: format!("{} is unreadable: {e}", self.location.object_url(what)),
        };
        let Some(bytes) = self.read(partition, &path).await? else {
            self.set_chain(partition, None);
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
        let manifest: Manifest =
            postcard::from_bytes(&bytes).map_err(|e| unreadable(&path, e.to_string()))?;
        if manifest.logic != ctx.fingerprint() {
            return Err(SpeedError::Checkpoint {
                partition,
                reason: format!(
                    "{} was written by other metric logic ({}; this is {}): replay from the beginning into a new group",
                    self.location.object_url(&path),
                    manifest.logic,
                    ctx.fingerprint()
                ),
            });
        }
        let missing = |what: &object_store::path::Path| {
            unreadable(what, "named by the manifest but missing".into())
        };
        let base_path = self.object(partition, &manifest.base);
        let bytes = self
            .read(partition, &base_path)
            .await?
            .ok_or_else(|| missing(&base_path))?;
        let mut state: PartitionState =
            postcard::from_bytes(&bytes).map_err(|e| unreadable(&base_path, e.to_string()))?;
        for name in &manifest.deltas {
            let delta_path = self.object(partition, name);
            let bytes = self
                .read(partition, &delta_path)
                .await?
                .ok_or_else(|| missing(&delta_path))?;
            let delta: Delta =
                postcard::from_bytes(&bytes).map_err(|e| unreadable(&delta_path, e.to_string()))?;
            state.apply_delta(delta);
        }
        state.start_tracking();
        self.set_chain(partition, Some(manifest));
        Ok(Some(state))
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
        state.apply(
            shared_logic::topics::EVENTS,
            0,
            41,
            b"{}",
            &shared_logic::Validator::default(),
            None,
            &MetricContext::default(),
            &Default::default(),
        );
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

    const T0: i64 = 1_767_225_600_000;
    const MIN: i64 = 60_000;

    /// Event `i` of a stream over `users` users and about two and a half hours (so dedup
    /// hours expire, sessions are forgotten and merge), every 13th a repeat of the one
    /// before, every 17th a minute late.
    fn record(i: i64, users: i64) -> (i64, Vec<u8>) {
        let id = if i % 13 == 12 { i - 1 } else { i };
        let t = T0 + id * 9_000 - if i % 17 == 0 { MIN } else { 0 };
        let kind = ["page_view", "page_view", "add_to_cart", "purchase"][(id % 4) as usize];
        let json = format!(
            r#"{{"event_id":"e{id}","event_type":"{kind}","event_time":{t},"user_id":"u{}","url":"/p/{}","product_id":"p","quantity":1,"price":"2.50","currency":"USD","category":"toys","country":"{}"}}"#,
            id % users,
            id % 5,
            ["DE", "US", "FR"][(id % 3) as usize]
        );
        (t + 1_000, json.into_bytes())
    }

    fn apply(state: &mut PartitionState, from: i64, to: i64, users: i64) {
        let (ctx, time, v) = (
            MetricContext::default(),
            crate::partition::TimeSettings::default(),
            shared_logic::Validator::default(),
        );
        for i in from..to {
            let (ts, json) = record(i, users);
            state.apply(
                shared_logic::topics::EVENTS,
                0,
                i,
                &json,
                &v,
                Some(ts),
                &ctx,
                &time,
            );
        }
    }

    fn store_in(dir: &tempfile::TempDir) -> CheckpointStore {
        CheckpointStore::new(
            Lake::open(dir.path().to_str().unwrap(), false).unwrap(),
            "g",
            "t",
        )
    }

    /// Checkpoints through `store` as the consumer does: dedup expiry, then prepare and
    /// write; returns whether a base was written and its bytes.
    async fn checkpoint(store: &CheckpointStore, state: &mut PartitionState) -> (bool, usize) {
        let (ctx, time) = (
            MetricContext::default(),
            crate::partition::TimeSettings::default(),
        );
        state.expire_dedup(&time, &ctx);
        let prepared = store.prepare(0, state).unwrap();
        let base = prepared.is_base();
        (base, store.write(0, prepared, &ctx).await.unwrap())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

        /// A base and deltas taken at any points of the stream (with dedup expiry and an
        /// eviction by the batch boundary between them), restored and replayed, give
        /// exactly the state of a run that never stopped; so does a restore that then
        /// checkpoints again through another store.
        #[test]
        fn a_base_and_deltas_restored_and_replayed_give_the_uninterrupted_state(
            cuts in proptest::collection::btree_set(1i64..1_000, 1..8),
            evict_at in 0usize..8,
            users in 3i64..40,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let ctx = MetricContext::default();
                let dir = tempfile::tempdir().unwrap();
                let store = store_in(&dir);
                let mut live = PartitionState::default();
                let mut whole = PartitionState::default();
                let mut done = 0;
                for (n, cut) in cuts.iter().enumerate() {
                    apply(&mut live, done, *cut, users);
                    apply(&mut whole, done, *cut, users);
                    if n == evict_at {
                        let at = Some(T0 + cut * 4_000);
                        live.evict_before(at, at, &ctx);
                        whole.evict_before(at, at, &ctx);
                    }
                    // Bases or deltas, as their sizes decide (the test below makes sure
                    // deltas are written).
                    checkpoint(&store, &mut live).await;
                    // The uninterrupted run expires as the checkpoint did.
                    whole.expire_dedup(&crate::partition::TimeSettings::default(), &ctx);
                    done = *cut;
                }
                let mut restored = store_in(&dir).load(0, &ctx).await.unwrap().unwrap();
                proptest::prop_assert_eq!(&restored, &whole);
                apply(&mut restored, 0, 1_100, users);
                apply(&mut whole, done, 1_100, users);
                proptest::prop_assert_eq!(&restored, &whole);
                // A restored chain takes further deltas.
                let again = store_in(&dir);
                let mut resumed = again.load(0, &ctx).await.unwrap().unwrap();
                apply(&mut resumed, 0, 1_200, users);
                checkpoint(&again, &mut resumed).await;
                let back = store_in(&dir).load(0, &ctx).await.unwrap().unwrap();
                proptest::prop_assert_eq!(&back, &resumed);
                Ok(())
            })?;
        }
    }

    #[tokio::test]
    async fn a_checkpoint_writes_what_changed_not_the_state() {
        let ctx = MetricContext::default();
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir);
        let mut state = PartitionState::default();
        apply(&mut state, 0, 800, 50);
        let (base, base_bytes) = checkpoint(&store, &mut state).await;
        assert!(base);
        apply(&mut state, 800, 810, 50);
        let (base, delta_bytes) = checkpoint(&store, &mut state).await;
        assert!(!base);
        assert!(
            delta_bytes * 10 < base_bytes,
            "{delta_bytes} of {base_bytes}"
        );
        // Deltas adding up past the base make the next checkpoint a base, and the replaced
        // objects are deleted.
        let mut bases = 0;
        for k in 0..200 {
            apply(&mut state, 810 + k * 10, 820 + k * 10, 50);
            bases += usize::from(checkpoint(&store, &mut state).await.0);
        }
        assert!(bases >= 1);
        let objects = store
            .location
            .list(&store.location.path("g/t/p0"))
            .await
            .unwrap();
        let manifest = store.chain(0).unwrap();
        assert_eq!(objects.len(), 1 + manifest.deltas.len());
        assert_eq!(store.load(0, &ctx).await.unwrap(), Some(state));
    }
}
