//! The engine, the on-disk cache of compiled components, the load-time checks, and one fresh
//! sandboxed instance per call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::bindings::{self, PluginHostViewPre as PluginPre, host_iface};
use crate::connections::ConnectionPool;
use crate::egress::{EgressHooks, EgressPolicy, EgressStats, Timeouts};
use crate::error::HostError;
use crate::imports;
use crate::limits::Limits;

/// How often the epoch advances: the granularity of deadlines and of the yields that keep a
/// spinning plugin from holding a tokio worker.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Engine-wide settings.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Use the pooling instance allocator (pre-reserved slots; faster instantiation under load).
    pub pooling: bool,
    /// Limits per instance and call.
    pub limits: Limits,
}

/// Advances the engine's epoch until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .ok();
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One engine and linker, shared by every plugin and tenant.
pub struct Runtime {
    engine: Engine,
    linker: Linker<TenantState>,
    config: RuntimeConfig,
    _ticker: EpochTicker,
}

fn wt(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Runtime {
    /// Build the engine and the linker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, HostError> {
        let mut c = Config::new();
        c.wasm_component_model(true);
        c.epoch_interruption(true);
        if config.pooling {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            pool.total_component_instances(512);
            pool.total_core_instances(4096);
            pool.total_memories(1024);
            pool.total_tables(2048);
            pool.max_memory_size(config.limits.memory_bytes());
            c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
            c.memory_reservation(config.limits.memory_bytes() as u64);
        }
        let engine = Engine::new(&c).map_err(|e| HostError::Config(format!("cannot create the engine: {e}")))?;
        let mut linker = Linker::new(&engine);
        let link = |r: wasmtime::Result<()>| r.map_err(|e| HostError::Config(format!("cannot link WASI: {e}")));
        link(wasmtime_wasi::p2::add_to_linker_async(&mut linker))?;
        link(wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))?;
        link(host_iface::add_to_linker::<TenantState, HasSelf<TenantState>>(&mut linker, |s| s))?;
        let ticker = EpochTicker::start(engine.clone());
        Ok(Runtime { engine, linker, config, _ticker: ticker })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// Load a component: from the cache when this exact file was compiled before by a compatible
    /// engine, else compile (and cache). Then check its imports and pre-instantiate it.
    pub fn load(&self, path: &Path) -> Result<Plugin, HostError> {
        let shown = path.display().to_string();
        let load_err = |reason: String| HostError::Load { path: shown.clone(), reason };
        let bytes = std::fs::read(path).map_err(|e| {
            load_err(format!("{e}; build it first (see README: cargo xtask build)"))
        })?;
        let hash = hex::encode(Sha256::digest(&bytes));
        let (component, from_cache) = self.compile_cached(&bytes, &hash).map_err(load_err)?;

        let ty = component.component_type();
        let names: Vec<String> = ty.imports(&self.engine).map(|(n, _)| n.to_string()).collect();
        if let Some(import) = imports::first_forbidden(names.iter().map(String::as_str)) {
            return Err(HostError::ForbiddenImport { path: shown, import });
        }
        let pre = self.linker.instantiate_pre(&component).map_err(|e| load_err(wt(e)))?;
        let pre = PluginPre::new(pre).map_err(|e| load_err(format!("it does not export the destination contract: {e}")))?;
        Ok(Plugin { engine: self.engine.clone(), pre, hash, from_cache, limits: self.config.limits.clone() })
    }

    fn compile_cached(&self, bytes: &[u8], hash: &str) -> Result<(Component, bool), String> {
        let Some(dir) = &self.config.cache_dir else {
            return Component::new(&self.engine, bytes).map(|c| (c, false)).map_err(wt);
        };
        // The key covers the component bytes and everything about the engine that affects
        // compiled code, so a wasmtime upgrade or a config change never loads a stale artifact.
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&self.engine.precompile_compatibility_hash(), &mut hasher);
        let engine_key = std::hash::Hasher::finish(&hasher);
        let file = dir.join(format!("{}-{engine_key:016x}.cwasm", &hash[..32]));
        if file.exists() {
            // SAFETY: the file was written by `Component::serialize` of this host into the
            // operator's cache directory, under a name that includes the engine compatibility
            // hash; deserialize also re-checks the engine compatibility header.
            match unsafe { Component::deserialize_file(&self.engine, &file) } {
                Ok(c) => return Ok((c, true)),
                Err(e) => tracing::warn!("ignoring unusable cache entry {}: {e}", file.display()),
            }
        }
        let component = Component::new(&self.engine, bytes).map_err(wt)?;
        if let Ok(serialized) = component.serialize() {
            // Unique per process and per write: two runtimes of one process compiling the same
            // component at once must not write (and truncate) the same temporary file.
            static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = WRITES.fetch_add(1, Ordering::Relaxed);
            let tmp = file.with_extension(format!("tmp{}-{n}", std::process::id()));
            let written = std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::write(&tmp, serialized))
                .and_then(|_| std::fs::rename(&tmp, &file));
            if let Err(e) = written {
                tracing::warn!("cannot write the component cache {}: {e}", file.display());
            }
        }
        Ok((component, false))
    }
}

/// Everything one instance may touch: an empty WASI context (no filesystem, no environment, no
/// sockets), the HTTP context with the tenant's egress hooks, and its limits.
pub struct TenantState {
    tenant: Arc<str>,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: EgressHooks,
    limits: StoreLimits,
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

/// A live instance for one call, with its captured stdio.
pub struct Instance {
    /// The store.
    pub store: Store<TenantState>,
    /// The typed exports.
    pub exports: bindings::PluginHostView,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl Instance {
    /// Log what the plugin printed, one line each, prefixed with the tenant.
    pub fn flush_stdio(&self) {
        let tenant = &*self.store.data().tenant;
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let bytes = pipe.contents();
            for line in String::from_utf8_lossy(&bytes).lines().filter(|l| !l.trim().is_empty()) {
                tracing::info!(tenant, stream, "plugin: {line}");
            }
        }
    }
}

impl Plugin {
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

    /// A policy that allows no egress at all, for the pure calls.
    pub fn no_egress(tenant: &str) -> Arc<EgressPolicy> {
        Arc::new(EgressPolicy {
            tenant: tenant.to_string(),
            allowed_hosts: Vec::new(),
            credential: None,
            redirect: None,
            limiter: None,
            timeouts: Timeouts::default(),
            stats: Arc::new(EgressStats::default()),
            connections: ConnectionPool::new(Timeouts::default().request),
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
        let state = TenantState {
            tenant: tenant.clone(),
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: EgressHooks::new(policy, deadline),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.limits.memory_bytes())
                .trap_on_grow_failure(true)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        // Yield to tokio at every epoch tick so a spinning plugin never holds a worker; trap
        // once the wall-clock deadline passes.
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
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
        Ok(Instance { store, exports, stdout, stderr })
    }
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
    if parts.iter().any(|p| p.contains("growing memory")) {
        parts.push("the instance exceeded its memory limit ([limits] memory_mib)".into());
    }
    if parts.is_empty() {
        parts.push(e.root_cause().to_string().lines().next().unwrap_or("trap").to_string());
    }
    parts.join(": ")
}
