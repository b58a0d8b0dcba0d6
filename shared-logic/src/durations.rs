//! Durations as people write them in options and configuration: a whole number and a
//! unit (`90s`, `10m`, `1h`), and back.

/// `90s`, `10m`, `1h` (a whole number and a unit) in milliseconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let unit = match text.chars().last()? {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        _ => return None,
    };
    let n: i64 = text[..text.len() - 1].parse().ok()?;
    (n > 0).then_some(n)?.checked_mul(unit)
}

/// The shortest of `…h`, `…m`, `…s` that says `ms` exactly.
pub fn duration_text(ms: i64) -> String {
    match ms {
        ms if ms > 0 && ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms > 0 && ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1_000 == 0 => format!("{}s", ms / 1_000),
        ms => format!("{ms}ms"),
    }
}
