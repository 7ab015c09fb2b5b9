//! The planner: fingerprint each mapped record and compare it with state, so that only new,
//! changed and retryable records are sent.
//!
//! Fingerprints are computed by [`crate::fingerprint`].
//!
//! # Decisions ([`decide`])
//! | state | decision | sent |
//! |---|---|---|
//! | none | `New` | yes |
//! | last outcome a success, same fingerprint | `Unchanged` | no |
//! | last outcome a success, other fingerprint | `Changed` | yes |
//! | last attempt failed, retryable | `RetryFailed(Retryable)` | yes |
//! | last attempt failed on a validation error, fingerprint differs from the failed one | `RetryFailed(ChangedSinceFailure)` | yes |
//! | last attempt failed on a validation error, same fingerprint | `StillInvalid` | no |
//!
//! An `--only-failed` run ([`decide_only_failed`]) sends every record whose last attempt failed,
//! whatever the failure (`RetryFailed(Requested)`: the operator may have fixed the cause in
//! Gladly, such as merging the duplicates of an ambiguous match), and no other record
//! (`NotSelected`).
//!
//! # Streaming
//! [`Planner::plan_batch`] takes one batch of `(row, mapped record)` pairs, looks their keys up
//! with one batched state query per 256 keys and returns the decisions; nothing is kept between
//! batches but counters, so memory is flat in the row count.

use crate::contract::model::{MappedRecord, Outcome, Row, SyncItem};
use crate::fingerprint::{Fingerprint, Fingerprinter};
use crate::state::{LastError, RecordState, StateError, SyncState};

/// Why a record is re-sent after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeCause {
    /// The record's data changed.
    Data,
    /// The mapping or the component version changed since the sync's last run.
    Context,
}

/// Why a failed record is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetryReason {
    /// The last failure was retryable.
    Retryable,
    /// A validation failure, but the record (or mapping, or version) changed since.
    ChangedSinceFailure,
    /// The operator asked to re-send the failing records (`--only-failed`).
    Requested,
}

/// What to do with one mapped record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "decision")]
pub enum Decision {
    /// No state: send.
    New,
    /// Confirmed before with another fingerprint: send.
    Changed {
        /// Data or context.
        cause: ChangeCause,
    },
    /// Confirmed with this fingerprint: do not send.
    Unchanged,
    /// The last attempt failed: send again.
    RetryFailed {
        /// Why it is retried.
        reason: RetryReason,
    },
    /// Failed validation with this very fingerprint: do not send.
    StillInvalid,
    /// An `--only-failed` run and the record is not failing: not sent, state untouched.
    NotSelected,
}

impl Decision {
    /// Whether the record goes to `sync-batch`.
    pub fn sends(&self) -> bool {
        matches!(self, Decision::New | Decision::Changed { .. } | Decision::RetryFailed { .. })
    }

    /// A short label (`new`, `changed`, `unchanged`, `retry-failed`, `still-invalid`).
    pub fn label(&self) -> &'static str {
        match self {
            Decision::New => "new",
            Decision::Changed { .. } => "changed",
            Decision::Unchanged => "unchanged",
            Decision::RetryFailed { .. } => "retry-failed",
            Decision::StillInvalid => "still-invalid",
            Decision::NotSelected => "not-selected",
        }
    }
}

/// The decision for a record with fingerprint `fp` given its state. `context_changed` only
/// labels the cause of a change.
pub fn decide(state: Option<&RecordState>, fp: Fingerprint, context_changed: bool) -> Decision {
    let Some(s) = state else { return Decision::New };
    if s.last_outcome == Outcome::Failed {
        return match &s.last_error {
            Some(e) if !e.retryable && e.fingerprint == fp => Decision::StillInvalid,
            Some(e) if !e.retryable => Decision::RetryFailed { reason: RetryReason::ChangedSinceFailure },
            _ => Decision::RetryFailed { reason: RetryReason::Retryable },
        };
    }
    if s.fingerprint == Some(fp) {
        Decision::Unchanged
    } else {
        Decision::Changed { cause: if context_changed { ChangeCause::Context } else { ChangeCause::Data } }
    }
}

/// The decision in an `--only-failed` run: every failing record is sent again, nothing else.
pub fn decide_only_failed(state: Option<&RecordState>) -> Decision {
    match state {
        Some(s) if s.last_outcome == Outcome::Failed => Decision::RetryFailed { reason: RetryReason::Requested },
        _ => Decision::NotSelected,
    }
}

/// One planned record.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Record key.
    pub key: String,
    /// Decision.
    pub decision: Decision,
    /// Fingerprint of the mapped payload (store it with the outcome).
    pub fingerprint: Fingerprint,
    /// The mapped payload.
    pub payload: String,
    /// What to send (row, known id, previous payload) when `decision.sends()`.
    pub item: Option<SyncItem>,
    /// For `StillInvalid` and `RetryFailed`: the error of the last attempt.
    pub last_error: Option<LastError>,
}

/// Counters of a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanCounts {
    /// `New`.
    pub new: u64,
    /// `Changed` (any cause).
    pub changed: u64,
    /// `Changed` because the mapping or component version changed.
    pub changed_by_context: u64,
    /// `Unchanged`.
    pub unchanged: u64,
    /// `RetryFailed`.
    pub retry_failed: u64,
    /// `StillInvalid`.
    pub still_invalid: u64,
    /// `NotSelected` (an `--only-failed` run).
    pub not_selected: u64,
}

