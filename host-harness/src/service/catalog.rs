//! The job folder: every `*.toml` file in it is one job. Read whole at start and again whenever
//! the folder changes; a file that does not parse is listed with its error, never fatal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::job::JobConfig;
use crate::service::schedule::Schedule;

/// One job file that parsed.
#[derive(Debug, Clone)]
pub struct JobFile {
    /// The file.
    pub path: PathBuf,
    /// The job.
    pub job: JobConfig,
    /// When it runs on its own.
    pub schedule: Schedule,
    /// SHA-256 of the file's bytes: a changed file is a changed job.
    pub digest: String,
}

/// A file in the folder that is not a usable job, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileProblem {
    /// The file.
    pub file: String,
    /// What is wrong and how to fix it.
    pub error: String,
}

/// What one scan of the folder found.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Jobs by sync id.
    pub jobs: BTreeMap<String, JobFile>,
    /// Files that are not usable jobs.
    pub problems: Vec<FileProblem>,
}

/// Reads every `*.toml` in `dir` (not hidden files, not subfolders). Only a folder that cannot
/// be listed is an error.
pub fn scan(dir: &Path) -> Result<Catalog, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read the job folder {}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            p.is_file() && !name.starts_with('.') && name.ends_with(".toml")
        })
        .collect();
    paths.sort();
    let mut catalog = Catalog::default();
    for path in paths {
        match load(&path) {
            Ok(file) => {
                let id = file.job.sync.id.clone();
                if let Some(first) = catalog.jobs.get(&id) {
                    catalog.problems.push(FileProblem {
                        file: path.display().to_string(),
                        error: format!(
                            "sync id {id:?} is already used by {}; give every job in the folder its own [sync] id",
                            first.path.display()
                        ),
                    });
                } else {
                    catalog.jobs.insert(id, file);
                }
            }
            Err(error) => catalog.problems.push(FileProblem { file: path.display().to_string(), error }),
        }
    }
    Ok(catalog)
}

fn load(path: &Path) -> Result<JobFile, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let job = JobConfig::load(path).map_err(|e| e.to_string())?;
    let schedule = Schedule::parse(job.schedule.as_ref()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(JobFile { path: path.to_path_buf(), job, schedule, digest: hex::encode(Sha256::digest(&bytes)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = r#"
[sync]
id = "ID"
mode = "upsert"
component = "dest.wasm"
[source]
kind = "csv"
path = "rows.csv"
primary_key = "id"
[destination]
[mapping]
email = "email"
"#;

    fn folder(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("catalog-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn lists_jobs_by_id_and_names_each_bad_file() {
        let dir = folder("scan");
        std::fs::write(dir.join("a.toml"), JOB.replace("ID", "alpha")).unwrap();
        std::fs::write(dir.join("b.toml"), format!("{}[schedule]\nevery = \"5m\"\n", JOB.replace("ID", "beta"))).unwrap();
        std::fs::write(dir.join("c.toml"), JOB.replace("ID", "alpha")).unwrap();
        std::fs::write(dir.join("d.toml"), "[sync\n").unwrap();
        std::fs::write(dir.join("e.toml"), format!("{}[schedule]\nevery = \"now\"\n", JOB.replace("ID", "eps"))).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a job").unwrap();
        std::fs::write(dir.join(".hidden.toml"), "junk").unwrap();
        let c = scan(&dir).unwrap();
        assert_eq!(c.jobs.keys().cloned().collect::<Vec<_>>(), vec!["alpha".to_string(), "beta".to_string()]);
        assert!(matches!(c.jobs["beta"].schedule, Schedule::Every(d) if d.as_secs() == 300));
        let files: Vec<&str> = c.problems.iter().map(|p| p.file.rsplit('/').next().unwrap()).collect();
        assert_eq!(files, vec!["c.toml", "d.toml", "e.toml"]);
        assert!(c.problems[0].error.starts_with("sync id \"alpha\" is already used by"), "{}", c.problems[0].error);
        assert!(c.problems[2].error.contains("schedule.every = \"now\" is not a duration"), "{}", c.problems[2].error);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_it() {
        let err = scan(Path::new("/nonexistent/jobs")).unwrap_err();
        assert!(err.starts_with("cannot read the job folder /nonexistent/jobs"), "{err}");
    }
}
