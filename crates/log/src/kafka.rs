//! The event log on an Apache Kafka topic (`[log] type = "kafka"`), through librdkafka.
//!
//! Appends go through one idempotent producer with `acks=all`: an append returns only once
//! the brokers have replicated every record, so the collector acknowledges nothing the cluster
//! could still lose. Each record goes to the partition Kafka's default partitioner gives its
//! key ([`partition_for`]), set explicitly, so a visitor's events keep their order and land in
//! the same partition number as on the embedded log.
//!
//! Reads use one consumer per partition with a manual assignment and no group membership: the
//! store keeps its offsets in its own manifest, committed with its segments (exactly once, as
//! Druid's Kafka indexing does), and nothing is ever auto-committed. What the store has
//! persisted is also committed to the consumer group `<consumer_group>-<consumer>`, only so
//! monitoring tools can show the lag.
//!
//! When every broker is unreachable, appends fail at once (the collector answers 503) instead of
//! queueing what cannot be made durable; a probe at most every [`PROBE_EVERY`] notices the
//! cluster coming back.

mod reader;
mod topic;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use oriel_core::config::KafkaLogConfig;
use parking_lot::Mutex;
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use self::reader::Reader;
use crate::metrics as m;
use crate::{Error, EventLog, OffsetRange, Position, Record, Result, RetentionReport, StoredRecord, partition_for};

/// How long one metadata or offset request to the brokers may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// While the brokers are unreachable, how often an append may check whether they are back.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// An [`EventLog`] on a Kafka topic.
pub struct KafkaLog {
    config: KafkaLogConfig,
    producer: FutureProducer<Health>,
    health: Arc<BrokerState>,
    partitions: u32,
    readers: Vec<Arc<std::sync::Mutex<Reader>>>,
    /// Consumers registered by the server: they have a position before their first commit.
    registered: Vec<String>,
    /// One group client per consumer name, for committing and reading group offsets.
    groups: Mutex<HashMap<String, Arc<BaseConsumer>>>,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("brokers", &self.config.brokers)
            .field("topic", &self.config.topic)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Connects to the cluster, creates the topic when it is missing and allowed, and checks its
    /// partition count.
    pub async fn open(config: &KafkaLogConfig, consumers: &[&str]) -> Result<Self> {
        let health = Arc::new(BrokerState::default());
        let producer: FutureProducer<Health> = producer_config(config)
            .create_with_context(Health(Arc::clone(&health)))
            .map_err(|e| broker("cannot create the Kafka producer", &e))?;
        let partitions = topic::ensure(config, &producer).await?;
        let closed = Arc::new(AtomicBool::new(false));
        let readers = (0..partitions)
            .map(|p| Reader::new(config, p, Arc::clone(&closed)).map(|r| Arc::new(std::sync::Mutex::new(r))))
            .collect::<Result<Vec<_>>>()?;
        m::broker_up(true);
        Ok(Self {
            config: config.clone(),
            producer,
            health,
            partitions,
            readers,
            registered: consumers.iter().map(|c| (*c).to_string()).collect(),
            groups: Mutex::new(HashMap::new()),
            closed,
        })
    }

    fn check(&self, partition: u32) -> Result<()> {
        if partition < self.partitions { Ok(()) } else { Err(Error::NoSuchPartition { partition, count: self.partitions }) }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) { Err(Error::Closed) } else { Ok(()) }
    }

    /// Fails at once while the brokers are known to be unreachable, except for one probe every
    /// [`PROBE_EVERY`], which clears the state when they answer again.
    async fn ensure_reachable(&self) -> Result<()> {
        if !self.health.down.load(Ordering::SeqCst) {
            return Ok(());
        }
        {
            let mut last = self.health.last_probe.lock();
            if last.is_some_and(|t| t.elapsed() < PROBE_EVERY) {
                return Err(unreachable());
            }
            *last = Some(Instant::now());
        }
        let producer = self.producer.clone();
        let topic = self.config.topic.clone();
        // A request a partition leader must answer: metadata may come from librdkafka's cache.
        let answered =
            tokio::task::spawn_blocking(move || watermarks(producer.client(), &topic, 0, Duration::from_secs(1)).is_ok())
                .await
                .unwrap_or(false);
        // The next probe is due a while after this one ended, not after it began.
        *self.health.last_probe.lock() = Some(Instant::now());
        if answered {
            self.health.set_down(false);
            tracing::info!("the Kafka brokers answer again");
            Ok(())
        } else {
            Err(unreachable())
        }
    }

    /// The client committing `consumer`'s progress to its group.
    fn group(&self, consumer: &str) -> Result<Arc<BaseConsumer>> {
        let mut groups = self.groups.lock();
        if let Some(group) = groups.get(consumer) {
            return Ok(Arc::clone(group));
        }
        let group: BaseConsumer = consumer_config(&self.config, &format!("{}-{consumer}", self.config.consumer_group))
            .create()
            .map_err(|e| broker("cannot create the Kafka group client", &e))?;
        let group = Arc::new(group);
        groups.insert(consumer.to_string(), Arc::clone(&group));
        Ok(group)
    }

    /// Runs `f` with `partition`'s reader on a blocking thread; `cancel` tells a long wait
    /// that its caller went away.
    async fn with_reader<T: Send + 'static>(
        &self,
        partition: u32,
        f: impl FnOnce(&mut Reader, &AtomicBool) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.check(partition)?;
        self.check_open()?;
        let reader = Arc::clone(&self.readers[partition as usize]);
        let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = Arc::clone(&cancel.0);
        tokio::task::spawn_blocking(move || {
            let mut reader = reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut reader, &flag)
        })
        .await
        .map_err(|_| Error::Closed)?
    }
}

