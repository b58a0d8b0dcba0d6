//! The `orders` and `daily_sales` metrics from Debezium change streams in both layers, over
//! the real broker.
//!
//! Generated streams (products snapshot, users signing up before their first order and
//! moving country every five minutes, orders placed/paid/cancelled/refunded, category
//! changes every ten minutes, 2 % re-deliveries) plus crafted changes in country IS, so
//! their rows can be checked by value:
//! - product `px` is `books` from the snapshot and becomes `music` at 10:30 (mid-hour):
//!   order `is-a` (10:20) counts under books, `is-b` (10:40) under music;
//! - `is-a` is cancelled at 10:50, `is-c` (10:25, books) is paid and refunded at 11:10:
//!   reversals in the window of the change (the default `ReversalWindow::Change`);
//! - `is-b`'s creation is delivered twice (same source position): counted once;
//! - a re-snapshot of `px` at 11:30 (unchanged) adds no version;
//! - every crafted order is by user `u-is` (born 1990), who lives in IS and moves to GL at
//!   10:30, mid-day: in `daily_sales` order `is-d` (10:15, live) counts under IS and `is-b`
//!   (10:40) under GL, both in age group 35-44; the cancelled and refunded orders count
//!   nowhere; the `orders` metric keeps the order's own country (IS);
//! - the products and users streams are produced only after the speed layer has applied
//!   every order change, so every order is first counted under `unknown` and re-derived
//!   when its product's and user's versions arrive;
//! - a malformed record and an unknown op on `cdc.orders`, an update of a product never
//!   created on `cdc.products` and of a user never created on `cdc.users`: dead-lettered
//!   with their reasons, nothing else lost.
//!
//! Then: the speed layer's views == the batch layer's (replayed from the lake's change
//! files) == the direct replay (`shared_logic::orders`) of the produced logs, and the
//! served answer equals the direct replay at minute, hour and day granularity.

use std::sync::Arc;
use std::time::Duration;

use batch::job::{self, BatchOptions, HourSelection};
use batch::lake_writer::{WriterOptions, WriterStats};
use lambda_io::kafka::{ensure_topics, EventProducer, KafkaSettings};
use lambda_io::Lake;
use lambda_tests::pipeline::spawn_lake_writer;
use lambda_tests::serving::{assert_served_equals_rows, rows_of_views, served_rows};
use lambda_tests::topic::read_all;
use lambda_tests::Broker;
use serving::batch_views::BatchViews;
use serving::speed_views::SpeedViews;
use serving::{ApiOptions, AppState};
use shared_logic::cdc::CdcTable;
use shared_logic::generate_cdc::{CdcConfig, CdcGenerator};
use shared_logic::metrics::{DailySales, Orders};
use shared_logic::orders::replay_in_order;
use shared_logic::window::{DAY_MS, HOUR_MS};
use shared_logic::Aggregates;
use shared_logic::MetricContext;
use speed::cdc_consumer::{CdcConsumer, CdcOptions};
use speed::partition::TimeSettings;
use speed::views::RealtimeViews;
use tokio::sync::watch;

const MIN: i64 = 60_000;
/// 2026-01-01T10:00:00Z.
const H10: i64 = 1_767_225_600_000 + 10 * HOUR_MS;
const ORDERS: &str = "cdc.orders";
const PRODUCTS: &str = "cdc.products";
const USERS: &str = "cdc.users";
const DLQ: &str = "cdc-dead-letter";

/// A record for a topic: key and bytes.
type Produced = (String, Vec<u8>);

fn order_row(
    id: &str,
    product: &str,
    price: &str,
    quantity: i64,
    status: &str,
    created: i64,
) -> String {
    format!(
        r#"{{"id":"{id}","user_id":"u-is","product_id":"{product}","quantity":{quantity},"price":"{price}","currency":"USD","country":"IS","status":"{status}","created_at":{created}}}"#
    )
}

