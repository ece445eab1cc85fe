//! Users who sign in with a name and a password (`[[server.users]]`).
//!
//! Passwords are stored only as Argon2id hashes. Checking one costs tens of milliseconds of CPU
//! on purpose, so checks run off the async threads, at most two at a time, and a successful
//! check is remembered for a few minutes (keyed by an HMAC of name and password under a key
//! that lives only in this process): Druid clients send HTTP Basic on every request, and each
//! must not cost an Argon2 run. An unknown name costs as much as a wrong password, so the
//! answer time does not tell which names exist.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng};
use hmac::{Hmac, Mac};
use oriel_core::config::{Role, User};
use parking_lot::Mutex;
use sha2::Sha256;
use tokio::sync::Semaphore;

use super::Principal;
use super::credentials::random_secret;

/// How long a successful check is remembered.
const REMEMBER: Duration = Duration::from_secs(300);
/// Most remembered checks.
const REMEMBERED: usize = 1024;
/// Argon2 checks that may run at once.
const CONCURRENT_CHECKS: usize = 2;
/// How long a check waits for its turn before the sign-in is refused as busy.
const CHECK_WAIT: Duration = Duration::from_secs(5);
/// Longest name accepted (a longer one is wrong without a check).
pub(crate) const MAX_NAME_BYTES: usize = 64;
/// Longest password accepted (a longer one is wrong without a check).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Hashes `password` with Argon2id and a random salt, in PHC form.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

struct Entry {
    name: String,
    role: Role,
    hash: String,
}

/// What a password check found.
#[derive(Debug)]
pub(crate) enum Checked {
    /// The name and password belong to this user.
    Valid(Principal),
    /// The name or the password is wrong.
    Wrong,
    /// Too many checks are waiting; nothing was checked.
    Busy,
}

/// The configured users and the checks remembered.
pub(crate) struct Users {
    entries: Arc<Vec<Entry>>,
    /// Checked against when the name is unknown, so that costs the same.
    decoy: Arc<String>,
    key: Vec<u8>,
    remembered: Mutex<lru::LruCache<[u8; 32], (String, Instant)>>,
    checks: Arc<Semaphore>,
}

impl Users {
    /// The users of `config`; an entry whose hash does not parse is refused with its name.
    pub(crate) fn new(users: &[User]) -> std::io::Result<Self> {
        let mut entries = Vec::with_capacity(users.len());
        for user in users {
            let parsed = PasswordHash::new(&user.password_hash).map_err(|e| e.to_string()).and_then(|h| {
                if h.salt.is_some() && h.hash.is_some() { Ok(()) } else { Err("it has no salt or no hash".to_string()) }
            });
            parsed.map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "server.users entry {:?}: the password_hash is not a valid Argon2 hash ({e}); make one with `oriel user add`",
                        user.name
                    ),
                )
            })?;
            entries.push(Entry { name: user.name.clone(), role: user.role, hash: user.password_hash.clone() });
        }
        let decoy = hash_password(&random_secret()).map_err(std::io::Error::other)?;
        let capacity = NonZeroUsize::new(REMEMBERED).unwrap_or(NonZeroUsize::MIN);
        Ok(Self {
            entries: Arc::new(entries),
            decoy: Arc::new(decoy),
            key: random_secret().into_bytes(),
            remembered: Mutex::new(lru::LruCache::new(capacity)),
            checks: Arc::new(Semaphore::new(CONCURRENT_CHECKS)),
        })
    }

    /// Whether any users are configured.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The role user `name` has now, if the user exists.
    pub(crate) fn role_of(&self, name: &str) -> Option<Role> {
        self.entries.iter().find(|e| e.name == name).map(|e| e.role)
    }

    /// What a successful check is remembered under (HMAC takes keys of any length, so this is
    /// always `Some`; a `None` only means nothing is remembered).
    fn fingerprint(&self, name: &str, password: &str) -> Option<[u8; 32]> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).ok()?;
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        Some(mac.finalize().into_bytes().into())
    }

    /// Who `name` with `password` is, when a check succeeded for them lately (no Argon2 run).
    pub(crate) fn remembered(&self, name: &str, password: &str) -> Option<Principal> {
        let fingerprint = self.fingerprint(name, password)?;
        let (user, at) = self.remembered.lock().get(&fingerprint).cloned()?;
        // The role is read now: a changed configuration applies at once.
        (at.elapsed() < REMEMBER).then(|| self.role_of(&user).map(|role| Principal::user(&user, role))).flatten()
    }

    /// Who `name` with `password` is.
    pub(crate) async fn check(&self, name: &str, password: &str) -> Checked {
        if name.len() > MAX_NAME_BYTES || password.len() > MAX_PASSWORD_BYTES {
            return Checked::Wrong;
        }
        if let Some(known) = self.remembered(name, password) {
            return Checked::Valid(known);
        }
        let fingerprint = self.fingerprint(name, password);
        let Ok(Ok(_permit)) = tokio::time::timeout(CHECK_WAIT, self.checks.acquire()).await else {
            return Checked::Busy;
        };
        let (entries, decoy, name_owned, password) =
            (Arc::clone(&self.entries), Arc::clone(&self.decoy), name.to_string(), password.to_string());
        let matched = tokio::task::spawn_blocking(move || {
            let entry = entries.iter().find(|e| e.name == name_owned);
            let hash = entry.map_or(decoy.as_str(), |e| e.hash.as_str());
            let ok = PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok());
            (ok && entry.is_some()).then(|| entry.map(|e| (e.name.clone(), e.role))).flatten()
        })
        .await;
        let Ok(Some((user, role))) = matched else { return Checked::Wrong };
        if let Some(fingerprint) = fingerprint {
            self.remembered.lock().put(fingerprint, (user.clone(), Instant::now()));
        }
        Checked::Valid(Principal::user(&user, role))
    }

    /// A short mark of user `name`'s current password hash, signed into the user's sessions so
    /// a changed password ends them.
    pub(crate) fn password_mark(&self, name: &str) -> Option<String> {
        use base64::Engine;
        use sha2::Digest;
        let entry = self.entries.iter().find(|e| e.name == name)?;
        let digest = Sha256::digest(entry.hash.as_bytes());
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..12]))
    }
}

/// `name` as a log may show it: itself when it is a valid user name, else only its length, so
/// a forged name cannot write log lines and a password typed into the name field stays out.
pub(crate) fn loggable(name: &str) -> String {
    let valid = !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    if valid { name.to_string() } else { format!("(a name of {} bytes)", name.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_are_checked_against_their_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"));
        let users = Users::new(&[User { name: "ana".into(), role: Role::Admin, password_hash: hash }]).unwrap();
        let Checked::Valid(ana) = users.check("ana", "correct horse").await else { panic!() };
        assert_eq!((ana.name.as_str(), ana.role), ("ana", Role::Admin));
        assert!(users.remembered("ana", "correct horse").is_some(), "remembered");
        assert!(matches!(users.check("ana", "wrong").await, Checked::Wrong));
        assert!(matches!(users.check("bob", "correct horse").await, Checked::Wrong));
        assert!(matches!(users.check("ana", &"x".repeat(2000)).await, Checked::Wrong));
        assert_eq!(users.password_mark("ana").unwrap().len(), 16);
        assert_eq!(loggable("ana"), "ana");
        assert_eq!(loggable("eve\nFAKE LOG LINE"), "(a name of 17 bytes)");
        let bad = Users::new(&[User { name: "eve".into(), role: Role::Viewer, password_hash: "$argon2id$nope".into() }]);
        assert!(bad.err().unwrap().to_string().contains("\"eve\""));
    }
}
