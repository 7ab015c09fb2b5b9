//! The worker's table of syncs: each job's phase (idle, queued, running), whether it is paused,
//! when it is next due and how its last run ended. One lock, held only for bookkeeping.
//!
//! A sync is queued at most once and runs at most once at a time in this process; across
//! processes the state's run lock (or, with a coordinator, the organization's lease) holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::job::JobConfig;
use crate::service::catalog::{Catalog, FileProblem, JobFile};
use crate::sync::report::Counts;

/// Where a sync is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Waiting for its schedule or a trigger.
    Idle,
    /// Waiting for a free run slot.
    Queued,
    /// Running.
    Running,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    /// Every record made it (or was unchanged).
    Succeeded,
    /// The run finished, some records failed (see its failures).
    RecordsFailed,
    /// The run stopped part way (shutdown, credentials, the state or the source failing).
    Stopped,
    /// The run could not start (invalid job, missing secret, state busy).
    Error,
}

impl RunOutcome {
    /// The label used in metrics.
    pub fn label(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::RecordsFailed => "records-failed",
            RunOutcome::Stopped => "stopped",
            RunOutcome::Error => "error",
        }
    }
}

/// The last run of a sync in this worker.
#[derive(Debug, Clone, Serialize)]
pub struct LastRun {
    /// The run's number in the sync state.
    pub run_id: Option<i64>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Started.
    pub started_at: DateTime<Utc>,
    /// Finished.
    pub finished_at: DateTime<Utc>,
    /// Its counts (none when it could not start).
    pub counts: Option<Counts>,
    /// Why it stopped or could not start.
    pub message: Option<String>,
}

/// One sync as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SyncView {
    /// Sync id.
    pub id: String,
    /// The job file.
    pub file: String,
    /// `every 15m`, `cron …` or `on demand`.
    pub schedule: String,
    /// Paused: not run on schedule nor on demand until resumed.
    pub paused: bool,
    /// Idle, queued or running.
    pub phase: Phase,
    /// When the schedule next runs it.
    pub next_due: Option<DateTime<Utc>>,
    /// The last run in this worker.
    pub last_run: Option<LastRun>,
}

/// Why a trigger, pause or resume was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No such sync in the job folder.
    #[error("no sync {0:?} in the job folder")]
    NotFound(String),
    /// Already waiting for a slot.
    #[error("sync {0:?} is already queued")]
    AlreadyQueued(String),
    /// Already running.
    #[error("sync {0:?} is already running")]
    AlreadyRunning(String),
    /// Paused.
    #[error("sync {0:?} is paused; resume it first")]
    Paused(String),
}

struct Entry {
    file: JobFile,
    paused: bool,
    phase: Phase,
    last_start: Option<DateTime<Utc>>,
    next_due: Option<DateTime<Utc>>,
    last: Option<LastRun>,
}

impl Entry {
    fn view(&self, id: &str) -> SyncView {
        SyncView {
            id: id.to_string(),
            file: self.file.path.display().to_string(),
            schedule: self.file.schedule.describe(),
            paused: self.paused,
            phase: self.phase,
            next_due: if self.paused { None } else { self.next_due },
            last_run: self.last.clone(),
        }
    }
}

#[derive(Default)]
struct Inner {
    syncs: BTreeMap<String, Entry>,
    problems: Vec<FileProblem>,
    paused: BTreeSet<String>,
}

/// The table. Pauses are kept in a file so they outlive a restart.
pub struct Registry {
    inner: Mutex<Inner>,
    pause_file: PathBuf,
    /// Schedules run on slots shared by every worker (a coordinator is configured).
    shared_slots: bool,
}

