//! JSON Lines: one JSON object per line; blank lines are skipped.
//!
//! Types: `null` → NULL, `true/false` → boolean, a number that fits i64 → integer, a larger
//! whole number → text (exact), any other number → float, a string → text, an object or array →
//! JSON text (compact, keys sorted). The columns are the first object's fields in file order;
//! a later object's missing fields are NULL and its extra fields follow. A line that is not UTF-8,
//! not JSON or not an object is an invalid row naming its line number.
//!
//! Size caps: a line is read through `Read::take` at most `max_row_bytes` (+ its newline) at a
//! time; a longer line is skipped to its newline without being kept, so a 1 GB line costs about
//! the cap in memory, and becomes one invalid row. A cell over `max_cell_bytes` (a string's
//! bytes, an object's or array's compact JSON) makes its row invalid, naming the column.

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, Read};

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::budget::{cell_bytes, InputBudget, Origin};
use super::{open_input, JsonlConfig, RawRecord, Reader, SourceError};
use crate::contract::model::{Cell, Column, ErrorCategory, ErrorCode, RecordError};

pub(crate) struct JsonlReader {
    input: std::io::BufReader<Box<dyn std::io::Read + Send>>,
    columns: Vec<String>,
    describe: String,
    line: u64,
    count: u64,
    buf: Vec<u8>,
    pending: VecDeque<Result<RawRecord, SourceError>>,
    eof: bool,
    budget: InputBudget,
}

/// A JSON object with its fields in document order.
struct OrderedObject(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if let Some(slot) = out.iter_mut().find(|(name, _): &&mut (String, Value)| *name == k) {
                        slot.1 = v; // a repeated field: the last one wins, as in most parsers
                    } else {
                        out.push((k, v));
                    }
                }
                Ok(OrderedObject(out))
            }
        }
        d.deserialize_map(V)
    }
}

