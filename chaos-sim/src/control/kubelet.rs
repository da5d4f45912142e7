//! Kubelets, one task per node. A kubelet posts its node `Ready`, renews the node's Lease in
//! `kube-node-lease` every heartbeat, and runs the pods bound to its node: `Pending` with
//! `ContainerCreating` at once, `Running` and `Ready` after the start delay. No probes,
//! init containers, resources, volumes or graceful termination.
//!
//! The container runtime outlives its kubelet: a stopped kubelet finds its containers still
//! running when it starts again; a crashed node's containers are gone, so its pods restart.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Value, json};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{
    Controller, LEASE, NODE, POD, Timings, WatchEvent, condition_status, is, list, meta, micro_now,
    modify, modify_pod, node_name, pod_ready, set_condition,
};
use crate::{ApiServer, EventKind};

/// Every node's kubelet and container runtime.
pub(super) struct Kubelets {
    server: ApiServer,
    timings: Timings,
    runtime: Handle,
    nodes: Mutex<HashMap<String, Slot>>,
    /// Nodes seen so far, numbering their addresses.
    seen: AtomicU32,
    /// Set when the control plane stops: no kubelet may start after that.
    closed: AtomicBool,
}

#[derive(Default)]
struct Slot {
    kubelet: Option<JoinHandle<()>>,
    /// Stopped by a fault: stays down until started again, even when the node changes.
    stopped: bool,
    machine: Arc<Machine>,
}

/// What survives a kubelet restart on one node.
#[derive(Default)]
struct Machine {
    /// Uids of the pods whose containers run.
    containers: Mutex<HashSet<String>>,
    /// Position of the node, for its addresses.
    index: u32,
    next_pod_ip: AtomicU32,
}

