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
use tokio::task::JoinHandle;
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
    let mut task = CancelOnDrop(egress()?.spawn(work));
    match (&mut task.0).await {
        Ok(out) => Ok(out),
        Err(e) => Err(HttpError::InternalError(Some(if e.is_panic() { "the egress task panicked".into() } else { e.to_string() }))),
    }
}

/// Aborts the task when dropped before it finished.
struct CancelOnDrop<T>(JoinHandle<T>);

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
