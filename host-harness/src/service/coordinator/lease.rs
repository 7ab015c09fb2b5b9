//! Per-organization leases: one worker drives an organization at a time.
//!
//! A lease is a row in `destination_host.leases`: holder, expiry (the database's clock) and a
//! fencing token that grows with every grant. A worker takes a lease only once it has expired (or
//! never existed), keeps it by renewing it every third of its length, and hands it back when its
//! run ends, set to expire one limiter window later (the server still counts the last second's
//! requests; the next owner must not stack a second's worth on them). Two guards follow the grant
//! into the run:
//!
//! - **No request past the local deadline.** The deadline is counted from *before* the grant was
//!   asked for, minus a one-second margin, on this process's monotonic clock (which keeps running
//!   while the process is stopped); the organization's limiter refuses every permit after it. So
//!   a worker's last request precedes the earliest moment another worker can be granted the lease
//!   by at least the limiter's one-second window.
//! - **No state write without the token.** The run's state is opened with the grant's
//!   [`Fence`]; each write transaction first checks the row still carries it (see
//!   `state::postgres`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::egress::ratelimit::OrgLimiter;
use crate::state::postgres::Fence;

/// Between the lease's local deadline and its expiry in the database.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(1);

/// How often a worker waiting for a held lease asks again.
const WAIT_STEP: Duration = Duration::from_millis(250);

/// The coordinator's own connection (leases and schedule slots), shared by the worker's tasks.
pub struct LeaseBook {
    client: tokio_postgres::Client,
    holder: String,
    ttl: Duration,
}

/// A lease this worker holds.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The organization and the grant's token.
    pub fence: Fence,
    /// The local deadline: no request after it.
    pub deadline: Instant,
}

/// Why a lease could not be had or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The coordination database failed.
    #[error("the coordination database failed while {context}: {source}")]
    Database {
        /// What was being done.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The worker is shutting down.
    #[error("the worker is shutting down")]
    Stopping,
}

impl LeaseBook {
    /// A book on `client` for the worker `holder`, granting leases of `ttl`.
    pub fn new(client: tokio_postgres::Client, holder: String, ttl: Duration) -> LeaseBook {
        LeaseBook { client, holder, ttl }
    }

    /// The worker's id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The lease length.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    fn local_deadline(&self, asked_at: Instant) -> Instant {
        asked_at + self.ttl.saturating_sub(SAFETY_MARGIN)
    }

    /// Take `org`'s lease once it is free (waiting while another worker holds it), until `stop`.
    pub async fn acquire(&self, org: &str, stop: &mut watch::Receiver<bool>) -> Result<Grant, LeaseError> {
        loop {
            if *stop.borrow() {
                return Err(LeaseError::Stopping);
            }
            let asked_at = Instant::now();
            let row = self
                .client
                .query_opt(
                    "INSERT INTO destination_host.leases (org, holder, token, expires_at)
                     VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond')
                     ON CONFLICT (org) DO UPDATE SET holder = excluded.holder, token = leases.token + 1,
                         expires_at = excluded.expires_at
                     WHERE leases.expires_at <= clock_timestamp()
                     RETURNING token",
                    &[&org, &self.holder, &(self.ttl_ms() as f64)],
                )
                .await
                .map_err(|source| LeaseError::Database { context: "taking a lease", source })?;
            if let Some(row) = row {
                let token: i64 = row.get(0);
                self.client
                    .execute("INSERT INTO destination_host.lease_grants (org, token, holder) VALUES ($1, $2, $3)", &[&org, &token, &self.holder])
                    .await
                    .map_err(|source| LeaseError::Database { context: "logging a grant", source })?;
                return Ok(Grant { fence: Fence { org: org.to_string(), token }, deadline: self.local_deadline(asked_at) });
            }
            tokio::select! {
                _ = tokio::time::sleep(WAIT_STEP) => {}
                _ = stop.wait_for(|s| *s) => return Err(LeaseError::Stopping),
            }
        }
    }

    /// Extend a held lease; `Ok(None)` when it is no longer ours (it expired and was taken).
    pub async fn renew(&self, fence: &Fence) -> Result<Option<Instant>, LeaseError> {
        let asked_at = Instant::now();
        let n = self
            .client
            .execute(
                "UPDATE destination_host.leases SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
                 WHERE org = $1 AND token = $2 AND expires_at > clock_timestamp()",
                &[&fence.org, &fence.token, &(self.ttl_ms() as f64)],
            )
            .await
            .map_err(|source| LeaseError::Database { context: "renewing a lease", source })?;
        Ok((n == 1).then(|| self.local_deadline(asked_at)))
    }

    /// Hand a lease back. It expires `quiet` from now (the limiter's window): the server still
    /// counts this worker's last requests for that long, and the next owner must not add a full
    /// second's worth on top of them.
    pub async fn release(&self, fence: &Fence, quiet: Duration) -> Result<(), LeaseError> {
        let quiet_ms = quiet.as_millis() as f64;
        self.client
            .execute(
                "UPDATE destination_host.leases SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
                 WHERE org = $1 AND token = $2 AND expires_at > clock_timestamp()",
                &[&fence.org, &fence.token, &quiet_ms],
            )
            .await
            .map(|_| ())
            .map_err(|source| LeaseError::Database { context: "handing a lease back", source })
    }

    /// Claim schedule slot `slot` of `sync_id`: `true` for the one worker that moves it forward.
    pub async fn claim_slot(&self, sync_id: &str, slot: chrono::DateTime<chrono::Utc>) -> Result<bool, LeaseError> {
        let slot = std::time::SystemTime::from(slot);
        let n = self
            .client
            .execute(
                "INSERT INTO destination_host.schedule (sync_id, last_slot) VALUES ($1, $2)
                 ON CONFLICT (sync_id) DO UPDATE SET last_slot = excluded.last_slot WHERE schedule.last_slot < excluded.last_slot",
                &[&sync_id, &slot],
            )
            .await
            .map_err(|source| LeaseError::Database { context: "claiming a schedule slot", source })?;
        Ok(n == 1)
    }
}

/// Keeps a grant alive for the length of one run: renews it every third of its length and moves
/// the limiter's deadline forward. When the lease cannot be renewed before its local deadline,
/// the limiter stays shut and `lost` turns true, which stops the run.
pub async fn keep(book: Arc<LeaseBook>, grant: Grant, limiter: Arc<OrgLimiter>, lost: watch::Sender<bool>, mut done: watch::Receiver<bool>) {
    let mut deadline = grant.deadline;
    limiter.set_lease_deadline(Some(deadline));
    let every = book.ttl() / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = done.wait_for(|d| *d) => return,
        }
        match book.renew(&grant.fence).await {
            Ok(Some(next)) => {
                deadline = next;
                limiter.set_lease_deadline(Some(deadline));
            }
            Ok(None) => {
                tracing::warn!(org = %grant.fence.org, token = grant.fence.token, "the lease was taken over; stopping the run");
                limiter.set_lease_deadline(Some(Instant::now()));
                let _ = lost.send(true);
                return;
            }
            Err(e) if Instant::now() < deadline => tracing::warn!(org = %grant.fence.org, "cannot renew the lease yet: {e}"),
            Err(e) => {
                tracing::warn!(org = %grant.fence.org, "the lease ran out unrenewed ({e}); stopping the run");
                let _ = lost.send(true);
                return;
            }
        }
    }
}
