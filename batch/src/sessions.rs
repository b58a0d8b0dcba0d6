//! The `sessions` view of one hour: sessions that *start* in the hour, computed from every
//! event they can span. A session can begin with events up to the gap before its first
//! event and run on past the hour's end, so the hour's sessions read the neighbouring
//! hours: back to the gap before the hour, forward one hour at a time while a session that
//! starts in the hour still reaches the next hour (never past midnight UTC, where sessions
//! end). Sessions are the shared rule ([`shared_logic::sessions`]), so the speed layer
//! builds the same ones.
//!
//! Every neighbouring hour read (and the first one not read because it held no data yet) is
//! recorded in the hour's manifest entry; when any of their files change, the hour is dirty
//! (see `select_hours`). Memory holds the events of one user-hash bucket of the hours read.

use std::collections::BTreeMap;

use datafusion::prelude::SessionContext;
use futures::StreamExt;
use hashbrown::HashMap;
use lambda_io::manifest::InputFile;
use lambda_io::Lake;
use shared_logic::dedup::wins;
use shared_logic::schema::{SessionColumns, SESSION_COLUMNS};
use shared_logic::sessions::{Activity, UserSessions};
use shared_logic::window::{HourKey, DAY_MS, HOUR_MS};
use shared_logic::{Device, MetricContext, MetricViews, Origin, Sessions};

use crate::error::BatchError;
use crate::scan::{in_bucket, inspect_inputs, streams, table};

/// One event as sessions need it: 64 bytes, no allocation (users by a 128-bit hash,
/// countries interned).
#[derive(Clone, Copy)]
struct Row {
    /// The event id's hash: the dedup key (with the hour) and the tie-break.
    tie: u128,
    user: u128,
    time: i64,
    offset: i64,
    partition: i32,
    country: u16,
    page_view: bool,
    device: Device,
}

impl Row {
    fn origin(&self) -> Origin {
        Origin {
            partition: self.partition,
            offset: self.offset,
        }
    }
}

/// The countries seen, by index.
#[derive(Default)]
struct Countries {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u16>,
}

impl Countries {
    fn intern(&mut self, name: &str) -> u16 {
        if let Some(i) = self.index.get(name) {
            return *i;
        }
        let i = self.names.len() as u16;
        self.names.push(name.into());
        self.index.insert(name.into(), i);
        i
    }
}

/// The hour's sessions view and the neighbouring hours it read (hour → files; an empty
/// list for an hour that had no data).
pub struct HourSessions {
    pub views: MetricViews<Sessions>,
    pub neighbours: BTreeMap<String, Vec<InputFile>>,
    /// No session of the hour can still grow: each ended a full gap (or at midnight)
    /// before the settle horizon.
    pub complete: bool,
}

/// Computes the sessions that start in `hour`, in `buckets` user-hash buckets; event times
/// before `complete_before_ms` are complete in the lake (`None`: all of it).
pub async fn compute(
    lake: &Lake,
    session: &SessionContext,
    hour: HourKey,
    buckets: u64,
    skip_corrupt: bool,
    ctx: &MetricContext,
    complete_before_ms: Option<i64>,
) -> Result<HourSessions, BatchError> {
    let gap = ctx.session_gap_ms.max(0);
    let day_first = HourKey(hour.start_ms().div_euclid(DAY_MS) * 24);
    let day_end = HourKey(day_first.0 + 24);
    let first = HourKey((hour.0 - (gap + HOUR_MS - 1) / HOUR_MS).max(day_first.0));
    let mut files: BTreeMap<HourKey, Vec<InputFile>> = BTreeMap::new();
    let mut views = MetricViews::default();
    let mut examined_empty = None;
    let mut countries = Countries::default();
    // The latest time up to which a session of the hour may still take events.
    let mut open_until = i64::MIN;
    for bucket in 0..buckets {
        let mut last = hour;
        loop {
            for h in first.0..=last.0 {
                let h = HourKey(h);
                if let std::collections::btree_map::Entry::Vacant(slot) = files.entry(h) {
                    slot.insert(list(lake, h, skip_corrupt).await?);
                }
            }
            let read: Vec<&InputFile> = (first.0..=last.0)
                .flat_map(|h| files[&HourKey(h)].iter())
                .collect();
            let from_ms = hour.start_ms() - gap;
            let mut reach = i64::MIN;
            let mut bucket_views = MetricViews::<Sessions>::default();
            for_each_user(
                session,
                hour,
                &read,
                from_ms,
                (bucket, buckets),
                &mut countries,
                |rows, countries| {
                    for s in sessionize(rows, gap, countries).sessions() {
                        if HourKey(s.start.div_euclid(HOUR_MS)) == hour {
                            reach = reach.max(s.end + gap);
                            open_until = open_until.max((s.end + gap).min(day_end.start_ms() - 1));
                            bucket_views.apply_session(s, 1, ctx);
                        }
                    }
                },
            )
            .await?;
            let next = HourKey(last.0 + 1);
            if reach < next.start_ms() || next >= day_end {
                views.merge_owned(bucket_views);
                break;
            }
            // A session of the hour may continue into the next hour: read it too, if any.
            if let std::collections::btree_map::Entry::Vacant(slot) = files.entry(next) {
                slot.insert(list(lake, next, skip_corrupt).await?);
            }
            if files[&next].is_empty() {
                examined_empty = Some(examined_empty.map_or(next, |e: HourKey| e.max(next)));
                views.merge_owned(bucket_views);
                break;
            }
            last = next;
        }
    }
    let mut neighbours: BTreeMap<String, Vec<InputFile>> = files
        .into_iter()
        .filter(|(h, _)| *h != hour)
        .map(|(h, f)| (h.to_string(), f))
        .collect();
    if let Some(h) = examined_empty {
        neighbours.entry(h.to_string()).or_default();
    }
    let complete = complete_before_ms.is_none_or(|horizon| open_until < horizon);
    Ok(HourSessions {
        views,
        neighbours,
        complete,
    })
}

