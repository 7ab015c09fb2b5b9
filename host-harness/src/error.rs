//! Host errors, grouped by what the caller should do.

use crate::contract::model::{ErrorCategory, ErrorCode, RecordError};

/// A failure of the host or of a whole plugin call (not of one record).
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The component file cannot be used; fix the path or rebuild it.
    #[error("cannot load component {path}: {reason}")]
    Load {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The component imports something outside the allowlist; it is refused.
    #[error("component {path} imports `{import}`, which destinations may not use (allowed: wasi:http, io, clocks, random, stdio and the contract's host interface)")]
    ForbiddenImport {
        /// The file.
        path: String,
        /// The first forbidden import.
        import: String,
    },
    /// The configuration is wrong; fix it.
    #[error("{0}")]
    Config(String),
    /// The plugin trapped, panicked, hit a limit or broke the contract; that call failed.
    #[error("plugin failed for tenant {tenant}: {reason}")]
    Plugin {
        /// The tenant.
        tenant: String,
        /// What happened.
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
    /// A source, state or report error.
    #[error("{0}")]
    Io(String),
}

impl HostError {
    /// This failure as the error each record of the failed batch carries.
    pub fn to_record_error(&self) -> RecordError {
        match self {
            HostError::Batch(e) => e.clone(),
            HostError::Config(m) => RecordError::host(ErrorCode::InvalidConfig, ErrorCategory::FixConfig, m.clone()),
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
