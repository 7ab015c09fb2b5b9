//! `destination-host`: run a destination component against a job file.
//!
//! Commands: `spec`, `validate`, `check`, `preview`, `sync`, `failures`, `serve`. Secrets are read from the
//! environment or a file named in the job file, never from the command line.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use host_harness::job::JobConfig;
use host_harness::contract::model::Setting;
use host_harness::sync::{Harness, RunOptions};

#[derive(Parser)]
#[command(name = "destination-host", version, about = "Run a destination component: validate, preview and sync warehouse rows")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct JobArgs {
    /// The job file (TOML).
    #[arg(long, short)]
    config: PathBuf,
    /// Override a destination setting, KEY=VALUE (repeatable). Not for secrets.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Send the tenant's API traffic to this loopback emulator (e.g. http://127.0.0.1:8080).
    #[arg(long)]
    endpoint: Option<String>,
    /// Keep sync state in this folder instead of the job's `state_dir`.
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the component's capabilities as JSON.
    Spec {
        /// The component (.wasm).
        component: PathBuf,
    },
    /// Check the job's configuration and mapping offline.
    Validate(JobArgs),
    /// Check the credentials with one live call.
    Check(JobArgs),
    /// Map rows and show what a sync would send, without writing anything.
    Preview {
        #[command(flatten)]
        job: JobArgs,
        /// How many mapped profiles to print.
        #[arg(long, default_value_t = 5)]
        rows: usize,
    },
    /// Run the sync.
    Sync {
        #[command(flatten)]
        job: JobArgs,
        /// Write the JSON run report here.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Send only the rows whose last attempt failed (every kind of failure, also those not
        /// retried until they change); leave every other row alone.
        #[arg(long)]
        only_failed: bool,
    },
    /// List the rows currently failing, grouped by error code, with the fix.
    Failures(JobArgs),
    /// Run as a worker: every job in a folder, on its schedule or on demand, with an admin API.
    Serve(ServeArgs),
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// The folder of job files (`*.toml`); watched for changes.
    #[arg(long)]
    jobs: PathBuf,
    /// Where the admin API listens. A non-loopback address needs an admin token.
    #[arg(long, default_value = "127.0.0.1:8686")]
    listen: std::net::SocketAddr,
    /// The worker's own files (paused syncs); default: `.serve` inside the job folder.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A file whose first line is the admin token (else DESTINATION_HOST_ADMIN_TOKEN).
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// Syncs run at once.
    #[arg(long, default_value_t = 8)]
    max_parallel_runs: usize,
    /// How long shutdown waits for runs to finish their batches in flight (e.g. 60s).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    shutdown_grace: std::time::Duration,
    /// Share the work with other workers through this PostgreSQL database (state, run queue,
    /// per-organization leases). Prefer the environment variable when the URL holds a password.
    #[arg(long, env = "DESTINATION_HOST_COORDINATOR_URL", hide_env_values = true)]
    coordinator: Option<String>,
    /// With --coordinator: how long a lease lasts unrenewed, and how long a silent worker's runs
    /// wait before another worker takes them over.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    lease_ttl: std::time::Duration,
    /// With --coordinator: this worker's id in leases and logs (default: host name and process id).
    #[arg(long)]
    worker_id: Option<String>,
}

fn coordinator_config(
    url: Option<String>,
    lease_ttl: std::time::Duration,
    worker_id: Option<String>,
) -> Result<Option<host_harness::service::coordinator::CoordinatorConfig>, String> {
    let Some(url) = url else { return Ok(None) };
    if lease_ttl < std::time::Duration::from_secs(3) {
        return Err(format!(
            "--lease-ttl {} is shorter than 3s: the lease must outlast its one-second safety margin with room to renew; give 3s or more",
            humantime::format_duration(lease_ttl)
        ));
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "worker".into());
    let worker_id = worker_id.unwrap_or_else(|| format!("{host}-{}", std::process::id()));
    Ok(Some(host_harness::service::coordinator::CoordinatorConfig { url, lease_ttl, worker_id }))
}

fn overrides(set: &[String]) -> Result<Vec<Setting>, String> {
    set.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| Setting { key: k.trim().to_string(), value: v.to_string() })
                .ok_or_else(|| format!("--set {kv:?}: expected KEY=VALUE"))
        })
        .collect()
}

fn load(args: &JobArgs) -> Result<(JobConfig, RunOptions), String> {
    let mut job = JobConfig::load(&args.config).map_err(|e| e.to_string())?;
    if let Some(dir) = &args.state_dir {
        job.sync.state_dir = dir.clone();
    }
    let opts = RunOptions {
        overrides: overrides(&args.set)?,
        endpoint: args.endpoint.clone(),
        progress: std::io::stderr().is_terminal(),
        ..RunOptions::default()
    };
    Ok((job, opts))
}