/// One user's sessions (rows deduplicated).
fn sessionize(rows: &[Row], gap: i64, countries: &Countries) -> UserSessions {
    shared_logic::sessions::sessionize(
        rows.iter().map(|r| Activity {
            time: r.time,
            tie: r.tie,
            page_view: r.page_view,
            country: &countries.names[r.country as usize],
            device: r.device,
        }),
        gap,
    )
}

async fn list(
    lake: &Lake,
    hour: HourKey,
    skip_corrupt: bool,
) -> Result<Vec<InputFile>, BatchError> {
    let (inputs, _) = inspect_inputs(lake, lake.hour_files(hour).await?, skip_corrupt).await?;
    Ok(inputs
        .into_iter()
        .map(|(f, rows)| InputFile {
            path: lake.object_url(&f.location),
            bytes: f.size,
            rows,
        })
        .collect())
}

/// Reads the events at or after `from_ms` of the users of one bucket in `files` (earlier
/// events are more than the gap before any session that starts in the hour) and calls
/// `each_user` with each user's deduplicated events, ordered by time. The scan runs on
/// every DataFusion partition in parallel; each partition's rows are sorted by user and
/// the partitions merged user by user, so memory holds the rows once.
async fn for_each_user(
    session: &SessionContext,
    hour: HourKey,
    files: &[&InputFile],
    from_ms: i64,
    bucket: (u64, u64),
    countries: &mut Countries,
    mut each_user: impl FnMut(&[Row], &Countries),
) -> Result<(), BatchError> {
    if files.is_empty() {
        return Ok(());
    }
    let paths = files.iter().map(|f| f.path.clone()).collect();
    let table = table(session, paths, hour).await?;
    let mut tasks = Vec::new();
    for stream in streams(session, &table, hour, &SESSION_COLUMNS).await? {
        tasks.push(tokio::spawn(scan(stream, hour, from_ms, bucket)));
    }
    let mut parts = Vec::new();
    for task in tasks {
        let (mut part, names) = task
            .await
            .map_err(|e| BatchError::Usage(format!("sessions scan task failed: {e}")))??;
        let global: Vec<u16> = names.iter().map(|n| countries.intern(n)).collect();
        for r in part.iter_mut() {
            r.country = global[r.country as usize];
        }
        part.sort_unstable_by_key(|r| r.user);
        parts.push(part);
    }
    // Merge the partitions user by user (each is sorted by user).
    let mut at = vec![0usize; parts.len()];
    let mut rows = Vec::new();
    loop {
        let next = parts
            .iter()
            .zip(&at)
            .filter_map(|(p, i)| p.get(*i).map(|r| r.user))
            .min();
        let Some(user) = next else {
            break;
        };
        rows.clear();
        for (part, i) in parts.iter().zip(at.iter_mut()) {
            while let Some(r) = part.get(*i).filter(|r| r.user == user) {
                rows.push(*r);
                *i += 1;
            }
        }
        dedup(&mut rows);
        each_user(&rows, countries);
    }
    Ok(())
}

/// The shared dedup rule over one user's rows (a user's deliveries share a Kafka partition,
/// as in the speed layer): one delivery per (event id, hour), the winning origin; the rest
/// ordered by time.
fn dedup(rows: &mut Vec<Row>) {
    rows.sort_unstable_by(|a, b| {
        (a.tie, a.time.div_euclid(HOUR_MS))
            .cmp(&(b.tie, b.time.div_euclid(HOUR_MS)))
            .then_with(|| {
                if wins(a.origin(), b.origin()) {
                    std::cmp::Ordering::Less
                } else if wins(b.origin(), a.origin()) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
    });
    rows.dedup_by(|later, first| {
        later.tie == first.tie && later.time.div_euclid(HOUR_MS) == first.time.div_euclid(HOUR_MS)
    });
    rows.sort_unstable_by_key(|r| (r.time, r.tie));
}

/// One DataFusion partition's rows, with the countries it saw (its own interner).
async fn scan(
    mut stream: datafusion::execution::SendableRecordBatchStream,
    hour: HourKey,
    from_ms: i64,
    bucket: (u64, u64),
) -> Result<(Vec<Row>, Vec<Box<str>>), BatchError> {
    let logic = |e| BatchError::logic(format!("sessions of hour {hour}"))(e);
    let mut countries = Countries::default();
    let mut rows = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| BatchError::Scan {
            hour: hour.to_string(),
            source: Box::new(e),
        })?;
        let cols = SessionColumns::new(&batch).map_err(logic)?;
        for i in 0..cols.len() {
            let user = user_hash(cols.user_id(i));
            if cols.time(i) < from_ms || !in_bucket(user, bucket) {
                continue;
            }
            let a = cols.activity(i).map_err(logic)?;
            let origin = cols.origin(i);
            if rows.len() == rows.capacity() {
                // Grow by a quarter, not double: the rows are most of the pass's memory.
                rows.reserve_exact(rows.len() / 4 + 65_536);
            }
            rows.push(Row {
                tie: a.tie,
                user,
                time: a.time,
                offset: origin.offset,
                partition: origin.partition,
                country: countries.intern(a.country),
                page_view: a.page_view,
                device: a.device,
            });
        }
    }
    Ok((rows, countries.names))
}

/// The bucket hash of a user (independent of the id-hash buckets of the dedup passes).
fn user_hash(user: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(user.as_bytes())
}
