//! Conditions on sets of objects, for [`crate::wait::until_list`] and the probes: small functions
//! that answer `Ok(())` when satisfied or `Err(what they see)`, as kube-runtime's
//! `wait::conditions` do for single objects. [`ListCondition`] combines them with `and`, `or` and
//! `not`.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};

/// A condition on the objects a watch currently sees: `Ok(())` when it holds, else `Err(what it
/// sees)`, which a wait or probe reports as what it saw last. Any such closure is one.
///
/// Like kube-runtime's `wait::Condition`, conditions combine with [`and`](Self::and),
/// [`or`](Self::or) and [`not`](Self::not). Both sides of `and` and `or` see every state, and
/// their messages say what each side saw.
pub trait ListCondition<K>: FnMut(&[K]) -> Result<(), String> + Send + 'static {
    /// Holds when `self` and `other` both hold. When it does not, says what the failing side saw
    /// (both sides, separated by `; `, when both fail).
    fn and(mut self, mut other: impl ListCondition<K>) -> impl ListCondition<K>
    where
        Self: Sized,
    {
        move |objects: &[K]| match (self(objects), other(objects)) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(seen), Ok(())) | (Ok(()), Err(seen)) => Err(seen),
            (Err(a), Err(b)) => Err(format!("{a}; {b}")),
        }
    }

    /// Holds when `self` or `other` holds (or both). When neither does, says what each saw:
    /// `neither: {what self saw}; nor: {what other saw}`.
    fn or(mut self, mut other: impl ListCondition<K>) -> impl ListCondition<K>
    where
        Self: Sized,
    {
        move |objects: &[K]| match (self(objects), other(objects)) {
            (Err(a), Err(b)) => Err(format!("neither: {a}; nor: {b}")),
            _ => Ok(()),
        }
    }

    /// Holds when `self` does not. A condition that holds has nothing to say about what it saw, so
    /// `seen` describes the state in which `self` holds, and is what this reports when it fails:
    /// e.g. `nodes_ready(3).not("all 3 nodes Ready")`.
    fn not(mut self, seen: impl Into<String>) -> impl ListCondition<K>
    where
        Self: Sized,
    {
        let seen = seen.into();
        move |objects: &[K]| match self(objects) {
            Ok(()) => Err(seen.clone()),
            Err(_) => Ok(()),
        }
    }
}
impl<K, F: FnMut(&[K]) -> Result<(), String> + Send + 'static> ListCondition<K> for F {}

/// The status of a node's `Ready` condition: `True`, `False`, `Unknown`, or `missing`.
pub fn node_ready_status(node: &Node) -> &str {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map_or("missing", |c| c.status.as_str())
}

fn name(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("")
}

/// Exactly `count` nodes, every one Ready.
pub fn nodes_ready(count: usize) -> impl ListCondition<Node> {
    move |nodes: &[Node]| {
        let not_ready: Vec<String> = nodes
            .iter()
            .filter(|n| node_ready_status(n) != "True")
            .map(|n| format!("{} Ready={}", name(n), node_ready_status(n)))
            .collect();
        match (nodes.len() == count, not_ready.is_empty()) {
            (true, true) => Ok(()),
            _ => Err(format!(
                "{} nodes, not Ready: [{}]",
                nodes.len(),
                not_ready.join(", ")
            )),
        }
    }
}

/// The node `node` is Ready (`want = true`) or not (`want = false`: `False`, `Unknown`, or gone).
pub fn node_ready(node: &str, want: bool) -> impl ListCondition<Node> {
    let node = node.to_owned();
    move |nodes: &[Node]| {
        let status = nodes
            .iter()
            .find(|n| name(n) == node)
            .map_or("absent", node_ready_status);
        match (status == "True") == want {
            true => Ok(()),
            false => Err(format!("node {node} Ready={status}")),
        }
    }
}

/// The deployment `deployment` has at least `min` available replicas.
pub fn deployment_available(deployment: &str, min: i32) -> impl ListCondition<Deployment> {
    let deployment = deployment.to_owned();
    move |found: &[Deployment]| {
        let Some(d) = found
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some(&deployment))
        else {
            return Err(format!("no deployment {deployment}"));
        };
        let status = d.status.clone().unwrap_or_default();
        let available = status.available_replicas.unwrap_or(0);
        match available >= min {
            true => Ok(()),
            false => Err(format!(
                "deployment {deployment}: {available} available, {} ready, {} replicas (wanted at least {min} available)",
                status.ready_replicas.unwrap_or(0),
                status.replicas.unwrap_or(0)
            )),
        }
    }
}

