//! An exact set of key hashes in bounded memory: the newest keys in a hash table of at most
//! `memory_keys`; older ones in sorted runs on disk, behind one Bloom filter over all of them.
//!
//! A new key costs a table probe and a filter probe; only a filter "maybe" (a repeated key, or
//! a 2–3% false positive) reads the disk, one block per run. The filter is rebuilt 1.5× larger
//! from the runs when the spilled keys outgrow it (about 3 reads of each spilled key in all).

use std::collections::HashSet;
use std::hash::BuildHasherDefault;

use crate::source::keys::PassThroughHasher;
use crate::source::keys::filter::Filter;
use crate::source::keys::merge::Merge;
use crate::source::keys::runs::Runs;
use crate::source::keys::spill::{SpillConfig, SpillError};

/// Key hashes seen, exact.
pub struct KeySet {
    memory: HashSet<u128, BuildHasherDefault<PassThroughHasher>>,
    runs: Runs,
    /// Every spilled hash is in it; empty until the first spill.
    filter: Filter,
    /// The memory table's hashes in order, made once for [`KeySet::sorted`].
    sorted_memory: std::sync::OnceLock<Vec<u128>>,
}

impl KeySet {
    /// An empty set spilling as `config` says.
    pub fn new(config: SpillConfig) -> KeySet {
        KeySet {
            memory: HashSet::default(),
            runs: Runs::new(SpillConfig { memory_keys: config.memory_keys.max(1), ..config }),
            filter: Filter::with_capacity(0),
            sorted_memory: std::sync::OnceLock::new(),
        }
    }

    /// Hashes in the set.
    pub fn len(&self) -> u64 {
        self.memory.len() as u64 + self.runs.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The spill settings.
    pub fn config(&self) -> &SpillConfig {
        self.runs.config()
    }

    /// Run files now on disk.
    pub fn run_count(&self) -> usize {
        self.runs.run_count()
    }

    /// Whether `h` is in the set.
    pub fn contains(&self, h: u128) -> Result<bool, SpillError> {
        if self.memory.contains(&h) {
            return Ok(true);
        }
        if self.runs.is_empty() || !self.filter.may_contain(h) {
            return Ok(false);
        }
        self.runs.contains(h).map_err(self.config().err("read"))
    }

    /// Adds `h`; `false` if it was already there.
    pub fn insert(&mut self, h: u128) -> Result<bool, SpillError> {
        if self.contains(h)? {
            return Ok(false);
        }
        if self.memory.len() >= self.config().memory_keys {
            self.spill()?;
        }
        self.memory.insert(h);
        self.sorted_memory = std::sync::OnceLock::new();
        Ok(true)
    }

    /// Moves the memory table to a new run (the table keeps its allocation for the next keys).
    fn spill(&mut self) -> Result<(), SpillError> {
        let mut sorted: Vec<u128> = self.memory.drain().collect();
        sorted.sort_unstable();
        self.runs.spill(&sorted)?;
        let spilled = self.runs.len() as usize;
        if spilled > self.filter.capacity() {
            // Drop the old filter first, so the two never coexist.
            self.filter = Filter::with_capacity(0);
            let mut filter = Filter::with_capacity(spilled + spilled / 2);
            for run in self.runs.iter() {
                for h in run.reader() {
                    filter.insert(h.map_err(self.config().err("read"))?);
                }
            }
            self.filter = filter;
        } else {
            sorted.iter().for_each(|&h| self.filter.insert(h));
        }
        Ok(())
    }

    /// Every hash, ascending: the runs merged with the (sorted) memory table.
    pub fn sorted(&self) -> Merge<'_> {
        let memory = self.sorted_memory.get_or_init(|| {
            let mut v: Vec<u128> = self.memory.iter().copied().collect();
            v.sort_unstable();
            v
        });
        self.runs.sorted(memory)
    }

    /// Bytes of memory held (table, filter), for the bench and the docs.
    pub fn memory_bytes(&self) -> usize {
        self.memory.capacity() * 17 + self.filter.bytes()
    }
}
