//! What a provider knows of a node it made: facts only. Tests get [`crate::Node`] handles, which
//! pair these facts with the provider's fault interface.

use chaos_topology::{Role, Version};

/// One node of a provisioned cluster, as its provider made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodeInfo {
    /// The node's name, in the cluster and (on kind) of its container.
    pub name: String,
    pub role: Role,
    /// The version the test asked for, e.g. `1.28`.
    pub version: Version,
    /// The full version the node's kubelet reports, e.g. `v1.28.15`.
    pub kubelet_version: String,
}
