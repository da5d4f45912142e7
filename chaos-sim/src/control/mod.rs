//! A simulated control plane for [`ApiServer`]: the controllers that make a cluster move.
//!
//! Every component is a tokio task driven by [`ApiServer::subscribe`] events and its own
//! timers, like the real ones are driven by informers and work queues. Each reads the current
//! state from the server when an event arrives (level-triggered), so a missed or coalesced
//! event never leaves it wrong; a receiver that lags simply resyncs everything.
//!
//! - `deployments`: Deployment → ReplicaSet, rollouts, Deployment status.
//! - `replicasets`: ReplicaSet → pods, ReplicaSet status.
//! - `gc`: the garbage collector, for ownerReferences.
//! - `admission`: DefaultTolerationSeconds, on pod create.
//! - `scheduler`: binds pending pods to Ready, schedulable nodes whose taints they tolerate.
//! - `kubelet`: one per node; starts bound pods, renews the node's Lease.
//! - `node_lifecycle`: Ready → Unknown after the grace period, condition taints.
//! - `taint_eviction`: deletes pods from NoExecute-tainted nodes once their toleration ends.
//! - `disruption`: PodDisruptionBudget status; `eviction` serves `pods/eviction`.
//! - `events`: the Events these components record, as the real ones do.

mod admission;
mod deployments;
mod disruption;
mod events;
pub(super) mod eviction;
mod gc;
mod kubelet;
mod node_lifecycle;
pub mod pod_status;
mod replicasets;
mod scheduler;
mod taint_eviction;
mod taints;
mod timings;

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::runtime::Handle;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use timings::Timings;

use super::{ApiServer, WatchEvent, meta};

/// The running controllers of one simulated cluster; dropping it stops them all.
pub struct ControlPlane {
    server: ApiServer,
    timings: Timings,
    tasks: Vec<JoinHandle<()>>,
    kubelets: Arc<kubelet::Kubelets>,
}

impl ControlPlane {
    /// Starts every controller, and a kubelet for each node (now and later).
    ///
    /// Must be called inside a tokio runtime: the controllers are tasks on it.
    pub fn start(server: ApiServer, timings: Timings) -> Self {
        Self::start_with(server, timings, true)
    }

    /// Starts every controller but no kubelets: the nodes' kubelets run elsewhere and talk to
    /// the server over HTTP (the kind stand-in's nodes). The kubelet methods
    /// ([`ControlPlane::stop_kubelet`] and the like) then do nothing, and
    /// [`ControlPlane::kubelet_running`] is false.
    ///
    /// Must be called inside a tokio runtime: the controllers are tasks on it.
    pub fn start_without_kubelets(server: ApiServer, timings: Timings) -> Self {
        Self::start_with(server, timings, false)
    }

    fn start_with(server: ApiServer, timings: Timings, with_kubelets: bool) -> Self {
        let runtime = Handle::current();
        let kubelets = kubelet::Kubelets::new(server.clone(), timings.clone(), runtime.clone());
        if !with_kubelets {
            kubelets.stop_all();
        }
        let mut tasks = vec![
            spawn(
                &runtime,
                &server,
                admission::Admission::new(&server, &timings),
            ),
            spawn(&runtime, &server, gc::GarbageCollector::new(&server)),
            spawn(&runtime, &server, deployments::Deployments::new(&server)),
            spawn(
                &runtime,
                &server,
                replicasets::ReplicaSets::new(&server, &timings),
            ),
            spawn(&runtime, &server, scheduler::Scheduler::new(&server)),
            spawn(
                &runtime,
                &server,
                node_lifecycle::NodeLifecycle::new(&server, &timings),
            ),
            spawn(
                &runtime,
                &server,
                taint_eviction::TaintEviction::new(&server, &timings),
            ),
            spawn(&runtime, &server, disruption::Disruption::new(&server)),
        ];
        if with_kubelets {
            tasks.push(spawn(
                &runtime,
                &server,
                kubelet::Manager::new(kubelets.clone()),
            ));
        }
        Self {
            server,
            timings,
            tasks,
            kubelets,
        }
    }

