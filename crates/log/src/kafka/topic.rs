//! The topic of enriched events: found, or created when allowed, with the partition count the
//! configuration names.

use std::time::{Duration, Instant};

use oriel_core::config::KafkaLogConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, Producer};

use super::{REQUEST_TIMEOUT, broker, client_config};
use crate::{Error, Result};

/// How long start-up waits for the brokers to answer at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The topic's partition count, after creating the topic if it is missing and allowed.
pub(super) async fn ensure<C: ClientContext + 'static>(config: &KafkaLogConfig, producer: &FutureProducer<C>) -> Result<u32> {
    if let Some(found) = partitions(config, producer).await? {
        return check(config, found);
    }
    if !config.create_topic {
        return Err(Error::Topic {
            topic: config.topic.clone(),
            reason: "it does not exist and log.kafka.create_topic is false; create it or allow Oriel to".into(),
        });
    }
    let admin: AdminClient<DefaultClientContext> =
        client_config(config).create().map_err(|e| broker("cannot create the Kafka admin client", &e))?;
    let topic = NewTopic::new(
        &config.topic,
        i32::try_from(config.partitions).unwrap_or(i32::MAX),
        TopicReplication::Fixed(i32::try_from(config.replication_factor).unwrap_or(1)),
    );
    let options = AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT));
    let results = admin.create_topics([&topic], &options).await.map_err(|e| broker("cannot create the Kafka topic", &e))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic = config.topic, partitions = config.partitions, "created the Kafka topic"),
            // Another node created it meanwhile.
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(Error::Topic {
                    topic: config.topic.clone(),
                    reason: format!("the brokers refused to create it: {code}"),
                });
            }
        }
    }
    // Metadata catches up with a new topic after a moment.
    let asked = Instant::now();
    loop {
        if let Some(found) = partitions(config, producer).await? {
            return check(config, found);
        }
        if asked.elapsed() > REQUEST_TIMEOUT {
            return Err(Error::Topic { topic: config.topic.clone(), reason: "created, but the brokers do not list it".into() });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The topic's partition count, `None` when the brokers do not know the topic.
async fn partitions<C: ClientContext + 'static>(config: &KafkaLogConfig, producer: &FutureProducer<C>) -> Result<Option<u32>> {
    let asked = Instant::now();
    let metadata = loop {
        let (producer, topic) = (producer.clone(), config.topic.clone());
        let fetched = tokio::task::spawn_blocking(move || producer.client().fetch_metadata(Some(&topic), REQUEST_TIMEOUT))
            .await
            .map_err(|_| Error::Closed)?;
        match fetched {
            Ok(metadata) => break metadata,
            Err(error) if asked.elapsed() > CONNECT_TIMEOUT => {
                return Err(Error::Broker {
                    action: "cannot reach the Kafka brokers",
                    reason: format!("{error} (log.kafka.brokers = {:?})", config.brokers),
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == config.topic) else { return Ok(None) };
    match topic.error() {
        None => Ok(Some(u32::try_from(topic.partitions().len()).unwrap_or(u32::MAX)).filter(|&n| n > 0)),
        Some(code) if RDKafkaErrorCode::from(code) == RDKafkaErrorCode::UnknownTopicOrPartition => Ok(None),
        Some(code) => Err(Error::Topic { topic: config.topic.clone(), reason: RDKafkaErrorCode::from(code).to_string() }),
    }
}

fn check(config: &KafkaLogConfig, found: u32) -> Result<u32> {
    if found == config.partitions {
        Ok(found)
    } else {
        Err(Error::Topic {
            topic: config.topic.clone(),
            reason: format!(
                "it has {found} partitions but log.kafka.partitions is {}; set it to {found} (the store's offsets are per \
                 partition, so the count cannot change under it)",
                config.partitions
            ),
        })
    }
}
