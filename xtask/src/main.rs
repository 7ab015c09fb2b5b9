//! Project tasks, run as `cargo xtask <task>`:
//!
//! - `build`: build the destination component and the test components for `wasm32-wasip2`
//!   (installing the target with rustup when it is missing).
//! - `sync-sample`: build, then sync the bundled sample warehouse. With `GLADLY_DOMAIN`,
//!   `GLADLY_USERNAME` and `GLADLY_API_TOKEN` set it writes to that Gladly organization;
//!   otherwise it starts the bundled Gladly emulator on 127.0.0.1 and syncs into it.
//! - `test`: build, install the Node host's npm packages (`npm ci` in `tests/portability/node`
//!   when its lock file changed), then run the whole test suite (unit, integration and
//!   conformance, the portability test in Node.js included).
//! - `bench`: build, then run the benchmark binary and print its figures.
//! - `fuzz [--secs N] [TARGET…]`: run every fuzz target of `tests/fuzz/` (or those whose name
//!   contains one of the TARGETs) for N seconds each (60 by default) with cargo-fuzz, installing
//!   it when missing, and print per target the executions, the time and whether it crashed.
//!   Stable Rust: libFuzzer without a sanitizer (`-s none`). Not part of `test` or CI. Logs go to
//!   `tests/fuzz/target/fuzz-logs/`, crashing inputs to `tests/fuzz/artifacts/<target>/`, new
//!   corpus entries to `tests/fuzz/corpus/<target>/` (only the `seed-*` files are committed).
//! - `mutants [NAME…]`: apply each hand-chosen mutation of `tests/mutations/` (or those whose
//!   name contains one of the NAMEs) in turn and check that the conformance test it names fails
//!   (see [`mutants`]). Needs a clean working tree. Not part of `test` or CI.
//!
//! Build time: `sync-sample` and `test` build the host with the same command
//! ([`build_host`]: every workspace member but the test components, one feature resolution, the dev
//! profile), so the second reuses the first's build of wasmtime instead of compiling it again
//! with other features. The binaries are then run straight from the target folder: `cargo run -p`
//! would resolve features for one package and rebuild. xtask itself depends on nothing heavy, so
//! `cargo xtask` starts in seconds.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

mod mutants;

/// The components built for wasm32-wasip2: (package, output file name).
const COMPONENTS: &[(&str, &str)] = &[
    ("gladly-destination", "gladly_destination.wasm"),
    ("hostile-guest", "hostile_guest.wasm"),
    ("forbidden-import-guest", "forbidden_import_guest.wasm"),
];

/// Lets the host redirect API traffic to the bundled emulator. Development and tests only: the
/// host refuses a redirect without it (see docs/SECURITY.md).
const ALLOW_EMULATOR: (&str, &str) = ("DESTINATION_HOST_ALLOW_EMULATOR", "1");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(mut cmd: Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn ensure_wasm_target() -> Result<()> {
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let installed = out.map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2")).unwrap_or(false);
    if !installed {
        let mut c = Command::new("rustup");
        c.args(["target", "add", "wasm32-wasip2"]);
        run(c)?;
    }
    Ok(())
}

/// Build every component; returns the destination component's path.
fn build() -> Result<PathBuf> {
    ensure_wasm_target()?;
    let mut c = cargo();
    c.args(["build", "--release", "--target", "wasm32-wasip2"]);
    for (pkg, _) in COMPONENTS {
        c.args(["-p", pkg]);
    }
    run(c)?;
    Ok(component_path(COMPONENTS[0].1))
}

fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"))
}

/// Where `build` puts the components.
fn components_dir() -> PathBuf {
    target_dir().join("wasm32-wasip2").join("release")
}

fn component_path(file: &str) -> PathBuf {
    components_dir().join(file)
}

/// The packages built for the host: the whole workspace but the test components, which build
/// only for wasm32. The destination's own crate stays: its Gladly logic is unit-tested natively.
fn host_packages(c: &mut Command) {
    c.arg("--workspace");
    for (pkg, _) in &COMPONENTS[1..] {
        c.args(["--exclude", pkg]);
    }
}

