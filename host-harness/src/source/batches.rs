//! Chunks of source items, so the planner maps and diffs a few hundred rows at a time.

use crate::source::{SourceError, SourceItem};

/// Groups a source's items into chunks of at most `size` (the last may be shorter). On a source
/// error the items read before it come first, then the error, then the end.
pub fn batches<S: Iterator<Item = Result<SourceItem, SourceError>>>(source: S, size: usize) -> Batches<S> {
    Batches { source, size: size.max(1), pending_error: None, done: false }
}

/// See [`batches`].
pub struct Batches<S> {
    source: S,
    size: usize,
    pending_error: Option<SourceError>,
    done: bool,
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
        while out.len() < self.size {
            match self.source.next() {
                Some(Ok(item)) => out.push(item),
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

