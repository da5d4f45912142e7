use std::fmt;

use crate::skew::{self, SkewError};
use crate::version::Version;

/// The most nodes a topology may have, control planes and workers together: the largest cluster
/// Kubernetes supports ("Kubernetes v1.35 supports clusters with up to 5,000 nodes",
/// <https://kubernetes.io/docs/setup/best-practices/cluster-large/>). Generous on purpose: no
/// provider here comes near it (a kind node is a container of about 300 MB at idle, see
/// `KindProvider::memory_per_cluster`), but a count above it is a typo, and [`TopologySpec::build`]
/// refuses it before allocating a node list of that length.
pub const MAX_NODES: u32 = 5000;

/// What a node does in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Runs the API server and the rest of the control plane.
    ControlPlane,
    /// Runs workloads.
    Worker,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::ControlPlane => "control-plane",
            Role::Worker => "worker",
        })
    }
}

/// Where a node's version was written: in `k8s`, or at an index of a version list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The `k8s` key.
    K8s,
    /// Entry `n` of `master_versions`.
    MasterVersions(usize),
    /// Entry `n` of `worker_versions`.
    WorkerVersions(usize),
}

/// A topology as a test describes it, versions already parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopologySpec {
    /// Control-plane nodes (at least 1).
    pub masters: u32,
    /// Worker nodes (0 or more).
    pub workers: u32,
    /// The control-plane version, and the version of any node no list overrides.
    pub k8s: Version,
    /// Empty, one entry for every control plane, or one entry per control plane.
    pub master_versions: Vec<Version>,
    /// Empty, one entry for every worker, or one entry per worker.
    pub worker_versions: Vec<Version>,
}

/// Why a [`TopologySpec`] describes no cluster that can exist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    /// `masters = 0`.
    #[error("a cluster needs at least one control plane: use `masters = 1` or more")]
    NoControlPlane,
    /// More than [`MAX_NODES`] nodes.
    #[error(
        "a cluster of {} nodes ({masters} control-plane, {workers} worker) is more than the \
         {MAX_NODES} Kubernetes supports (kubernetes.io/docs/setup/best-practices/cluster-large): \
         use fewer",
        *masters as u64 + *workers as u64
    )]
    TooManyNodes {
        /// Control-plane nodes asked for.
        masters: u32,
        /// Worker nodes asked for.
        workers: u32,
    },
    /// A per-node version list whose length fits neither "one for all" nor "one per node".
    #[error(
        "`{key}` has {given} entries for {nodes} nodes; give 1 entry (for every node) or \
         {nodes} (one per node, in order)"
    )]
    VersionCount {
        /// `master_versions` or `worker_versions`.
        key: &'static str,
        /// Entries in the list.
        given: usize,
        /// Nodes of that role.
        nodes: u32,
    },
    /// The versions break the version-skew policy.
    #[error("{0}")]
    Skew(SkewError),
}

/// One node of a topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeSpec {
    /// What the node does.
    pub role: Role,
    /// The kubelet's version (for a control plane, also its API server's).
    pub version: Version,
}

/// A normalized cluster shape: control planes first, then workers, each with its version.
///
/// Two tests that need the same cluster have equal topologies, however their attributes were
/// written (key order, `v` prefixes, one list entry versus one per node).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Topology {
    nodes: Vec<NodeSpec>,
}

impl TopologySpec {
    /// The normalized topology, or why no cluster can be shaped like this (no control plane, more
    /// than [`MAX_NODES`] nodes, version lists of the wrong length, or versions that break the
    /// skew policy).
    pub fn build(&self) -> Result<Topology, TopologyError> {
        if self.masters == 0 {
            return Err(TopologyError::NoControlPlane);
        }
        // Before any node list is allocated: `workers = 4000000000` once asked for 128 GB.
        if u64::from(self.masters) + u64::from(self.workers) > u64::from(MAX_NODES) {
            return Err(TopologyError::TooManyNodes {
                masters: self.masters,
                workers: self.workers,
            });
        }
        let masters = expand(
            "master_versions",
            &self.master_versions,
            self.masters,
            self.k8s,
        )?;
        let workers = expand(
            "worker_versions",
            &self.worker_versions,
            self.workers,
            self.k8s,
        )?;
        let nodes: Vec<(NodeSpec, Source)> = masters
            .into_iter()
            .map(|(version, i)| {
                let source = i.map_or(Source::K8s, Source::MasterVersions);
                (
                    NodeSpec {
                        role: Role::ControlPlane,
                        version,
                    },
                    source,
                )
            })
            .chain(workers.into_iter().map(|(version, i)| {
                let source = i.map_or(Source::K8s, Source::WorkerVersions);
                (
                    NodeSpec {
                        role: Role::Worker,
                        version,
                    },
                    source,
                )
            }))
            .collect();
        skew::check(&nodes).map_err(TopologyError::Skew)?;
        Ok(Topology {
            nodes: nodes.into_iter().map(|(n, _)| n).collect(),
        })
    }
}

/// Per-node versions from a list that has one entry for all nodes or one per node; each with the
/// list index it came from (`None`: from `k8s`).
fn expand(
    key: &'static str,
    list: &[Version],
    count: u32,
    default: Version,
) -> Result<Vec<(Version, Option<usize>)>, TopologyError> {
    let per_node = |i: usize| match list.len() {
        0 => (default, None),
        1 => (list[0], Some(0)),
        _ => (list[i], Some(i)),
    };
    if list.len() > 1 && list.len() != count as usize {
        return Err(TopologyError::VersionCount {
            key,
            given: list.len(),
            nodes: count,
        });
    }
    Ok((0..count as usize).map(per_node).collect())
}