    /// The API server the control plane drives.
    pub fn server(&self) -> &ApiServer {
        &self.server
    }

    /// The delays it runs with.
    pub fn timings(&self) -> &Timings {
        &self.timings
    }

    /// Stops the node's kubelet: no more heartbeats or pod status; its containers keep
    /// running, so [`ControlPlane::start_kubelet`] finds them as they were. Also the model of
    /// a paused or partitioned node.
    pub fn stop_kubelet(&self, node: &str) {
        self.kubelets.stop(node, false);
    }

    /// Stops the node's kubelet and kills its containers (a powered-off or crashed node): when
    /// the kubelet starts again, the pods still bound there restart (`restartCount` + 1).
    pub fn crash_node(&self, node: &str) {
        self.kubelets.stop(node, true);
    }

    /// Starts the node's kubelet again: it posts `Ready=True` and resyncs its pods.
    pub fn start_kubelet(&self, node: &str) {
        self.kubelets.start(node);
    }

    /// Whether the node's kubelet runs (false for a node the server does not have).
    pub fn kubelet_running(&self, node: &str) -> bool {
        self.kubelets.running(node)
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.kubelets.stop_all();
    }
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("timings", &self.timings)
            .field("controllers", &self.tasks.len())
            .finish()
    }
}

/// One simulated component: reacts to changes and to its own deadlines.
trait Controller: Send + 'static {
    /// Looks at everything afresh: at start, and after falling behind on events.
    fn resync(&mut self);
    fn on_event(&mut self, event: &WatchEvent);
    /// The earliest moment [`Controller::on_timer`] must run.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
    fn on_timer(&mut self, _now: Instant) {}
}

