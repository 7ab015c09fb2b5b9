//! Project tasks, run as `cargo xtask <task>`:
//!
//! - `build`: build the destination component and the test components for `wasm32-wasip2`
//!   (installing the target with rustup when it is missing).
//! - `sync-sample`: build, then sync the bundled sample warehouse. With `GLADLY_DOMAIN`,
//!   `GLADLY_USERNAME` and `GLADLY_API_TOKEN` set it writes to that Gladly organization;
//!   otherwise it starts the bundled Gladly emulator on 127.0.0.1 and syncs into it.
//! - `test`: build, then run the whole test suite (unit, integration and conformance).
//! - `bench`: build, then run the benchmark binary and print its figures.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

/// The components built for wasm32-wasip2: (package, output file name).
const COMPONENTS: &[(&str, &str)] = &[
    ("gladly-destination", "gladly_destination.wasm"),
    ("hostile-guest", "hostile_guest.wasm"),
    ("forbidden-import-guest", "forbidden_import_guest.wasm"),
];

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

fn component_path(file: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root().join("target"));
    target.join("wasm32-wasip2").join("release").join(file)
}

fn sync_sample(extra: &[String]) -> Result<()> {
    build()?;
    let job = root().join("host-harness/examples/sample.toml");
    let sync = |report: &str, args: &[String]| {
        let mut c = cargo();
        c.args(["run", "--quiet", "-p", "host-harness", "--bin", "destination-host", "--", "sync", "--config"])
            .arg(&job)
            .arg("--report")
            .arg(root().join("target").join(report))
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
    let rt = tokio::runtime::Runtime::new()?;
    let emulator = rt.block_on(gladly_emulator::Emulator::start(gladly_emulator::EmulatorConfig::default()))?;
    println!("no Gladly credentials given: syncing into the bundled emulator at {}", emulator.base_url());
    // A fresh emulator holds nothing, so its sync state starts empty too.
    let state = root().join("target/sample-state-emulator");
    let _ = std::fs::remove_dir_all(&state);
    let args = [format!("--endpoint={}", emulator.base_url()), format!("--state-dir={}", state.display())];
    let mut first = sync("sample-report.json", &args);
    // The emulator's default API user; it exists only inside the emulator.
    first.env("GLADLY_API_TOKEN", "emulator-token");
    // The sample holds a few deliberately bad rows: the run reports them and exits 1, which is
    // the expected outcome here; anything else (2 = the run itself failed) stops the task.
    ran_to_completion(first.status()?)?;
    println!("\nthe emulator now holds {} customer profiles; syncing again (nothing changed):", emulator.profiles("acme").len());
    let mut second = sync("sample-report-rerun.json", &args);
    second.env("GLADLY_API_TOKEN", "emulator-token");
    let outcome = ran_to_completion(second.status()?);
    rt.block_on(emulator.shutdown());
    outcome
}

/// A sync that ran to the end exits 0 (every record fine) or 1 (some rows rejected).
fn ran_to_completion(status: std::process::ExitStatus) -> Result<()> {
    match status.code() {
        Some(0 | 1) => Ok(()),
        _ => bail!("the sync did not complete ({status})"),
    }
}

/// Builds the components, then every test and the `destination-host` binary the conformance
/// suite runs (one build, with the same features as the test run, so nothing is compiled twice),
/// then runs the tests with `TEST_COMPONENTS_DIR` naming the folder the components were built in.
fn test() -> Result<()> {
    let component = build()?;
    let components_dir = component.parent().map(Path::to_path_buf).unwrap_or_default();
    let packages = ["--workspace", "--exclude", "hostile-guest", "--exclude", "forbidden-import-guest"];
    let mut b = cargo();
    b.arg("build").args(packages).args(["--tests", "--bin", "destination-host"]);
    run(b)?;
    let mut c = cargo();
    c.arg("test").args(packages).env("TEST_COMPONENTS_DIR", components_dir);
    run(c)
}

fn bench(extra: &[String]) -> Result<()> {
    build()?;
    let mut c = cargo();
    c.args(["run", "--release", "-p", "bench", "--bin", "bench", "--"]).args(extra);
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
