//! Keeps a log of every request for tests to inspect.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::faults::Fault;
use crate::lock;

/// One request as the emulator saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// 1-based position among all requests since the emulator started.
    pub ordinal: u64,
    /// When it arrived, measured from the emulator's start.
    pub at: Duration,
    /// HTTP method.
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Organization taken from the Host header.
    pub org: String,
    /// Status answered; `None` while in flight or when the connection was dropped.
    pub status: Option<u16>,
    /// The request body, when it was JSON.
    pub body: Option<Value>,
    /// Request headers (lower-case names) in arrival order.
    pub headers: Vec<(String, String)>,
    /// The injected fault, if any.
    pub fault: Option<Fault>,
}

impl RecordedRequest {
    /// The value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The request log.
#[derive(Debug)]
pub(crate) struct Recorder {
    start: Instant,
    entries: Mutex<Vec<RecordedRequest>>,
}

impl Recorder {
    pub(crate) fn new(start: Instant) -> Self {
        Recorder {
            start,
            entries: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.start)
    }

    pub(crate) fn push(&self, entry: RecordedRequest) {
        lock(&self.entries).push(entry);
    }

    /// Sets the answered status of a request (searched from the end: recent requests finish first).
    pub(crate) fn finish(&self, ordinal: u64, status: Option<u16>) {
        let mut entries = lock(&self.entries);
        if let Some(e) = entries.iter_mut().rev().find(|e| e.ordinal == ordinal) {
            e.status = status;
        }
    }

    pub(crate) fn all(&self) -> Vec<RecordedRequest> {
        lock(&self.entries).clone()
    }

    pub(crate) fn clear(&self) {
        lock(&self.entries).clear();
    }
}
