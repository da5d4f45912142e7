//! Kubernetes versions, the version-skew rules, and cluster topologies.
//!
//! The contract: a [`TopologySpec`] (masters, workers, `k8s`, optional per-node version lists,
//! as a test writes them) either [builds](TopologySpec::build) into a [`Topology`] that a real
//! cluster can have, or fails with a [`TopologyError`] that says what to change. A [`Version`] is
//! Kubernetes 1.x, optionally with a pinned patch ("1.29", "1.29.14", "v1.29.14"). The skew rules
//! are Kubernetes' own: API servers at most 1 minor apart, and kubelets never newer than the
//! oldest API server nor more than 3 minors older (2 before 1.28) than the newest.
//!
//! Shared by `chaos-macros` (which validates a test's topology at compile time, so that a bad
//! topology is a compile error instead of a failure after a minute of provisioning) and
//! `chaos-runtime` (which turns the same description into a normalized [`Topology`], the key of
//! the cluster pool).

mod skew;
mod topology;
mod version;

pub use skew::SkewError;
pub use topology::{MAX_NODES, NodeSpec, Role, Source, Topology, TopologyError, TopologySpec};
pub use version::{Version, VersionError, newest_known_patch};

/// The control-plane version a test gets when it does not say `k8s = "..."`.
pub const DEFAULT_K8S: &str = "1.35";
/// Control-plane nodes when `masters` is not given.
pub const DEFAULT_MASTERS: u32 = 1;
/// Worker nodes when `workers` is not given.
pub const DEFAULT_WORKERS: u32 = 1;
