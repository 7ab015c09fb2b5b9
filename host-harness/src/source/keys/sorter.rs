//! An external sort of key hashes that arrive in any order (the state's keys, at the end of a
//! run): `memory_keys` at a time in memory, the rest in sorted runs.

use crate::source::keys::merge::Merge;
use crate::source::keys::runs::Runs;
use crate::source::keys::spill::{SpillConfig, SpillError};

/// Hashes being sorted.
pub struct HashSorter {
    buf: Vec<u128>,
    runs: Runs,
}

impl HashSorter {
    /// An empty sorter spilling as `config` says.
    pub fn new(config: SpillConfig) -> HashSorter {
        let memory_keys = config.memory_keys.max(1);
        HashSorter { buf: Vec::new(), runs: Runs::new(SpillConfig { memory_keys, ..config }) }
    }

    /// Adds `h` (distinct from every other hash added).
    pub fn push(&mut self, h: u128) -> Result<(), SpillError> {
        self.buf.push(h);
        if self.buf.len() >= self.runs.config().memory_keys {
            self.buf.sort_unstable();
            self.runs.spill(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Every hash added, ascending.
    pub fn sorted(&mut self) -> Merge<'_> {
        self.buf.sort_unstable();
        self.runs.sorted(&self.buf)
    }

    /// Run files now on disk.
    pub fn run_count(&self) -> usize {
        self.runs.run_count()
    }
}
