//! The one test kit of the workspace: the fixtures the conformance suite, the host's tests and
//! the emulator's tests all need, written once.
//!
//! It is a normal library (every item is public and documented), so no test crate carries
//! helper modules that only some of its test files use. It knows nothing of the host's types:
//! job files come out as TOML and are parsed by whoever runs them, which keeps this crate (and
//! the emulator's tests that use it) free of wasmtime.
//!
//! | module | what |
//! |---|---|
//! | [`temp`] | temporary folders, unique names |
//! | [`components`] | where the built components, the host binary and the compile cache are |
//! | [`job`] | job files |
//! | [`emulator`] | an emulator with a test user and its credentials |
//! | [`http`] | a bare HTTP/1 client for talking to the emulator directly |
//! | [`profiles`] | reading profiles as the emulator returns them |
//! | [`rate`] | request-rate windows |
//! | [`rows`] | generated source rows |
//! | [`logs`] | a tracing subscriber that keeps every log line |
//! | [`postgres`] | where the test PostgreSQL is |
#![deny(missing_docs)]

pub mod components;
pub mod emulator;
pub mod http;
pub mod job;
pub mod logs;
pub mod postgres;
pub mod profiles;
pub mod rate;
pub mod rows;
pub mod temp;

pub use components::{cache_dir, destination, forbidden_import, hostile, workspace_root};
pub use emulator::{Creds, PROFILES, assert_no_secret, profile_path};
pub use job::{Job, q};
pub use temp::{TempDir, unique};
