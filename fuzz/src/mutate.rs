//! Byte-level mutations: flips, insertions, deletions, duplicated ranges, splices between
//! corpus entries, and dictionary tokens put in place of a word or number of the input.
//! Every choice comes from the caller's seeded RNG, so a mutant is reproducible.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// What a mutation may draw from besides the input itself.
pub struct Material<'a> {
    /// The target's words and the common hostile tokens.
    pub words: &'a [&'a [u8]],
    /// Large tokens (deep nesting, long numbers), used rarely.
    pub huge: &'a [Vec<u8>],
    /// Another corpus entry, for splices.
    pub other: &'a [u8],
    /// Longest mutant kept.
    pub max_len: usize,
}

/// Bytes worth setting on their own (delimiters of the formats we parse, edge values).
const INTERESTING: &[u8] = b"\x00\xff\x7f\x80\"\\{}[],:=&\n\r -+.e0";

/// Applies one random mutation to `input`.
pub fn mutate_once(rng: &mut ChaCha8Rng, input: &mut Vec<u8>, m: &Material<'_>) {
    let len = input.len();
    match rng.random_range(0..12u8) {
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] = INTERESTING[rng.random_range(0..INTERESTING.len())];
        }
        2 => {
            let at = rng.random_range(0..=len);
            let n = rng.random_range(1..=8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            input.splice(at..at, bytes);
        }
        3 if len > 0 => {
            let (a, b) = range(rng, len);
            input.drain(a..b);
        }
        4 if len > 0 => {
            let (a, b) = range(rng, len);
            let copy = input[a..b].to_vec();
            let at = rng.random_range(0..=len);
            for _ in 0..rng.random_range(1..=4) {
                input.splice(at..at, copy.iter().copied());
            }
        }
        5 if !m.other.is_empty() => {
            // Splice: our head, the other entry's tail.
            let cut = rng.random_range(0..=len);
            let from = rng.random_range(0..m.other.len());
            input.truncate(cut);
            input.extend_from_slice(&m.other[from..]);
        }
        6 | 7 if !m.words.is_empty() => {
            let word = m.words[rng.random_range(0..m.words.len())];
            replace_or_insert(rng, input, word);
        }
        8 if !m.huge.is_empty() && rng.random_bool(0.1) => {
            let word = &m.huge[rng.random_range(0..m.huge.len())];
            replace_or_insert(rng, input, word);
        }
        9 if len > 1 => {
            input.truncate(rng.random_range(0..len));
        }
        10 => bump_number(rng, input),
        _ => {
            // Insert a short run of one byte (whitespace, delimiter, digit).
            let at = rng.random_range(0..=len);
            let b = INTERESTING[rng.random_range(0..INTERESTING.len())];
            let n = rng.random_range(1..=16);
            input.splice(at..at, std::iter::repeat_n(b, n));
        }
    }
    input.truncate(m.max_len);
}

/// A random non-empty range `[a, b)` of `0..len`, mostly short.
fn range(rng: &mut ChaCha8Rng, len: usize) -> (usize, usize) {
    let a = rng.random_range(0..len);
    let max = (len - a).min(if rng.random_bool(0.8) { 16 } else { len });
    (a, a + rng.random_range(1..=max.max(1)))
}

/// Puts `word` in place of a word of the input (a run of letters, digits and `._-+`), or
/// inserts it at a random place.
fn replace_or_insert(rng: &mut ChaCha8Rng, input: &mut Vec<u8>, word: &[u8]) {
    let spans = word_spans(input);
    if !spans.is_empty() && rng.random_bool(0.7) {
        let (a, b) = spans[rng.random_range(0..spans.len())];
        input.splice(a..b, word.iter().copied());
    } else {
        let at = rng.random_range(0..=input.len());
        input.splice(at..at, word.iter().copied());
    }
}

/// The maximal runs of word bytes of `input`.
pub fn word_spans(input: &[u8]) -> Vec<(usize, usize)> {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b"._-+:".contains(&b);
    let mut spans = Vec::new();
    let mut start = None;
    for (i, &b) in input.iter().enumerate() {
        match (is_word(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, input.len()));
    }
    spans
}

/// Changes a run of digits: off by one, a boundary value, or many more digits.
fn bump_number(rng: &mut ChaCha8Rng, input: &mut Vec<u8>) {
    let runs: Vec<(usize, usize)> = word_spans(input)
        .into_iter()
        .filter(|&(a, b)| input[a..b].iter().all(u8::is_ascii_digit))
        .collect();
    if runs.is_empty() {
        return;
    }
    let (a, b) = runs[rng.random_range(0..runs.len())];
    let text = std::str::from_utf8(&input[a..b]).unwrap_or("0");
    let n: u128 = text.parse().unwrap_or(0);
    let new = match rng.random_range(0..6u8) {
        0 => n.saturating_add(1).to_string(),
        1 => n.saturating_sub(1).to_string(),
        2 => (n.saturating_mul(1000)).to_string(),
        3 => i64::MAX.to_string(),
        4 => u64::MAX.to_string(),
        _ => format!("{text}{}", "0".repeat(rng.random_range(1..40))),
    };
    input.splice(a..b, new.into_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn words_are_found_and_mutants_stay_within_the_length_bound() {
        assert_eq!(word_spans(b"{\"a\":12, x}"), vec![(2, 3), (4, 7), (9, 10)]);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let huge = vec![vec![b'9'; 5000]];
        let m = Material {
            words: &[b"NaN", b"-0"],
            huge: &huge,
            other: b"{\"b\":2}",
            max_len: 1000,
        };
        let mut changed = 0;
        for _ in 0..2_000 {
            let mut input = b"{\"price\":\"12.50\",\"quantity\":3}".to_vec();
            mutate_once(&mut rng, &mut input, &m);
            assert!(input.len() <= 1000);
            changed += usize::from(input != b"{\"price\":\"12.50\",\"quantity\":3}");
        }
        assert!(changed > 1_800, "{changed} of 2000 mutants differ");
    }
}
