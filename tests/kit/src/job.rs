//! Job files, the way an operator writes them: `[sync]`, `[source]`, `[destination]` (with its
//! secrets), `[mapping]`, `[policy]`, `[limits]`. Every test that runs the host builds its job
//! here, so a change to the job format is one change. The job comes out as a TOML table, text or
//! a file; [`Job::config`] parses it into whatever type the caller names (the host's
//! `JobConfig`), which keeps this kit independent of the host.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::components;

/// TOML string literal.
pub fn q(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

fn path_value(p: &Path) -> Value {
    Value::String(p.display().to_string())
}

/// Parses `line` (one or more `key = value` lines) and adds its keys to `table`.
fn merge_lines(table: &mut Table, line: &str) {
    let parsed: Table = toml::from_str(line).unwrap_or_else(|e| panic!("bad TOML line {line:?} in a test job: {e}"));
    table.extend(parsed);
}

/// A job file under construction.
#[derive(Clone, Debug)]
pub struct Job {
    /// `[sync] id`.
    pub id: String,
    /// `[sync] mode` (default `upsert`).
    pub mode: String,
    /// `[sync] component`.
    pub component: PathBuf,
    /// `[sync] state_dir`.
    pub state_dir: PathBuf,
    /// `[sync] cache_dir` (default the shared [`components::cache_dir`]).
    pub cache_dir: Option<PathBuf>,
    /// The `[source]` table.
    pub source: Table,
    /// `[destination]` settings.
    pub settings: Table,
    /// `[destination.secrets] token`: `{ file = … }` or `{ env = … }`.
    pub token: Option<Value>,
    /// `[mapping]` column → target, in order.
    pub mapping: Table,
    /// The `[policy]` table.
    pub policy: Table,
    /// The `[limits]` table.
    pub limits: Table,
}

impl Job {
    /// An upsert job `id` running `component`, its state in `folder/state-{id}`.
    pub fn new(id: &str, component: &Path, folder: &Path) -> Job {
        Job {
            id: id.to_string(),
            mode: "upsert".into(),
            component: component.to_path_buf(),
            state_dir: folder.join(format!("state-{id}")),
            cache_dir: Some(components::cache_dir()),
            source: Table::new(),
            settings: Table::new(),
            token: None,
            mapping: Table::new(),
            policy: Table::new(),
            limits: Table::new(),
        }
    }

    /// The real destination syncing people into organization `acme` as `user`: columns `id`,
    /// `name` and `email` mapped to `externalCustomerId`, `name` and `email`, `*.gladly.com`
    /// allowed at 1000 requests/s, no retries; the caller adds the source and the token. The job
    /// of the end-to-end tests whose subject is not the mapping or the policy.
    pub fn people_into_acme(id: &str, folder: &Path, user: &str) -> Job {
        Job::new(id, &components::destination(), folder)
            .set("domain", "acme")
            .set("username", user)
            .map("name", "name")
            .map("email", "email")
            .map("id", "externalCustomerId")
            .policy(r#"allow_hosts = ["*.gladly.com"]"#)
            .policy("rate_limit_per_second = 1000")
            .limit("max_retries = 0")
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: &str) -> Job {
        self.mode = mode.to_string();
        self
    }

    /// Sets the state folder.
    pub fn state_dir(mut self, dir: PathBuf) -> Job {
        self.state_dir = dir;
        self
    }

    /// A file source of `kind` (`csv`, `jsonl`) at `path` keyed by `key`.
    pub fn file(mut self, kind: &str, path: &Path, key: &str) -> Job {
        self.source = Table::new();
        self.source.insert("kind".into(), Value::String(kind.into()));
        self.source.insert("path".into(), path_value(path));
        self.source.insert("primary_key".into(), Value::String(key.into()));
        self
    }

    /// A CSV source at `path` keyed by `key`.
    pub fn csv(self, path: &Path, key: &str) -> Job {
        self.file("csv", path, key)
    }

    /// Any `[source]` body, as TOML text.
    pub fn source(mut self, body: &str) -> Job {
        self.source = Table::new();
        merge_lines(&mut self.source, body);
        self
    }

    /// Sets (or replaces) a destination setting given as a string.
    pub fn set(mut self, key: &str, value: &str) -> Job {
        self.settings.insert(key.to_string(), Value::String(value.to_string()));
        self
    }

    /// The token read from the file `path`.
    pub fn token_file(mut self, path: &Path) -> Job {
        self.token = Some(Value::Table(Table::from_iter([("file".to_string(), path_value(path))])));
        self
    }

    /// The token read from the environment variable `var`.
    pub fn token_env(mut self, var: &str) -> Job {
        self.token = Some(Value::Table(Table::from_iter([("env".to_string(), Value::String(var.into()))])));
        self
    }

    /// Maps `column` to `target`.
    pub fn map(mut self, column: &str, target: &str) -> Job {
        self.mapping.insert(column.to_string(), Value::String(target.to_string()));
        self
    }

    /// Adds `[policy]` entries, given as TOML lines (`rate_limit_per_second = 10`).
    pub fn policy(mut self, line: &str) -> Job {
        merge_lines(&mut self.policy, line);
        self
    }

    /// Adds `[limits]` entries, given as TOML lines (`max_retries = 0`).
    pub fn limit(mut self, line: &str) -> Job {
        merge_lines(&mut self.limits, line);
        self
    }

    /// The whole job as a TOML table (`[policy]` and `[limits]` only when they hold something).
    pub fn table(&self) -> Table {
        let mut sync = Table::new();
        sync.insert("id".into(), Value::String(self.id.clone()));
        sync.insert("mode".into(), Value::String(self.mode.clone()));
        sync.insert("component".into(), path_value(&self.component));
        sync.insert("state_dir".into(), path_value(&self.state_dir));
        if let Some(c) = &self.cache_dir {
            sync.insert("cache_dir".into(), path_value(c));
        }
        let mut destination = self.settings.clone();
        if let Some(token) = &self.token {
            destination.insert("secrets".into(), Value::Table(Table::from_iter([("token".to_string(), token.clone())])));
        }
        let mut job = Table::new();
        job.insert("sync".into(), Value::Table(sync));
        job.insert("source".into(), Value::Table(self.source.clone()));
        job.insert("destination".into(), Value::Table(destination));
        job.insert("mapping".into(), Value::Table(self.mapping.clone()));
        for (name, t) in [("policy", &self.policy), ("limits", &self.limits)] {
            if !t.is_empty() {
                job.insert(name.into(), Value::Table(t.clone()));
            }
        }
        job
    }

    /// The job file's text.
    pub fn toml(&self) -> String {
        toml::to_string(&self.table()).unwrap_or_else(|e| panic!("cannot write a test job as TOML: {e}"))
    }

    /// The parsed job (the host's `JobConfig`); panics with the text when it does not parse.
    pub fn config<T: DeserializeOwned>(&self) -> T {
        let text = self.toml();
        toml::from_str(&text).unwrap_or_else(|e| panic!("bad test job ({e}):\n{text}"))
    }

    /// Writes the job file to `path` and returns the path.
    pub fn write(&self, path: PathBuf) -> PathBuf {
        std::fs::write(&path, self.toml()).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        path
    }
}
