//! Where the things the tests run are: the components `cargo xtask build` makes, the
//! `destination-host` binary, and the compile cache every test shares so that each component is
//! compiled once per machine rather than once per test binary.
//!
//! The components' folder is `TEST_COMPONENTS_DIR` when set (`cargo xtask test` sets it to the
//! folder it built into), else `$CARGO_TARGET_DIR/wasm32-wasip2/release` when `CARGO_TARGET_DIR`
//! is set, else `<workspace root>/target/wasm32-wasip2/release`; relative paths are taken from
//! the workspace root. `DESTINATION_COMPONENT` names another build of the destination to test
//! (`DESTINATION_COMPONENT=/path/x.wasm cargo test -p conformance` certifies it).

use std::path::{Path, PathBuf};

/// Environment variable naming the folder that holds the built components.
pub const COMPONENTS_DIR_ENV: &str = "TEST_COMPONENTS_DIR";
/// Environment variable naming the destination component under test.
pub const COMPONENT_ENV: &str = "DESTINATION_COMPONENT";
/// The destination component's file name.
pub const DESTINATION_FILE: &str = "gladly_destination.wasm";

/// The workspace root (the folder holding `tests/` and `host-harness/`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).map(Path::to_path_buf).unwrap_or_else(|| manifest.to_path_buf())
}

fn from_root(p: PathBuf) -> PathBuf {
    if p.is_absolute() { p } else { workspace_root().join(p) }
}

fn var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The cargo target folder: `CARGO_TARGET_DIR`, or `<workspace root>/target`.
pub fn target_dir() -> PathBuf {
    var("CARGO_TARGET_DIR").map(from_root).unwrap_or_else(|| workspace_root().join("target"))
}

/// The folder holding the built components (see the module doc for the order).
pub fn components_dir() -> PathBuf {
    components_dir_from(var(COMPONENTS_DIR_ENV), var("CARGO_TARGET_DIR"))
}

/// [`components_dir`] for explicit values of `TEST_COMPONENTS_DIR` and `CARGO_TARGET_DIR`.
pub fn components_dir_from(components: Option<PathBuf>, target: Option<PathBuf>) -> PathBuf {
    match (components, target) {
        (Some(dir), _) => from_root(dir),
        (None, Some(target)) => from_root(target).join("wasm32-wasip2/release"),
        (None, None) => workspace_root().join("target/wasm32-wasip2/release"),
    }
}

/// The destination component's path: `DESTINATION_COMPONENT`, or the build in
/// [`components_dir`]. Not checked; see [`destination`].
pub fn component_path() -> PathBuf {
    resolve_component(var(COMPONENT_ENV))
}

/// [`component_path`] for an explicit value of `DESTINATION_COMPONENT` (`None` or empty: the
/// default).
pub fn resolve_component(value: Option<PathBuf>) -> PathBuf {
    match value.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => from_root(p),
        None => components_dir().join(DESTINATION_FILE),
    }
}

/// `path`, after checking that the file exists; panics with the fix otherwise.
fn existing(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "{} does not exist: build the components with `cargo xtask build` (set {COMPONENTS_DIR_ENV} to the \
         folder holding them, or {COMPONENT_ENV}=/path/to/component.wasm to test another build of the destination)",
        path.display()
    );
    path
}

/// The Gladly destination under test (checked to exist).
pub fn destination() -> PathBuf {
    existing(component_path())
}

/// The misbehaving test component (`tests/components/hostile`).
pub fn hostile() -> PathBuf {
    existing(components_dir().join("hostile_guest.wasm"))
}

/// The component that imports `wasi:sockets` (`tests/components/forbidden-import`).
pub fn forbidden_import() -> PathBuf {
    existing(components_dir().join("forbidden_import_guest.wasm"))
}

/// The compile cache shared by every test (and every `destination-host` a test starts).
pub fn cache_dir() -> PathBuf {
    target_dir().join("test-component-cache")
}

/// The `destination-host` binary of this build: next to the running test binary's folder
/// (`<target>/<profile>/deps/<test>` → `<target>/<profile>/destination-host`). `cargo xtask
/// test` builds it first; alone: `cargo build -p host-harness --bin destination-host`.
pub fn destination_host() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.ancestors().nth(2).map(Path::to_path_buf).unwrap_or_default();
    let bin = profile_dir.join(format!("destination-host{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} does not exist: build it with `cargo build -p host-harness --bin destination-host` (`cargo xtask test` does)",
        bin.display()
    );
    bin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_path_is_configurable() {
        let root = workspace_root();
        assert_eq!(components_dir_from(None, None), root.join("target/wasm32-wasip2/release"));
        assert_eq!(components_dir_from(None, Some("/t".into())), PathBuf::from("/t/wasm32-wasip2/release"));
        assert_eq!(components_dir_from(Some("/c".into()), Some("/t".into())), PathBuf::from("/c"));
        assert_eq!(components_dir_from(Some("c".into()), None), root.join("c"));
        assert_eq!(resolve_component(None), components_dir().join("gladly_destination.wasm"));
        assert_eq!(resolve_component(Some(PathBuf::new())), resolve_component(None));
        assert_eq!(resolve_component(Some("/opt/x.wasm".into())), PathBuf::from("/opt/x.wasm"));
        assert_eq!(resolve_component(Some("build/x.wasm".into())), root.join("build/x.wasm"));
    }
}