#[async_trait]
impl EventLog for KafkaLog {
    fn kind(&self) -> &'static str {
        "kafka"
    }

    fn partition_count(&self) -> u32 {
        self.partitions
    }

    async fn append(&self, records: Vec<Record>) -> Result<Vec<Position>> {
        self.check_open()?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_reachable().await?;
        let started = Instant::now();
        let bytes: usize = records.iter().map(Record::size).sum();
        let mut deliveries = Vec::with_capacity(records.len());
        for record in &records {
            let partition = partition_for(&record.key, self.partitions);
            let message = FutureRecord::to(&self.config.topic)
                .partition(partition as i32)
                .key(&record.key[..])
                .payload(&record.value[..])
                .timestamp(record.timestamp_ms);
            match self.producer.send_result(message) {
                Ok(delivery) => deliveries.push(delivery),
                Err((error, _)) => {
                    metrics::counter!(m::APPEND_ERRORS).increment(1);
                    return Err(broker("cannot queue an event for Kafka", &error));
                }
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(self.config.delivery_timeout_ms);
        let mut positions = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let delivered = match tokio::time::timeout_at(deadline, delivery).await {
                Ok(Ok(Ok(delivered))) => delivered,
                Ok(Ok(Err((error, _)))) => {
                    metrics::counter!(m::APPEND_ERRORS).increment(1);
                    return Err(broker("Kafka did not acknowledge an event", &error));
                }
                Ok(Err(_)) => return Err(Error::Closed),
                Err(_) => {
                    // The producer keeps retrying what it has sent or queued, with the same
                    // producer epoch, and may still deliver it: refused is not the same as lost.
                    metrics::counter!(m::APPEND_ERRORS).increment(1);
                    self.health.set_down(true);
                    return Err(Error::Broker {
                        action: "Kafka did not acknowledge an event in time",
                        reason: format!(
                            "no acknowledgement within {} ms (log.kafka.delivery_timeout_ms)",
                            self.config.delivery_timeout_ms
                        ),
                    });
                }
            };
            positions.push(Position {
                partition: u32::try_from(delivered.partition).unwrap_or_default(),
                offset: u64::try_from(delivered.offset).unwrap_or_default(),
            });
        }
        self.health.set_down(false);
        metrics::counter!(m::APPENDED_RECORDS).increment(positions.len() as u64);
        metrics::counter!(m::APPENDED_BYTES).increment(bytes as u64);
        metrics::histogram!(m::PRODUCE_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(positions)
    }

    async fn read(&self, partition: u32, offset: u64, max_bytes: usize) -> Result<Vec<StoredRecord>> {
        self.with_reader(partition, move |reader, cancel| reader.read(offset, max_bytes, cancel)).await
    }

    async fn wait_for(&self, partition: u32, offset: u64) -> Result<()> {
        self.with_reader(partition, move |reader, cancel| reader.wait_for(offset, cancel)).await
    }

    async fn offsets(&self, partition: u32) -> Result<OffsetRange> {
        self.check(partition)?;
        let (producer, topic) = (self.producer.clone(), self.config.topic.clone());
        tokio::task::spawn_blocking(move || watermarks(producer.client(), &topic, partition, REQUEST_TIMEOUT))
            .await
            .map_err(|_| Error::Closed)?
    }

    async fn commit_consumer(&self, consumer: &str, partition: u32, next_offset: u64) -> Result<()> {
        let end = self.offsets(partition).await?.end;
        if next_offset > end {
            return Err(Error::BeyondEnd { partition, offset: next_offset, end });
        }
        let group = self.group(consumer)?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.config.topic, partition as i32, Offset::Offset(next_offset as i64))
            .map_err(|e| broker("cannot name a Kafka offset", &e))?;
        tokio::task::spawn_blocking(move || group.commit(&list, CommitMode::Sync))
            .await
            .map_err(|_| Error::Closed)?
            .map_err(|e| broker("cannot commit the store's progress to its Kafka consumer group", &e))
    }

    async fn consumer_position(&self, consumer: &str, partition: u32) -> Result<Option<u64>> {
        self.check(partition)?;
        let group = self.group(consumer)?;
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.config.topic, partition as i32);
        let committed = tokio::task::spawn_blocking(move || group.committed_offsets(list, REQUEST_TIMEOUT))
            .await
            .map_err(|_| Error::Closed)?
            .map_err(|e| broker("cannot read a Kafka consumer group's offsets", &e))?;
        let offset = committed.elements().first().map(rdkafka::topic_partition_list::TopicPartitionListElem::offset);
        match offset {
            Some(Offset::Offset(n)) => Ok(u64::try_from(n).ok()),
            // Never committed: a registered consumer starts at the oldest record.
            _ if self.registered.iter().any(|c| c == consumer) => Ok(Some(self.offsets(partition).await?.start)),
            _ => Ok(None),
        }
    }

    async fn enforce_retention(&self) -> Result<RetentionReport> {
        // The brokers apply the topic's retention.ms and retention.bytes.
        Ok(RetentionReport::default())
    }

    fn stored_bytes(&self) -> Option<u64> {
        None
    }

    fn accepting(&self) -> bool {
        !self.health.down.load(Ordering::SeqCst)
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(REQUEST_TIMEOUT))
            .await
            .map_err(|_| Error::Closed)?
            .map_err(|e| broker("cannot flush the Kafka producer", &e))
    }
}

