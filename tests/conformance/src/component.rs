//! Which component is under test, and loading it once per test process.
//!
//! The suite certifies whatever component `DESTINATION_COMPONENT` names (a relative path is
//! taken from the workspace root); without it, the build of this workspace that `cargo xtask
//! build` makes (see [`test_kit::components`] for where that is looked for).

use std::path::PathBuf;
use std::sync::OnceLock;

use host_harness::sandbox::RuntimeConfig;
use host_harness::sync::Harness;

pub use test_kit::components::{COMPONENT_ENV, cache_dir, component_path, resolve_component, workspace_root};

/// The component path, after checking the file exists; panics with the fix otherwise.
pub fn require_component() -> PathBuf {
    test_kit::components::destination()
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
