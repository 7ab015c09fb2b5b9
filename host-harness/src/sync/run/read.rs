//! Stage 1, read: the source on a blocking thread, in chunks, into a bounded channel.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::source::{self, KeyChecker, SourceConfig, SourceItem};

/// Rows read, mapped and diffed per planning step, at most; a chunk also closes at the source's
/// `budget.chunk_bytes`, so wide rows make shorter chunks.
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
            let chunk_bytes = config.budget().chunk_bytes;
            for chunk in source::batches(&mut src, PLAN_CHUNK).max_bytes(chunk_bytes) {
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

    /// The chunks, for the stage that consumes them; the reader keeps a closed channel.
    pub fn take_chunks(&mut self) -> mpsc::Receiver<Result<Vec<SourceItem>, String>> {
        std::mem::replace(&mut self.chunks, mpsc::channel(1).1)
    }

    /// Stop reading and return the source's key set when every row was read (for the count of
    /// rows that disappeared). Whoever took the chunks must have dropped them first.
    pub async fn finish(self) -> Option<KeyChecker> {
        drop(self.chunks);
        self.keys.await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{CsvConfig, InputBudget};

    #[tokio::test]
    async fn chunks_close_at_the_sources_chunk_bytes() {
        let dir = test_kit::TempDir::new("read");
        // Each row: key "N" (1) + `id` (2) + "N" (1) + `v` (1) + 1019 bytes = 1 KiB as counted.
        let v = "z".repeat(1019);
        let body: String = (0..10).map(|i| format!("{i},{v}\n")).collect();
        let path = dir.file("t.csv", format!("id,v\n{body}").as_bytes());
        let budget = InputBudget { chunk_bytes: 3 * 1024, ..InputBudget::default() };
        let config = SourceConfig::Csv(CsvConfig { path, primary_key: "id".into(), types: Default::default(), delimiter: None, budget });
        let mut reader = Reader::spawn(config);
        let mut sizes = Vec::new();
        while let Some(chunk) = reader.chunks.recv().await {
            sizes.push(chunk.map(|c| c.len()).unwrap_or(0));
        }
        assert_eq!(sizes, [3, 3, 3, 1]);
    }
}
