//! A point in time as users and other programs write it: epoch milliseconds or RFC 3339,
//! between 1970 and 9999 (the range every layer can represent and format), and as the
//! platform writes it back (RFC 3339 in UTC).

/// The latest accepted instant: 9999-12-31T23:59:59.999Z.
pub const MAX_MS: i64 = 253_402_300_799_999;

/// Why a text is not an accepted instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstantError {
    /// Neither epoch milliseconds nor RFC 3339.
    Unparsable,
    /// Before 1970 or after 9999.
    OutOfRange,
}

impl std::fmt::Display for InstantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InstantError::Unparsable => "is neither epoch milliseconds nor RFC 3339",
            InstantError::OutOfRange => "is outside 1970..9999",
        })
    }
}

/// Parses epoch milliseconds or RFC 3339 into epoch milliseconds.
pub fn parse_instant(text: &str) -> Result<i64, InstantError> {
    let ms = match text.parse::<i64>() {
        Ok(ms) => ms,
        Err(_) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|_| InstantError::Unparsable)?,
    };
    if !(0..=MAX_MS).contains(&ms) {
        return Err(InstantError::OutOfRange);
    }
    Ok(ms)
}

/// RFC 3339 in UTC: seconds, or milliseconds when the time has them (epoch milliseconds
/// outside chrono's range are written as the number).
pub fn format_instant(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_millis_and_rfc3339_parse_within_the_range() {
        assert_eq!(parse_instant("0"), Ok(0));
        assert_eq!(parse_instant("2026-01-01T00:00:00Z"), Ok(1_767_225_600_000));
        assert_eq!(
            parse_instant("2026-01-01T01:00:00+01:00"),
            Ok(1_767_225_600_000)
        );
        assert_eq!(parse_instant(""), Err(InstantError::Unparsable));
        assert_eq!(parse_instant("yesterday"), Err(InstantError::Unparsable));
        assert_eq!(parse_instant("-1"), Err(InstantError::OutOfRange));
        assert_eq!(
            parse_instant(&(MAX_MS + 1).to_string()),
            Err(InstantError::OutOfRange)
        );
    }

    #[test]
    fn instants_format_as_rfc3339_and_parse_back() {
        assert_eq!(format_instant(1_767_225_600_000), "2026-01-01T00:00:00Z");
        assert_eq!(
            format_instant(1_767_225_600_123),
            "2026-01-01T00:00:00.123Z"
        );
        for ms in [0, 1_767_225_600_123, MAX_MS] {
            assert_eq!(parse_instant(&format_instant(ms)), Ok(ms));
        }
    }
}
