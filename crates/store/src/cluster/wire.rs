//! The format an ingest node answers a query node in: one header line, the segment list as
//! JSON, then the live batches as an Arrow IPC stream.
//!
//! ```text
//! ORIEL-LIVE 1 <length of the JSON> <length of the rest> <crc32c of the rest, hex>\n
//! {"generation": 7, "instance": 91…, "segments": [ ...SegmentMeta... ], "live": [4, 9, 12], "sent": [12]}
//! <Arrow IPC stream: the events schema, then the live batches numbered in "sent">
//! ```
//!
//! The reader trusts nothing: lengths are capped and must add up, the checksum must match (an
//! IPC stream cut at a message boundary would otherwise read as a shorter, valid one), every
//! segment path must stay inside the node's store directory, and the batches must have exactly
//! the events schema. Arrow's IPC reader can panic on crafted input that passes the checksum,
//! so it runs under `catch_unwind` and such a panic is an error like any other.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::buffer::Buffer;
use datafusion::arrow::ipc::reader::StreamDecoder;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::ipc::{MessageHeader, root_as_message};
use serde::{Deserialize, Serialize};

use crate::manifest::SegmentMeta;
use crate::schema::events_schema;
use crate::{Error, Result};

use super::LiveExport;

const MAGIC: &str = "ORIEL-LIVE";
const VERSION: u32 = 1;
/// Longest header line read.
const MAX_HEADER: usize = 64;
/// Largest segment list accepted (about a million segments).
const MAX_JSON: usize = 256 << 20;

#[derive(Serialize, Deserialize)]
struct Head {
    store: String,
    generation: u64,
    instance: u64,
    segments: Vec<SegmentMeta>,
    /// The number of every live batch, in order.
    live: Vec<u64>,
    /// The numbers of the batches in the IPC stream, in its order.
    sent: Vec<u64>,
    caught_up: bool,
    lag_events: u64,
}

/// Encodes `export` for the wire.
pub fn encode(export: &LiveExport) -> Result<Vec<u8>> {
    let head = Head {
        store: export.store.clone(),
        generation: export.generation,
        instance: export.instance,
        segments: export.segments.clone(),
        live: export.live.clone(),
        sent: export.batches.iter().map(|(seq, _)| *seq).collect(),
        caught_up: export.caught_up,
        lag_events: export.lag_events,
    };
    let mut rest = serde_json::to_vec(&head).map_err(|e| Error::Internal(e.to_string()))?;
    let json_len = rest.len();
    let mut writer = StreamWriter::try_new(&mut rest, &events_schema())?;
    for (_, batch) in &export.batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    drop(writer);
    let mut out = format!("{MAGIC} {VERSION} {json_len} {} {:08x}\n", rest.len(), crc32c::crc32c(&rest)).into_bytes();
    out.extend_from_slice(&rest);
    Ok(out)
}

/// Decodes what [`encode`] wrote; anything else is an error naming what is wrong.
pub fn decode(bytes: &[u8]) -> Result<LiveExport> {
    let bad = |reason: String| Error::BadNode(reason);
    let newline = bytes.iter().take(MAX_HEADER).position(|&b| b == b'\n').ok_or_else(|| bad("no header line".into()))?;
    let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| bad("the header is not text".into()))?;
    let parts: Vec<&str> = header.split(' ').collect();
    if parts[0] != MAGIC {
        return Err(bad(format!("bad magic {:?}: the URL does not answer as an Oriel ingest node", parts[0])));
    }
    let [_, version, json_len, rest_len, crc] = parts[..] else {
        return Err(bad(format!("malformed header {header:?}")));
    };
    if version != VERSION.to_string() {
        return Err(bad(format!("unsupported version {version}: run the same Oriel version on every node")));
    }
    let rest = &bytes[newline + 1..];
    if rest_len.parse::<usize>().ok() != Some(rest.len()) {
        return Err(bad(format!("the answer is {} bytes, its header says {rest_len}: it was cut short", rest.len())));
    }
    // Compared as written (lowercase hex), so no damaged header passes for a valid one.
    if crc != format!("{:08x}", crc32c::crc32c(rest)) {
        return Err(bad("checksum mismatch: the answer was damaged on the way".into()));
    }
    let len = json_len.parse::<usize>().ok().filter(|&n| n <= MAX_JSON && n <= rest.len());
    let Some(len) = len else { return Err(bad(format!("the segment list length in {header:?} is out of bounds"))) };
    let head: Head = serde_json::from_slice(&rest[..len]).map_err(|e| bad(format!("invalid segment list: {e}")))?;
    for segment in &head.segments {
        crate::manifest::check_segment_path(&segment.file).map_err(bad)?;
    }
    let ipc = &rest[len..];
    let batches = std::panic::catch_unwind(|| read_batches(ipc))
        .unwrap_or_else(|_| Err("the Arrow IPC stream is malformed".into()))
        .map_err(|reason| bad(format!("invalid live batches: {reason}")))?;
    let listed: std::collections::HashSet<u64> = head.live.iter().copied().collect();
    let sent: std::collections::HashSet<u64> = head.sent.iter().copied().collect();
    if listed.len() != head.live.len() || sent.len() != head.sent.len() {
        return Err(bad("a live batch number is listed twice".into()));
    }
    if batches.len() != head.sent.len() || !sent.is_subset(&listed) {
        return Err(bad(format!(
            "{} live batches arrived for {} numbers sent, or a number sent is not listed",
            batches.len(),
            head.sent.len()
        )));
    }
    Ok(LiveExport {
        store: head.store,
        generation: head.generation,
        instance: head.instance,
        segments: head.segments,
        live: head.live,
        batches: head.sent.into_iter().zip(batches).collect(),
        caught_up: head.caught_up,
        lag_events: head.lag_events,
    })
}

