//! The node lifecycle controller: a node whose kubelet has not renewed its Lease (or posted
//! its status) for the grace period goes `Ready=Unknown`, and its pods `Ready=False`. It also
//! keeps the condition taints in line with `Ready` (TaintNodesByCondition and taint-based
//! eviction): `unreachable` for Unknown, `not-ready` for False, none for True, each as
//! NoSchedule and NoExecute. What the NoExecute taints do to pods is [`super::taint_eviction`].
//! Like the real one, it only trusts its own clock: a heartbeat is when it *saw* a change.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{
    Controller, LEASE, NODE, POD, Timings, WatchEvent, condition_status, events, is, list, meta,
    modify, node_name, pod_ready, set_condition, taints,
};
use crate::{ApiServer, EventKind};

pub(super) struct NodeLifecycle {
    server: ApiServer,
    grace: Duration,
    nodes: HashMap<String, Probe>,
}

#[derive(Default)]
struct Probe {
    /// The last `lastHeartbeatTime` of `Ready` and `renewTime` of the Lease seen.
    heartbeat: String,
    renewed: String,
    /// When either last changed.
    seen: Option<Instant>,
    unknown: bool,
}

impl NodeLifecycle {
    pub fn new(server: &ApiServer, timings: &Timings) -> Self {
        Self {
            server: server.clone(),
            grace: timings.node_monitor_grace,
            nodes: HashMap::new(),
        }
    }

    fn observe_node(&mut self, node: &Value) {
        let probe = self.nodes.entry(meta::name(node).to_string()).or_default();
        let heartbeat = super::condition(node, "Ready")
            .and_then(|c| c["lastHeartbeatTime"].as_str())
            .unwrap_or_default();
        if probe.seen.is_none() || probe.heartbeat != heartbeat {
            probe.heartbeat = heartbeat.to_string();
            probe.seen = Some(Instant::now());
        }
        probe.unknown = condition_status(node, "Ready") == "Unknown";
        self.reconcile(node);
    }

    fn observe_lease(&mut self, lease: &Value) {
        let probe = self.nodes.entry(meta::name(lease).to_string()).or_default();
        let renewed = lease["spec"]["renewTime"].as_str().unwrap_or_default();
        if probe.renewed != renewed {
            probe.renewed = renewed.to_string();
            probe.seen = Some(Instant::now());
        }
    }

    /// Condition taints for the node's `Ready`, and its pods not ready while it is Unknown.
    fn reconcile(&self, node: &Value) {
        let ready = condition_status(node, "Ready");
        let wanted: &[&str] = match ready {
            "Unknown" => &[taints::UNREACHABLE],
            "False" => &[taints::NOT_READY],
            "True" => &[],
            // A node no kubelet has reported on yet: nothing to go by.
            _ => return,
        };
        let name = meta::name(node);
        modify(&self.server, NODE, "", name, |node| {
            let before = node.clone();
            let mut kept: Vec<Value> = taints::node_taints(node)
                .iter()
                .filter(|t| {
                    let key = taints::str_of(t, "key");
                    !((key == taints::UNREACHABLE || key == taints::NOT_READY)
                        && !wanted.contains(&key))
                })
                .cloned()
                .collect();
            for key in wanted {
                for effect in ["NoSchedule", "NoExecute"] {
                    let present = kept
                        .iter()
                        .any(|t| t["key"] == *key && t["effect"] == effect);
                    if !present {
                        kept.push(json!({"key": key, "effect": effect, "timeAdded": meta::now()}));
                    }
                }
            }
            if kept.is_empty() {
                if let Some(spec) = node["spec"].as_object_mut() {
                    spec.remove("taints");
                }
            } else {
                node["spec"]["taints"] = kept.into();
            }
            *node != before
        });
        if ready == "Unknown" {
            self.mark_pods_not_ready(name);
        }
    }

    /// What MarkPodsNotReady does: nobody on that node can vouch for its pods any more.
    fn mark_pods_not_ready(&self, node: &str) {
        for pod in list(&self.server, POD, None) {
            if node_name(&pod) != node || !pod_ready(&pod) {
                continue;
            }
            let uid = pod["metadata"]["uid"].clone();
            modify(
                &self.server,
                POD,
                meta::namespace(&pod),
                meta::name(&pod),
                |pod| {
                    if pod["metadata"]["uid"] != uid || !pod_ready(pod) {
                        return false;
                    }
                    set_condition(pod, json!({"type": "Ready", "status": "False"}));
                    true
                },
            );
        }
    }

    fn mark_unknown(&self, name: &str) {
        let mut was_ready = false;
        let stored = modify(&self.server, NODE, "", name, |node| {
            was_ready = condition_status(node, "Ready") == "True";
            let before = node.clone();
            for type_ in ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"] {
                let present = super::condition(node, type_).is_some();
                if type_ != "Ready" && !present {
                    continue;
                }
                if condition_status(node, type_) != "Unknown" {
                    set_condition(
                        node,
                        json!({"type": type_, "status": "Unknown",
                        "reason": "NodeStatusUnknown",
                        "message": "Kubelet stopped posting node status."}),
                    );
                }
            }
            *node != before
        });
        // The node lifecycle controller, when a Ready node stops reporting
        // (`pkg/controller/nodelifecycle/node_lifecycle_controller.go`, `monitorNodeHealth`, through
        // `RecordNodeStatusChange` in `pkg/controller/util/node/controller_utils.go`): `NodeNotReady`,
        // "Node %s status is now: %s".
        if let Some(node) = stored.filter(|_| was_ready) {
            events::record(
                &self.server,
                &node,
                events::Type::Normal,
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
                events::NODE_CONTROLLER,
                None,
            );
        }
    }
}

impl Controller for NodeLifecycle {
    fn resync(&mut self) {
        // Everyone gets a full grace period from when this controller first looks.
        self.nodes.clear();
        for node in list(&self.server, NODE, None) {
            self.observe_node(&node);
        }
        for lease in list(&self.server, LEASE, Some("kube-node-lease")) {
            self.observe_lease(&lease);
        }
    }

    fn on_event(&mut self, event: &WatchEvent) {
        let obj = &event.object;
        if is(event, NODE) {
            match event.kind {
                EventKind::Deleted => {
                    self.nodes.remove(meta::name(obj));
                }
                _ => self.observe_node(obj),
            }
        } else if is(event, LEASE)
            && meta::namespace(obj) == "kube-node-lease"
            && event.kind != EventKind::Deleted
        {
            self.observe_lease(obj);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.nodes
            .values()
            .filter(|p| !p.unknown)
            .filter_map(|p| p.seen)
            .min()
            .map(|seen| seen + self.grace)
    }

    fn on_timer(&mut self, now: Instant) {
        let grace = self.grace;
        let silent: Vec<String> = self
            .nodes
            .iter_mut()
            .filter(|(_, p)| !p.unknown && p.seen.is_some_and(|seen| seen + grace <= now))
            .map(|(name, p)| {
                // Set now, not on the echo of the write, so the deadline does not fire again.
                p.unknown = true;
                name.clone()
            })
            .collect();
        for name in silent {
            self.mark_unknown(&name);
        }
    }
}
