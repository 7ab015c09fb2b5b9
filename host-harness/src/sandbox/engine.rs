//! The engine and its linker: one per process, shared by every plugin and tenant. Loading a
//! component goes through the compile cache and the import check, and ends in a pre-instantiated
//! [`Plugin`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

use crate::contract::bindings::{PluginHostViewPre as PluginPre, host_iface};
use crate::error::{Cause, HostError};
use crate::sandbox::instance::{Plugin, TenantState};
use crate::sandbox::limits::Limits;
use crate::sandbox::{cache, imports};

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

impl Runtime {
    /// Build the engine and the linker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, HostError> {
        let problems = config.limits.problems();
        if !problems.is_empty() {
            return Err(HostError::Config(problems.join("\n")));
        }
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
        let engine = Engine::new(&c).map_err(|e| HostError::Engine(e.into()))?;
        let mut linker = Linker::new(&engine);
        let link = |r: wasmtime::Result<()>| r.map_err(|e| HostError::Engine(e.into()));
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
        let load_err = |what: &'static str| {
            let path = shown.clone();
            move |source: Cause| HostError::Load { path, what, source }
        };
        let bytes = std::fs::read(path)
            .map_err(|e| load_err("cannot read it; build it first (see README: cargo xtask build)")(e.into()))?;
        let hash = hex::encode(Sha256::digest(&bytes));
        let (component, from_cache) =
            cache::compile_cached(&self.engine, self.config.cache_dir.as_deref(), &bytes, &hash).map_err(|e| load_err("cannot compile it")(e.into()))?;

        let ty = component.component_type();
        let names: Vec<String> = ty.imports(&self.engine).map(|(n, _)| n.to_string()).collect();
        if let Some(import) = imports::first_forbidden(names.iter().map(String::as_str)) {
            return Err(HostError::ForbiddenImport { path: shown, import });
        }
        let pre = self.linker.instantiate_pre(&component).map_err(|e| load_err("cannot link its imports")(e.into()))?;
        let pre = PluginPre::new(pre).map_err(|e| load_err("it does not export the destination contract")(e.into()))?;
        Ok(Plugin::new(self.engine.clone(), pre, hash, from_cache, self.config.limits.clone()))
    }
}
