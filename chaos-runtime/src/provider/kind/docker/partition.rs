//! Network partitions between node containers, as iptables rules inside the nodes.
//!
//! All our rules live in a chain of our own, `CHAOS-PARTITION`, jumped to at position 1 of INPUT,
//! OUTPUT and FORWARD (FORWARD: pod traffic leaves a node routed, with pod addresses). Nothing else
//! is touched: flushing INPUT or OUTPUT would also drop the rules of kube-proxy, kindnet and
//! docker's embedded DNS. Each rule carries its fault's id as a comment, so undoing one partition
//! leaves another's rules in place; the chain and its jumps go when the chain is empty.
//!
//! Rules match addresses, not interfaces: every kind cluster shares the `kind` network. A peer is
//! matched by its IPv4 and IPv6 address on that network (names resolve to IPv6 first there) and by
//! every destination the node routes via it (kindnet routes each node's pod CIDR via the node).
//! A peer that restarts may come back with another address, which the rules do not follow.
//!
//! Rules only ever go into Kubernetes nodes. An HA cluster's load balancer may be on a side, but
//! nothing runs in it: kind runs it unprivileged with no added capabilities
//! (`runArgsForLoadBalancer` in kind's `pkg/cluster/internal/providers/docker/provision.go`), so
//! iptables there fails with "Permission denied (you must be root)". It is cut by the rules of the
//! nodes on the other side, which drop its addresses as source and destination: every packet
//! between it and them passes through those rules, so the cut is complete without any in it.

use super::nodes::NodeContainer;
use super::script::{Script, quote};
use super::{Docker, DockerError, DockerErrorKind};

const CHAIN: &str = "CHAOS-PARTITION";
const HOOKS: [&str; 3] = ["INPUT", "OUTPUT", "FORWARD"];
const FAMILIES: [Family; 2] = [Family::V4, Family::V6];

/// The rules of one partition in one node: what it must neither send to nor receive from.
#[derive(Clone, Debug)]
pub(crate) struct NodeRules {
    pub node: String,
    /// Tells this partition's rules from other partitions' in the same chain.
    comment: String,
    v4: Vec<String>,
    v6: Vec<String>,
}

#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

impl Family {
    fn iptables(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }
}

impl NodeRules {
    fn addresses(&self, family: Family) -> &[String] {
        match family {
            Family::V4 => &self.v4,
            Family::V6 => &self.v6,
        }
    }

    /// `-s ADDR …` and `-d ADDR …` for every blocked address.
    fn specs(&self, family: Family) -> Vec<Vec<&str>> {
        let addresses = self.addresses(family).iter();
        let drop = |dir, addr| {
            vec![
                CHAIN,
                dir,
                addr,
                "-m",
                "comment",
                "--comment",
                &self.comment,
                "-j",
                "DROP",
            ]
        };
        addresses
            .flat_map(|a| [drop("-s", a.as_str()), drop("-d", a.as_str())])
            .collect()
    }
}

/// The rules for cutting `a` from `b`: each node of one side blocks every container of the other.
/// A load balancer on a side gets no rules of its own (see the module's comment).
pub(crate) async fn plan(
    docker: &Docker,
    a: &[NodeContainer],
    b: &[NodeContainer],
    comment: &str,
) -> Result<Vec<NodeRules>, DockerError> {
    check_every_pair_is_cut(a, b)?;
    let sides = a.iter().map(|n| (n, b)).chain(b.iter().map(|n| (n, a)));
    let sides = sides.filter(|(node, _)| takes_rules(node));
    let plans = sides.map(|(node, peers)| rules_for(docker, node, peers, comment));
    futures::future::try_join_all(plans).await
}

/// Whether rules can go into `node`: not the load balancer (no NET_ADMIN, above), and not a
/// paused node (`docker exec` into a frozen container fails: "is paused"). A pair is cut by the
/// rules of either of its two nodes, as each drops the other's addresses both ways.
fn takes_rules(node: &NodeContainer) -> bool {
    !node.is_load_balancer() && !node.paused
}

