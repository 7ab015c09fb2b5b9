//! Failed-row triage: the rows of a sync that currently fail, grouped by error code, each group
//! with the fix its errors name. Two sources: state, for the records whose last attempt failed;
//! a dry run over the source, for the rows refused before sending (invalid rows never reach
//! state). `destination-host failures` prints it; `sync --only-failed` then re-sends the failed
//! records (the invalid ones are checked again on every run anyway).

use std::collections::BTreeMap;

use crate::error::HostError;
use crate::job::JobConfig;
use crate::state::{STATE_FILE, State};
use crate::sync::report::FailedRecord;
use crate::text::escape_controls;

/// Keys listed per group before "… and N more".
const KEYS_SHOWN: usize = 20;

/// The failing records of one error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureGroup {
    /// The stable error code (`rejected`, `conflict`, …).
    pub code: String,
    /// The fix the first record's message names (the text after `Fix:`), if any.
    pub fix: Option<String>,
    /// One message of the group, as an example.
    pub example: String,
    /// Whether the host retries these on the next run by itself (the last failure was
    /// retryable); the others wait for their data to change, or for `--only-failed`.
    pub retried_next_run: bool,
    /// Refused before sending (the row itself is invalid): fixed only in the source.
    pub invalid_row: bool,
    /// The failing keys, in key order.
    pub keys: Vec<String>,
}

/// An error naming the fix when the job's sync has never run (no state file). Call it before
/// anything that opens the state: opening creates the file.
pub fn require_state(job: &JobConfig) -> Result<(), HostError> {
    if job.sync.state_dir.join(STATE_FILE).exists() {
        return Ok(());
    }
    Err(HostError::Config(format!(
        "sync `{}` has no state in {} yet: run `destination-host sync` first",
        job.sync.id,
        job.sync.state_dir.display()
    )))
}

/// The failing rows of the job's sync, grouped by code (codes in order): the records whose last
/// attempt failed, from state, and `invalid` (the invalid-row failures of a dry run of the job).
pub fn failures(job: &JobConfig, invalid: &[FailedRecord]) -> Result<Vec<FailureGroup>, HostError> {
    let state = State::open(&job.sync.state_dir)?;
    let mut groups: BTreeMap<String, FailureGroup> = BTreeMap::new();
    let mut add = |key: String, code: &str, message: &str, retryable: bool, invalid_row: bool| {
        let group = groups.entry(code.to_string()).or_insert_with(|| FailureGroup {
            code: code.to_string(),
            fix: message.split_once("Fix: ").map(|(_, fix)| fix.trim().to_string()),
            example: message.to_string(),
            retried_next_run: retryable,
            invalid_row,
            keys: Vec::new(),
        });
        group.keys.push(key);
    };
    for record in state.sync(&job.sync.id).failures(usize::MAX)? {
        if let Some(error) = record.last_error {
            add(record.key, &error.code, &error.message, error.retryable, false);
        }
    }
    for f in invalid.iter().filter(|f| f.kind == "invalid-row") {
        add(f.key.clone(), f.code.label(), &f.message, false, true);
    }
    let mut out: Vec<FailureGroup> = groups.into_values().collect();
    for g in &mut out {
        g.keys.sort();
    }
    Ok(out)
}

/// The triage as text: a line per group with its count and fix, then its keys.
pub fn render(sync_id: &str, groups: &[FailureGroup]) -> String {
    let total: usize = groups.iter().map(|g| g.keys.len()).sum();
    let sync_id = escape_controls(sync_id);
    if total == 0 {
        return format!("no failing rows in sync `{sync_id}`");
    }
    let mut s = format!("{total} failing row(s) in sync `{sync_id}`, by error code:");
    for g in groups {
        let n = g.keys.len();
        s.push_str(&format!("\n\n{} ({n} row{})", escape_controls(&g.code), if n == 1 { "" } else { "s" }));
        s.push_str(if g.invalid_row {
            ": refused before sending, fix the source row"
        } else if g.retried_next_run {
            ": retried by the next run"
        } else {
            ": not retried until the row changes (or --only-failed)"
        });
        match &g.fix {
            Some(fix) => s.push_str(&format!("\n  fix: {}", escape_controls(fix))),
            None => s.push_str(&format!("\n  e.g.: {}", escape_controls(&g.example))),
        }
        let shown: Vec<String> = g.keys.iter().take(KEYS_SHOWN).map(|k| escape_controls(k)).collect();
        s.push_str(&format!("\n  rows: {}", shown.join(", ")));
        if n > KEYS_SHOWN {
            s.push_str(&format!(" … and {} more", n - KEYS_SHOWN));
        }
    }
    s.push_str("\n\nRe-send just these rows: destination-host sync --only-failed --config <job>");
    s
}
