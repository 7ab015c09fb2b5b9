//! The input budget: how big one warehouse cell, one row and one planning chunk may be.
//!
//! Warehouse cells are untrusted. A Gladly profile field is small (a name, an email, a few
//! custom attributes), so a cell of megabytes is an error in the warehouse, not data: it becomes
//! an invalid row naming its column, its size, the limit and the fix, and the run goes on with
//! the next row. Without a cap one poison row could hold the reader, the planner's chunk and the
//! plugin's memory hostage.
//!
//! Set in the job's `[source.budget]` table; every key is optional:
//!
//! ```toml
//! [source.budget]
//! max_cell_bytes = 65536     # 64 KiB
//! max_row_bytes = 1048576    # 1 MiB
//! chunk_bytes = 4194304      # 4 MiB
//! ```

use serde::{Deserialize, Serialize};

use crate::contract::model::{Cell, Column, ErrorCode, RecordError};
use crate::source::reader::cell_error;
use crate::source::SourceItem;

/// Default cap on one cell: 64 KiB. Gladly's longest profile values (a note-like custom
/// attribute, an address) are a few KiB at most; 64 KiB leaves a wide margin for JSON cells
/// while keeping a planning chunk of 500 rows in the low megabytes.
pub const DEFAULT_MAX_CELL_BYTES: usize = 64 * 1024;

/// Default cap on one row (for CSV and JSON Lines, its line): 1 MiB, sixteen full cells. A row
/// bigger than that cannot become a sensible profile and would only cost memory.
pub const DEFAULT_MAX_ROW_BYTES: usize = 1024 * 1024;

/// Default size at which a planning chunk closes: 4 MiB, so a chunk of wide rows stays as cheap
/// to hold (and to hand to a plugin) as one of small rows, whatever the row count says.
pub const DEFAULT_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Size caps on what a source reads. The defaults apply to every key left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputBudget {
    /// Largest cell, in bytes of its text (UTF-8); numbers and booleans count 8 and 1.
    pub max_cell_bytes: usize,
    /// Largest row: its line for CSV and JSON Lines, the sum of its cells for databases.
    pub max_row_bytes: usize,
    /// A planning chunk closes once its rows reach this many bytes (or the row count).
    pub chunk_bytes: usize,
}

impl Default for InputBudget {
    fn default() -> Self {
        InputBudget {
            max_cell_bytes: DEFAULT_MAX_CELL_BYTES,
            max_row_bytes: DEFAULT_MAX_ROW_BYTES,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
        }
    }
}

/// Where the oversized value lives, so the fix names what the operator can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A CSV or JSON Lines file.
    File,
    /// The result of a database query.
    Query,
}

impl InputBudget {
    /// True when every value is the default (then a job file written back leaves it out).
    pub fn is_default(&self) -> bool {
        *self == InputBudget::default()
    }

    /// Checks the values make sense; the message names the key and the fix.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [("max_cell_bytes", self.max_cell_bytes), ("max_row_bytes", self.max_row_bytes), ("chunk_bytes", self.chunk_bytes)] {
            if v == 0 {
                return Err(format!("`budget.{key}` is 0; set a positive number of bytes or leave it out for the default"));
            }
        }
        if self.max_cell_bytes > self.max_row_bytes {
            return Err(format!(
                "`budget.max_cell_bytes` ({}) is larger than `budget.max_row_bytes` ({}); a cell is part of a row, so raise `max_row_bytes` too",
                self.max_cell_bytes, self.max_row_bytes
            ));
        }
        Ok(())
    }

    /// The error for a cell of `len` bytes when it is over the cap; `at` is `line 8` or `record 7`.
    pub(crate) fn check_cell(&self, at: &str, column: &str, len: usize, origin: Origin) -> Option<RecordError> {
        (len > self.max_cell_bytes).then(|| {
            let fix = match origin {
                Origin::File => "shorten the value or remove the column from the file",
                Origin::Query => "shorten the value in the warehouse or leave the column out of `query` (or cut it there, e.g. `substr(col, 1, 1000)`)",
            };
            cell_error(
                ErrorCode::InvalidValue,
                column,
                format!(
                    "{at}, column `{column}`: {} exceeds the {} cell limit; {fix}, or raise `budget.max_cell_bytes` in `[source]`",
                    size(len),
                    size(self.max_cell_bytes)
                ),
            )
        })
    }

    /// The error for a row of `len` bytes when it is over the cap (no column: the whole row is).
    pub(crate) fn check_row(&self, at: &str, len: usize, origin: Origin) -> Option<RecordError> {
        (len > self.max_row_bytes).then(|| {
            let fix = match origin {
                Origin::File => "shorten its values or move some columns to another file",
                Origin::Query => "select fewer or shorter columns in `query`",
            };
            let mut e = cell_error(
                ErrorCode::InvalidValue,
                "",
                format!(
                    "{at}: the row is {} and exceeds the {} row limit; {fix}, or raise `budget.max_row_bytes` in `[source]`",
                    size(len),
                    size(self.max_row_bytes)
                ),
            );
            e.field = None;
            e
        })
    }
}

