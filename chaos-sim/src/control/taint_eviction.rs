//! Taint-based eviction (the NoExecute taint manager): a pod on a node with a NoExecute
//! taint it does not tolerate is deleted at once; one that tolerates it for
//! `tolerationSeconds` is deleted when that runs out, counted from when the taint was first
//! seen under the pod; a toleration without `tolerationSeconds` keeps it there for good.
//! Deletion is immediate: graceful termination is not simulated.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::{Controller, NODE, POD, Timings, WatchEvent, is, list, meta, node_name, taints};
use crate::{ApiServer, EventKind};

pub(super) struct TaintEviction {
    server: ApiServer,
    default_seconds: u32,
    /// (namespace, name) → eviction to come.
    scheduled: HashMap<(String, String), Scheduled>,
}

struct Scheduled {
    pod: Value,
    since: Instant,
    at: Instant,
}

impl TaintEviction {
    pub fn new(server: &ApiServer, timings: &Timings) -> Self {
        Self {
            server: server.clone(),
            default_seconds: timings.default_toleration_seconds,
            scheduled: HashMap::new(),
        }
    }

    fn sync_pod(&mut self, pod: &Value, node: Option<&Value>) {
        let key = (
            meta::namespace(pod).to_string(),
            meta::name(pod).to_string(),
        );
        let fetched;
        let node = match node {
            Some(node) => Some(node),
            None if !node_name(pod).is_empty() && super::pod_active(pod) => {
                fetched = self.server.get(NODE.0, NODE.1, None, node_name(pod));
                fetched.as_ref()
            }
            None => None,
        };
        let no_execute: Vec<Value> = node
            .map(taints::node_taints)
            .unwrap_or_default()
            .iter()
            .filter(|t| t["effect"] == "NoExecute")
            .cloned()
            .collect();
        if no_execute.is_empty() {
            self.scheduled.remove(&key);
            return;
        }
        // The admission plugin's defaults may not be written yet: count them anyway.
        let mut tolerations = taints::tolerations(pod).to_vec();
        tolerations.extend(taints::default_tolerations(pod, self.default_seconds));
        if !taints::untolerated(&no_execute, &tolerations, &["NoExecute"]).is_empty() {
            self.scheduled.remove(&key);
            super::delete_if(&self.server, POD, pod);
            return;
        }
        let seconds = tolerations
            .iter()
            .filter(|t| no_execute.iter().any(|taint| taints::tolerates(t, taint)))
            .filter_map(|t| t["tolerationSeconds"].as_i64())
            .min();
        let Some(seconds) = seconds else {
            // Tolerated for good.
            self.scheduled.remove(&key);
            return;
        };
        let since = self
            .scheduled
            .get(&key)
            .filter(|s| s.pod["metadata"]["uid"] == pod["metadata"]["uid"])
            .map_or_else(Instant::now, |s| s.since);
        let at = since + Duration::from_secs(seconds.max(0) as u64);
        self.scheduled.insert(
            key,
            Scheduled {
                pod: pod.clone(),
                since,
                at,
            },
        );
    }

    fn sync_node(&mut self, node: &Value) {
        let name = meta::name(node);
        for pod in list(&self.server, POD, None) {
            if node_name(&pod) == name && super::pod_active(&pod) {
                self.sync_pod(&pod, Some(node));
            }
        }
    }
}

impl Controller for TaintEviction {
    fn resync(&mut self) {
        self.scheduled.clear();
        for node in list(&self.server, NODE, None) {
            self.sync_node(&node);
        }
    }

    fn on_event(&mut self, event: &WatchEvent) {
        let obj = &event.object;
        if is(event, NODE) && event.kind != EventKind::Deleted {
            self.sync_node(obj);
        } else if is(event, POD) {
            if event.kind == EventKind::Deleted || !super::pod_active(obj) {
                let key = (
                    meta::namespace(obj).to_string(),
                    meta::name(obj).to_string(),
                );
                self.scheduled.remove(&key);
            } else {
                self.sync_pod(obj, None);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.scheduled.values().map(|s| s.at).min()
    }

    fn on_timer(&mut self, now: Instant) {
        let due: Vec<(String, String)> = self
            .scheduled
            .iter()
            .filter(|(_, s)| s.at <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            if let Some(scheduled) = self.scheduled.remove(&key) {
                super::delete_if(&self.server, POD, &scheduled.pod);
            }
        }
    }
}
