//! The shapes a kubelet writes into pod and node status, as pure functions on JSON objects:
//! the simulated kubelets use them, and so can a kubelet outside this crate (the kind stand-in's)
//! so that both report pods and nodes alike.

use serde_json::{Value, json};

use super::{condition_status, containers, meta, set_condition};

/// A pod whose containers are being created (`Pending`, `ContainerCreating`, not ready) on a
/// node at `host_ip`. A pod that ran before (it has container statuses with a running state)
/// lost its containers: each running one counts a restart, with the old run as `lastState`.
pub fn mark_starting(pod: &mut Value, host_ip: &str) {
    let now = meta::now();
    let restarting = pod["status"]["containerStatuses"].is_array();
    if !restarting {
        pod["status"]["phase"] = "Pending".into();
        pod["status"]["hostIP"] = host_ip.into();
        pod["status"]["hostIPs"] = json!([{"ip": host_ip}]);
        pod["status"]["startTime"] = now.clone().into();
    }
    let previous = pod["status"]["containerStatuses"].clone();
    let statuses: Vec<Value> = containers(pod)
        .map(|c| {
            let old = previous
                .as_array()
                .and_then(|a| a.iter().find(|s| s["name"] == c["name"]));
            let mut status = json!({
                "name": c["name"], "image": c["image"], "imageID": "",
                "ready": false, "started": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}},
            });
            let restarts = old.map_or(0, |o| o["restartCount"].as_u64().unwrap_or(0));
            status["restartCount"] = restarts.into();
            // Only containers that ran count a restart.
            if let Some(old) = old.filter(|o| !o["state"]["running"].is_null()) {
                status["restartCount"] = (restarts + 1).into();
                status["lastState"] = json!({"terminated": {
                    "exitCode": 255, "reason": "Unknown",
                    "startedAt": old["state"]["running"]["startedAt"], "finishedAt": now,
                }});
            }
            status
        })
        .collect();
    pod["status"]["containerStatuses"] = statuses.into();
    set_ready(pod, false);
    set_condition(
        pod,
        json!({"type": "Initialized", "status": "True", "lastProbeTime": null}),
    );
}

/// A pod whose containers run and are ready, at `pod_ip`.
pub fn mark_running(pod: &mut Value, pod_ip: &str) {
    let now = meta::now();
    pod["status"]["phase"] = "Running".into();
    pod["status"]["podIP"] = pod_ip.into();
    pod["status"]["podIPs"] = json!([{"ip": pod_ip}]);
    if let Some(statuses) = pod["status"]["containerStatuses"].as_array_mut() {
        for status in statuses {
            if status["state"]["running"].is_null() {
                status["state"] = json!({"running": {"startedAt": now}});
                let image = status["image"].as_str().unwrap_or_default().to_string();
                status["imageID"] = format!("docker.io/library/{image}").into();
                status["containerID"] =
                    format!("containerd://{:064x}", rand::random::<u128>()).into();
            }
            status["ready"] = true.into();
            status["started"] = true.into();
        }
    }
    set_ready(pod, true);
}

/// Whether the pod is reported `Running` and `Ready`.
pub fn is_running_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running" && condition_status(pod, "Ready") == "True"
}

/// `Ready` and `ContainersReady` together, as the kubelet's status manager sets them.
pub(super) fn set_ready(pod: &mut Value, ready: bool) {
    let names: Vec<&str> = containers(pod).filter_map(|c| c["name"].as_str()).collect();
    let message = format!("containers with unready status: [{}]", names.join(" "));
    for type_ in ["ContainersReady", "Ready"] {
        let condition = if ready {
            json!({"type": type_, "status": "True", "lastProbeTime": null})
        } else {
            json!({"type": type_, "status": "False", "lastProbeTime": null,
                   "reason": "ContainersNotReady", "message": message})
        };
        set_condition(pod, condition);
        if ready && let Some(conditions) = pod["status"]["conditions"].as_array_mut() {
            for c in conditions.iter_mut().filter(|c| c["type"] == type_) {
                if let Some(c) = c.as_object_mut() {
                    c.remove("reason");
                    c.remove("message");
                }
            }
        }
    }
}

/// The node conditions a healthy kubelet posts: no memory, disk or PID pressure, and `Ready`,
/// each with `lastHeartbeatTime` now (`lastTransitionTime` moves only when a status does). Ready
/// comes last, as the real kubelet orders them (kind's `--wait` reads the last condition).
/// Returns whether a status changed (as opposed to only the heartbeat).
pub fn post_node_ready(node: &mut Value) -> bool {
    let now = meta::now();
    let mut changed = false;
    for (type_, status, reason, message) in [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ] {
        changed |= condition_status(node, type_) != status;
        set_condition(
            node,
            json!({"type": type_, "status": status, "reason": reason,
                   "message": message, "lastHeartbeatTime": now}),
        );
    }
    changed
}
