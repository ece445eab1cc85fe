//! The writer thread of one partition: group commit.
//!
//! Appends queue for the writer; it takes everything queued (after lingering
//! `group_commit_interval` for more, if configured), writes it as one batch, runs one
//! `fdatasync`, and only then answers every append of the group. Appends that arrive during a
//! sync form the next group, so many concurrent appends share one sync.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::EmbeddedOptions;
use super::batch::{self, HEADER_LEN};
use super::partition::Partition;
use super::segment::{self, Segment};
use crate::metrics as m;
use crate::{Error, Record, Result};

/// One append waiting for the writer: its records and where to send the base offset.
pub(crate) struct Request {
    pub(crate) records: Vec<Record>,
    pub(crate) reply: oneshot::Sender<Result<u64>>,
}

/// The state of one partition's writer thread.
pub(crate) struct Writer {
    segment_bytes: u64,
    /// Asks the preallocator for a new spare segment after a roll used one.
    spares: Option<flume::Sender<PathBuf>>,
    linger: Duration,
    group_cap: usize,
    poisoned: Option<String>,
}

impl Writer {
    pub(crate) fn new(options: &EmbeddedOptions, spares: Option<flume::Sender<PathBuf>>) -> Self {
        Self {
            segment_bytes: options.segment_bytes,
            spares,
            linger: options.group_commit_interval,
            group_cap: options.max_append_bytes,
            poisoned: None,
        }
    }

    pub(crate) fn run(mut self, partition: &Partition, queue: &flume::Receiver<Request>) {
        let mut carry: Option<Request> = None;
        loop {
            let first = match carry.take() {
                Some(request) => request,
                None => match queue.recv() {
                    Ok(request) => request,
                    Err(flume::RecvError::Disconnected) => return,
                },
            };
            let mut bytes = first.records.iter().map(Record::size).sum::<usize>();
            let mut group = vec![first];
            let deadline = Instant::now() + self.linger;
            loop {
                let next = match queue.try_recv() {
                    Ok(request) => request,
                    Err(_) if Instant::now() >= deadline => break,
                    Err(_) => match queue.recv_deadline(deadline) {
                        Ok(request) => request,
                        Err(_) => break,
                    },
                };
                let size = next.records.iter().map(Record::size).sum::<usize>();
                if bytes + size > self.group_cap {
                    carry = Some(next);
                    break;
                }
                bytes += size;
                group.push(next);
            }
            self.commit_group(partition, group);
        }
    }

    fn commit_group(&mut self, partition: &Partition, group: Vec<Request>) {
        if let Some(reason) = &self.poisoned {
            for request in group {
                let _ = request.reply.send(Err(Error::Poisoned { partition: partition.id, reason: reason.clone() }));
            }
            return;
        }
        let base = *partition.end.borrow();
        let records: Vec<&Record> = group.iter().flat_map(|r| &r.records).collect();
        let mut buf = Vec::with_capacity(batch::encoded_len(&records));
        batch::encode(base, &records, &mut buf);
        let count = records.len() as u64;
        let payload: u64 = records.iter().map(|r| r.size() as u64).sum();
        match self.write_and_sync(partition, &buf) {
            Ok(()) => {
                let end = base + count;
                partition.synced_records.fetch_add(count, Ordering::Relaxed);
                partition.end.send_replace(end);
                partition.disk_bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
                partition.publish_disk_bytes();
                metrics::counter!(m::APPENDED_RECORDS).increment(count);
                metrics::counter!(m::APPENDED_BYTES).increment(payload);
                metrics::histogram!(m::GROUP_RECORDS).record(count as f64);
                let mut next = base;
                for request in group {
                    let n = request.records.len() as u64;
                    let _ = request.reply.send(Ok(next));
                    next += n;
                }
            }
            Err(error) => {
                // After a failed write or fsync the page cache can no longer be trusted (a later
                // fsync may report success for lost data), so refuse appends until a restart
                // recovers the partition from what is really on disk.
                tracing::error!(partition = partition.id, %error, "event log write failed; partition stops accepting appends");
                metrics::counter!(m::APPEND_ERRORS).increment(group.len() as u64);
                self.poisoned = Some(error.to_string());
                let active = partition.active();
                if let Err(truncate_error) = active.discard_unsynced() {
                    tracing::error!(partition = partition.id, %truncate_error, "failed to discard unsynced bytes");
                }
                for request in group {
                    let _ = request.reply.send(Err(Error::Poisoned { partition: partition.id, reason: error.to_string() }));
                }
            }
        }
    }

