//! Turns a reader's raw records into source items: type hints applied, the key read and checked
//! (present, unique), every problem reported as an invalid row naming the column and the fix.

use std::collections::{BTreeMap, HashMap};

use crate::contract::model::{Cell, ErrorCode, RecordError, Row};
use crate::source::reader::{RawRecord, Reader, cell_error};
use crate::source::{InvalidRow, KeyChecker, RowSource, SourceError, SourceItem, TypeHint, convert};

/// Applies hints and key checks to a reader's records.
pub(crate) struct Keyed<R: Reader> {
    reader: R,
    key_column: String,
    key_index: Option<usize>,
    hints: HashMap<String, TypeHint>,
    hints_by_index: Vec<Option<TypeHint>>,
    keys: KeyChecker,
    done: bool,
}

impl<R: Reader> Keyed<R> {
    pub(crate) fn new(reader: R, key: &str, types: &BTreeMap<String, TypeHint>, fixed_columns: bool) -> Result<Self, SourceError> {
        let cols = reader.columns();
        let available = || {
            if cols.is_empty() {
                "(none)".to_string()
            } else {
                cols.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            }
        };
        let key_index = cols.iter().position(|c| c == key);
        // JSON Lines: checked against the first object only, and only if there is one.
        if key_index.is_none() && (fixed_columns || !cols.is_empty()) {
            return Err(SourceError::KeyColumnMissing {
                column: key.to_string(),
                what: reader.describe().to_string(),
                available: available(),
            });
        }
        if fixed_columns {
            if let Some(missing) = types.keys().find(|t| !cols.contains(t)) {
                return Err(SourceError::HintColumnMissing {
                    column: missing.clone(),
                    what: reader.describe().to_string(),
                    available: available(),
                });
            }
        }
        let hints_by_index = cols.iter().map(|c| types.get(c).copied()).collect();
        Ok(Keyed {
            key_column: key.to_string(),
            key_index,
            hints: types.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            hints_by_index,
            keys: KeyChecker::new(key),
            reader,
            done: false,
        })
    }

    fn hint(&self, index: usize, name: &str) -> Option<TypeHint> {
        if self.reader.columns().get(index).is_some_and(|c| c == name) {
            self.hints_by_index[index]
        } else {
            self.hints.get(name).copied()
        }
    }

    /// One record as a row or an invalid row; `Err` only when the key set fails (its run files).
    fn process(&mut self, raw: RawRecord) -> Result<SourceItem, SourceError> {
        let RawRecord { record, line, mut columns, error } = raw;
        let invalid = |key: Option<String>, error: RecordError| Ok(SourceItem::Invalid(InvalidRow { record, line, key, error }));
        let where_ = match line {
            Some(l) => format!("line {l}"),
            None => format!("record {record}"),
        };
        let key_pos = match self.key_index {
            Some(i) if columns.get(i).is_some_and(|c| c.name == self.key_column) => Some(i),
            _ => columns.iter().position(|c| c.name == self.key_column),
        };
        // 1. The key, typed by its hint.
        let key_cell = match key_pos {
            Some(i) => {
                let cell = std::mem::replace(&mut columns[i].value, Cell::Null);
                match self.hint(i, &self.key_column) {
                    Some(h) => convert::coerce(cell, h),
                    None => Ok(cell),
                }
            }
            None => Ok(Cell::Null),
        };
        let key_cell = match key_cell {
            Ok(c) => c,
            Err(reason) => {
                let e = error.unwrap_or_else(|| {
                    cell_error(ErrorCode::InvalidValue, &self.key_column, format!("{where_}, column `{}`: {reason}", self.key_column))
                });
                return invalid(None, e);
            }
        };
        let key = self.keys.key_text(&key_cell).ok();
        // 2. A reader error (bad encoding, bad line): report it with the key, and remember the key
        //    so a later row repeating it is still a duplicate.
        if let Some(e) = error {
            if let Some(k) = &key {
                // Already a duplicate or not, the row is invalid either way.
                let _ = self.keys.remember(k)?;
            }
            return invalid(key, e);
        }
        // 3. Missing and duplicate keys.
        let key = match self.keys.key_text(&key_cell) {
            Ok(k) => k,
            Err(mut e) => {
                e.message = format!("{where_}: {}", e.message);
                return invalid(None, e);
            }
        };
        if let Err(mut e) = self.keys.remember(&key)? {
            e.message = format!("{where_}: {}", e.message);
            return invalid(Some(key), e);
        }
        if let Some(i) = key_pos {
            columns[i].value = key_cell;
        }
        // 4. Hints on the other columns.
        for (i, col) in columns.iter_mut().enumerate() {
            if Some(i) == key_pos {
                continue;
            }
            let hint = if self.reader.columns().get(i).is_some_and(|c| *c == col.name) {
                self.hints_by_index[i]
            } else {
                self.hints.get(&col.name).copied()
            };
            if let Some(h) = hint {
                let cell = std::mem::replace(&mut col.value, Cell::Null);
                match convert::coerce(cell, h) {
                    Ok(c) => col.value = c,
                    Err(reason) => {
                        let e = cell_error(
                            ErrorCode::InvalidValue,
                            &col.name,
                            format!("{where_}, column `{}`: {reason} (declared `{}` in `types`)", col.name, hint_name(h)),
                        );
                        return invalid(Some(key), e);
                    }
                }
            }
        }
        Ok(SourceItem::Row(Row { key, columns }))
    }
}

fn hint_name(h: TypeHint) -> &'static str {
    match h {
        TypeHint::Text => "text",
        TypeHint::Integer => "integer",
        TypeHint::Float => "float",
        TypeHint::Boolean => "boolean",
        TypeHint::Timestamp => "timestamp",
        TypeHint::Json => "json",
    }
}

impl<R: Reader> Iterator for Keyed<R> {
    type Item = Result<SourceItem, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.reader.next_record() {
            None => {
                self.done = true;
                None
            }
            Some(Err(e)) => {
                self.done = true;
                Some(Err(e))
            }
            Some(Ok(raw)) => {
                let item = self.process(raw);
                self.done = item.is_err();
                Some(item)
            }
        }
    }
}

impl<R: Reader> RowSource for Keyed<R> {
    fn columns(&self) -> &[String] {
        self.reader.columns()
    }
    fn describe(&self) -> &str {
        self.reader.describe()
    }
    fn primary_key(&self) -> &str {
        &self.key_column
    }
    fn keys_seen(&self) -> usize {
        self.keys.len()
    }
    fn into_keys(self: Box<Self>) -> KeyChecker {
        self.keys
    }
}

