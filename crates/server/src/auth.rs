//! Who may read analytics: nobody without a credential.
//!
//! Loopback is not trusted: a reverse proxy on the same host, an SSH tunnel or a DNS-rebinding
//! page in a local browser all arrive from loopback on someone else's behalf. Every query
//! endpoint and the UI need one of:
//!
//! - a bearer token: the admin token that the first start writes to `data_dir/admin-token`
//!   (mode 0600; `oriel sql` and `oriel delete` on the same machine read it from there), or a
//!   token of `server.api_tokens`, each with a role;
//! - a user's name and password (`server.users`, Argon2id hashes) with HTTP Basic, as Druid's
//!   clients send them;
//! - a session cookie, signed with `data_dir/session-key`, which `/signin` sets in exchange for
//!   a one-time code (`oriel serve` prints a sign-in link with one at start) and
//!   `POST /api/v1/signin` for a user's name and password.
//!
//! Requests to these endpoints must also name a host Oriel answers to ([`host_allowed`]), and
//! cookie-authenticated writes must come from the same origin. The collector endpoints are
//! public by nature and are not behind any of this.

mod credentials;
mod session;
mod throttle;
mod users;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use oriel_core::ErrorCode;
use oriel_core::config::{Role, ServerConfig};
use oriel_core::secret::constant_time_eq;

pub use self::credentials::ADMIN_TOKEN_FILE;
use self::session::Sessions;
pub(crate) use self::session::{CODE_SECONDS, SESSION_COOKIE, SESSION_SECONDS};
use self::throttle::Throttle;
pub use self::users::MAX_PASSWORD_BYTES;
pub use self::users::hash_password;
pub(crate) use self::users::loggable;
use self::users::{Checked, Users};
use crate::peer::Peer;
use crate::{ApiError, AppState};

/// Who made a request, as its credential says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// A name for logs (never the secret).
    pub name: String,
    /// What the credential allows.
    pub role: Role,
    /// The user of `server.users` behind it, if it is one.
    pub user: Option<String>,
}

impl Principal {
    /// A credential that is not a user's (a token, a sign-in link's session).
    pub(crate) fn named(name: impl Into<String>, role: Role) -> Self {
        Self { name: name.into(), role, user: None }
    }

    /// User `name` of `server.users`.
    pub(crate) fn user(name: &str, role: Role) -> Self {
        Self { name: name.to_string(), role, user: Some(name.to_string()) }
    }

    /// Refuses unless the principal is an administrator.
    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::new(ErrorCode::Forbidden, format!("{} has the viewer role; this needs an admin credential", self.name)))
        }
    }
}

struct Token {
    secret: String,
    principal: Principal,
}

/// The credentials this process accepts.
pub struct Auth {
    tokens: Vec<Token>,
    users: Users,
    sessions: Sessions,
    public_hosts: Vec<String>,
    failures: Throttle,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("tokens", &self.tokens.len())
            .field("users", &!self.users.is_empty())
            .field("public_hosts", &self.public_hosts)
            .finish()
    }
}

/// Failed credentials one client may present per minute before it is refused for a while.
const FAILURES_PER_MINUTE: u32 = 20;

impl Auth {
    /// Loads the admin token and session key of `data_dir`, creating both on first start, and
    /// the tokens of `config`.
    pub fn load_or_create(data_dir: &Path, config: &ServerConfig) -> std::io::Result<Self> {
        let admin = credentials::admin_token(data_dir)?;
        let key = credentials::session_key(data_dir)?;
        let mut tokens = vec![Token { secret: admin, principal: Principal::named("admin token", Role::Admin) }];
        for (i, token) in config.api_tokens.iter().enumerate() {
            let name = match token {
                oriel_core::config::ApiToken::WithRole { name, .. } if !name.is_empty() => name.clone(),
                _ => format!("server.api_tokens[{i}]"),
            };
            tokens.push(Token { secret: token.token().to_string(), principal: Principal::named(name, token.role()) });
        }
        Ok(Self {
            tokens,
            users: Users::new(&config.users)?,
            sessions: Sessions::new(key),
            public_hosts: config.public_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            failures: Throttle::new(FAILURES_PER_MINUTE),
        })
    }

    /// The principal a bearer token belongs to. Every token is compared in full, so the time
    /// taken does not reveal which one nearly matched.
    fn by_token(&self, presented: &str) -> Option<&Principal> {
        let mut found = None;
        for token in &self.tokens {
            if constant_time_eq(token.secret.as_bytes(), presented.as_bytes()) {
                found = Some(&token.principal);
            }
        }
        found
    }

