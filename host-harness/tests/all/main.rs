//! The host's one integration-test binary: the parts of the host that need neither a built
//! component nor the Gladly emulator (the planner, the state database, the sources). The
//! end-to-end tests that run components against the emulator are in the conformance suite
//! (`tests/conformance/tests/all/`).

mod plan;
mod sources;
mod state;
mod state_postgres;
