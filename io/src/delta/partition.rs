//! The hour partitioning of every table: two partition columns, `date` (a Delta `date`) and
//! `hour` (an `integer`, 0–23), and the hive path `date=YYYY-MM-DD/hour=HH/` a file of the
//! hour lives under, so the directory layout is the one the lake always had. The events
//! table adds a third level, `event_type` (a `string`): `date=…/hour=…/event_type=purchase/`.

use std::collections::HashMap;

use shared_logic::window::HourKey;

/// The date partition column.
pub const DATE_COLUMN: &str = "date";
/// The hour-of-day partition column.
pub const HOUR_COLUMN: &str = "hour";
/// The event-type partition column of the events table (also a column of its files).
pub const EVENT_TYPE_COLUMN: &str = "event_type";

/// Whether `value` can be a partition value of ours as it stands in a path: a non-empty
/// token of lowercase ASCII letters, digits and underscores (the event types), nothing a
/// path would have to escape.
pub fn is_plain_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The event type among a file's partition values, when the table has that level.
pub fn event_type_of(values: &HashMap<String, Option<String>>) -> Option<String> {
    values.get(EVENT_TYPE_COLUMN)?.clone()
}

/// An hour as a partition: its Delta partition values and its directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HourPartition(pub HourKey);

impl HourPartition {
    fn parts(self) -> (String, String) {
        let text = self.0.to_string(); // 2026-11-24T10
        match text.split_once('T') {
            Some((date, hh)) => (date.to_string(), hh.to_string()),
            None => (text, "00".to_string()),
        }
    }

    /// `date=YYYY-MM-DD/hour=HH`.
    pub fn directory(self) -> String {
        let (date, hh) = self.parts();
        format!("{DATE_COLUMN}={date}/{HOUR_COLUMN}={hh}")
    }

    /// The Delta partition values (`hour` without its leading zero: an integer).
    pub fn values(self) -> HashMap<String, Option<String>> {
        let (date, hh) = self.parts();
        let hour: u32 = hh.parse().unwrap_or(0);
        HashMap::from([
            (DATE_COLUMN.to_string(), Some(date)),
            (HOUR_COLUMN.to_string(), Some(hour.to_string())),
        ])
    }

    /// The directory of a file of this hour, below its event type's when it has one.
    pub fn file_directory(self, event_type: Option<&str>) -> String {
        match event_type {
            Some(t) => format!("{}/{EVENT_TYPE_COLUMN}={t}", self.directory()),
            None => self.directory(),
        }
    }

    /// The Delta partition values of a file of this hour (and of its event type).
    pub fn file_values(self, event_type: Option<&str>) -> HashMap<String, Option<String>> {
        let mut values = self.values();
        if let Some(t) = event_type {
            values.insert(EVENT_TYPE_COLUMN.to_string(), Some(t.to_string()));
        }
        values
    }

    /// The hour of a file's partition values; `None` when they do not name one.
    pub fn from_values(values: &HashMap<String, Option<String>>) -> Option<HourPartition> {
        let date = values.get(DATE_COLUMN)?.as_deref()?;
        let hour: u32 = values.get(HOUR_COLUMN)?.as_deref()?.trim().parse().ok()?;
        if hour > 23 {
            return None;
        }
        HourKey::parse(&format!("{date}T{hour:02}")).map(HourPartition)
    }

    /// The hour of a `date=…/hour=…` directory (the two segments); `None` otherwise.
    pub fn from_directory(date_segment: &str, hour_segment: &str) -> Option<HourPartition> {
        let date = date_segment.strip_prefix("date=")?;
        let hour = hour_segment.strip_prefix("hour=")?;
        if hour.len() != 2 {
            return None;
        }
        HourKey::parse(&format!("{date}T{hour}")).map(HourPartition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_round_trip_through_values_and_directories() {
        let h = HourPartition(HourKey::parse("2026-11-24T07").unwrap());
        assert_eq!(h.directory(), "date=2026-11-24/hour=07");
        assert_eq!(h.values()[HOUR_COLUMN].as_deref(), Some("7"));
        assert_eq!(HourPartition::from_values(&h.values()), Some(h));
        assert_eq!(
            HourPartition::from_directory("date=2026-11-24", "hour=07"),
            Some(h)
        );
        assert_eq!(
            HourPartition::from_directory("date=2026-11-24", "hour=7"),
            None
        );
        let typed = h.file_values(Some("purchase"));
        assert_eq!(HourPartition::from_values(&typed), Some(h));
        assert_eq!(event_type_of(&typed).as_deref(), Some("purchase"));
        assert_eq!(event_type_of(&h.values()), None);
        assert_eq!(
            h.file_directory(Some("purchase")),
            "date=2026-11-24/hour=07/event_type=purchase"
        );
        assert_eq!(h.file_directory(None), h.directory());
        assert!(is_plain_value("add_to_cart"));
        for bad in ["", "a/b", "A", "x=y", "a b", "..", &"x".repeat(65)] {
            assert!(!is_plain_value(bad), "{bad:?}");
        }
        let mut bad = h.values();
        bad.insert(HOUR_COLUMN.into(), Some("24".into()));
        assert_eq!(HourPartition::from_values(&bad), None);
        bad.insert(HOUR_COLUMN.into(), None);
        assert_eq!(HourPartition::from_values(&bad), None);
    }
}
