//! The runner's view of sync state: plans each chunk against what the destination last
//! confirmed, and records outcomes. State advances only for confirmed records.
//! Every method that reads or writes state blocks, so each tells the runtime first
//! ([`off_the_runtime`]).

use std::sync::Mutex;

use crate::job::JobConfig;
use crate::error::HostError;
use crate::contract::model::{MappedRecord, RecordError, RecordResult, Row, SyncMode};
use crate::fingerprint::{Fingerprint, mapping_fingerprint};
use crate::sync::plan::{self, PlanError, Planned, Planner};
use crate::sync::report::Counts;
use crate::source::KeyChecker;
use crate::source::keys::key_hash;
use crate::state::{RunCounts, RunId, RunLock, RunStatus, State, StateLocation, lock_run};
use crate::sync::Tenant;
use crate::sync::blocking::off_the_runtime;

/// State and planner of one run.
pub struct Ledger {
    state: Mutex<State>,
    planner: Mutex<Planner>,
    sync_id: String,
    tenant: String,
    mapping_fingerprint: String,
    component_version: String,
    run_id: Option<RunId>,
    /// An `--only-failed` run: sends only failing records, so it must not record the context
    /// (a changed mapping would then never re-send the records it did not select).
    only_failed: bool,
    /// Held for the whole run: no other run of this sync may start meanwhile.
    _lock: Option<RunLock>,
}

impl Ledger {
    /// Open the job's state; a real run also starts a run record.
    pub fn open(job: &JobConfig, tenant: &Tenant, location: &StateLocation, dry_run: bool, only_failed: bool) -> Result<Ledger, HostError> {
        off_the_runtime(|| Self::open_blocking(job, tenant, location, dry_run, only_failed))
    }

    fn open_blocking(job: &JobConfig, tenant: &Tenant, location: &StateLocation, dry_run: bool, only_failed: bool) -> Result<Ledger, HostError> {
        // A dry run writes nothing and needs no lock; in PostgreSQL the organization's lease
        // keeps runs apart instead.
        let lock = if dry_run || !location.needs_file_lock() { None } else { Some(lock_run(&job.sync.state_dir, &tenant.sync_id)?) };
        let state = location.open(&job.sync.state_dir)?;
        // The component version covers the plugin's own version and its exact build, so a
        // rebuilt component re-sends what it would now map differently.
        let component_version = format!("{} {}", tenant.spec.version, &tenant.plugin.hash()[..12]);
        let mapping_fingerprint = mapping_fingerprint(tenant.mode, &tenant.mapping, &tenant.settings);
        let mut planner = Planner::new(state.sync(&tenant.sync_id), &mapping_fingerprint, &component_version).map_err(|e| plan_error(&tenant.name, e))?;
        if only_failed {
            planner = planner.only_failed();
        }
        let run_id = if dry_run { None } else { Some(state.sync(&tenant.sync_id).start_run()?) };
        Ok(Ledger {
            state: Mutex::new(state),
            planner: Mutex::new(planner),
            sync_id: tenant.sync_id.clone(),
            tenant: tenant.name.clone(),
            mapping_fingerprint,
            component_version,
            run_id,
            only_failed,
            _lock: lock,
        })
    }

    /// Plan one chunk (in row order). Reads state only: an unchanged row costs no write.
    pub fn plan(&self, batch: Vec<(Row, MappedRecord)>) -> Result<Vec<Planned>, HostError> {
        off_the_runtime(|| {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let mut planner = self.planner.lock().unwrap_or_else(|p| p.into_inner());
            planner.plan_batch(state.sync(&self.sync_id), batch).map_err(|e| plan_error(&self.tenant, e))
        })
    }

