//! One PostgreSQL connection on a thread of its own.
//!
//! The pipeline reads and writes state from async tasks, and the `postgres` client drives its
//! own runtime, which must not run inside another. So the client lives on a dedicated thread and
//! each call is a closure sent to it; the caller waits for the answer as it would for a SQLite
//! write.

use std::sync::mpsc;
use std::thread;

use crate::state::StateError;

type Call = Box<dyn FnOnce(&mut postgres::Client) + Send>;

/// The connection's thread; dropping the handle ends the thread and closes the connection.
pub struct PgThread {
    calls: Option<mpsc::Sender<Call>>,
    thread: Option<thread::JoinHandle<()>>,
    /// The server as shown in messages (no user name, no password).
    pub(crate) label: String,
}

impl PgThread {
    /// Connect to `url` (without TLS: the coordinator is reached on a private network or loopback).
    pub fn connect(url: &str) -> Result<PgThread, StateError> {
        let label = redacted(url);
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

/// `postgres://user:secret@host:5432/db?x=y` as `postgres://host:5432/db`: a connection URL may
/// carry a password, and messages never do.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "postgres (URL not shown)".into() };
    let rest = rest.rsplit_once('@').map(|(_, host)| host).unwrap_or(rest);
    let rest = rest.split_once('?').map(|(h, _)| h).unwrap_or(rest);
    format!("{scheme}://{rest}")
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn a_url_is_shown_without_its_user_password_or_options() {
        assert_eq!(redacted("postgres://app:hunter2@db.internal:5432/sync?sslmode=require"), "postgres://db.internal:5432/sync");
        assert_eq!(redacted("postgresql://127.0.0.1/test"), "postgresql://127.0.0.1/test");
        assert_eq!(redacted("host=127.0.0.1 password=hunter2"), "postgres (URL not shown)");
    }
}
