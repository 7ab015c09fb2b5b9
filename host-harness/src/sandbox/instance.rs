//! A sandboxed instance: an empty WASI context (no filesystem, environment or sockets), the
//! tenant's egress hooks, store limits and a wall-clock deadline per call. A [`Plugin`] is the
//! loaded component (process lifetime); an [`Instance`] lives for one call, or for several
//! `sync-batch` calls of one tenant's run (see [`Instance::begin_call`]): isolation is per
//! tenant, never between batches of the same tenant.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::contract::bindings::{self, PluginHostViewPre as PluginPre, host_iface};
use crate::egress::address::PublicOnlyResolver;
use crate::egress::connections::ConnectionPool;
use crate::egress::credentials::Redactor;
use crate::egress::{EgressHooks, EgressPolicy, EgressStats, Timeouts};
use crate::sandbox::output::{LogBudget, clean};
use crate::error::HostError;
use crate::sandbox::limits::Limits;


/// Everything one instance may touch: an empty WASI context (no filesystem, no environment, no
/// sockets), the HTTP context with the tenant's egress hooks, and its limits.
pub struct TenantState {
    tenant: Arc<str>,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: EgressHooks,
    limits: StoreLimits,
    log: LogBudget,
}

impl WasiView for TenantState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for TenantState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

impl host_iface::Host for TenantState {
    async fn log(&mut self, level: host_iface::Level, message: String) {
        let Some(message) = self.log.admit(&self.hooks.policy().redactor, &message) else { return };
        let tenant = &*self.tenant;
        match level {
            host_iface::Level::Debug => tracing::debug!(tenant, "plugin: {message}"),
            host_iface::Level::Info => tracing::info!(tenant, "plugin: {message}"),
            host_iface::Level::Warn => tracing::warn!(tenant, "plugin: {message}"),
            host_iface::Level::Error => tracing::error!(tenant, "plugin: {message}"),
        }
    }
}

impl bindings::wit::Host for TenantState {}

/// A loaded, checked, pre-instantiated component. Cheap to share; every call gets a fresh store
/// and instance.
pub struct Plugin {
    engine: Engine,
    pre: PluginPre<TenantState>,
    hash: String,
    from_cache: bool,
    limits: Limits,
}

/// A live instance, with its captured stdio.
pub struct Instance {
    /// The store.
    pub store: Store<TenantState>,
    /// The typed exports.
    pub exports: bindings::PluginHostView,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    _live: Live,
}

/// Instances alive in this process (for a service's metrics).
static LIVE_INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// How many plugin instances are alive in this process.
pub fn live_instances() -> usize {
    LIVE_INSTANCES.load(Ordering::Relaxed)
}

/// Counts one instance while it lives.
struct Live;

impl Live {
    fn new() -> Live {
        LIVE_INSTANCES.fetch_add(1, Ordering::Relaxed);
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE_INSTANCES.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Instance {
    /// Prepare a kept instance for its next call: a new wall-clock deadline `budget` from now
    /// (for the epoch check and the egress timeouts) and a fresh log budget. Memory and globals
    /// carry over from the calls before.
    pub fn begin_call(&mut self, budget: Duration, log_bytes: usize) {
        let state = self.store.data_mut();
        state.hooks.set_deadline(Instant::now() + budget);
        state.log = LogBudget::new(log_bytes);
        self.store.set_epoch_deadline(1);
    }

    /// The tenant this instance serves.
    pub fn tenant(&self) -> &str {
        &self.store.data().tenant
    }

    /// Whether the plugin has printed nothing yet. The stdio capture is capped per instance and
    /// a write past the cap traps, so only a quiet instance is kept for another call: a plugin
    /// that prints gets a fresh capture (a fresh instance) for every call, as before instances
    /// were kept.
    pub fn printed_nothing(&self) -> bool {
        self.stdout.contents().is_empty() && self.stderr.contents().is_empty()
    }

    /// Log what the plugin printed, one line each, prefixed with the tenant. (An instance that
    /// printed is never kept for another call, so nothing is logged twice.)
    pub fn flush_stdio(&self) {
        let state = self.store.data();
        let tenant = &*state.tenant;
        let redactor = &state.hooks.policy().redactor;
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let bytes = pipe.contents();
            for line in String::from_utf8_lossy(&bytes).lines().filter(|l| !l.trim().is_empty()) {
                let line = clean(redactor, line, crate::sandbox::output::MAX_MESSAGE_BYTES);
                tracing::info!(tenant, stream, "plugin: {line}");
            }
        }
    }
}

impl Plugin {
    pub(super) fn new(engine: Engine, pre: PluginPre<TenantState>, hash: String, from_cache: bool, limits: Limits) -> Plugin {
        Plugin { engine, pre, hash, from_cache, limits }
    }

