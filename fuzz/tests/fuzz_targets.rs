//! Every fuzz target for a bounded budget (CI runs these with the workspace's tests), and
//! every committed regression input replayed.
//!
//! `LAMBDA_FUZZ_SECONDS` (default 4) is each target's budget, `LAMBDA_FUZZ_SEED`
//! (default 1) the seed, `LAMBDA_FUZZ_SLOW_MS` the CPU bound per input (default 1000 in
//! debug builds, 100 in release). A finding fails the test with its input's path and the
//! command that replays it.

use std::time::Duration;

use lambda_fuzz::runner::{execute, Exec};
use lambda_fuzz::{artifacts, corpus, targets, FindingKind, RunConfig};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn slow_bound() -> Duration {
    let default = if cfg!(debug_assertions) { 1_000 } else { 100 };
    Duration::from_millis(env_u64("LAMBDA_FUZZ_SLOW_MS", default))
}

/// Fuzzes `name` for the budget and fails on any finding.
fn fuzz_for_budget(name: &str) {
    let target = targets::find(name).unwrap();
    let seeds = corpus::with_fresh_seeds(name).unwrap();
    let cfg = RunConfig {
        seed: env_u64("LAMBDA_FUZZ_SEED", 1),
        budget: Duration::from_secs(env_u64("LAMBDA_FUZZ_SECONDS", 4)),
        max_iterations: None,
        slow: slow_bound(),
        hang: Duration::from_secs(60),
        artifacts: Some(artifacts::default_dir()),
        minimize: Duration::from_secs(5),
    };
    let report = lambda_fuzz::run(target, &seeds, &cfg);
    let findings: Vec<String> = report
        .findings
        .iter()
        .map(|f| {
            let kind = if f.kind == FindingKind::Crash { "crash" } else { "slow" };
            let replay = f.artifact.as_ref().map(|(_, r)| r.as_str()).unwrap_or("");
            format!(
                "{kind} at iteration {} of seed {}: {}\n  input ({} bytes): {:?}\n  replay: {replay}",
                f.iteration,
                f.seed,
                f.message,
                f.input.len(),
                String::from_utf8_lossy(&f.input[..f.input.len().min(300)])
            )
        })
        .collect();
    assert!(findings.is_empty(), "{name}:\n{}", findings.join("\n"));
    assert!(
        report.iterations > seeds.len() as u64,
        "{name}: only {} inputs in the budget ({} seeds)",
        report.iterations,
        seeds.len()
    );
    assert!(
        report.outcomes.keys().any(|o| o.starts_with("ok")),
        "{name}: no input was accepted ({:?}): the seed corpus is stale (`cargo run -p lambda-fuzz -- seed-corpus`)",
        report.outcomes
    );
    println!(
        "{name}: {} inputs, {} outcome classes, slowest {:?}",
        report.iterations,
        report.outcomes.len(),
        report.slowest.0
    );
}

#[test]
fn event_bodies_survive_the_fuzz_budget() {
    fuzz_for_budget("event");
}

#[test]
fn cdc_envelopes_survive_the_fuzz_budget() {
    fuzz_for_budget("cdc");
}

#[test]
fn query_strings_survive_the_fuzz_budget() {
    fuzz_for_budget("query");
}

#[test]
fn config_files_survive_the_fuzz_budget() {
    fuzz_for_budget("config");
}

#[test]
fn views_files_survive_the_fuzz_budget() {
    fuzz_for_budget("views");
}

#[test]
fn checkpoint_files_survive_the_fuzz_budget() {
    fuzz_for_budget("checkpoint");
}

#[test]
fn decimals_survive_the_fuzz_budget() {
    fuzz_for_budget("decimal");
}

#[test]
fn instants_survive_the_fuzz_budget() {
    fuzz_for_budget("instant");
}

#[test]
fn every_target_has_a_test_here() {
    let names: Vec<&str> = lambda_fuzz::TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "event",
            "cdc",
            "query",
            "config",
            "views",
            "checkpoint",
            "decimal",
            "instant"
        ]
    );
}

/// Each file of `fuzz/regressions/<target>/` is an input that once crashed or was slow:
/// it must now run cleanly within the bound.
#[test]
fn regression_inputs_run_cleanly() {
    let slow = slow_bound();
    let mut failures = Vec::new();
    let mut replayed = 0;
    for target in lambda_fuzz::TARGETS {
        for (file, input) in artifacts::regressions(target.name).unwrap() {
            replayed += 1;
            match execute(target, &input) {
                Exec::Panicked { message, .. } => {
                    failures.push(format!("{}/{file}: panicked: {message}", target.name))
                }
                Exec::Done { cpu, .. } if cpu > slow => failures.push(format!(
                    "{}/{file}: {cpu:?} of CPU (bound {slow:?})",
                    target.name
                )),
                Exec::Done { .. } => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(replayed > 0, "no regression input under fuzz/regressions/");
}
