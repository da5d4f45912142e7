//! The disruption controller: PodDisruptionBudget status (expected, healthy and desired pod
//! counts, `disruptionsAllowed`). The eviction subresource computes the same [`Budget`] from
//! the pods at the moment of the eviction, so it never acts on a stale status.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::{
    Controller, PDB, POD, REPLICA_SET, WatchEvent, controller_of, is, list, meta, modify,
    pod_active, pod_ready, selector_matches, set_condition,
};
use crate::ApiServer;

#[derive(Debug, PartialEq, Eq)]
pub(super) struct Budget {
    pub expected: u64,
    pub current_healthy: u64,
    pub desired_healthy: u64,
    pub disruptions_allowed: u64,
}

/// Whether the budget covers `pod` (an empty selector covers every pod of its namespace).
pub(super) fn covers(pdb: &Value, pod: &Value) -> bool {
    meta::namespace(pdb) == meta::namespace(pod)
        && pdb["spec"]["selector"].is_object()
        && selector_matches(&pdb["spec"]["selector"], pod)
}

/// The budget over `pods`, given the ReplicaSets of the namespace: the expected count is
/// the scale of the pods' controllers (a pod without one counts for itself), except for an
/// integer `minAvailable`, where it is the pods that exist.
pub(super) fn budget(pdb: &Value, pods: &[Value], replica_sets: &[Value]) -> Budget {
    let covered: Vec<&Value> = pods
        .iter()
        .filter(|p| pod_active(p) && covers(pdb, p))
        .collect();
    let healthy = covered.iter().filter(|p| pod_ready(p)).count() as u64;
    let mut controllers = HashSet::new();
    let mut scale = 0;
    for pod in &covered {
        match controller_of(pod).filter(|r| r["kind"] == "ReplicaSet") {
            Some(r) => {
                if controllers.insert(r["uid"].clone().to_string()) {
                    scale += replica_sets
                        .iter()
                        .find(|rs| rs["metadata"]["uid"] == r["uid"])
                        .and_then(|rs| rs["spec"]["replicas"].as_u64())
                        .unwrap_or(1);
                }
            }
            None => scale += 1,
        }
    }
    let spec = &pdb["spec"];
    let (expected, desired) = match (&spec["minAvailable"], &spec["maxUnavailable"]) {
        (Value::Number(n), _) => (covered.len() as u64, n.as_u64().unwrap_or(0)),
        (Value::String(p), _) => (scale, percent_of(p, scale)),
        (_, max) if !max.is_null() => {
            let max = match max {
                Value::String(p) => percent_of(p, scale),
                other => other.as_u64().unwrap_or(0),
            };
            (scale, scale.saturating_sub(max))
        }
        // Neither: no voluntary disruption at all.
        _ => (scale, scale),
    };
    let allowed = if expected == 0 {
        0
    } else {
        healthy.saturating_sub(desired)
    };
    Budget {
        expected,
        current_healthy: healthy,
        desired_healthy: desired,
        disruptions_allowed: allowed,
    }
}

/// `"50%"` of `total`, rounded up as the disruption controller does.
fn percent_of(percent: &str, total: u64) -> u64 {
    let percent: u64 = percent.trim_end_matches('%').parse().unwrap_or(0);
    (percent * total).div_ceil(100)
}

pub(super) struct Disruption {
    server: ApiServer,
}

impl Disruption {
    pub fn new(server: &ApiServer) -> Self {
        Self {
            server: server.clone(),
        }
    }

    fn sync_namespace(&self, ns: &str) {
        let pdbs = list(&self.server, PDB, Some(ns));
        if pdbs.is_empty() {
            return;
        }
        let pods = list(&self.server, POD, Some(ns));
        let replica_sets = list(&self.server, REPLICA_SET, Some(ns));
        for pdb in pdbs {
            let b = budget(&pdb, &pods, &replica_sets);
            let uid = pdb["metadata"]["uid"].clone();
            modify(&self.server, PDB, ns, meta::name(&pdb), |pdb| {
                if pdb["metadata"]["uid"] != uid {
                    return false;
                }
                let before = pdb.clone();
                let conditions = pdb["status"]["conditions"].clone();
                pdb["status"] = json!({
                    "observedGeneration": pdb["metadata"]["generation"],
                    "expectedPods": b.expected,
                    "currentHealthy": b.current_healthy,
                    "desiredHealthy": b.desired_healthy,
                    "disruptionsAllowed": b.disruptions_allowed,
                    "conditions": if conditions.is_array() { conditions } else { json!([]) },
                });
                let (status, reason) = if b.disruptions_allowed > 0 {
                    ("True", "SufficientPods")
                } else {
                    ("False", "InsufficientPods")
                };
                set_condition(
                    pdb,
                    json!({"type": "DisruptionAllowed", "status": status,
                    "reason": reason, "message": "",
                    "observedGeneration": pdb["metadata"]["generation"]}),
                );
                *pdb != before
            });
        }
    }
}

impl Controller for Disruption {
    fn resync(&mut self) {
        let namespaces: HashSet<String> = list(&self.server, PDB, None)
            .iter()
            .map(|p| meta::namespace(p).to_string())
            .collect();
        for ns in namespaces {
            self.sync_namespace(&ns);
        }
    }

    fn on_event(&mut self, event: &WatchEvent) {
        if is(event, PDB) || is(event, POD) || is(event, REPLICA_SET) {
            self.sync_namespace(meta::namespace(&event.object));
        }
    }
}
