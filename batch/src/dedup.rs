//! Pass one of an hour: the winning (first) origin of every event id delivered more than
//! once, by the shared dedup rule. Reads only `event_id`, partition and offset; holds one
//! entry per distinct id of the bucket.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::datasource::listing::ListingTable;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use hashbrown::HashMap;
use shared_logic::dedup::{id_hash, wins};
use shared_logic::schema::col;
use shared_logic::window::HourKey;
use shared_logic::Origin;

use crate::error::BatchError;
use crate::scan::{in_bucket, streams};

/// Winning origins of ids seen more than once, and whether each has been folded already
/// (so that the same record present twice still counts once).
pub(crate) type Winners = HashMap<u128, (Origin, AtomicBool)>;

/// Pass one: the winning origin of every id of the bucket that occurs more than once.
pub(crate) async fn find_duplicates(
    session: &SessionContext,
    table: &Arc<ListingTable>,
    hour: HourKey,
    bucket: (u64, u64),
    duplicates: &mut u64,
) -> Result<Winners, BatchError> {
    const SHARDS: usize = 64;
    let first_seen: Arc<Vec<Mutex<HashMap<u128, Origin>>>> =
        Arc::new((0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect());
    let repeated: Arc<Mutex<HashMap<u128, Origin>>> = Arc::new(Mutex::new(HashMap::new()));
    let dup_rows = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for mut stream in streams(
        session,
        table,
        hour,
        &[col::EVENT_ID, col::PARTITION, col::OFFSET],
    )
    .await?
    {
        let (first_seen, repeated, dup_rows) =
            (first_seen.clone(), repeated.clone(), dup_rows.clone());
        tasks.push(tokio::spawn(async move {
            let mut per_shard: Vec<Vec<(u128, Origin)>> = vec![Vec::new(); SHARDS];
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| BatchError::Scan {
                    hour: hour.to_string(),
                    source: Box::new(e),
                })?;
                let cols = IdColumns::new(&batch)
                    .map_err(|e| BatchError::logic(format!("hour {hour}"))(e))?;
                for i in 0..batch.num_rows() {
                    let h = id_hash(cols.id(i));
                    if in_bucket(h, bucket) {
                        per_shard[(h as usize) % SHARDS].push((h, cols.origin(i)));
                    }
                }
                for (shard, rows) in per_shard.iter_mut().enumerate() {
                    if rows.is_empty() {
                        continue;
                    }
                    let mut map = first_seen[shard].lock().expect("shard lock");
                    for (h, origin) in rows.drain(..) {
                        match map.get_mut(&h) {
                            None => {
                                map.insert(h, origin);
                            }
                            Some(kept) => {
                                dup_rows.fetch_add(1, Ordering::Relaxed);
                                let best = if wins(origin, *kept) { origin } else { *kept };
                                *kept = best;
                                let mut rep = repeated.lock().expect("repeated lock");
                                let slot = rep.entry(h).or_insert(best);
                                if wins(best, *slot) {
                                    *slot = best;
                                }
                            }
                        }
                    }
                }
            }
            Ok::<(), BatchError>(())
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| BatchError::Usage(format!("scan task failed: {e}")))??;
    }
    *duplicates += dup_rows.load(Ordering::Relaxed);
    let repeated = Arc::try_unwrap(repeated)
        .map(|m| m.into_inner().unwrap_or_default())
        .unwrap_or_default();
    Ok(repeated
        .into_iter()
        .map(|(h, o)| (h, (o, AtomicBool::new(false))))
        .collect())
}

/// `event_id`, partition and offset of a batch (pass one's projection).
struct IdColumns<'a> {
    ids: EventColumnsIds<'a>,
    partitions: &'a arrow::array::Int32Array,
    offsets: &'a arrow::array::Int64Array,
}

enum EventColumnsIds<'a> {
    Utf8(&'a arrow::array::StringArray),
    View(&'a arrow::array::StringViewArray),
}

impl<'a> IdColumns<'a> {
    fn new(batch: &'a arrow::array::RecordBatch) -> Result<Self, shared_logic::LogicError> {
        use arrow::array::AsArray;
        let missing =
            |c: &str| shared_logic::LogicError::Schema(format!("missing or mistyped column `{c}`"));
        let ids = batch
            .column_by_name(col::EVENT_ID)
            .ok_or_else(|| missing(col::EVENT_ID))?;
        let ids = match ids.data_type() {
            arrow::datatypes::DataType::Utf8 => EventColumnsIds::Utf8(ids.as_string::<i32>()),
            arrow::datatypes::DataType::Utf8View => EventColumnsIds::View(ids.as_string_view()),
            _ => return Err(missing(col::EVENT_ID)),
        };
        let partitions = batch
            .column_by_name(col::PARTITION)
            .and_then(|a| a.as_primitive_opt::<arrow::datatypes::Int32Type>())
            .ok_or_else(|| missing(col::PARTITION))?;
        let offsets = batch
            .column_by_name(col::OFFSET)
            .and_then(|a| a.as_primitive_opt::<arrow::datatypes::Int64Type>())
            .ok_or_else(|| missing(col::OFFSET))?;
        Ok(IdColumns {
            ids,
            partitions,
            offsets,
        })
    }

    fn id(&self, i: usize) -> &'a str {
        match &self.ids {
            EventColumnsIds::Utf8(a) => a.value(i),
            EventColumnsIds::View(a) => a.value(i),
        }
    }

    fn origin(&self, i: usize) -> Origin {
        Origin {
            partition: self.partitions.value(i),
            offset: self.offsets.value(i),
        }
    }
}
