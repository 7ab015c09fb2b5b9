//! Where and when the key sets spill to disk, and what a failed spill says.

use std::path::{Path, PathBuf};

/// Key hashes held in memory before they are spilled as a sorted run: 7/8 of a 2^17-slot hash
/// table (2.1 MiB), the size a 100k-key run needs anyway, so small sources never touch the disk.
pub const MEMORY_KEYS: usize = (1 << 17) / 8 * 7;

/// Where run files go and how many keys stay in memory before a spill.
#[derive(Debug, Clone)]
pub struct SpillConfig {
    /// The folder of the run files (the system temporary folder by default: `TMPDIR`).
    pub dir: PathBuf,
    /// Keys held in memory before spilling (at least 1).
    pub memory_keys: usize,
}

impl Default for SpillConfig {
    fn default() -> Self {
        SpillConfig { dir: std::env::temp_dir(), memory_keys: MEMORY_KEYS }
    }
}

/// A run file could not be created, written or read back.
#[derive(Debug, thiserror::Error)]
#[error(
    "the key set could not {what} a temporary run file in {dir} ({source}); a source of more than {memory_keys} keys keeps them there: free disk space there or point TMPDIR at a writable folder"
)]
pub struct SpillError {
    /// The step: `create`, `write`, `read`.
    pub what: &'static str,
    /// The folder.
    pub dir: String,
    /// Keys held in memory before spilling.
    pub memory_keys: usize,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

impl SpillConfig {
    /// A wrapper turning an I/O error of step `what` into a [`SpillError`] naming this folder.
    pub(crate) fn err(&self, what: &'static str) -> impl Fn(std::io::Error) -> SpillError + '_ {
        move |source| SpillError { what, dir: display(&self.dir), memory_keys: self.memory_keys, source }
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