    /// SHA-256 of the component file.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Whether it was loaded from the compile cache.
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }

    /// The limits calls run under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Every import of the component, by full name (`wasi:http/types@0.2.4`), in file order:
    /// what any host must provide to run it.
    pub fn imports(&self) -> Vec<String> {
        let component = self.pre.instance_pre().component();
        component.component_type().imports(&self.engine).map(|(name, _)| name.to_string()).collect()
    }

    /// A policy that allows no egress at all, for the pure calls.
    pub fn no_egress(&self, tenant: &str) -> Arc<EgressPolicy> {
        let stats = Arc::new(EgressStats::default());
        let l = &self.limits;
        Arc::new(EgressPolicy {
            tenant: tenant.to_string(),
            allowed_hosts: Vec::new(),
            credential: None,
            redactor: Redactor::none(),
            redirect: None,
            limiter: None,
            timeouts: Timeouts::default(),
            caps: l.egress_caps(),
            stats: stats.clone(),
            connections: ConnectionPool::new(Timeouts::default().request, PublicOnlyResolver::new(tenant.into(), stats)),
        })
    }

    /// A fresh instance for one call that must finish within `budget`.
    pub async fn instantiate(&self, policy: Arc<EgressPolicy>, budget: Duration) -> Result<Instance, HostError> {
        let tenant: Arc<str> = policy.tenant.as_str().into();
        let deadline = Instant::now() + budget;
        let cap = self.limits.stdio_capture_bytes;
        let (stdout, stderr) = (MemoryOutputPipe::new(cap), MemoryOutputPipe::new(cap));
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let l = &self.limits;
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(l.header_bytes);
        let mut table = ResourceTable::new();
        table.set_max_capacity(l.resources);
        let state = TenantState {
            tenant: tenant.clone(),
            wasi,
            http,
            table,
            hooks: EgressHooks::new(policy, deadline),
            limits: store_limits(l),
            log: LogBudget::new(l.log_bytes_per_call),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // Yield to tokio at every epoch tick so a spinning plugin never holds a worker; trap
        // once the current call's wall-clock deadline passes.
        store.epoch_deadline_callback(move |ctx| {
            if Instant::now() >= ctx.data().hooks.deadline() {
                Err(wasmtime::format_err!("wall-clock deadline exceeded"))
            } else {
                Ok(wasmtime::UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        let exports = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| HostError::Plugin { tenant: tenant.to_string(), reason: format!("instantiation failed: {e}") })?;
        Ok(Instance { store, exports, stdout, stderr, _live: Live::new() })
    }
}

/// The store limits of one instance: memory size and count, tables and their elements, core
/// instances. A failed grow traps (rather than returning -1 to a guest that may ignore it).
fn store_limits(l: &Limits) -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(l.memory_bytes())
        .memories(l.memories)
        .tables(l.tables)
        .instances(l.instances)
        .table_elements(l.table_elements)
        .trap_on_grow_failure(true)
        .build()
}

/// Run one guest call with a wall-clock deadline; a trap or a timeout becomes a [`HostError`]
/// for this call only.
pub async fn guarded<T>(
    tenant: &str,
    budget: Duration,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> Result<T, HostError> {
    match tokio::time::timeout(budget, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            let text = format!("{e:?}");
            if text.contains("wall-clock deadline exceeded") {
                Err(HostError::Deadline { tenant: tenant.to_string(), seconds: budget.as_secs() })
            } else {
                Err(HostError::Plugin { tenant: tenant.to_string(), reason: trap_summary(&e) })
            }
        }
        Err(_) => Err(HostError::Deadline { tenant: tenant.to_string(), seconds: budget.as_secs() }),
    }
}

/// A one-line description of a trap: the cause, without the guest backtrace.
fn trap_summary(e: &wasmtime::Error) -> String {
    // wasmtime attaches the guest backtrace as the outermost context: many lines, no cause.
    const BACKTRACE: &str = "error while executing at wasm backtrace";
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !text.starts_with(BACKTRACE) && !parts.contains(&text) {
            parts.push(text);
        }
    }
    // Name the limit a trap hit, so the operator knows which key to look at.
    let named = [
        ("growing memory", "the instance exceeded its memory limit ([limits] memory_mib)"),
        ("memory growth failure", "the instance exceeded its memory limit ([limits] memory_mib)"),
        ("growing table", "the instance exceeded its table size limit ([limits] table_elements)"),
        ("memory count too high", "the component declares more memories than allowed ([limits] memories)"),
        ("table count too high", "the component declares more tables than allowed ([limits] tables)"),
        ("instance count too high", "the component creates more instances than allowed ([limits] instances)"),
        ("resource table has no free keys", "the instance holds more host resources than allowed ([limits] resources)"),
        ("total size of fields exceeds limit", "a header map of the plugin outgrew its size limit ([limits] header_bytes)"),
        ("too many fields in the field map", "a header map of the plugin outgrew its size limit ([limits] header_bytes)"),
    ];
    for (needle, says) in named {
        if parts.iter().any(|p| p.contains(needle)) && !parts.iter().any(|p| p == says) {
            parts.push(says.into());
        }
    }
    if parts.is_empty() {
        parts.push(e.root_cause().to_string().lines().next().unwrap_or("trap").to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instantiate a hand-written core module under `limits` and call its `run` export, if any.
    fn exercise(wat: &str, limits: &Limits) -> Result<(), String> {
        let engine = Engine::default();
        let module = wasmtime::Module::new(&engine, wat::parse_str(wat).unwrap()).unwrap();
        let mut store = Store::new(&engine, store_limits(limits));
        store.limiter(|s| s);
        let run = |store: &mut Store<StoreLimits>| -> wasmtime::Result<()> {
            let instance = wasmtime::Instance::new(&mut *store, &module, &[])?;
            if let Ok(f) = instance.get_typed_func::<(), i32>(&mut *store, "run") {
                f.call(&mut *store, ())?;
            }
            Ok(())
        };
        run(&mut store).map_err(|e| trap_summary(&e))
    }

    #[test]
    fn more_memories_than_allowed_fail_instantiation_naming_the_limit() {
        let err = exercise("(module (memory 1) (memory 1) (memory 1))", &Limits::default()).unwrap_err();
        assert!(err.contains("the component declares more memories than allowed ([limits] memories)"), "{err}");
    }

    #[test]
    fn more_tables_than_allowed_fail_instantiation_naming_the_limit() {
        let tables = "(table 1 funcref) ".repeat(17);
        let err = exercise(&format!("(module {tables})"), &Limits::default()).unwrap_err();
        assert!(err.contains("the component declares more tables than allowed ([limits] tables)"), "{err}");
    }

    #[test]
    fn growing_a_table_past_the_element_cap_traps_naming_the_limit() {
        let wat = r#"(module (table 1 funcref)
            (func (export "run") (result i32) (table.grow 0 (ref.null func) (i32.const 100000))))"#;
        let err = exercise(wat, &Limits::default()).unwrap_err();
        assert!(err.contains("the instance exceeded its table size limit ([limits] table_elements)"), "{err}");
        assert_eq!(exercise(wat, &Limits { table_elements: 200_000, ..Limits::default() }), Ok(()));
    }

    #[test]
    fn growing_memory_past_its_cap_traps_naming_the_limit() {
        // 64 MiB is 1024 pages; ask for 2000 more.
        let wat = r#"(module (memory 1) (func (export "run") (result i32) (memory.grow (i32.const 2000))))"#;
        let err = exercise(wat, &Limits::default()).unwrap_err();
        assert!(err.contains("the instance exceeded its memory limit ([limits] memory_mib)"), "{err}");
    }
}
