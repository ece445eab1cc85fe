//! Browser sessions: one-time sign-in codes, and signed cookies.
//!
//! A code (from the link `oriel serve` prints, or from `oriel signin`) can be redeemed once,
//! within an hour, for a cookie `v1.<role>.<expiry>.<nonce>[.<user>~<mark>].<signature>`:
//! HMAC-SHA256 over the rest with the data directory's session key. `<user>` (base64url) is
//! there when a user of `server.users` signed in with a password, with a mark of the user's
//! password hash, so changing the password ends the user's sessions. Nothing of a session is stored server-side, so
//! sessions survive restarts; replacing the key signs everyone out.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;
use hmac::{Hmac, Mac};
use oriel_core::config::Role;
use oriel_core::secret::constant_time_eq;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::Principal;
use super::credentials::random_secret;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "oriel_session";
/// How long a session lasts.
pub(crate) const SESSION_SECONDS: i64 = 14 * 86_400;
/// How long a sign-in code stays valid.
pub(crate) const CODE_SECONDS: i64 = 3600;
/// Most codes outstanding at once; the oldest go first.
const MAX_CODES: usize = 64;

pub(crate) struct Sessions {
    key: Vec<u8>,
    /// SHA-256 of each outstanding code → (role, expiry).
    codes: Mutex<HashMap<[u8; 32], (Role, i64)>>,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn role_name(role: Role) -> &'static str {
    role.as_str()
}

fn parse_role(name: &str) -> Option<Role> {
    match name {
        "viewer" => Some(Role::Viewer),
        "admin" => Some(Role::Admin),
        _ => None,
    }
}

impl Sessions {
    pub(crate) fn new(key: Vec<u8>) -> Self {
        Self { key, codes: Mutex::new(HashMap::new()) }
    }

    /// The signature of `payload`. (HMAC takes keys of any length, so this is always `Some`;
    /// a `None` would only make every cookie invalid, never valid.)
    fn sign(&self, payload: &str) -> Option<String> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).ok()?;
        mac.update(payload.as_bytes());
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// A new one-time code for `role`.
    pub(crate) fn new_code(&self, role: Role) -> String {
        let code = random_secret();
        let mut codes = self.codes.lock();
        let t = now();
        codes.retain(|_, (_, expiry)| *expiry > t);
        if codes.len() >= MAX_CODES
            && let Some(oldest) = codes.iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| *k)
        {
            codes.remove(&oldest);
        }
        codes.insert(Sha256::digest(code.as_bytes()).into(), (role, t + CODE_SECONDS));
        code
    }

    /// A cookie's value for `role`, and for `user` (name, password mark) when a user signed in.
    pub(crate) fn issue(&self, role: Role, user: Option<(&str, &str)>) -> Option<String> {
        let mut payload = format!("v1.{}.{}.{}", role_name(role), now() + SESSION_SECONDS, &random_secret()[..16]);
        if let Some((name, mark)) = user {
            payload.push('.');
            payload.push_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name));
            payload.push('~');
            payload.push_str(mark);
        }
        Some(format!("{payload}.{}", self.sign(&payload)?))
    }

    /// Redeems `code` once: the cookie value and who it signs in.
    pub(crate) fn redeem(&self, code: &str) -> Option<(String, Principal)> {
        let digest: [u8; 32] = Sha256::digest(code.as_bytes()).into();
        let (role, expiry) = self.codes.lock().remove(&digest)?;
        if expiry <= now() {
            return None;
        }
        Some((self.issue(role, None)?, link_principal(role)))
    }

    /// What a cookie value says, if its signature holds and it has not expired.
    pub(crate) fn verify(&self, value: &str) -> Option<Claims> {
        let (payload, signature) = value.rsplit_once('.')?;
        if !constant_time_eq(self.sign(payload)?.as_bytes(), signature.as_bytes()) {
            return None;
        }
        let mut parts = payload.split('.');
        let (version, role, expiry, _nonce) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let role = parse_role(role)?;
        if version != "v1" || expiry.parse::<i64>().ok()? <= now() {
            return None;
        }
        let user = match parts.next() {
            None => None,
            Some(user) => {
                let (name, mark) = user.split_once('~')?;
                let name = String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(name).ok()?).ok()?;
                Some((name, mark.to_string()))
            }
        };
        Some(Claims { role, user })
    }
}

/// What a valid session cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claims {
    /// The role it was issued with.
    pub(crate) role: Role,
    /// The user's name and password mark, for a user's session.
    pub(crate) user: Option<(String, String)>,
}

impl Claims {
    /// Who a sign-in link's session is (a user's session is checked against the users first).
    pub(crate) fn link(&self) -> Principal {
        link_principal(self.role)
    }
}

/// Who a sign-in link's session is.
fn link_principal(role: Role) -> Principal {
    Principal::named(format!("browser session ({})", role_name(role)), role)
}

/// The session cookie's value in `headers`, if any.
pub(crate) fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_one_time_and_cookies_are_signed() {
        let sessions = Sessions::new(b"a key of some length".to_vec());
        let code = sessions.new_code(Role::Admin);
        let (cookie, principal) = sessions.redeem(&code).unwrap();
        assert_eq!(principal.role, Role::Admin);
        assert!(sessions.redeem(&code).is_none(), "a code works once");
        assert_eq!(sessions.verify(&cookie).unwrap().role, Role::Admin);
        assert_eq!(sessions.verify(&cookie).unwrap().link(), principal);
        let forged = cookie.replacen("v1.admin", "v1.viewer", 1);
        assert!(sessions.verify(&forged).is_none());
        assert!(Sessions::new(b"another key".to_vec()).verify(&cookie).is_none());
        assert!(sessions.verify("garbage").is_none());
        assert!(sessions.redeem("never issued").is_none());
        let user = sessions.issue(Role::Viewer, Some(("ana", "mark"))).unwrap();
        assert_eq!(sessions.verify(&user).unwrap().user, Some(("ana".to_string(), "mark".to_string())));
        assert!(sessions.verify(&user.replacen(".YW5h~", ".Ym9i~", 1)).is_none(), "the user is signed too");
    }
}
