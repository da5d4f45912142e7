//! kind's node names, which its node containers and Node objects carry (the sim gives its nodes
//! the same names, so that a suite reads the same on both).

use chaos_topology::{Role, Topology};

/// Node names as kind gives them: `<cluster>-control-plane`, `<cluster>-control-plane2`, ...,
/// `<cluster>-worker`, `<cluster>-worker2`, ... in the order of [`Topology::nodes`]. kind's
/// `pkg/cluster/internal/providers/common/namer.go`: the first node of a role has no suffix, the
/// next ones count from 2.
pub(crate) fn node_names(topology: &Topology, cluster: &str) -> Vec<String> {
    let (mut masters, mut workers) = (0, 0);
    topology
        .nodes()
        .iter()
        .map(|node| {
            let (base, n) = match node.role {
                Role::ControlPlane => ("control-plane", &mut masters),
                Role::Worker => ("worker", &mut workers),
            };
            *n += 1;
            match *n {
                1 => format!("{cluster}-{base}"),
                n => format!("{cluster}-{base}{n}"),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chaos_topology::TopologySpec;

    #[test]
    fn node_names_follow_kind() {
        let topology = TopologySpec {
            masters: 2,
            workers: 2,
            k8s: "1.29".parse().unwrap(),
            master_versions: vec![],
            worker_versions: vec![],
        }
        .build()
        .unwrap();
        assert_eq!(
            node_names(&topology, "c"),
            [
                "c-control-plane",
                "c-control-plane2",
                "c-worker",
                "c-worker2"
            ]
        );
    }
}
