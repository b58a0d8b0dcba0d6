//! The hour partitioning of every table: two partition columns, `date` (a Delta `date`) and
//! `hour` (an `integer`, 0–23), and the hive path `date=YYYY-MM-DD/hour=HH/` a file of the
//! hour lives under, so the directory layout is the one the lake always had.

use std::collections::HashMap;

use shared_logic::window::HourKey;

/// The date partition column.
pub const DATE_COLUMN: &str = "date";
/// The hour-of-day partition column.
pub const HOUR_COLUMN: &str = "hour";

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
        let mut bad = h.values();
        bad.insert(HOUR_COLUMN.into(), Some("24".into()));
        assert_eq!(HourPartition::from_values(&bad), None);
        bad.insert(HOUR_COLUMN.into(), None);
        assert_eq!(HourPartition::from_values(&bad), None);
    }
}
