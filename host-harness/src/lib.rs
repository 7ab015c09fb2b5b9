//! The reference host for destination components: loads a component built against the
//! `reverse-etl:destination` contract, runs it sandboxed per tenant, feeds it warehouse rows and
//! keeps sync state. `docs/ARCHITECTURE.md` follows a row through these layers.
//!
//! | layer | what |
//! |---|---|
//! | [`contract`] | the WIT bindings and the plain host types that mirror them |
//! | [`sandbox`] | engine, compile cache, imports, limits, instances, the contract calls |
//! | [`egress`] | the policy hook, connections, credentials, the organization rate limiter |
//! | [`sync`] | harness and tenants, the run pipeline, planning, ledger, retries, report |
//! | [`state`] | the SQLite sync state: schema, records, batches, runs |
//! | [`source`] | warehouse rows from CSV, JSON Lines, SQLite and PostgreSQL |
//! | [`service`] | `serve`: the long-running worker, its schedules and its admin API |
//! | [`results`] | each record's outcome, written back to a table or a JSON Lines file |
//! | [`job`] | the job file the operator writes |
//! | [`fingerprint`] | what the planner compares and the state stores |
//! | [`error`] | host errors, grouped by what the caller should do |
//! | [`text`] | untrusted text made inert for logs and terminals |
//!
//! The `destination-host` CLI (`src/cli/`) is a client of this library.
#![deny(missing_docs)]

pub mod contract;
pub mod egress;
pub mod error;
pub mod fingerprint;
pub mod job;
pub mod results;
pub mod sandbox;
pub mod service;
pub mod source;
pub mod state;
pub mod sync;
pub mod text;
