//! The `lambda` binary as a user runs it: reproducible generation, clear errors for bad
//! flags, and the generate -> Kafka -> inspect path against the real broker.

use std::process::{Command, Output};

use lambda_tests::Broker;

fn lambda(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lambda"))
        .args(args)
        .env_remove("KAFKA_BROKERS")
        .output()
        .expect("lambda runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn generate_with_the_same_seed_writes_identical_files() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| dir.path().join(n).display().to_string())
        .collect();
    for (path, seed) in paths.iter().zip(["1", "1", "2"]) {
        let out = lambda(&[
            "generate",
            "--count",
            "100000",
            "--seed",
            seed,
            "--invalid",
            "0.01",
            "--duplicates",
            "0.01",
            "--output",
            path,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("generated 100000 records"),
            "{}",
            stderr(&out)
        );
    }
    let [a, b, c] = [&paths[0], &paths[1], &paths[2]].map(|p| std::fs::read(p).unwrap());
    assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 100_000);
    assert!(a == b, "same seed, same bytes");
    assert!(a != c, "another seed, another stream");
}

#[test]
fn bad_flags_fail_with_a_reason_and_no_panic() {
    let cases: &[(&[&str], &str)] = &[
        (&["generate"], "give --count or --duration-secs"),
        (
            &["generate", "--count", "5", "--late", "2"],
            "late fraction must be between 0 and 1",
        ),
        (
            &["generate", "--count", "5", "--start", "yesterday"],
            "--start `yesterday` is not RFC 3339",
        ),
        (
            &["generate", "--count", "5", "--rate=-3"],
            "--rate must be a positive number",
        ),
        (
            &[
                "generate",
                "--count",
                "5",
                "--output",
                "/nonexistent-dir/x.ndjson",
            ],
            "cannot create output file",
        ),
        (&["generate", "--count", "x"], "invalid value 'x'"),
        (
            &[
                "generate",
                "--count",
                "5",
                "--kafka",
                "--kafka-option",
                "novalue",
            ],
            "not of the form key=value",
        ),
    ];
    for (args, expected) in cases {
        let out = lambda(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["generate", "inspect"] {
        let out = lambda(&[sub, "--help"]);
        assert!(out.status.success(), "{sub}: {}", stderr(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage: lambda"),
            "{sub}"
        );
    }
}

#[test]
fn generated_events_arrive_in_kafka_and_inspect_counts_them() {
    let broker = Broker::start();
    let out = Command::new(env!("CARGO_BIN_EXE_lambda"))
        .args([
            "generate",
            "--count",
            "3000",
            "--seed",
            "3",
            "--invalid",
            "0.05",
            "--kafka",
            "--topic",
            "cli-events",
        ])
        .args(["--brokers", broker.brokers()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("3000 acknowledged by the broker"),
        "{}",
        stderr(&out)
    );

    let out = Command::new(env!("CARGO_BIN_EXE_lambda"))
        .args([
            "inspect",
            "--topic",
            "cli-events",
            "--brokers",
            broker.brokers(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
    assert_eq!(summary["records"], 3000);
    let valid: u64 = summary["valid_by_type"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let rejected: u64 = summary["rejected_by_reason"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(valid + rejected, 3000);
    assert!(
        (100..200).contains(&rejected),
        "about 5 % invalid: {rejected}"
    );
}

#[test]
fn kafka_errors_are_reported_not_hung() {
    // Nothing listens on port 1: the producer must give up with an error, in bounded time.
    let out = lambda(&[
        "generate",
        "--count",
        "1",
        "--kafka",
        "--brokers",
        "127.0.0.1:1",
        "--kafka-option",
        "socket.timeout.ms=2000",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("127.0.0.1:1"), "{err}");
}
