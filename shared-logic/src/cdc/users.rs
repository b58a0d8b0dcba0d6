//! The `users` dimension: every version of every user's country and birth year, so both
//! layers find a buyer's country and age group as of an order's time.

use chrono::{Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::change::Change;
use super::reject::CdcRejection;
use super::rows::Row;
use super::versions::{Version, Versions};
use crate::event::UNKNOWN;

/// What the `users` dimension keeps of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAttributes {
    /// ISO 3166 alpha-2, upper case; `None` when the row has none.
    pub country: Option<String>,
    pub birth_year: Option<i32>,
}

/// Every version of every user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserTable(Versions<UserAttributes>);

/// One version of a user, as the lake keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserVersion {
    pub user_id: String,
    /// Epoch ms; `i64::MIN` for a row first seen by a snapshot (valid for all earlier time).
    pub valid_from: i64,
    /// The next version's `valid_from`; `None` for the current version.
    pub valid_to: Option<i64>,
    /// `None` after the user was deleted.
    pub attributes: Option<UserAttributes>,
}

/// The age groups of `daily_sales`, youngest first: an age is the calendar year of the
/// order minus the birth year (the table keeps a year, not a date).
pub const AGE_GROUPS: &[&str] = &[
    "under_18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+",
];

/// The age group of someone born in `birth_year` at `time_ms`; [`UNKNOWN`] without a birth
/// year, or for a birth year after the time.
pub fn age_group(birth_year: Option<i32>, time_ms: i64) -> &'static str {
    let Some(born) = birth_year else {
        return UNKNOWN;
    };
    let Some(year) = Utc.timestamp_millis_opt(time_ms).single().map(|t| t.year()) else {
        return UNKNOWN;
    };
    match year - born {
        age if age < 0 => UNKNOWN,
        0..=17 => AGE_GROUPS[0],
        18..=24 => AGE_GROUPS[1],
        25..=34 => AGE_GROUPS[2],
        35..=44 => AGE_GROUPS[3],
        45..=54 => AGE_GROUPS[4],
        55..=64 => AGE_GROUPS[5],
        _ => AGE_GROUPS[6],
    }
}

impl UserTable {
    /// Applies one users change (already deduplicated). Updates and deletes of a user
    /// never seen are rejected.
    pub fn apply(&mut self, change: &Change) -> Result<(), CdcRejection> {
        let attributes = match &change.after {
            Some(Row::User(u)) => Some(UserAttributes {
                country: u.country.clone(),
                birth_year: u.birth_year,
            }),
            _ => None,
        };
        self.0.apply(change, attributes, "user")
    }

    /// Whether any change of the user was applied.
    pub fn knows(&self, user_id: &str) -> bool {
        self.0.knows(user_id)
    }

    /// The user's country at `time_ms` ([`UNKNOWN`] for a user unknown then, or without
    /// a country).
    pub fn country_at(&self, user_id: &str, time_ms: i64) -> &str {
        self.0
            .at(user_id, time_ms)
            .and_then(|a| a.country.as_deref())
            .unwrap_or(UNKNOWN)
    }

    /// The user's age group at `time_ms` (see [`age_group`]).
    pub fn age_group_at(&self, user_id: &str, time_ms: i64) -> &'static str {
        age_group(
            self.0.at(user_id, time_ms).and_then(|a| a.birth_year),
            time_ms,
        )
    }

    /// Every version, ordered by user and time.
    pub fn versions(&self) -> Vec<UserVersion> {
        self.0
            .versions()
            .into_iter()
            .map(|v| UserVersion {
                user_id: v.key,
                valid_from: v.valid_from,
                valid_to: v.valid_to,
                attributes: v.attributes,
            })
            .collect()
    }

    /// Rebuilds a table from versions (as the lake keeps them).
    pub fn from_versions(versions: impl IntoIterator<Item = UserVersion>) -> Self {
        UserTable(Versions::from_versions(versions.into_iter().map(|v| {
            Version {
                key: v.user_id,
                valid_from: v.valid_from,
                valid_to: v.valid_to,
                attributes: v.attributes,
            }
        })))
    }

    /// Number of users ever seen.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no users change was applied.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::CdcRejection;

    const JAN_2026: i64 = 1_767_225_600_000;

    fn user_change(after: &str) -> Result<Option<Change>, CdcRejection> {
        let json = format!(
            r#"{{"before":null,"after":{after},"source":{{"ts_ms":{JAN_2026},"lsn":1}},"op":"c"}}"#
        );
        Change::parse(crate::cdc::CdcTable::Users, json.as_bytes())
    }

    #[test]
    fn a_users_row_is_checked_and_optional_columns_may_be_absent() {
        let change = user_change(r#"{"id":"u1","country":"de","birth_year":"1990"}"#)
            .unwrap()
            .unwrap();
        let mut table = UserTable::default();
        table.apply(&change).unwrap();
        assert_eq!(table.country_at("u1", JAN_2026), "DE");
        assert_eq!(table.age_group_at("u1", JAN_2026), "35-44");
        let bare = user_change(r#"{"id":"u2","country":null}"#)
            .unwrap()
            .unwrap();
        table.apply(&bare).unwrap();
        assert_eq!(table.country_at("u2", JAN_2026), UNKNOWN);
        assert_eq!(table.age_group_at("u2", JAN_2026), UNKNOWN);
        for (row, field) in [
            (r#"{"id":"u3","country":"DEU"}"#, "country"),
            (r#"{"id":"u3","birth_year":1800}"#, "birth_year"),
            (r#"{"id":"u3","birth_year":"soon"}"#, "birth_year"),
            (r#"{"country":"DE"}"#, "id"),
        ] {
            let err = user_change(row).unwrap_err();
            assert!(
                matches!(err.reason.code(), "invalid_value" | "missing_field")
                    && err.message.contains(field),
                "{row}: {} {}",
                err.reason.code(),
                err.message
            );
        }
    }

    #[test]
    fn the_age_group_is_the_order_year_minus_the_birth_year() {
        let cases = [
            (None, UNKNOWN),
            (Some(2030), UNKNOWN),
            (Some(2026), "under_18"),
            (Some(2009), "under_18"),
            (Some(2008), "18-24"),
            (Some(2002), "18-24"),
            (Some(2001), "25-34"),
            (Some(1992), "25-34"),
            (Some(1991), "35-44"),
            (Some(1972), "45-54"),
            (Some(1962), "55-64"),
            (Some(1961), "65+"),
            (Some(1900), "65+"),
        ];
        for (born, group) in cases {
            assert_eq!(age_group(born, JAN_2026), group, "born {born:?}");
        }
    }
}
