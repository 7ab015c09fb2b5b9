//! Gladly destination as a WebAssembly component (`wasm32-wasip2`).
//!
//! Implements the `reverse-etl:destination@0.1.0` contract (`wit/v0.1.0/destination.wit`) for
//! Gladly customer profiles. Build the component with
//! `cargo build -p gladly-destination --target wasm32-wasip2 --release`.
//!
//! Boundary (only `bindings` and `client` are wasm-only; everything else tests natively):
//! - `bindings`: the one module naming wit-bindgen types: `generate!`, `export!`, conversions.
//! - `client`: the one module naming `waki`: [`transport::Transport`] over `wasi:http`.
//! - [`transport`]: the plain HTTP seam: the `Transport` trait, request, response, error.
//!
//! Model:
//! - [`model`]: plain mirrors of the WIT records the logic uses.
//!
//! Settings, validation and spec:
//! - [`settings`]: setting keys and defaults, parsed into [`settings::Config`].
//! - [`validate`]: `validate-config`: settings, mode and mapping checked together.
//! - [`spec`]: the destination spec; standard target fields and mode support defined once.
//!
//! Mapping and Gladly rules:
//! - [`mapping`]: the compiled mapping ([`mapping::Plan`]) and row → profile.
//! - [`account`]: the `domain` and `username` forms, and the one Gladly host.
//! - [`email`], [`phone`]: validation and normalization of addresses and numbers.
//! - [`profile`]: Gladly profile serde types and canonical JSON.
//! - [`merge`]: email/phone array merge and PATCH body construction.
//! - [`ids`]: the deterministic create id.
//!
//! Protocol:
//! - [`protocol`]: the per-record insert / update / upsert state machine.
//! - [`upsert_order`]: whether an upsert creates or looks up first, learned per sync.
//! - [`classify`]: HTTP status or transport failure → structured error.
//! - [`connection`]: the `check-connection` call, one authenticated read.

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

// Boundary.
pub mod transport;
// The component boundary proper: only meaningful (and only linked) on the wasm target.
#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod client;

// Model.
pub mod model;

// Settings, validation and spec.
pub mod settings;
pub mod spec;
pub mod validate;

// Mapping and Gladly rules.
pub mod account;
pub mod email;
pub mod ids;
pub mod mapping;
pub mod matching;
pub mod merge;
pub mod phone;
pub mod profile;

// Protocol.
pub mod classify;
pub mod connection;
pub mod protocol;
pub mod upsert_order;
