//! An S3-protocol server for tests: `s3s-fs`, which keeps objects as files in a temporary
//! directory and honours conditional PUT (`If-Match`, `If-None-Match: *`), on a free port of
//! 127.0.0.1.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The bucket every test server has.
pub const BUCKET: &str = "oriel";
/// The credentials it accepts.
pub const ACCESS_KEY: &str = "oriel-test-key";
/// The secret of [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "oriel-test-secret-key";

/// A running server; [`S3Server::stop`] and [`S3Server::start`] simulate an outage.
#[derive(Debug)]
pub struct S3Server {
    /// `http://127.0.0.1:port`.
    pub endpoint: String,
    port: u16,
    dir: tempfile::TempDir,
    child: std::sync::Mutex<Option<Child>>,
}

impl S3Server {
    /// A new server with an empty bucket [`BUCKET`].
    pub fn new() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let dir = tempfile::tempdir().expect("a temporary directory");
        // s3s-fs keeps a bucket as a directory of its root.
        std::fs::create_dir(dir.path().join(BUCKET)).expect("the bucket directory");
        let server = Self { endpoint: format!("http://127.0.0.1:{port}"), port, dir, child: std::sync::Mutex::new(None) };
        server.start();
        server
    }

    /// Starts the server (again) on its port and data, and waits until it accepts connections.
    pub fn start(&self) {
        let mut child = self.child.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(child.is_none(), "the S3 server is running already");
        let binary = crate::installed(
            "s3s-fs",
            "ORIEL_S3S_FS",
            "an S3-protocol server",
            "cargo install s3s-fs --version 0.14.1 --features binary --locked",
        );
        let mut command = Command::new(binary);
        command
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        *child = Some(crate::spawn_tied(command).expect("s3s-fs starts"));
        crate::wait_listening(&format!("127.0.0.1:{}", self.port), "s3s-fs");
    }

    /// Kills the server (SIGKILL); its objects stay for [`S3Server::start`].
    pub fn stop(&self) {
        crate::kill(&self.child);
    }

    /// `[object_store]` settings for the prefix `prefix` of [`BUCKET`] on this server, with a
    /// short request timeout so an outage shows at once.
    pub fn config(&self, prefix: &str) -> oriel_core::config::ObjectStoreConfig {
        oriel_core::config::ObjectStoreConfig {
            url: format!("s3://{BUCKET}/{prefix}"),
            endpoint: self.endpoint.clone(),
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            allow_http: true,
            request_timeout_seconds: 2,
            ..oriel_core::config::ObjectStoreConfig::default()
        }
    }

    /// The file holding object `key` of [`BUCKET`].
    pub fn object(&self, key: &str) -> PathBuf {
        self.dir.path().join(BUCKET).join(key)
    }

    /// The keys of [`BUCKET`] under `prefix`, sorted.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let root = self.dir.path().join(BUCKET);
        let mut files = Vec::new();
        walk(&root.join(prefix), &mut files);
        let mut keys: Vec<String> = files
            .iter()
            .filter_map(|p| p.strip_prefix(&root).ok())
            .map(|p| p.to_string_lossy().into_owned())
            // s3s-fs keeps its own bookkeeping beside the objects.
            .filter(|k| !k.contains(".s3s-fs") && !k.ends_with(".metadata.json"))
            .collect();
        keys.sort();
        keys
    }
}

impl Default for S3Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
