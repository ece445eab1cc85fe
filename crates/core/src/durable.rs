//! Durable file writes and the data-directory lock, in one place.
//!
//! Everything Oriel keeps on disk besides segment data (the log's metadata and consumer table, the
//! store's manifest, the cookieless salt, credentials) is written with [`atomic_write`]: a
//! temporary file, `fsync`, `rename` over the old file, `fsync` of the directory. A crash at any
//! moment leaves either the old or the new content, never a mix, and once it returns the new
//! content survives power loss. [`DirLock`] keeps two processes from opening the same directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Writes `bytes` to `path` atomically and durably. `mode` sets Unix permissions of a new file
/// (credentials use `0o600`); `None` keeps the process default.
pub fn atomic_write(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    let dir = parent(path);
    fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// `fsync`s a directory, so entries created, renamed or removed in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// How long [`DirLock::acquire`] keeps trying before it reports the directory as in use.
///
/// A `flock` belongs to the open file description, and `fork` copies descriptors: a child that a
/// thread of this process forks (tests and tools spawn processes) holds the lock until it `exec`s,
/// which closes the close-on-exec copy. So a lock released by `close()` can stay held for the
/// instant between another thread's fork and exec. Locks that forks do not inherit (classic POSIX
/// record locks) do not conflict within one process, so they cannot guard against a second open
/// in the same process. Waiting a bounded time covers the fork window; a real second process
/// holds the lock for longer and is still reported.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// An exclusive lock on a directory (`flock` on its `LOCK` file), released on drop.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir`, waiting up to [`LOCK_WAIT`] for a holder to let go. The error
    /// says another process holds it.
    pub fn acquire(dir: &Path) -> io::Result<Self> {
        Self::acquire_within(dir, LOCK_WAIT)
    }

    /// [`DirLock::acquire`] with a chosen wait.
    pub(crate) fn acquire_within(dir: &Path, wait: Duration) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let path = dir.join("LOCK");
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file, path }),
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        format!("{} is held by another process; stop the other oriel first", path.display()),
                    ));
                }
                Err(fs::TryLockError::Error(error)) => return Err(error),
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret");
        atomic_write(&path, b"one", Some(0o600)).unwrap();
        atomic_write(&path, b"two", Some(0o600)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert!(!dir.path().join("sub/secret.tmp").exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_held_lock_is_reported_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire_within(dir.path(), Duration::from_millis(50)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(err.to_string().contains("held by another process"), "{err}");
        drop(first);
        // The full wait, not an instant attempt: the fork test beside this one holds copies of
        // every descriptor of this process, this lock's too, for 300 ms.
        DirLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn a_lock_released_while_a_forked_child_still_holds_its_copy_is_taken_once_the_child_goes() {
        // What a child forked by another thread does between fork and exec: it holds a copy of
        // every descriptor, the lock's too. Here the child keeps it for 300 ms, then exits; a
        // reopen in the meantime must wait for it instead of failing as "held by another
        // process" (which an immediate attempt does).
        let dir = tempfile::tempdir().unwrap();
        let lock = DirLock::acquire(dir.path()).unwrap();
        // SAFETY: the child calls only async-signal-safe functions (nanosleep, _exit).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let pause = libc::timespec { tv_sec: 0, tv_nsec: 300_000_000 };
            // SAFETY: see above; the child never returns into the test harness.
            unsafe {
                libc::nanosleep(&pause, std::ptr::null_mut());
                libc::_exit(0);
            }
        }
        drop(lock);
        assert!(
            DirLock::acquire_within(dir.path(), Duration::ZERO).is_err(),
            "the child's copy of the descriptor keeps the lock"
        );
        let started = std::time::Instant::now();
        DirLock::acquire(dir.path()).unwrap();
        assert!(started.elapsed() < LOCK_WAIT);
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
    }
}
