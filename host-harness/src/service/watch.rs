//! Noticing changes to the job folder (`notify`: inotify on Linux) and rescanning it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{mpsc, watch};

use crate::service::catalog;
use crate::service::registry::Registry;

/// Events closer together than this are one change (an editor writes a file in several steps).
pub const SETTLE: Duration = Duration::from_millis(200);

/// Watches `dir`; every change sends a unit on the returned channel. The watcher stops when
/// dropped.
pub fn watch_folder(dir: &Path) -> Result<(RecommendedWatcher, mpsc::UnboundedReceiver<()>), String> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut w = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    })
    .map_err(|e| format!("cannot watch the job folder {}: {e}", dir.display()))?;
    w.watch(dir, RecursiveMode::NonRecursive).map_err(|e| format!("cannot watch the job folder {}: {e}", dir.display()))?;
    Ok((w, rx))
}

/// Rescan `dir` into `registry` after each settled burst of changes, until `stop`.
pub async fn rescan_on_change(dir: PathBuf, registry: Arc<Registry>, mut changes: mpsc::UnboundedReceiver<()>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            c = changes.recv() => if c.is_none() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        // Let the burst settle, then read the folder once.
        loop {
            match tokio::time::timeout(SETTLE, changes.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        match catalog::scan(&dir) {
            Ok(c) => {
                tracing::info!("job folder changed: {} job(s), {} unusable file(s)", c.jobs.len(), c.problems.len());
                for p in &c.problems {
                    tracing::warn!("{}: {}", p.file, p.error);
                }
                registry.apply(c, Utc::now());
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
}
