//! One segment file of a partition: a sequence of batches, its sparse offset index, and recovery.
//!
//! A segment is named after the offset of its first record (`00000000000000001234.log`). Only the
//! newest segment of a partition is written to; older ones are sealed. Readers never see bytes past
//! [`Segment::durable_len`], which the writer moves only after `fdatasync` returned.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;

use super::batch::{self, BatchError, BatchHeader, HEADER_LEN};
use crate::{Error, Result, StoredRecord};

/// A new index entry is recorded once this many bytes passed since the previous one.
const INDEX_INTERVAL_BYTES: u64 = 4096;
/// Reads fetch at least this much at a time, so small batches cost one system call per chunk.
const READ_CHUNK_BYTES: usize = 256 * 1024;

/// Name of the pre-zeroed file a partition's next segment is made from.
pub(crate) const SPARE_NAME: &str = "next.spare";
/// Name of a spare file while it is being zeroed.
pub(crate) const SPARE_TMP_NAME: &str = "next.spare.tmp";

/// Writes a spare segment file of `len` zero bytes in `dir`, durably, ready for
/// [`Segment::from_spare`].
/// Stops early, removing the partial file, once `cancel` is set.
pub(crate) fn prepare_spare(dir: &Path, len: u64, cancel: &AtomicBool) -> Result<()> {
    if dir.join(SPARE_NAME).exists() {
        return Ok(());
    }
    let tmp = dir.join(SPARE_TMP_NAME);
    let file = File::create(&tmp).map_err(Error::io("failed to create spare segment", &tmp))?;
    let zeros = vec![0u8; 1 << 20];
    let mut written = 0u64;
    while written < len {
        if cancel.load(Ordering::SeqCst) {
            drop(file);
            let _ = fs::remove_file(&tmp);
            return Ok(());
        }
        let n = (len - written).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], written).map_err(Error::io("failed to zero spare segment", &tmp))?;
        written += n as u64;
    }
    file.sync_all().map_err(Error::io("failed to sync spare segment", &tmp))?;
    fs::rename(&tmp, dir.join(SPARE_NAME)).map_err(Error::io("failed to publish spare segment", &tmp))?;
    sync_dir(dir)
}

/// File name of the segment starting at `base_offset`.
pub(crate) fn file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.log")
}

/// The base offset encoded in a segment file name, if it is one.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
}

#[derive(Debug, Clone)]
struct SegmentState {
    /// Bytes known durable; readers stop here.
    len: u64,
    /// Offset one past the last record.
    next_offset: u64,
    /// Largest record timestamp, `i64::MIN` when empty.
    max_timestamp: i64,
    /// (first offset of a batch, its byte position), increasing.
    index: Vec<(u64, u64)>,
}

/// What recovery did to a segment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Bytes cut off a torn or corrupt tail.
    pub(crate) truncated_bytes: u64,
    /// Whether a corrupt batch was found with valid data after it.
    pub(crate) corrupt: bool,
}

/// A segment file and what is known about its contents.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: u64,
    pub(crate) path: PathBuf,
    partition: u32,
    file: File,
    /// Size of the file; above the durable length when the segment was preallocated.
    file_len: std::sync::atomic::AtomicU64,
    state: RwLock<SegmentState>,
}

impl Segment {
    /// Creates an empty segment file and makes its directory entry durable.
    pub(crate) fn create(dir: &Path, partition: u32, base_offset: u64) -> Result<Self> {
        let path = dir.join(file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(Error::io("failed to create segment", &path))?;
        sync_dir(dir)?;
        Ok(Self::from_parts(path, partition, file, base_offset, empty_state(base_offset)))
    }

    /// Turns a pre-zeroed spare file into the segment starting at `base_offset`, if a spare is
    /// ready. Overwriting blocks that already exist lets `fdatasync` skip the journal commit that
    /// growing a file needs, which roughly halves its latency.
    pub(crate) fn from_spare(dir: &Path, partition: u32, base_offset: u64) -> Result<Option<Self>> {
        let spare = dir.join(SPARE_NAME);
        let path = dir.join(file_name(base_offset));
        match fs::rename(&spare, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("failed to take spare segment", &spare)(e)),
        }
        sync_dir(dir)?;
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(Error::io("failed to open segment", &path))?;
        Ok(Some(Self::from_parts(path, partition, file, base_offset, empty_state(base_offset))))
    }

