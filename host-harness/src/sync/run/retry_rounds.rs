//! Stage 5, retry: wait out each retryable record's backoff outside any instance, then send it
//! again, round after round, until nothing is queued or in flight.

use super::record::Recorder;
use super::send::Senders;
use super::work::{Pending, RunShared};

/// Drain results and resend what is due until the retry queue stays empty.
pub(super) async fn run(senders: &mut Senders, recorder: &mut Recorder<'_>, shared: &RunShared, batch_size: usize) {
    loop {
        senders.record_in_flight(recorder, shared).await;
        if recorder.retry_queue.is_empty() || shared.aborted() {
            return;
        }
        // One round waits for the latest backoff in it, so a round is sent together.
        let due = recorder.retry_queue.iter().map(|(t, _)| *t).max().unwrap_or_else(tokio::time::Instant::now);
        tokio::time::sleep_until(due).await;
        let round: Vec<Pending> = std::mem::take(&mut recorder.retry_queue).into_iter().map(|(_, p)| p).collect();
        recorder.counts.retry_attempts += round.len() as u64;
        for chunk in round.chunks(batch_size.max(1)) {
            shared.add_queued(chunk.len());
            senders.queue(chunk.to_vec(), recorder).await;
        }
    }
}
