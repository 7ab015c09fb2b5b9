//! Stage 1, read: the source on a blocking thread, in chunks, into a bounded channel.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::source::{self, KeyChecker, SourceConfig, SourceItem};

/// Rows read, mapped and diffed per planning step.
pub(super) const PLAN_CHUNK: usize = 500;

/// The reading side of a run: chunks of rows (or the source's error), then the source's key set.
pub(super) struct Reader {
    pub chunks: mpsc::Receiver<Result<Vec<SourceItem>, String>>,
    keys: JoinHandle<Option<KeyChecker>>,
}

impl Reader {
    /// Start reading `config` on a blocking thread; at most two chunks wait unplanned.
    pub fn spawn(config: SourceConfig) -> Reader {
        let (tx, chunks) = mpsc::channel::<Result<Vec<SourceItem>, String>>(2);
        let keys = tokio::task::spawn_blocking(move || {
            let mut src = match source::open(&config) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e.to_string()));
                    return None;
                }
            };
            for chunk in source::batches(&mut src, PLAN_CHUNK) {
                let msg = chunk.map_err(|e| e.to_string());
                let stop = msg.is_err();
                if tx.blocking_send(msg).is_err() || stop {
                    return None;
                }
            }
            Some(src.into_keys())
        });
        Reader { chunks, keys }
    }

    /// Stop reading and return the source's key set when every row was read (for the count of
    /// rows that disappeared).
    pub async fn finish(self) -> Option<KeyChecker> {
        drop(self.chunks);
        self.keys.await.ok().flatten()
    }
}