async fn main_inner(cli: Cli) -> Result<bool, String> {
    match cli.command {
        Command::Spec { component } => {
            let harness = Harness::new(Default::default()).map_err(|e| e.to_string())?;
            let spec = harness.spec(&component).await.map_err(|e| e.to_string())?;
            println!("{}", serde_json::to_string_pretty(&spec).map_err(|e| e.to_string())?);
            Ok(true)
        }
        Command::Validate(args) => {
            let (job, opts) = load(&args)?;
            let harness = Harness::for_job(&job).map_err(|e| e.to_string())?;
            match harness.prepare(&job, &opts).await {
                Ok(t) => {
                    println!("configuration valid: {} in {:?} mode, sending to {}", t.spec.title, job.sync.mode, host_harness::text::escape_controls(&t.resolved.egress_hosts.join(", ")));
                    Ok(true)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(false)
                }
            }
        }
        Command::Check(args) => {
            let (job, opts) = load(&args)?;
            let harness = Harness::for_job(&job).map_err(|e| e.to_string())?;
            let tenant = harness.prepare(&job, &opts).await.map_err(|e| e.to_string())?;
            match harness.check(&tenant).await {
                Ok(info) => {
                    println!("connection ok{}", info.account.map(|a| format!(": {a}")).unwrap_or_default());
                    Ok(true)
                }
                Err(e) => {
                    eprintln!("connection failed: {e}");
                    Ok(false)
                }
            }
        }
        Command::Preview { job: args, rows } => {
            let (job, mut opts) = load(&args)?;
            opts.dry_run = true;
            opts.preview_rows = rows;
            let harness = Harness::for_job(&job).map_err(|e| e.to_string())?;
            let tenant = harness.prepare(&job, &opts).await.map_err(|e| e.to_string())?;
            let report = harness.run(&tenant, &job, &opts).await.map_err(|e| e.to_string())?;
            for record in &report.preview {
                println!("{}", record.render());
            }
            println!("{}", report.summary());
            Ok(true)
        }
        Command::Failures(args) => {
            // A dry run finds the rows refused before sending (never in state); state has the rest.
            let (job, mut opts) = load(&args)?;
            host_harness::sync::triage::require_state(&job).map_err(|e| e.to_string())?;
            opts.dry_run = true;
            let harness = Harness::for_job(&job).map_err(|e| e.to_string())?;
            let tenant = harness.prepare(&job, &opts).await.map_err(|e| e.to_string())?;
            let dry = harness.run(&tenant, &job, &opts).await.map_err(|e| e.to_string())?;
            let groups = host_harness::sync::triage::failures(&job, &dry.failures).map_err(|e| e.to_string())?;
            println!("{}", host_harness::sync::triage::render(&job.sync.id, &groups));
            Ok(true)
        }
        Command::Serve(args) => {
            use host_harness::service::{ServeConfig, auth::{ADMIN_TOKEN_ENV, AdminToken}, serve};
            let token = AdminToken::resolve(args.admin_token_file.as_deref(), std::env::var(ADMIN_TOKEN_ENV).ok(), args.listen)?;
            let config = ServeConfig {
                data_dir: args.data_dir.clone().unwrap_or_else(|| args.jobs.join(".serve")),
                jobs_dir: args.jobs,
                listen: args.listen,
                token,
                slots: args.max_parallel_runs,
                shutdown_grace: args.shutdown_grace,
                coordinator: coordinator_config(args.coordinator, args.lease_ttl, args.worker_id)?,
            };
            serve(config, shutdown_signal(), |addr| {
                use std::io::Write;
                println!("admin API listening on http://{addr}");
                let _ = std::io::stdout().flush();
            })
            .await?;
            Ok(true)
        }
        Command::Sync { job: args, report, only_failed } => {
            let (job, mut opts) = load(&args)?;
            opts.only_failed = only_failed;
            let harness = Harness::for_job(&job).map_err(|e| e.to_string())?;
            let tenant = harness.prepare(&job, &opts).await.map_err(|e| e.to_string())?;
            let run = harness.run(&tenant, &job, &opts).await.map_err(|e| e.to_string())?;
            println!("{}", run.summary());
            if let Some(path) = report {
                run.write(&path).map_err(|e| format!("cannot write the report {}: {e}", path.display()))?;
                println!("report written to {}", path.display());
            }
            Ok(!run.has_failures())
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM ({e}); stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DESTINATION_HOST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(main_inner(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
