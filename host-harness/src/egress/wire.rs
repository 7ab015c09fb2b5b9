//! The egress thread: the wait for a rate permit and the request that follows it run on a
//! runtime of their own.
//!
//! The runtime that runs instances also maps, plans and records for every tenant. When it is
//! busy (hundreds of organizations starting at once, a machine shared with other work), a task
//! holding a permit waits behind that work before its request is written, and permits granted
//! 104 ms apart reach the server together (13 or 14 in one second for one organization, in the
//! `orgs_per_host` benchmark). The limiter promises what the server sees, so its timers and the
//! writes they release run on one thread that does nothing else and is idle most of the time:
//! the operating system runs it as soon as a timer fires, whatever the other threads are doing.
//!
//! Lifetime: the runtime is started on first use and lives as long as the process.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};
use tokio_util::task::AbortOnDropHandle;
use wasmtime_wasi_http::Error as HttpError;

static EGRESS: OnceLock<Result<Runtime, String>> = OnceLock::new();

fn egress() -> Result<Handle, HttpError> {
    let runtime = EGRESS.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("egress")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the egress thread: {e}"))
    });
    match runtime {
        Ok(rt) => Ok(rt.handle().clone()),
        Err(e) => Err(HttpError::InternalError(Some(e.clone()))),
    }
}

/// Run `work` on the egress thread and wait for it. Dropping the returned future (the plugin's
/// call ended, its deadline passed) cancels the work, so an abandoned request is never sent.
pub async fn on_egress_thread<F>(work: F) -> Result<F::Output, HttpError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match AbortOnDropHandle::new(egress()?.spawn(work)).await {
        Ok(out) => Ok(out),
        Err(e) => Err(HttpError::InternalError(Some(if e.is_panic() { "the egress task panicked".into() } else { e.to_string() }))),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A request the plugin stops waiting for is cancelled on the egress thread, not sent later:
    /// the work's end of the channel is dropped with it.
    #[tokio::test]
    async fn dropping_the_wait_cancels_the_work() {
        let (mut tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut wait = Box::pin(on_egress_thread(async move {
            let _ = rx.await;
        }));
        tokio::select! {
            biased;
            _ = &mut wait => panic!("the work cannot finish before it is told to"),
            _ = std::future::ready(()) => {}
        }
        drop(wait);
        let cancelled = tokio::time::timeout(Duration::from_secs(30), tx.closed()).await;
        assert!(cancelled.is_ok(), "the work still runs on the egress thread after its wait was dropped");
    }

    #[tokio::test]
    async fn the_work_runs_on_the_egress_thread() {
        let name = on_egress_thread(async { std::thread::current().name().map(str::to_string) }).await.unwrap();
        assert_eq!(name.as_deref(), Some("egress"));
    }
}
