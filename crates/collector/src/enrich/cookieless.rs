//! Visitor and session ids for cookieless mode, derived on the server.
//!
//! As privacy-first tools do: `party_id` is a hash of a secret salt, the site, the IP address and
//! the user agent. The salt is random and replaced every UTC day, and old salts are deleted, so
//! the same person gets unlinkable ids on different days and nobody (us included) can recompute
//! an id from an IP address later. Sessions are tracked in a bounded in-memory table with the
//! sliding timeout.
//!
//! The day's salt is a file `<day>.salt` in the salt directory. Whichever collector needs it
//! first writes it to a temporary file and publishes it with a hard link, which fails when the
//! name exists: exactly one salt per day wins, and every collector sharing the directory (one
//! process after a restart, or several collectors on a shared mount) reads that one, so a
//! visitor gets the same id from all of them that day. It is the compare-and-swap that a
//! conditional PUT gives on object storage. Files of past days are removed at the rotation.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use base64::Engine;
use lru::LruCache;
use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug)]
struct Salt {
    day: i64,
    bytes: [u8; 32],
}

/// Server-side ids for sites that store nothing on the device.
#[derive(Debug)]
pub struct Cookieless {
    dir: Option<PathBuf>,
    salt: Mutex<Option<Salt>>,
    sessions: Mutex<LruCache<String, (String, i64)>>,
}

/// Ids for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedIds {
    /// The visitor id.
    pub party_id: String,
    /// The session id.
    pub session_id: String,
    /// Whether this event started the session.
    pub new_session: bool,
}

impl Cookieless {
    /// Keeps the daily salt in the directory `dir` (none: in memory only) and up to `sessions`
    /// open sessions.
    pub fn new(dir: Option<PathBuf>, sessions: usize) -> Self {
        let size = NonZeroUsize::new(sessions).unwrap_or(NonZeroUsize::MIN);
        Self { dir, salt: Mutex::new(None), sessions: Mutex::new(LruCache::new(size)) }
    }

    /// The ids of a visitor seen at `now_ms` on `site` from `ip` with `user_agent`.
    pub fn ids(&self, now_ms: i64, site: &str, ip: &str, user_agent: &str, session_timeout_ms: i64) -> DerivedIds {
        let salt = self.salt_for(now_ms.div_euclid(DAY_MS));
        let mut hash = Sha256::new();
        for part in [&salt[..], site.as_bytes(), ip.as_bytes(), user_agent.as_bytes()] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        let digest = hash.finalize();
        let party_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
        let mut sessions = self.sessions.lock();
        let (session_id, new_session) = match sessions.get_mut(&party_id) {
            Some((id, last)) if now_ms - *last <= session_timeout_ms => {
                *last = now_ms.max(*last);
                (id.clone(), false)
            }
            _ => {
                let mut raw = [0u8; 16];
                rand::rng().fill_bytes(&mut raw);
                let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
                sessions.put(party_id.clone(), (id.clone(), now_ms));
                (id, true)
            }
        };
        DerivedIds { party_id, session_id, new_session }
    }

    fn salt_for(&self, day: i64) -> [u8; 32] {
        let mut current = self.salt.lock();
        if let Some(salt) = current.as_ref().filter(|s| s.day == day) {
            return salt.bytes;
        }
        let mut fresh = [0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        let bytes = match &self.dir {
            Some(dir) => publish_or_read(dir, day, &fresh).unwrap_or_else(|error| {
                // Ids stay valid for this process; other collectors and a restart would not
                // share them within the day.
                tracing::warn!(%error, dir = %dir.display(), "cannot keep the cookieless salt in its directory");
                fresh
            }),
            None => fresh,
        };
        *current = Some(Salt { day, bytes });
        // A new day also ends every session: ids derived with the old salt are gone.
        self.sessions.lock().clear();
        bytes
    }
}

/// The salt of `day` in `dir`: the one already there, or `fresh`, published so that no other
/// writer's can replace it. Removes the salts of earlier days.
fn publish_or_read(dir: &Path, day: i64, fresh: &[u8; 32]) -> std::io::Result<[u8; 32]> {
    std::fs::create_dir_all(dir)?;
    let name = dir.join(format!("{day}.salt"));
    let salt = match read_salt(&name)? {
        Some(existing) => existing,
        None => {
            let temp = dir.join(format!(".{day}.{:016x}.tmp", rand::rng().next_u64()));
            let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
            // The salt is a secret: only this user may read it.
            oriel_core::durable::atomic_write(&temp, hex.as_bytes(), Some(0o600))?;
            let linked = std::fs::hard_link(&temp, &name);
            let _ = std::fs::remove_file(&temp);
            match linked {
                Ok(()) => {
                    oriel_core::durable::sync_dir(dir)?;
                    *fresh
                }
                // Another collector published first: its salt is the day's.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    read_salt(&name)?.ok_or_else(|| std::io::Error::other("the published salt is unreadable"))?
                }
                Err(e) => return Err(e),
            }
        }
    };
    forget_earlier_days(dir, day);
    Ok(salt)
}