    fn write_and_sync(&self, partition: &Partition, buf: &[u8]) -> Result<()> {
        let mut active = partition.active();
        let len = buf.len() as u64;
        let full = active.durable_len() > 0 && active.durable_len() + len > self.segment_bytes;
        // A segment that grows instead of filling preallocated space (the first one, or one cut
        // back by recovery) is replaced as soon as a spare is ready, so syncs get cheap.
        let growing = active.durable_len() > 0 && !active.has_room(len) && partition.dir.join(segment::SPARE_NAME).exists();
        if full || growing {
            active.seal()?;
            let base = active.next_offset();
            active = match Segment::from_spare(&partition.dir, partition.id, base)? {
                Some(segment) => Arc::new(segment),
                None => Arc::new(Segment::create(&partition.dir, partition.id, base)?),
            };
            partition.segments.write().push(Arc::clone(&active));
            if let Some(spares) = &self.spares {
                let _ = spares.send(partition.dir.clone());
            }
        }
        active.write(buf)?;
        let started = Instant::now();
        active.sync()?;
        let took = started.elapsed();
        metrics::histogram!(m::FSYNC_SECONDS).record(took.as_secs_f64());
        partition.syncs.fetch_add(1, Ordering::Relaxed);
        partition.sync_nanos.fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        let header = batch::decode_header(&buf[..HEADER_LEN.min(buf.len())]).map_err(|reason| Error::Corrupt {
            partition: partition.id,
            segment: active.path.clone(),
            position: active.durable_len(),
            reason,
        })?;
        active.commit(&header);
        Ok(())
    }
}

/// The thread that keeps one pre-zeroed spare segment ready per partition.
///
/// It must be gone before the log's directory is opened again: a spare it is still zeroing
/// could otherwise be published under the new log, taken as a segment and appended to, and
/// then overwritten by its remaining zeros (a reopen in the same process, as tests do, lost an
/// acknowledged batch that way). [`Preallocator::stop`] interrupts the zeroing and waits.
#[derive(Debug)]
pub(crate) struct Preallocator {
    sender: flume::Sender<PathBuf>,
    cancel: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Preallocator {
    /// Starts the thread; spares are `segment_bytes` long.
    pub(crate) fn start(segment_bytes: u64) -> Result<Self> {
        let (sender, rx) = flume::unbounded::<PathBuf>();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&cancel);
        let thread = std::thread::Builder::new()
            .name("oriel-log-prealloc".into())
            .spawn(move || {
                while let Ok(dir) = rx.recv() {
                    if let Err(error) = segment::prepare_spare(&dir, segment_bytes, &stop) {
                        // Without a spare the next roll creates an ordinary file: slower syncs, no loss.
                        tracing::warn!(%error, "failed to preallocate a segment");
                    }
                }
            })
            .map_err(|e| Error::Io { action: "failed to start", path: "oriel-log-prealloc".into(), source: e })?;
        Ok(Self { sender, cancel, thread })
    }

    /// Where writers ask for a new spare after a roll used one.
    pub(crate) fn sender(&self) -> flume::Sender<PathBuf> {
        self.sender.clone()
    }

    /// Interrupts any zeroing in progress, without waiting.
    pub(crate) fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Interrupts any zeroing in progress and waits for the thread to end. Call after the
    /// writers ended, so nobody asks for another spare.
    pub(crate) fn stop(self) {
        self.cancel.store(true, Ordering::SeqCst);
        drop(self.sender);
        let _ = self.thread.join();
    }
}