    /// Opens an existing segment. A sealed segment's headers are walked (cheap); the active one
    /// (`verify = true`) is fully checked, and a torn or corrupt tail is truncated. A tail of
    /// zeros is unused preallocated space: the active segment keeps it, a sealed one drops it.
    pub(crate) fn open(path: PathBuf, partition: u32, base_offset: u64, verify: bool) -> Result<(Self, Recovery)> {
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(Error::io("failed to open segment", &path))?;
        let file_len = file.metadata().map_err(Error::io("failed to stat segment", &path))?.len();
        let mut state = empty_state(base_offset);
        let mut recovery = Recovery::default();
        let mut pos = 0u64;
        let mut truncate_to = None;
        while pos < file_len {
            let reason = match check_batch_at(&file, pos, file_len, state.next_offset, verify) {
                Ok(header) => {
                    state.add_batch(pos, &header);
                    pos += u64::from(header.len);
                    continue;
                }
                Err(reason) => reason,
            };
            if is_zero_from(&file, pos, file_len) {
                if !verify {
                    truncate_to = Some(pos); // a roll that crashed before sealing
                }
                break;
            }
            if !verify {
                // A sealed segment is never torn by a crash. Readers get the whole file, so they
                // fail at the bad batch instead of skipping to the next segment.
                tracing::error!(path = %path.display(), position = pos, %reason, "corrupt batch in sealed segment");
                recovery.corrupt = true;
                pos = file_len;
                break;
            }
            match find_valid_batch(&file, pos + 1, file_len) {
                Some((next_pos, header)) => {
                    // Valid data follows, so this is not a torn write: keep it, and let readers
                    // fail at the bad batch.
                    tracing::error!(path = %path.display(), position = pos, %reason, "corrupt batch in segment");
                    recovery.corrupt = true;
                    state.next_offset = header.base_offset;
                    state.index.push((header.base_offset, next_pos));
                    pos = next_pos;
                }
                None => {
                    tracing::warn!(path = %path.display(), position = pos, %reason, "truncating torn tail of segment");
                    recovery.truncated_bytes = file_len - pos;
                    truncate_to = Some(pos);
                    break;
                }
            }
        }
        if let Some(len) = truncate_to {
            file.set_len(len).map_err(Error::io("failed to truncate segment", &path))?;
            file.sync_all().map_err(Error::io("failed to sync segment", &path))?;
        }
        state.len = pos;
        Ok((Self::from_parts(path, partition, file, base_offset, state), recovery))
    }

