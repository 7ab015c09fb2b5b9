//! One run per sync at a time. Two runs of one sync would plan against the same state and write
//! it in an order neither chose; the second is refused instead.
//!
//! The lock is an advisory `flock` on a file beside the state database, one file per sync. The
//! kernel releases it when the holder exits, however it exits (a crash or `SIGKILL` included),
//! so a dead run never leaves a stale lock behind. Two opens of the file in one process conflict
//! too, so two tenants of one harness cannot run one sync at once either.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::state::StateError;

/// Held while a run of one sync is in progress; dropping it releases the sync.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock file of `sync_id` in `dir` (named by a hash: a sync id may hold any character).
pub fn lock_path(dir: &Path, sync_id: &str) -> PathBuf {
    let digest = hex::encode(Sha256::digest(sync_id.as_bytes()));
    dir.join(format!("run-{}.lock", &digest[..16]))
}

/// Take the run lock of `sync_id`, or fail at once when another run holds it.
pub fn lock_run(dir: &Path, sync_id: &str) -> Result<RunLock, StateError> {
    std::fs::create_dir_all(dir).map_err(|source| StateError::CreateDir { path: dir.display().to_string(), source })?;
    let path = lock_path(dir, sync_id);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StateError::CreateDir { path: path.display().to_string(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file, path }),
        Err(TryLockError::WouldBlock) => {
            Err(StateError::Busy { sync_id: sync_id.to_string(), path: path.display().to_string() })
        }
        Err(TryLockError::Error(source)) => Err(StateError::CreateDir { path: path.display().to_string(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_one_sync_is_refused_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("run-lock-test-{}", std::process::id()));
        let first = lock_run(&dir, "customers").unwrap();
        let err = lock_run(&dir, "customers").unwrap_err();
        assert!(matches!(&err, StateError::Busy { sync_id, .. } if sync_id == "customers"), "{err}");
        assert!(lock_run(&dir, "orders").is_ok(), "another sync is not blocked");
        drop(first);
        assert!(lock_run(&dir, "customers").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
