//! A lake whose batch views are published, made in this process for tests that need
//! batch-covered hours without a broker: generated records imported as `lambda lake
//! import` does, then the batch job run over their hours.

use std::path::Path;

use batch::job::{BatchOptions, HourSelection};
use lambda_io::Lake;
use shared_logic::generate::GeneratorConfig;
use shared_logic::window::{HourKey, HOUR_MS};
use shared_logic::{Event, Origin, Validator};

/// Hours published by [`publish_hours`].
pub struct PublishedLake {
    /// The lake (events and dead letters).
    pub lake: Lake,
    /// The batch views under it (`<lake>/views`).
    pub views: Lake,
    /// The generated records, as imported.
    pub lines: Vec<Vec<u8>>,
    /// Start of the first published hour (epoch ms).
    pub from_ms: i64,
    /// End of the last published hour: the batch time boundary.
    pub to_ms: i64,
}

impl PublishedLake {
    /// The valid events of the published hours (duplicates dropped as the layers do).
    pub fn events(&self) -> Vec<Event> {
        let v = Validator::default();
        let now = chrono::Utc::now().timestamp_millis();
        let valid = self
            .lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| v.validate(l, Origin::import_line(i as i64), now).ok())
            .filter(|e| (self.from_ms..self.to_ms).contains(&e.event_time().0));
        shared_logic::dedup::first_wins(valid)
    }
}

/// Generates `hours` complete hours of events (seed `seed`) ending two hours before now,
/// imports them into a lake under `root` and publishes their batch views.
pub async fn publish_hours(root: &Path, seed: u64, hours: i64) -> PublishedLake {
    publish_hours_at(root, seed, hours, 0.5).await
}

/// [`publish_hours`] with `events_per_second` of event time.
pub async fn publish_hours_at(
    root: &Path,
    seed: u64,
    hours: i64,
    events_per_second: f64,
) -> PublishedLake {
    let now = chrono::Utc::now().timestamp_millis();
    let to_ms = (now.div_euclid(HOUR_MS) - 2) * HOUR_MS;
    let from_ms = to_ms - hours * HOUR_MS;
    let lake =
        Lake::open(root.join("lake").to_str().expect("a UTF-8 path"), true).expect("a local lake");
    let cfg = GeneratorConfig {
        events_per_second,
        ..GeneratorConfig::default()
    };
    let lines = crate::data::records_until(seed, from_ms, to_ms, now, cfg);
    crate::data::import_lines(&lake, &lines, "gen", 5_000, now).await;
    let views = lake.child("views");
    let selection = HourSelection::Range {
        from: HourKey(from_ms / HOUR_MS),
        to: HourKey(to_ms / HOUR_MS),
    };
    let report = batch::job::run(&lake, &views, &selection, &BatchOptions::default())
        .await
        .expect("the batch run");
    assert_eq!(report.hours.len() as i64, hours, "every hour has data");
    PublishedLake {
        lake,
        views,
        lines,
        from_ms,
        to_ms,
    }
}

/// Metric `M`'s published views, every covered hour, as the batch layer reads them back.
pub async fn published_views<M: shared_logic::Metric>(
    views: &Lake,
) -> shared_logic::MetricViews<M> {
    let published = lambda_io::manifest::Published::load(views)
        .await
        .expect("the published state");
    let hours: Vec<HourKey> = published
        .hours
        .keys()
        .filter_map(|h| HourKey::parse(h))
        .collect();
    batch::view_files::read_views::<M>(views, &published, &hours)
        .await
        .expect("the published views")
}
