//! The fuzzing loop. Input `i` of a run is a function of (target, seed, i) and the inputs
//! before it: the seed corpus first, unchanged, then mutants of the pool (the corpus plus
//! every mutant that produced an outcome not seen before). Each input runs under
//! `catch_unwind` with its CPU time measured; a panic is a crash, an input that costs more
//! CPU than the bound is slow, and one that never returns is caught by a watchdog, which
//! writes it out and ends the process (a thread cannot be stopped from outside).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::mutate::{mutate_once, Material};
use crate::targets::Target;

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub seed: u64,
    /// Wall-clock budget of the run.
    pub budget: Duration,
    /// Stop after this many inputs (whatever the budget says).
    pub max_iterations: Option<u64>,
    /// CPU time one input may take before it is a finding.
    pub slow: Duration,
    /// Wall time after which an input counts as hung: the watchdog ends the process.
    pub hang: Duration,
    /// Where findings are written (`<dir>/<target>/`); `None` keeps them in the report.
    pub artifacts: Option<PathBuf>,
    /// Time spent shrinking each finding's input.
    pub minimize: Duration,
}

/// What kind of failure an input caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    /// The target panicked (a crash, or a broken promise about what it accepted).
    Crash,
    /// The target took more CPU than the bound for one input.
    Slow,
}

/// One failing input.
#[derive(Debug, Clone)]
pub struct Finding {
    pub kind: FindingKind,
    pub target: &'static str,
    pub seed: u64,
    pub iteration: u64,
    /// The (minimized) input.
    pub input: Vec<u8>,
    /// The panic message and place, or the CPU time.
    pub message: String,
    pub cpu: Duration,
    /// Where the input was written, with the command that replays it.
    pub artifact: Option<(PathBuf, String)>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub iterations: u64,
    pub findings: Vec<Finding>,
    /// How many inputs ended in each outcome class.
    pub outcomes: BTreeMap<String, u64>,
    /// The costliest input that was not a finding, and its iteration.
    pub slowest: (Duration, u64),
}

/// The result of one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exec {
    Done { outcome: String, cpu: Duration },
    Panicked { message: String, cpu: Duration },
}

impl Exec {
    /// The CPU time the input took.
    pub fn cpu(&self) -> Duration {
        match self {
            Exec::Done { cpu, .. } | Exec::Panicked { cpu, .. } => *cpu,
        }
    }
}

