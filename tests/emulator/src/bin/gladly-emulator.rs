//! Runs the Gladly emulator as a standalone server on 127.0.0.1.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use gladly_emulator::{Emulator, EmulatorConfig, LimiterShape};

/// Gladly customer-profile API emulator (listens on 127.0.0.1 only).
#[derive(Debug, Parser)]
#[command(name = "gladly-emulator", version)]
struct Args {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Requests per second allowed for each organization.
    #[arg(long, default_value_t = 10)]
    rate_limit: u32,
    /// How the limit is counted: leaky-bucket, sliding-window or fixed-window.
    #[arg(long, default_value = "leaky-bucket")]
    rate_limit_shape: LimiterShape,
    /// Delay added before answering each request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Each request's delay varies by up to this many milliseconds either way.
    #[arg(long, default_value_t = 0)]
    latency_jitter_ms: u64,
    /// Seed for generated ids (and fault draws).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// On shutdown (Ctrl-C / SIGINT), write the request log here as JSON Lines: per request its
    /// organization, method, path, status and arrival in microseconds since the start. For
    /// benchmarks that run the emulator in a process of its own.
    #[arg(long)]
    request_log: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    // Logs go to stderr: stdout carries only the "listening" line that scripts wait for.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .init();
    let config = EmulatorConfig {
        rate_limit_per_second: args.rate_limit,
        rate_limit_shape: args.rate_limit_shape,
        latency: Duration::from_millis(args.latency_ms),
        latency_jitter: Duration::from_millis(args.latency_jitter_ms),
        seed: args.seed,
        ..EmulatorConfig::default()
    };
    let emulator =
        Emulator::start_on(config, SocketAddr::from((Ipv4Addr::LOCALHOST, args.port))).await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "gladly-emulator listening on {}", emulator.base_url())?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c().await?;
    if let Some(path) = &args.request_log {
        write_request_log(path, &emulator)?;
    }
    emulator.shutdown().await;
    Ok(())
}

fn write_request_log(path: &std::path::Path, emulator: &Emulator) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for r in emulator.requests() {
        let line = serde_json::json!({
            "org": r.org,
            "method": r.method,
            "path": r.path,
            "status": r.status,
            "at_us": r.at.as_micros() as u64,
        });
        writeln!(out, "{line}")?;
    }
    out.flush()
}
