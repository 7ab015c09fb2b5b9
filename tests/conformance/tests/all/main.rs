//! The conformance suite's one test binary: the real component (and the misbehaving test
//! components) in the real host against the Gladly emulator. Each module is one subject; see
//! `docs/CONFORMANCE.md` for which promise each test shows.
//!
//! Build the components first: `cargo xtask build` (`cargo xtask test` builds them, and the
//! `destination-host` binary the `cli` and `incremental` tests run).

mod cli;
mod contract;
mod coordinated;
mod create_first;
mod faults;
mod hostile;
mod incremental;
mod invariants;
mod policy;
mod portability;
mod rate;
mod results;
mod scenarios;
mod serve;
mod sources_e2e;
mod updates;
