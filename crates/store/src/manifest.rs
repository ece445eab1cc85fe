//! The manifest: which segments are live, and up to which log offsets they hold every event.
//!
//! It is the single commit point of the store. A new version is written to a temporary file,
//! fsynced, renamed over the old one and the directory fsynced, so a crash at any moment leaves
//! either the old or the new manifest. Because a segment and the offsets it covers are committed
//! in the same rename, replaying the log from the recorded offsets after a crash neither loses
//! nor repeats an event.
//!
//! Format: a header line `ORIEL-MANIFEST <version> <crc32c of the body, hex> <body length>`,
//! then the body as JSON.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::deletion::Selector;
use crate::{Error, Result};

const MAGIC: &str = "ORIEL-MANIFEST";
const VERSION: u32 = 1;

/// One immutable Parquet segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// Unique, increasing id.
    pub id: u64,
    /// The time partition, e.g. `2026-11-27T10` (hour) or `2026-11-27` (day).
    pub partition: String,
    /// Path relative to the store directory.
    pub file: String,
    /// Rows.
    pub rows: u64,
    /// File size.
    pub bytes: u64,
    /// Smallest `__time`, ms.
    pub min_time: i64,
    /// Largest `__time`, ms.
    pub max_time: i64,
    /// Per site (`""` for events without one), its oldest `__time`: which sites retention may
    /// have to rewrite this segment for. `None` for segments written before it was recorded,
    /// or holding more sites than are listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sites: Option<BTreeMap<String, i64>>,
    /// For a segment without its list of sites: the retention cutoff it was last rewritten for,
    /// so it is not rewritten again until the cutoffs move on (a day later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_checked: Option<i64>,
}

/// A deletion that must survive restarts: events of this visitor or user that are still in the
/// log below `until` are dropped when the log is replayed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Whose events are deleted.
    #[serde(flatten)]
    pub selector: Selector,
    /// Per log partition, the end offset at the time of the deletion.
    pub until: BTreeMap<u32, u64>,
}

impl Tombstone {
    /// Whether the event with `party_id`/`user_id` at `offset` of `partition` is deleted.
    pub fn covers(&self, partition: u32, offset: u64, party_id: Option<&str>, user_id: Option<&str>) -> bool {
        self.until.get(&partition).is_some_and(|&end| offset < end) && self.selector.matches(party_id, user_id)
    }

    /// Whether every event it covers has been persisted past, so replay can no longer see one.
    pub(crate) fn is_spent(&self, persisted: &BTreeMap<u32, u64>) -> bool {
        self.until.iter().all(|(p, &until)| persisted.get(p).is_some_and(|&o| o >= until))
    }
}

/// The committed state of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Increases with every commit.
    pub generation: u64,
    /// The next segment id to hand out.
    pub next_segment_id: u64,
    /// Per log partition, the offset of the first event not in any segment.
    pub offsets: BTreeMap<u32, u64>,
    /// Live segments.
    pub segments: Vec<SegmentMeta>,
    /// Deletions still relevant to log replay.
    #[serde(default)]
    pub tombstones: Vec<Tombstone>,
    /// Deletions not yet applied to every segment; resumed when the store opens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deletions: Vec<crate::deletion::PendingDeletion>,
}

