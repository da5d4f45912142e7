//! A stand-in for `chaos-runtime` in the compile-fail tests of `#[chaos_test]`
//! (`chaos-macros/tests/ui.rs`), which know it as `chaos_runtime`.
//!
//! trybuild builds the dependencies of the cases in a target directory of its own, with flags of
//! its own, so a case that depends on the real runtime rebuilds kube, k8s-openapi, tokio and the
//! rest of it: minutes. The cases only need what the expansion names and what their bodies call,
//! and this crate has exactly that, from the same sources where it matters: the registration, the
//! test future and `IntoTestResult` are the runtime's own `registry.rs`, included as a module, so
//! a case whose error comes from them (a future that is not `Send`, an error type that does not
//! convert) still sees the runtime's definitions, at their place in `chaos-runtime/src/`.
//!
//! `Cluster` and `Node` have the runtime's method signatures (`cluster.rs`) with nothing behind
//! them: no case runs a test body. That the expansion's paths are also the runtime's, every suite
//! of the workspace checks by compiling against the real one.

#[path = "../../../chaos-runtime/src/registry.rs"]
mod registry;

pub use chaos_macros::chaos_test;
pub use chaos_topology::{Role, Topology, Version};

/// The runtime's `Cluster`, as far as the cases use it.
pub struct Cluster {
    name: String,
    topology: Topology,
    nodes: Vec<Node>,
    namespace: String,
    seed: u64,
}

impl Cluster {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The runtime returns a `kube::Client`; no case looks at it.
    pub fn client(&self) -> Client {
        Client
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }
}

/// Stands in for `kube::Client`.
#[derive(Clone)]
pub struct Client;

/// The runtime's `Node`, as far as the cases use it.
pub struct Node {
    name: String,
}

impl Node {
    pub fn name(&self) -> &str {
        &self.name
    }
}

pub mod prelude {
    pub use crate::{Cluster, Node, Role, Topology, Version, chaos_test};
}

/// What the expansion of `#[chaos_test]` names, as in the runtime.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::{IntoTestResult, TESTS, TestFuture, TestRegistration};
    pub use linkme;
}
