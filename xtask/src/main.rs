//! Project tasks, run as `cargo xtask <task>`:
//!
//! - `build`: build the destination component and the test components for `wasm32-wasip2`
//!   (installing the target with rustup when it is missing).
//! - `sync-sample`: build, then sync the bundled sample warehouse. With `GLADLY_DOMAIN`,
//!   `GLADLY_USERNAME` and `GLADLY_API_TOKEN` set it writes to that Gladly organization;
//!   otherwise it starts the bundled Gladly emulator on 127.0.0.1 and syncs into it.
//! - `test`: build, then run the whole test suite (unit, integration and conformance).
//! - `bench`: build, then run the benchmark binary and print its figures.
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

/// Builds the components and the host's binaries (the conformance suite runs `destination-host`),
/// then runs every test with `TEST_COMPONENTS_DIR` naming the folder the components were built in.
fn test() -> Result<()> {
    build()?;
    // The CLI tests run the built `destination-host`.
    build_host()?;
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
    let mut c = cargo();
    c.args(["run", "--release", "-p", "bench", "--bin", "bench", "--"]).args(extra);
    c.env(ALLOW_EMULATOR.0, ALLOW_EMULATOR.1);
    run(c)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = args.split_first().map(|(t, r)| (t.as_str(), r)).unwrap_or(("help", &[]));
    let result = match task {
        "build" => build().map(|p| println!("built {}", p.display())),
        "sync-sample" => sync_sample(rest),
        "test" => test(),
        "bench" => bench(rest),
        _ => {
            eprintln!("usage: cargo xtask <build|sync-sample|test|bench>");
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
