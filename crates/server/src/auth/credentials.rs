//! The secrets a first start creates in the data directory: the admin token and the key that
//! signs session cookies. Both are random, written once with mode 0600, and read on every
//! later start, so a fresh install is never open and a restart keeps everyone signed in.

use std::io;
use std::path::Path;

use base64::Engine;
use rand::RngCore;

/// The admin token's file in the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// The session key's file in the data directory.
const SESSION_KEY_FILE: &str = "session-key";

/// 32 random bytes, URL-safe base64 (43 characters).
pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn load_or_create(path: &Path) -> io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().len() >= 16 => Ok(text.trim().to_string()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is shorter than 16 characters; delete it to have a new one made", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let secret = random_secret();
            oriel_core::durable::atomic_write(path, format!("{secret}\n").as_bytes(), Some(0o600))?;
            tracing::info!(path = %path.display(), "created a new secret (mode 0600)");
            Ok(secret)
        }
        Err(e) => Err(io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))),
    }
}

/// The admin token of `data_dir`, created on first start.
pub(crate) fn admin_token(data_dir: &Path) -> io::Result<String> {
    load_or_create(&data_dir.join(ADMIN_TOKEN_FILE))
}

/// The cookie-signing key of `data_dir`, created on first start.
pub(crate) fn session_key(data_dir: &Path) -> io::Result<Vec<u8>> {
    load_or_create(&data_dir.join(SESSION_KEY_FILE)).map(String::into_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let first = admin_token(dir.path()).unwrap();
        assert_eq!(first.len(), 43);
        assert_eq!(admin_token(dir.path()).unwrap(), first, "read back, not replaced");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(ADMIN_TOKEN_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_ne!(session_key(dir.path()).unwrap(), first.into_bytes());
    }
}
