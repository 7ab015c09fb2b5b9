//! The spilled runs of one key set, in tiers: `FAN_IN` runs of one tier are merged into one run
//! of the next as soon as they are there, so 10M keys in runs of ~115k make at most
//! `FAN_IN - 1` runs per tier over four tiers, and each key is rewritten once per tier.

use std::io;

use crate::source::keys::merge::{Merge, Sorted};
use crate::source::keys::run::Run;
use crate::source::keys::spill::{SpillConfig, SpillError};

/// Runs of one tier merged at once.
pub const FAN_IN: usize = 4;

/// Sorted, disjoint runs on disk.
pub struct Runs {
    config: SpillConfig,
    /// `tiers[t]`: runs of about `memory_keys × FAN_IN^t` hashes.
    tiers: Vec<Vec<Run>>,
    len: u64,
}

impl Runs {
    /// No runs yet; they will go to `config.dir`.
    pub fn new(config: SpillConfig) -> Runs {
        Runs { config, tiers: Vec::new(), len: 0 }
    }

    /// The spill settings.
    pub fn config(&self) -> &SpillConfig {
        &self.config
    }

    /// Hashes spilled.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was spilled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every run, largest tier first.
    pub fn iter(&self) -> impl Iterator<Item = &Run> {
        self.tiers.iter().rev().flatten()
    }

    /// Spills `sorted` (ascending, distinct, and in no other run) as a run, merging full tiers.
    pub fn spill(&mut self, sorted: &[u128]) -> Result<(), SpillError> {
        let run = Run::write(&self.config.dir, sorted.iter().map(|&h| Ok(h))).map_err(self.config.err("write"))?;
        self.len += run.len();
        let mut tier = 0;
        let mut run = run;
        loop {
            if self.tiers.len() == tier {
                self.tiers.push(Vec::new());
            }
            self.tiers[tier].push(run);
            if self.tiers[tier].len() < FAN_IN {
                return Ok(());
            }
            // The merged inputs are dropped (their files removed) once the output is written.
            let inputs = std::mem::take(&mut self.tiers[tier]);
            let streams = inputs.iter().map(|r| Box::new(r.reader()) as Sorted<'_>).collect();
            run = Run::write(&self.config.dir, Merge::new(streams)).map_err(self.config.err("merge"))?;
            tier += 1;
        }
    }

    /// Whether `h` is in some run (one positioned read per run whose range covers it).
    pub fn contains(&self, h: u128) -> io::Result<bool> {
        for run in self.iter() {
            if run.contains(h)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Every spilled hash and `memory` (ascending, disjoint from the runs), in order.
    pub fn sorted<'a>(&'a self, memory: &'a [u128]) -> Merge<'a> {
        let mut streams: Vec<Sorted<'a>> = self.iter().map(|r| Box::new(r.reader()) as Sorted<'a>).collect();
        streams.push(Box::new(memory.iter().map(|&h| Ok(h))));
        Merge::new(streams)
    }

    /// How many runs there are now.
    pub fn run_count(&self) -> usize {
        self.tiers.iter().map(Vec::len).sum()
    }
}
