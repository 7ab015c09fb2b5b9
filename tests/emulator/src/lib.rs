//! An emulator of Gladly's customer-profile REST API for tests: a real HTTP server on the
//! loopback interface with several organizations, Basic auth, per-organization rate limits,
//! strict request validation, switches for undocumented behaviour, seeded fault injection and
//! a log of every request.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use gladly_emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::default()).await?;
//! println!("{}", emulator.base_url());
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod auth;
mod clock;
mod config;
mod error;
mod faults;
mod hostile;
mod index;
mod normalize;
mod org;
mod ratelimit;
mod recorder;
mod routes;
mod server;
mod state;
mod store;
mod validation;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    CustomAttributesPatch, DEFAULT_TOKEN, DEFAULT_USER, EmulatorConfig, ErrorsShape, Switches, User,
};
pub use error::{ErrorCode, GladlyError, error_body};
pub use faults::{Fault, FaultRule, Trigger};
pub use http::Method;
pub use normalize::{normalize_email, normalize_phone};
pub use org::{DEFAULT_ORG, org_from_host};
pub use ratelimit::LimiterShape;
pub use recorder::RecordedRequest;
pub use validation::{CREATE_SCHEMA, UPDATE_SCHEMA, validate_create_body, validate_update_body};

use state::Shared;
use store::normalize_fields;

/// Locks a mutex, carrying on after a panic elsewhere: the emulator's state stays usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running emulator. Clones share the same server; it stops on [`Emulator::shutdown`] or
/// when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Emulator {
    inner: Arc<Running>,
}

#[derive(Debug)]
struct Running {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Emulator {
    /// Starts an emulator on `127.0.0.1` with a free port.
    pub async fn start(config: EmulatorConfig) -> io::Result<Emulator> {
        Self::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts an emulator on `addr`, which must be a loopback address (port 0 picks one).
    pub async fn start_on(config: EmulatorConfig, addr: SocketAddr) -> io::Result<Emulator> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("the emulator only listens on loopback addresses, not {addr}"),
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let router = routes::router(shared.clone());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, shared.clone(), router, stop_rx));
        tracing::info!("gladly-emulator listening on http://{addr}");
        Ok(Emulator {
            inner: Arc::new(Running {
                shared,
                addr,
                stop,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Every request seen so far (since start or the last [`Emulator::clear_requests`]), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.shared.recorder.all()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.inner.shared.recorder.clear();
    }

    /// The stored profiles of an organization, whole and as the API shows them, oldest first.
    pub fn profiles(&self, org: &str) -> Vec<Value> {
        self.inner.shared.with_org(org, |s| s.all())
    }

    /// One stored profile, or `None` (also for a merged-away id).
    pub fn profile(&self, org: &str, id: &str) -> Option<Value> {
        self.inner.shared.with_org(org, |s| s.get(id).ok())
    }

    /// Seeds a profile without validation or uniqueness checks (an existing id is overwritten);
    /// returns its id (the body's `id`, or a generated one). It is searchable at once.
    pub fn insert_profile(&self, org: &str, profile: Value) -> String {
        let empty = serde_json::Map::new();
        let body = profile.as_object().unwrap_or(&empty);
        // Lenient normalization cannot fail; the fallback keeps seeding infallible anyway.
        let fields = normalize_fields(body, false).unwrap_or_default();
        let shared = &self.inner.shared;
        shared.with_org(org, |store| {
            let id = body
                .get("id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| shared.generate_id(store));
            store.put(id.clone(), fields, SystemTime::now(), Instant::now());
            id
        })
    }

    /// Merges profile `from_id` into `into_id`, as an agent would between two syncs: afterwards a
    /// GET of `from_id` answers 301 and a PATCH or DELETE of it 404. Nothing happens when either
    /// profile is missing.
    pub fn merge_profiles(&self, org: &str, from_id: &str, into_id: &str) {
        let merged = self
            .inner
            .shared
            .with_org(org, |s| s.merge(from_id, into_id, SystemTime::now()));
        if !merged {
            tracing::warn!("merge of {from_id} into {into_id} in {org} did nothing");
        }
    }

    /// Flags a profile as having open conversations (DELETE then answers 400 `invalid_state`).
    pub fn set_open_conversations(&self, org: &str, id: &str, open: bool) {
        self.inner
            .shared
            .with_org(org, |s| s.set_open_conversations(id, open));
    }

    /// Replaces the fault rules; their request counters start again.
    pub fn set_faults(&self, faults: Vec<FaultRule>) {
        lock(&self.inner.shared.faults).replace(faults);
    }

    /// Sets the delay added before answering each request.
    pub fn set_latency(&self, d: Duration) {
        self.inner.shared.set_latency(d);
    }

    /// Replaces the undocumented-behaviour switches.
    pub fn set_switches(&self, switches: Switches) {
        self.inner.shared.set_switches(switches);
    }

    /// Changes the per-organization limit of requests per second.
    pub fn set_rate_limit(&self, per_second: u32) {
        self.inner.shared.limiter.set_limit(per_second);
    }

    /// Stops accepting connections, closes open ones and waits for the server task.
    pub async fn shutdown(self) {
        let _ = self.inner.stop.send(true);
        let task = lock(&self.inner.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