/// Refuses a partition with a pair of nodes neither of which can take rules (say, a paused
/// node and the load balancer, or two paused nodes): nothing would cut them from each other.
fn check_every_pair_is_cut(a: &[NodeContainer], b: &[NodeContainer]) -> Result<(), DockerError> {
    for x in a.iter().filter(|n| !takes_rules(n)) {
        if let Some(y) = b.iter().find(|n| !takes_rules(n)) {
            let why = |n: &NodeContainer| match n.paused {
                true => "paused",
                false => "the load balancer",
            };
            return Err(DockerError::new(
                DockerErrorKind::NotRunning,
                Some(&x.name),
                format!(
                    "cannot be cut from {}: it is {} and {} is {}, so neither can take iptables \
                     rules; unpause one of them first",
                    y.name,
                    why(x),
                    y.name,
                    why(y)
                ),
            ));
        }
    }
    Ok(())
}

async fn rules_for(
    docker: &Docker,
    node: &NodeContainer,
    peers: &[NodeContainer],
    comment: &str,
) -> Result<NodeRules, DockerError> {
    let routes = routes(docker, &node.name).await?;
    let mut rules = NodeRules {
        node: node.name.clone(),
        comment: comment.to_owned(),
        v4: Vec::new(),
        v6: Vec::new(),
    };
    for peer in peers {
        let Some(ip) = &peer.ip else {
            return Err(DockerError::new(
                DockerErrorKind::NotRunning,
                Some(&peer.name),
                "has no address on the kind network, so it cannot be partitioned",
            )
            .with_fix(format!("start it first (`docker start {}`)", peer.name)));
        };
        rules.v4.extend(blocked_via(ip, &routes));
        // Without an IPv6 address of its own the node cannot reach the peer's anyway.
        if let (Some(_), Some(ipv6)) = (&node.ipv6, &peer.ipv6) {
            rules.v6.extend(blocked_via(ipv6, &routes));
        }
    }
    Ok(rules)
}

/// A peer's address and every destination routed via it.
fn blocked_via(address: &str, routes: &[(String, String)]) -> Vec<String> {
    let routed = routes
        .iter()
        .filter(|(_, via)| via == address)
        .map(|(dest, _)| dest.clone());
    std::iter::once(address.to_owned()).chain(routed).collect()
}

/// `(destination, gateway)` of every non-default route in the node, both families.
async fn routes(docker: &Docker, node: &str) -> Result<Vec<(String, String)>, DockerError> {
    let list = "ip -4 route show; ip -6 route show 2>/dev/null || true";
    let output = docker.exec(node, &["sh", "-c", list]).await?;
    Ok(output.stdout.lines().filter_map(parse_route).collect())
}

fn parse_route(line: &str) -> Option<(String, String)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let via = words.iter().position(|w| *w == "via")?;
    match (words.first(), words.get(via + 1)) {
        (Some(&"default"), _) | (None, _) | (_, None) => None,
        (Some(dest), Some(gateway)) => Some((dest.to_string(), gateway.to_string())),
    }
}

/// Creates the chain and its jumps if missing, then appends the rules.
pub(crate) async fn apply(docker: &Docker, rules: &NodeRules) -> Result<(), DockerError> {
    let mut script = Script::new();
    for family in FAMILIES
        .into_iter()
        .filter(|f| !rules.addresses(*f).is_empty())
    {
        let ipt = family.iptables();
        script.must_if(
            &format!("! {ipt} -w -n -L {CHAIN} >/dev/null 2>&1"),
            &[ipt, "-w", "-N", CHAIN],
        );
        for hook in HOOKS {
            let missing = format!(
                "! {} >/dev/null 2>&1",
                quote(&[ipt, "-w", "-C", hook, "-j", CHAIN])
            );
            script.must_if(&missing, &[ipt, "-w", "-I", hook, "1", "-j", CHAIN]);
        }
        for spec in rules.specs(family) {
            script.must(&[&[ipt, "-w", "-A"], spec.as_slice()].concat());
        }
    }
    docker.run_script(&rules.node, &script).await.map(drop)
}

