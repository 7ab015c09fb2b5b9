//! What a conformance test chooses about a job ([`JobSpec`]) and the job it becomes, written
//! into the test's folder (source rows, token file, state) through the kit's job-file builder.

use std::path::Path;

use gladly_emulator::{DEFAULT_TOKEN, DEFAULT_USER};
use host_harness::job::JobConfig;
use host_harness::sandbox::limits::Limits;
use toml::{Table, Value};

use test_kit::Job;

use crate::component;

/// The organization every test writes to unless it says otherwise (`acme.gladly.com`).
pub const ORG: &str = "acme";

/// Source rows of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Rows {
    /// A CSV file (raw bytes, so a test can put non-UTF-8 bytes in it).
    Csv(Vec<u8>),
    /// A JSON Lines file.
    Jsonl(String),
}

impl Rows {
    /// CSV text.
    pub fn csv(text: &str) -> Rows {
        Rows::Csv(text.as_bytes().to_vec())
    }

    /// `n` people as CSV `id,email,name`: keys `{prefix}-{i}`, emails `{prefix}{i}@example.com`,
    /// names `Person {i}` (i from 1).
    pub fn people(prefix: &str, n: usize) -> Rows {
        Rows::people_named(prefix, n, "Person")
    }

    /// Like [`Rows::people`] with names `{name} {i}` (change the name to change every row).
    pub fn people_named(prefix: &str, n: usize, name: &str) -> Rows {
        Rows::csv(&test_kit::rows::people(prefix, n, name))
    }

    /// JSON Lines from values, one per line.
    pub fn jsonl<I: IntoIterator<Item = serde_json::Value>>(rows: I) -> Rows {
        let mut s = String::new();
        for r in rows {
            s.push_str(&r.to_string());
            s.push('\n');
        }
        Rows::Jsonl(s)
    }
}

/// Everything a test chooses about a job; [`JobSpec::materialize`] turns it into a [`JobConfig`].
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// `[sync] id` (keys state and the deterministic create ids).
    pub sync_id: String,
    /// Tenant name (logs); default the sync id.
    pub tenant: Option<String>,
    /// `upsert`, `insert`, `update`, `mirror`, `audience-add`…
    pub mode: String,
    /// Destination settings (`domain`, `username`, `sandbox`, `default-region`, …), in order.
    pub settings: Vec<(String, Value)>,
    /// Column → target, in order.
    pub mapping: Vec<(String, String)>,
    /// Key column.
    pub primary_key: String,
    /// Source type hints (`column` → `integer|float|boolean|timestamp|json|text`).
    pub types: Vec<(String, String)>,
    /// The rows.
    pub rows: Rows,
    /// The API token written to the token file.
    pub token: String,
    /// `[policy] rate_limit_per_second`.
    pub rate_limit_per_second: Option<u32>,
}

impl JobSpec {
    /// A job for `acme` with the emulator's default user, 200 requests/s and no rows.
    pub fn new(mode: &str) -> JobSpec {
        JobSpec {
            sync_id: "conformance".into(),
            tenant: None,
            mode: mode.into(),
            settings: vec![
                ("domain".into(), Value::String(ORG.into())),
                ("username".into(), Value::String(DEFAULT_USER.into())),
            ],
            mapping: Vec::new(),
            primary_key: "id".into(),
            types: Vec::new(),
            rows: Rows::csv("id\n"),
            token: DEFAULT_TOKEN.into(),
            rate_limit_per_second: Some(200),
        }
    }

    /// Adds a mapping entry.
    pub fn map(mut self, column: &str, target: &str) -> Self {
        self.mapping.push((column.into(), target.into()));
        self
    }

    /// Sets (or replaces) a destination setting.
    pub fn setting(mut self, key: &str, value: impl Into<Value>) -> Self {
        let value = value.into();
        match self.settings.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.settings.push((key.into(), value)),
        }
        self
    }

    /// Sets the rows.
    pub fn rows(mut self, rows: Rows) -> Self {
        self.rows = rows;
        self
    }

    /// Maps `email` and `name` (the columns of [`Rows::people`]).
    pub fn people_mapping(self) -> Self {
        self.map("email", "email").map("name", "name")
    }

    /// Sets the sync id.
    pub fn sync_id(mut self, id: &str) -> Self {
        self.sync_id = id.into();
        self
    }

    /// Sets the tenant name.
    pub fn tenant(mut self, name: &str) -> Self {
        self.tenant = Some(name.into());
        self
    }

    /// Sets the token.
    pub fn token(mut self, token: &str) -> Self {
        self.token = token.into();
        self
    }

    /// Sets the organization's rate.
    pub fn rate(mut self, per_second: u32) -> Self {
        self.rate_limit_per_second = Some(per_second);
        self
    }

    /// Adds a source type hint.
    pub fn typed(mut self, column: &str, hint: &str) -> Self {
        self.types.push((column.into(), hint.into()));
        self
    }

    /// Writes rows and token into `folder` and returns the job (state in `folder/state`).
    pub fn materialize(&self, folder: &Path, limits: &Table) -> JobConfig {
        std::fs::create_dir_all(folder).unwrap_or_else(|e| panic!("cannot create {}: {e}", folder.display()));
        let (kind, file) = match &self.rows {
            Rows::Csv(_) => ("csv", folder.join("rows.csv")),
            Rows::Jsonl(_) => ("jsonl", folder.join("rows.jsonl")),
        };
        let bytes: &[u8] = match &self.rows {
            Rows::Csv(b) => b,
            Rows::Jsonl(s) => s.as_bytes(),
        };
        write(&file, bytes);
        let token_file = folder.join("token.txt");
        write(&token_file, format!("{}\n", self.token).as_bytes());

        let mut job = Job::new(&self.sync_id, &component::require_component(), folder)
            .state_dir(folder.join("state"))
            .mode(&self.mode)
            .file(kind, &file, &self.primary_key)
            .token_file(&token_file)
            .policy(r#"allow_hosts = ["*.gladly.com", "*.gladly.qa"]"#);
        if !self.types.is_empty() {
            let types: Table = self.types.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
            job.source.insert("types".into(), Value::Table(types));
        }
        job.settings = self.settings.iter().cloned().collect();
        for (column, target) in &self.mapping {
            job = job.map(column, target);
        }
        if let Some(r) = self.rate_limit_per_second {
            job.policy.insert("rate_limit_per_second".into(), Value::Integer(i64::from(r)));
        }
        if let Some(t) = &self.tenant {
            job.policy.insert("tenant".into(), Value::String(t.clone()));
        }
        job.limits = limits.clone();
        job.config()
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// The suite's default limits: quick backoff, a short request timeout, the rest as shipped.
pub fn quick_limits() -> Table {
    let mut t = Table::new();
    t.insert("backoff_base_ms".into(), Value::Integer(20));
    t.insert("backoff_max_ms".into(), Value::Integer(200));
    t.insert("request_timeout_secs".into(), Value::Integer(5));
    t.insert("call_deadline_secs".into(), Value::Integer(60));
    t
}

/// Limits from a `[limits]` table (unknown keys are an error, as in a job file).
pub fn limits_from(table: &Table) -> Limits {
    Value::Table(table.clone()).try_into::<Limits>().unwrap_or_else(|e| panic!("invalid [limits]: {e}"))
}