/// Build the host's binaries (`destination-host`, `gladly-emulator`, …) exactly as the test
/// build resolves them, so both share one build of wasmtime.
fn build_host() -> Result<()> {
    let mut c = cargo();
    c.args(["build", "--bins"]);
    host_packages(&mut c);
    run(c)
}

/// A binary `build_host` made.
fn host_bin(name: &str) -> PathBuf {
    target_dir().join("debug").join(name)
}

/// The bundled emulator, started as its own process on a free loopback port; stopped on drop.
struct EmulatorProcess {
    child: std::process::Child,
    base_url: String,
}

impl EmulatorProcess {
    fn start() -> Result<EmulatorProcess> {
        use std::io::BufRead;
        let mut child = Command::new(host_bin("gladly-emulator"))
            .args(["--port", "0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("cannot start the bundled emulator")?;
        let stdout = child.stdout.take().context("the emulator has no stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        // The emulator's first line is "gladly-emulator listening on http://127.0.0.1:PORT".
        let Some(base_url) = line.split_whitespace().last().filter(|u| u.starts_with("http://127.0.0.1:")) else {
            let _ = child.kill();
            bail!("the emulator did not say where it listens (it printed {line:?})");
        };
        Ok(EmulatorProcess { base_url: base_url.to_string(), child })
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sync_sample(extra: &[String]) -> Result<()> {
    build()?;
    build_host()?;
    let job = root().join("host-harness/examples/sample.toml");
    let sync = |report: &str, args: &[String]| {
        let mut c = Command::new(host_bin("destination-host"));
        c.current_dir(root())
            .args(["sync", "--config"])
            .arg(&job)
            .arg("--report")
            .arg(target_dir().join(report))
            .args(args)
            .args(extra);
        c
    };

    let creds = ["GLADLY_DOMAIN", "GLADLY_USERNAME", "GLADLY_API_TOKEN"].map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    if let [Some(domain), Some(user), Some(_token)] = &creds {
        println!("syncing the sample warehouse into Gladly organization {domain} as {user}");
        return run(sync("sample-report.json", &[format!("--set=domain={domain}"), format!("--set=username={user}")]));
    }
    if creds.iter().any(Option::is_some) {
        println!("note: set all of GLADLY_DOMAIN, GLADLY_USERNAME and GLADLY_API_TOKEN to sync into Gladly; using the emulator");
    }
    let emulator = EmulatorProcess::start()?;
    println!("no Gladly credentials given: syncing into the bundled emulator at {}", emulator.base_url);
    // A fresh emulator holds nothing, so its sync state starts empty too.
    let state = target_dir().join("sample-state-emulator");
    let _ = std::fs::remove_dir_all(&state);
    let args = [format!("--endpoint={}", emulator.base_url), format!("--state-dir={}", state.display())];
    let mut first = sync("sample-report.json", &args);
    // The emulator's default API user; it exists only inside the emulator.
    first.env("GLADLY_API_TOKEN", "emulator-token").env(ALLOW_EMULATOR.0, ALLOW_EMULATOR.1);
    // The sample holds a few deliberately bad rows: the run reports them and exits 1, which is
    // the expected outcome here; anything else (2 = the run itself failed) stops the task.
    ran_to_completion(first.status()?)?;
    println!("\nsyncing again (nothing changed in the warehouse):");
    let mut second = sync("sample-report-rerun.json", &args);
    second.env("GLADLY_API_TOKEN", "emulator-token").env(ALLOW_EMULATOR.0, ALLOW_EMULATOR.1);
    ran_to_completion(second.status()?)
}

/// A sync that ran to the end exits 0 (every record fine) or 1 (some rows rejected).
fn ran_to_completion(status: std::process::ExitStatus) -> Result<()> {
    match status.code() {
        Some(0 | 1) => Ok(()),
        _ => bail!("the sync did not complete ({status})"),
    }
}

/// The JavaScript host of the portability test.
const NODE_HOST_DIR: &str = "tests/portability/node";

/// Installs the Node host's npm packages from its lock file (`npm ci`) unless they were
/// installed after the lock file last changed. Needs Node.js and npm.
fn node_host_packages() -> Result<()> {
    let dir = root().join(NODE_HOST_DIR);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let lock = modified(&dir.join("package-lock.json")).context("tests/portability/node/package-lock.json is missing")?;
    // npm writes node_modules/.package-lock.json when it installs.
    if modified(&dir.join("node_modules/.package-lock.json")).is_some_and(|installed| installed >= lock) {
        return Ok(());
    }
    let mut c = Command::new("npm");
    c.current_dir(&dir).args(["ci", "--no-audit", "--no-fund"]);
    run(c).context("the portability test needs Node.js 20+ and npm (Debian: apt install nodejs npm)")
}

/// Builds the components and the host's binaries (the conformance suite runs `destination-host`),
/// installs the Node host's packages (the portability test runs the component in Node.js), then
/// runs every test with `TEST_COMPONENTS_DIR` naming the folder the components were built in.
fn test() -> Result<()> {
    build()?;
    // The CLI tests run the built `destination-host`.
    build_host()?;
    node_host_packages()?;
    let mut c = cargo();
    c.arg("test");
    host_packages(&mut c);
    // The tests use the components this build made, wherever CARGO_TARGET_DIR put them.
    c.env("TEST_COMPONENTS_DIR", components_dir());
    // The suite runs against the emulator on loopback.
    c.env(ALLOW_EMULATOR.0, ALLOW_EMULATOR.1);
    run(c)
}

fn bench(extra: &[String]) -> Result<()> {
    build()?;
    // The organizations-per-host and workers sections run the emulator, and the workers section
    // `destination-host serve`, as processes of their own.
    let mut binaries = cargo();
    binaries.args(["build", "--release", "-p", "gladly-emulator", "--bin", "gladly-emulator", "-p", "host-harness", "--bin", "destination-host"]);
    run(binaries)?;
    let mut c = cargo();
    c.args(["run", "--release", "-p", "bench", "--bin", "bench", "--"]).args(extra);
    c.env(ALLOW_EMULATOR.0, ALLOW_EMULATOR.1);
    run(c)
}

/// The fuzz crate, outside the workspace, with its own target folder.
const FUZZ_DIR: &str = "tests/fuzz";

/// `cargo fuzz …` run from the root on the fuzz crate, without the variables this process
/// inherits from the `cargo run` of `cargo xtask`: those that would redirect or override
/// cargo-fuzz's own build (its instrumentation travels in `RUSTFLAGS`), and those describing the
/// xtask package (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`…), which build scripts such as ring's
/// watch: left in, every switch between `cargo xtask fuzz` and a plain `cargo fuzz` would
/// rebuild ring and everything above it, wasmtime-wasi-http and the host included.
fn cargo_fuzz(sub: &str) -> Command {
    let mut c = cargo();
    c.args(["fuzz", sub, "--fuzz-dir", FUZZ_DIR]);
    for var in ["CARGO_TARGET_DIR", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_BUILD_RUSTFLAGS"] {
        c.env_remove(var);
    }
    let from_cargo_run = ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_PRIMARY_PACKAGE", "CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_RUSTC_CURRENT_DIR"];
    for (var, _) in std::env::vars_os() {
        let name = var.to_string_lossy();
        if from_cargo_run.iter().any(|p| name.starts_with(p)) {
            c.env_remove(&var);
        }
    }
    c
}

fn ensure_cargo_fuzz() -> Result<()> {
    let found = cargo().args(["fuzz", "--version"]).output().map(|o| o.status.success()).unwrap_or(false);
    if !found {
        println!("installing cargo-fuzz");
        let mut c = cargo();
        c.args(["install", "cargo-fuzz", "--locked"]);
        run(c)?;
    }
    Ok(())
}

/// What one fuzz run found, read from libFuzzer's output.
struct FuzzOutcome {
    target: String,
    executions: Option<u64>,
    seconds: f64,
    crash: Option<String>,
}

/// The number after `prefix` at the start of a line (or after it anywhere, for `Done`).
fn number_after(line: &str, prefix: &str) -> Option<u64> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Reads a libFuzzer log: the executions (`stat::number_of_executed_units`, else `Done N runs`,
/// else the last `#N` status line), the seconds (`Done … in S second(s)`) and a crash (the test
/// unit libFuzzer wrote, or the first `panicked at` / `ERROR` line).
fn read_fuzz_log(target: &str, log: &str, wall: f64, success: bool) -> FuzzOutcome {
    let mut stat = None;
    let mut done = None;
    let mut last_status = None;
    let mut seconds = None;
    let mut unit = None;
    let mut cause = None;
    let lines: Vec<&str> = log.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let line = *line;
        if let Some(n) = number_after(line, "stat::number_of_executed_units:") {
            stat = Some(n);
        } else if line.starts_with("Done ") {
            done = number_after(line, "Done ");
            seconds = number_after(line, " in ");
        } else if let Some(n) = line.strip_prefix('#').and_then(|_| number_after(line, "#")) {
            last_status = Some(n);
        }
        if let Some(i) = line.find("Test unit written to ") {
            unit = Some(line[i + "Test unit written to ".len()..].trim().to_string());
        }
        if cause.is_none() && line.contains("panicked at") {
            // The panic message follows on the next line.
            let message = lines.get(i + 1).map_or("", |m| m.trim());
            cause = Some(format!("{} {message}", line.trim()));
        } else if cause.is_none() && line.contains("ERROR: libFuzzer") {
            cause = Some(line.trim().to_string());
        }
    }
    let crash = match (unit, cause, success) {
        (None, None, true) => None,
        (unit, cause, _) => Some(
            [cause, unit.map(|u| format!("input: {u}"))]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ")
                .chars()
                .take(400)
                .collect::<String>(),
        )
        .map(|s| if s.is_empty() { "the fuzzer failed; see its log".to_string() } else { s }),
    };
    FuzzOutcome {
        target: target.to_string(),
        executions: stat.or(done).or(last_status),
        seconds: seconds.map_or(wall, |s| s as f64),
        crash,
    }
}

/// `cargo xtask fuzz [--secs N] [TARGET…]`: every target for N seconds, one after the other.
fn fuzz(args: &[String]) -> Result<()> {
    let mut secs: u64 = 60;
    let mut filters = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix("--secs=") {
            secs = v.parse().with_context(|| format!("--secs takes whole seconds, not {v:?}"))?;
        } else if a == "--secs" {
            let v = it.next().context("--secs needs a number of seconds")?;
            secs = v.parse().with_context(|| format!("--secs takes whole seconds, not {v:?}"))?;
        } else if a.starts_with('-') {
            bail!("unknown option {a}; usage: cargo xtask fuzz [--secs N] [TARGET…]");
        } else {
            filters.push(a.clone());
        }
    }
    ensure_cargo_fuzz()?;
    let out = cargo_fuzz("list").output().context("cannot run cargo fuzz list")?;
    if !out.status.success() {
        bail!("cargo fuzz list failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let targets: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|t| !t.is_empty() && (filters.is_empty() || filters.iter().any(|f| t.contains(f.as_str()))))
        .map(str::to_string)
        .collect();
    if targets.is_empty() {
        bail!("no fuzz target matches {filters:?}");
    }
    // Build every target once first, so the time given to each is spent fuzzing.
    let mut build = cargo_fuzz("build");
    build.args(["--sanitizer", "none"]);
    run(build)?;

    let logs = root().join(FUZZ_DIR).join("target").join("fuzz-logs");
    std::fs::create_dir_all(&logs)?;
    let mut outcomes = Vec::new();
    for target in &targets {
        let log_path = logs.join(format!("{target}.log"));
        println!("fuzzing {target} for {secs} s (log: {})", log_path.display());
        let log = std::fs::File::create(&log_path)?;
        let mut c = cargo_fuzz("run");
        c.args(["--sanitizer", "none", target, "--"])
            .arg(format!("-max_total_time={secs}"))
            .arg("-print_final_stats=1")
            // An input that runs for 10 s is a hang (a reader that never ends), not a slow case.
            .arg("-timeout=10")
            .stdout(log.try_clone()?)
            .stderr(log);
        let started = std::time::Instant::now();
        let status = c.status().with_context(|| format!("cannot run cargo fuzz run {target}"))?;
        let wall = started.elapsed().as_secs_f64();
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let outcome = read_fuzz_log(target, &text, wall, status.success());
        match &outcome.crash {
            None => println!("  {} executions in {:.0} s, no crash", show(outcome.executions), outcome.seconds),
            Some(c) => println!("  CRASH after {} executions: {c}", show(outcome.executions)),
        }
        outcomes.push(outcome);
    }

    println!("\n| target | executions | seconds | result |\n|---|---:|---:|---|");
    for o in &outcomes {
        let result = o.crash.as_deref().map_or("no crash".to_string(), |c| format!("crash: {c}"));
        println!("| `{}` | {} | {:.0} | {result} |", o.target, show(o.executions), o.seconds);
    }
    let crashed: Vec<&str> = outcomes.iter().filter(|o| o.crash.is_some()).map(|o| o.target.as_str()).collect();
    if !crashed.is_empty() {
        bail!("crashes found in {}; the inputs are under {FUZZ_DIR}/artifacts/", crashed.join(", "));
    }
    Ok(())
}

fn show(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_string(), |n| n.to_string())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = args.split_first().map(|(t, r)| (t.as_str(), r)).unwrap_or(("help", &[]));
    let result = match task {
        "build" => build().map(|p| println!("built {}", p.display())),
        "sync-sample" => sync_sample(rest),
        "test" => test(),
        "bench" => bench(rest),
        "fuzz" => fuzz(rest),
        "mutants" => mutants::mutants(rest),
        _ => {
            eprintln!("usage: cargo xtask <build|sync-sample|test|bench|fuzz [--secs N] [TARGET…]|mutants [NAME…]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::read_fuzz_log;

    #[test]
    fn reads_a_clean_run() {
        let log = "#2\tINITED cov: 10 ft: 10 corp: 2/20b exec/s: 0 rss: 40Mb\n\
                   #123456\tDONE   cov: 99 ft: 120 corp: 30/1Kb lim: 4096 exec/s: 2023 rss: 90Mb\n\
                   Done 123456 runs in 61 second(s)\n\
                   stat::number_of_executed_units: 123457\n\
                   stat::average_exec_per_sec:     2023\n";
        let o = read_fuzz_log("t", log, 70.0, true);
        assert_eq!(o.executions, Some(123457));
        assert_eq!(o.seconds, 61.0);
        assert!(o.crash.is_none());
    }

    #[test]
    fn reads_a_crash() {
        let log = "#5000\tNEW    cov: 99 ft: 120 corp: 30/1Kb\n\
                   thread '<unnamed>' panicked at fuzz_targets/x.rs:10:5:\n\
                   assertion failed: ok\n\
                   ==77== ERROR: libFuzzer: deadly signal\n\
                   artifact_prefix='a/'; Test unit written to a/crash-abc\n\
                   stat::number_of_executed_units: 5012\n";
        let o = read_fuzz_log("t", log, 3.0, false);
        assert_eq!(o.executions, Some(5012));
        let crash = o.crash.unwrap();
        assert!(crash.contains("assertion failed: ok") && crash.contains("a/crash-abc"), "{crash}");
    }
}
