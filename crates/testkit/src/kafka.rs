//! A Kafka-protocol broker for tests: `tansu` with its SQLite storage (its memory engine and
//! default features lose messages), in a temporary directory, on a free port of 127.0.0.1.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// A running broker; [`Broker::stop`] and [`Broker::start`] simulate an outage.
#[derive(Debug)]
pub struct Broker {
    /// `127.0.0.1:port`, for `bootstrap.servers`.
    pub address: String,
    dir: tempfile::TempDir,
    child: std::sync::Mutex<Option<Child>>,
}

/// The `tansu` binary: `ORIEL_TANSU`, else `tansu` on the `PATH`, else `~/.cargo/bin/tansu`.
pub fn tansu() -> PathBuf {
    crate::installed(
        "tansu",
        "ORIEL_TANSU",
        "a Kafka-protocol broker",
        "cargo install tansu --version 0.6.0 --locked --features libsql",
    )
}

impl Broker {
    /// A new broker of its own (for tests that stop it).
    pub fn new() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let broker = Self {
            address: format!("127.0.0.1:{port}"),
            dir: tempfile::tempdir().expect("a temporary directory"),
            child: std::sync::Mutex::new(None),
        };
        broker.start();
        broker
    }

    /// The broker this test process shares between its tests (each uses topics of its own).
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<Broker> = OnceLock::new();
        SHARED.get_or_init(Self::new)
    }

    /// Starts the broker (again) on its port and data, and waits until it accepts connections.
    pub fn start(&self) {
        let mut child = self.child.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        assert!(child.is_none(), "the broker is running already");
        let url = format!("tcp://{}", self.address);
        let mut command = Command::new(tansu());
        command
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .env("RUST_LOG", "warn")
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        *child = Some(crate::spawn_tied(command).expect("tansu starts"));
        crate::wait_listening(&self.address, "tansu");
    }

    /// Kills the broker (SIGKILL); its data stays for [`Broker::start`].
    pub fn stop(&self) {
        crate::kill(&self.child);
    }
}

impl Default for Broker {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A topic name no other test of this process uses.
pub fn unique_topic(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
}