/// Removes the rules; then, if the chain is empty, its jumps and the chain. Rules already gone
/// (the node restarted with a fresh network namespace) are fine.
pub(crate) async fn remove(docker: &Docker, rules: &NodeRules) -> Result<(), DockerError> {
    let mut script = Script::new();
    for family in FAMILIES
        .into_iter()
        .filter(|f| !rules.addresses(*f).is_empty())
    {
        let ipt = family.iptables();
        for spec in rules.specs(family) {
            let present = format!(
                "{} >/dev/null 2>&1",
                quote(&[&[ipt, "-w", "-C"], spec.as_slice()].concat())
            );
            script.must_if(&present, &[&[ipt, "-w", "-D"], spec.as_slice()].concat());
        }
        remove_chain_if_empty(&mut script, ipt);
    }
    docker.run_script(&rules.node, &script).await.map(drop)
}

fn remove_chain_if_empty(script: &mut Script, ipt: &str) {
    // `-S CHAIN` prints `-N CHAIN` and then one line per rule.
    let empty = format!("[ \"$({ipt} -w -S {CHAIN} 2>/dev/null | wc -l)\" -eq 1 ]");
    for hook in HOOKS {
        let jump = quote(&[ipt, "-w", "-D", hook, "-j", CHAIN]);
        script.line(format!(
            "if {empty}; then while {jump} 2>/dev/null; do :; done; fi"
        ));
    }
    script.must_if(&empty, &[ipt, "-w", "-X", CHAIN]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_routes_via_a_gateway() {
        let routes: Vec<_> = [
            "default via 172.18.0.1 dev eth0",
            "10.244.1.0/24 via 172.18.0.3 dev eth0",
            "172.18.0.0/16 dev eth0 proto kernel scope link src 172.18.0.2",
            "fd00:10:244:1::/64 via fc00:f853:ccd:e793::3 dev eth0 metric 1024 pref medium",
        ]
        .into_iter()
        .filter_map(parse_route)
        .collect();
        assert_eq!(
            routes,
            [
                ("10.244.1.0/24".to_owned(), "172.18.0.3".to_owned()),
                (
                    "fd00:10:244:1::/64".to_owned(),
                    "fc00:f853:ccd:e793::3".to_owned()
                )
            ]
        );
        assert_eq!(
            blocked_via("172.18.0.3", &routes),
            ["172.18.0.3", "10.244.1.0/24"]
        );
    }

    fn container(name: &str, role: &str, paused: bool) -> NodeContainer {
        NodeContainer {
            name: name.into(),
            cluster: "c".into(),
            role: role.into(),
            running: true,
            paused,
            ip: Some("10.0.0.9".into()),
            ipv6: None,
        }
    }

    #[test]
    fn a_paused_peer_is_cut_by_the_other_nodes_rules_unless_none_can_take_any() {
        let worker = container("c-worker", "worker", false);
        let paused = container("c-worker2", "worker", true);
        let also_paused = container("c-worker3", "worker", true);
        let lb = container("c-external-load-balancer", "external-load-balancer", false);
        // Isolating a running node from a paused one: its own rules cut both ways.
        assert!(
            check_every_pair_is_cut(std::slice::from_ref(&worker), &[paused.clone(), lb.clone()])
                .is_ok()
        );
        assert!(takes_rules(&worker) && !takes_rules(&paused) && !takes_rules(&lb));
        // Nobody can take rules between a paused node and the load balancer, or two paused ones.
        let err = check_every_pair_is_cut(std::slice::from_ref(&paused), &[worker.clone(), lb])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("it is paused and c-external-load-balancer is the load balancer"),
            "{err}"
        );
        assert!(err.contains("unpause one of them first"), "{err}");
        assert!(check_every_pair_is_cut(&[paused], &[also_paused]).is_err());
    }

    #[test]
    fn each_address_is_dropped_both_ways_with_the_fault_comment() {
        let rules = NodeRules {
            node: "n".into(),
            comment: "chaos-fault-7".into(),
            v4: vec!["10.0.0.3".into()],
            v6: vec![],
        };
        let specs: Vec<String> = rules
            .specs(Family::V4)
            .iter()
            .map(|s| s.join(" "))
            .collect();
        assert_eq!(
            specs,
            [
                "CHAOS-PARTITION -s 10.0.0.3 -m comment --comment chaos-fault-7 -j DROP",
                "CHAOS-PARTITION -d 10.0.0.3 -m comment --comment chaos-fault-7 -j DROP"
            ]
        );
    }
}
