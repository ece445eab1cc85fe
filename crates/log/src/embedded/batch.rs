//! The on-disk record batch: the unit that is written, fsynced, checksummed and recovered.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | field |
//! | --- | --- |
//! | 0..4 | magic `ORLG` |
//! | 4 | format version (1) |
//! | 5 | flags (0) |
//! | 6..8 | reserved (0) |
//! | 8..12 | batch length in bytes, header included |
//! | 12..16 | CRC32C of bytes 16..length |
//! | 16..24 | offset of the first record |
//! | 24..28 | record count |
//! | 28..32 | reserved (0) |
//! | 32..40 | smallest record timestamp, ms |
//! | 40..48 | largest record timestamp, ms |
//! | 48.. | records |
//!
//! Each record is `varint key length, key, varint value length, value, zigzag varint timestamp
//! delta from the smallest timestamp`. The CRC covers everything after itself, so a batch whose
//! CRC matches is known to be whole: its offsets, timestamps and records are all checked.

use bytes::Bytes;

use crate::Record;

/// The four bytes every batch starts with.
pub(crate) const MAGIC: [u8; 4] = *b"ORLG";
/// The batch format version this code writes and reads.
pub(crate) const VERSION: u8 = 1;
/// Size of the fixed batch header.
pub(crate) const HEADER_LEN: usize = 48;

/// Why bytes are not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the header or the declared length.
    #[error("batch is truncated: {available} bytes available, {needed} needed")]
    Truncated {
        /// Bytes present.
        available: usize,
        /// Bytes required.
        needed: usize,
    },
    /// The magic bytes are wrong.
    #[error("bad magic {found:02x?}, expected {MAGIC:02x?}")]
    BadMagic {
        /// The bytes found.
        found: [u8; 4],
    },
    /// A format version this build does not understand.
    #[error("unsupported batch format version {0}")]
    UnsupportedVersion(u8),
    /// Flags or reserved header bytes that this version does not define are set.
    #[error("unsupported batch flags {0:02x?}")]
    UnsupportedFlags([u8; 3]),
    /// The length field is smaller than a header.
    #[error("invalid batch length {0}")]
    BadLength(u32),
    /// The checksum does not match the contents.
    #[error("crc32c mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// Checksum in the header.
        stored: u32,
        /// Checksum of the bytes.
        computed: u32,
    },
    /// The checksum matched but the records inside do not parse.
    #[error("malformed record {index}: {reason}")]
    BadRecord {
        /// Index of the record in the batch.
        index: u32,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The fixed part of a batch, readable without the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub(crate) len: u32,
    pub(crate) crc: u32,
    pub(crate) base_offset: u64,
    pub(crate) count: u32,
    pub(crate) min_timestamp: i64,
    pub(crate) max_timestamp: i64,
}

impl BatchHeader {
    /// Offset one past the last record of the batch.
    pub(crate) fn next_offset(&self) -> u64 {
        self.base_offset + u64::from(self.count)
    }
}

/// One decoded record with its offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodedRecord {
    pub(crate) offset: u64,
    pub(crate) timestamp_ms: i64,
    pub(crate) key: Bytes,
    pub(crate) value: Bytes,
}

/// Appends one batch holding `records`, numbered from `base_offset`, to `out`.
pub(crate) fn encode(base_offset: u64, records: &[&Record], out: &mut Vec<u8>) {
    let start = out.len();
    let min_ts = records.iter().map(|r| r.timestamp_ms).min().unwrap_or(0);
    let max_ts = records.iter().map(|r| r.timestamp_ms).max().unwrap_or(0);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(0);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&[0; 8]); // length and crc, filled in below
    out.extend_from_slice(&base_offset.to_le_bytes());
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&min_ts.to_le_bytes());
    out.extend_from_slice(&max_ts.to_le_bytes());
    for record in records {
        put_varint(out, record.key.len() as u64);
        out.extend_from_slice(&record.key);
        put_varint(out, record.value.len() as u64);
        out.extend_from_slice(&record.value);
        put_varint(out, zigzag(record.timestamp_ms.wrapping_sub(min_ts)));
    }
    let len = (out.len() - start) as u32;
    out[start + 8..start + 12].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c(&out[start + 16..]);
    out[start + 12..start + 16].copy_from_slice(&crc.to_le_bytes());
}