impl Topology {
    /// Every node: control planes first, then workers.
    pub fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    /// How many control-plane nodes.
    pub fn masters(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.role == Role::ControlPlane)
            .count()
    }

    /// How many worker nodes.
    pub fn workers(&self) -> usize {
        self.nodes.len() - self.masters()
    }

    /// The version the cluster's API reports: that of the first control plane.
    pub fn control_plane_version(&self) -> Version {
        self.nodes[0].version
    }

    /// A short, filterable name: `1m3w-k8s1.29`, `3m3w-k8s1.29-w1.28`,
    /// `1m3w-k8s1.29-w1.28,1.29,1.29`.
    pub fn label(&self) -> String {
        let list = |role: Role| -> Vec<Version> {
            self.nodes
                .iter()
                .filter(|n| n.role == role)
                .map(|n| n.version)
                .collect()
        };
        let join = |versions: &[Version]| {
            versions
                .iter()
                .map(Version::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let (masters, workers) = (list(Role::ControlPlane), list(Role::Worker));
        let cp = masters[0];
        let mut label = format!("{}m{}w-k8s", masters.len(), workers.len());
        if masters.iter().all(|v| *v == cp) {
            label.push_str(&cp.to_string());
        } else {
            label.push_str(&join(&masters));
        }
        if workers.iter().any(|v| *v != cp) {
            label.push_str("-w");
            match workers.iter().all(|v| *v == workers[0]) {
                true => label.push_str(&workers[0].to_string()),
                false => label.push_str(&join(&workers)),
            }
        }
        label
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn spec(masters: u32, workers: u32, k8s: &str, mv: &[&str], wv: &[&str]) -> TopologySpec {
        TopologySpec {
            masters,
            workers,
            k8s: v(k8s),
            master_versions: mv.iter().map(|s| v(s)).collect(),
            worker_versions: wv.iter().map(|s| v(s)).collect(),
        }
    }

    #[test]
    fn equal_clusters_written_differently_have_one_key() {
        let a = spec(3, 3, "1.29", &[], &["1.28"]).build().unwrap();
        let b = spec(3, 3, "v1.29", &["1.29"], &["v1.28", "1.28", "1.28"])
            .build()
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.label(), "3m3w-k8s1.29-w1.28");
    }

    #[test]
    fn different_clusters_have_different_keys() {
        let a = spec(1, 3, "1.29", &[], &[]).build().unwrap();
        let b = spec(1, 3, "1.29.14", &[], &[]).build().unwrap();
        let c = spec(1, 2, "1.29", &[], &[]).build().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.label(), "1m3w-k8s1.29");
        assert_eq!(b.label(), "1m3w-k8s1.29.14");
    }

    #[test]
    fn label_lists_per_node_versions_when_they_differ() {
        let t = spec(1, 3, "1.29", &[], &["1.28", "1.29", "1.27"])
            .build()
            .unwrap();
        assert_eq!(t.label(), "1m3w-k8s1.29-w1.28,1.29,1.27");
        let t = spec(2, 0, "1.29", &["1.29", "1.28"], &[]).build().unwrap();
        assert_eq!(t.label(), "2m0w-k8s1.29,1.28");
    }

    #[test]
    fn rejects_no_control_plane_and_bad_list_lengths() {
        assert_eq!(
            spec(0, 1, "1.29", &[], &[]).build(),
            Err(TopologyError::NoControlPlane)
        );
        let err = spec(1, 3, "1.29", &[], &["1.28", "1.28"])
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            TopologyError::VersionCount {
                key: "worker_versions",
                given: 2,
                nodes: 3
            }
        );
    }

    #[test]
    fn refuses_more_nodes_than_kubernetes_supports_before_allocating() {
        // Each of these would allocate gigabytes if the bound came after the node list.
        for (masters, workers) in [(1, 4_000_000_000), (u32::MAX, u32::MAX), (3000, 2001)] {
            assert_eq!(
                spec(masters, workers, "1.29", &[], &[]).build(),
                Err(TopologyError::TooManyNodes { masters, workers })
            );
        }
        let err = spec(1, 4_000_000_000, "1.29", &[], &[])
            .build()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "a cluster of 4000000001 nodes (1 control-plane, 4000000000 worker) is more than the \
             5000 Kubernetes supports (kubernetes.io/docs/setup/best-practices/cluster-large): \
             use fewer"
        );
        assert!(spec(3, MAX_NODES - 3, "1.29", &[], &[]).build().is_ok());
    }

    #[test]
    fn enforces_the_skew_policy() {
        let skew = |s: TopologySpec| match s.build() {
            Err(TopologyError::Skew(e)) => e,
            other => panic!("expected a skew error, got {other:?}"),
        };
        let e = skew(spec(1, 1, "1.28", &[], &["1.29"]));
        assert!(matches!(
            e,
            SkewError::KubeletNewer {
                source: Source::WorkerVersions(0),
                ..
            }
        ));
        let e = skew(spec(1, 2, "1.32", &[], &["1.31", "1.28"]));
        assert!(matches!(
            e,
            SkewError::KubeletTooOld {
                source: Source::WorkerVersions(1),
                max_skew: 3,
                ..
            }
        ));
        let e = skew(spec(1, 1, "1.27", &[], &["1.24"]));
        assert!(matches!(e, SkewError::KubeletTooOld { max_skew: 2, .. }));
        let e = skew(spec(2, 0, "1.29", &["1.29", "1.27"], &[]));
        assert!(matches!(
            e,
            SkewError::ControlPlanesApart {
                source: Source::MasterVersions(0),
                ..
            }
        ));
        assert!(spec(1, 1, "1.32", &[], &["1.29"]).build().is_ok());
        assert!(
            spec(2, 1, "1.29", &["1.29", "1.28"], &["1.28"])
                .build()
                .is_ok()
        );
    }
}
