//! Turning due and triggered syncs into runs: a queue of sync ids and a fixed number of run
//! slots. Each queued id takes a slot, runs, and goes back to idle with its next due time.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::service::metrics::Metrics;
use crate::service::registry::Registry;
use crate::service::runner::Runner;

/// How often schedules are checked and running tenants' counters sampled.
pub const TICK: Duration = Duration::from_millis(500);

/// Queue every sync whose schedule is due, until `stop`; sample the metrics as it goes.
pub async fn tick(registry: Arc<Registry>, metrics: Arc<Metrics>, queue: mpsc::UnboundedSender<String>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        for id in registry.take_due(Utc::now()) {
            if queue.send(id).is_err() {
                return;
            }
        }
        metrics.sample();
    }
}

/// Take queued syncs into `slots` run slots until `stop`; then hand back what is still queued
/// and wait for the runs in progress (which the same signal tells to stop taking work).
pub async fn dispatch(
    registry: Arc<Registry>,
    runner: Arc<Runner>,
    slots: usize,
    mut queue: mpsc::UnboundedReceiver<String>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(slots.max(1)));
    let mut runs = JoinSet::new();
    loop {
        let id = tokio::select! {
            id = queue.recv() => match id { Some(id) => id, None => break },
            _ = stop.wait_for(|s| *s) => break,
            Some(_) = runs.join_next(), if !runs.is_empty() => continue,
        };
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = stop.wait_for(|s| *s) => {
                registry.unqueue(&id);
                break;
            }
        };
        let Some(job) = registry.start(&id, Utc::now()) else { continue };
        let (registry, runner) = (registry.clone(), runner.clone());
        runs.spawn(async move {
            let last = runner.run(&job).await;
            registry.finish(&job.sync.id, last, Utc::now());
            drop(permit);
        });
    }
    queue.close();
    while let Ok(id) = queue.try_recv() {
        registry.unqueue(&id);
    }
    while runs.join_next().await.is_some() {}
}
