//! Kubernetes versions, the version-skew rules, and cluster topologies.
//!
//! Shared by `chaos-macros` (which validates a test's topology at compile time, so that a bad
//! topology is a compile error instead of a failure after a minute of provisioning) and
//! `chaos-runtime` (which turns the same description into a normalized [`Topology`], the key of
//! the cluster pool).

mod skew;
mod topology;
mod version;

pub use skew::SkewError;
pub use topology::{NodeSpec, Role, Source, Topology, TopologyError, TopologySpec};
pub use version::{Version, VersionError, newest_known_patch};

/// The control-plane version a test gets when it does not say `k8s = "..."`.
pub const DEFAULT_K8S: &str = "1.35";
/// Control-plane nodes when `masters` is not given.
pub const DEFAULT_MASTERS: u32 = 1;
/// Worker nodes when `workers` is not given.
pub const DEFAULT_WORKERS: u32 = 1;
