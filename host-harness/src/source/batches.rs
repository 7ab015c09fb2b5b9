//! Chunks of source items, so the planner maps and diffs a few hundred rows at a time, and
//! never more than a few megabytes however wide the rows are.

use crate::source::budget::item_bytes;
use crate::source::{SourceError, SourceItem};

/// Groups a source's items into chunks of at most `size` items (the last may be shorter). On a
/// source error the items read before it come first, then the error, then the end. Chunks are
/// not limited in bytes unless [`Batches::max_bytes`] says so.
pub fn batches<S: Iterator<Item = Result<SourceItem, SourceError>>>(source: S, size: usize) -> Batches<S> {
    Batches { source, size: size.max(1), max_bytes: usize::MAX, pending_error: None, done: false }
}

/// See [`batches`].
pub struct Batches<S> {
    source: S,
    size: usize,
    max_bytes: usize,
    pending_error: Option<SourceError>,
    done: bool,
}

impl<S> Batches<S> {
    /// Also closes a chunk once its items reach `bytes` (approximate: key, column names and
    /// values, see [`item_bytes`](crate::source::budget::item_bytes)). The item that reaches it
    /// stays in the chunk, so a chunk always holds at least one item and exceeds `bytes` by at
    /// most one row (itself capped by the source's `max_row_bytes`).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes.max(1);
        self
    }
}

impl<S: Iterator<Item = Result<SourceItem, SourceError>>> Iterator for Batches<S> {
    type Item = Result<Vec<SourceItem>, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending_error.take() {
            self.done = true;
            return Some(Err(e));
        }
        if self.done {
            return None;
        }
        let mut out = Vec::with_capacity(self.size);
        let mut bytes = 0usize;
        while out.len() < self.size && bytes < self.max_bytes {
            match self.source.next() {
                Some(Ok(item)) => {
                    bytes = bytes.saturating_add(item_bytes(&item));
                    out.push(item);
                }
                Some(Err(e)) => {
                    if out.is_empty() {
                        self.done = true;
                        return Some(Err(e));
                    }
                    self.pending_error = Some(e);
                    return Some(Ok(out));
                }
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        if out.is_empty() {
            None
        } else {
            Some(Ok(out))
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::model::{Cell, Column, Row};

    /// A row of exactly 1 KiB as `item_bytes` counts it: key `kNN` (3) + `v` (1) + 1020 bytes.
    fn kib_row(i: usize) -> Result<SourceItem, SourceError> {
        let key = format!("k{i:02}");
        Ok(SourceItem::Row(Row { key, columns: vec![Column { name: "v".into(), value: Cell::Text("x".repeat(1020)) }] }))
    }

    fn sizes(chunks: impl Iterator<Item = Result<Vec<SourceItem>, SourceError>>) -> Vec<usize> {
        chunks.map(|c| c.map(|c| c.len()).unwrap_or(0)).collect()
    }

    #[test]
    fn chunks_close_at_the_byte_budget_before_the_row_count() {
        let rows = (0..10).map(kib_row);
        assert_eq!(sizes(batches(rows, 500).max_bytes(3 * 1024)), [3, 3, 3, 1]);
    }

    #[test]
    fn the_row_count_still_closes_chunks_of_small_rows() {
        let rows = (0..10).map(kib_row);
        assert_eq!(sizes(batches(rows, 4).max_bytes(1024 * 1024)), [4, 4, 2]);
    }

    #[test]
    fn a_row_bigger_than_the_budget_is_a_chunk_of_its_own() {
        let rows = (0..3).map(kib_row);
        assert_eq!(sizes(batches(rows, 500).max_bytes(100)), [1, 1, 1]);
    }
}