    /// A one-time sign-in code for `role`, valid for an hour.
    pub fn signin_code(&self, role: Role) -> String {
        self.sessions.new_code(role)
    }

    /// Trades a one-time code for a session cookie's value.
    pub(crate) fn redeem(&self, code: &str) -> Option<(String, Principal)> {
        self.sessions.redeem(code)
    }

    /// Whether `headers` name a host the query APIs answer to.
    pub(crate) fn host_allowed(&self, headers: &HeaderMap, uri_host: Option<&str>) -> bool {
        host_allowed(headers, uri_host, &self.public_hosts)
    }

    /// Checks user `name`'s `password` for `peer`: refused at once while `peer` is blocked, and
    /// counted as a failure before the check runs (so concurrent guesses count too) and
    /// forgiven when it succeeds.
    pub(crate) async fn sign_in(&self, name: &str, password: &str, peer: IpAddr) -> Result<Principal, ApiError> {
        if let Some(known) = self.users.remembered(name, password) {
            return Ok(known);
        }
        // A client that keeps failing gets no more password checks (each costs CPU).
        if self.failures.is_blocked(peer) {
            return Err(ApiError::new(ErrorCode::TooManyRequests, "too many failed sign-ins from this address; wait a minute"));
        }
        self.failures.fail(peer);
        match self.users.check(name, password).await {
            Checked::Valid(principal) => {
                self.failures.forgive(peer);
                Ok(principal)
            }
            Checked::Wrong => Err(ApiError::new(ErrorCode::Unauthorized, "the user name or password is wrong")),
            Checked::Busy => {
                self.failures.forgive(peer);
                Err(ApiError::new(ErrorCode::Unavailable, "too many sign-ins are being checked; retry in a moment"))
            }
        }
    }

    /// A session cookie's value for `principal`.
    pub(crate) fn session_for(&self, principal: &Principal) -> Option<String> {
        let user = match &principal.user {
            Some(name) => Some((name.as_str(), self.users.password_mark(name)?)),
            None => None,
        };
        self.sessions.issue(principal.role, user.as_ref().map(|(n, m)| (*n, m.as_str())))
    }

    /// Who a session cookie signs in: a user's session holds only while the user exists with
    /// the same password, and with the role the configuration gives the user now.
    fn session(&self, cookie: &str) -> Option<Principal> {
        let claims = self.sessions.verify(cookie)?;
        match &claims.user {
            Some((name, mark)) => {
                let current = self.users.password_mark(name)?;
                if !constant_time_eq(current.as_bytes(), mark.as_bytes()) {
                    return None;
                }
                self.users.role_of(name).map(|role| Principal::user(name, role))
            }
            None => Some(claims.link()),
        }
    }

    /// The principal behind `headers`, or why there is none.
    async fn authenticate(&self, method: &Method, headers: &HeaderMap, peer: IpAddr) -> Result<Principal, ApiError> {
        if let Some(token) = bearer(headers) {
            return self
                .by_token(token)
                .cloned()
                .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "the bearer token is not valid"));
        }
        if let Some((name, password)) = basic(headers) {
            return self.sign_in(&name, &password, peer).await;
        }
        if let Some(cookie) = session::cookie(headers) {
            let principal = self
                .session(cookie)
                .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "the session expired or is not valid; sign in again"))?;
            if !matches!(*method, Method::GET | Method::HEAD) && !same_origin(headers) {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "a signed-in browser may change things only from Oriel's own pages (Origin must match Host)",
                ));
            }
            return Ok(principal);
        }
        Err(ApiError::new(
            ErrorCode::Unauthorized,
            format!(
                "analytics need a credential: send Authorization: Bearer <token> (the admin token is in \
                 the data directory's {ADMIN_TOKEN_FILE}, or use a token of server.api_tokens), a user's name \
                 and password with HTTP Basic (server.users), or sign in with the link oriel serve printed"
            ),
        ))
    }
}

/// The token of an `Authorization: Bearer <token>` header: the one parser, used for query
/// credentials and collector write keys alike.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

/// The name and password of an `Authorization: Basic` header.
pub(crate) fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || encoded.len() > 4 * (users::MAX_NAME_BYTES + users::MAX_PASSWORD_BYTES) {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (name, password) = String::from_utf8(decoded).ok()?.split_once(':').map(|(n, p)| (n.to_string(), p.to_string()))?;
    Some((name, password))
}

