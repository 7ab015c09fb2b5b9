//! Helpers shared by the end-to-end tests (policy.rs, cli.rs, sources_e2e.rs): where the built
//! components are, temporary folders, job files, a Gladly emulator with a test user, and a
//! tracing subscriber that keeps every log line in memory.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gladly_emulator::{Emulator, EmulatorConfig, RecordedRequest, User};
use host_harness::job::JobConfig;

// ---------------------------------------------------------------------------------------------
// components

/// `target/wasm32-wasip2/release/`, where `cargo xtask build` puts the components.
pub fn wasm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/release")
}

fn existing(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing: build the components first with `cargo xtask build`",
        path.display()
    );
    path.canonicalize().unwrap_or(path)
}

/// The real Gladly destination (`DESTINATION_COMPONENT` overrides the default path).
pub fn destination() -> PathBuf {
    match std::env::var_os("DESTINATION_COMPONENT") {
        Some(p) => existing(PathBuf::from(p)),
        None => existing(wasm_dir().join("gladly_destination.wasm")),
    }
}

/// The misbehaving test component.
pub fn hostile() -> PathBuf {
    existing(wasm_dir().join("hostile_guest.wasm"))
}

/// The component that imports `wasi:sockets`.
pub fn forbidden_import() -> PathBuf {
    existing(wasm_dir().join("forbidden_import_guest.wasm"))
}

/// A compile cache shared by the tests of every binary, so each component is compiled once.
pub fn shared_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("host-harness-test-component-cache")
}

// ---------------------------------------------------------------------------------------------
// temporary folders

/// A temporary folder removed on drop: its path, and the `tempfile` guard that removes it.
pub struct TempDir(pub PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl TempDir {
    /// A new empty folder whose name contains `tag`.
    pub fn new(tag: &str) -> TempDir {
        let dir = tempfile::Builder::new().prefix(&format!("hh-e2e-{tag}-")).tempdir().unwrap();
        TempDir(dir.path().to_path_buf(), dir)
    }

    /// A path inside the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Write a file and return its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}


/// A value unique to this process and call, for tokens, table names and sync ids.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{tag}{}x{}x{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst), nanos % 1_000_000_007)
}

// ---------------------------------------------------------------------------------------------
// credentials and the emulator

/// An API user known to the emulator, with a token unique to the test.
#[derive(Clone, Debug)]
pub struct Creds {
    pub user: String,
    pub token: String,
}

impl Creds {
    pub fn new() -> Creds {
        Creds { user: "api@example.com".into(), token: unique("tok-S3CRET-") }
    }

    /// `Basic base64(user:token)`, the exact `Authorization` value the host must attach.
    pub fn basic(&self) -> String {
        use base64::Engine as _;
        let raw = format!("{}:{}", self.user, self.token);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }

    /// The strings that must never appear in any output: the token and the header forms.
    pub fn forbidden_strings(&self) -> Vec<String> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let basic = self.basic();
        let encoded = basic.trim_start_matches("Basic ").to_string();
        vec![self.token.clone(), encoded, b64.encode(&self.token)]
    }
}

/// Assert that `text` (named `what`) contains none of the credential's forms.
pub fn assert_no_secret(creds: &Creds, what: &str, text: &str) {
    for s in creds.forbidden_strings() {
        assert!(!text.contains(&s), "{what} contains the secret {s:?}:\n{text}");
    }
}

/// An emulator on 127.0.0.1 with `creds` as its only user and a high rate limit (tests where the
/// rate is the subject lower it).
pub async fn emulator(creds: &Creds) -> Emulator {
    Emulator::start(EmulatorConfig {
        rate_limit_per_second: 10_000,
        latency: Duration::ZERO,
        users: vec![User::new(creds.user.clone(), creds.token.clone())],
        ..EmulatorConfig::default()
    })
    .await
    .expect("start the emulator")
}

/// Requests of one organization, in arrival order.
pub fn requests_of(emu: &Emulator, org: &str) -> Vec<RecordedRequest> {
    emu.requests().into_iter().filter(|r| r.org == org).collect()
}

/// The largest number of `times` inside any window `[t, t + width)` starting at one of them.
pub fn max_in_window(times: &[Duration], width: Duration) -> usize {
    let mut t: Vec<Duration> = times.to_vec();
    t.sort();
    (0..t.len()).map(|i| t[i..].iter().take_while(|u| **u < t[i] + width).count()).max().unwrap_or(0)
}

/// Scheduling delay the rate checks forgive. Arrival times are taken at the server: a request
/// that reaches it late makes the next ones look closer together than the host sent them, and
/// these tests run beside CPU-bound ones (spinning guests) on a shared 2-core machine. A burst or
/// a sustained excess over the limit still fails.
pub const ARRIVAL_JITTER: Duration = Duration::from_millis(150);

/// Asserts that server arrival `times` respect `limit` requests per second: at most `limit` in
/// any window of one second less [`ARRIVAL_JITTER`], and the whole run no faster than `limit`.
pub fn assert_within_rate(times: &[Duration], limit: usize, what: &str) {
    let width = Duration::from_secs(1) - ARRIVAL_JITTER;
    let most = max_in_window(times, width);
    assert!(most <= limit, "{what}: {most} requests within {width:?} at a {limit}/s limit");
    let mut t = times.to_vec();
    t.sort();
    if let (Some(first), Some(last)) = (t.first(), t.last()) {
        let fastest = Duration::from_secs_f64(t.len().saturating_sub(1) as f64 / limit as f64).saturating_sub(ARRIVAL_JITTER);
        assert!(last.saturating_sub(*first) >= fastest, "{what}: {} requests in {:?}, faster than {limit}/s", t.len(), *last - *first);
    }
}

