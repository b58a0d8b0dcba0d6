//! `lambda-fuzz`: runs the fuzz targets for a budget, replays or shrinks an input, and
//! writes the seed corpus. Flags only; the work is the library's.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lambda_fuzz::{artifacts, runner, targets, FindingKind, RunConfig, TARGETS};

#[derive(Parser)]
#[command(
    name = "lambda-fuzz",
    about = "Fuzz every parser of outside bytes (stable Rust)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// A target name, or `all`.
    target: Option<String>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Wall-clock budget per target, seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// RNG seed: input i of a run is a function of (target, seed, i).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop each target after this many inputs.
    #[arg(long)]
    iterations: Option<u64>,
    /// CPU time one input may take, ms (a slower input is a finding).
    #[arg(long, default_value_t = default_slow_ms())]
    slow_ms: u64,
    /// Wall time after which an input counts as hung, seconds.
    #[arg(long, default_value_t = 120)]
    hang_secs: u64,
    /// Where findings are written (one directory per target).
    #[arg(long, default_value_os_t = artifacts::default_dir())]
    artifacts: PathBuf,
}

/// Release builds are held to 100 ms of CPU per input; debug builds (10 to 30 times
/// slower) to 1 s.
const fn default_slow_ms() -> u64 {
    if cfg!(debug_assertions) {
        1_000
    } else {
        100
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// List the targets.
    List,
    /// Run one input file through a target: its outcome, or the panic.
    Replay { target: String, file: PathBuf },
    /// Shrink an input file while it still fails the same way; writes `<file>.min`.
    Minimize {
        target: String,
        file: PathBuf,
        #[arg(long, default_value_t = default_slow_ms())]
        slow_ms: u64,
    },
    /// Write the seed corpus from the platform's own inputs to fuzz/corpus/.
    SeedCorpus,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Cmd::List) => {
            for t in TARGETS {
                println!("{:<11} {}", t.name, t.about);
            }
            Ok(true)
        }
        Some(Cmd::Replay { target, file }) => replay(&target, &file),
        Some(Cmd::Minimize {
            target,
            file,
            slow_ms,
        }) => minimize(&target, &file, slow_ms),
        Some(Cmd::SeedCorpus) => {
            lambda_fuzz::seeds::write_all(&lambda_fuzz::crate_dir().join("corpus"))
                .map(|n| {
                    println!("{n} seed inputs written to fuzz/corpus/");
                    true
                })
                .map_err(|e| e.to_string())
        }
        None => match cli.target {
            Some(target) => fuzz(&target, &cli.run),
            None => Err("give a target (or `all`); `lambda-fuzz list` names them".into()),
        },
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn fuzz(name: &str, args: &RunArgs) -> Result<bool, String> {
    let chosen: Vec<&'static targets::Target> = if name == "all" {
        TARGETS.iter().collect()
    } else {
        vec![targets::find(name).map_err(|e| e.to_string())?]
    };
    let cfg = RunConfig {
        seed: args.seed,
        budget: Duration::from_secs(args.seconds),
        max_iterations: args.iterations,
        slow: Duration::from_millis(args.slow_ms),
        hang: Duration::from_secs(args.hang_secs),
        artifacts: Some(args.artifacts.clone()),
        minimize: Duration::from_secs(30),
    };
    let mut clean = true;
    println!(
        "{:<11} {:>10} {:>9} {:>12} {:>8}",
        "target", "inputs", "outcomes", "slowest", "findings"
    );
    for target in chosen {
        let corpus =
            lambda_fuzz::corpus::with_fresh_seeds(target.name).map_err(|e| e.to_string())?;
        let report = runner::run(target, &corpus, &cfg);
        println!(
            "{:<11} {:>10} {:>9} {:>12} {:>8}",
            target.name,
            report.iterations,
            report.outcomes.len(),
            format!("{:.1?}", report.slowest.0),
            report.findings.len()
        );
        for f in &report.findings {
            clean = false;
            let kind = if f.kind == FindingKind::Crash {
                "CRASH"
            } else {
                "SLOW"
            };
            println!(
                "  {kind} at iteration {} (seed {}): {}",
                f.iteration, f.seed, f.message
            );
            if let Some((path, replay)) = &f.artifact {
                println!(
                    "    input: {} ({} bytes)\n    replay: {replay}",
                    path.display(),
                    f.input.len()
                );
            }
        }
    }
    Ok(clean)
}

fn replay(name: &str, file: &std::path::Path) -> Result<bool, String> {
    let target = targets::find(name).map_err(|e| e.to_string())?;
    let input = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    match runner::execute(target, &input) {
        runner::Exec::Done { outcome, cpu } => {
            println!("{name}: outcome {outcome} in {cpu:?} of CPU");
            Ok(true)
        }
        runner::Exec::Panicked { message, cpu } => {
            println!("{name}: PANIC after {cpu:?}: {message}");
            Ok(false)
        }
    }
}

fn minimize(name: &str, file: &std::path::Path, slow_ms: u64) -> Result<bool, String> {
    let target = targets::find(name).map_err(|e| e.to_string())?;
    let input = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let slow = Duration::from_millis(slow_ms);
    let class = |exec: &runner::Exec| runner::signature(exec, slow);
    let Some(wanted) = class(&runner::execute(target, &input)) else {
        println!("{name}: the input does not fail");
        return Ok(false);
    };
    let small = lambda_fuzz::minimize::minimize(&input, Duration::from_secs(120), |c| {
        class(&runner::execute(target, c)).as_ref() == Some(&wanted)
    });
    let out = file.with_extension("min");
    std::fs::write(&out, &small).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{} bytes -> {} bytes: {}",
        input.len(),
        small.len(),
        out.display()
    );
    Ok(true)
}
