//! The on-disk cache of compiled components: native code keyed by the component's hash and the
//! engine's compatibility hash, so a second load skips the compiler.
//!
//! A cache entry is native code the host maps and runs without any check of what it does, so it
//! is trusted only when nobody but this user could have written it: the folder and the file must
//! be owned by the current user and writable by nobody else, and the file must be a regular file
//! (not a link). Anything else is compiled again from the component and not loaded. The host
//! creates the folder `0700` and its files `0600`.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
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
    if let Err(why) = ensure_private_dir(dir) {
        tracing::warn!("not using the compile cache {}: {why}", dir.display());
        return Component::new(engine, bytes).map(|c| (c, false));
    }
    let trusted = match untrusted_because(&file) {
        Ok(None) => true,
        Ok(Some(why)) => {
            tracing::warn!("not loading the cache entry {}: {why}; compiling it again", file.display());
            false
        }
        Err(_) => false,
    };
    if trusted {
        // SAFETY: the file is a regular file owned by this user in a folder owned by this user,
        // neither writable by anyone else, so it was written by `Component::serialize` of a host
        // run by this user, under a name that includes the engine compatibility hash;
        // deserialize also re-checks the engine compatibility header.
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
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&serialized))
            .and_then(|_| std::fs::rename(&tmp, &file));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!("cannot write the component cache {}: {e}", file.display());
        }
    }
    Ok((component, false))
}

/// The current user.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Why a file or folder with `meta` could have been written by someone else, if it could.
fn foreign(meta: &std::fs::Metadata) -> Option<String> {
    if meta.uid() != euid() {
        return Some(format!("it is owned by uid {}, not by this user (uid {})", meta.uid(), euid()));
    }
    if meta.mode() & 0o022 != 0 {
        return Some(format!("its mode {:o} lets other users write it", meta.mode() & 0o777));
    }
    None
}

/// Create the cache folder `0700` if it is missing; refuse one that others could write.
fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| format!("cannot create it: {e}"))?;
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("it is not a folder".into());
    }
    match foreign(&meta) {
        Some(why) => Err(format!("{why}; make it yours and private (chown to this user, chmod 700)")),
        None => Ok(()),
    }
}

/// `None` when `file` exists and may be loaded; why not otherwise; an error when it is missing.
fn untrusted_because(file: &Path) -> std::io::Result<Option<String>> {
    let meta = std::fs::symlink_metadata(file)?;
    if !meta.file_type().is_file() {
        return Ok(Some("it is not a regular file".into()));
    }
    Ok(foreign(&meta))
}
