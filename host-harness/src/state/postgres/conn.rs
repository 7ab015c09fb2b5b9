//! One PostgreSQL connection on a thread of its own.
//!
//! The pipeline reads and writes state from async tasks, and the `postgres` client drives its
//! own runtime, which must not run inside another. So the client lives on a dedicated thread and
//! each call is a closure sent to it; the caller waits for the answer as it would for a SQLite
//! write.

use std::sync::mpsc;
use std::thread;

use crate::source::redact_connection_string;
use crate::state::StateError;

type Call = Box<dyn FnOnce(&mut postgres::Client) + Send>;

/// The connection's thread; dropping the handle ends the thread and closes the connection.
pub struct PgThread {
    calls: Option<mpsc::Sender<Call>>,
    thread: Option<thread::JoinHandle<()>>,
    /// The server as shown in messages (the password replaced by `***`).
    pub(crate) label: String,
}

impl PgThread {
    /// Connect to `url` (without TLS: the coordinator is reached on a private network or loopback).
    pub fn connect(url: &str) -> Result<PgThread, StateError> {
        let label = redact_connection_string(url);
        let config: postgres::Config =
            url.parse().map_err(|source| StateError::Postgres { server: label.clone(), context: "reading the connection URL", source })?;
        let (ready_tx, ready_rx) = mpsc::channel();
        let (calls, inbox) = mpsc::channel::<Call>();
        let thread_label = label.clone();
        let thread = thread::Builder::new()
            .name("state-postgres".into())
            .spawn(move || {
                let mut client = match config.connect(postgres::NoTls) {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(source) => {
                        let _ = ready_tx.send(Err(StateError::Postgres { server: thread_label, context: "connecting", source }));
                        return;
                    }
                };
                for call in inbox {
                    call(&mut client);
                }
            })
            .map_err(|source| StateError::CreateDir { path: "the PostgreSQL state thread".into(), source })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(PgThread { calls: Some(calls), thread: Some(thread), label }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StateError::Usage(format!("the PostgreSQL state thread for {label} ended before connecting"))),
        }
    }

    /// Run `f` with the client on the connection's thread and wait for its answer.
    pub fn call<R: Send + 'static>(
        &self,
        context: &'static str,
        f: impl FnOnce(&mut postgres::Client) -> Result<R, StateError> + Send + 'static,
    ) -> Result<R, StateError> {
        let (tx, rx) = mpsc::channel();
        let sent = self.calls.as_ref().map(|c| c.send(Box::new(move |client: &mut postgres::Client| {
            let _ = tx.send(f(client));
        })));
        match sent {
            Some(Ok(())) => rx.recv().unwrap_or_else(|_| Err(self.gone(context))),
            _ => Err(self.gone(context)),
        }
    }

    fn gone(&self, context: &'static str) -> StateError {
        StateError::Usage(format!("state database {}: {context}: the connection's thread has ended", self.label))
    }
}

impl Drop for PgThread {
    fn drop(&mut self) {
        drop(self.calls.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