/// Walks the IPC stream's framing before anything decodes it, and refuses what the events never
/// use but a forged answer could: compressed bodies (Arrow allocates the uncompressed size a
/// buffer claims before checking anything) and messages other than the schema and record
/// batches (dictionaries, tensors).
fn check_messages(mut ipc: &[u8]) -> std::result::Result<(), String> {
    fn word(bytes: &[u8]) -> Option<u32> {
        Some(u32::from_le_bytes([*bytes.first()?, *bytes.get(1)?, *bytes.get(2)?, *bytes.get(3)?]))
    }
    let cut = || "the stream ends inside a message".to_string();
    loop {
        let mut len = word(ipc).ok_or_else(cut)?;
        ipc = &ipc[4..];
        if len == u32::MAX {
            // The continuation marker; the length follows.
            len = word(ipc).ok_or_else(cut)?;
            ipc = &ipc[4..];
        }
        if len == 0 {
            return Ok(());
        }
        let len = len as usize;
        let meta = ipc.get(..len).ok_or_else(cut)?;
        let message = root_as_message(meta).map_err(|e| format!("a message header is malformed: {e}"))?;
        let body = usize::try_from(message.bodyLength()).ok().filter(|&body| body <= ipc.len() - len).ok_or_else(cut)?;
        match message.header_type() {
            MessageHeader::Schema => {}
            MessageHeader::RecordBatch => {
                if message.header_as_record_batch().and_then(|batch| batch.compression()).is_some() {
                    return Err("compressed batches are not accepted".into());
                }
            }
            other => return Err(format!("unexpected {other:?} message")),
        }
        ipc = &ipc[len + body..];
    }
}

/// The batches of an IPC stream that must have the events schema. The push decoder slices
/// message bodies out of the input instead of allocating the length a message claims, so a
/// forged length cannot ask for more memory than the answer's own size.
fn read_batches(ipc: &[u8]) -> std::result::Result<Vec<RecordBatch>, String> {
    check_messages(ipc)?;
    let mut decoder = StreamDecoder::new();
    let mut buffer = Buffer::from(ipc.to_vec());
    let mut batches = Vec::new();
    while !buffer.is_empty() {
        if let Some(batch) = decoder.decode(&mut buffer).map_err(|e| e.to_string())? {
            batches.push(batch);
        }
    }
    decoder.finish().map_err(|e| e.to_string())?;
    if decoder.schema().is_none_or(|schema| schema.fields() != events_schema().fields()) {
        return Err("they do not have the events schema: run the same Oriel version on every node".into());
    }
    Ok(batches)
}

