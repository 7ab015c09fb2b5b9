//! The reference host for destination components: loads a component built against the
//! `reverse-etl:destination` contract, runs it sandboxed per tenant, feeds it warehouse rows and
//! keeps sync state.
#![deny(missing_docs)]

pub mod bindings;
pub mod calls;
pub mod concurrency;
pub mod config;
pub mod connections;
pub mod egress;
pub mod error;
pub mod imports;
pub mod limits;
pub mod model;
pub mod ledger;
pub mod plan;
pub mod progress;
pub mod ratelimit;
pub mod report;
pub mod retry;
pub mod runner;
pub mod runtime;
pub mod secret;
pub mod source;
pub mod spec;
pub mod state;
pub mod sync;
