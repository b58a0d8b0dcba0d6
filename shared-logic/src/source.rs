//! Where a record comes from: its *source*, the producing service (`web`, `ios`,
//! `checkout-api`), the dimension of the data-quality figures.
//!
//! A record names its source in the Kafka header [`SOURCE_HEADER`] (the collector copies
//! the HTTP header `X-Lambda-Source` into it) or, without the header, in the JSON field
//! `source`; a record naming neither has the source [`crate::event::UNKNOWN`]. A name is
//! trimmed and lower-cased and must then be 1 to [`MAX_SOURCE_BYTES`] bytes of `a-z`,
//! `0-9`, `.`, `_`, `-`: anything else is not a source name, and an event carrying one is
//! rejected (`invalid_value`), as a country that is not a country code is.

use crate::event::UNKNOWN;

/// The Kafka record header naming the record's source.
pub const SOURCE_HEADER: &str = "lambda-source";

/// The HTTP request header the collector copies into [`SOURCE_HEADER`].
pub const SOURCE_HTTP_HEADER: &str = "x-lambda-source";

/// Longest source name, in bytes.
pub const MAX_SOURCE_BYTES: usize = 64;

/// The source name `text` stands for (trimmed, lower-cased), or why it is none. Empty text
/// (after trimming) is `Ok(None)`: no source given.
pub fn normalise(text: &str) -> Result<Option<String>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let shown = || &trimmed[..trimmed.floor_char_boundary(80)];
    if trimmed.len() > MAX_SOURCE_BYTES {
        return Err(format!(
            "source `{}…` is longer than {MAX_SOURCE_BYTES} bytes",
            shown()
        ));
    }
    let name = trimmed.to_ascii_lowercase();
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "source `{}` holds `{}`: a source name is made of a-z, 0-9, `.`, `_` and `-`",
            shown(),
            bad.escape_default()
        ));
    }
    Ok(Some(name))
}

/// The source name of header bytes (see [`normalise`]); bytes that are not UTF-8 are not a
/// name.
pub fn from_header(bytes: &[u8]) -> Result<Option<String>, String> {
    match std::str::from_utf8(bytes) {
        Ok(text) => normalise(text),
        Err(_) => Err(format!(
            "the {SOURCE_HEADER} header is not UTF-8 text ({} bytes)",
            bytes.len()
        )),
    }
}

/// The source a record without any (or with an unreadable one, on a rejected record) is
/// counted under.
pub fn unknown() -> String {
    UNKNOWN.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_trimmed_and_lower_cased() {
        assert_eq!(normalise("  Web "), Ok(Some("web".into())));
        assert_eq!(
            normalise("checkout-api.v2_eu"),
            Ok(Some("checkout-api.v2_eu".into()))
        );
        assert_eq!(normalise("   "), Ok(None));
        assert_eq!(normalise(""), Ok(None));
    }

    #[test]
    fn other_text_is_not_a_name_and_says_why() {
        let err = normalise("web shop").unwrap_err();
        assert!(err.contains("web shop") && err.contains("` `"), "{err}");
        let err = normalise("wéb").unwrap_err();
        assert!(err.contains("\\u{e9}"), "{err}");
        let long = "a".repeat(MAX_SOURCE_BYTES + 1);
        assert!(normalise(&long).unwrap_err().contains("longer than 64"));
        assert_eq!(
            normalise(&"a".repeat(MAX_SOURCE_BYTES)),
            Ok(Some("a".repeat(64)))
        );
        assert!(from_header(&[0xff, 0x41])
            .unwrap_err()
            .contains("not UTF-8"));
        assert_eq!(from_header(b"iOS"), Ok(Some("ios".into())));
    }

    proptest! {
        #[test]
        fn a_name_is_its_own_name_and_never_a_panic(text in "\\PC{0,100}") {
            if let Ok(Some(name)) = normalise(&text) {
                prop_assert!(name.len() <= MAX_SOURCE_BYTES);
                prop_assert_eq!(normalise(&name), Ok(Some(name.clone())));
            }
        }
    }
}
