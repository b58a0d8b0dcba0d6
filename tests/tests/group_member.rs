//! `lambda_io::kafka::GroupMember` against the local broker (tansu, sqlite storage): a
//! member resumes at its group's committed offset; a member joined from the beginning (the
//! orders change stream, whose state is rebuilt from a partition's start) reads every
//! assigned partition from its start whatever the group committed. Both go through the
//! rebalance callback of `lambda_io::kafka::RebalanceTracker`, which every consumer group
//! member of the platform uses.

use std::time::Duration;

use lambda_io::kafka::{GroupMember, KafkaSettings};
use lambda_tests::topic::produce;
use lambda_tests::Broker;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use shared_logic::generate::{Generator, GeneratorConfig};

const TOPIC: &str = "member-start";

fn config(settings: &KafkaSettings) -> rdkafka::ClientConfig {
    settings.client_config(
        lambda_io::kafka::ClientRole::Consumer,
        &[
            ("group.id", "member-start-group"),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
        ],
    )
}

/// The offset of the first record `member` receives.
async fn first_offset(member: &GroupMember) -> i64 {
    let m = tokio::time::timeout(Duration::from_secs(90), member.consumer().recv())
        .await
        .expect("a record within 90 s")
        .expect("no consume error");
    m.offset()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_resumes_at_the_commit_and_one_joined_from_the_beginning_at_the_start() {
    let broker = Broker::start_local();
    let records: Vec<_> = Generator::new(GeneratorConfig::default())
        .take(100)
        .collect();
    produce(broker.brokers(), TOPIC, 1, &records).await;
    let settings = KafkaSettings::new(broker.brokers());
    let every = Duration::from_secs(1);

    let mut first = GroupMember::join(config(&settings), &[TOPIC.to_string()], every).unwrap();
    assert_eq!(
        first_offset(&first).await,
        0,
        "a new group starts at the start"
    );
    let mut read = TopicPartitionList::new();
    read.add_partition_offset(TOPIC, 0, Offset::Offset(60))
        .unwrap();
    first
        .consumer()
        .commit(&read, CommitMode::Sync)
        .expect("the group commits offset 60");
    first.leave().await.unwrap();
    drop(first);

    let mut resumed = GroupMember::join(config(&settings), &[TOPIC.to_string()], every).unwrap();
    assert_eq!(
        first_offset(&resumed).await,
        60,
        "a member resumes at the group's commit"
    );
    resumed.leave().await.unwrap();
    drop(resumed);

    let rebuilt =
        GroupMember::join_from_beginning(config(&settings), &[TOPIC.to_string()], every).unwrap();
    assert_eq!(
        first_offset(&rebuilt).await,
        0,
        "a member joined from the beginning starts at the partition's start"
    );
    let assigned = rebuilt.assigned().unwrap();
    assert_eq!(assigned, [(TOPIC.to_string(), 0)].into());
}