/// At least `count` of the pods are Running with `Ready=True`.
pub fn pods_running(count: usize) -> impl ListCondition<Pod> {
    move |pods: &[Pod]| {
        let running = pods.iter().filter(|p| is_running_and_ready(p)).count();
        match running >= count {
            true => Ok(()),
            false => Err(format!(
                "{running} of {} pods Running and Ready (wanted {count})",
                pods.len()
            )),
        }
    }
}

fn is_running_and_ready(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    status.phase.as_deref() == Some("Running") && ready
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, ready: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": ready}]}}))
            .unwrap()
    }

    #[test]
    fn nodes_ready_wants_the_count_and_every_node_ready() {
        let mut cond = nodes_ready(2);
        assert_eq!(cond(&[node("a", "True"), node("b", "True")]), Ok(()));
        assert_eq!(
            cond(&[node("a", "True")]),
            Err("1 nodes, not Ready: []".to_owned())
        );
        assert_eq!(
            cond(&[node("a", "True"), node("b", "Unknown")]),
            Err("2 nodes, not Ready: [b Ready=Unknown]".to_owned())
        );
    }

    #[test]
    fn node_ready_either_way() {
        assert_eq!(node_ready("b", false)(&[node("b", "Unknown")]), Ok(()));
        assert_eq!(
            node_ready("b", false)(&[]),
            Ok(()),
            "a node that is gone is not ready"
        );
        assert_eq!(
            node_ready("b", true)(&[node("b", "False")]),
            Err("node b Ready=False".to_owned())
        );
    }

    #[test]
    fn deployment_available_reports_what_it_saw() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "status": {"replicas": 3, "readyReplicas": 1, "availableReplicas": 0}
        }))
        .unwrap();
        assert_eq!(
            deployment_available("web", 1)(std::slice::from_ref(&d)),
            Err(
                "deployment web: 0 available, 1 ready, 3 replicas (wanted at least 1 available)"
                    .to_owned()
            )
        );
        assert_eq!(deployment_available("web", 0)(&[d]), Ok(()));
        assert_eq!(
            deployment_available("api", 1)(&[]),
            Err("no deployment api".to_owned())
        );
    }

    #[test]
    fn pods_running_counts_running_and_ready_pods() {
        let pod = |phase: &str, ready: &str| -> Pod {
            serde_json::from_value(json!({"status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}})).unwrap()
        };
        let pods = [
            pod("Running", "True"),
            pod("Running", "False"),
            pod("Pending", "False"),
        ];
        assert_eq!(pods_running(1)(&pods), Ok(()));
        assert_eq!(
            pods_running(2)(&pods),
            Err("1 of 3 pods Running and Ready (wanted 2)".to_owned())
        );
    }

    #[test]
    fn and_holds_when_both_do_and_says_what_failed() {
        let both = || node_ready("a", true).and(node_ready("b", true));
        assert_eq!(both()(&[node("a", "True"), node("b", "True")]), Ok(()));
        assert_eq!(
            both()(&[node("a", "True"), node("b", "False")]),
            Err("node b Ready=False".to_owned())
        );
        assert_eq!(
            both()(&[node("a", "Unknown")]),
            Err("node a Ready=Unknown; node b Ready=absent".to_owned())
        );
    }

    #[test]
    fn or_holds_when_either_does_and_says_what_each_saw() {
        let either = || node_ready("a", true).or(node_ready("b", true));
        assert_eq!(either()(&[node("a", "False"), node("b", "True")]), Ok(()));
        assert_eq!(either()(&[node("a", "True")]), Ok(()));
        assert_eq!(
            either()(&[node("a", "False")]),
            Err("neither: node a Ready=False; nor: node b Ready=absent".to_owned())
        );
    }

    #[test]
    fn not_holds_when_the_condition_does_not_and_reports_its_description() {
        let mut not_all = nodes_ready(2).not("all 2 nodes Ready");
        assert_eq!(not_all(&[node("a", "True"), node("b", "Unknown")]), Ok(()));
        assert_eq!(
            not_all(&[node("a", "True"), node("b", "True")]),
            Err("all 2 nodes Ready".to_owned())
        );
    }

    #[test]
    fn combinators_nest_and_take_plain_closures() {
        let none = |nodes: &[Node]| match nodes.is_empty() {
            true => Ok(()),
            false => Err(format!("{} nodes", nodes.len())),
        };
        let mut cond = none.or(nodes_ready(1).and(node_ready("a", true).not("node a Ready")));
        assert_eq!(cond(&[]), Ok(()));
        assert_eq!(
            cond(&[node("a", "True")]),
            Err("neither: 1 nodes; nor: node a Ready".to_owned())
        );
        assert_eq!(cond(&[node("b", "True")]), Ok(()));
    }
}