impl Manifest {
    /// The manifest file in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("manifest")
    }

    /// Loads the manifest of `dir`; an empty one when there is none yet.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = Self::path(dir);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::io("failed to read", &path)(e)),
        };
        Self::decode(&bytes).map_err(|reason| Error::BadManifest { path, reason })
    }

    pub(crate) fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        let newline = bytes.iter().position(|&b| b == b'\n').ok_or("no header line")?;
        let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| "header is not text")?;
        let parts: Vec<&str> = header.split(' ').collect();
        let [magic, version, crc, len] = parts[..] else { return Err(format!("malformed header {header:?}")) };
        if magic != MAGIC {
            return Err(format!("bad magic {magic:?}"));
        }
        if version != VERSION.to_string() {
            return Err(format!("unsupported manifest version {version}"));
        }
        let body = &bytes[newline + 1..];
        if len.parse::<usize>().ok() != Some(body.len()) {
            return Err(format!("body is {} bytes, header says {len}", body.len()));
        }
        let computed = crc32c::crc32c(body);
        // Compared as written (lowercase hex), so no damaged header passes for a valid one.
        if crc != format!("{computed:08x}") {
            return Err(format!("checksum mismatch: header {crc}, body {computed:08x}"));
        }
        let manifest: Self = serde_json::from_slice(body).map_err(|e| format!("invalid body: {e}"))?;
        // Segment paths are joined to local directories (and, in object storage, written to):
        // one that leads elsewhere is refused, whoever wrote the manifest.
        manifest.segments.iter().try_for_each(|s| check_segment_path(&s.file))?;
        Ok(manifest)
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let body = serde_json::to_vec_pretty(self).map_err(|e| Error::Internal(e.to_string()))?;
        let mut out = format!("{MAGIC} {VERSION} {:08x} {}\n", crc32c::crc32c(&body), body.len()).into_bytes();
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Writes this manifest as the current one of `dir`, durably and atomically.
    pub fn commit(&self, dir: &Path) -> Result<()> {
        let path = Self::path(dir);
        let bytes = self.encode()?;
        oriel_core::durable::atomic_write(&path, &bytes, None).map_err(Error::io("failed to write", &path))
    }
}

/// Accepts only a relative path to a Parquet file under `segments/`.
pub(crate) fn check_segment_path(file: &str) -> std::result::Result<(), String> {
    let path = Path::new(file);
    let inside = path.components().all(|c| matches!(c, std::path::Component::Normal(_)))
        && path.starts_with("segments")
        && path.extension().is_some_and(|e| e == "parquet");
    if inside { Ok(()) } else { Err(format!("segment path {file:?} is not a Parquet file under segments/")) }
}

/// `fsync`s a directory so created, renamed and removed entries are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    oriel_core::durable::sync_dir(dir).map_err(Error::io("failed to sync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            generation: 3,
            next_segment_id: 8,
            offsets: BTreeMap::from([(0, 120), (1, 7)]),
            segments: vec![SegmentMeta {
                id: 7,
                partition: "2026-11-27T10".into(),
                file: "segments/2026-11-27T10/00000007.parquet".into(),
                rows: 100,
                bytes: 4096,
                min_time: 1,
                max_time: 2,
                sites: Some(BTreeMap::from([("shop".into(), 1)])),
                expiry_checked: None,
            }],
            tombstones: vec![Tombstone {
                selector: Selector { party_id: Some("p".into()), user_id: None },
                until: BTreeMap::from([(0, 50)]),
            }],
            deletions: vec![crate::deletion::PendingDeletion {
                selector: Selector { party_id: None, user_id: Some("u".into()) },
                before_ms: 9,
                id: "d2".into(),
                requested_by: "admin".into(),
                requested_at_ms: 8,
                until: BTreeMap::from([(0, 50)]),
            }],
        }
    }

    #[test]
    fn round_trip_and_atomic_commit() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Manifest::default());
        sample().commit(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), sample());
        assert!(!dir.path().join("manifest.tmp").exists());
        let text = fs::read_to_string(Manifest::path(dir.path())).unwrap();
        assert!(text.contains("\"party_id\": \"p\""), "tombstones keep their flat form: {text}");
    }

    /// Pins the header format.
    #[test]
    fn golden_header() {
        let bytes = Manifest::default().encode().unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let (header, body) = text.split_once('\n').unwrap();
        assert_eq!(header, format!("ORIEL-MANIFEST 1 {:08x} {}", crc32c::crc32c(body.as_bytes()), body.len()));
        assert!(body.contains("\"generation\": 0"));
    }

    #[test]
    fn corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        sample().commit(dir.path()).unwrap();
        let path = Manifest::path(dir.path());
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let err = Manifest::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
        fs::write(&path, b"garbage").unwrap();
        assert!(Manifest::load(dir.path()).is_err());
    }

    #[test]
    fn tombstones_cover_only_older_offsets() {
        let t = &sample().tombstones[0];
        assert!(t.covers(0, 49, Some("p"), None));
        assert!(!t.covers(0, 50, Some("p"), None), "events after the deletion are new");
        assert!(!t.covers(1, 0, Some("p"), None));
        assert!(!t.covers(0, 1, Some("q"), None));
    }
}