impl Machine {
    fn containers(&self) -> MutexGuard<'_, HashSet<String>> {
        self.containers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Kubelets {
    pub fn new(server: ApiServer, timings: Timings, runtime: Handle) -> Arc<Self> {
        Arc::new(Self {
            server,
            timings,
            runtime,
            nodes: Mutex::new(HashMap::new()),
            seen: AtomicU32::new(0),
            closed: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slot<'a>(&self, nodes: &'a mut HashMap<String, Slot>, node: &str) -> &'a mut Slot {
        nodes.entry(node.to_string()).or_insert_with(|| Slot {
            machine: Arc::new(Machine {
                index: self.seen.fetch_add(1, Ordering::Relaxed) + 1,
                next_pod_ip: AtomicU32::new(2),
                ..Machine::default()
            }),
            ..Slot::default()
        })
    }

    /// Runs the node's kubelet unless it is stopped or already running.
    fn ensure(&self, node: &str) {
        let mut nodes = self.lock();
        let slot = self.slot(&mut nodes, node);
        let running = slot.kubelet.as_ref().is_some_and(|k| !k.is_finished());
        if slot.stopped || running || self.closed.load(Ordering::Relaxed) {
            return;
        }
        let kubelet = Kubelet {
            server: self.server.clone(),
            node: node.to_string(),
            timings: self.timings.clone(),
            machine: slot.machine.clone(),
            starting: HashMap::new(),
            next_heartbeat: Instant::now(),
        };
        slot.kubelet = Some(super::spawn(&self.runtime, &self.server, kubelet));
    }

    pub fn stop(&self, node: &str, kill_containers: bool) {
        let mut nodes = self.lock();
        let slot = self.slot(&mut nodes, node);
        slot.stopped = true;
        if let Some(kubelet) = slot.kubelet.take() {
            kubelet.abort();
        }
        if kill_containers {
            slot.machine.containers().clear();
        }
    }

    pub fn start(&self, node: &str) {
        self.slot(&mut self.lock(), node).stopped = false;
        if self.server.get(NODE.0, NODE.1, None, node).is_some() {
            self.ensure(node);
        }
    }

    pub fn running(&self, node: &str) -> bool {
        self.lock()
            .get(node)
            .and_then(|s| s.kubelet.as_ref())
            .is_some_and(|k| !k.is_finished())
    }

    fn remove(&self, node: &str) {
        if let Some(kubelet) = self.lock().remove(node).and_then(|s| s.kubelet) {
            kubelet.abort();
        }
    }

    pub fn stop_all(&self) {
        // Under the lock, so a kubelet being started right now is either stopped here or
        // sees `closed`.
        let mut nodes = self.lock();
        self.closed.store(true, Ordering::Relaxed);
        for slot in nodes.values_mut() {
            if let Some(kubelet) = slot.kubelet.take() {
                kubelet.abort();
            }
        }
    }
}

/// Starts a kubelet for every node that appears, stops it when the node is deleted.
pub(super) struct Manager {
    kubelets: Arc<Kubelets>,
}

impl Manager {
    pub fn new(kubelets: Arc<Kubelets>) -> Self {
        Self { kubelets }
    }
}

impl Controller for Manager {
    fn resync(&mut self) {
        for node in list(&self.kubelets.server, NODE, None) {
            self.kubelets.ensure(meta::name(&node));
        }
    }

    fn on_event(&mut self, event: &WatchEvent) {
        if !is(event, NODE) {
            return;
        }
        let name = meta::name(&event.object);
        match event.kind {
            EventKind::Added => self.kubelets.ensure(name),
            EventKind::Deleted => self.kubelets.remove(name),
            EventKind::Modified => {}
        }
    }
}

struct Kubelet {
    server: ApiServer,
    node: String,
    timings: Timings,
    machine: Arc<Machine>,
    /// Pods whose containers are being started: uid → (when they run, namespace, name).
    starting: HashMap<String, (Instant, String, String)>,
    next_heartbeat: Instant,
}

impl Kubelet {
    fn host_ip(&self) -> String {
        format!("172.18.0.{}", self.machine.index + 1)
    }

    /// Node status as a healthy kubelet reports it.
    fn post_ready(&self) {
        let host_ip = self.host_ip();
        modify(&self.server, NODE, "", &self.node, |node| {
            let before = node.clone();
            let now = meta::now();
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
                if condition_status(node, type_) != status {
                    set_condition(
                        node,
                        json!({"type": type_, "status": status, "reason": reason,
                        "message": message, "lastHeartbeatTime": now}),
                    );
                }
            }
            if !node["status"]["addresses"].is_array() {
                node["status"]["addresses"] = json!([
                    {"type": "InternalIP", "address": host_ip},
                    {"type": "Hostname", "address": self.node},
                ]);
            }
            *node != before
        });
    }

    fn renew_lease(&self) {
        let ns = "kube-node-lease";
        let renewed = modify(&self.server, LEASE, ns, &self.node, |lease| {
            lease["spec"]["renewTime"] = micro_now().into();
            true
        });
        if renewed.is_some() {
            return;
        }
        let Some(node) = self.server.get(NODE.0, NODE.1, None, &self.node) else {
            return;
        };
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.node,
                "namespace": ns,
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                    "name": self.node, "uid": node["metadata"]["uid"]}],
            },
            "spec": {"holderIdentity": self.node, "leaseDurationSeconds": 40,
                     "renewTime": micro_now()},
        });
        // Lost a race with itself only if someone else created it: renewed next time.
        let _ = self.server.create(lease);
    }

    fn sync_pod(&mut self, pod: &Value) {
        let uid = super::uid(pod).to_string();
        if !super::pod_active(pod) || self.starting.contains_key(&uid) {
            return;
        }
        if self.machine.containers().contains(&uid) {
            // Running all along, e.g. while this kubelet was stopped and the pod marked not
            // ready: report it as it is.
            if !pod_ready(pod) || pod["status"]["phase"] != "Running" {
                self.write_running(pod);
            }
            return;
        }
        let deadline = Instant::now() + self.timings.pod_start;
        let (ns, name) = (
            meta::namespace(pod).to_string(),
            meta::name(pod).to_string(),
        );
        self.starting.insert(uid.clone(), (deadline, ns, name));
        self.write_starting(pod);
    }

    /// Containers being created; a pod that ran before lost its containers and restarts.
    fn write_starting(&self, pod: &Value) {
        let host_ip = self.host_ip();
        self.write_status(pod, |pod| {
            let now = meta::now();
            let restarting = pod["status"]["containerStatuses"].is_array();
            if !restarting {
                pod["status"]["phase"] = "Pending".into();
                pod["status"]["hostIP"] = host_ip.clone().into();
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
        });
    }

    fn write_running(&self, pod: &Value) {
        let pod_ip = match pod["status"]["podIP"].as_str() {
            Some(ip) => ip.to_string(),
            None => {
                let n = self.machine.next_pod_ip.fetch_add(1, Ordering::Relaxed);
                format!("10.244.{}.{}", self.machine.index, n)
            }
        };
        self.write_status(pod, |pod| {
            let now = meta::now();
            pod["status"]["phase"] = "Running".into();
            pod["status"]["podIP"] = pod_ip.clone().into();
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
        });
    }

    /// Writes the pod's status if it is still this pod, on this node.
    fn write_status(&self, pod: &Value, mut change: impl FnMut(&mut Value)) {
        modify_pod(&self.server, pod, |pod| {
            if node_name(pod) != self.node || !super::pod_active(pod) {
                return false;
            }
            let before = pod.clone();
            change(pod);
            *pod != before
        });
    }

    fn start_containers(&mut self, uid: &str, ns: &str, name: &str) {
        let Some(pod) = super::get(&self.server, POD, ns, name) else {
            return;
        };
        if super::uid(&pod) != uid || node_name(&pod) != self.node || !super::pod_active(&pod) {
            return;
        }
        self.machine.containers().insert(uid.to_string());
        self.write_running(&pod);
    }
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    pod["spec"]["containers"].as_array().into_iter().flatten()
}