/// A segment path must name a Parquet file under the store's `segments/` directory: a node
/// must not make a query node read anything else.
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> LiveExport {
        let mut builder = crate::schema::BatchBuilder::with_capacity(2);
        for n in 0..2 {
            let event = format!(
                r#"{{"__time":{},"event_id":"e{n}","event_type":"pageview","site":"s","party_id":"p{n}","path":"/<b>{n}"}}"#,
                1_700_000_000_000_i64 + n
            );
            builder.push_json(event.as_bytes()).expect("event");
        }
        let segment = SegmentMeta {
            id: 3,
            partition: "2023-11-14T22".into(),
            file: "segments/2023-11-14T22/00000003.parquet".into(),
            rows: 10,
            bytes: 100,
            min_time: 1,
            max_time: 2,
            sites: None,
            expiry_checked: None,
        };
        LiveExport {
            store: "partitions-0".into(),
            generation: 4,
            instance: 77,
            segments: vec![segment],
            live: vec![3, 8],
            batches: vec![(8, builder.finish().expect("batch"))],
            caught_up: false,
            lag_events: 12,
        }
    }

    #[test]
    fn round_trip() {
        let export = sample();
        let back = decode(&encode(&export).unwrap()).unwrap();
        assert_eq!((back.store.as_str(), back.generation, back.instance), ("partitions-0", 4, 77));
        assert_eq!(back.segments, export.segments);
        assert_eq!(back.live, [3, 8]);
        assert_eq!((back.caught_up, back.lag_events), (false, 12));
        assert_eq!(back.batches, export.batches);
        assert_eq!(back.batches.iter().map(|(_, b)| b.num_rows()).sum::<usize>(), 2);
        assert_eq!(decode(&encode(&LiveExport::default()).unwrap()).unwrap().batches.len(), 0);
        let mut unlisted = export;
        unlisted.live = vec![3];
        assert!(decode(&encode(&unlisted).unwrap()).unwrap_err().to_string().contains("not listed"));
    }

    /// A compressed body would make Arrow allocate the size it claims: refused before decoding.
    #[test]
    fn compressed_batches_are_refused() {
        use datafusion::arrow::ipc::CompressionType;
        use datafusion::arrow::ipc::writer::IpcWriteOptions;
        let export = sample();
        let plain = encode(&export).unwrap();
        let newline = plain.iter().position(|&b| b == b'\n').unwrap();
        let header = std::str::from_utf8(&plain[..newline]).unwrap();
        let json_len: usize = header.split(' ').nth(2).unwrap().parse().unwrap();
        let mut rest = plain[newline + 1..newline + 1 + json_len].to_vec();
        let options = IpcWriteOptions::default().try_with_compression(Some(CompressionType::ZSTD)).unwrap();
        let mut writer = StreamWriter::try_new_with_options(&mut rest, &events_schema(), options).unwrap();
        writer.write(&export.batches[0].1).unwrap();
        writer.finish().unwrap();
        drop(writer);
        let mut forged = format!("{MAGIC} {VERSION} {json_len} {} {:08x}\n", rest.len(), crc32c::crc32c(&rest)).into_bytes();
        forged.extend_from_slice(&rest);
        let err = decode(&forged).unwrap_err().to_string();
        assert!(err.contains("compressed batches are not accepted"), "{err}");
        let mut twice = export;
        twice.live = vec![8, 8];
        assert!(decode(&encode(&twice).unwrap()).unwrap_err().to_string().contains("listed twice"));
    }

    #[test]
    fn segment_paths_stay_inside_the_store() {
        for file in ["../x.parquet", "/etc/passwd", "segments/../../x.parquet", "segments/a.txt", "other/a.parquet"] {
            let mut export = sample();
            export.segments[0].file = file.into();
            let err = decode(&encode(&export).unwrap()).unwrap_err().to_string();
            assert!(err.contains("not a Parquet file under segments/"), "{file}: {err}");
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = encode(&sample()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "truncated at {cut} of {}", bytes.len());
        }
        assert!(decode(b"HTTP/1.1 200 OK\n").unwrap_err().to_string().contains("bad magic"));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Whatever a node (or something pretending to be one) sends, decoding answers.
        #[test]
        fn arbitrary_bytes_never_panic(junk in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&junk);
            let mut framed = format!("{MAGIC} {VERSION} 2\n{{}}").into_bytes();
            framed.extend_from_slice(&junk);
            let _ = decode(&framed);
        }

        /// Flipping any byte of a valid answer is an error, never a panic; with the checksum
        /// made to match, the damage reaches the IPC reader, which must not take the process
        /// down either.
        #[test]
        fn flipped_bytes_never_panic(at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut bytes = encode(&sample()).unwrap();
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            prop_assert!(decode(&bytes).is_err());
            let newline = bytes.iter().position(|&b| b == b'\n').unwrap();
            if i > newline {
                let header = std::str::from_utf8(&bytes[..newline]).unwrap().to_string();
                let crc = format!("{:08x}", crc32c::crc32c(&bytes[newline + 1..]));
                let mut parts: Vec<&str> = header.split(' ').collect();
                parts[4] = &crc;
                let mut forged = parts.join(" ").into_bytes();
                forged.extend_from_slice(&bytes[newline..]);
                let _ = decode(&forged);
            }
        }
    }
}
