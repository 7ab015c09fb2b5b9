//! The native side of `overhead`: plain Rust making the component's requests for the same
//! records (a lookup by email, then the create with the body the component sent) over the same
//! `ConnectionPool` type as the host, with the same request options, `C` batches at once. It
//! attaches the same headers the host does (Host, basic auth) and parses every JSON answer, as
//! the component does.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use bytes::Bytes;
use gladly_emulator::Emulator;
use host_harness::egress::EgressStats;
use host_harness::egress::address::PublicOnlyResolver;
use host_harness::egress::connections::ConnectionPool;
use http::HeaderValue;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use wasmtime_wasi_http::{RequestOptions, WasiBody};

use crate::measure::proc_cpu_secs;

/// One record's work: its email and the create body the component sent for it.
pub struct NativeRecord {
    pub email: String,
    pub create: Value,
}

/// What every request of one worker shares.
struct Shared {
    pool: ConnectionPool,
    base: String,
    auth: HeaderValue,
    options: RequestOptions,
}

/// Sends the requests for `records` to `emulator` with `c` workers taking `batch` records at a
/// time; the wall-clock seconds it took and the CPU seconds of the whole process (the
/// emulator's included).
pub async fn run(emulator: &Emulator, records: Vec<NativeRecord>, c: usize, batch: usize) -> Result<(f64, f64)> {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", gladly_emulator::DEFAULT_USER, gladly_emulator::DEFAULT_TOKEN));
    let mut auth = HeaderValue::from_str(&format!("Basic {basic}"))?;
    auth.set_sensitive(true);
    // The host's own request timeout, as its egress hook passes it.
    let timeout = Some(Duration::from_secs(30));
    let shared = Arc::new(Shared {
        pool: ConnectionPool::new(Duration::from_secs(30), PublicOnlyResolver::new("native".into(), Arc::new(EgressStats::default()))),
        base: emulator.base_url(),
        auth,
        options: RequestOptions { connect_timeout: timeout, first_byte_timeout: timeout, between_bytes_timeout: timeout },
    });
    let mut queue = VecDeque::new();
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        queue.push_back(records.by_ref().take(batch.max(1)).collect::<Vec<_>>());
    }
    let queue = Arc::new(Mutex::new(queue));
    let (t, cpu) = (Instant::now(), proc_cpu_secs("/proc/self/stat"));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..c {
        let (shared, queue) = (shared.clone(), queue.clone());
        workers.spawn(async move {
            loop {
                let Some(batch) = queue.lock().unwrap().pop_front() else { return Ok::<(), anyhow::Error>(()) };
                for r in batch {
                    upsert(&shared, r).await?;
                }
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r??;
    }
    Ok((t.elapsed().as_secs_f64(), proc_cpu_secs("/proc/self/stat") - cpu))
}

/// Look the customer up by email; create it when nobody has it.
async fn upsert(s: &Shared, r: NativeRecord) -> Result<()> {
    let find = format!("{}/api/v1/customer-profiles?email={}", s.base, r.email.replace('@', "%40"));
    let (status, found) = send(s, http::Request::get(find), None).await?;
    if status != 200 {
        bail!("find answered {status}");
    }
    if found.as_array().is_none_or(|a| !a.is_empty()) {
        bail!("find found a profile in an empty organization: {found}");
    }
    let body = Bytes::from(serde_json::to_vec(&r.create)?);
    let (status, _) = send(s, http::Request::post(format!("{}/api/v1/customer-profiles", s.base)), Some(body)).await?;
    if status != 201 {
        bail!("create answered {status}");
    }
    Ok(())
}

/// One request with the component's headers plus the host's; the status and the parsed answer.
async fn send(s: &Shared, req: http::request::Builder, body: Option<Bytes>) -> Result<(u16, Value)> {
    let mut req = req.header(HOST, "acme.gladly.com").header(AUTHORIZATION, s.auth.clone()).header(ACCEPT, "application/json");
    if let Some(b) = &body {
        req = req.header(CONTENT_TYPE, "application/json").header(CONTENT_LENGTH, b.len());
    }
    let body: WasiBody = Full::new(body.unwrap_or_default()).map_err(|never| match never {}).boxed_unsync();
    let response = s.pool.send(req.body(body)?, s.options).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.map_err(|e| anyhow::anyhow!("{e:?}"))?.to_bytes();
    let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes)? };
    Ok((status, value))
}
