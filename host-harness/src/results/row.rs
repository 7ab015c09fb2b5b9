//! One result row: what happened to one record in one run. The same fields in every target
//! (columns of the table, keys of a JSON Lines object).

use serde::{Deserialize, Serialize};

use crate::contract::model::{Outcome, RecordError};
use crate::state::RunId;
use crate::state::records::outcome_label;

/// What happened to one record in one run. Built only from the sync's ids, the row key, the
/// outcome and the error the sandbox already cleaned of secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRow {
    /// Unique per result (`<run nonce>-<n>`): a target holds each id at most once.
    pub result_id: String,
    /// The job's sync id.
    pub sync_id: String,
    /// The run (the state's run id).
    pub run_id: RunId,
    /// The source row's key.
    pub row_key: String,
    /// `created`, `updated`, `unchanged` (Gladly already held it), `skipped` (update mode, no
    /// such customer), `failed` (the API or the host refused it) or `rejected` (invalid row:
    /// never sent).
    pub outcome: String,
    /// The Gladly customer id, when known.
    pub gladly_id: Option<String>,
    /// Stable error code (`invalid-value`, `rate-limited`, …).
    pub error_code: Option<String>,
    /// What to do: `fix-config`, `skip-record` (fix the row) or `retry-later`.
    pub category: Option<String>,
    /// The column or field at fault.
    pub field: Option<String>,
    /// The error, in words, with its fix.
    pub message: Option<String>,
    /// The HTTP status behind the error.
    pub http_status: Option<u16>,
    /// Requests attempts made for it in this run (0: rejected before sending).
    pub attempts: u32,
    /// Whether the next run sends it again even if its data does not change.
    pub retried_next_run: bool,
    /// When the host recorded it (RFC 3339, UTC).
    pub recorded_at: String,
}

/// Stamps result rows of one run with the sync, the run and a unique id.
#[derive(Debug)]
pub struct ResultStamp {
    sync_id: String,
    run_id: RunId,
    /// Random per run: ids stay unique even when the state (and its run ids) is rebuilt.
    nonce: u64,
    next: u64,
}

impl ResultStamp {
    /// The stamp for run `run_id` of `sync_id`.
    pub fn new(sync_id: &str, run_id: RunId) -> ResultStamp {
        ResultStamp { sync_id: sync_id.to_string(), run_id, nonce: rand::random(), next: 0 }
    }

    fn row(&mut self, key: &str, outcome: &str, attempts: u32) -> ResultRow {
        self.next += 1;
        ResultRow {
            result_id: format!("{:016x}-{}", self.nonce, self.next),
            sync_id: self.sync_id.clone(),
            run_id: self.run_id,
            row_key: key.to_string(),
            outcome: outcome.to_string(),
            gladly_id: None,
            error_code: None,
            category: None,
            field: None,
            message: None,
            http_status: None,
            attempts,
            retried_next_run: false,
            recorded_at: now_rfc3339(),
        }
    }

    /// A record Gladly confirmed (`created`, `updated`, `unchanged`).
    pub fn confirmed(&mut self, key: &str, outcome: Outcome, gladly_id: Option<&str>, attempts: u32) -> ResultRow {
        let mut r = self.row(key, outcome_label(outcome), attempts);
        r.gladly_id = gladly_id.map(str::to_string);
        r
    }

    /// A record that failed or was skipped for good in this run.
    pub fn failed(&mut self, key: &str, outcome: Outcome, error: &RecordError, attempts: u32, gladly_id: Option<&str>) -> ResultRow {
        let mut r = self.row(key, outcome_label(outcome), attempts);
        r.gladly_id = gladly_id.map(str::to_string);
        r.with_error(error)
    }

    /// A row rejected before any request (by the source or the plugin's mapping).
    pub fn rejected(&mut self, key: &str, error: &RecordError) -> ResultRow {
        let mut r = self.row(key, "rejected", 0).with_error(error);
        r.retried_next_run = false;
        r
    }
}

impl ResultRow {
    fn with_error(mut self, e: &RecordError) -> ResultRow {
        self.error_code = Some(e.code.label().to_string());
        self.category = Some(e.category.label().to_string());
        self.field = e.field.clone();
        self.message = Some(e.message.clone());
        self.http_status = e.http_status;
        self.retried_next_run = e.retryable;
        self
    }
}

fn now_rfc3339() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    crate::source::unix_micros_to_rfc3339(micros).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::model::{ErrorCategory, ErrorCode};

    #[test]
    fn ids_are_unique_within_a_run_and_between_runs_with_the_same_run_id() {
        let mut a = ResultStamp::new("s", 1);
        let mut b = ResultStamp::new("s", 1);
        let ids = [a.confirmed("k", Outcome::Created, None, 1), a.confirmed("k", Outcome::Created, None, 1), b.confirmed("k", Outcome::Created, None, 1)]
            .map(|r| r.result_id);
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[0], ids[2], "a rebuilt state reuses run ids; the nonce keeps result ids apart");
    }

    #[test]
    fn a_rejected_row_carries_its_error_and_no_attempt() {
        let e = RecordError::host(ErrorCode::InvalidValue, ErrorCategory::SkipRecord, "row 7: column `email`: not an email; fix the cell");
        let r = ResultStamp::new("s", 3).rejected("7", &e);
        assert_eq!(
            (r.outcome.as_str(), r.error_code.as_deref(), r.category.as_deref(), r.attempts, r.retried_next_run),
            ("rejected", Some("invalid-value"), Some("skip-record"), 0, false)
        );
        assert_eq!(r.message.as_deref(), Some("row 7: column `email`: not an email; fix the cell"));
    }

    #[test]
    fn recorded_at_is_utc_rfc3339() {
        let r = ResultStamp::new("s", 1).confirmed("k", Outcome::Updated, Some("g1"), 1);
        assert!(r.recorded_at.ends_with('Z') && r.recorded_at.len() >= 20 && r.recorded_at.as_bytes()[10] == b'T', "{}", r.recorded_at);
    }
}