    /// Drops unused preallocated space once the segment is no longer written to, so sealed
    /// segments end exactly at their last batch.
    pub(crate) fn seal(&self) -> Result<()> {
        let len = self.durable_len();
        let file_len = self.file.metadata().map_err(Error::io("failed to stat segment", &self.path))?.len();
        if file_len > len {
            self.file.set_len(len).map_err(Error::io("failed to truncate segment", &self.path))?;
            self.file.sync_all().map_err(Error::io("failed to sync segment", &self.path))?;
            self.file_len.store(len, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    fn from_parts(path: PathBuf, partition: u32, file: File, base_offset: u64, state: SegmentState) -> Self {
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(state.len);
        Self { base_offset, path, partition, file, file_len: file_len.into(), state: RwLock::new(state) }
    }

    /// Whether `bytes` more fit into preallocated space, where syncs are cheapest.
    pub(crate) fn has_room(&self, bytes: u64) -> bool {
        self.durable_len() + bytes <= self.file_len.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes readers may see.
    pub(crate) fn durable_len(&self) -> u64 {
        self.state.read().len
    }

    /// Offset one past the last durable record.
    pub(crate) fn next_offset(&self) -> u64 {
        self.state.read().next_offset
    }

    /// Largest record timestamp, `i64::MIN` for an empty segment.
    pub(crate) fn max_timestamp(&self) -> i64 {
        self.state.read().max_timestamp
    }

    /// Writes `bytes` (whole encoded batches) after the durable end; not visible until [`Self::commit`].
    pub(crate) fn write(&self, bytes: &[u8]) -> Result<()> {
        let at = self.durable_len();
        self.file.write_all_at(bytes, at).map_err(Error::io("failed to write segment", &self.path))?;
        self.file_len.fetch_max(at + bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// `fdatasync`s the file.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(Error::io("failed to sync segment", &self.path))
    }

    /// Cuts the file back to its durable length after a failed write.
    pub(crate) fn discard_unsynced(&self) -> Result<()> {
        let len = self.durable_len();
        self.file.set_len(len).map_err(Error::io("failed to truncate segment", &self.path))?;
        self.file_len.store(len, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Makes a written and synced batch visible to readers.
    pub(crate) fn commit(&self, header: &BatchHeader) {
        let mut state = self.state.write();
        let pos = state.len;
        state.add_batch(pos, header);
        state.len += u64::from(header.len);
    }

    /// Appends records at or after `from` to `out`, stopping after the batch that brings the
    /// collected payload to `max_bytes`. Returns whether the end of the segment was reached.
    pub(crate) fn read(&self, from: u64, max_bytes: usize, out: &mut Vec<StoredRecord>) -> Result<bool> {
        let before = out.len();
        match self.read_batches(from, max_bytes, out) {
            // Records before a corrupt batch are good: serve them, and fail the next read, which
            // starts at the corrupt batch.
            Err(Error::Corrupt { .. }) if out.len() > before => Ok(false),
            other => other,
        }
    }

    fn read_batches(&self, from: u64, max_bytes: usize, out: &mut Vec<StoredRecord>) -> Result<bool> {
        let (len, mut pos) = {
            let state = self.state.read();
            let i = state.index.partition_point(|&(offset, _)| offset <= from);
            (state.len, if i == 0 { 0 } else { state.index[i - 1].1 })
        };
        let mut collected = 0usize;
        let already = out.len();
        let mut chunk = Bytes::new();
        let mut chunk_pos = pos;
        while pos < len {
            let covered = |chunk: &Bytes, chunk_pos: u64, n: u64| pos + n <= chunk_pos + chunk.len() as u64;
            if !covered(&chunk, chunk_pos, HEADER_LEN as u64) {
                chunk = self.read_chunk(pos, len, HEADER_LEN)?;
                chunk_pos = pos;
            }
            let rel = (pos - chunk_pos) as usize;
            let header = batch::decode_header(&chunk[rel..]).map_err(|e| self.corrupt(pos, e))?;
            if header.next_offset() <= from && pos + u64::from(header.len) <= len {
                // Wholly before the requested offset: skip it without decoding.
                pos += u64::from(header.len);
                continue;
            }
            if !covered(&chunk, chunk_pos, u64::from(header.len)) {
                if pos + u64::from(header.len) > len {
                    let reason = BatchError::Truncated { available: (len - pos) as usize, needed: header.len as usize };
                    return Err(self.corrupt(pos, reason));
                }
                chunk = self.read_chunk(pos, len, header.len as usize)?;
                chunk_pos = pos;
            }
            let rel = (pos - chunk_pos) as usize;
            let (header, records) =
                batch::decode(&chunk.slice(rel..rel + header.len as usize)).map_err(|e| self.corrupt(pos, e))?;
            if header.base_offset > from && out.len() == already {
                // Offsets between `from` and this batch are missing: a damaged header made the
                // reader skip them. Never hand out a gap as if it were data.
                let reason = BatchError::BadRecord { index: 0, reason: "offsets missing before this batch" };
                return Err(self.corrupt(pos, reason));
            }
            pos += u64::from(header.len);
            for r in records.into_iter().filter(|r| r.offset >= from) {
                collected += r.key.len() + r.value.len();
                out.push(StoredRecord {
                    partition: self.partition,
                    offset: r.offset,
                    timestamp_ms: r.timestamp_ms,
                    key: r.key,
                    value: r.value,
                });
            }
            if collected >= max_bytes {
                return Ok(pos >= len);
            }
        }
        Ok(true)
    }

    fn read_chunk(&self, pos: u64, len: u64, at_least: usize) -> Result<Bytes> {
        let size = (len - pos).min(at_least.max(READ_CHUNK_BYTES) as u64) as usize;
        let mut buf = vec![0u8; size];
        self.file.read_exact_at(&mut buf, pos).map_err(Error::io("failed to read segment", &self.path))?;
        Ok(Bytes::from(buf))
    }

    fn corrupt(&self, position: u64, reason: BatchError) -> Error {
        Error::Corrupt { partition: self.partition, segment: self.path.clone(), position, reason }
    }
}

impl SegmentState {
    fn add_batch(&mut self, pos: u64, header: &BatchHeader) {
        let last_indexed = self.index.last().map(|&(_, p)| p);
        if last_indexed.is_none_or(|p| pos - p >= INDEX_INTERVAL_BYTES) {
            self.index.push((header.base_offset, pos));
        }
        self.next_offset = header.next_offset();
        if header.count > 0 {
            self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
        }
    }
}

fn empty_state(base_offset: u64) -> SegmentState {
    SegmentState { len: 0, next_offset: base_offset, max_timestamp: i64::MIN, index: Vec::new() }
}

/// Checks the batch at `pos`: its framing, its place in the offset sequence, and (when `verify`)
/// its checksum and records.
fn check_batch_at(file: &File, pos: u64, file_len: u64, expected_offset: u64, verify: bool) -> Result<BatchHeader, BatchError> {
    let available = (file_len - pos) as usize;
    let mut head = [0u8; HEADER_LEN];
    if available < HEADER_LEN {
        return Err(BatchError::Truncated { available, needed: HEADER_LEN });
    }
    file.read_exact_at(&mut head, pos).map_err(|_| BatchError::Truncated { available: 0, needed: HEADER_LEN })?;
    let header = batch::decode_header(&head)?;
    if header.len as usize > available {
        return Err(BatchError::Truncated { available, needed: header.len as usize });
    }
    if header.base_offset != expected_offset {
        return Err(BatchError::BadRecord { index: 0, reason: "batch offset does not continue the segment" });
    }
    if verify {
        let mut whole = vec![0u8; header.len as usize];
        file.read_exact_at(&mut whole, pos).map_err(|_| BatchError::Truncated { available, needed: whole.len() })?;
        batch::decode(&Bytes::from(whole))?;
    }
    Ok(header)
}

/// Whether every byte from `from` to the end of the file is zero.
fn is_zero_from(file: &File, from: u64, file_len: u64) -> bool {
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = from;
    while pos < file_len {
        let n = (file_len - pos).min(buf.len() as u64) as usize;
        if file.read_exact_at(&mut buf[..n], pos).is_err() || buf[..n].iter().any(|&b| b != 0) {
            return false;
        }
        pos += n as u64;
    }
    true
}

/// Searches `from..file_len` for the start of a batch that passes every check.
fn find_valid_batch(file: &File, from: u64, file_len: u64) -> Option<(u64, BatchHeader)> {
    if from >= file_len {
        return None;
    }
    let mut rest = vec![0u8; (file_len - from) as usize];
    file.read_exact_at(&mut rest, from).ok()?;
    let rest = Bytes::from(rest);
    let mut i = 0;
    while let Some(found) = find_magic(&rest[i..]) {
        let at = i + found;
        if let Ok((header, _)) = batch::decode(&rest.slice(at..)) {
            return Some((from + at as u64, header));
        }
        i = at + 1;
    }
    None
}

fn find_magic(bytes: &[u8]) -> Option<usize> {
    bytes.windows(batch::MAGIC.len()).position(|w| w == batch::MAGIC)
}

/// `fsync`s a directory so that created, renamed or removed entries survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    oriel_core::durable::sync_dir(dir).map_err(Error::io("failed to sync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        assert_eq!(file_name(1234), "00000000000000001234.log");
        assert_eq!(parse_file_name("00000000000000001234.log"), Some(1234));
        assert_eq!(parse_file_name("1234.log"), None);
        assert_eq!(parse_file_name("0000000000000000123x.log"), None);
        assert_eq!(parse_file_name("00000000000000001234.tmp"), None);
    }
}
