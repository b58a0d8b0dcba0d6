//! Bearer tokens between the processes and their clients (the query, ingest and admin
//! tokens of `lambda serve`, the speed token of `lambda speed`): which tokens a process
//! accepts at start ([`check_token`]), how an `Authorization` header is read
//! ([`bearer_token`]) and how a token is compared ([`token_matches`]).
//!
//! It knows nothing of HTTP frameworks: each layer's middleware calls these functions on
//! the header's text, so that every endpoint reads and compares tokens the same way.

use subtle::ConstantTimeEq;

/// Fewest characters of an accepted token (`openssl rand -hex 32` gives 64).
pub const MIN_TOKEN_CHARS: usize = 16;

/// Fewest distinct characters of an accepted token (a repeated character is no secret).
const MIN_DISTINCT_CHARS: usize = 6;

/// Words that mark a token copied from an example rather than generated.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "replaceme",
    "replace-me",
    "replace_me",
    "placeholder",
    "example",
    "password",
    "secret",
    "token",
];

/// A token a process refuses to start with, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{option}: {reason}; generate one with `openssl rand -hex 32`")]
pub struct WeakToken {
    /// The option that carried it (e.g. `--query-token`).
    pub option: String,
    pub reason: String,
}

/// Checks a configured token: refused when empty, shorter than [`MIN_TOKEN_CHARS`], made
/// of fewer than six distinct characters, holding whitespace or control characters (they
/// cannot travel in a header), or containing a placeholder word (`change-me`, `secret`,
/// `token`, `password`, …, in any case). The error names `option`, never the value.
pub fn check_token(option: &str, token: &str) -> Result<(), WeakToken> {
    let refuse = |reason: String| {
        Err(WeakToken {
            option: option.to_string(),
            reason,
        })
    };
    if token.is_empty() {
        return refuse("the token is empty (unset the option to run without one)".into());
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("the token holds whitespace or control characters".into());
    }
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        return refuse(format!(
            "the token has {chars} characters, fewer than {MIN_TOKEN_CHARS}"
        ));
    }
    let distinct: std::collections::BTreeSet<char> = token.chars().collect();
    if distinct.len() < MIN_DISTINCT_CHARS {
        return refuse(format!(
            "the token is made of {} distinct characters, fewer than {MIN_DISTINCT_CHARS}",
            distinct.len()
        ));
    }
    let lower = token.to_lowercase();
    if let Some(word) = PLACEHOLDER_WORDS.iter().find(|w| lower.contains(*w)) {
        return refuse(format!("the token contains the placeholder word `{word}`"));
    }
    Ok(())
}

/// The token of an `Authorization` header value: the `Bearer` scheme matched in any case
/// (RFC 7235 §2.1: auth schemes are case-insensitive), then one or more spaces. `None` for
/// any other scheme or an empty token.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_matches(' ');
    (!token.is_empty()).then_some(token)
}

/// Whether `given` is `expected`, compared in constant time for a given length (the length
/// of a generated token is not its secret; its bytes are).
pub fn token_matches(expected: &str, given: &str) -> bool {
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "3f9a0c7be21d48e6a5b0c9d7e8f1a2b3";

    #[test]
    fn placeholder_and_short_tokens_are_refused_with_the_option_named() {
        for weak in [
            "",
            "change-me",
            "changeme",
            "secret",
            "token",
            "password",
            "tok",
            "0123456789abcde",
            "aaaaaaaaaaaaaaaaaaaaaaaa",
            "abababababababababab",
            "CHANGE-ME-CHANGE-ME-1234",
            "my-super-secret-value-42",
            "the-token-of-the-ingest-api",
            "3f9a0c7b e21d48e6a5b0c9d7e8f1",
        ] {
            let e = check_token("--query-token", weak).expect_err(weak);
            assert_eq!(e.option, "--query-token");
            let text = e.to_string();
            assert!(text.starts_with("--query-token: "), "{text}");
            if weak.len() >= MIN_TOKEN_CHARS {
                assert!(!text.contains(weak), "the value is not echoed: {text}");
            }
        }
        assert_eq!(check_token("--speed-token", GOOD), Ok(()));
        assert_eq!(check_token("--speed-token", "0123456789abcdef"), Ok(()));
    }

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for header in [
            format!("Bearer {GOOD}"),
            format!("bearer {GOOD}"),
            format!("BEARER {GOOD}"),
            format!("bEaReR  {GOOD} "),
        ] {
            assert_eq!(bearer_token(&header), Some(GOOD), "{header}");
        }
        for header in [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer ",
            "Bearer  ",
            GOOD,
            "",
        ] {
            assert_eq!(bearer_token(header), None, "{header}");
        }
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches(GOOD, GOOD));
        assert!(!token_matches(GOOD, &GOOD[1..]));
        assert!(!token_matches(GOOD, &format!("{GOOD}!")));
        assert!(!token_matches(GOOD, ""));
        assert!(!token_matches(GOOD, &GOOD.to_uppercase()));
    }
}