// ---------------------------------------------------------------------------------------------
// job files

/// TOML string literal.
pub fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A job file, as TOML text with absolute paths.
#[derive(Clone, Debug)]
pub struct Job {
    pub id: String,
    pub component: PathBuf,
    pub state_dir: PathBuf,
    pub cache_dir: Option<PathBuf>,
    /// The `[source]` table's body (including `kind = …`).
    pub source: String,
    /// `[destination]` settings, as raw TOML values.
    pub settings: Vec<(String, String)>,
    /// `[destination.secrets] token = …` value, raw TOML.
    pub token: Option<String>,
    /// `[mapping]` column → target.
    pub mapping: Vec<(String, String)>,
    /// Lines of `[policy]`.
    pub policy: Vec<String>,
    /// Lines of `[limits]`.
    pub limits: Vec<String>,
}

impl Job {
    /// A job for `component` with its state in `dir`.
    pub fn new(id: &str, component: &Path, dir: &TempDir) -> Job {
        Job {
            id: id.to_string(),
            component: component.to_path_buf(),
            state_dir: dir.path(&format!("state-{id}")),
            cache_dir: Some(shared_cache_dir()),
            source: String::new(),
            settings: Vec::new(),
            token: None,
            mapping: Vec::new(),
            policy: Vec::new(),
            limits: Vec::new(),
        }
    }

    /// A CSV source at `path` keyed by `key`.
    pub fn csv(mut self, path: &Path, key: &str) -> Job {
        self.source = format!("kind = \"csv\"\npath = {}\nprimary_key = {}\n", q(&path.display().to_string()), q(key));
        self
    }

    /// Any `[source]` body.
    pub fn source(mut self, body: &str) -> Job {
        self.source = body.to_string();
        self
    }

    /// A destination setting given as a string.
    pub fn set(mut self, key: &str, value: &str) -> Job {
        self.settings.push((key.to_string(), q(value)));
        self
    }

    /// The token read from the file `path`.
    pub fn token_file(mut self, path: &Path) -> Job {
        self.token = Some(format!("{{ file = {} }}", q(&path.display().to_string())));
        self
    }

    /// The token read from the environment variable `var`.
    pub fn token_env(mut self, var: &str) -> Job {
        self.token = Some(format!("{{ env = {} }}", q(var)));
        self
    }

    pub fn map(mut self, column: &str, target: &str) -> Job {
        self.mapping.push((column.to_string(), target.to_string()));
        self
    }

    pub fn policy(mut self, line: &str) -> Job {
        self.policy.push(line.to_string());
        self
    }

    pub fn limit(mut self, line: &str) -> Job {
        self.limits.push(line.to_string());
        self
    }

    pub fn toml(&self) -> String {
        let mut s = String::new();
        s += &format!(
            "[sync]\nid = {}\nmode = \"upsert\"\ncomponent = {}\nstate_dir = {}\n",
            q(&self.id),
            q(&self.component.display().to_string()),
            q(&self.state_dir.display().to_string())
        );
        if let Some(c) = &self.cache_dir {
            s += &format!("cache_dir = {}\n", q(&c.display().to_string()));
        }
        s += &format!("\n[source]\n{}\n", self.source);
        s += "[destination]\n";
        for (k, v) in &self.settings {
            s += &format!("{} = {v}\n", q(k));
        }
        if let Some(t) = &self.token {
            s += &format!("\n[destination.secrets]\ntoken = {t}\n");
        }
        s += "\n[mapping]\n";
        for (c, t) in &self.mapping {
            s += &format!("{} = {}\n", q(c), q(t));
        }
        if !self.policy.is_empty() {
            s += &format!("\n[policy]\n{}\n", self.policy.join("\n"));
        }
        if !self.limits.is_empty() {
            s += &format!("\n[limits]\n{}\n", self.limits.join("\n"));
        }
        s
    }

    /// The parsed job.
    pub fn config(&self) -> JobConfig {
        let text = self.toml();
        toml::from_str(&text).unwrap_or_else(|e| panic!("bad test job ({e}):\n{text}"))
    }

    /// Write the job file into `dir` and return its path.
    pub fn write(&self, dir: &TempDir, name: &str) -> PathBuf {
        dir.file(name, &self.toml())
    }
}

/// A CSV file of `n` rows `id,name,email` with keys `r1`…`rn`.
pub fn simple_csv(dir: &TempDir, name: &str, n: usize) -> PathBuf {
    let mut s = String::from("id,name,email\n");
    for i in 1..=n {
        s += &format!("r{i},Person {i},person{i}@example.com\n");
    }
    dir.file(name, &s)
}

// ---------------------------------------------------------------------------------------------
// captured logs

/// Every log line of this test binary, kept in memory.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Install (once per test binary) a global subscriber that records the host's logs at every
/// level (and everyone else's from info up) into a buffer, and return that buffer.
pub fn captured_logs() -> LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = LogBuffer::default();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,host_harness=trace"))
            .with_writer(buf.clone())
            .with_ansi(false)
            .try_init();
        buf
    })
    .clone()
}
