//! Kubernetes' version-skew policy, as far as it decides whether a cluster can exist.
//! <https://kubernetes.io/releases/version-skew-policy/>

use std::fmt;

use crate::topology::{NodeSpec, Role, Source};
use crate::version::Version;

/// A topology that breaks the version-skew policy. `source` names the version that is at fault,
/// so that the macro can point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkewError {
    /// HA API servers more than one minor apart.
    ControlPlanesApart {
        /// Where the offending version was written.
        source: Source,
        /// The offending control-plane version.
        version: Version,
        /// A control-plane version it is too far from.
        other: Version,
    },
    /// A kubelet newer than the oldest API server.
    KubeletNewer {
        /// Where the kubelet's version was written.
        source: Source,
        /// The kubelet's version.
        kubelet: Version,
        /// The oldest API server's version.
        apiserver: Version,
    },
    /// A kubelet older than the newest API server by more than the policy allows.
    KubeletTooOld {
        /// Where the kubelet's version was written.
        source: Source,
        /// The kubelet's version.
        kubelet: Version,
        /// The newest API server's version.
        apiserver: Version,
        /// How many minors a kubelet may trail that API server.
        max_skew: u32,
    },
}

impl SkewError {
    /// Where the version at fault was written, for the macro to point at.
    pub fn source(&self) -> Source {
        match self {
            SkewError::ControlPlanesApart { source, .. }
            | SkewError::KubeletNewer { source, .. }
            | SkewError::KubeletTooOld { source, .. } => *source,
        }
    }
}

impl fmt::Display for SkewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkewError::ControlPlanesApart { version, other, .. } => write!(
                f,
                "control planes {version} and {other} are more than 1 minor version apart; \
                 Kubernetes allows at most 1 between the API servers of one cluster"
            ),
            SkewError::KubeletNewer {
                kubelet, apiserver, ..
            } => write!(
                f,
                "a {kubelet} kubelet is newer than its {apiserver} control plane; \
                 a kubelet may not be newer than the API server: use a worker version of at most \
                 1.{} or a newer `k8s`",
                apiserver.minor
            ),
            SkewError::KubeletTooOld {
                kubelet,
                apiserver,
                max_skew,
                ..
            } => write!(
                f,
                "a {kubelet} kubelet is more than {max_skew} minor versions older than its \
                 {apiserver} control plane; use a worker version of at least 1.{}",
                apiserver.minor.saturating_sub(*max_skew)
            ),
        }
    }
}

impl std::error::Error for SkewError {}

/// How many minors a kubelet may trail the API server: 3 from Kubernetes 1.28 on, 2 before.
fn max_kubelet_skew(apiserver: Version) -> u32 {
    if apiserver.minor >= 28 { 3 } else { 2 }
}

pub(crate) fn check(nodes: &[(NodeSpec, Source)]) -> Result<(), SkewError> {
    let masters: Vec<&(NodeSpec, Source)> = nodes
        .iter()
        .filter(|(n, _)| n.role == Role::ControlPlane)
        .collect();
    let (Some(oldest), Some(newest)) = (
        masters
            .iter()
            .map(|(n, _)| n.version)
            .min_by_key(|v| v.minor),
        masters
            .iter()
            .map(|(n, _)| n.version)
            .max_by_key(|v| v.minor),
    ) else {
        return Ok(());
    };
    for (node, source) in &masters {
        if node.version.minor > oldest.minor + 1 {
            return Err(SkewError::ControlPlanesApart {
                source: *source,
                version: node.version,
                other: oldest,
            });
        }
    }
    let max_skew = max_kubelet_skew(newest);
    for (node, source) in nodes.iter().filter(|(n, _)| n.role == Role::Worker) {
        let kubelet = node.version;
        if kubelet.minor > oldest.minor {
            return Err(SkewError::KubeletNewer {
                source: *source,
                kubelet,
                apiserver: oldest,
            });
        }
        if newest.minor - kubelet.minor > max_skew {
            return Err(SkewError::KubeletTooOld {
                source: *source,
                kubelet,
                apiserver: newest,
                max_skew,
            });
        }
    }
    Ok(())
}
