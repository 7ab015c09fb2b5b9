//! Conformance suite of the Gladly destination component.
//!
//! Runs a build of the component (any path: `DESTINATION_COMPONENT=/path/x.wasm cargo test -p
//! conformance`) in the reference host against the Gladly emulator on 127.0.0.1, and checks what
//! it sends and what ends up in the emulator. This library is the suite's own support code: one
//! emulator + harness per test, job specs, the invariants every run must keep, and the scenario
//! folders runner; the fixtures every test crate shares (temporary folders, where the components
//! are, job files, profiles) come from the `test-kit` crate. The tests live in
//! `tests/conformance/tests/all/` (one test binary), the scenario folders in
//! `tests/conformance/scenarios/`; `docs/CONFORMANCE.md` maps every promise to its test.
#![deny(missing_docs)]

pub mod checks;
pub mod component;
pub mod job;
pub mod scenario;
pub mod session;

pub use gladly_emulator;
pub use host_harness;
pub use job::{JobSpec, ORG, Rows};
pub use session::Session;
pub use test_kit;
pub use test_kit::profiles;
