//! The local broker's sqlite store is made right before the broker serves (issue 23): the
//! indexes tansu 0.6.0 lacks (`io/src/kafka/tansu_store.sql`) are in a fresh store as soon
//! as the broker answers, whether `lambda` (the tests' and the demo's broker) or
//! `scripts/broker.sh` started it; they survive restarts; and records with headers still
//! come back whole, with their headers, before and after a restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use lambda_io::kafka::tansu_store::{DATABASE_FILE, STORE_SQL};
use lambda_io::kafka::{ensure_topics, EventProducer, KafkaSettings};
use lambda_tests::topic::read_all;
use lambda_tests::Broker;

/// The index names `tansu_store.sql` creates.
fn wanted_indexes() -> Vec<String> {
    STORE_SQL
        .lines()
        .filter_map(|l| l.strip_prefix("create index if not exists "))
        .map(|rest| rest.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// Our indexes in the store at `db` (read with the sqlite3 CLI's sibling, Python's module,
/// as a user would check).
fn indexes_in(db: &Path) -> Vec<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=30); \
             print('\\n'.join(r[0] for r in c.execute(\"select name from sqlite_master \
             where type='index' and name like 'lambda_%' order by name\")))",
        ])
        .arg(db)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_brokers_store_has_its_indexes_and_keeps_headers_across_restarts() {
    let mut broker = Broker::start_local();
    let db = broker.store_dir().unwrap().join(DATABASE_FILE);
    let wanted = sorted(wanted_indexes());
    assert_eq!(wanted.len(), 6, "{wanted:?}");
    assert_eq!(
        indexes_in(&db),
        wanted,
        "a fresh store, once the broker answers"
    );

    let topic = "store-headers";
    let settings = KafkaSettings::new(broker.brokers());
    ensure_topics(&settings, &[(topic, 2)], Duration::from_secs(30))
        .await
        .unwrap();
    let producer = EventProducer::new(&settings, topic).unwrap();
    for i in 0..200u32 {
        let payload = format!("record {i}");
        if i.is_multiple_of(3) {
            let n = i.to_string();
            producer
                .send_with_headers(
                    format!("k{i}").as_bytes(),
                    payload.as_bytes(),
                    &[("reason", "invalid_json"), ("source_offset", &n)],
                )
                .unwrap();
        } else {
            producer
                .send(format!("k{i}").as_bytes(), payload.as_bytes())
                .unwrap();
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();

    let check = |broker: &Broker| {
        let stored = read_all(&broker.client_config(), topic);
        let mut seen = 0;
        for record in stored.values().flatten() {
            let text = String::from_utf8(record.payload.clone()).unwrap();
            let i: u32 = text.strip_prefix("record ").unwrap().parse().unwrap();
            let expected: BTreeMap<String, String> = if i.is_multiple_of(3) {
                [
                    ("reason", "invalid_json".to_string()),
                    ("source_offset", i.to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect()
            } else {
                BTreeMap::new()
            };
            assert_eq!(record.headers, expected, "record {i}");
            seen += 1;
        }
        assert_eq!(seen, 200);
    };
    check(&broker);
    broker.restart_after(Duration::from_millis(100));
    assert_eq!(indexes_in(&db), wanted, "after a restart");
    check(&broker);
}

/// `scripts/broker.sh` makes a fresh store right too, and an old store (one without our
/// indexes, as tansu made it) before the broker serves it again.
#[test]
fn the_broker_script_indexes_fresh_and_old_stores() {
    if std::env::var_os("KAFKA_BROKERS").is_some() {
        // The script starts nothing with a real cluster; the test above covers the store.
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = |action: &str, indexes: &str| {
        let out = Command::new("bash")
            .arg(root.join("scripts/broker.sh"))
            .arg(action)
            .env("BROKER_DIR", dir.path())
            .env("BROKER_PORT", port.to_string())
            .env("BROKER_STORAGE", "sqlite")
            .env("BROKER_STORE_INDEXES", indexes)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "broker.sh {action}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let db = dir.path().join(DATABASE_FILE);
    let wanted = sorted(wanted_indexes());

    // As tansu makes it.
    script("start", "off");
    script("stop", "on");
    assert_eq!(indexes_in(&db), Vec::<String>::new());

    let said = script("start", "on");
    assert!(said.contains("indexed the broker's store"), "{said}");
    assert_eq!(indexes_in(&db), wanted);
    script("stop", "on");

    // A fresh store.
    std::fs::remove_dir_all(dir.path()).unwrap();
    script("start", "on");
    assert_eq!(indexes_in(&db), wanted);
    script("stop", "on");
}

/// A topic read (`lambda verify`, the demo's checks, `lambda bench broker`) rides out the
/// broker going away and coming back within its deadline, as the layers' consumers do:
/// while tansu deletes a long retention backlog it does not answer for tens of seconds
/// (docs/broker.md), and the read used to end at the first consume error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_read_goes_on_across_a_broker_restart() {
    let mut broker = Broker::start_local();
    let topic = "read-across-restart";
    let records = 20_000u32;
    // Record batches of at most five records: a fetch returns whole batches.
    let settings = KafkaSettings::new(broker.brokers())
        .with_options(&["batch.num.messages=5".to_string()])
        .unwrap();
    ensure_topics(&settings, &[(topic, 1)], Duration::from_secs(30))
        .await
        .unwrap();
    let producer = EventProducer::new(&settings, topic).unwrap();
    for i in 0..records {
        producer
            .send(format!("k{i}").as_bytes(), format!("record {i}").as_bytes())
            .unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();

    // Small fetches, so that the read is still going when the broker goes down.
    let mut config = broker.client_config();
    config
        .set("message.max.bytes", "2048")
        .set("fetch.max.bytes", "2048")
        .set("max.partition.fetch.bytes", "2048")
        .set("queued.max.messages.kbytes", "16")
        .set("fetch.wait.max.ms", "50");
    let reader = std::thread::spawn(move || {
        lambda_io::kafka::drain::fetch_rate(&config, topic, Duration::from_secs(90))
    });
    std::thread::sleep(Duration::from_millis(500));
    if reader.is_finished() {
        panic!(
            "the read ended before the broker went down ({:?}): make its fetches smaller",
            reader
                .join()
                .unwrap()
                .map(|r| (r.records, r.expected, r.seconds))
        );
    }
    broker.restart_after(Duration::from_secs(3));
    let rate = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap()
        .expect("the read survives the restart");
    assert_eq!(
        (rate.records, rate.expected),
        (u64::from(records), u64::from(records))
    );
}
