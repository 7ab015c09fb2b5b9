//! Progress of a run: a live bar on a terminal, a plain line every few seconds otherwise.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::Instant;

use crate::sync::report::Counts;

/// How often a non-terminal run logs a progress line.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Progress display of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    tenant: String,
    started: Instant,
    last_log: Mutex<Instant>,
    planned: Mutex<(u64, u64)>,
}

impl Progress {
    /// A bar when `terminal`, else periodic log lines.
    pub fn new(terminal: bool, tenant: &str) -> Self {
        let bar = terminal.then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} sent, ETA {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress { bar, tenant: tenant.to_string(), started: Instant::now(), last_log: Mutex::new(Instant::now()), planned: Mutex::new((0, 0)) }
    }

    /// Rows read so far and records queued to send.
    pub fn planned(&self, rows: u64, queued: u64) {
        *self.planned.lock().unwrap_or_else(|p| p.into_inner()) = (rows, queued);
        if let Some(b) = &self.bar {
            b.set_length(queued);
            b.set_message(format!("{rows} rows mapped"));
        }
    }

    /// Records finished so far.
    pub fn sent(&self, done: u64, counts: &Counts) {
        let (rows, queued) = *self.planned.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / elapsed;
        if let Some(b) = &self.bar {
            b.set_position(done);
            b.set_message(format!("{rows} rows mapped, {rate:.1} records/s"));
            return;
        }
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= LOG_EVERY {
            *last = Instant::now();
            let eta = if rate > 0.0 { (queued.saturating_sub(done)) as f64 / rate } else { 0.0 };
            eprintln!(
                "[{}] {rows} rows mapped, {done}/{queued} records sent ({rate:.1}/s, ETA {eta:.0} s): created {}, updated {}, failed {}",
                self.tenant, counts.created, counts.updated, counts.failed
            );
        }
    }

    /// Clear the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
