//! Primary-key checks: every row needs a non-empty key, and a key may appear only once.
//!
//! # Memory
//! Seen keys are kept as 128-bit hashes (the first 16 bytes of SHA-256 of the key text) in a
//! `HashSet<u128>` with a pass-through hasher (the value already is a uniform hash). A slot costs
//! 17 bytes (16 + 1 control byte) and the table is at most 7/8 full and at least 7/16 full after
//! growing, so one key costs about 19–39 bytes whatever the key's length: 1 M keys take 34 MiB
//! (2^21 slots), 100 k keys 2.1 MiB (2^17 slots). While the table doubles, the old and the new
//! table coexist, so the peak is 1.5× that: 51 MiB on the way to 1 M keys. The key strings
//! themselves are not kept.
//!
//! Two different keys share a 128-bit hash with probability about n²/2¹²⁹ (~10⁻²⁷ for a million
//! keys), so a false "duplicate key" is not a practical concern.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use sha2::{Digest, Sha256};

use crate::contract::model::{Cell, ErrorCategory, ErrorCode, RecordError};

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
    seen: HashSet<u128, BuildHasherDefault<PassThroughHasher>>,
}

/// The 128-bit hash a key is remembered by.
pub fn key_hash(key: &str) -> u128 {
    let digest = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    u128::from_le_bytes(b)
}

impl KeyChecker {
    /// A checker for the key column `column` (named in its errors).
    pub fn new(column: impl Into<String>) -> Self {
        KeyChecker { column: column.into(), seen: HashSet::default() }
    }

    /// The key column.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// Distinct keys seen.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no key was seen.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Whether `key` was seen (read from the source, valid or not).
    pub fn contains(&self, key: &str) -> bool {
        self.seen.contains(&key_hash(key))
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

    /// Remembers `key`; a `duplicate-key` error if an earlier row had it.
    pub fn remember(&mut self, key: &str) -> Result<(), RecordError> {
        if self.seen.insert(key_hash(key)) {
            Ok(())
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
            Err(e)
        }
    }

    /// `key_text` then `remember`: the key of a row that may be sent.
    pub fn check(&mut self, cell: &Cell) -> Result<String, RecordError> {
        let key = self.key_text(cell)?;
        self.remember(&key)?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_duplicate() {
        let mut k = KeyChecker::new("id");
        assert_eq!(k.check(&Cell::Integer(1)).unwrap(), "1");
        assert_eq!(k.check(&Cell::Text("a".into())).unwrap(), "a");
        assert_eq!(k.check(&Cell::Integer(1)).unwrap_err().code, ErrorCode::DuplicateKey);
        assert_eq!(k.check(&Cell::Null).unwrap_err().code, ErrorCode::MissingField);
        assert_eq!(k.check(&Cell::Text("  ".into())).unwrap_err().code, ErrorCode::MissingField);
        assert_eq!(k.len(), 2);
    }
}
