//! Real servers for Oriel's tests, started on 127.0.0.1 and gone with the test process.
//!
//! - [`kafka`]: a Kafka-protocol broker (`tansu`, installed by `scripts/test`).

#![allow(clippy::expect_used, clippy::panic)] // A fixture that cannot start fails the test that asked for it.

pub mod kafka;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

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