    /// Record confirmed and finally failed records, and queue their `results` (JSON rows for
    /// the results outbox), in one transaction.
    pub fn record(
        &self,
        confirmed: &[(String, Fingerprint, RecordResult)],
        failed: &[(String, Fingerprint, RecordError)],
        results: &[String],
    ) -> Result<(), HostError> {
        // A batch whose records all went to the retry queue has nothing to write: no
        // transaction (it would only take the write lock and sync an empty commit).
        if self.run_id.is_none() || (confirmed.is_empty() && failed.is_empty() && results.is_empty()) {
            return Ok(());
        }
        off_the_runtime(|| {
            let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let mut b = state.sync(&self.sync_id).batch()?;
            for (key, fp, r) in confirmed {
                let payload = r.confirmed_payload.as_deref().unwrap_or_default();
                b.record_success(key, *fp, payload, r.remote_id.as_deref(), r.outcome)?;
            }
            for (key, fp, e) in failed {
                b.record_failure(key, *fp, e, e.retryable)?;
            }
            for r in results {
                b.queue_result(r)?;
            }
            Ok(b.commit()?)
        })
    }

    /// The sync this ledger keeps.
    pub fn sync_id(&self) -> &str {
        &self.sync_id
    }

    /// The state's id of this run (`None` for a dry run, which writes nothing).
    pub fn run_id(&self) -> Option<RunId> {
        self.run_id
    }

    /// The planner's counters so far (new, changed, unchanged, retried, still invalid).
    pub fn plan_counts(&self) -> plan::PlanCounts {
        *self.planner.lock().unwrap_or_else(|p| p.into_inner()).counts()
    }

    /// Why records are re-sent beyond their own changes (mapping or component changed).
    pub fn notes(&self) -> Vec<String> {
        self.planner.lock().unwrap_or_else(|p| p.into_inner()).reason().into_iter().collect()
    }

    /// Close the run: count disappeared keys, remember the context, store the counts.
    /// `source_keys` is the source's key set when it was read to the end. Returns how many keys
    /// disappeared (0 for a dry run, a run that stopped early or a source not read to the end).
    pub fn finish(
        &self,
        counts: &Counts,
        requests: u64,
        aborted: Option<&str>,
        source_keys: Option<&KeyChecker>,
    ) -> Result<u64, HostError> {
        off_the_runtime(|| self.finish_blocking(counts, requests, aborted, source_keys))
    }

    fn finish_blocking(
        &self,
        counts: &Counts,
        requests: u64,
        aborted: Option<&str>,
        source_keys: Option<&KeyChecker>,
    ) -> Result<u64, HostError> {
        let Some(run) = self.run_id else { return Ok(0) };
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let sync = state.sync(&self.sync_id);
        let disappeared = match (aborted, source_keys) {
            (None, Some(keys)) => {
                // Sorted and merge-joined on disk: no lookup per state key, no memory per key.
                let mut state_keys = keys.sorter();
                sync.for_each_key(|k| state_keys.push(key_hash(k)).map_err(HostError::from))?;
                keys.count_missing(&mut state_keys)?
            }
            _ => 0,
        };
        if aborted.is_none() && !self.only_failed {
            sync.set_meta(&self.mapping_fingerprint, &self.component_version)?;
        }
        let rc = RunCounts {
            rows_read: counts.rows,
            invalid_rows: counts.invalid,
            planned_unchanged: counts.unchanged,
            planned_still_invalid: counts.still_invalid,
            created: counts.created,
            updated: counts.updated,
            unchanged: counts.confirmed_unchanged,
            skipped: counts.skipped,
            failed: counts.failed,
            requests,
            disappeared,
            ..RunCounts::default()
        };
        let status = if aborted.is_some() { RunStatus::Failed } else { RunStatus::Succeeded };
        state.finish_run(run, status, &rc, aborted)?;
        Ok(disappeared)
    }
}

/// A planning error as the host reports it: state errors as they are; mapped records out of row
/// order mean `map-rows` broke the contract.
fn plan_error(tenant: &str, e: PlanError) -> HostError {
    match e {
        PlanError::State(e) => HostError::State(e),
        mismatch @ PlanError::KeyMismatch { .. } => HostError::Plugin { tenant: tenant.to_string(), reason: mismatch.to_string() },
    }
}

/// About how many requests one record costs, for the dry-run estimate: a known id needs one
/// write; without one, upsert and update read first.
pub fn estimate_requests(mode: SyncMode, has_known_id: bool) -> u64 {
    match (mode, has_known_id) {
        (_, true) | (SyncMode::Insert, false) => 1,
        _ => 2,
    }
}