/// A cell's size as the budget counts it: its text's bytes; a number 8, a boolean 1.
pub(crate) fn cell_bytes(cell: &Cell) -> usize {
    match cell {
        Cell::Null => 0,
        Cell::Boolean(_) => 1,
        Cell::Integer(_) | Cell::Float(_) => 8,
        Cell::Text(s) | Cell::Timestamp(s) | Cell::Json(s) => s.len(),
    }
}

/// Approximate memory of a source item, for closing planning chunks: key, column names and
/// values; an invalid row counts its key and message.
pub fn item_bytes(item: &SourceItem) -> usize {
    match item {
        SourceItem::Row(row) => row.key.len() + row.columns.iter().map(column_bytes).sum::<usize>(),
        SourceItem::Invalid(bad) => bad.key.as_ref().map_or(0, String::len) + bad.error.message.len(),
    }
}

fn column_bytes(c: &Column) -> usize {
    c.name.len() + cell_bytes(&c.value)
}

/// `512 bytes`, `64 KiB`, `1.5 MiB`, `2.0 GiB`: exact below 1 KiB, one decimal above unless whole.
pub(crate) fn size(n: usize) -> String {
    const K: usize = 1024;
    let (unit, div) = match n {
        n if n < K => return format!("{n} bytes"),
        n if n < K * K => ("KiB", K),
        n if n < K * K * K => ("MiB", K * K),
        _ => ("GiB", K * K * K),
    };
    if n.is_multiple_of(div) {
        format!("{} {unit}", n / div)
    } else {
        format!("{:.1} {unit}", n as f64 / div as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(65_536), "64 KiB");
        assert_eq!(size(2_000_000), "1.9 MiB");
        assert_eq!(size(8 * 1024 * 1024), "8 MiB");
    }

    #[test]
    fn a_cell_at_the_cap_passes_and_one_byte_more_names_column_size_limit_and_fix() {
        let b = InputBudget { max_cell_bytes: 10, ..InputBudget::default() };
        assert_eq!(b.check_cell("line 8", "notes", 10, Origin::File), None);
        let e = b.check_cell("line 8", "notes", 11, Origin::File).expect("over the cap");
        assert_eq!(e.field.as_deref(), Some("notes"));
        assert_eq!(
            e.message,
            "line 8, column `notes`: 11 bytes exceeds the 10 bytes cell limit; shorten the value or remove the column from the file, or raise `budget.max_cell_bytes` in `[source]`"
        );
    }

    #[test]
    fn a_row_over_the_cap_names_no_column() {
        let b = InputBudget { max_row_bytes: 1024, ..InputBudget::default() };
        assert_eq!(b.check_row("record 3", 1024, Origin::Query), None);
        let e = b.check_row("record 3", 2048, Origin::Query).expect("over the cap");
        assert_eq!(e.field, None);
        assert_eq!(
            e.message,
            "record 3: the row is 2 KiB and exceeds the 1 KiB row limit; select fewer or shorter columns in `query`, or raise `budget.max_row_bytes` in `[source]`"
        );
    }

    #[test]
    fn a_zero_or_inverted_budget_is_refused() {
        let zero = InputBudget { chunk_bytes: 0, ..InputBudget::default() };
        assert!(zero.validate().unwrap_err().contains("`budget.chunk_bytes` is 0"));
        let inverted = InputBudget { max_cell_bytes: 2048, max_row_bytes: 1024, ..InputBudget::default() };
        assert!(inverted.validate().unwrap_err().contains("raise `max_row_bytes`"));
        assert_eq!(InputBudget::default().validate(), Ok(()));
    }

    #[test]
    fn a_row_counts_key_names_and_values() {
        let row = crate::contract::model::Row {
            key: "k1".into(),
            columns: vec![
                Column { name: "id".into(), value: Cell::Text("k1".into()) },
                Column { name: "n".into(), value: Cell::Integer(3) },
                Column { name: "gone".into(), value: Cell::Null },
            ],
        };
        // "k1" + "id" + "k1" + "n" + 8 + "gone" + 0
        assert_eq!(item_bytes(&SourceItem::Row(row)), 2 + 2 + 2 + 1 + 8 + 4);
    }
}
