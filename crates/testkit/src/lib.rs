//! Real servers for Oriel's tests, started on 127.0.0.1 and gone with the test process.
//!
//! - [`kafka`]: a Kafka-protocol broker (`tansu`, installed by `scripts/test`).
//! - [`s3`]: an S3-protocol server (`s3s-fs`, installed by `scripts/test`).

#![allow(clippy::expect_used, clippy::panic)] // A fixture that cannot start fails the test that asked for it.

pub mod kafka;
pub mod s3;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The installed binary `name`: the path in the variable `env`, else `name` on the `PATH`, else
/// `~/.cargo/bin/<name>`. Panics naming `what` it is and the command that installs it.
pub(crate) fn installed(name: &str, env: &str, what: &str, install: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin").join(name));
    on_path
        .or(home.filter(|p| p.is_file()))
        .unwrap_or_else(|| panic!("{name} ({what}) is not installed; scripts/test installs it: {install}"))
}

/// Kills the process in `child` (SIGKILL), if there is one, and reaps it.
pub(crate) fn kill(child: &std::sync::Mutex<Option<Child>>) {
    if let Some(mut child) = child.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Waits until something accepts connections at `address` (`host:port`), for up to 30 s.
pub(crate) fn wait_listening(address: &str, what: &str) {
    let address: std::net::SocketAddr = address.parse().expect("an address");
    let asked = Instant::now();
    while std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
        assert!(asked.elapsed() < Duration::from_secs(30), "{what} did not listen on {address} within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `command` so that it dies with this process even when the tests end abruptly: it is
/// spawned from a thread that lives as long as the process, with the parent-death signal set.
pub(crate) fn spawn_tied(mut command: Command) -> std::io::Result<Child> {
    // SAFETY: prctl only changes this (forked, not yet exec'd) child's own death signal; it
    // allocates nothing and touches no shared state.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    // The death signal fires when the spawning *thread* ends, so spawn from one that never does.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(command.spawn());
        loop {
            std::thread::park();
        }
    });
    rx.recv().expect("the spawning thread answers")
}
