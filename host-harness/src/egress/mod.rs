//! Egress: every request a plugin sends leaves through here.
//!
//! Lifetimes: an [`EgressPolicy`] (grants, credential, connection pool, counters) lives as long as
//! its tenant and is shared by the tenant's instances; [`EgressHooks`] live for one call (they
//! carry the call's deadline); the organization limiters of [`ratelimit::LimiterRegistry`] live as
//! long as the process, shared by every tenant writing to the same organization.
//!
//! - [`policy`]: the one hook every request passes: allow-list, credentials, rate permit,
//!   timeouts, the emulator redirect.
//! - [`grants`]: the operator's host grants and the one host the credential is bound to.
//! - [`address`]: public addresses only, after DNS.
//! - [`connections`]: keep-alive connections to the tenant's API host.
//! - [`credentials`]: secrets the host holds and attaches; they never enter the component.
//! - [`ratelimit`]: one paced request budget per destination organization.
//! - [`wire`]: the egress thread, where permits are waited for and requests written.

pub mod address;
pub mod connections;
pub mod credentials;
pub mod grants;
pub mod policy;
pub mod ratelimit;
pub mod wire;

pub use grants::{check_grants, credential_host, host_matches, intersect_hosts};
pub use policy::{
    ALLOW_EMULATOR_ENV, EgressCaps, EgressHooks, EgressPolicy, EgressStats, Redirect, Timeouts, emulator_allowed,
};