/// `Ready` and `ContainersReady` together, as the kubelet's status manager sets them.
fn set_ready(pod: &mut Value, ready: bool) {
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

impl Controller for Kubelet {
    fn resync(&mut self) {
        self.post_ready();
        self.renew_lease();
        self.next_heartbeat = Instant::now() + self.timings.heartbeat;
        for pod in list(&self.server, POD, None) {
            if node_name(&pod) == self.node {
                self.sync_pod(&pod);
            }
        }
    }

    fn on_event(&mut self, event: &WatchEvent) {
        let obj = &event.object;
        if is(event, NODE) && meta::name(obj) == self.node {
            if event.kind != EventKind::Deleted && condition_status(obj, "Ready") != "True" {
                self.post_ready();
            }
        } else if is(event, POD) && node_name(obj) == self.node {
            if event.kind == EventKind::Deleted || !super::pod_active(obj) {
                // The pod is gone: so are its containers.
                let uid = super::uid(obj);
                self.starting.remove(uid);
                self.machine.containers().remove(uid);
            } else {
                self.sync_pod(obj);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let starts = self.starting.values().map(|(at, _, _)| *at);
        starts.chain([self.next_heartbeat]).min()
    }

    fn on_timer(&mut self, now: Instant) {
        if self.next_heartbeat <= now {
            self.renew_lease();
            self.next_heartbeat = now + self.timings.heartbeat;
        }
        let due: Vec<(String, String, String)> = self
            .starting
            .iter()
            .filter(|(_, (at, _, _))| *at <= now)
            .map(|(uid, (_, ns, name))| (uid.clone(), ns.clone(), name.clone()))
            .collect();
        for (uid, ns, name) in due {
            self.starting.remove(&uid);
            self.start_containers(&uid, &ns, &name);
        }
    }
}
