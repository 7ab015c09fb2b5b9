//! State calls from the run's async task.
//!
//! The ledger's reads and writes block (a SQLite transaction; with a coordinator, a round trip
//! and a commit on the PostgreSQL connection's thread). Run as they are on one of the runtime's
//! few worker threads, they hold up every other organization's tasks scheduled there: their
//! rate permits are granted late and their requests leave in bunches. So the run's task tells
//! the runtime it is about to block, and the runtime moves the worker's other tasks elsewhere.

/// Run `f`, which blocks, without holding up the runtime's other tasks (on a multi-threaded
/// runtime; a current-thread runtime has nowhere else to run them, so `f` simply runs).
pub fn off_the_runtime<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
