//! Reading one partition of the topic: a consumer assigned to it by hand, positioned where the
//! store asks, and kept there between reads so consecutive reads cost no seek.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use oriel_core::config::KafkaLogConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{REQUEST_TIMEOUT, broker, consumer_config, watermarks};
use crate::{Error, Result, StoredRecord};

/// How long one poll blocks before the caller's state (closed, cancelled) is looked at again.
const SLICE: Duration = Duration::from_millis(100);
/// How long a record below the high watermark may take to arrive before the read fails.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The consumer of one partition and where it stands.
pub(super) struct Reader {
    consumer: BaseConsumer,
    topic: String,
    partition: u32,
    /// The offset the consumer is assigned at or has read up to: the next record it yields.
    next: Option<u64>,
    /// A record already polled but not yet handed out (over a read's byte budget, or found by
    /// a wait).
    pending: Option<StoredRecord>,
    closed: Arc<AtomicBool>,
}

impl Reader {
    pub(super) fn new(config: &KafkaLogConfig, partition: u32, closed: Arc<AtomicBool>) -> Result<Self> {
        let consumer: BaseConsumer = consumer_config(config, &format!("{}-reader", config.consumer_group))
            .create()
            .map_err(|e| broker("cannot create a Kafka consumer", &e))?;
        Ok(Self { consumer, topic: config.topic.clone(), partition, next: None, pending: None, closed })
    }

    /// Records from `offset` on, about `max_bytes` of them and at least one unless `offset` is
    /// the end.
    pub(super) fn read(&mut self, offset: u64, max_bytes: usize, cancel: &AtomicBool) -> Result<Vec<StoredRecord>> {
        let (_, high) = self.position(offset)?;
        let mut out = Vec::new();
        let mut bytes = 0;
        self.drain(&mut out, &mut bytes, max_bytes)?;
        if !out.is_empty() {
            return Ok(out);
        }
        let high = match high {
            Some(high) => high,
            None => self.watermarks()?.1,
        };
        if offset >= high {
            return Ok(out);
        }
        // The record exists: wait for the fetch to bring it.
        let asked = Instant::now();
        while out.is_empty() {
            self.check(cancel)?;
            if asked.elapsed() > FETCH_TIMEOUT {
                return Err(Error::Broker {
                    action: "Kafka did not deliver a stored record",
                    reason: format!("offset {offset} of partition {} is below the end {high}", self.partition),
                });
            }
            if let Some(record) = self.next_record(SLICE)? {
                bytes += record.key.len() + record.value.len();
                out.push(record);
            }
        }
        self.drain(&mut out, &mut bytes, max_bytes)?;
        Ok(out)
    }

    /// Returns once the partition holds a record at `offset` or later.
    pub(super) fn wait_for(&mut self, offset: u64, cancel: &AtomicBool) -> Result<()> {
        loop {
            self.check(cancel)?;
            if self.pending.as_ref().is_some_and(|r| r.offset >= offset) {
                return Ok(());
            }
            if self.pending.is_none() && self.next == Some(offset) {
                // Positioned right there: the consumer's fetch waits at the broker for it (and a
                // record found is kept for the next read, never dropped for another).
                if let Some(record) = self.next_record(SLICE)? {
                    self.pending = Some(record);
                    return Ok(());
                }
                continue;
            }
            let (_, high) = self.watermarks()?;
            if high > offset {
                return Ok(());
            }
            if high == offset {
                self.position(offset)?;
            } else {
                // Beyond the end: nothing to fetch yet.
                std::thread::sleep(SLICE);
            }
        }
    }

    fn check(&self, cancel: &AtomicBool) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) || cancel.load(Ordering::SeqCst) { Err(Error::Closed) } else { Ok(()) }
    }

    /// Moves the consumer to `offset` unless it is there already; returns the watermarks when it
    /// had to ask for them.
    fn position(&mut self, offset: u64) -> Result<(Option<u64>, Option<u64>)> {
        if self.pending.as_ref().is_some_and(|r| r.offset == offset) || (self.pending.is_none() && self.next == Some(offset)) {
            return Ok((None, None));
        }
        let (start, high) = self.watermarks()?;
        if offset < start {
            return Err(Error::OffsetRemoved { partition: self.partition, requested: offset, start });
        }
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.topic, self.partition as i32, Offset::Offset(offset as i64))
            .map_err(|e| broker("cannot name a Kafka offset", &e))?;
        self.consumer.assign(&list).map_err(|e| broker("cannot assign a Kafka partition", &e))?;
        self.pending = None;
        self.next = Some(offset);
        Ok((Some(start), Some(high)))
    }

    /// Adds what is already fetched to `out`, up to the byte budget.
    fn drain(&mut self, out: &mut Vec<StoredRecord>, bytes: &mut usize, max_bytes: usize) -> Result<()> {
        while let Some(record) = self.next_record(Duration::ZERO)? {
            let size = record.key.len() + record.value.len();
            if !out.is_empty() && *bytes + size > max_bytes {
                self.pending = Some(record);
                break;
            }
            *bytes += size;
            out.push(record);
        }
        Ok(())
    }

    /// The pending record, or the next one the consumer yields within `timeout`.
    fn next_record(&mut self, timeout: Duration) -> Result<Option<StoredRecord>> {
        if let Some(record) = self.pending.take() {
            return Ok(Some(record));
        }
        let message = match self.consumer.poll(timeout) {
            None => return Ok(None),
            Some(Ok(message)) => message,
            Some(Err(KafkaError::MessageConsumption(RDKafkaErrorCode::OffsetOutOfRange))) => {
                let start = self.watermarks()?.0;
                let requested = self.next.unwrap_or(0);
                self.next = None;
                return Err(Error::OffsetRemoved { partition: self.partition, requested, start });
            }
            Some(Err(error)) => return Err(broker("cannot read from Kafka", &error)),
        };
        let offset = u64::try_from(message.offset()).unwrap_or(0);
        self.next = Some(offset + 1);
        Ok(Some(StoredRecord {
            partition: self.partition,
            offset,
            timestamp_ms: message.timestamp().to_millis().unwrap_or(0),
            key: Bytes::copy_from_slice(message.key().unwrap_or_default()),
            value: Bytes::copy_from_slice(message.payload().unwrap_or_default()),
        }))
    }

    /// The oldest offset the partition holds and its end.
    fn watermarks(&self) -> Result<(u64, u64)> {
        let range = watermarks(self.consumer.client(), &self.topic, self.partition, REQUEST_TIMEOUT)?;
        Ok((range.start, range.end))
    }
}
