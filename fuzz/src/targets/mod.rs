//! The fuzz targets: one per parser of outside bytes. A target takes any bytes, runs the
//! parser the way the platform does, and checks what the parser promises of what it
//! accepts; it returns an [`Outcome`] naming the result class (used to keep mutants that
//! reach a new class). A panic (including a broken promise) is a crash.

pub(crate) mod files;
mod records;
mod text;

/// The class of a target's result: `ok`, or the reason code it refused the input with.
pub type Outcome = String;

/// One fuzz target.
pub struct Target {
    /// The name used on the command line and as the corpus directory.
    pub name: &'static str,
    /// What it parses, in a few words.
    pub about: &'static str,
    /// The input is JSON: structure-aware JSON mutations apply.
    pub json: bool,
    /// Words of the format (keys, keywords) for the byte mutator.
    pub words: &'static [&'static str],
    /// Raw JSON values of the format (enum words, quoted) for the JSON mutator.
    pub values: &'static [&'static str],
    /// Longest input the mutator makes.
    pub max_len: usize,
    /// Runs the parser on one input.
    pub run: fn(&[u8]) -> Outcome,
}

/// Every target, in the order `all` runs them.
pub const TARGETS: &[Target] = &[
    records::EVENT,
    records::CDC,
    text::QUERY,
    text::CONFIG,
    files::VIEWS,
    files::CHECKPOINT,
    text::DECIMAL,
    text::INSTANT,
];

/// The target called `name`.
pub fn find(name: &str) -> Result<&'static Target, crate::FuzzError> {
    TARGETS.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        crate::FuzzError::UnknownTarget(name.to_string(), names.join(", "))
    })
}

/// The wall clock every target validates against (2026-01-02T00:00:00Z), so that results
/// depend on the input only.
pub const NOW_MS: i64 = 1_767_312_000_000;