fn envelope(before: Option<String>, after: Option<String>, op: &str, ts: i64, lsn: i64) -> Vec<u8> {
    format!(
        r#"{{"before":{},"after":{},"source":{{"ts_ms":{ts},"lsn":{lsn},"txId":{lsn}}},"op":"{op}"}}"#,
        before.unwrap_or_else(|| "null".into()),
        after.unwrap_or_else(|| "null".into()),
    )
    .into_bytes()
}

fn product_row(id: &str, category: &str) -> String {
    format!(r#"{{"id":"{id}","category":"{category}","name":"crafted"}}"#)
}

fn user_row(id: &str, country: &str) -> String {
    format!(r#"{{"id":"{id}","country":"{country}","birth_year":1990}}"#)
}

/// The records of the three topics.
struct Streams {
    orders: Vec<Produced>,
    products: Vec<Produced>,
    users: Vec<Produced>,
}

/// Generated and crafted records of the three topics, in source order per key.
fn streams() -> Streams {
    let cfg = CdcConfig {
        seed: 11,
        start_ms: H10,
        orders_per_second: 0.25,
        products: 120,
        cancel_fraction: 0.2,
        category_change_every_ms: 10 * MIN,
        duplicate_fraction: 0.02,
        with_schema: true,
        ..CdcConfig::default()
    };
    let (mut orders, mut products, mut users) = (Vec::new(), Vec::new(), Vec::new());
    for r in CdcGenerator::new(cfg).take_while(|r| r.ts_ms < H10 + 2 * HOUR_MS) {
        match r.table {
            CdcTable::Orders => orders.push((r.key, r.json)),
            CdcTable::Products => products.push((r.key, r.json)),
            CdcTable::Users => users.push((r.key, r.json)),
        }
    }
    let m = |minutes: i64| H10 + minutes * MIN;
    let lsn = |n: i64| 900_000_000 + n;
    products.extend([
        (
            "px".into(),
            envelope(None, Some(product_row("px", "books")), "r", m(-60), lsn(1)),
        ),
        (
            "px".into(),
            envelope(
                Some(product_row("px", "books")),
                Some(product_row("px", "music")),
                "u",
                m(30),
                lsn(2),
            ),
        ),
        (
            "px".into(),
            envelope(None, Some(product_row("px", "music")), "r", m(90), lsn(3)),
        ),
        (
            "p-ghost".into(),
            envelope(
                Some(product_row("p-ghost", "toys")),
                Some(product_row("p-ghost", "games")),
                "u",
                m(40),
                lsn(4),
            ),
        ),
    ]);
    users.extend([
        (
            "u-is".into(),
            envelope(None, Some(user_row("u-is", "IS")), "c", m(-120), lsn(5)),
        ),
        (
            "u-is".into(),
            envelope(
                Some(user_row("u-is", "IS")),
                Some(user_row("u-is", "GL")),
                "u",
                m(30),
                lsn(6),
            ),
        ),
        (
            "u-ghost".into(),
            envelope(
                Some(user_row("u-ghost", "IS")),
                Some(user_row("u-ghost", "GL")),
                "u",
                m(40),
                lsn(7),
            ),
        ),
    ]);
    let a = |status: &str| order_row("is-a", "px", "10.00", 1, status, m(20));
    let d = order_row("is-d", "px", "7.00", 1, "paid", m(15));
    let b = |status: &str| order_row("is-b", "px", "20.00", 1, status, m(40));
    let c = |status: &str| order_row("is-c", "px", "5.00", 2, status, m(25));
    let b_created = envelope(None, Some(b("placed")), "c", m(40), lsn(12));
    orders.extend([
        (
            "is-a".into(),
            envelope(None, Some(a("placed")), "c", m(20), lsn(10)),
        ),
        (
            "is-c".into(),
            envelope(None, Some(c("placed")), "c", m(25), lsn(11)),
        ),
        ("is-d".into(), envelope(None, Some(d), "c", m(15), lsn(9))),
        ("is-b".into(), b_created.clone()),
        ("is-b".into(), b_created),
        (
            "is-a".into(),
            envelope(Some(a("placed")), Some(a("cancelled")), "u", m(50), lsn(13)),
        ),
        (
            "is-c".into(),
            envelope(Some(c("placed")), Some(c("paid")), "u", m(55), lsn(14)),
        ),
        (
            "is-c".into(),
            envelope(Some(c("paid")), Some(c("refunded")), "u", m(70), lsn(15)),
        ),
        ("is-x".into(), b"{not json".to_vec()),
        (
            "is-y".into(),
            envelope(None, Some(a("placed")), "x", m(60), lsn(16)),
        ),
    ]);
    Streams {
        orders,
        products,
        users,
    }
}

/// The direct computation: the logs parsed, deduplicated and replayed in produced order.
fn direct(s: &Streams) -> Aggregates {
    fn tagged(table: CdcTable, records: &[Produced]) -> Vec<(CdcTable, &[u8])> {
        records
            .iter()
            .map(|(_, json)| (table, json.as_slice()))
            .collect()
    }
    replay_in_order(
        tagged(CdcTable::Products, &s.products)
            .into_iter()
            .chain(tagged(CdcTable::Users, &s.users))
            .chain(tagged(CdcTable::Orders, &s.orders)),
        &MetricContext::default(),
    )
}

async fn produce(settings: &KafkaSettings, topic: &str, records: &[Produced]) {
    let producer = EventProducer::new(settings, topic).expect("producer");
    for (key, json) in records {
        producer.send(key.as_bytes(), json).expect("queued");
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("acknowledged");
}

fn lake_writer(
    brokers: &str,
    lake: &Lake,
    table: CdcTable,
    mut stop: watch::Receiver<bool>,
) -> std::thread::JoinHandle<Result<WriterStats, batch::BatchError>> {
    let opts = WriterOptions {
        topics: vec![table.default_topic().into()],
        group_id: format!("lake-{}", table.name()),
        roll_age: Duration::from_secs(1),
        cdc: Some(table),
        ..WriterOptions::default()
    };
    spawn_lake_writer(brokers, lake, opts, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
}

/// The served `orders` rows of country IS by category, per hour:
/// (hour start, category, orders, gross, cancellations, reversed, net).
async fn iceland(addr: &str) -> Vec<(i64, String, u64, i64, u64, i64, i64)> {
    let path = format!(
        "/v1/metrics/orders?from={}&to={}&granularity=hour&filter=country:IS&group_by=category",
        H10 - HOUR_MS,
        H10 + 4 * HOUR_MS
    );
    served_rows(addr, &path)
        .await
        .into_iter()
        .map(|(start, r)| {
            let v = &r["values"];
            (
                start,
                r["dimensions"]["category"].as_str().unwrap().to_string(),
                v["orders"].as_u64().unwrap(),
                v["gross_revenue_minor"].as_i64().unwrap(),
                v["cancellations"].as_u64().unwrap(),
                v["reversed_revenue_minor"].as_i64().unwrap(),
                v["net_revenue_minor"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The served `daily_sales` rows of the day of `range` in the crafted user's two
/// countries: (country, category, orders, revenue, average order value, buyers), age group
/// 35-44 only.
async fn user_moving_mid_day(
    addr: &str,
    range: (i64, i64),
) -> Vec<(String, String, u64, i64, i64, u64)> {
    let path = format!(
        "/v1/metrics/daily_sales?from={}&to={}&granularity=day&group_by=country,category,age_group",
        range.0, range.1
    );
    served_rows(addr, &path)
        .await
        .into_iter()
        .filter(|(_, r)| {
            let d = &r["dimensions"];
            matches!(d["country"].as_str(), Some("IS" | "GL")) && d["age_group"] == "35-44"
        })
        .map(|(_, r)| {
            let (d, v) = (&r["dimensions"], &r["values"]);
            (
                d["country"].as_str().unwrap().to_string(),
                d["category"].as_str().unwrap().to_string(),
                v["orders"].as_u64().unwrap(),
                v["revenue_minor"].as_i64().unwrap(),
                v["average_order_value_minor"].as_i64().unwrap(),
                v["distinct_buyers"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_from_change_streams_agree_in_both_layers() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let settings = KafkaSettings::new(broker.brokers());
    ensure_topics(
        &settings,
        &[(ORDERS, 3), (PRODUCTS, 2), (USERS, 2), (DLQ, 1)],
        Duration::from_secs(30),
    )
    .await
    .expect("topics");
    let streams = streams();
    let all_expected = direct(&streams);
    let (expected, expected_sales) = (&all_expected.orders, &all_expected.daily_sales);
    let Streams {
        orders,
        products,
        users,
    } = &streams;

    let realtime = RealtimeViews::new(
        MetricContext::default(),
        TimeSettings::default(),
        Duration::from_secs(3_600),
    );
    let (stop, stopped) = watch::channel(false);
    let cdc = CdcConsumer::new(
        realtime.clone(),
        &settings,
        CdcOptions {
            orders_topic: ORDERS.into(),
            products_topic: PRODUCTS.into(),
            users_topic: USERS.into(),
            group_id: "cdc-speed".into(),
            dead_letter_topic: DLQ.into(),
            batch_views: None,
            retain_covered: Duration::from_secs(3_600),
        },
    )
    .await
    .expect("change streams consumer");
    let mut cdc_stop = stopped.clone();
    let cdc = tokio::spawn(cdc.run(async move {
        let _ = cdc_stop.wait_for(|s| *s).await;
    }));
    let lake_dir = dir.path().join("lake");
    let lake = Lake::open(lake_dir.to_str().unwrap(), true).unwrap();
    let writers = [
        lake_writer(broker.brokers(), &lake, CdcTable::Orders, stopped.clone()),
        lake_writer(broker.brokers(), &lake, CdcTable::Products, stopped.clone()),
        lake_writer(broker.brokers(), &lake, CdcTable::Users, stopped.clone()),
    ];

    // Orders first; products and users only once every order change is applied (all
    // `unknown`).
    produce(&settings, ORDERS, orders).await;
    let handled = |c: lambda_io::speed_api::ChangeCounters| {
        c.order_changes + c.product_changes + c.user_changes + c.duplicates + c.late + c.rejected
    };
    lambda_tests::wait_until(
        "the speed layer to apply every order change",
        Duration::from_secs(120),
        || handled(realtime.order_counters()) >= orders.len() as u64,
    )
    .await;
    let snapshot = realtime.snapshot(i64::MIN, i64::MAX).aggregates;
    assert!(
        snapshot
            .orders
            .iter()
            .all(|(k, _)| k.dim(0) == Some("unknown")),
        "no product known yet"
    );
    assert!(
        snapshot
            .daily_sales
            .iter()
            .all(|(k, _)| k.dims().all(|d| d == "unknown")),
        "no product or user known yet"
    );
    produce(&settings, PRODUCTS, products).await;
    produce(&settings, USERS, users).await;
    let total = (orders.len() + products.len() + users.len()) as u64;
    // The orders group may hand a partition over once while it forms, and its new reading
    // starts again at the beginning (the state is rebuilt, the counters count the records
    // again): wait for the views themselves, and for the last user change (rejected).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let views = realtime.snapshot(i64::MIN, i64::MAX).aggregates;
        let counters = realtime.order_counters();
        let (orders_equal, sales_equal) = (
            &views.orders == expected,
            &views.daily_sales == expected_sales,
        );
        if counters.rejected >= 4 && orders_equal && sales_equal {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the speed layer did not apply every change: {counters:?}, orders equal {orders_equal}, daily_sales equal {sales_equal} ({} / {} keys)",
            views.daily_sales.len(),
            expected_sales.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counters = realtime.order_counters();
    assert!(
        counters.rederived > 0,
        "orders re-derived when their products and users arrived: {counters:?}"
    );
    assert!(handled(counters) >= total, "{counters:?}");
    lambda_tests::wait_until(
        "the lake writers to write every record",
        Duration::from_secs(120),
        || {
            lambda_tests::lake_files::rows(&lake_dir.join("cdc"))
                + lambda_tests::lake_files::rows(&lake_dir.join("dead-letter"))
                >= total
        },
    )
    .await;

    // Speed == direct replay.
    let speed_views = realtime.snapshot(i64::MIN, i64::MAX).aggregates;
    assert!(!expected.is_empty() && !expected_sales.is_empty());
    assert_eq!(
        &speed_views.orders, expected,
        "speed layer vs direct replay"
    );
    assert_eq!(
        &speed_views.daily_sales, expected_sales,
        "speed layer vs direct replay: daily_sales"
    );

    // Batch (replayed from the lake's change files) == direct replay.
    let views = lake.child("views");
    let report = job::run(
        &lake,
        &views,
        &HourSelection::Dirty { before: None },
        &BatchOptions::default(),
    )
    .await
    .expect("batch run");
    assert!(report.orders.replayed);
    assert_eq!(
        report
            .orders
            .rejected
            .iter()
            .map(|r| r.rejection.reason.code())
            .collect::<Vec<_>>(),
        vec!["unknown_key", "unknown_key"]
    );
    let published = lambda_io::manifest::Published::load(&views).await.unwrap();
    let hours: Vec<_> = published
        .hours
        .keys()
        .filter_map(|h| shared_logic::window::HourKey::parse(h))
        .collect();
    assert!(hours.len() >= 2, "{hours:?}");
    // The products dimension: px's two versions, books until 10:30, then music.
    let dimension = published
        .change_log
        .as_ref()
        .and_then(|c| c.products.clone())
        .expect("products dimension");
    let bytes = std::fs::read(lake_dir.join("views").join(&dimension)).unwrap();
    let px: Vec<(Option<i64>, Option<i64>, Option<String>)> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(
            bytes,
        ))
        .unwrap()
        .build()
        .unwrap()
        .flat_map(|b| {
            use arrow::array::{Array, AsArray};
            use arrow::datatypes::TimestampMillisecondType as Ts;
            let b = b.unwrap();
            let (id, from, to, cat) = (
                b.column(0).as_string::<i32>().clone(),
                b.column(1).as_primitive::<Ts>().clone(),
                b.column(2).as_primitive::<Ts>().clone(),
                b.column(3).as_string::<i32>().clone(),
            );
            (0..b.num_rows())
                .filter(|&i| id.value(i) == "px")
                .map(|i| {
                    let opt =
                        |a: &arrow::array::PrimitiveArray<Ts>| (!a.is_null(i)).then(|| a.value(i));
                    (
                        opt(&from),
                        opt(&to),
                        (!cat.is_null(i)).then(|| cat.value(i).to_string()),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let half_past = H10 + 30 * MIN;
    assert_eq!(
        px,
        vec![
            (None, Some(half_past), Some("books".to_string())),
            (Some(half_past), None, Some("music".to_string())),
        ]
    );
    let batch_views = batch::view_files::read_views::<Orders>(&views, &published, &hours)
        .await
        .unwrap();
    assert_eq!(&batch_views, expected, "batch layer vs direct replay");
    let batch_sales = batch::view_files::read_views::<DailySales>(&views, &published, &hours)
        .await
        .unwrap();
    assert_eq!(
        &batch_sales, expected_sales,
        "batch layer vs direct replay: daily_sales"
    );
    // The users dimension: u-is in IS until 10:30, then in GL.
    let dimension = published
        .change_log
        .as_ref()
        .and_then(|c| c.users.clone())
        .expect("users dimension");
    let bytes = std::fs::read(lake_dir.join("views").join(&dimension)).unwrap();
    let u_is: Vec<(Option<i64>, Option<i64>, String, i32)> =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(
            bytes,
        ))
        .unwrap()
        .build()
        .unwrap()
        .flat_map(|b| {
            use arrow::array::{Array, AsArray};
            use arrow::datatypes::{Int32Type, TimestampMillisecondType as Ts};
            let b = b.unwrap();
            let (id, from, to, country, born) = (
                b.column(0).as_string::<i32>().clone(),
                b.column(1).as_primitive::<Ts>().clone(),
                b.column(2).as_primitive::<Ts>().clone(),
                b.column(3).as_string::<i32>().clone(),
                b.column(4).as_primitive::<Int32Type>().clone(),
            );
            (0..b.num_rows())
                .filter(|&i| id.value(i) == "u-is")
                .map(|i| {
                    let opt =
                        |a: &arrow::array::PrimitiveArray<Ts>| (!a.is_null(i)).then(|| a.value(i));
                    (
                        opt(&from),
                        opt(&to),
                        country.value(i).to_string(),
                        born.value(i),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        u_is,
        vec![
            (
                Some(H10 - 2 * HOUR_MS),
                Some(half_past),
                "IS".to_string(),
                1990
            ),
            (Some(half_past), None, "GL".to_string(), 1990),
        ]
    );
    // A second run with nothing new replays nothing.
    let again = job::run(
        &lake,
        &views,
        &HourSelection::Dirty { before: None },
        &BatchOptions::default(),
    )
    .await
    .unwrap();
    assert!(!again.orders.replayed);

    // Served (batch for the covered hours, speed after) == direct, and the crafted rows.
    let state = Arc::new(AppState {
        batch: BatchViews::new(views.clone(), 64),
        speed: SpeedViews::in_process(realtime.clone()).into(),
        collector: None,
        telemetry: Default::default(),
        answers: Default::default(),
        opts: ApiOptions::default(),
    });
    state.batch.refresh().await.expect("manifest");
    let addr = lambda_tests::serving::start(state).await;
    let range = (H10 - HOUR_MS, H10 + 4 * HOUR_MS);
    for (granularity, size, group_by) in [
        ("minute", MIN, vec!["category", "country"]),
        ("hour", HOUR_MS, vec!["category"]),
        ("hour", HOUR_MS, vec![]),
    ] {
        let rows = rows_of_views(expected, range.0, range.1, size, &group_by, &[]);
        assert_served_equals_rows::<Orders>(
            &addr,
            rows,
            range,
            (granularity, size),
            &group_by,
            &[],
        )
        .await;
    }
    // daily_sales per day, by its three dimensions and by country alone (distinct buyers
    // merged, not summed).
    let day = (H10 - 10 * HOUR_MS, H10 + 14 * HOUR_MS);
    for group_by in [
        vec!["country", "category", "age_group"],
        vec!["country"],
        vec![],
    ] {
        let rows = rows_of_views(expected_sales, day.0, day.1, DAY_MS, &group_by, &[]);
        assert_served_equals_rows::<DailySales>(&addr, rows, day, ("day", DAY_MS), &group_by, &[])
            .await;
    }
    assert_eq!(
        user_moving_mid_day(&addr, day).await,
        vec![
            ("GL".to_string(), "music".to_string(), 1, 2000, 2000, 1),
            ("IS".to_string(), "books".to_string(), 1, 700, 700, 1),
        ]
    );
    let h = |n: i64| H10 + n * HOUR_MS;
    assert_eq!(
        iceland(&addr).await,
        vec![
            (h(0), "books".into(), 3, 2700, 1, 1000, 1700),
            (h(0), "music".into(), 1, 2000, 0, 0, 2000),
            (h(1), "books".into(), 0, 0, 1, 1000, -1000),
        ]
    );

    // Dead letters: the two broken order records and the unknown product, with reasons.
    lambda_tests::wait_until(
        "the dead letters to be acknowledged",
        Duration::from_secs(30),
        || {
            read_all(&broker.client_config(), DLQ)
                .values()
                .flatten()
                .count()
                >= 4
        },
    )
    .await;
    let dead = read_all(&broker.client_config(), DLQ);
    // A set: a partition read again after a hand-over dead-letters its rejects again.
    let reasons: std::collections::BTreeSet<(String, String)> = dead
        .values()
        .flatten()
        .map(|r| {
            (
                r.headers["source_topic"].clone(),
                r.headers["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (ORDERS, "malformed_json"),
            (ORDERS, "unknown_op"),
            (PRODUCTS, "unknown_key"),
            (USERS, "unknown_key"),
        ]
        .map(|(t, r)| (t.to_string(), r.to_string()))
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
    );

    let _ = stop.send(true);
    cdc.await
        .unwrap()
        .expect("change streams consumer stops cleanly");
    for w in writers {
        tokio::task::spawn_blocking(move || w.join())
            .await
            .unwrap()
            .expect("lake writer thread")
            .expect("lake writer stops cleanly");
    }
}
