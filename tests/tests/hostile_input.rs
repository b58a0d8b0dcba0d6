//! Hostile input against the running collector: the real `lambda serve` binary with its
//! collector producing to the real local broker receives malformed, oversized, deeply
//! nested, numerically extreme and encoding-broken bodies. For every one the answer comes
//! quickly and says why (a status and a code, or each event's reason code), the server
//! still accepts a valid event afterwards, and the events topic holds exactly the valid
//! events: every record on it passes the same validation, and none is missing.
//!
//! The time bound is 100 ms per answer with a release binary (`LAMBDA_BIN=<release
//! build>`), and a looser bound for the debug binary of `cargo test`
//! (`LAMBDA_HOSTILE_MAX_MS` overrides both). The table of cases, statuses and times is
//! printed (`--nocapture` shows it).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lambda_tests::{Broker, ChildGuard};
use serde_json::Value;
use shared_logic::Validator;

const TOPIC: &str = "hostile-events";
const DEAD_LETTER: &str = "hostile-dead-letter";
const TOKEN: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
/// `lambda serve`'s default `--max-body-bytes`.
const LIMIT: usize = 5 * 1024 * 1024;

/// What the collector must answer to a case.
enum Expect {
    /// The request is refused as a whole: this status and code.
    Refused(u16, &'static str),
    /// 200 and each event rejected, with these reason codes in order.
    Rejected(&'static [&'static str]),
    /// 200, every one of `n` events rejected with this reason.
    AllRejected(usize, &'static str),
    /// 200 and these events (by id) accepted, nothing rejected.
    Accepted(&'static [&'static str]),
    /// 200, these events (by id) accepted and the others rejected with these reasons.
    Mixed(&'static [&'static str], &'static [&'static str]),
}

struct Case {
    name: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    expect: Expect,
}

fn case(name: &'static str, body: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        headers: Vec::new(),
        body: body.into(),
        expect,
    }
}

/// A page view with `id`, at `now`, with `extra` raw JSON fields.
fn page_view(id: &str, now: i64, extra: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","event_type":"page_view","event_time":{now},"user_id":"u-{id}","url":"/p/1"{extra}}}"#
    )
}

/// A purchase with raw JSON `price`, `quantity` and `currency` values.
fn purchase(id: &str, now: i64, price: &str, quantity: &str, currency: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","event_type":"purchase","event_time":{now},"user_id":"u-{id}","product_id":"p1","price":{price},"quantity":{quantity},"currency":{currency}}}"#
    )
}

/// A page view whose `event_time` is the raw JSON `time`.
fn at_time(id: &str, time: &str) -> String {
    format!(
        r#"{{"event_id":"{id}","event_type":"page_view","event_time":{time},"user_id":"u","url":"/"}}"#
    )
}

/// A gzip stream of 10 MB of zeros (about 10 KB), made by Debian's `gzip`.
fn gzip_bomb() -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip (Debian's gzip package) runs");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&vec![0u8; 10 << 20]));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success() && out.stdout.len() < 64 << 10);
    out.stdout
}