thread_local! {
    static FUZZING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records panics of fuzzed inputs quietly and passes
/// every other panic to the previous hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if FUZZING.with(Cell::get) {
                let place = info
                    .location()
                    .map(|l| format!("{}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let text = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".into());
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{text} at {place}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `target` on one input.
pub fn execute(target: &Target, input: &[u8]) -> Exec {
    install_hook();
    FUZZING.with(|f| f.set(true));
    let start = crate::cpu::thread_cpu_time();
    let result = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
    let cpu = crate::cpu::thread_cpu_time().saturating_sub(start);
    FUZZING.with(|f| f.set(false));
    match result {
        Ok(outcome) => Exec::Done { outcome, cpu },
        Err(_) => Exec::Panicked {
            message: LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "a panic".into()),
            cpu,
        },
    }
}

/// What makes two findings the same: the panic's place, or slowness; `None` for an input
/// that passes.
pub fn signature(exec: &Exec, slow: Duration) -> Option<String> {
    match exec {
        Exec::Panicked { message, .. } => {
            Some(message.rsplit(" at ").next().unwrap_or(message).to_string())
        }
        Exec::Done { cpu, .. } if *cpu > slow => Some("slow".into()),
        Exec::Done { .. } => None,
    }
}

/// The RNG of iteration `i` of a run with `seed` (splitmix64 of both, so that nearby
/// seeds and iterations give unrelated streams).
pub fn iteration_rng(seed: u64, i: u64) -> ChaCha8Rng {
    let mut z = seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ChaCha8Rng::seed_from_u64(z ^ (z >> 31))
}

/// The input of iteration `i`, drawn from `pool` (which must not be empty).
pub fn make_input(
    target: &Target,
    pool: &[Vec<u8>],
    words: &[&[u8]],
    huge: &[Vec<u8>],
    seed: u64,
    i: u64,
) -> Vec<u8> {
    let mut rng = iteration_rng(seed, i);
    let mut input = pool[rng.random_range(0..pool.len())].clone();
    let other = &pool[rng.random_range(0..pool.len())];
    let material = Material {
        words,
        huge,
        other,
        max_len: target.max_len,
    };
    let rounds = 1 + (rng.random::<u32>().trailing_zeros() as usize).min(7);
    for _ in 0..rounds {
        let structured = target.json
            && rng.random_bool(0.5)
            && crate::json_mutate::mutate_json(&mut rng, &mut input, target.values);
        if !structured {
            mutate_once(&mut rng, &mut input, &material);
        }
    }
    input.truncate(target.max_len);
    input
}

/// The input the watchdog sees running, and since when.
type Current = Mutex<Option<(Instant, u64, Arc<Vec<u8>>)>>;

/// Fuzzes `target` from `corpus` as `cfg` says.
pub fn run(target: &'static Target, corpus: &[Vec<u8>], cfg: &RunConfig) -> Report {
    let words: Vec<&[u8]> = target
        .words
        .iter()
        .map(|w| w.as_bytes())
        .chain(crate::dictionary::COMMON.iter().copied())
        .collect();
    let huge = crate::dictionary::huge();
    let mut pool: Vec<Vec<u8>> = corpus.to_vec();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    let current: Arc<Current> = Arc::new(Mutex::new(None));
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = spawn_watchdog(target.name, cfg, current.clone(), done.clone());
    let mut report = Report::default();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut signatures: BTreeSet<String> = BTreeSet::new();
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < cfg.budget && cfg.max_iterations.is_none_or(|max| i < max) {
        let input = match corpus.get(i as usize) {
            Some(seed_input) => seed_input.clone(),
            None => make_input(target, &pool, &words, &huge, cfg.seed, i),
        };
        let input = Arc::new(input);
        *current.lock().expect("watchdog lock") = Some((Instant::now(), i, input.clone()));
        let exec = execute(target, &input);
        *current.lock().expect("watchdog lock") = None;
        match signature(&exec, cfg.slow) {
            Some(sig) => {
                if signatures.insert(sig) {
                    report.findings.push(finding(target, cfg, i, &input, &exec));
                }
            }
            None => {
                if exec.cpu() > report.slowest.0 {
                    report.slowest = (exec.cpu(), i);
                }
            }
        }
        if let Exec::Done { outcome, .. } = &exec {
            *report.outcomes.entry(outcome.clone()).or_default() += 1;
            if seen.insert(outcome.clone()) && input.len() <= 64 << 10 && pool.len() < 4096 {
                pool.push(input.to_vec());
            }
        }
        i += 1;
    }
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    report.iterations = i;
    report
}

fn finding(target: &'static Target, cfg: &RunConfig, i: u64, input: &[u8], exec: &Exec) -> Finding {
    let (kind, message) = match exec {
        Exec::Panicked { message, .. } => (FindingKind::Crash, message.clone()),
        Exec::Done { outcome, cpu } => (
            FindingKind::Slow,
            format!(
                "{cpu:?} of CPU for one input (bound {:?}), outcome {outcome}",
                cfg.slow
            ),
        ),
    };
    let sig = signature(exec, cfg.slow);
    let input = crate::minimize::minimize(input, cfg.minimize, |candidate| {
        signature(&execute(target, candidate), cfg.slow) == sig
    });
    let mut f = Finding {
        kind,
        target: target.name,
        seed: cfg.seed,
        iteration: i,
        input,
        message,
        cpu: exec.cpu(),
        artifact: None,
    };
    if let Some(dir) = &cfg.artifacts {
        f.artifact = crate::artifacts::write_finding(dir, &f).ok();
    }
    f
}

fn spawn_watchdog(
    name: &'static str,
    cfg: &RunConfig,
    current: Arc<Current>,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let (hang, seed, dir) = (cfg.hang, cfg.seed, cfg.artifacts.clone());
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            let Ok(guard) = current.lock() else { return };
            let Some((since, i, input)) = guard.as_ref() else {
                continue;
            };
            if since.elapsed() < hang {
                continue;
            }
            eprintln!("lambda-fuzz: {name} input {i} of seed {seed} has run for {hang:?}: hung");
            let f = Finding {
                kind: FindingKind::Slow,
                target: name,
                seed,
                iteration: *i,
                input: input.to_vec(),
                message: format!("no answer after {hang:?}"),
                cpu: since.elapsed(),
                artifact: None,
            };
            if let Some(dir) = &dir {
                if let Ok((path, replay)) = crate::artifacts::write_finding(dir, &f) {
                    eprintln!("written to {}; replay: {replay}", path.display());
                }
            }
            std::process::exit(70);
        }
    })
}
