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
    Controller, LEASE, NODE, POD, Timings, WatchEvent, condition_status, events, is, list, meta,
    micro_now, modify, modify_pod, node_name, pod_ready, pod_status,
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
        let mut became_ready = false;
        let stored = modify(&self.server, NODE, "", &self.node, |node| {
            let before = node.clone();
            // Set only on a change, so that a node that just registered Ready (the sim makes
            // them so) gets no event.
            became_ready = condition_status(node, "Ready") != "True";
            if became_ready {
                pod_status::post_node_ready(node);
            }
            if !node["status"]["addresses"].is_array() {
                node["status"]["addresses"] = json!([
                    {"type": "InternalIP", "address": host_ip},
                    {"type": "Hostname", "address": self.node},
                ]);
            }
            *node != before
        });
        // The kubelet, when its Ready condition changes (`pkg/kubelet/nodestatus/setters.go`,
        // `ReadyCondition`, recording through `recordNodeStatusEvent` in
        // `pkg/kubelet/kubelet_node_status.go`): `NodeReady`, "Node %s status is now: %s".
        if let Some(node) = stored.filter(|_| became_ready) {
            events::record(
                &self.server,
                &node,
                events::Type::Normal,
                "NodeReady",
                format!("Node {} status is now: NodeReady", self.node),
                events::KUBELET,
                Some(self.node.as_str()),
            );
        }
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
        self.write_status(pod, |pod| pod_status::mark_starting(pod, &host_ip));
    }

    fn write_running(&self, pod: &Value) {
        let pod_ip = match pod["status"]["podIP"].as_str() {
            Some(ip) => ip.to_string(),
            None => {
                let n = self.machine.next_pod_ip.fetch_add(1, Ordering::Relaxed);
                format!("10.244.{}.{}", self.machine.index, n)
            }
        };
        self.write_status(pod, |pod| pod_status::mark_running(pod, &pod_ip));
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
