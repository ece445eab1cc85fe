//! Visitor and session ids for cookieless mode, derived on the server.
//!
//! As privacy-first tools do: `party_id` is a hash of a secret salt, the site, the IP address and
//! the user agent. The salt is random and replaced every UTC day, and old salts are not kept, so
//! the same person gets unlinkable ids on different days and nobody (us included) can recompute
//! an id from an IP address later. The salt is persisted so a restart within the day keeps ids
//! stable. Sessions are tracked in a bounded in-memory table with the sliding timeout.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use base64::Engine;
use lru::LruCache;
use parking_lot::Mutex;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Serialize, Deserialize)]
struct SaltFile {
    day: i64,
    salt: String,
}

#[derive(Debug)]
struct Salt {
    day: i64,
    bytes: [u8; 32],
}

/// Server-side ids for sites that store nothing on the device.
#[derive(Debug)]
pub struct Cookieless {
    path: Option<PathBuf>,
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
    /// Keeps the daily salt in `path` (none: in memory only) and up to `sessions` open sessions.
    pub fn new(path: Option<PathBuf>, sessions: usize) -> Self {
        let size = NonZeroUsize::new(sessions).unwrap_or(NonZeroUsize::MIN);
        Self { path, salt: Mutex::new(None), sessions: Mutex::new(LruCache::new(size)) }
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
        let salt = self.load(day).unwrap_or_else(|| {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let salt = Salt { day, bytes };
            self.store(&salt);
            salt
        });
        let bytes = salt.bytes;
        *current = Some(salt);
        // A new day also ends every session: ids derived with the old salt are gone.
        self.sessions.lock().clear();
        bytes
    }

    fn load(&self, day: i64) -> Option<Salt> {
        let text = std::fs::read(self.path.as_ref()?).ok()?;
        let file: SaltFile = serde_json::from_slice(&text).ok()?;
        let raw = hex_decode(&file.salt)?;
        (file.day == day && raw.len() == 32).then(|| {
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(&raw);
            Salt { day, bytes }
        })
    }

    fn store(&self, salt: &Salt) {
        let Some(path) = &self.path else { return };
        let file = SaltFile { day: salt.day, salt: salt.bytes.iter().map(|b| format!("{b:02x}")).collect() };
        // The salt is a secret: only this user may read it.
        let write = || -> std::io::Result<()> {
            let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
            oriel_core::durable::atomic_write(path, &bytes, Some(0o600))
        };
        if let Err(error) = write() {
            // Ids stay valid for this process; after a restart they would change within the day.
            tracing::warn!(%error, path = %path.display(), "failed to persist the cookieless salt");
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
        let path = dir.path().join("salt.json");
        let first = Cookieless::new(Some(path.clone()), 10).ids(T, "s", "1.2.3.4", "UA", MIN30);
        let second = Cookieless::new(Some(path), 10).ids(T + 1000, "s", "1.2.3.4", "UA", MIN30);
        assert_eq!(first.party_id, second.party_id);
    }
}