/// Whether the request's host is one Oriel answers to: an IP address, `localhost`, or a name in
/// `server.public_hosts`. A DNS-rebinding page reaches Oriel under its own domain name, which
/// this refuses. A request that names no host at all comes from no browser and passes.
fn host_allowed(headers: &HeaderMap, uri_host: Option<&str>, public: &[String]) -> bool {
    let mut hosts = headers.get_all(header::HOST).iter().peekable();
    if hosts.peek().is_none() {
        return uri_host.is_none_or(|h| one_host_allowed(h, public));
    }
    hosts.all(|v| v.to_str().is_ok_and(|h| one_host_allowed(h, public)))
}

fn one_host_allowed(host: &str, public: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            let Some((ip, rest)) = v6.split_once(']') else { return false };
            let port_ok =
                rest.is_empty() || rest.strip_prefix(':').is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            return port_ok && ip.parse::<IpAddr>().is_ok();
        }
        None => {
            host.rsplit_once(':').map_or(host, |(name, port)| if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host })
        }
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name.parse::<IpAddr>().is_ok() || name == "localhost" || public.contains(&name)
}

/// Whether the `Origin` of a request matches its `Host` (browsers send `Origin` on writes).
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()).and_then(|o| url::Url::parse(o).ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => {
            let authority = match origin.port() {
                Some(port) => format!("{}:{port}", origin.host_str().unwrap_or_default()),
                None => origin.host_str().unwrap_or_default().to_string(),
            };
            authority.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// Middleware of every query endpoint: the host must be one Oriel answers to and the request
/// must carry a valid credential; the [`Principal`] is attached for the handler.
///
/// A client that keeps presenting wrong tokens or passwords is refused for a while. A valid
/// credential always passes, so clients sharing one address (behind a proxy) are not locked out
/// by someone else's mistakes; with 256-bit tokens there is nothing to gain by guessing anyway.
/// An expired session cookie is not a failure: browsers keep sending old cookies.
pub(crate) async fn require_credential(
    State(state): State<AppState>,
    Peer(peer): Peer,
    mut request: Request,
    next: Next,
) -> Response {
    let auth = state.auth();
    if !auth.host_allowed(request.headers(), request.uri().host()) {
        let error = ApiError::new(
            ErrorCode::Forbidden,
            "this host name is not one Oriel answers to; add it to server.public_hosts (or use the IP address)",
        );
        return refuse(&request, error);
    }
    match auth.authenticate(request.method(), request.headers(), peer).await {
        Ok(principal) => {
            request.extensions_mut().insert(Arc::new(principal));
            next.run(request).await
        }
        Err(error) => {
            let token = bearer(request.headers()).is_some();
            let user = basic(request.headers()).map(|(name, _)| users::loggable(&name));
            if error.code == ErrorCode::Unauthorized && (token || user.is_some()) {
                // Passwords were counted where they were checked; tokens are counted here.
                if token {
                    if auth.failures.is_blocked(peer) {
                        let blocked = ApiError::new(
                            ErrorCode::TooManyRequests,
                            "too many failed sign-ins from this address; wait a minute",
                        );
                        return refuse(&request, blocked);
                    }
                    auth.failures.fail(peer);
                }
                // The user's name, never the password or token.
                let path = request.uri().path();
                tracing::warn!(%peer, path, user = user.as_deref().unwrap_or("-"), "refused an invalid credential");
            }
            refuse(&request, error)
        }
    }
}

/// The answer to a request refused before its handler: in Druid's envelope on Druid's routes,
/// so Druid's clients read it as they read Druid's.
fn refuse(request: &Request, error: ApiError) -> Response {
    let path = request.uri().path();
    if path.starts_with("/druid/") || path == "/status" {
        crate::druid::DruidError::from(error).into_response()
    } else {
        error.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_host(host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        h
    }

    #[test]
    fn hosts_oriel_answers_to() {
        let public = vec!["analytics.example.com".to_string()];
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "10.0.0.5",
            "analytics.example.com",
            "analytics.example.com:443",
        ] {
            assert!(host_allowed(&with_host(ok), None, &public), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "[nope]:80",
            "127.0.0.1.evil.example",
            "[::1].evil",
            "[::1]:80x",
        ] {
            assert!(!host_allowed(&with_host(bad), None, &public), "{bad}");
        }
        assert!(host_allowed(&HeaderMap::new(), None, &public));
    }

    #[test]
    fn bearer_tokens_are_parsed_in_one_place() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer  abc "));
        assert_eq!(bearer(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer xyz"));
        assert_eq!(bearer(&h), Some("xyz"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn writes_with_a_cookie_must_come_from_the_same_origin() {
        let mut h = with_host("127.0.0.1:8080");
        assert!(!same_origin(&h), "no Origin");
        h.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(!same_origin(&h));
    }
}
