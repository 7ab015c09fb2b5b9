//! The run summary and the JSON run report.

use std::path::Path;

use serde::Serialize;

use crate::contract::model::{ApiError, ErrorCategory, ErrorCode, Outcome, RecordError};
use crate::text::escape_controls;

/// Counts of one run.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Rows read from the source (valid or not).
    pub rows: u64,
    /// Rows rejected before any request: bad key, or the plugin could not map them.
    pub invalid: u64,
    /// Rows whose record had not changed since Gladly last confirmed it (0 requests).
    pub unchanged: u64,
    /// Rows that failed validation before and have not changed since (not re-sent).
    pub still_invalid: u64,
    /// Rows an `--only-failed` run did not select (not failing): not sent, state untouched.
    #[serde(default)]
    pub not_selected: u64,
    /// Records created.
    pub created: u64,
    /// Records updated.
    pub updated: u64,
    /// Records sent but left as they were (the destination already matched).
    pub confirmed_unchanged: u64,
    /// Records deliberately not written.
    pub skipped: u64,
    /// Records that failed after every retry.
    pub failed: u64,
    /// Records that failed on an earlier run and were sent again.
    pub retried_from_last_run: u64,
    /// Retry attempts made in this run.
    pub retry_attempts: u64,
    /// Keys in state that the source no longer returned (left alone).
    pub disappeared: u64,
}

impl Counts {
    /// Count one final outcome.
    pub fn add_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Updated => self.updated += 1,
            Outcome::Unchanged => self.confirmed_unchanged += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Failed => self.failed += 1,
        }
    }
}

/// One record that did not make it, for the report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailedRecord {
    /// The row key.
    pub key: String,
    /// Stable code.
    pub code: ErrorCode,
    /// What to do about it.
    pub category: ErrorCategory,
    /// Human message.
    pub message: String,
    /// Field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The API's own error detail.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_errors: Vec<ApiError>,
    /// Attempts made in this run (0 for rows rejected before sending).
    pub attempts: u32,
    /// Whether the next run will try it again even if its data does not change.
    pub retried_next_run: bool,
    /// `invalid-row` (rejected before sending), `validation` (the API rejected it: retried only
    /// once its data changes), `transient` (retried next run) or `config` (credentials,
    /// permission or egress policy: retried next run, once the configuration is fixed).
    pub kind: &'static str,
}

impl FailedRecord {
    /// Build from a record error.
    pub fn new(key: &str, e: &RecordError, attempts: u32, kind: &'static str) -> Self {
        FailedRecord {
            key: key.to_string(),
            code: e.code,
            category: e.category,
            message: e.message.clone(),
            field: e.field.clone(),
            http_status: e.http_status,
            api_errors: e.api_errors.clone(),
            attempts,
            retried_next_run: e.retryable,
            kind,
        }
    }
}

/// A mapped record a preview shows: what a sync would send for it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PreviewRecord {
    /// The row key.
    pub key: String,
    /// Why it would be sent (`new`, `changed`, `retry`, …).
    pub decision: &'static str,
    /// The payload as the plugin mapped it (canonical JSON).
    pub payload: serde_json::Value,
}

impl PreviewRecord {
    /// From a planned record's canonical payload (kept as text when it is not JSON).
    pub fn new(key: &str, decision: &'static str, payload: &str) -> Self {
        let payload = serde_json::from_str(payload).unwrap_or_else(|_| serde_json::Value::String(payload.to_string()));
        PreviewRecord { key: key.to_string(), decision, payload }
    }

    /// The record as a person reads it: its key, why it would be sent, the pretty payload. Every
    /// line is escaped for the terminal: keys and values are warehouse cells.
    pub fn render(&self) -> String {
        let pretty = serde_json::to_string_pretty(&self.payload).unwrap_or_default();
        let pretty: Vec<String> = pretty.lines().map(escape_controls).collect();
        format!("row {} ({}) would be sent as:\n{}", escape_controls(&self.key), self.decision, pretty.join("\n"))
    }
}

/// The whole run report.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Sync id.
    pub sync_id: String,
    /// The run's number in the sync state (none for a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// Tenant.
    pub tenant: String,
    /// Mode.
    pub mode: String,
    /// Plugin name and version.
    pub plugin: String,
    /// SHA-256 of the component.
    pub component_sha256: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Counts.
    pub counts: Counts,
    /// HTTP requests the plugin sent.
    pub requests: u64,
    /// 429 responses received.
    pub throttled: u64,
    /// Requests refused by the egress policy.
    pub denied: u64,
    /// Wall time, seconds.
    pub elapsed_secs: f64,
    /// Requests per second achieved.
    pub requests_per_second: f64,
    /// The organization's configured limit.
    pub rate_limit_per_second: u32,
    /// Why the run stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// Notes (mapping or component changes, disappeared rows).
    pub notes: Vec<String>,
    /// Mapped records a preview shows (`--rows`), empty for a sync.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preview: Vec<PreviewRecord>,
    /// Every record that failed or was rejected.
    pub failures: Vec<FailedRecord>,
}

/// The rows planned but not sent, beyond the unchanged ones, as a suffix of the summary line.
fn planned_aside(c: &Counts) -> String {
    let mut s = String::new();
    if c.still_invalid > 0 {
        s.push_str(&format!(", still invalid (not re-sent) {}", c.still_invalid));
    }
    if c.not_selected > 0 {
        s.push_str(&format!(", not failing (not selected by --only-failed) {}", c.not_selected));
    }
    s
}

impl RunReport {
    /// Whether any record failed (the CLI then exits non-zero).
    pub fn has_failures(&self) -> bool {
        !self.failures.is_empty() || self.aborted.is_some()
    }

    /// The human summary, a few lines. Text that came from a row, a plugin or a server is
    /// escaped, so no value can forge a line or drive the terminal.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let sync_id = escape_controls(&self.sync_id);
        let mut s = format!(
            "{}: {} rows: created {}, updated {}, unchanged {}, failed {}, skipped {}, invalid {}{}\n\
             {} requests in {:.1} s ({:.1}/s of {}/s), {} throttled (429), {} retries",
            sync_id,
            c.rows,
            c.created,
            c.updated,
            c.unchanged + c.confirmed_unchanged,
            c.failed,
            c.skipped,
            c.invalid,
            planned_aside(c),
            self.requests,
            self.elapsed_secs,
            self.requests_per_second,
            self.rate_limit_per_second,
            self.throttled,
            c.retry_attempts,
        );
        if self.dry_run {
            s.insert_str(0, "[preview] ");
        }
        for n in &self.notes {
            s.push_str(&format!("\nnote: {}", escape_controls(n)));
        }
        if let Some(a) = &self.aborted {
            s.push_str(&format!("\nstopped early: {}", escape_controls(a)));
        }
        for f in self.failures.iter().take(10) {
            let (key, message) = (escape_controls(&f.key), escape_controls(&f.message));
            s.push_str(&format!("\n  row {key}: {} ({}): {message}", f.code.label(), f.kind));
        }
        if self.failures.len() > 10 {
            s.push_str(&format!("\n  … and {} more in the report", self.failures.len() - 10));
        }
        s
    }

    /// Write the report as JSON.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }
}