fn to_cell(v: Value) -> Cell {
    match v {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Boolean(b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Cell::Integer(i)
            } else if n.is_u64() {
                Cell::Text(n.to_string())
            } else {
                Cell::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Cell::Text(s),
        v @ (Value::Array(_) | Value::Object(_)) => Cell::Json(v.to_string()),
    }
}

impl JsonlReader {
    pub(crate) fn open(cfg: &JsonlConfig) -> Result<Self, SourceError> {
        let describe = if cfg.path.as_os_str() == "-" {
            "JSON Lines on standard input".to_string()
        } else {
            format!("JSON Lines file {}", cfg.path.display())
        };
        let input = open_input(&cfg.path)?;
        Ok(Self::from_reader(input, cfg, describe))
    }

    /// Reads `input` (the file or stdin `open` found), up to its first object.
    fn from_reader(input: Box<dyn std::io::Read + Send>, cfg: &JsonlConfig, describe: String) -> Self {
        let mut r = JsonlReader {
            input: std::io::BufReader::with_capacity(64 * 1024, input),
            columns: Vec::new(),
            describe,
            line: 0,
            count: 0,
            buf: Vec::with_capacity(1024),
            pending: VecDeque::new(),
            eof: false,
            budget: cfg.budget,
        };
        // Read ahead to the first object to learn the columns (bad lines before it are kept).
        while let Some(item) = r.read_one() {
            let found = matches!(&item, Ok(rec) if rec.error.is_none());
            let stop = item.is_err() || found;
            if let Ok(rec) = &item {
                if found {
                    r.columns = rec.columns.iter().map(|c| c.name.clone()).collect();
                }
            }
            r.pending.push_back(item);
            if stop {
                break;
            }
        }
        r
    }

    fn invalid(&mut self, message: String) -> RawRecord {
        RawRecord {
            record: self.count,
            line: Some(self.line),
            columns: Vec::new(),
            error: Some(RecordError::host(ErrorCode::InvalidValue, ErrorCategory::SkipRecord, message)),
        }
    }

    fn read_error(&mut self, e: &std::io::Error) -> SourceError {
        self.eof = true;
        SourceError::Read { what: self.describe.clone(), location: format!("line {}", self.line + 1), message: e.to_string() }
    }

    /// Reads past the rest of an overlong line without keeping it; returns the line's bytes
    /// skipped, its newline not counted.
    fn skip_line(&mut self) -> std::io::Result<usize> {
        let mut skipped = 0;
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                return Ok(skipped);
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.input.consume(i + 1);
                    return Ok(skipped + i);
                }
                None => {
                    let n = available.len();
                    self.input.consume(n);
                    skipped += n;
                }
            }
        }
    }

    fn read_one(&mut self) -> Option<Result<RawRecord, SourceError>> {
        loop {
            if self.eof {
                return None;
            }
            self.buf.clear();
            // At most the row cap and the newline: a longer line is never held whole.
            let limit = self.budget.max_row_bytes.saturating_add(1);
            match (&mut self.input).take(limit as u64).read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.eof = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => return Some(Err(self.read_error(&e))),
            }
            if self.buf.len() == limit && self.buf.last() != Some(&b'\n') {
                let rest = match self.skip_line() {
                    Ok(n) => n,
                    Err(e) => return Some(Err(self.read_error(&e))),
                };
                self.line += 1;
                self.count += 1;
                let len = self.buf.len() + rest;
                let at = format!("line {}", self.line);
                // Always over the cap here: `len` is at least `max_row_bytes + 1`.
                let error = self.budget.check_row(&at, len, Origin::File);
                return Some(Ok(RawRecord { record: self.count, line: Some(self.line), columns: Vec::new(), error }));
            }
            self.line += 1;
            let mut bytes: &[u8] = &self.buf;
            if self.line == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.count += 1;
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    let msg = format!(
                        "line {}: not valid UTF-8 (byte {} of the line); re-encode the file as UTF-8, e.g. `iconv -f WINDOWS-1252 -t UTF-8 in.jsonl > out.jsonl`",
                        self.line,
                        e.valid_up_to() + 1
                    );
                    return Some(Ok(self.invalid(msg)));
                }
            };
            let object = match serde_json::from_str::<OrderedObject>(text) {
                Ok(o) => o,
                Err(e) => {
                    let kind = match serde_json::from_str::<Value>(text) {
                        Ok(Value::Array(_)) => "expected a JSON object, found an array".to_string(),
                        Ok(other) => format!("expected a JSON object, found `{}`", super::convert::short(&other.to_string())),
                        Err(_) => format!("not valid JSON ({e})"),
                    };
                    let msg = format!("line {}: {kind}; each line must hold one JSON object", self.line);
                    return Some(Ok(self.invalid(msg)));
                }
            };
            let mut fields = object.0;
            let mut columns = Vec::with_capacity(self.columns.len().max(fields.len()));
            for name in &self.columns {
                let value = match fields.iter().position(|(k, _)| k == name) {
                    Some(i) => to_cell(fields.remove(i).1),
                    None => Cell::Null,
                };
                columns.push(Column { name: name.clone(), value });
            }
            for (name, v) in fields {
                columns.push(Column { name, value: to_cell(v) });
            }
            let at = format!("line {}", self.line);
            let mut error = None;
            for c in &mut columns {
                if let Some(e) = self.budget.check_cell(&at, &c.name, cell_bytes(&c.value), Origin::File) {
                    c.value = Cell::Null; // the row is reported, not sent: drop the value now
                    error = error.or(Some(e));
                }
            }
            return Some(Ok(RawRecord { record: self.count, line: Some(self.line), columns, error }));
        }
    }
}

impl Reader for JsonlReader {
    fn columns(&self) -> &[String] {
        &self.columns
    }
    fn describe(&self) -> &str {
        &self.describe
    }
    fn next_record(&mut self) -> Option<Result<RawRecord, SourceError>> {
        if let Some(p) = self.pending.pop_front() {
            return Some(p);
        }
        self.read_one()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::InputBudget;

    /// `len` bytes of `x` on one line, then `tail`, produced as read: never held whole.
    struct LongLine {
        left: usize,
        tail: std::io::Cursor<&'static [u8]>,
    }

    impl std::io::Read for LongLine {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.left == 0 {
                return self.tail.read(out);
            }
            let n = out.len().min(self.left);
            out[..n].fill(b'x');
            self.left -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_line_far_over_the_cap_is_never_held_whole() {
        let cfg = JsonlConfig {
            path: "-".into(),
            primary_key: "id".into(),
            types: Default::default(),
            budget: InputBudget { max_cell_bytes: 1024, max_row_bytes: 4096, ..InputBudget::default() },
        };
        let input = LongLine { left: 64 * 1024 * 1024, tail: std::io::Cursor::new(&b"\n{\"id\": 2}\n"[..]) };
        let mut r = JsonlReader::from_reader(Box::new(input), &cfg, "test".into());
        let first = r.next_record().and_then(Result::ok).expect("a record");
        assert_eq!(first.error.map(|e| e.message).as_deref(), Some("line 1: the row is 64 MiB and exceeds the 4 KiB row limit; shorten its values or move some columns to another file, or raise `budget.max_row_bytes` in `[source]`"));
        // The line buffer grew to the cap and its newline, not to the line.
        assert!(r.buf.capacity() < 64 * 1024, "buffer grew to {} bytes", r.buf.capacity());
    }
}
