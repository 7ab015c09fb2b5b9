//! What flows between the stages of one run, and the flags they share.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::contract::model::{RecordResult, SyncItem};
use crate::error::HostError;
use crate::fingerprint::Fingerprint;

/// One record on its way to the destination.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub item: SyncItem,
    pub fingerprint: Fingerprint,
    /// The mapped payload, stored as confirmed when the plugin does not echo one.
    pub payload: String,
    pub attempt: u32,
}

/// A batch the senders finished, on its way to the recorder.
pub(super) struct Sent {
    pub batch: Vec<Pending>,
    pub results: Result<Vec<RecordResult>, HostError>,
}

/// Shared by the stages of one run: why it stopped (if it did) and how much is in flight.
#[derive(Default)]
pub(super) struct RunShared {
    abort: AtomicBool,
    abort_reason: Mutex<Option<String>>,
    /// Records handed to the senders.
    pub queued: AtomicU64,
    /// Records whose results came back.
    pub done: AtomicU64,
}

impl RunShared {
    /// Stop the run; the first reason is the one reported.
    pub fn abort(&self, reason: String) {
        let mut r = self.abort_reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.abort.store(true, Ordering::SeqCst);
    }

    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
    }

    pub fn abort_reason(&self) -> Option<String> {
        self.abort_reason.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn add_queued(&self, n: usize) {
        self.queued.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Whether every queued record came back.
    pub fn settled(&self) -> bool {
        self.done.load(Ordering::Relaxed) >= self.queued.load(Ordering::Relaxed)
    }
}
