//! Gladly destination as a WebAssembly component (`wasm32-wasip2`).
//!
//! Implements the `reverse-etl:destination@0.1.0` contract (`wit/v0.1.0/destination.wit`) for
//! Gladly customer profiles. Only `edge` names the generated bindings and only `client` names
//! `waki`; every other module is plain Rust that compiles and unit-tests natively.
//!
//! Build the component with
//! `cargo build -p gladly-destination --target wasm32-wasip2 --release`.

#![deny(missing_docs)]
// The guest never panics: a trap would fail the whole batch. Tests may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod classify;
pub mod config;
pub mod connection;
pub mod email;
pub mod ids;
pub mod mapping;
pub mod merge;
pub mod phone;
pub mod profile;
pub mod protocol;
pub mod spec;
pub mod transport;
pub mod types;

// The component boundary: only meaningful (and only linked) on the wasm target.
#[cfg(target_arch = "wasm32")]
mod client;
#[cfg(target_arch = "wasm32")]
mod edge;
