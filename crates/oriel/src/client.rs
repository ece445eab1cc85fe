//! The client side of the query API, shared by `oriel sql`, `oriel delete`, `oriel deletions`,
//! `oriel export` and `oriel signin`:
//! where the server is and which credential to send.
//!
//! The credential is `--token` (or `ORIEL_TOKEN`) when given, else the admin token a server
//! wrote into its data directory (`--data-dir`, `ORIEL_DATA_DIR`, default `./oriel-data`), so
//! on the machine Oriel runs on the commands work without any setup.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Where the server is and how to authenticate.
#[derive(Debug, clap::Args)]
pub(crate) struct Connection {
    /// The server's URL.
    #[arg(long, env = "ORIEL_URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) url: String,
    /// Bearer token; without one, the admin token in the server's data directory is used.
    #[arg(long, env = "ORIEL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The server's data directory, where its admin token is.
    #[arg(long, env = "ORIEL_DATA_DIR", default_value = "./oriel-data")]
    data_dir: PathBuf,
}

impl Connection {
    /// The token to send, and where it came from (for error messages).
    fn credential(&self) -> anyhow::Result<(String, String)> {
        if let Some(token) = &self.token {
            return Ok((token.clone(), "the token given with --token or ORIEL_TOKEN".into()));
        }
        let path = self.data_dir.join(oriel_server::auth::ADMIN_TOKEN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(token) => Ok((token.trim().to_string(), format!("the admin token in {}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "no credential: {} does not exist. Run this on the server's machine with --data-dir pointing at its \
                 data directory, or pass --token (a token of server.api_tokens)",
                path.display()
            ),
            Err(e) => bail!("cannot read {}: {e} (run as the user that runs oriel serve, or pass --token)", path.display()),
        }
    }

    /// POSTs `body` to `path` and returns the JSON answer, or the server's error as one line.
    pub(crate) fn call(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let bytes = self.send(path, Some(body))?;
        Ok(serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({ "error": String::from_utf8_lossy(&bytes) })))
    }

    /// GETs `path` and returns the body as it came, or the server's error as one line.
    pub(crate) fn get(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        self.send(path, None)
    }

    /// Sends a POST of `body`, or a GET without one, and returns a successful answer's body.
    fn send(&self, path: &str, body: Option<Value>) -> anyhow::Result<Vec<u8>> {
        let (token, source) = self.credential()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let url = format!("{}{path}", self.url.trim_end_matches('/'));
            let client = reqwest::Client::new();
            let request = match &body {
                Some(body) => client.post(&url).json(body),
                None => client.get(&url),
            };
            let response = request
                .bearer_auth(&token)
                .send()
                .await
                .with_context(|| format!("cannot reach oriel at {} (is oriel serve running?)", self.url))?;
            let status = response.status();
            let is_json = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with("application/json"));
            let bytes = response.bytes().await.context("reading the answer")?.to_vec();
            // Errors come as {"error": …}; so may a JSON answer cut short after its status line.
            let error = (is_json || !status.is_success())
                .then(|| serde_json::from_slice::<Value>(&bytes).ok())
                .flatten()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string));
            if let Some(message) = error {
                if status.as_u16() == 401 {
                    bail!("{message} (HTTP 401; sent {source})");
                }
                if status.is_success() {
                    bail!("{message} (the server stopped the result part-way)");
                }
                bail!("{message} (HTTP {})", status.as_u16());
            }
            if !status.is_success() {
                bail!("request failed (HTTP {}): {}", status.as_u16(), String::from_utf8_lossy(&bytes).trim());
            }
            Ok(bytes)
        })
    }
}
