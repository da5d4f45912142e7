//! The scheduler: binds each pod without `spec.nodeName` to a node that is Ready, not
//! cordoned, and whose NoSchedule/NoExecute taints the pod tolerates, preferring the node
//! with the fewest pods. A pod that fits nowhere gets `PodScheduled=False/Unschedulable` and
//! is retried whenever a node changes. No resources, affinity, nodeSelector or preemption.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::{
    Controller, NODE, POD, WatchEvent, condition_status, events, is, list, meta, modify_pod,
    node_name, pod_active, set_condition, taints,
};
use crate::{ApiServer, EventKind};

pub(super) struct Scheduler {
    server: ApiServer,
}

impl Scheduler {
    pub fn new(server: &ApiServer) -> Self {
        Self {
            server: server.clone(),
        }
    }

    fn schedule_all(&self) {
        let pending: Vec<Value> = list(&self.server, POD, None)
            .into_iter()
            .filter(needs_scheduling)
            .collect();
        self.schedule(&pending);
    }

    fn schedule(&self, pods: &[Value]) {
        if pods.is_empty() {
            return;
        }
        let nodes = list(&self.server, NODE, None);
        let mut load: HashMap<String, usize> = HashMap::new();
        for pod in list(&self.server, POD, None)
            .iter()
            .filter(|p| pod_active(p))
        {
            *load.entry(node_name(pod).to_string()).or_default() += 1;
        }
        for pod in pods {
            let mut rejections: BTreeMap<String, usize> = BTreeMap::new();
            let mut best: Option<&Value> = None;
            for node in &nodes {
                match fits(pod, node) {
                    Err(reason) => *rejections.entry(reason).or_default() += 1,
                    Ok(()) => {
                        let key = |n: &Value| {
                            (
                                load.get(meta::name(n)).copied().unwrap_or(0),
                                meta::name(n).to_string(),
                            )
                        };
                        if best.is_none_or(|b| key(node) < key(b)) {
                            best = Some(node);
                        }
                    }
                }
            }
            match best {
                Some(node) => {
                    if let Some(bound) = self.bind(pod, meta::name(node)) {
                        *load.entry(meta::name(node).to_string()).or_default() += 1;
                        // kube-scheduler, once bound (`pkg/scheduler/schedule_one.go`,
                        // `finishBinding`): "Successfully assigned %v/%v to %v".
                        events::record(
                            &self.server,
                            &bound,
                            events::Type::Normal,
                            "Scheduled",
                            format!(
                                "Successfully assigned {}/{} to {}",
                                meta::namespace(&bound),
                                meta::name(&bound),
                                meta::name(node)
                            ),
                            events::SCHEDULER,
                            None,
                        );
                    }
                }
                None => self.unschedulable(pod, &failure_message(nodes.len(), &rejections)),
            }
        }
    }

    /// What the `pods/binding` subresource does: sets the node and `PodScheduled=True`. The pod
    /// as bound, or `None` if it was not.
    fn bind(&self, pod: &Value, node: &str) -> Option<Value> {
        let stored = modify_pod(&self.server, pod, |pod| {
            if !needs_scheduling(pod) {
                return false;
            }
            pod["spec"]["nodeName"] = node.into();
            // A new condition: the Unschedulable reason and message must not stay.
            if let Some(conditions) = pod["status"]["conditions"].as_array_mut() {
                conditions.retain(|c| c["type"] != "PodScheduled");
            }
            set_condition(
                pod,
                json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null}),
            );
            true
        });
        stored.filter(|p| node_name(p) == node)
    }

    fn unschedulable(&self, pod: &Value, message: &str) {
        let mut changed = false;
        let stored = modify_pod(&self.server, pod, |pod| {
            if !needs_scheduling(pod) {
                return false;
            }
            let before = pod.clone();
            set_condition(
                pod,
                json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                       "message": message, "lastProbeTime": null}),
            );
            changed = *pod != before;
            changed
        });
        // kube-scheduler, on a failed attempt (`pkg/scheduler/schedule_one.go`,
        // `handleSchedulingFailure`): a Warning `FailedScheduling` with the same message. Real
        // retries repeat it (counted by the recorder); the sim records it when the reason changes.
        if let Some(pod) = stored.filter(|_| changed) {
            events::record(
                &self.server,
                &pod,
                events::Type::Warning,
                "FailedScheduling",
                message.to_owned(),
                events::SCHEDULER,
                None,
            );
        }
    }
}

fn needs_scheduling(pod: &Value) -> bool {
    let scheduler = pod["spec"]["schedulerName"].as_str().unwrap_or_default();
    node_name(pod).is_empty() && pod_active(pod) && matches!(scheduler, "" | "default-scheduler")
}

/// Why `node` does not fit `pod`, worded like the scheduler's filter plugins.
fn fits(pod: &Value, node: &Value) -> Result<(), String> {
    if node["spec"]["unschedulable"] == true {
        return Err("node(s) were unschedulable".into());
    }
    let untolerated = taints::untolerated(
        taints::node_taints(node),
        taints::tolerations(pod),
        &["NoSchedule", "NoExecute"],
    );
    if let Some(taint) = untolerated.first() {
        let (key, value) = (taints::str_of(taint, "key"), taints::str_of(taint, "value"));
        return Err(format!("node(s) had untolerated taint {{{key}: {value}}}"));
    }
    if condition_status(node, "Ready") != "True" {
        return Err("node(s) were not ready".into());
    }
    Ok(())
}

fn failure_message(nodes: usize, rejections: &BTreeMap<String, usize>) -> String {
    if nodes == 0 {
        return "no nodes available to schedule pods".into();
    }
    let reasons: Vec<String> = rejections.iter().map(|(r, n)| format!("{n} {r}")).collect();
    format!(
        "0/{nodes} nodes are available: {}. preemption: 0/{nodes} nodes are available: \
         {nodes} Preemption is not helpful for scheduling.",
        reasons.join(", ")
    )
}

impl Controller for Scheduler {
    fn resync(&mut self) {
        self.schedule_all();
    }

    fn on_event(&mut self, event: &WatchEvent) {
        if is(event, NODE) {
            // A node that appears, recovers, is uncordoned or untainted may fit waiting pods.
            self.schedule_all();
        } else if is(event, POD)
            && event.kind != EventKind::Deleted
            && needs_scheduling(&event.object)
        {
            self.schedule(std::slice::from_ref(&event.object));
        }
    }
}