impl Registry {
    /// An empty table whose pauses persist in `pause_file` (read now if it exists).
    pub fn new(pause_file: PathBuf) -> Result<Registry, String> {
        let paused = match std::fs::read(&pause_file) {
            Ok(bytes) => serde_json::from_slice::<BTreeSet<String>>(&bytes)
                .map_err(|e| format!("{} is not a JSON list of sync ids ({e}); fix or delete it", pause_file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", pause_file.display())),
        };
        Ok(Registry { inner: Mutex::new(Inner { paused, ..Inner::default() }), pause_file, shared_slots: false })
    }

    /// Schedules on slots shared by every worker: an `every` schedule falls on multiples of its
    /// period since the Unix epoch, so all workers agree which slot is due.
    pub fn with_shared_slots(mut self) -> Registry {
        self.shared_slots = true;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take a new scan of the job folder: new jobs are added, changed ones take effect from
    /// their next run, removed ones are dropped (a run in progress finishes).
    pub fn apply(&self, catalog: Catalog, now: DateTime<Utc>) {
        let mut inner = self.lock();
        let Inner { syncs, problems, paused } = &mut *inner;
        // A job whose file is unreadable right now (an editor half way through writing it) keeps
        // its last good version and its history; a job whose file is gone is dropped.
        let unreadable: BTreeSet<&str> = catalog.problems.iter().map(|p| p.file.as_str()).collect();
        syncs.retain(|id, e| catalog.jobs.contains_key(id) || unreadable.contains(e.file.path.display().to_string().as_str()));
        for (id, file) in catalog.jobs {
            match syncs.get_mut(&id) {
                Some(e) if e.file.digest == file.digest => {}
                Some(e) => {
                    e.next_due = file.schedule.next_due(e.last_start, now);
                    e.file = file;
                }
                None => {
                    let next_due = file.schedule.next_due(None, now);
                    let paused = paused.contains(&id);
                    syncs.insert(id, Entry { file, paused, phase: Phase::Idle, last_start: None, next_due, last: None });
                }
            }
        }
        *problems = catalog.problems;
    }

    /// Every sync, in id order, and the files that are not usable jobs.
    pub fn snapshot(&self) -> (Vec<SyncView>, Vec<FileProblem>) {
        let inner = self.lock();
        (inner.syncs.iter().map(|(id, e)| e.view(id)).collect(), inner.problems.clone())
    }

    /// One sync.
    pub fn view(&self, id: &str) -> Option<SyncView> {
        self.lock().syncs.get(id).map(|e| e.view(id))
    }

    /// The job of a sync (for reading its state).
    pub fn job(&self, id: &str) -> Option<JobConfig> {
        self.lock().syncs.get(id).map(|e| e.file.job.clone())
    }

    /// Queue every idle, unpaused sync whose time has come; returns their ids.
    pub fn take_due(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut inner = self.lock();
        let mut due = Vec::new();
        for (id, e) in inner.syncs.iter_mut() {
            if e.phase == Phase::Idle && !e.paused && e.next_due.is_some_and(|t| t <= now) {
                e.phase = Phase::Queued;
                due.push(id.clone());
            }
        }
        due
    }

    /// With a coordinator: every idle, unpaused sync whose time has come, with the schedule slot
    /// it is due for (the same on every worker) and its job; each is moved on to its next slot
    /// here, whichever worker ends up running it.
    pub fn take_due_slots(&self, now: DateTime<Utc>) -> Vec<(String, DateTime<Utc>, JobConfig)> {
        let mut inner = self.lock();
        let mut due = Vec::new();
        for (id, e) in inner.syncs.iter_mut() {
            if e.phase != Phase::Idle || e.paused {
                continue;
            }
            let Some((slot, next)) = e.next_due.filter(|t| *t <= now).and_then(|t| e.file.schedule.shared_slot(t, now)) else { continue };
            e.next_due = Some(next);
            due.push((id.clone(), slot, e.file.job.clone()));
        }
        due
    }

    /// With a coordinator: a queued run taken from the shared queue starts here, whatever this
    /// worker's own phase said; `None` when the sync is not in this worker's folder or is paused.
    pub fn start_now(&self, id: &str, now: DateTime<Utc>) -> Option<JobConfig> {
        let mut inner = self.lock();
        let e = inner.syncs.get_mut(id)?;
        if e.paused {
            return None;
        }
        e.phase = Phase::Running;
        e.last_start = Some(now);
        Some(e.file.job.clone())
    }

    /// Queue one sync now, whatever its schedule.
    pub fn trigger(&self, id: &str) -> Result<(), Refused> {
        let mut inner = self.lock();
        let e = inner.syncs.get_mut(id).ok_or_else(|| Refused::NotFound(id.to_string()))?;
        match (e.paused, e.phase) {
            (true, _) => Err(Refused::Paused(id.to_string())),
            (_, Phase::Queued) => Err(Refused::AlreadyQueued(id.to_string())),
            (_, Phase::Running) => Err(Refused::AlreadyRunning(id.to_string())),
            (false, Phase::Idle) => {
                e.phase = Phase::Queued;
                Ok(())
            }
        }
    }

    /// A queued sync takes its run slot: its job as it is now, or `None` when it was removed or
    /// paused while it waited (it goes back to idle).
    pub fn start(&self, id: &str, now: DateTime<Utc>) -> Option<JobConfig> {
        let mut inner = self.lock();
        let e = inner.syncs.get_mut(id)?;
        if e.phase != Phase::Queued {
            return None;
        }
        if e.paused {
            e.phase = Phase::Idle;
            return None;
        }
        e.phase = Phase::Running;
        e.last_start = Some(now);
        Some(e.file.job.clone())
    }

    /// A queued sync that will not start (the worker is shutting down) goes back to idle.
    pub fn unqueue(&self, id: &str) {
        if let Some(e) = self.lock().syncs.get_mut(id)
            && e.phase == Phase::Queued
        {
            e.phase = Phase::Idle;
        }
    }

    /// A run ended: back to idle, next due from the schedule (with a coordinator the next slot
    /// was already set when this one was claimed).
    pub fn finish(&self, id: &str, last: LastRun, now: DateTime<Utc>) {
        if let Some(e) = self.lock().syncs.get_mut(id) {
            e.phase = Phase::Idle;
            if !self.shared_slots {
                e.next_due = e.file.schedule.next_due(e.last_start, now);
            }
            e.last = Some(last);
        }
    }

    /// Pause or resume a sync; the set of paused syncs is written to the pause file first, so
    /// an answer of success means it outlives a restart.
    pub fn set_paused(&self, id: &str, paused: bool) -> Result<SyncView, SetPausedError> {
        let mut inner = self.lock();
        if !inner.syncs.contains_key(id) {
            return Err(SetPausedError::Refused(Refused::NotFound(id.to_string())));
        }
        let mut next = inner.paused.clone();
        if paused {
            next.insert(id.to_string());
        } else {
            next.remove(id);
        }
        let text = serde_json::to_vec_pretty(&next).map_err(|e| SetPausedError::Write(e.to_string()))?;
        let tmp = self.pause_file.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &self.pause_file))
            .map_err(|e| SetPausedError::Write(format!("cannot write {}: {e}", self.pause_file.display())))?;
        inner.paused = next;
        let e = inner.syncs.get_mut(id).expect("checked above");
        e.paused = paused;
        Ok(e.view(id))
    }

    /// Syncs waiting for a slot.
    pub fn queued(&self) -> usize {
        self.lock().syncs.values().filter(|e| e.phase == Phase::Queued).count()
    }

    /// Syncs running.
    pub fn running(&self) -> usize {
        self.lock().syncs.values().filter(|e| e.phase == Phase::Running).count()
    }
}

/// Why pausing or resuming failed.
#[derive(Debug, thiserror::Error)]
pub enum SetPausedError {
    /// The request was refused.
    #[error(transparent)]
    Refused(Refused),
    /// The pause file could not be written; nothing changed.
    #[error("{0}")]
    Write(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::schedule::Schedule;

    fn catalog(ids: &[(&str, Schedule, &str)]) -> Catalog {
        let mut c = Catalog::default();
        for (id, schedule, digest) in ids {
            let text = format!(
                "[sync]\nid = \"{id}\"\nmode = \"upsert\"\ncomponent = \"d.wasm\"\n[source]\nkind = \"csv\"\npath = \"r.csv\"\nprimary_key = \"id\"\n[destination]\n[mapping]\nemail = \"email\"\n"
            );
            let job: JobConfig = toml::from_str(&text).unwrap();
            c.jobs.insert(
                id.to_string(),
                JobFile { path: PathBuf::from(format!("{id}.toml")), job, schedule: schedule.clone(), digest: digest.to_string() },
            );
        }
        c
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn registry(tag: &str) -> (Registry, PathBuf) {
        let file = std::env::temp_dir().join(format!("registry-{tag}-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&file);
        (Registry::new(file.clone()).unwrap(), file)
    }

    fn last(now: DateTime<Utc>) -> LastRun {
        LastRun { run_id: Some(1), outcome: RunOutcome::Succeeded, started_at: now, finished_at: now, counts: None, message: None }
    }

    #[test]
    fn a_due_sync_is_queued_once_and_runs_again_one_interval_after_it_started() {
        let (r, _) = registry("due");
        let t0 = at("2026-12-03T10:00:00Z");
        r.apply(catalog(&[("a", Schedule::Every(std::time::Duration::from_secs(60)), "1"), ("b", Schedule::OnDemand, "1")]), t0);
        assert_eq!(r.take_due(t0), vec!["a".to_string()]);
        assert_eq!(r.take_due(t0), Vec::<String>::new(), "queued once");
        assert!(r.start("a", t0).is_some());
        assert_eq!(r.trigger("a"), Err(Refused::AlreadyRunning("a".into())));
        r.finish("a", last(t0), at("2026-12-03T10:00:20Z"));
        assert_eq!(r.view("a").unwrap().next_due, Some(at("2026-12-03T10:01:00Z")));
        assert_eq!(r.take_due(at("2026-12-03T10:00:59Z")), Vec::<String>::new());
        assert_eq!(r.take_due(at("2026-12-03T10:01:00Z")), vec!["a".to_string()]);
    }

    #[test]
    fn triggers_are_refused_for_unknown_queued_and_paused_syncs() {
        let (r, file) = registry("trigger");
        let t0 = at("2026-12-03T10:00:00Z");
        r.apply(catalog(&[("b", Schedule::OnDemand, "1")]), t0);
        assert_eq!(r.trigger("zzz"), Err(Refused::NotFound("zzz".into())));
        assert_eq!(r.trigger("b"), Ok(()));
        assert_eq!(r.trigger("b"), Err(Refused::AlreadyQueued("b".into())));
        r.set_paused("b", true).unwrap();
        assert!(r.start("b", t0).is_none(), "paused while queued: not started");
        assert_eq!(r.view("b").unwrap().phase, Phase::Idle);
        assert_eq!(r.trigger("b"), Err(Refused::Paused("b".into())));
        // The pause outlives a restart.
        let again = Registry::new(file.clone()).unwrap();
        again.apply(catalog(&[("b", Schedule::OnDemand, "1")]), t0);
        assert!(again.view("b").unwrap().paused);
        r.set_paused("b", false).unwrap();
        assert_eq!(r.trigger("b"), Ok(()));
        let _ = std::fs::remove_file(&file);
    }

    #[test]
    fn a_rescan_keeps_history_drops_removed_jobs_and_reschedules_changed_ones() {
        let (r, _) = registry("rescan");
        let t0 = at("2026-12-03T10:00:00Z");
        r.apply(catalog(&[("a", Schedule::Every(std::time::Duration::from_secs(60)), "1"), ("b", Schedule::OnDemand, "1")]), t0);
        r.take_due(t0);
        r.start("a", t0);
        r.finish("a", last(t0), t0);
        r.apply(catalog(&[("a", Schedule::Every(std::time::Duration::from_secs(600)), "2")]), t0);
        let a = r.view("a").unwrap();
        assert_eq!(a.next_due, Some(at("2026-12-03T10:10:00Z")));
        assert!(a.last_run.is_some());
        assert!(r.view("b").is_none());
    }
}
