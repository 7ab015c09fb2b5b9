//! A JSON Lines results file: one JSON object per result, appended a batch at a time with one
//! write and an fsync.
//!
//! A process killed in the middle of a write can leave a last line without its newline: opening
//! the file cuts that partial line off (its rows are still in the outbox and are written again).
//! Before rows a killed run left behind are written again, the file is read once to learn which
//! of their ids it already holds, so no line is repeated.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::Target;
use crate::results::{ResultRow, ResultsError};

/// An open results file.
pub struct JsonlTarget {
    file: File,
    path: PathBuf,
    /// Ids of rows a killed run left behind that the file already holds.
    held: HashSet<String>,
}

impl JsonlTarget {
    /// Open (creating) `path` for appending; cut off a partial last line.
    pub fn open(path: &Path) -> Result<JsonlTarget, ResultsError> {
        let fail = |e: std::io::Error| ResultsError::Target {
            target: format!("file {}", path.display()),
            message: e.to_string(),
            fix: "check that the folder exists and is writable".into(),
        };
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(fail)?;
        let keep = complete_length(&mut file).map_err(fail)?;
        if keep < file.metadata().map_err(fail)?.len() {
            file.set_len(keep).map_err(fail)?;
            file.sync_data().map_err(fail)?;
        }
        Ok(JsonlTarget { file, path: path.to_path_buf(), held: HashSet::new() })
    }

    fn fail(&self, message: String) -> ResultsError {
        ResultsError::Target { target: format!("file {}", self.path.display()), message, fix: "check the file and the disk".into() }
    }
}

/// The length of the file up to and including its last newline.
fn complete_length(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut buf = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

impl Target for JsonlTarget {
    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn prepare_replay(&mut self, ids: &HashSet<String>) -> Result<(), ResultsError> {
        #[derive(serde::Deserialize)]
        struct Id {
            result_id: String,
        }
        let mut reader = BufReader::new(File::open(&self.path).map_err(|e| self.fail(e.to_string()))?);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(|e| self.fail(e.to_string()))? == 0 {
                break;
            }
            // Lines someone else wrote are not ours to judge: only a matching id counts.
            if let Ok(Id { result_id }) = serde_json::from_str::<Id>(&line)
                && ids.contains(&result_id)
            {
                self.held.insert(result_id);
            }
        }
        Ok(())
    }

    fn write(&mut self, rows: &[ResultRow]) -> Result<(), ResultsError> {
        let mut buf = Vec::with_capacity(rows.len() * 256);
        for r in rows.iter().filter(|r| !self.held.contains(&r.result_id)) {
            serde_json::to_writer(&mut buf, r).map_err(|e| self.fail(e.to_string()))?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf).map_err(|e| self.fail(e.to_string()))?;
        self.file.sync_data().map_err(|e| self.fail(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::model::Outcome;
    use crate::results::ResultStamp;

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
    }

    #[test]
    fn a_partial_last_line_is_cut_off_on_open() {
        let dir = test_kit::TempDir::new("results-jsonl");
        let path = dir.file("r.jsonl", "{\"result_id\":\"a\"}\n{\"result_id\":\"b\",\"row_k");
        JsonlTarget::open(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"result_id\":\"a\"}\n");
    }

    #[test]
    fn replayed_rows_the_file_holds_are_not_written_again() {
        let dir = test_kit::TempDir::new("results-jsonl");
        let path = dir.join("r.jsonl");
        let mut stamp = ResultStamp::new("s", 1);
        let a = stamp.confirmed("k1", Outcome::Created, Some("g1"), 1);
        let b = stamp.confirmed("k2", Outcome::Updated, Some("g2"), 1);
        JsonlTarget::open(&path).unwrap().write(std::slice::from_ref(&a)).unwrap();

        let mut again = JsonlTarget::open(&path).unwrap();
        again.prepare_replay(&[a.result_id.clone(), b.result_id.clone()].into_iter().collect()).unwrap();
        again.write(&[a, b]).unwrap();
        let keys: Vec<String> = lines(&path).iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["row_key"].as_str().unwrap().to_string()).collect();
        assert_eq!(keys, ["k1", "k2"]);
    }
}
