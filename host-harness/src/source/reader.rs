//! What every reader shares: the raw record it produces, the trait it implements, the worker
//! thread that feeds database readers through a bounded channel, and opening a file or stdin.

use crate::contract::model::{Column, ErrorCategory, ErrorCode, RecordError};
use crate::source::SourceError;

/// A record as a reader produced it, before hints and key checks.
pub(crate) struct RawRecord {
    /// 1-based record ordinal.
    pub record: u64,
    /// 1-based file line, when there are lines.
    pub line: Option<u64>,
    /// Cells read (possibly partial when `error` is set).
    pub columns: Vec<Column>,
    /// Why the record cannot be used as read.
    pub error: Option<RecordError>,
}

/// A reader of one kind of source.
pub(crate) trait Reader: Send {
    /// Columns known when opened.
    fn columns(&self) -> &[String];
    /// For messages.
    fn describe(&self) -> &str;
    /// The next record; `None` at the end.
    fn next_record(&mut self) -> Option<Result<RawRecord, SourceError>>;
}

/// An invalid-row error for a column.
pub(crate) fn cell_error(code: ErrorCode, column: &str, message: impl Into<String>) -> RecordError {
    let mut e = RecordError::host(code, ErrorCategory::SkipRecord, message);
    e.field = Some(column.to_string());
    e
}

/// A reader fed by a worker thread through a bounded channel of chunks.
pub(crate) struct ChannelReader {
    columns: Vec<String>,
    describe: String,
    rx: std::sync::mpsc::Receiver<Vec<Result<RawRecord, SourceError>>>,
    current: std::vec::IntoIter<Result<RawRecord, SourceError>>,
    finished: bool,
}

/// What a worker says first: its columns, or why it could not start.
pub(crate) type Ready = Result<Vec<String>, SourceError>;

impl ChannelReader {
    /// Starts `work` on a thread; it must send `Ready` on its first channel before any chunk.
    pub(crate) fn spawn<F>(describe: String, work: F) -> Result<Self, SourceError>
    where
        F: FnOnce(std::sync::mpsc::SyncSender<Ready>, std::sync::mpsc::SyncSender<Vec<Result<RawRecord, SourceError>>>)
            + Send
            + 'static,
    {
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        std::thread::Builder::new()
            .name("source-reader".into())
            .spawn(move || work(ready_tx, tx))
            .map_err(|e| SourceError::Config(format!("cannot start the reader thread: {e}")))?;
        let columns = match ready_rx.recv() {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(SourceError::Worker(describe)),
        };
        Ok(ChannelReader { columns, describe, rx, current: Vec::new().into_iter(), finished: false })
    }
}

impl Reader for ChannelReader {
    fn columns(&self) -> &[String] {
        &self.columns
    }
    fn describe(&self) -> &str {
        &self.describe
    }
    fn next_record(&mut self) -> Option<Result<RawRecord, SourceError>> {
        loop {
            if let Some(r) = self.current.next() {
                return Some(r);
            }
            if self.finished {
                return None;
            }
            match self.rx.recv() {
                Ok(chunk) if chunk.is_empty() => {
                    // An empty chunk is the worker's "done".
                    self.finished = true;
                    return None;
                }
                Ok(chunk) => self.current = chunk.into_iter(),
                Err(_) => {
                    self.finished = true;
                    return Some(Err(SourceError::Worker(self.describe.clone())));
                }
            }
        }
    }
}

/// Opens a file or, for `-`, standard input.
pub(crate) fn open_input(path: &std::path::Path) -> Result<Box<dyn std::io::Read + Send>, SourceError> {
    if path.as_os_str() == "-" {
        Ok(Box::new(std::io::stdin()))
    } else {
        std::fs::File::open(path)
            .map(|f| Box::new(f) as Box<dyn std::io::Read + Send>)
            .map_err(|source| SourceError::Open { path: path.display().to_string(), source })
    }
}
