//! Temporary folders and unique names. Every test that writes files gets its own folder, removed
//! when the test ends (set `TEST_KEEP_TMP=1` to keep them for a post-mortem); names that must
//! not collide across tests and processes (tokens, tables, environment variables) come from
//! [`unique`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Environment variable that keeps every temporary folder after the test.
pub const KEEP_ENV: &str = "TEST_KEEP_TMP";

/// A fresh folder under the system temp dir (made by the `tempfile` crate), removed on drop.
#[derive(Debug)]
pub struct TempDir {
    dir: tempfile::TempDir,
}

impl TempDir {
    /// Creates `test-{label}-XXXXXX` (characters other than letters, digits and `-` become `_`).
    pub fn new(label: &str) -> TempDir {
        let safe: String = label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let prefix = format!("test-{safe}-");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        if std::env::var_os(KEEP_ENV).is_some() {
            builder.disable_cleanup(true);
        }
        let dir = builder.tempdir().unwrap_or_else(|e| panic!("cannot create a temporary folder: {e}"));
        TempDir { dir }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the folder.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file inside the folder and returns its path.
    pub fn file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(name);
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", p.display()));
        p
    }
}

/// A value unique to this process and call, for tokens, table names and sync ids.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{tag}{}x{}x{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst), nanos % 1_000_000_007)
}