/// The encoded size of a batch of `records`, without encoding it.
pub(crate) fn encoded_len(records: &[&Record]) -> usize {
    HEADER_LEN
        + records
            .iter()
            .map(|r| varint_len(r.key.len() as u64) + r.key.len() + varint_len(r.value.len() as u64) + r.value.len() + 10)
            .sum::<usize>()
}

/// Reads the header at the start of `bytes` and checks magic, version and length, not the CRC.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    if bytes.len() < HEADER_LEN {
        return Err(BatchError::Truncated { available: bytes.len(), needed: HEADER_LEN });
    }
    let found: [u8; 4] = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if found != MAGIC {
        return Err(BatchError::BadMagic { found });
    }
    if bytes[4] != VERSION {
        return Err(BatchError::UnsupportedVersion(bytes[4]));
    }
    // Flags and reserved bytes sit before the checksummed range; a reader that does not know a
    // flag must not guess what it means.
    if bytes[5..8] != [0, 0, 0] {
        return Err(BatchError::UnsupportedFlags([bytes[5], bytes[6], bytes[7]]));
    }
    let len = u32_at(bytes, 8);
    if (len as usize) < HEADER_LEN {
        return Err(BatchError::BadLength(len));
    }
    Ok(BatchHeader {
        len,
        crc: u32_at(bytes, 12),
        base_offset: u64_at(bytes, 16),
        count: u32_at(bytes, 24),
        min_timestamp: u64_at(bytes, 32) as i64,
        max_timestamp: u64_at(bytes, 40) as i64,
    })
}

/// Checks the whole batch at the start of `bytes` (header, CRC, records) and returns its header.
pub(crate) fn verify(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = decode_header(bytes)?;
    let len = header.len as usize;
    if bytes.len() < len {
        return Err(BatchError::Truncated { available: bytes.len(), needed: len });
    }
    let computed = crc32c::crc32c(&bytes[16..len]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch { stored: header.crc, computed });
    }
    Ok(header)
}

/// Decodes the verified batch at the start of `bytes` (a shared buffer, so records borrow it).
pub(crate) fn decode(bytes: &Bytes) -> Result<(BatchHeader, Vec<DecodedRecord>), BatchError> {
    let header = verify(bytes)?;
    let body = bytes.slice(HEADER_LEN..header.len as usize);
    let mut records = Vec::with_capacity((header.count as usize).min(body.len() / 3 + 1));
    let mut pos = 0usize;
    for index in 0..header.count {
        let bad = |reason| BatchError::BadRecord { index, reason };
        let key_len = take_len(&body, &mut pos).ok_or_else(|| bad("bad key length"))?;
        let key = body.slice(pos..pos + key_len);
        pos += key_len;
        let value_len = take_len(&body, &mut pos).ok_or_else(|| bad("bad value length"))?;
        let value = body.slice(pos..pos + value_len);
        pos += value_len;
        let delta = get_varint(&body, &mut pos).ok_or_else(|| bad("bad timestamp"))?;
        let timestamp_ms = header.min_timestamp.wrapping_add(unzigzag(delta));
        records.push(DecodedRecord { offset: header.base_offset + u64::from(index), timestamp_ms, key, value });
    }
    if pos != body.len() {
        return Err(BatchError::BadRecord { index: header.count, reason: "bytes after the last record" });
    }
    Ok((header, records))
}

