//! The ReplicaSet controller: keeps `spec.replicas` active pods (named `<rs>-<random5>`),
//! deleting the least useful first, and reports the counts in the status. It reads the
//! pods from the server on every sync, so it needs no expectations to avoid doubles.

use std::cmp::Reverse;

use serde_json::{Value, json};

use super::{
    Controller, POD, REPLICA_SET, Timings, WatchEvent, controlled_by, controller_of, events, is,
    list, meta, modify, pod_active, pod_ready, taints,
};
use crate::ApiServer;

pub(super) struct ReplicaSets {
    server: ApiServer,
    toleration_seconds: u32,
}

impl ReplicaSets {
    pub fn new(server: &ApiServer, timings: &Timings) -> Self {
        Self {
            server: server.clone(),
            toleration_seconds: timings.default_toleration_seconds,
        }
    }

    fn pods_of(&self, rs: &Value) -> Vec<Value> {
        list(&self.server, POD, Some(meta::namespace(rs)))
            .into_iter()
            .filter(|pod| controlled_by(pod, rs) && pod_active(pod))
            .collect()
    }

    fn sync(&self, ns: &str, name: &str) {
        let Some(rs) = super::get(&self.server, REPLICA_SET, ns, name) else {
            return;
        };
        if meta::is_deleting(&rs) {
            return;
        }
        let desired = rs["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
        let mut pods = self.pods_of(&rs);
        // The events are the ReplicaSet controller's, through its pod control
        // (`pkg/controller/controller_utils.go`, `RealPodControl`): `SuccessfulCreate` "Created
        // pod: %v" and `SuccessfulDelete` "Deleted pod: %v", on the ReplicaSet.
        if pods.len() < desired {
            for _ in pods.len()..desired {
                // Failing creates (e.g. a terminating namespace) are retried on the next event.
                if let Ok(pod) = self.server.create(self.new_pod(&rs)) {
                    let message = format!("Created pod: {}", meta::name(&pod));
                    self.record(&rs, "SuccessfulCreate", message);
                }
            }
        } else if pods.len() > desired {
            pods.sort_by_key(deletion_rank);
            for pod in &pods[..pods.len() - desired] {
                super::delete_if(&self.server, POD, pod);
                let message = format!("Deleted pod: {}", meta::name(pod));
                self.record(&rs, "SuccessfulDelete", message);
            }
        }
        self.update_status(&rs);
    }

    fn record(&self, rs: &Value, reason: &str, message: String) {
        events::record(
            &self.server,
            rs,
            events::Type::Normal,
            reason,
            message,
            events::REPLICA_SET_CONTROLLER,
            None,
        );
    }

    fn new_pod(&self, rs: &Value) -> Value {
        let template = &rs["spec"]["template"];
        let mut pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": format!("{}-", meta::name(rs)),
                "namespace": meta::namespace(rs),
                "labels": template["metadata"]["labels"],
                "ownerReferences": [super::owner_reference(rs)],
            },
            "spec": template["spec"],
        });
        if template["metadata"]["annotations"].is_object() {
            pod["metadata"]["annotations"] = template["metadata"]["annotations"].clone();
        }
        // DefaultTolerationSeconds, as admission would add it to this create.
        let mut tolerations = taints::tolerations(&pod).to_vec();
        tolerations.extend(taints::default_tolerations(&pod, self.toleration_seconds));
        pod["spec"]["tolerations"] = tolerations.into();
        pod
    }

    fn update_status(&self, rs: &Value) {
        let pods = self.pods_of(rs);
        let ready = pods.iter().filter(|p| pod_ready(p)).count();
        let mut status = json!({
            "replicas": pods.len(),
            "observedGeneration": rs["metadata"]["generation"],
        });
        // The real status omits zero counts.
        for (field, count) in [
            // Its own pods carry the template's labels.
            ("fullyLabeledReplicas", pods.len()),
            ("readyReplicas", ready),
            // minReadySeconds is not simulated: a ready pod is available.
            ("availableReplicas", ready),
        ] {
            if count > 0 {
                status[field] = count.into();
            }
        }
        let uid = rs["metadata"]["uid"].clone();
        modify(
            &self.server,
            REPLICA_SET,
            meta::namespace(rs),
            meta::name(rs),
            |rs| {
                if rs["metadata"]["uid"] != uid || rs["status"] == status {
                    return false;
                }
                rs["status"] = status.clone();
                true
            },
        );
    }
}

/// Deleted first: unscheduled, then pending, then not ready, then the newest.
fn deletion_rank(pod: &Value) -> (bool, u8, bool, Reverse<String>) {
    let phase = match pod["status"]["phase"].as_str() {
        Some("Pending") | None => 0,
        Some("Running") => 2,
        _ => 1,
    };
    let created = meta::str_field(pod, "creationTimestamp").to_string();
    (
        !super::node_name(pod).is_empty(),
        phase,
        pod_ready(pod),
        Reverse(created),
    )
}

impl Controller for ReplicaSets {
    fn resync(&mut self) {
        for rs in list(&self.server, REPLICA_SET, None) {
            self.sync(meta::namespace(&rs), meta::name(&rs));
        }
    }

    fn on_event(&mut self, event: &WatchEvent) {
        let obj = &event.object;
        if is(event, REPLICA_SET) {
            self.sync(meta::namespace(obj), meta::name(obj));
        } else if is(event, POD)
            && let Some(owner) = controller_of(obj).filter(|r| r["kind"] == "ReplicaSet")
        {
            self.sync(
                meta::namespace(obj),
                owner["name"].as_str().unwrap_or_default(),
            );
        }
    }
}
