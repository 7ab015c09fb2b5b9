//! The on-disk cache of compiled components: native code keyed by the component's hash and the
//! engine's compatibility hash, so a second load skips the compiler.

use std::path::Path;
use std::sync::atomic::Ordering;

use wasmtime::Engine;
use wasmtime::component::Component;

/// The component compiled from `bytes`: loaded from `cache_dir` when this exact file was compiled
/// before by a compatible engine, else compiled (and written to the cache). `true` when it came
/// from the cache.
pub fn compile_cached(engine: &Engine, cache_dir: Option<&Path>, bytes: &[u8], hash: &str) -> wasmtime::Result<(Component, bool)> {
    let Some(dir) = cache_dir else {
        return Component::new(engine, bytes).map(|c| (c, false));
    };
    // The key covers the component bytes and everything about the engine that affects
    // compiled code, so a wasmtime upgrade or a config change never loads a stale artifact.
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    let engine_key = std::hash::Hasher::finish(&hasher);
    let file = dir.join(format!("{}-{engine_key:016x}.cwasm", &hash[..32]));
    if file.exists() {
        // SAFETY: the file was written by `Component::serialize` of this host into the
        // operator's cache directory, under a name that includes the engine compatibility
        // hash; deserialize also re-checks the engine compatibility header.
        match unsafe { Component::deserialize_file(engine, &file) } {
            Ok(c) => return Ok((c, true)),
            Err(e) => tracing::warn!("ignoring unusable cache entry {}: {e}", file.display()),
        }
    }
    let component = Component::new(engine, bytes)?;
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
