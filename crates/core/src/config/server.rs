//! The `[server]` section: where Oriel listens, how it treats connections, who may read.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, check_range};

/// What a credential allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May query: SQL, the Druid API, the UI.
    #[default]
    Viewer,
    /// May also delete visitors and manage the installation.
    Admin,
}

impl Role {
    /// The role's name as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Admin => "admin",
        }
    }
}

/// A bearer token for the query APIs: a bare string (a viewer) or a table with a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ApiToken {
    /// `"token"`: a viewer's token.
    Plain(String),
    /// `{ token = "…", role = "admin", name = "ci" }`.
    WithRole {
        /// The secret.
        token: String,
        /// What it allows.
        #[serde(default)]
        role: Role,
        /// A name for logs; never the token itself.
        #[serde(default)]
        name: String,
    },
}

impl ApiToken {
    /// The secret.
    pub fn token(&self) -> &str {
        match self {
            Self::Plain(token) | Self::WithRole { token, .. } => token,
        }
    }

    /// What it allows.
    pub fn role(&self) -> Role {
        match self {
            Self::Plain(_) => Role::Viewer,
            Self::WithRole { role, .. } => *role,
        }
    }
}

/// A person who signs in with a password (HTTP Basic for API clients, the sign-in form for the
/// UI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The name to sign in with.
    pub name: String,
    /// What the user may do.
    #[serde(default)]
    pub role: Role,
    /// The password's Argon2id hash in PHC form (`$argon2id$v=19$…`), as `oriel user add`
    /// prints it; never the password itself.
    pub password_hash: String,
}

/// HTTP server settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// How long a clean shutdown waits for in-flight requests, in milliseconds.
    pub shutdown_timeout_ms: u64,
    /// Bearer tokens that authorise the query APIs and the UI, besides the admin token in the
    /// data directory.
    pub api_tokens: Vec<ApiToken>,
    /// People who sign in with a name and password (`oriel user add` makes an entry).
    pub users: Vec<User>,
    /// Host names the query APIs and UI are reached under, besides `localhost` and IP addresses
    /// (e.g. `analytics.example.com`). Requests naming another host are refused, which defeats
    /// DNS rebinding.
    pub public_hosts: Vec<String>,
    /// Most open client connections; beyond it new connections are closed at once.
    pub max_connections: u32,
    /// A client must send a request's headers within this many milliseconds.
    pub header_read_timeout_ms: u64,
    /// A client must send a request's body within this many milliseconds.
    pub body_read_timeout_ms: u64,
    /// A connection that moves no byte for this many milliseconds while no handler is working
    /// on one of its requests is closed (a client that stopped reading its answer, for one).
    pub idle_timeout_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            shutdown_timeout_ms: 10_000,
            api_tokens: Vec::new(),
            users: Vec::new(),
            public_hosts: Vec::new(),
            max_connections: 4096,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            idle_timeout_ms: 90_000,
        }
    }
}

impl ServerConfig {
    /// The parsed listen address; valid after validation.
    pub fn listen_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.listen.parse()
    }

    pub(super) fn validate(&self, invalid: &impl Fn(&str, String, &str) -> ConfigError) -> Result<(), ConfigError> {
        if self.listen_addr().is_err() {
            return Err(invalid(
                "server.listen",
                format!("{:?}", self.listen),
                "an IP address and port such as \"127.0.0.1:8080\" or \"[::1]:8080\"",
            ));
        }
        check_range(invalid, "server.shutdown_timeout_ms", self.shutdown_timeout_ms, 0, 600_000)?;
        for (i, token) in self.api_tokens.iter().enumerate() {
            if token.token().len() < 16 {
                // The value is a secret: say how long it is, never what it is.
                return Err(invalid(
                    &format!("server.api_tokens[{i}]"),
                    format!("(a token of {} characters)", token.token().len()),
                    "tokens of at least 16 characters",
                ));
            }
        }
        for (i, user) in self.users.iter().enumerate() {
            let key = format!("server.users[{i}]");
            let name_ok = !user.name.is_empty()
                && user.name.len() <= 64
                && user.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
            if !name_ok {
                return Err(invalid(
                    &format!("{key}.name"),
                    format!("{:?}", user.name),
                    "1 to 64 letters, digits, '.', '_', '@' or '-'",
                ));
            }
            if self.users[..i].iter().any(|u| u.name == user.name) {
                return Err(invalid(&format!("{key}.name"), format!("{:?}", user.name), "a name no other user has"));
            }
            if !user.password_hash.starts_with("$argon2id$") {
                // A hash is not secret, but a password pasted by mistake would be: show neither.
                return Err(invalid(
                    &format!("{key}.password_hash"),
                    format!("(a value of {} characters)", user.password_hash.len()),
                    "an Argon2id hash as `oriel user add` prints it ($argon2id$v=19$...)",
                ));
            }
        }
        for (i, host) in self.public_hosts.iter().enumerate() {
            let ok = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok {
                return Err(invalid(
                    &format!("server.public_hosts[{i}]"),
                    format!("{host:?}"),
                    "a host name such as \"analytics.example.com\" (no scheme, port or path)",
                ));
            }
        }
        check_range(invalid, "server.max_connections", self.max_connections.into(), 16, 1_000_000)?;
        check_range(invalid, "server.header_read_timeout_ms", self.header_read_timeout_ms, 100, 600_000)?;
        check_range(invalid, "server.body_read_timeout_ms", self.body_read_timeout_ms, 100, 3_600_000)?;
        check_range(invalid, "server.idle_timeout_ms", self.idle_timeout_ms, 100, 3_600_000)?;
        Ok(())
    }
}
