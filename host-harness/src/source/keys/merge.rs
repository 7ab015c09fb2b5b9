//! Streaming k-way merge of sorted hash streams, and the merge-join that counts the hashes of
//! one sorted stream missing from another.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;

/// A sorted stream of hashes (a run being read, or a sorted slice in memory).
pub type Sorted<'a> = Box<dyn Iterator<Item = io::Result<u128>> + 'a>;

/// The union of sorted streams, in order; holds one hash per stream.
pub struct Merge<'a> {
    streams: Vec<Sorted<'a>>,
    heap: BinaryHeap<Reverse<(u128, usize)>>,
    started: bool,
}

impl<'a> Merge<'a> {
    /// Merges `streams` (each ascending).
    pub fn new(streams: Vec<Sorted<'a>>) -> Merge<'a> {
        let heap = BinaryHeap::with_capacity(streams.len());
        Merge { streams, heap, started: false }
    }

    /// Puts the next hash of stream `i` on the heap.
    fn refill(&mut self, i: usize) -> io::Result<()> {
        if let Some(h) = self.streams[i].next() {
            self.heap.push(Reverse((h?, i)));
        }
        Ok(())
    }
}

impl Iterator for Merge<'_> {
    type Item = io::Result<u128>;

    fn next(&mut self) -> Option<io::Result<u128>> {
        if !self.started {
            self.started = true;
            for i in 0..self.streams.len() {
                if let Err(e) = self.refill(i) {
                    return Some(Err(e));
                }
            }
        }
        let Reverse((h, i)) = self.heap.pop()?;
        if let Err(e) = self.refill(i) {
            return Some(Err(e));
        }
        Some(Ok(h))
    }
}

/// How many hashes of `a` are not in `b` (both ascending and distinct): one pass over each.
pub fn count_missing(a: impl Iterator<Item = io::Result<u128>>, b: impl Iterator<Item = io::Result<u128>>) -> io::Result<u64> {
    let mut b = b.peekable();
    let mut missing = 0;
    for x in a {
        let x = x?;
        loop {
            match b.peek() {
                Some(Ok(y)) if *y < x => {
                    b.next();
                }
                Some(Ok(y)) => {
                    if *y != x {
                        missing += 1;
                    }
                    break;
                }
                Some(Err(_)) => return Err(b.next().and_then(Result::err).expect("an error was peeked")),
                None => {
                    missing += 1;
                    break;
                }
            }
        }
    }
    Ok(missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(v: &[u128]) -> Sorted<'_> {
        Box::new(v.iter().map(|&h| Ok(h)))
    }

    #[test]
    fn merges_in_order() {
        let (a, b, c) = ([1, 4, 9], [2, 3, 10], []);
        let m: Vec<u128> = Merge::new(vec![stream(&a), stream(&b), stream(&c)]).map(Result::unwrap).collect();
        assert_eq!(m, [1, 2, 3, 4, 9, 10]);
    }

    #[test]
    fn counts_what_is_missing() {
        let ok = |v: &'static [u128]| v.iter().map(|&h| Ok(h));
        assert_eq!(count_missing(ok(&[1, 2, 3, 7]), ok(&[2, 3, 4, 5])).unwrap(), 2, "1 and 7");
        assert_eq!(count_missing(ok(&[]), ok(&[1])).unwrap(), 0);
        assert_eq!(count_missing(ok(&[5, 6]), ok(&[])).unwrap(), 2);
        assert_eq!(count_missing(ok(&[0, u128::MAX]), ok(&[0, u128::MAX])).unwrap(), 0);
    }
}