/// Whether the brokers are reachable, as the producer's error callbacks and deliveries tell.
#[derive(Debug, Default)]
struct BrokerState {
    down: AtomicBool,
    last_probe: Mutex<Option<Instant>>,
}

impl BrokerState {
    fn set_down(&self, down: bool) {
        if self.down.swap(down, Ordering::SeqCst) != down {
            m::broker_up(!down);
            if down {
                tracing::warn!("the Kafka brokers are unreachable; the collector refuses events until they answer");
            }
        }
    }
}

/// The producer's client context: librdkafka's log lines go to `tracing`, and "all brokers
/// down" marks the cluster unreachable.
struct Health(Arc<BrokerState>);

impl ClientContext for Health {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => tracing::error!(facility, "librdkafka: {message}"),
            L::Warning => tracing::warn!(facility, "librdkafka: {message}"),
            L::Notice | L::Info => tracing::info!(facility, "librdkafka: {message}"),
            L::Debug => tracing::debug!(facility, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.0.set_down(true);
        } else {
            tracing::warn!(%error, reason, "Kafka client error");
        }
    }
}

/// Sets the flag it holds when dropped: a blocking wait sees that its caller is gone.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Settings every client shares: the brokers and the user's own properties (security).
fn client_config(config: &KafkaLogConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", "oriel")
        // Reconnect within a second once a broker is back (librdkafka's default backs off to 10 s).
        .set("reconnect.backoff.max.ms", "1000");
    for (key, value) in &config.properties {
        client.set(key, value);
    }
    client
}

fn producer_config(config: &KafkaLogConfig) -> ClientConfig {
    let mut client = client_config(config);
    client
        // Exactly one copy of each record, in order, on every in-sync replica.
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", &config.compression)
        .set("linger.ms", config.linger_ms.to_string())
        // librdkafka's own delivery timeout stays long (its default, 5 minutes): a message that
        // times out inside the producer makes it bump its epoch, which short outages need not
        // cost. The collector's answer has its own, shorter deadline (delivery_timeout_ms).
        .set("message.timeout.ms", "300000")
        // The backlog an outage can build before appends are refused outright.
        .set("queue.buffering.max.kbytes", "65536");
    client
}

/// A consumer that never joins the group's assignment and never commits on its own.
pub(crate) fn consumer_config(config: &KafkaLogConfig, group: &str) -> ClientConfig {
    let mut client = client_config(config);
    client
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        // An idle partition's fetch returns within this; brokers that answer a waiting fetch as
        // soon as data arrives make it irrelevant, others (tansu) would add it to freshness.
        .set("fetch.wait.max.ms", "100")
        // An offset retention removed is an error the store reports, never a silent jump.
        .set("auto.offset.reset", "error");
    client
}

/// The offsets `partition` holds, as a request to its leader answers (blocking).
pub(crate) fn watermarks<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    partition: u32,
    timeout: Duration,
) -> Result<OffsetRange> {
    let (low, high) = client
        .fetch_watermarks(topic, partition as i32, timeout)
        .map_err(|e| broker("cannot read the offsets of the Kafka topic", &e))?;
    Ok(OffsetRange { start: u64::try_from(low).unwrap_or(0), end: u64::try_from(high).unwrap_or(0) })
}

fn broker(action: &'static str, error: &KafkaError) -> Error {
    Error::Broker { action, reason: error.to_string() }
}

fn unreachable() -> Error {
    Error::Broker { action: "Kafka is unreachable", reason: "every broker is down or unreachable; retrying".into() }
}
