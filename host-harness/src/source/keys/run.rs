//! One sorted run: distinct key hashes in ascending order, 16 bytes each (little-endian), in a
//! temporary file removed when the run is dropped. A sparse index (the first hash of every
//! block of `BLOCK_KEYS`) stays in memory, so a lookup is one positioned read of one block.

use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use tempfile::NamedTempFile;

/// Hashes per indexed block: 4 KiB, one page, per lookup; the index costs 1 bit per key.
pub const BLOCK_KEYS: usize = 256;
const HASH_BYTES: usize = 16;
const BLOCK_BYTES: usize = BLOCK_KEYS * HASH_BYTES;
/// Sequential reads (merges, the end-of-run join) go this many bytes at a time.
const READ_BYTES: usize = 64 * 1024;

/// A sorted run on disk.
pub struct Run {
    file: NamedTempFile,
    len: u64,
    /// The first hash of each block.
    index: Vec<u128>,
}

impl Run {
    /// Writes `sorted` (ascending, distinct) as a new run file in `dir`.
    pub fn write(dir: &Path, sorted: impl Iterator<Item = io::Result<u128>>) -> io::Result<Run> {
        let file = tempfile::Builder::new().prefix(".keys-").suffix(".run").tempfile_in(dir)?;
        let mut out = io::BufWriter::with_capacity(READ_BYTES, file.as_file());
        let mut index = Vec::new();
        let mut len = 0u64;
        for h in sorted {
            let h = h?;
            if len % BLOCK_KEYS as u64 == 0 {
                index.push(h);
            }
            out.write_all(&h.to_le_bytes())?;
            len += 1;
        }
        out.flush()?;
        drop(out);
        index.shrink_to_fit();
        Ok(Run { file, len, index })
    }

    /// Hashes in the run.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the run holds no hash.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file (for tests and messages).
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Whether `h` is in the run: the index names the only block that may hold it.
    pub fn contains(&self, h: u128) -> io::Result<bool> {
        let block = match self.index.partition_point(|&first| first <= h) {
            0 => return Ok(false),
            i => i - 1,
        };
        let start = block as u64 * BLOCK_KEYS as u64;
        let n = (self.len - start).min(BLOCK_KEYS as u64) as usize;
        let mut buf = [0u8; BLOCK_BYTES];
        self.file.as_file().read_exact_at(&mut buf[..n * HASH_BYTES], start * HASH_BYTES as u64)?;
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let v = decode(&buf[mid * HASH_BYTES..][..HASH_BYTES]);
            match v.cmp(&h) {
                std::cmp::Ordering::Equal => return Ok(true),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(false)
    }

    /// The hashes in ascending order, read `READ_BYTES` at a time.
    pub fn reader(&self) -> RunReader<'_> {
        RunReader { run: self, next: 0, buf: Vec::new(), at: 0 }
    }
}

fn decode(b: &[u8]) -> u128 {
    u128::from_le_bytes(b.try_into().expect("16 bytes"))
}

/// A run read in order.
pub struct RunReader<'a> {
    run: &'a Run,
    /// The next hash to load from the file.
    next: u64,
    buf: Vec<u8>,
    /// The next hash in `buf`.
    at: usize,
}

impl Iterator for RunReader<'_> {
    type Item = io::Result<u128>;

    fn next(&mut self) -> Option<io::Result<u128>> {
        if self.at * HASH_BYTES >= self.buf.len() {
            let n = (self.run.len - self.next).min((READ_BYTES / HASH_BYTES) as u64) as usize;
            if n == 0 {
                return None;
            }
            self.buf.resize(n * HASH_BYTES, 0);
            if let Err(e) = self.run.file.as_file().read_exact_at(&mut self.buf, self.next * HASH_BYTES as u64) {
                self.next = self.run.len;
                self.buf.clear();
                return Some(Err(e));
            }
            self.next += n as u64;
            self.at = 0;
        }
        let h = decode(&self.buf[self.at * HASH_BYTES..][..HASH_BYTES]);
        self.at += 1;
        Some(Ok(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_and_order_across_blocks() {
        let dir = test_kit::TempDir::new("run");
        // Even numbers, spread so blocks differ in their high bits too; 2.5 blocks.
        let keys: Vec<u128> = (0..(BLOCK_KEYS as u128 * 5 / 2)).map(|i| (i * 2) << 100 | i * 2).collect();
        let run = Run::write(dir.path(), keys.iter().map(|&k| Ok(k))).unwrap();
        assert_eq!(run.len(), keys.len() as u64);
        for &k in &keys {
            assert!(run.contains(k).unwrap(), "{k}");
            assert!(!run.contains(k + 1).unwrap(), "{}", k + 1);
        }
        assert!(!run.contains(u128::MAX).unwrap());
        assert_eq!(run.reader().collect::<io::Result<Vec<_>>>().unwrap(), keys);
    }
}