/// Runs a controller: subscribed before its first resync, so nothing in between is missed.
fn spawn<C: Controller>(runtime: &Handle, server: &ApiServer, mut controller: C) -> JoinHandle<()> {
    let mut events = server.subscribe();
    runtime.spawn(async move {
        controller.resync();
        loop {
            let deadline = controller.next_deadline();
            tokio::select! {
                event = events.recv() => match event {
                    Ok(event) => controller.on_event(&event),
                    Err(RecvError::Lagged(_)) => controller.resync(),
                    Err(RecvError::Closed) => return,
                },
                () = sleep_until(deadline) => controller.on_timer(Instant::now()),
            }
        }
    })
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

// Kinds, as the direct methods of the server name them.
const POD: (&str, &str) = ("v1", "Pod");
const NODE: (&str, &str) = ("v1", "Node");
const REPLICA_SET: (&str, &str) = ("apps/v1", "ReplicaSet");
const DEPLOYMENT: (&str, &str) = ("apps/v1", "Deployment");
const LEASE: (&str, &str) = ("coordination.k8s.io/v1", "Lease");
const PDB: (&str, &str) = ("policy/v1", "PodDisruptionBudget");

/// Whether an event is about an object of `kind`.
fn is(event: &WatchEvent, (api_version, kind): (&str, &str)) -> bool {
    event.object["kind"] == kind && event.object["apiVersion"] == api_version
}

fn get(
    server: &ApiServer,
    (api_version, kind): (&str, &str),
    ns: &str,
    name: &str,
) -> Option<Value> {
    server.get(api_version, kind, Some(ns), name)
}

fn list(server: &ApiServer, (api_version, kind): (&str, &str), ns: Option<&str>) -> Vec<Value> {
    server.list(api_version, kind, ns)
}

/// Deletes an object if it is still the one with `uid` (names are reused).
fn delete_if(server: &ApiServer, (api_version, kind): (&str, &str), obj: &Value) {
    let (ns, name) = (meta::namespace(obj), meta::name(obj));
    let current = server.get(api_version, kind, Some(ns), name);
    if current.is_some_and(|c| uid(&c) == uid(obj)) {
        // Gone already is fine: someone else deleted it first.
        let _ = server.delete(api_version, kind, Some(ns), name);
    }
}

/// Read-modify-write with optimistic concurrency, retried on conflicts. `change` returns
/// false when nothing needs writing. Returns the stored object, None when it is gone.
fn modify(
    server: &ApiServer,
    (api_version, kind): (&str, &str),
    ns: &str,
    name: &str,
    mut change: impl FnMut(&mut Value) -> bool,
) -> Option<Value> {
    loop {
        let mut obj = server.get(api_version, kind, Some(ns), name)?;
        if !change(&mut obj) {
            return Some(obj);
        }
        match server.update(obj) {
            Ok(stored) => return Some(stored),
            Err(e) if e.code == 409 => continue,
            Err(_) => return None,
        }
    }
}

/// [`modify`] for a pod, only while the stored pod is still `pod`: a pod recreated under the same
/// name is another pod and must not get this one's changes.
fn modify_pod(
    server: &ApiServer,
    pod: &Value,
    mut change: impl FnMut(&mut Value) -> bool,
) -> Option<Value> {
    let uid = pod["metadata"]["uid"].clone();
    modify(
        server,
        POD,
        meta::namespace(pod),
        meta::name(pod),
        |stored| stored["metadata"]["uid"] == uid && change(stored),
    )
}

fn uid(obj: &Value) -> &str {
    meta::str_field(obj, "uid")
}

/// The ownerReference marked `controller: true`.
fn controller_of(obj: &Value) -> Option<&Value> {
    obj["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
}

/// Whether `obj` is controlled by `owner`.
fn controlled_by(obj: &Value, owner: &Value) -> bool {
    controller_of(obj).is_some_and(|r| r["uid"] == owner["metadata"]["uid"])
}

fn owner_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta::name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// A `metav1.LabelSelector` (matchLabels and matchExpressions) against `obj`'s labels. An
/// empty selector matches everything, as for PodDisruptionBudgets in policy/v1.
fn selector_matches(selector: &Value, obj: &Value) -> bool {
    let labels = &obj["metadata"]["labels"];
    let label = |key: &str| labels[key].as_str();
    let match_labels = selector["matchLabels"].as_object().into_iter().flatten();
    let labels_ok = match_labels
        .into_iter()
        .all(|(k, v)| label(k) == v.as_str());
    let expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten();
    let expressions_ok = expressions.into_iter().all(|e| {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        match e["operator"].as_str().unwrap_or_default() {
            "In" => label(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => label(key).is_some(),
            "DoesNotExist" => label(key).is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// The condition of `type` in `obj.status.conditions`.
fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn condition_status<'a>(obj: &'a Value, type_: &str) -> &'a str {
    condition(obj, type_)
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
}

/// Sets the fields of `new` (which names its `type`) on that condition, adding it when
/// missing. `lastTransitionTime` moves only when `status` does, as every controller does it.
fn set_condition(obj: &mut Value, new: Value) {
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    if !obj["status"]["conditions"].is_array() {
        obj["status"]["conditions"] = json!([]);
    }
    let conditions = obj["status"]["conditions"]
        .as_array_mut()
        .expect("made an array above");
    let index = match conditions.iter().position(|c| c["type"] == new["type"]) {
        Some(i) => i,
        None => {
            conditions.push(json!({"type": new["type"]}));
            conditions.len() - 1
        }
    };
    let current = &mut conditions[index];
    if current["status"] != new["status"] {
        current["lastTransitionTime"] = meta::now().into();
    }
    for (field, value) in new.as_object().into_iter().flatten() {
        current[field] = value.clone();
    }
}

/// Pod readiness, as endpoints and budgets count it.
fn pod_ready(pod: &Value) -> bool {
    condition_status(pod, "Ready") == "True"
}

/// A pod that still counts: not deleted and not finished.
fn pod_active(pod: &Value) -> bool {
    !meta::is_deleting(pod)
        && !matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        )
}

fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    pod["spec"]["containers"].as_array().into_iter().flatten()
}

fn node_name(pod: &Value) -> &str {
    pod["spec"]["nodeName"].as_str().unwrap_or_default()
}

/// `metav1.MicroTime` of now, as Leases carry it: heartbeats need better than seconds.
fn micro_now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}
