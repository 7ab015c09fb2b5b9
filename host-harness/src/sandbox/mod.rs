//! The sandbox: where plugin code runs.
//!
//! Lifetimes: the [`Runtime`] (engine, linker, epoch ticker) lives as long as the process and is
//! shared by every tenant; a [`Plugin`] (a loaded, checked, pre-instantiated component) lives as
//! long as anyone uses it; an [`Instance`] lives for one contract call.
//!
//! - [`engine`]: the engine, the linker, loading a component.
//! - [`cache`]: compiled components on disk, keyed by content and engine.
//! - [`imports`]: the load-time import allow-list.
//! - [`limits`]: every limit the host enforces on a plugin, named and defaulted.
//! - [`instance`]: a fresh store and instance per call, with its limits and deadline.
//! - [`output`]: everything the plugin says, bounded, escaped and with the secret removed.
//! - [`calls`]: the contract's functions as async methods on [`Plugin`], each result checked
//!   against the contract.

pub mod cache;
pub mod calls;
pub mod engine;
pub mod imports;
pub mod instance;
pub mod limits;
pub mod output;

pub use engine::{Runtime, RuntimeConfig};
pub use instance::{Instance, Plugin, TenantState, guarded};
