//! A temporary folder removed on drop (set `CONFORMANCE_KEEP_TMP=1` to keep it for a post-mortem).

use std::path::Path;

/// A fresh folder under the system temp dir (made by the `tempfile` crate).
#[derive(Debug)]
pub struct TempDir {
    dir: tempfile::TempDir,
}

impl TempDir {
    /// Creates `conformance-{label}-XXXXXX`.
    pub fn new(label: &str) -> TempDir {
        let safe: String = label.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let prefix = format!("conformance-{safe}-");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix);
        if std::env::var_os("CONFORMANCE_KEEP_TMP").is_some() {
            builder.disable_cleanup(true);
        }
        let dir = builder.tempdir().unwrap_or_else(|e| panic!("cannot create a temporary folder: {e}"));
        TempDir { dir }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
