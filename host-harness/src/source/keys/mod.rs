//! Primary-key checks: every row needs a non-empty key, and a key may appear only once.
//!
//! # Memory
//! Seen keys are kept as 128-bit hashes (the first 16 bytes of SHA-256 of the key text), never as
//! text, in a [`set::KeySet`] whose memory does not grow with the source:
//! - the newest [`spill::MEMORY_KEYS`] (114,688) hashes in a hash table of 2^17 slots (2.1 MiB,
//!   17 bytes a slot), the size a 100k-key source needs anyway;
//! - when it is full, its hashes are sorted and spilled to a temporary run file (16 bytes a key;
//!   removed when the set is dropped), and runs are merged four at a time ([`runs`]), so 10M keys
//!   make about a dozen files at most;
//! - in memory per spilled key: a blocked Bloom filter (8–12 bits: 8 per key of a capacity grown
//!   1.5× at a time) and a sparse index of the runs (1 bit), 1.1–1.6 bytes a key: 10–17 MiB at
//!   10M keys instead of 190–390 MiB as a hash set. That is the only part that still grows.
//!
//! A key not seen before costs a table probe and a filter probe; the disk is read (one 4 KiB block
//! per run) only to confirm a filter "maybe", so the check stays exact: a repeated key is always
//! found, a new key is never refused.
//!
//! At the end of a run the state's keys are hashed, sorted the same way ([`sorter`]) and
//! merge-joined with the set ([`KeyChecker::count_missing`]): the disappeared rows, in two
//! sequential passes rather than one disk lookup per key.
//!
//! Two different keys share a 128-bit hash with probability about n²/2¹²⁹ (~10⁻²⁵ for ten
//! million keys), so a false "duplicate key" is not a practical concern.

pub mod filter;
pub mod merge;
pub mod run;
pub mod runs;
pub mod set;
pub mod sorter;
pub mod spill;

use std::hash::Hasher;

use sha2::{Digest, Sha256};

use crate::contract::model::{Cell, ErrorCategory, ErrorCode, RecordError};

pub use self::set::KeySet;
pub use self::sorter::HashSorter;
pub use self::spill::{SpillConfig, SpillError};

/// A hasher for values that are already uniform hashes: it keeps their low 64 bits.
#[derive(Default, Clone, Copy)]
pub struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(b);
        }
    }
    fn write_u128(&mut self, v: u128) {
        self.0 ^= v as u64;
    }
}

/// Tracks the keys seen so far in one pass over a source.
pub struct KeyChecker {
    column: String,
    seen: KeySet,
}

/// The 128-bit hash a key is remembered by.
pub fn key_hash(key: &str) -> u128 {
    let digest = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(b)
}

impl KeyChecker {
    /// A checker for the key column `column` (named in its errors), spilling to the system
    /// temporary folder.
    pub fn new(column: impl Into<String>) -> Self {
        Self::with_spill(column, SpillConfig::default())
    }

    /// A checker spilling as `spill` says.
    pub fn with_spill(column: impl Into<String>, spill: SpillConfig) -> Self {
        KeyChecker { column: column.into(), seen: KeySet::new(spill) }
    }

    /// The key column.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// Distinct keys seen.
    pub fn len(&self) -> usize {
        self.seen.len() as usize
    }

    /// Whether no key was seen.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Whether `key` was seen (read from the source, valid or not).
    pub fn contains(&self, key: &str) -> Result<bool, SpillError> {
        self.seen.contains(key_hash(key))
    }

    /// The key set.
    pub fn set(&self) -> &KeySet {
        &self.seen
    }

    /// An empty sorter for the hashes of other keys (the state's), spilling like this set.
    pub fn sorter(&self) -> HashSorter {
        HashSorter::new(self.seen.config().clone())
    }

    /// How many of the hashes in `other` (distinct keys hashed by [`key_hash`]) were not seen:
    /// one merge-join of two sorted streams.
    pub fn count_missing(&self, other: &mut HashSorter) -> Result<u64, SpillError> {
        let read = self.seen.config().err("read");
        merge::count_missing(other.sorted(), self.seen.sorted()).map_err(read)
    }

    /// The key text of a cell, or a `missing-field` error when it is NULL, empty or blank.
    pub fn key_text(&self, cell: &Cell) -> Result<String, RecordError> {
        match cell.as_key_text() {
            Some(k) if !k.trim().is_empty() => Ok(k),
            _ => {
                let mut e = RecordError::host(
                    ErrorCode::MissingField,
                    ErrorCategory::SkipRecord,
                    format!(
                        "missing key: the primary key column `{}` is empty; give every row a key (or filter such rows out in the query)",
                        self.column
                    ),
                );
                e.field = Some(self.column.clone());
                Err(e)
            }
        }
    }

    /// Remembers `key`: `Ok(Err(duplicate-key error))` if an earlier row had it; `Err` when the
    /// key set cannot use its run files (the run cannot go on).
    pub fn remember(&mut self, key: &str) -> Result<Result<(), RecordError>, SpillError> {
        if self.seen.insert(key_hash(key))? {
            Ok(Ok(()))
        } else {
            let mut e = RecordError::host(
                ErrorCode::DuplicateKey,
                ErrorCategory::SkipRecord,
                format!(
                    "duplicate key: `{}` = {:?} repeats an earlier row's key; this row is not sent (make `{}` unique, e.g. deduplicate in the query)",
                    self.column, key, self.column
                ),
            );
            e.field = Some(self.column.clone());
            Ok(Err(e))
        }
    }

    /// `key_text` then `remember`: the key of a row that may be sent.
    pub fn check(&mut self, cell: &Cell) -> Result<Result<String, RecordError>, SpillError> {
        let key = match self.key_text(cell) {
            Ok(k) => k,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.remember(&key)?.map(|()| key))
    }
}

#[cfg(test)]
mod tests;
