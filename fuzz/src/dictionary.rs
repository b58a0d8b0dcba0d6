//! Hostile tokens the mutators splice into inputs: numbers at and past every limit, broken
//! escapes and encodings, deep nesting, huge values. Each target adds its own words (field
//! names, keywords) to these.

/// Tokens every text target gets (numbers, escapes, encodings).
pub const COMMON: &[&[u8]] = &[
    b"0",
    b"-0",
    b"-1",
    b"1e-999999",
    b"1e999999",
    b"e2147483647",
    b"0e2147483647",
    b"1e-2147483648",
    b"e-2147483649",
    b"2147483647",
    b"-2147483648",
    b"4294967296",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",
    b"18446744073709551615",
    b"18446744073709551616",
    b"1.7976931348623157e308",
    b"5e-324",
    b"1e300",
    b"0.000000001",
    b"NaN",
    b"-NaN",
    b"Infinity",
    b"-Infinity",
    b"inf",
    b"0x10",
    b"1_000",
    b"+1",
    b".5",
    b"5.",
    b"00012",
    b"\\u0000",
    b"\\ud800",
    b"\\udfff",
    b"\\ud800\\udc00",
    b"\\uffff",
    b"\\u",
    b"\\",
    b"\"",
    b"\x00",
    b"\xff",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xef\xbb\xbf",
    b"\xfe\xff",
    b"\r\n",
    b"\n",
    b"\t",
    b" ",
    b"%00",
    b"%ff",
    b"%",
    b"\xe2\x80\xae",
    b"0000-01-01T00:00:00Z",
    b"9999-12-31T23:59:59.999Z",
    b"10000-01-01T00:00:00Z",
    b"1970-01-01T00:00:00Z",
    b"1969-12-31T23:59:59.999Z",
    b"2026-02-30T00:00:00Z",
    b"2026-01-01T24:00:00Z",
    b"2026-01-01T00:00:60Z",
    b"2026-01-01T00:00:00+99:99",
    b"2026-01-01T00:00:00.0000000000001Z",
    b"253402300800000",
];

/// Tokens that are large by construction (generated once per run): deep nesting, long
/// numbers and long strings. Spliced rarely: they dominate the cost of an input.
pub fn huge() -> Vec<Vec<u8>> {
    let mut out = vec![
        b"[".repeat(10_000),
        b"{\"a\":".repeat(10_000),
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_vec(),
        b"a.".repeat(5_000),
        b"9".repeat(1_000_000),
        b"1".repeat(100_000),
        [b"0.".as_slice(), &b"0".repeat(100_000), b"1"].concat(),
        b"x".repeat(1 << 20),
        b"\\u0000".repeat(10_000),
        b"\\ud800".repeat(10_000),
        [&b"1e"[..], &b"9".repeat(10_000)].concat(),
    ];
    out.push([&b"1e-"[..], &b"9".repeat(10_000)].concat());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_tokens_are_huge_and_common_ones_small() {
        assert!(huge().iter().all(|t| t.len() >= 100));
        assert!(COMMON.iter().all(|t| t.len() < 100));
    }
}
