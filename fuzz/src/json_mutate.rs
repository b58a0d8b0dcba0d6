//! Structure-aware mutations of JSON inputs: a value of the tree is replaced with a
//! hostile raw JSON token (numbers past every limit, broken escapes, other types, deep
//! nesting), a key is duplicated, dropped or added, or an object gains an unknown field.
//! The tree is re-serialised and the token spliced in as raw text, so tokens that no
//! `serde_json::Value` can hold (`1e999999`, `"\ud800"`, `NaN`) reach the parser as written.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// Raw JSON values (some deliberately not JSON) every JSON target gets.
pub const VALUES: &[&str] = &[
    "-0",
    "-0.0",
    "1e999999",
    "1e-999999",
    "18446744073709551616",
    "-9223372036854775809",
    "9223372036854775807",
    "1e300",
    "-1",
    "0.1e1",
    "1.5",
    "\"0e2147483647\"",
    "\"1e-2147483648\"",
    "\"1e2147483648\"",
    "\"90000000000\"",
    "\"-0\"",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "\"\\u0000\"",
    "\"a\\u0000b\"",
    "\"\"",
    "\"   \"",
    "\"NaN\"",
    "\"Infinity\"",
    "NaN",
    "Infinity",
    "null",
    "true",
    "[]",
    "{}",
    "[[[[[[[[]]]]]]]]",
    "\"0000-01-01T00:00:00Z\"",
    "\"10000-01-01T00:00:00Z\"",
    "\"2026-01-01T00:00:00+23:59\"",
    "253402300800000",
    "\"x\r\nSet-Cookie: a=b\"",
    "\"\u{202e}gnp.exe\"",
    "\"\\\"\"",
];

const MARK: &str = "\u{1}MARK\u{1}";
const MARK_JSON: &str = "\"\\u0001MARK\\u0001\"";

/// Mutates a JSON input through its tree; `false` (input unchanged) when it is not JSON.
/// `values` are the target's own raw values (its enum words, quoted), besides [`VALUES`].
pub fn mutate_json(rng: &mut ChaCha8Rng, input: &mut Vec<u8>, values: &[&str]) -> bool {
    let Ok(mut tree) = serde_json::from_slice::<Value>(input) else {
        return false;
    };
    let mut paths = Vec::new();
    collect_paths(&tree, &mut Vec::new(), &mut paths);
    let path = &paths[rng.random_range(0..paths.len())];
    let Some(node) = node_at(&mut tree, path) else {
        return false;
    };
    let raw = match rng.random_range(0..8u8) {
        0..=3 => {
            if rng.random_bool(0.3) && !values.is_empty() {
                values[rng.random_range(0..values.len())].to_string()
            } else {
                VALUES[rng.random_range(0..VALUES.len())].to_string()
            }
        }
        4 => {
            // Nest the value deeply.
            let depth = if rng.random_bool(0.1) {
                10_000
            } else {
                rng.random_range(1..200)
            };
            let inner = node.to_string();
            format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
        }
        5 => match node {
            Value::Object(map) if !map.is_empty() => {
                // A duplicated key with another value (the parser must pick one consistently).
                let keys: Vec<String> = map.keys().cloned().collect();
                let key = &keys[rng.random_range(0..keys.len())];
                let value = VALUES[rng.random_range(0..VALUES.len())];
                let rest = Value::Object(map.clone()).to_string();
                format!("{{{}:{value},{}", Value::String(key.clone()), &rest[1..])
            }
            _ => format!("\"{}\"", "x".repeat(rng.random_range(1..5000))),
        },
        6 => match node {
            Value::Object(map) if !map.is_empty() => {
                let keys: Vec<String> = map.keys().cloned().collect();
                map.remove(&keys[rng.random_range(0..keys.len())]);
                node.to_string()
            }
            Value::Array(items) if !items.is_empty() => {
                let copy = items[rng.random_range(0..items.len())].clone();
                for _ in 0..rng.random_range(1..100) {
                    items.push(copy.clone());
                }
                node.to_string()
            }
            _ => "{\"unexpected\":{\"nested\":[1,2,3]}}".to_string(),
        },
        _ => match node {
            Value::Object(map) => {
                map.insert(
                    format!("k{}", rng.random_range(0..1000)),
                    Value::String("v".into()),
                );
                node.to_string()
            }
            Value::String(s) => Value::String(s.repeat(rng.random_range(2..100))).to_string(),
            Value::Number(n) => format!("\"{n}\""),
            _ => "0".to_string(),
        },
    };
    *node = Value::String(MARK.into());
    let text = tree.to_string();
    *input = text.replacen(MARK_JSON, &raw, 1).into_bytes();
    true
}

enum Seg {
    Key(String),
    Index(usize),
}

fn collect_paths(v: &Value, here: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    out.push(
        here.iter()
            .map(|s| match s {
                Seg::Key(k) => Seg::Key(k.clone()),
                Seg::Index(i) => Seg::Index(*i),
            })
            .collect(),
    );
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                here.push(Seg::Key(k.clone()));
                collect_paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate().take(64) {
                here.push(Seg::Index(i));
                collect_paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn node_at<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut node = v;
    for seg in path {
        node = match seg {
            Seg::Key(k) => node.get_mut(k.as_str())?,
            Seg::Index(i) => node.get_mut(*i)?,
        };
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn json_mutants_keep_the_shape_and_carry_raw_tokens() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let seed = br#"{"event_type":"purchase","price":"12.50","quantity":2}"#;
        let (mut raw_tokens, mut still_json) = (0, 0);
        for _ in 0..500 {
            let mut input = seed.to_vec();
            assert!(mutate_json(&mut rng, &mut input, &["\"GBP\""]));
            let text = String::from_utf8_lossy(&input);
            raw_tokens += usize::from(text.contains("1e999999") || text.contains("\\ud800"));
            still_json += usize::from(serde_json::from_slice::<Value>(&input).is_ok());
        }
        assert!(raw_tokens > 5, "{raw_tokens}");
        assert!(still_json > 250, "{still_json}");
        let mut not_json = b"nope".to_vec();
        assert!(!mutate_json(&mut rng, &mut not_json, &[]));
    }
}
