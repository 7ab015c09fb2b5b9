//! Conformance suite of the Gladly destination component.
//!
//! Runs a build of the component (any path: `DESTINATION_COMPONENT=/path/x.wasm cargo test -p
//! conformance`) in the reference host against the Gladly emulator on 127.0.0.1, and checks what
//! it sends and what ends up in the emulator. This library is the support code: locating the
//! component, jobs in temp folders, one emulator + harness per test, the invariants every run
//! must keep, and the scenario folders runner. The tests live in `tests/tests/`, the scenario
//! folders in `tests/scenarios/`; `docs/CONFORMANCE.md` maps every promise to its test.
#![deny(missing_docs)]

pub mod checks;
pub mod component;
pub mod job;
pub mod profiles;
pub mod scenario;
pub mod session;
pub mod tempdir;

pub use gladly_emulator;
pub use host_harness;
pub use job::{JobSpec, ORG, Rows};
pub use session::Session;
