//! Host errors, grouped by what the caller should do. Every variant keeps its cause: the
//! underlying error as a `#[source]` (or `#[from]`), or a structured value a caller can match on.

use crate::contract::model::{ErrorCategory, ErrorCode, RecordError};
use crate::egress::credentials::SecretError;
use crate::state::StateError;

/// Any underlying error, kept whole for its chain of causes.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A failure of the host or of a whole plugin call (not of one record).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    // ---- Fix the component: rebuild it or point the job at another file.
    /// The component file cannot be used.
    #[error("cannot load component {path}: {what}: {source}")]
    Load {
        /// The file.
        path: String,
        /// Which step failed, and the fix.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: Cause,
    },
    /// The component imports something outside the allowlist; it is refused.
    #[error("component {path} imports `{import}`, which destinations may not use (allowed: wasi:http, io, clocks, random, stdio and the contract's host interface)")]
    ForbiddenImport {
        /// The file.
        path: String,
        /// The first forbidden import.
        import: String,
    },

    // ---- Fix the job file or the operator's environment.
    /// The job file cannot be read.
    #[error("cannot read the job file {path}: {source}")]
    JobRead {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The job file is not valid TOML of the expected shape.
    #[error("job file {path}: {source}")]
    JobParse {
        /// The file.
        path: String,
        /// The parser's error, with the line and the key.
        #[source]
        source: toml::de::Error,
    },
    /// The configuration is wrong (the message lists every problem with its fix).
    #[error("{0}")]
    Config(String),
    /// The job's secret cannot be read.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The results target named in `[results]` cannot be opened or written.
    #[error(transparent)]
    Results(#[from] crate::results::ResultsError),
    /// A run was asked for a tenant prepared without credentials (a dry run's tenant).
    #[error("no API token available for tenant {tenant}")]
    MissingCredentials {
        /// The tenant.
        tenant: String,
    },

    // ---- The host's own environment failed: fix the machine, then run again.
    /// The engine or its linker cannot be set up.
    #[error("cannot create the engine: {0}")]
    Engine(#[source] Cause),
    /// The sync state cannot be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// The organization's lease could not be had: the coordination database failed, or the
    /// worker is shutting down (the run goes back to the shared queue either way).
    #[error(transparent)]
    Lease(#[from] crate::service::coordinator::lease::LeaseError),
    /// The source's key set could not use its temporary run files.
    #[error(transparent)]
    KeySpill(#[from] crate::source::keys::SpillError),
    /// A task of the host failed while it carried a batch; that batch failed, the run goes on.
    #[error("a host task failed while sending this batch ({reason}); the batch is retried")]
    HostTask {
        /// What happened to the task.
        reason: String,
    },

    // ---- The plugin failed this call: retried later, or fix the plugin.
    /// The plugin trapped, panicked, hit a limit or broke the contract; that call failed.
    #[error("plugin failed for tenant {tenant}: {reason}")]
    Plugin {
        /// The tenant.
        tenant: String,
        /// What happened (the trap's causes, without the guest backtrace).
        reason: String,
    },
    /// The call exceeded its wall-clock deadline.
    #[error("plugin call for tenant {tenant} exceeded its {seconds} s deadline and was stopped")]
    Deadline {
        /// The tenant.
        tenant: String,
        /// The deadline.
        seconds: u64,
    },
    /// The plugin reported a batch-level error (bad config, auth).
    #[error("{0}")]
    Batch(RecordError),

    // ---- Nothing to do: the run had already stopped for another reason.
    /// The batch was not attempted because the run stopped.
    #[error("the run stopped before this batch was sent")]
    RunStopped,
}

impl HostError {
    /// This failure as the error each record of the failed batch carries.
    pub fn to_record_error(&self) -> RecordError {
        match self {
            HostError::Batch(e) => e.clone(),
            HostError::Config(_)
            | HostError::Secret(_)
            | HostError::MissingCredentials { .. }
            | HostError::JobRead { .. }
            | HostError::JobParse { .. } => {
                RecordError::host(ErrorCode::InvalidConfig, ErrorCategory::FixConfig, self.to_string())
            }
            HostError::Deadline { .. } => {
                let mut e = RecordError::host(ErrorCode::Timeout, ErrorCategory::RetryLater, self.to_string());
                e.retryable = true;
                e
            }
            other => {
                // A trap may be a one-off (memory pressure from one odd record); retrying it once
                // more is cheap, and a deterministic failure simply fails again.
                let mut e = RecordError::host(ErrorCode::PluginFailure, ErrorCategory::RetryLater, other.to_string());
                e.retryable = true;
                e
            }
        }
    }
}
