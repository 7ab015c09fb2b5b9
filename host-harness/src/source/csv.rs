//! CSV: a header row, then records. Every cell is text (empty → NULL) until a type hint says
//! otherwise. Records are read as bytes so that a non-UTF-8 cell makes only its own row invalid.
//!
//! Size caps: a cell or record over the [`InputBudget`] is an invalid row. They are checked after
//! the `csv` crate has read the record, because its reader grows its buffer to hold a whole
//! record (a quoted field may span lines, so a line-length guard under it cannot tell where a
//! record ends). A huge record therefore costs its size in memory once, is never copied, and the
//! reader then goes on; bounding the read itself would mean parsing with `csv-core` directly.

use super::budget::{InputBudget, Origin};
use super::{cell_error, convert::short, open_input, CsvConfig, RawRecord, Reader, SourceError};
use crate::contract::model::{Cell, Column, ErrorCode};

pub(crate) struct CsvReader {
    reader: ::csv::Reader<Box<dyn std::io::Read + Send>>,
    columns: Vec<String>,
    describe: String,
    record: ::csv::ByteRecord,
    count: u64,
    budget: InputBudget,
}

impl CsvReader {
    pub(crate) fn open(cfg: &CsvConfig) -> Result<Self, SourceError> {
        let describe = if cfg.path.as_os_str() == "-" {
            "CSV on standard input".to_string()
        } else {
            format!("CSV file {}", cfg.path.display())
        };
        let input = open_input(&cfg.path)?;
        Self::from_reader(input, cfg, describe)
    }

    pub(crate) fn from_reader(
        input: Box<dyn std::io::Read + Send>,
        cfg: &CsvConfig,
        describe: String,
    ) -> Result<Self, SourceError> {
        let delimiter = match cfg.delimiter {
            None => b',',
            Some(c) if c.is_ascii() => c as u8,
            Some(c) => {
                return Err(SourceError::Config(format!(
                    "`delimiter` must be one ASCII character, not {c:?}"
                )))
            }
        };
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .delimiter(delimiter)
            .from_reader(input);
        let header = reader.byte_headers().map_err(|e| read_error(&describe, "line 1", &e))?.clone();
        if header.is_empty() {
            return Err(SourceError::Header { what: describe, problem: "is missing: the file is empty; the first line must name the columns".into() });
        }
        let mut columns = Vec::with_capacity(header.len());
        for (i, field) in header.iter().enumerate() {
            let field = if i == 0 { field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field) } else { field };
            let name = match std::str::from_utf8(field) {
                Ok(s) => s.trim().to_string(),
                Err(e) => {
                    return Err(SourceError::Header {
                        what: describe,
                        problem: format!(
                            "is not valid UTF-8 (column {}, byte {}); re-encode the file as UTF-8, e.g. `iconv -f WINDOWS-1252 -t UTF-8 in.csv > out.csv`",
                            i + 1,
                            e.valid_up_to()
                        ),
                    })
                }
            };
            if name.is_empty() {
                return Err(SourceError::Header { what: describe, problem: format!("has an empty name for column {}; name every column", i + 1) });
            }
            if columns.contains(&name) {
                return Err(SourceError::Header { what: describe, problem: format!("names column `{name}` twice; column names must be unique") });
            }
            columns.push(name);
        }
        Ok(CsvReader { reader, columns, describe, record: ::csv::ByteRecord::new(), count: 0, budget: cfg.budget })
    }
}

fn read_error(describe: &str, location: &str, e: &::csv::Error) -> SourceError {
    SourceError::Read { what: describe.to_string(), location: location.to_string(), message: e.to_string() }
}

impl Reader for CsvReader {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn describe(&self) -> &str {
        &self.describe
    }

    fn next_record(&mut self) -> Option<Result<RawRecord, SourceError>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                self.count += 1;
                let line = self.record.position().map(|p| p.line());
                let where_ = line.map_or_else(|| format!("record {}", self.count), |l| format!("line {l}"));
                let mut columns = Vec::with_capacity(self.columns.len());
                let mut error = None;
                for (name, bytes) in self.columns.iter().zip(self.record.iter()) {
                    let over = self.budget.check_cell(&where_, name, bytes.len(), Origin::File);
                    let value = if bytes.is_empty() {
                        Cell::Null
                    } else if over.is_some() {
                        // Never copied: the row is reported, not sent.
                        error = error.or(over);
                        Cell::Null
                    } else {
                        match std::str::from_utf8(bytes) {
                            Ok(s) => Cell::Text(s.to_string()),
                            Err(e) => {
                                if error.is_none() {
                                    let bad = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
                                    error = Some(cell_error(
                                        ErrorCode::InvalidValue,
                                        name,
                                        format!(
                                            "{where_}, column `{name}`: not valid UTF-8 (byte 0x{bad:02X} after `{}`); re-encode the file as UTF-8, e.g. `iconv -f WINDOWS-1252 -t UTF-8 in.csv > out.csv`",
                                            short(&String::from_utf8_lossy(&bytes[..e.valid_up_to()]))
                                        ),
                                    ));
                                }
                                Cell::Null
                            }
                        }
                    };
                    columns.push(Column { name: name.clone(), value });
                }
                // The fields' bytes, without delimiters and quotes.
                let error = error.or_else(|| self.budget.check_row(&where_, self.record.as_slice().len(), Origin::File));
                Some(Ok(RawRecord { record: self.count, line, columns, error }))
            }
            Err(e) => match e.kind() {
                ::csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
                    self.count += 1;
                    let line = pos.as_ref().map(|p| p.line());
                    let where_ = line.map_or_else(|| format!("record {}", self.count), |l| format!("line {l}"));
                    let mut error = cell_error(
                        ErrorCode::InvalidValue,
                        "",
                        format!(
                            "{where_}: has {len} fields but the header has {expected_len}; quote fields that contain the delimiter or line breaks"
                        ),
                    );
                    error.field = None;
                    Some(Ok(RawRecord { record: self.count, line, columns: Vec::new(), error: Some(error) }))
                }
                _ => {
                    let location = e
                        .position()
                        .map_or_else(|| format!("record {}", self.count + 1), |p| format!("line {}", p.line()));
                    Some(Err(read_error(&self.describe, &location, &e)))
                }
            },
        }
    }
}