fn cases(now: i64) -> Vec<Case> {
    use Expect::*;
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_object = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let deep_field = page_view(
        "deep-field",
        now,
        &format!(r#","session_id":{}"#, deep_array),
    );
    let mb_string = page_view(
        "mb",
        now,
        &format!(r#","session_id":"{}""#, "x".repeat(1 << 20)),
    );
    let mb_key = page_view("mb-key", now, &format!(r#","{}":1"#, "k".repeat(1 << 20)));
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            page_view("utf16", now, "")
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let with_bytes = |id: &str, bad: &[u8]| -> Vec<u8> {
        let text = page_view(id, now, r#","session_id":"@""#);
        let (a, b) = text.split_once('@').unwrap();
        [a.as_bytes(), bad, b.as_bytes()].concat()
    };
    let many: String = format!("[{}]", vec!["{}"; 100_000].join(","));
    let hundred_k_digits = format!("\"{}\"", "9".repeat(100_000));
    let fifty_k_digits = format!("\"{}\"", "9".repeat(50_000));
    let overflow: Vec<String> = (0..3)
        .map(|i| {
            purchase(
                &format!("overflow-{i}"),
                now,
                r#""90000000000""#,
                "1000000",
                r#""GBP""#,
            )
        })
        .collect();
    let mut v = vec![
        case("empty body", "", Refused(400, "empty_body")),
        case("only whitespace", " \r\n\t\n", Refused(400, "empty_body")),
        case("null", "null", Rejected(&["not_an_object"])),
        case("a bare number", "42", Rejected(&["not_an_object"])),
        case("a bare string", r#""event""#, Rejected(&["not_an_object"])),
        case(
            "[] nested 10,000 deep",
            deep_array,
            Rejected(&["not_an_object"]),
        ),
        case(
            "object nested 10,000 deep",
            deep_object,
            Rejected(&["missing_field"]),
        ),
        case(
            "field nested 10,000 deep",
            deep_field,
            Rejected(&["bad_type"]),
        ),
        case(
            "body over the size limit",
            vec![b' '; LIMIT + 1],
            Refused(413, "body_too_large"),
        ),
        case(
            "a 1 MB string field",
            mb_string,
            Rejected(&["oversized_event"]),
        ),
        case("a 1 MB key", mb_key, Rejected(&["oversized_event"])),
        case(
            "invalid UTF-8",
            with_bytes("bad-utf8", b"\xff\xfe\xfd"),
            Rejected(&["malformed_json"]),
        ),
        case(
            "overlong UTF-8 '/'",
            with_bytes("overlong", b"\xc0\xaf"),
            Rejected(&["malformed_json"]),
        ),
        case(
            "UTF-8 encoded surrogate",
            with_bytes("cesu", b"\xed\xa0\x80"),
            Rejected(&["malformed_json"]),
        ),
        case(
            "raw NUL byte in a string",
            with_bytes("nul", b"a\x00b"),
            Rejected(&["malformed_json"]),
        ),
        case("UTF-16 with BOM", utf16, Rejected(&["malformed_json"])),
        case(
            "unpaired surrogate escape",
            page_view("surrogate", now, r#","session_id":"\ud800""#),
            Rejected(&["malformed_json"]),
        ),
        case(
            "duplicate keys",
            page_view("dup", now, r#","event_id":"dup-2""#),
            Rejected(&["malformed_json"]),
        ),
        case(
            "trailing garbage",
            format!("{} trailing", page_view("trailing", now, "")),
            Rejected(&["malformed_json"]),
        ),
        case(
            "price 0e2147483647",
            purchase("zero-exp", now, r#""0e2147483647""#, "1", r#""USD""#),
            Accepted(&["zero-exp"]),
        ),
        case(
            "price 1e-2147483648",
            purchase("tiny-exp", now, r#""1e-2147483648""#, "1", r#""USD""#),
            Rejected(&["bad_price"]),
        ),
        case(
            "price of 100,000 digits",
            purchase("digits-100k", now, &hundred_k_digits, "1", r#""USD""#),
            Rejected(&["oversized_event"]),
        ),
        case(
            "price of 50,000 digits",
            purchase("digits-50k", now, &fifty_k_digits, "1", r#""USD""#),
            Rejected(&["bad_price"]),
        ),
        case(
            "price as a JSON number 1e999999",
            purchase("huge-number", now, "1e999999", "1", r#""USD""#),
            Rejected(&["malformed_json"]),
        ),
        case(
            "quantity 1e300",
            purchase("q-1e300", now, r#""1.00""#, "1e300", r#""USD""#),
            Rejected(&["bad_type"]),
        ),
        case(
            "quantity -1",
            purchase("q-neg", now, r#""1.00""#, "-1", r#""USD""#),
            Rejected(&["bad_quantity"]),
        ),
        case(
            "quantity -0",
            purchase("q-neg-zero", now, r#""1.00""#, "-0", r#""USD""#),
            Rejected(&["bad_type"]),
        ),
        case(
            "quantity 18446744073709551616",
            purchase(
                "q-2-64",
                now,
                r#""1.00""#,
                "18446744073709551616",
                r#""USD""#,
            ),
            Rejected(&["bad_type"]),
        ),
        case(
            "three purchases that overflow revenue",
            overflow.join("\n"),
            Rejected(&[
                "amount_out_of_range",
                "amount_out_of_range",
                "amount_out_of_range",
            ]),
        ),
        case(
            "unknown currency",
            purchase("xxx", now, r#""1.00""#, "1", r#""XXX""#),
            Rejected(&["unknown_currency"]),
        ),
        case(
            "event_time in year 0",
            at_time("y0", r#""0000-01-01T00:00:00Z""#),
            Rejected(&["bad_event_time"]),
        ),
        case(
            "event_time in year 10000",
            at_time("y10k", r#""10000-01-01T00:00:00Z""#),
            Rejected(&["bad_event_time"]),
        ),
        case(
            "event_time NaN",
            at_time("nan", r#""NaN""#),
            Rejected(&["bad_event_time"]),
        ),
        case(
            "event_time -1",
            at_time("minus-one", "-1"),
            Rejected(&["bad_event_time"]),
        ),
        case(
            "header injection in event_type",
            page_view("inject", now, "")
                .replace(r#""page_view""#, r#""page_view\r\nX-Injected: yes\r\n""#),
            Rejected(&["unknown_event_type"]),
        ),
        case(
            "100,000 events in one array",
            many,
            Refused(400, "too_many_events"),
        ),
        case(
            "200 empty objects",
            format!("[{}]", vec!["{}"; 200].join(",")),
            AllRejected(200, "missing_field"),
        ),
        case(
            "NDJSON of one valid and one broken line",
            format!(
                "{}\r\n\r\n{{\"event_id\":\n",
                page_view("ndjson-valid", now, "")
            ),
            Mixed(&["ndjson-valid"], &["malformed_json"]),
        ),
    ];
    let mut text_plain = case(
        "wrong Content-Type",
        page_view("text-plain", now, ""),
        Accepted(&["text-plain"]),
    );
    text_plain
        .headers
        .push(("Content-Type", "text/plain; charset=latin1".into()));
    v.push(text_plain);
    let mut bomb = case(
        "gzip bomb with Content-Encoding",
        gzip_bomb(),
        Refused(415, "unsupported_encoding"),
    );
    bomb.headers.push(("Content-Encoding", "gzip".into()));
    v.push(bomb);
    v
}

/// Checks an answer against the case's expectation; the ids of the events it accepted.
fn check(case: &Case, status: u16, answer: &Value) -> Result<Vec<&'static str>, String> {
    let reasons: Vec<&str> = answer["errors"]
        .as_array()
        .map(|errors| errors.iter().filter_map(|e| e["reason"].as_str()).collect())
        .unwrap_or_default();
    let accepted = answer["accepted"].as_u64().unwrap_or(0) as usize;
    let messages_ok = answer["errors"].as_array().is_none_or(|errors| {
        errors
            .iter()
            .all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty()))
    });
    if !messages_ok {
        return Err("a rejected event has no message".into());
    }
    let ok = |expected: &[&str], ids: &'static [&'static str]| {
        if status == 200 && reasons == expected && accepted == ids.len() {
            Ok(ids.to_vec())
        } else {
            Err(format!(
                "expected 200, accepted {ids:?}, reasons {expected:?}"
            ))
        }
    };
    match &case.expect {
        Expect::Refused(want, code) => {
            if status == *want
                && answer["code"] == *code
                && answer["message"].as_str().is_some_and(|m| !m.is_empty())
            {
                Ok(Vec::new())
            } else {
                Err(format!("expected {want} {code} with a message"))
            }
        }
        Expect::Rejected(expected) => ok(expected, &[]),
        Expect::Accepted(ids) => ok(&[], ids),
        Expect::Mixed(ids, expected) => ok(expected, ids),
        Expect::AllRejected(n, reason) => {
            if status == 200
                && accepted == 0
                && reasons.len() == *n
                && reasons.iter().all(|r| r == reason)
            {
                Ok(Vec::new())
            } else {
                Err(format!("expected 200 with {n} events rejected as {reason}"))
            }
        }
    }
}

/// The bound on one answer: 100 ms for a release binary, looser for the debug one.
fn time_bound() -> Duration {
    if let Some(ms) = std::env::var("LAMBDA_HOSTILE_MAX_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Duration::from_millis(ms);
    }
    let bin = lambda_tests::bin::lambda_bin();
    let release = bin.components().any(|c| c.as_os_str() == "release");
    Duration::from_millis(if release { 100 } else { 1_500 })
}

/// One POST to the collector: status, head, parsed answer and wall time.
fn post(addr: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String, Value, Duration) {
    let auth = format!("Bearer {TOKEN}");
    let mut all: Vec<(&str, &str)> = vec![("Authorization", auth.as_str())];
    all.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
    let start = Instant::now();
    let (status, head, bytes) =
        lambda_tests::http::request_with_head(addr, "POST", "/v1/events", &all, body)
            .expect("the collector answers");
    let took = start.elapsed();
    let answer = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        Value::String(format!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        ))
    });
    (status, head, answer, took)
}

/// A short description of an answer for the table.
fn summary(status: u16, answer: &Value) -> String {
    if status != 200 {
        return answer["code"].as_str().unwrap_or("(no code)").to_string();
    }
    let mut reasons: Vec<&str> = answer["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["reason"].as_str()).collect())
        .unwrap_or_default();
    let n = reasons.len();
    reasons.dedup();
    format!(
        "accepted {}, rejected {n} {}",
        answer["accepted"],
        reasons.join(",")
    )
}

#[test]
fn hostile_bodies_get_a_quick_answer_with_a_reason_and_nothing_invalid_reaches_the_topic() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let addr = lambda_tests::http::free_addr();
    let views = dir.path().join("views").display().to_string();
    let speed = format!("http://{}", lambda_tests::http::free_addr());
    let _serve = ChildGuard(
        std::process::Command::new(lambda_tests::bin::lambda_bin())
            .args([
                "serve",
                "--listen",
                &addr,
                "--views",
                &views,
                "--speed-url",
                &speed,
            ])
            .args([
                "--topic",
                TOPIC,
                "--dead-letter-topic",
                DEAD_LETTER,
                "--partitions",
                "2",
            ])
            .args(["--ingest-token", TOKEN, "--brokers", broker.brokers()])
            .env_remove("KAFKA_BROKERS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("lambda serve starts"),
    );
    lambda_tests::wait_for("serve to listen", Duration::from_secs(60), || {
        lambda_tests::http::get(&addr, "/healthz").is_some_and(|(s, _)| s == 200)
    });
    let now = chrono::Utc::now().timestamp_millis();
    // The first request connects the producer to the broker: not one of the timed cases.
    let warm = page_view("warm-up", now, "");
    lambda_tests::wait_for(
        "the collector to accept a valid event",
        Duration::from_secs(60),
        || post(&addr, &[], warm.as_bytes()).0 == 200,
    );
    let mut expected: BTreeSet<String> = BTreeSet::from(["warm-up".to_string()]);
    let mut accepted_total = 1;
    let (mut rows, mut failures) = (Vec::new(), Vec::new());
    let cases = cases(now);
    for case in &cases {
        let (status, head, answer, took) = post(&addr, &case.headers, &case.body);
        match check(case, status, &answer) {
            Ok(ids) => expected.extend(ids.iter().map(|s| s.to_string())),
            Err(e) => failures.push(format!(
                "{}: {e}; got {status} {}",
                case.name,
                summary(status, &answer)
            )),
        }
        if head.to_ascii_lowercase().contains("x-injected") {
            failures.push(format!(
                "{}: a field's text reached the response headers",
                case.name
            ));
        }
        accepted_total += answer["accepted"].as_u64().unwrap_or(0);
        rows.push((
            case.name,
            case.body.len(),
            status,
            took,
            summary(status, &answer),
        ));
    }
    let bound = time_bound();
    println!(
        "{:<42} {:>10} {:>6} {:>9}  answer",
        "case", "bytes", "status", "ms"
    );
    for (name, len, status, took, what) in &rows {
        let what: String = what.chars().take(70).collect();
        println!(
            "{name:<42} {len:>10} {status:>6} {:>9.1}  {what}",
            took.as_secs_f64() * 1e3
        );
    }
    let (slowest_name, slowest) = rows
        .iter()
        .map(|(n, _, _, t, _)| (*n, *t))
        .max_by_key(|(_, t)| *t)
        .unwrap();
    println!(
        "{} cases; slowest answer {slowest:?} ({slowest_name}); bound {bound:?}",
        rows.len()
    );
    assert!(rows.len() >= 25, "{} cases", rows.len());
    for (name, _, _, took, _) in &rows {
        if *took > bound {
            failures.push(format!("{name}: answered in {took:?}, more than {bound:?}"));
        }
    }

    // The server still takes a valid event.
    let after = page_view("after", chrono::Utc::now().timestamp_millis(), "");
    let (status, _, answer, _) = post(&addr, &[], after.as_bytes());
    assert_eq!(
        (status, &answer["accepted"]),
        (200, &Value::from(1)),
        "{answer}"
    );
    expected.insert("after".into());
    accepted_total += 1;

    // The topic holds exactly the valid events: each record passes the same validation
    // (the record's timestamp is the clock, as in both layers), none is missing.
    let stored = lambda_tests::topic::read_all(&broker.client_config(), TOPIC);
    let records: Vec<_> = stored.values().flatten().collect();
    let validator = Validator::default();
    let mut on_topic = BTreeSet::new();
    for r in &records {
        let origin = shared_logic::Origin {
            partition: r.partition,
            offset: r.offset,
        };
        match validator.validate(&r.payload, origin, r.timestamp_ms) {
            Ok(event) => {
                on_topic.insert(event.event_id().0.clone());
            }
            Err(dead) => failures.push(format!(
                "the events topic holds an invalid record ({}): {}",
                dead.reason.code(),
                String::from_utf8_lossy(&r.payload[..r.payload.len().min(200)])
            )),
        }
    }
    assert_eq!(
        records.len() as u64,
        accepted_total,
        "records on the topic vs events accepted"
    );
    assert_eq!(on_topic, expected, "the events on the topic");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
