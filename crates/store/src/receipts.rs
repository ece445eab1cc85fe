//! Deletion receipts: the lasting record that a deletion happened — who asked, when, whose
//! events, how many were removed — and never the deleted data itself.
//!
//! Receipts are JSON lines appended to `receipts.jsonl` in the store directory and fsynced
//! before the deletion's last commit, so a finished deletion always has one. A crash between
//! the append and the commit makes the resumed deletion append the same receipt again; readers
//! keep the last line of each id. A torn last line (a crash inside the append) is skipped.
//! Each receipt carries the log offsets the deletion covered, so `oriel log dump` can leave
//! the deleted events out for as long as the log still holds their bytes.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::deletion::Selector;
use crate::{Error, Result};

/// The record of one finished deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Unique per store.
    pub id: String,
    /// The user or token that asked for it.
    pub requested_by: String,
    /// When it was asked for, ms since the epoch.
    pub requested_at_ms: i64,
    /// When the last segment was rewritten, ms since the epoch.
    pub completed_at_ms: i64,
    /// Events removed from the store. A deletion finished after a restart counts only those
    /// still in segments (replay had already left out the rest).
    pub deleted: u64,
    /// Whose events.
    #[serde(flatten)]
    pub selector: Selector,
    /// Per log partition, the end offset when it was asked for: the log's records below it
    /// that match the selector are the deleted events.
    pub until: BTreeMap<u32, u64>,
}

impl Receipt {
    /// Whether the log record of `party_id`/`user_id` at `offset` of `partition` is one of the
    /// events this deletion removed.
    pub fn covers(&self, partition: u32, offset: u64, party_id: Option<&str>, user_id: Option<&str>) -> bool {
        self.until.get(&partition).is_some_and(|&end| offset < end) && self.selector.matches(party_id, user_id)
    }
}

/// The receipts file of the store directory `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("receipts.jsonl")
}

/// Every receipt of the store directory `dir`, oldest first.
pub fn load(dir: &Path) -> Result<Vec<Receipt>> {
    let path = path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("failed to read", &path)(e)),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut receipts: Vec<Receipt> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Receipt>(line) {
            Ok(receipt) => {
                receipts.retain(|r| r.id != receipt.id);
                receipts.push(receipt);
            }
            // Only the last line can be torn by a crash; anything else is damage to report.
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {
                tracing::warn!(path = %path.display(), "skipping a torn last deletion receipt");
            }
            Err(e) => return Err(Error::Internal(format!("{}: line {} is not a receipt: {e}", path.display(), i + 1))),
        }
    }
    Ok(receipts)
}

/// Appends `receipt` to the receipts of `dir` and makes it durable. A torn last line (a crash
/// inside an earlier append) is cut off first, so the new line starts a line of its own.
pub(crate) fn append(dir: &Path, receipt: &Receipt) -> Result<()> {
    let path = path(dir);
    let created = !path.exists();
    let mut line = serde_json::to_vec(receipt).map_err(|e| Error::Internal(e.to_string()))?;
    line.push(b'\n');
    let file: File =
        OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(Error::io("failed to open", &path))?;
    // Only the last byte says whether the file ends torn; read the rest only then (rarely).
    let len = file.metadata().map_err(Error::io("failed to stat", &path))?.len();
    let mut last = [0u8; 1];
    if len > 0 {
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut last, len - 1).map_err(Error::io("failed to read", &path))?;
    }
    if len > 0 && last[0] != b'\n' {
        let bytes = std::fs::read(&path).map_err(Error::io("failed to read", &path))?;
        let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        file.set_len(whole as u64).map_err(Error::io("failed to cut the torn tail of", &path))?;
    }
    let mut file = file;
    file.write_all(&line).map_err(Error::io("failed to write", &path))?;
    file.sync_data().map_err(Error::io("failed to sync", &path))?;
    if created {
        crate::manifest::sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(id: &str, deleted: u64) -> Receipt {
        Receipt {
            id: id.into(),
            requested_by: "admin".into(),
            requested_at_ms: 1,
            completed_at_ms: 2,
            deleted,
            selector: Selector { party_id: Some("p".into()), user_id: None },
            until: BTreeMap::from([(0, 10)]),
        }
    }

    #[test]
    fn appends_keep_the_last_of_an_id_and_skip_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        append(dir.path(), &receipt("d1", 3)).unwrap();
        append(dir.path(), &receipt("d2", 4)).unwrap();
        append(dir.path(), &receipt("d1", 5)).unwrap();
        let ids: Vec<(String, u64)> = load(dir.path()).unwrap().into_iter().map(|r| (r.id, r.deleted)).collect();
        assert_eq!(ids, vec![("d2".into(), 4), ("d1".into(), 5)]);

        let mut file = OpenOptions::new().append(true).open(path(dir.path())).unwrap();
        file.write_all(b"{\"id\":\"d3\",\"requ").unwrap();
        assert_eq!(load(dir.path()).unwrap().len(), 2, "a torn last line is skipped");
        append(dir.path(), &receipt("d4", 1)).unwrap();
        let ids: Vec<String> = load(dir.path()).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, vec!["d2", "d1", "d4"], "the next append cuts the torn line off");
        file.write_all(b"{}\n").unwrap();
        append(dir.path(), &receipt("d5", 1)).unwrap();
        assert!(load(dir.path()).is_err(), "a damaged line in the middle is reported");
    }

    #[test]
    fn the_json_names_the_selector_and_offsets() {
        let json = serde_json::to_value(receipt("d1", 3)).unwrap();
        assert_eq!(json["party_id"], "p");
        assert_eq!(json["until"]["0"], 10);
        assert!(json.get("user_id").is_none());
        let r = receipt("d1", 3);
        assert!(r.covers(0, 9, Some("p"), None));
        assert!(!r.covers(0, 10, Some("p"), None), "written after the deletion");
        assert!(!r.covers(1, 0, Some("p"), None), "a partition it never saw");
        assert!(!r.covers(0, 0, Some("q"), None));
    }
}