fn read_salt(path: &Path) -> std::io::Result<Option<[u8; 32]>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let raw = hex_decode(text.trim())
        .filter(|r| r.len() == 32)
        .ok_or_else(|| std::io::Error::other(format!("{} is not a salt; remove it to start a new one", path.display())))?;
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&raw);
    Ok(Some(bytes))
}

/// Removes the salt files of days before `day` (and what an older version kept), so an id of
/// a past day can never be recomputed.
fn forget_earlier_days(dir: &Path, day: i64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        // `<day>.salt`, and `.<day>.<random>.tmp` a crash left behind.
        let day_of = |n: &str| match n.strip_suffix(".salt") {
            Some(d) => d.parse::<i64>().ok(),
            None => n.strip_prefix('.')?.split('.').next()?.parse::<i64>().ok().filter(|_| n.ends_with(".tmp")),
        };
        let past = name.to_str().and_then(day_of).is_some_and(|d| d < day);
        if past {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_795_770_000_000;
    const MIN30: i64 = 30 * 60_000;

    #[test]
    fn stable_within_a_day_and_unlinkable_across_days() {
        let c = Cookieless::new(None, 100);
        let a = c.ids(T, "site", "203.0.113.7", "UA", MIN30);
        let b = c.ids(T + 60_000, "site", "203.0.113.7", "UA", MIN30);
        assert_eq!(a.party_id, b.party_id);
        assert_eq!(a.session_id, b.session_id);
        assert!(a.new_session && !b.new_session);
        assert_eq!(a.party_id.len(), 22);
        assert_ne!(c.ids(T, "site", "203.0.113.8", "UA", MIN30).party_id, a.party_id);
        assert_ne!(c.ids(T, "other", "203.0.113.7", "UA", MIN30).party_id, a.party_id);
        let later = c.ids(T + 40 * 60_000 + 60_000, "site", "203.0.113.7", "UA", MIN30);
        assert_eq!(later.party_id, a.party_id);
        assert!(later.new_session, "a gap over the timeout starts a new session");
        let tomorrow = c.ids(T + DAY_MS, "site", "203.0.113.7", "UA", MIN30);
        assert_ne!(tomorrow.party_id, a.party_id, "the salt rotates daily");
    }

    #[test]
    fn salt_survives_a_restart_within_the_day() {
        let dir = tempfile::tempdir().unwrap();
        let first = Cookieless::new(Some(dir.path().into()), 10).ids(T, "s", "1.2.3.4", "UA", MIN30);
        let second = Cookieless::new(Some(dir.path().into()), 10).ids(T + 1000, "s", "1.2.3.4", "UA", MIN30);
        assert_eq!(first.party_id, second.party_id);
    }

    /// Collectors sharing the salt directory, racing for a new day, all end up with one salt;
    /// the next day's rotation removes the old one for good.
    #[test]
    fn collectors_sharing_a_directory_agree_and_past_salts_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let path = dir.path().to_path_buf();
                    scope.spawn(move || Cookieless::new(Some(path), 10).ids(T, "s", "1.2.3.4", "UA", MIN30).party_id)
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        let files = |d: &Path| {
            let mut names: Vec<String> =
                std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            names
        };
        let today = T.div_euclid(DAY_MS);
        assert_eq!(files(dir.path()), vec![format!("{today}.salt")], "no temporary files left");
        std::fs::write(dir.path().join(format!(".{today}.0123456789abcdef.tmp")), "ab").unwrap();
        let tomorrow = Cookieless::new(Some(dir.path().into()), 10).ids(T + DAY_MS, "s", "1.2.3.4", "UA", MIN30);
        assert_ne!(tomorrow.party_id, ids[0]);
        assert_eq!(files(dir.path()), vec![format!("{}.salt", today + 1)], "yesterday's salt, even half written, is deleted");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join(format!("{}.salt", today + 1))).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
