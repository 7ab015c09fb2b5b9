//! What the source targets share: a fuzzed file read through `host_harness::source::open`, the
//! public entry the host's read stage uses, and the invariants every source keeps.

use std::collections::BTreeMap;
use std::path::PathBuf;

use host_harness::source::{SourceConfig, SourceItem, TypeHint};

/// The one scratch file of this fuzzing process (in memory when /dev/shm exists).
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::path::Path::new("/dev/shm");
    let dir = if dir.is_dir() { dir.to_path_buf() } else { std::env::temp_dir() };
    dir.join(format!("gladly-fuzz-{}-{name}", std::process::id()))
}

/// The type hints a fuzz input picks (by its first byte): none, or a set on the usual columns.
pub fn hints(pick: u8) -> BTreeMap<String, TypeHint> {
    let all = [
        ("id", TypeHint::Integer),
        ("ltv", TypeHint::Float),
        ("vip", TypeHint::Boolean),
        ("signed_up", TypeHint::Timestamp),
        ("attrs", TypeHint::Json),
        ("email", TypeHint::Text),
    ];
    all.iter()
        .enumerate()
        .filter(|(i, _)| pick & (1 << i) != 0)
        .map(|(_, (c, h))| ((*c).to_string(), *h))
        .collect()
}

/// Opens `cfg` and reads it to the end, checking the invariants: opening either fails cleanly
/// or yields a stream whose items are rows or invalid rows, at most one error which ends it,
/// never more items than the input has lines (+1), keys of rows unique and non-empty.
pub fn read_all(cfg: &SourceConfig, input: &[u8]) {
    let Ok(mut source) = host_harness::source::open(cfg) else {
        return;
    };
    // A record needs at least one byte of the file; a header or first object is another.
    let limit = input.len() + 2;
    let mut keys = std::collections::HashSet::new();
    let mut items = 0usize;
    let mut rows = 0usize;
    loop {
        let Some(item) = source.next() else { break };
        items += 1;
        assert!(items <= limit, "{items} items from {} bytes: the reader does not end", input.len());
        match item {
            Ok(SourceItem::Row(row)) => {
                rows += 1;
                assert!(!row.key.is_empty(), "a row without a key");
                assert!(keys.insert(row.key.clone()), "key {:?} returned twice", row.key);
                let mut names = std::collections::HashSet::new();
                for c in &row.columns {
                    assert!(names.insert(c.name.as_str()), "column {:?} twice in one row", c.name);
                }
            }
            Ok(SourceItem::Invalid(invalid)) => {
                assert!(!invalid.error.retryable, "an invalid row is never retryable");
                assert!(!invalid.error.message.is_empty());
                // Bounded: a message names where and what, not the whole input again and again.
                assert!(
                    invalid.error.message.len() <= 4096 + 2 * input.len(),
                    "message of {} bytes",
                    invalid.error.message.len()
                );
                let _ = invalid.into_row_error();
            }
            Err(e) => {
                let _ = e.to_string();
                assert!(source.next().is_none(), "a source error ends the source");
                break;
            }
        }
    }
    assert!(source.next().is_none(), "an ended source stays ended");
    assert!(source.keys_seen() >= rows);
    let _ = source.into_keys();
}

/// Splits `data` at the first `sep`: (before, after); all of it and nothing when absent.
pub fn split_once<'a>(data: &'a [u8], sep: &[u8]) -> (&'a [u8], &'a [u8]) {
    match data.windows(sep.len()).position(|w| w == sep) {
        Some(i) => (&data[..i], &data[i + sep.len()..]),
        None => (data, &[]),
    }
}

/// Text from bytes as a non-UTF-8 source would hand it over: invalid sequences replaced.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An HTTP answer written the way one reads it, so seeds can be written by hand:
///
/// ```text
/// STATUS [anything]
/// Name: value
/// …
///
/// body
/// ```
///
/// A status line that is not a number reads as the sum of its bytes (any `u16` is reachable).
/// Returns the status, the rest of the status line, the headers and the body.
pub fn parse_http(data: &[u8]) -> (u16, String, Vec<(String, String)>, Vec<u8>) {
    let (head, body) = split_once(data, b"\n\n");
    let (status_line, header_block) = split_once(head, b"\n");
    let (code, rest) = split_once(status_line, b" ");
    let status = std::str::from_utf8(code)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map(|n| (n % 65536) as u16)
        .unwrap_or_else(|| code.iter().fold(0u16, |a, b| a.wrapping_mul(31).wrapping_add(u16::from(*b))));
    let headers = header_block
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (name, value) = split_once(line, b":");
            let value = value.strip_prefix(b" ").unwrap_or(value);
            (lossy(name), lossy(value))
        })
        .collect();
    (status, lossy(rest), headers, body.to_vec())
}
