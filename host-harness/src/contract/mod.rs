//! The contract as the host sees it: the bindings `bindgen!` generates from the WIT and the plain
//! host types that mirror them.
//!
//! Lifetime: plain values. Nothing here holds a resource; every other layer speaks these types.
//!
//! - [`bindings`]: the one module that names the generated types, and the conversions to and
//!   from the plain ones. A new WIT variant is a compile error here (every `match` is
//!   exhaustive), never a silent default.
//! - [`model`]: rows, cells, mappings, sync items, results and errors.
//! - [`spec`]: what a destination says about itself (`spec`) and about a configuration
//!   (`validate-config`).

pub mod bindings;
pub mod model;
pub mod spec;
