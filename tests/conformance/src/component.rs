//! Which component is under test, and the compiled-code cache every test shares.
//!
//! The suite certifies whatever component `DESTINATION_COMPONENT` names (a relative path is
//! taken from the workspace root); without it, the build of this workspace
//! (`target/wasm32-wasip2/release/gladly_destination.wasm`, made by `cargo xtask build`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use host_harness::sandbox::RuntimeConfig;
use host_harness::sync::Harness;

/// Environment variable naming the component to certify.
pub const COMPONENT_ENV: &str = "DESTINATION_COMPONENT";

/// The workspace root (the folder holding `tests/`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or_else(|| manifest.to_path_buf())
}

/// The component path: `DESTINATION_COMPONENT` (relative paths from the workspace root) or the
/// workspace's own release build.
pub fn component_path() -> PathBuf {
    resolve_component(std::env::var_os(COMPONENT_ENV).map(PathBuf::from))
}

/// [`component_path`] for an explicit value of the variable (`None` or empty: the default).
pub fn resolve_component(var: Option<PathBuf>) -> PathBuf {
    let root = workspace_root();
    match var.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) if p.is_absolute() => p,
        Some(p) => root.join(p),
        None => root.join("target/wasm32-wasip2/release/gladly_destination.wasm"),
    }
}

/// The component path, after checking the file exists; panics with the fix otherwise.
pub fn require_component() -> PathBuf {
    let path = component_path();
    assert!(
        path.is_file(),
        "the component under test {} does not exist: build it with `cargo xtask build`, or set \
         {COMPONENT_ENV}=/path/to/component.wasm to certify another build",
        path.display()
    );
    path
}

/// Where compiled components are cached between tests (and between runs of the suite).
pub fn cache_dir() -> PathBuf {
    workspace_root().join("target/conformance-cache")
}

/// Compiles the component once per test process (later harnesses load it from the cache), so
/// parallel tests do not all compile it at the same time.
pub fn warm_up() {
    static WARM: OnceLock<Result<(), String>> = OnceLock::new();
    let result = WARM.get_or_init(|| {
        let path = require_component();
        let harness = Harness::new(RuntimeConfig { cache_dir: Some(cache_dir()), pooling: false, limits: Default::default() })
            .map_err(|e| e.to_string())?;
        harness.plugin(&path).map(|_| ()).map_err(|e| e.to_string())
    });
    if let Err(e) = result {
        panic!("cannot load the component under test: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_path_is_configurable() {
        let root = workspace_root();
        assert_eq!(
            resolve_component(None),
            root.join("target/wasm32-wasip2/release/gladly_destination.wasm")
        );
        assert_eq!(resolve_component(Some(PathBuf::new())), resolve_component(None));
        assert_eq!(resolve_component(Some("/opt/x.wasm".into())), PathBuf::from("/opt/x.wasm"));
        assert_eq!(resolve_component(Some("build/x.wasm".into())), root.join("build/x.wasm"));
    }
}