impl PlanCounts {
    /// Records planned.
    pub fn total(&self) -> u64 {
        self.new + self.changed + self.unchanged + self.retry_failed + self.still_invalid + self.not_selected
    }

    /// Records to send.
    pub fn to_send(&self) -> u64 {
        self.new + self.changed + self.retry_failed
    }

    fn add(&mut self, d: Decision) {
        match d {
            Decision::New => self.new += 1,
            Decision::Changed { cause } => {
                self.changed += 1;
                if cause == ChangeCause::Context {
                    self.changed_by_context += 1;
                }
            }
            Decision::Unchanged => self.unchanged += 1,
            Decision::RetryFailed { .. } => self.retry_failed += 1,
            Decision::StillInvalid => self.still_invalid += 1,
            Decision::NotSelected => self.not_selected += 1,
        }
    }
}

/// How the sync's context differs from its last run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContextChange {
    /// The mapping (or mode, or settings) changed.
    pub mapping_changed: bool,
    /// The component version changed: `(previous, current)`.
    pub version_change: Option<(String, String)>,
}

/// A planner error.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// State could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// A mapped record paired with another row: a bug in the caller.
    #[error("the mapped record `{record}` was paired with row `{row}`; map results must stay in row order")]
    KeyMismatch {
        /// The row's key.
        row: String,
        /// The record's key.
        record: String,
    },
}

/// Plans one sync run batch by batch.
pub struct Planner {
    fingerprinter: Fingerprinter,
    context_change: Option<ContextChange>,
    counts: PlanCounts,
    only_failed: bool,
}

impl Planner {
    /// A planner for one sync in the given context; reads the sync's metadata to tell whether
    /// the mapping or component version changed since its last run.
    pub fn new(sync: SyncState<'_>, mapping_fingerprint: &str, component_version: &str) -> Result<Planner, PlanError> {
        let context_change = sync.meta()?.and_then(|m| {
            let mapping_changed = m.mapping_fingerprint != mapping_fingerprint;
            let version_change = (m.component_version != component_version)
                .then(|| (m.component_version.clone(), component_version.to_string()));
            (mapping_changed || version_change.is_some()).then_some(ContextChange { mapping_changed, version_change })
        });
        Ok(Planner {
            fingerprinter: Fingerprinter::new(mapping_fingerprint, component_version),
            context_change,
            counts: PlanCounts::default(),
            only_failed: false,
        })
    }

    /// Plans an `--only-failed` run: see [`decide_only_failed`].
    pub fn only_failed(mut self) -> Planner {
        self.only_failed = true;
        self
    }

    /// The fingerprinter of this plan's context.
    pub fn fingerprinter(&self) -> &Fingerprinter {
        &self.fingerprinter
    }

    /// Plans a batch: one state query per 256 keys, one [`Planned`] per input, in order.
    pub fn plan_batch(&mut self, sync: SyncState<'_>, batch: Vec<(Row, MappedRecord)>) -> Result<Vec<Planned>, PlanError> {
        for (row, rec) in &batch {
            if row.key != rec.key {
                return Err(PlanError::KeyMismatch { row: row.key.clone(), record: rec.key.clone() });
            }
        }
        let keys: Vec<&str> = batch.iter().map(|(_, r)| r.key.as_str()).collect();
        let mut known = sync.get_many(&keys)?;
        let context_changed = self.context_change.is_some();
        let mut out = Vec::with_capacity(batch.len());
        for (row, rec) in batch {
            let fp = self.fingerprinter.fingerprint(&rec.payload);
            let st = known.remove(&rec.key);
            let decision = if self.only_failed { decide_only_failed(st.as_ref()) } else { decide(st.as_ref(), fp, context_changed) };
            self.counts.add(decision);
            let (item, last_error) = match st {
                Some(s) => {
                    let err = matches!(decision, Decision::StillInvalid | Decision::RetryFailed { .. })
                        .then_some(s.last_error)
                        .flatten();
                    let item = decision
                        .sends()
                        .then_some(SyncItem { row, known_id: s.remote_id, previous_payload: s.payload });
                    (item, err)
                }
                None => (decision.sends().then_some(SyncItem { row, known_id: None, previous_payload: None }), None),
            };
            out.push(Planned { key: rec.key, decision, fingerprint: fp, payload: rec.payload, item, last_error });
        }
        Ok(out)
    }

    /// Counters so far.
    pub fn counts(&self) -> &PlanCounts {
        &self.counts
    }

    /// The context change since the sync's last run, if any.
    pub fn context_change(&self) -> Option<&ContextChange> {
        self.context_change.as_ref()
    }

    /// Why records are re-sent beyond their own changes, for `preview`:
    /// "mapping changed: 120 records will be re-sent".
    pub fn reason(&self) -> Option<String> {
        let c = self.context_change.as_ref()?;
        let what = match (c.mapping_changed, &c.version_change) {
            (true, Some((a, b))) => format!("mapping and component version ({a} → {b}) changed"),
            (true, None) => "mapping changed".to_string(),
            (false, Some((a, b))) => format!("component version changed ({a} → {b})"),
            (false, None) => return None,
        };
        let n = self.counts.changed_by_context;
        Some(format!("{what}: {n} record{} will be re-sent", if n == 1 { "" } else { "s" }))
    }
}
