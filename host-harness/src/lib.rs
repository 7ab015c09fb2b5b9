//! The reference host for destination components: loads a component built against the
//! `reverse-etl:destination` contract, runs it sandboxed per tenant, feeds it warehouse rows and
//! keeps sync state.
#![deny(missing_docs)]

pub mod bindings;
pub mod egress;
pub mod error;
pub mod imports;
pub mod limits;
pub mod model;
pub mod ratelimit;
pub mod runtime;
pub mod secret;
pub mod spec;
