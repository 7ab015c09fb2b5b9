//! When a job runs on its own: every fixed interval, on a cron expression, or only on demand.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::job::ScheduleSection;

/// The shortest interval `every` accepts: a sync more often than this only burns requests.
pub const MIN_EVERY: Duration = Duration::from_secs(1);

/// A job's schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Only when triggered through the admin API.
    OnDemand,
    /// Again this long after the previous run started (at once when the worker starts).
    Every(Duration),
    /// At each time the expression matches, in UTC.
    Cron {
        /// The parsed expression.
        cron: Box<croner::Cron>,
        /// The expression as written (shown by the admin API).
        text: String,
    },
}

impl Schedule {
    /// The schedule of a job's `[schedule]` section; the error says what to write instead.
    pub fn parse(section: Option<&ScheduleSection>) -> Result<Schedule, String> {
        let Some(s) = section else { return Ok(Schedule::OnDemand) };
        match (&s.every, &s.cron) {
            (None, None) => Ok(Schedule::OnDemand),
            (Some(_), Some(_)) => Err("schedule: give either `every` or `cron`, not both".into()),
            (Some(every), None) => {
                let d = humantime::parse_duration(every.trim()).map_err(|e| {
                    format!("schedule.every = {every:?} is not a duration ({e}); write e.g. \"30s\", \"15m\" or \"1h\"")
                })?;
                if d < MIN_EVERY {
                    return Err(format!("schedule.every = {every:?} is shorter than {}s; schedule it less often", MIN_EVERY.as_secs()));
                }
                Ok(Schedule::Every(d))
            }
            (None, Some(text)) => {
                let cron = croner::Cron::from_str(text.trim()).map_err(|e| {
                    format!("schedule.cron = {text:?} is not a cron expression ({e}); write five fields, e.g. \"*/10 * * * *\" (UTC)")
                })?;
                Ok(Schedule::Cron { cron: Box::new(cron), text: text.trim().to_string() })
            }
        }
    }

    /// When the job is next due, given when its last run in this worker started (`None`: not
    /// yet). `None` means only on demand.
    pub fn next_due(&self, last_start: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::OnDemand => None,
            Schedule::Every(d) => {
                let step = chrono::Duration::from_std(*d).unwrap_or(chrono::Duration::MAX);
                Some(last_start.map(|t| t.checked_add_signed(step).unwrap_or(DateTime::<Utc>::MAX_UTC)).unwrap_or(now))
            }
            Schedule::Cron { cron, .. } => {
                // The next match after the later of the last start and now: a run that took longer
                // than the period does not queue up the ones it overlapped.
                let from = last_start.map_or(now, |t| t.max(now));
                cron.find_next_occurrence(&from, false).ok()
            }
        }
    }

    /// With a coordinator: the slot a run due at `due` belongs to (the same instant on every
    /// worker) and when the next slot falls. `every` slots are multiples of the period since the
    /// Unix epoch; cron slots are the expression's own times. `None` for on-demand jobs.
    pub fn shared_slot(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match self {
            Schedule::OnDemand => None,
            Schedule::Every(d) => {
                let period = i64::try_from(d.as_millis()).ok().filter(|p| *p > 0)?;
                let slot_ms = now.timestamp_millis().div_euclid(period) * period;
                let slot = DateTime::<Utc>::from_timestamp_millis(slot_ms)?;
                Some((slot, DateTime::<Utc>::from_timestamp_millis(slot_ms.checked_add(period)?)?))
            }
            Schedule::Cron { cron, .. } => Some((due, cron.find_next_occurrence(&now, false).ok()?)),
        }
    }

    /// A short description for the admin API (`every 15m`, `cron */10 * * * *`, `on demand`).
    pub fn describe(&self) -> String {
        match self {
            Schedule::OnDemand => "on demand".into(),
            Schedule::Every(d) => format!("every {}", humantime::format_duration(*d)),
            Schedule::Cron { text, .. } => format!("cron {text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(every: Option<&str>, cron: Option<&str>) -> ScheduleSection {
        ScheduleSection { every: every.map(str::to_string), cron: cron.map(str::to_string) }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn every_runs_at_once_then_one_interval_after_each_start() {
        let s = Schedule::parse(Some(&section(Some("15m"), None))).unwrap();
        let now = at("2026-12-03T10:00:00Z");
        assert_eq!(s.next_due(None, now), Some(now));
        assert_eq!(s.next_due(Some(at("2026-12-03T09:50:00Z")), now), Some(at("2026-12-03T10:05:00Z")));
    }

    #[test]
    fn cron_is_the_next_match_after_the_last_start_or_now() {
        let s = Schedule::parse(Some(&section(None, Some("*/10 * * * *")))).unwrap();
        let now = at("2026-12-03T10:03:00Z");
        assert_eq!(s.next_due(None, now), Some(at("2026-12-03T10:10:00Z")));
        // A run that started at 10:00 and is still going at 10:23 is next due at 10:30, once.
        assert_eq!(s.next_due(Some(at("2026-12-03T10:00:00Z")), at("2026-12-03T10:23:00Z")), Some(at("2026-12-03T10:30:00Z")));
    }

    #[test]
    fn no_section_means_on_demand() {
        assert!(matches!(Schedule::parse(None).unwrap(), Schedule::OnDemand));
        assert_eq!(Schedule::OnDemand.next_due(None, at("2026-12-03T10:00:00Z")), None);
    }

    #[test]
    fn bad_schedules_name_the_fix() {
        let both = Schedule::parse(Some(&section(Some("1m"), Some("* * * * *")))).unwrap_err();
        assert_eq!(both, "schedule: give either `every` or `cron`, not both");
        let bad = Schedule::parse(Some(&section(Some("soon"), None))).unwrap_err();
        assert!(bad.starts_with("schedule.every = \"soon\" is not a duration"), "{bad}");
        let short = Schedule::parse(Some(&section(Some("10ms"), None))).unwrap_err();
        assert_eq!(short, "schedule.every = \"10ms\" is shorter than 1s; schedule it less often");
        let cron = Schedule::parse(Some(&section(None, Some("every day")))).unwrap_err();
        assert!(cron.starts_with("schedule.cron = \"every day\" is not a cron expression"), "{cron}");
    }
}
