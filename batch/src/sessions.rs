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
use shared_logic::dedup::wins;
use shared_logic::schema::{EventColumns, METRIC_COLUMNS};
use shared_logic::sessions::{Activity, UserSessions};
use shared_logic::window::{HourKey, DAY_MS, HOUR_MS};
use shared_logic::{Device, MetricContext, MetricViews, Origin, Sessions};

use crate::error::BatchError;
use crate::job::{inspect_inputs, streams, table};
use crate::lake::Lake;
use crate::manifest::InputFile;

/// One event as sessions need it, owned.
struct Owned {
    origin: Origin,
    time: i64,
    tie: u128,
    page_view: bool,
    country: Box<str>,
    device: Device,
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
            let users = read_users(lake, session, hour, &read, (bucket, buckets)).await?;
            let mut reach = i64::MIN;
            let mut bucket_views = MetricViews::<Sessions>::default();
            for events in users.values() {
                let sessions = sessionize(events, gap);
                for s in sessions.sessions() {
                    if HourKey(s.start.div_euclid(HOUR_MS)) == hour {
                        reach = reach.max(s.end + gap);
                        open_until = open_until.max((s.end + gap).min(day_end.start_ms() - 1));
                        bucket_views.apply_session(s, 1, ctx);
                    }
                }
            }
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

/// One user's sessions (events already deduplicated).
fn sessionize(events: &[Owned], gap: i64) -> UserSessions {
    shared_logic::sessions::sessionize(
        events.iter().map(|e| Activity {
            time: e.time,
            tie: e.tie,
            page_view: e.page_view,
            country: &e.country,
            device: e.device,
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

/// The deduplicated events of the users of one bucket in `files`, by user.
async fn read_users(
    lake: &Lake,
    session: &SessionContext,
    hour: HourKey,
    files: &[&InputFile],
    bucket: (u64, u64),
) -> Result<HashMap<Box<str>, Vec<Owned>>, BatchError> {
    if files.is_empty() {
        return Ok(HashMap::new());
    }
    let paths = files.iter().map(|f| f.path.clone()).collect();
    let table = table(lake, session, paths, hour).await?;
    // Dedup key: (event id, hour), the shared rule; the winner by origin.
    let mut kept: HashMap<(u128, i64), (Box<str>, Owned)> = HashMap::new();
    let logic = |e| BatchError::logic(format!("sessions of hour {hour}"))(e);
    for mut stream in streams(session, &table, hour, &METRIC_COLUMNS).await? {
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| BatchError::Scan {
                hour: hour.to_string(),
                source: Box::new(e),
            })?;
            let cols = EventColumns::new(&batch).map_err(logic)?;
            for i in 0..cols.len() {
                let event = cols.row(i).map_err(logic)?;
                if !crate::job::in_bucket(user_hash(event.user_id()), bucket) {
                    continue;
                }
                let a = Activity::of(&event);
                let key = (a.tie, a.time.div_euclid(HOUR_MS));
                if kept
                    .get(&key)
                    .is_some_and(|(_, k)| !wins(event.origin(), k.origin))
                {
                    continue;
                }
                let owned = Owned {
                    origin: event.origin(),
                    time: a.time,
                    tie: a.tie,
                    page_view: a.page_view,
                    country: a.country.into(),
                    device: a.device,
                };
                kept.insert(key, (event.user_id().into(), owned));
            }
        }
    }
    let mut users: HashMap<Box<str>, Vec<Owned>> = HashMap::new();
    for (_, (user, owned)) in kept {
        users.entry(user).or_default().push(owned);
    }
    Ok(users)
}

/// The bucket hash of a user (independent of the id-hash buckets of the dedup passes).
fn user_hash(user: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(user.as_bytes())
}