fn take_len(body: &[u8], pos: &mut usize) -> Option<usize> {
    let len = usize::try_from(get_varint(body, pos)?).ok()?;
    (body.len() - *pos >= len).then_some(len)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(key: &str, value: &str, ts: i64) -> Record {
        Record::new(key.as_bytes().to_vec(), value.as_bytes().to_vec(), ts)
    }

    /// Pins the on-disk format: any change to these bytes breaks every existing log.
    #[test]
    fn golden_bytes() {
        let records = [record("p1", "{\"a\":1}", 1_700_000_000_000), record("", "x", 1_699_999_999_990)];
        let refs: Vec<&Record> = records.iter().collect();
        let mut out = Vec::new();
        encode(42, &refs, &mut out);
        let expected = concat!(
            "4f524c47",
            "01",
            "00",
            "0000", // magic, version, flags, reserved
            "40000000",
            "8e9aea44", // length 64, crc32c
            "2a00000000000000",
            "02000000",
            "00000000", // base offset 42, count 2, reserved
            "f667e5cf8b010000",
            "0068e5cf8b010000", // min and max timestamp
            "02",
            "7031",
            "07",
            "7b2261223a317d",
            "14", // record 0: key p1, value, +10 ms
            "00",
            "01",
            "78",
            "00", // record 1: empty key, value x, +0 ms
        );
        assert_eq!(hex(&out), expected);
        assert!(encoded_len(&refs) >= out.len());
        let (header, decoded) = decode(&Bytes::from(out)).unwrap();
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.next_offset(), 44);
        assert_eq!(decoded[0].timestamp_ms, 1_700_000_000_000);
        assert_eq!(decoded[1].offset, 43);
        assert_eq!(&decoded[1].value[..], b"x");
    }

    #[test]
    fn every_corrupted_byte_is_detected() {
        let records = [record("party", "{\"event\":\"pageView\"}", 5)];
        let mut out = Vec::new();
        encode(7, &[&records[0]], &mut out);
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x01;
            assert!(decode(&Bytes::from(bad)).is_err(), "flip at byte {i} went unnoticed");
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    proptest! {
        #[test]
        fn round_trip(
            base in 0u64..u64::MAX / 2,
            recs in prop::collection::vec(
                (prop::collection::vec(any::<u8>(), 0..40), prop::collection::vec(any::<u8>(), 0..300), any::<i64>()),
                0..20,
            ),
        ) {
            let records: Vec<Record> = recs.into_iter().map(|(k, v, t)| Record::new(k, v, t)).collect();
            let refs: Vec<&Record> = records.iter().collect();
            let mut out = Vec::new();
            encode(base, &refs, &mut out);
            prop_assert!(encoded_len(&refs) >= out.len());
            let (header, decoded) = decode(&Bytes::from(out)).unwrap();
            prop_assert_eq!(header.count as usize, records.len());
            for (i, (r, d)) in records.iter().zip(&decoded).enumerate() {
                prop_assert_eq!(d.offset, base + i as u64);
                prop_assert_eq!(&d.key[..], &r.key[..]);
                prop_assert_eq!(&d.value[..], &r.value[..]);
                prop_assert_eq!(d.timestamp_ms, r.timestamp_ms);
            }
        }

        /// The decoder is fed whatever is on disk: arbitrary bytes must give an error, not a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&Bytes::from(bytes));
        }

        /// Valid framing with a garbage body (CRC recomputed) must fail cleanly too.
        #[test]
        fn garbage_body_with_valid_crc_never_panics(body in prop::collection::vec(any::<u8>(), 0..256), count in 0u32..50) {
            let mut out = Vec::new();
            encode(0, &[], &mut out);
            out.extend_from_slice(&body);
            let len = out.len() as u32;
            out[8..12].copy_from_slice(&len.to_le_bytes());
            out[24..28].copy_from_slice(&count.to_le_bytes());
            let crc = crc32c::crc32c(&out[16..]);
            out[12..16].copy_from_slice(&crc.to_le_bytes());
            let _ = decode(&Bytes::from(out));
        }
    }
}
