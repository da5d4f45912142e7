//! What a cluster looked like when it was first handed out, and putting back what a test changed
//! at cluster scope: node schedulability, taints and labels; namespaces; objects outside the
//! test's namespace. What cannot be put back (a node or namespace gone, a baseline object deleted
//! or its spec changed) makes the cluster unfit, and the harness recreates it.
//!
//! # What is compared, and what is left out on purpose
//!
//! Everything left out is something the control plane writes by itself, so that comparing it
//! would flag (or undo) the cluster's own work rather than a test's:
//!
//! - **Node taints the node lifecycle controller manages**: `not-ready`, `unreachable` (NoExecute,
//!   `UnreachableTaintTemplate`/`NotReadyTaintTemplate`, and NoSchedule by condition),
//!   `memory-pressure`, `disk-pressure`, `network-unavailable`, `pid-pressure`
//!   (`nodeConditionToTaintKeyStatusMap`), and `unschedulable`, which `doNoScheduleTaintingPass`
//!   derives from `spec.unschedulable` and so goes away with the uncordon this module does.
//!   Sources: kubernetes `pkg/controller/nodelifecycle/node_lifecycle_controller.go`, keys in
//!   `staging/src/k8s.io/api/core/v1/well_known_taints.go`. They are kept as they are when the
//!   other taints are put back. `out-of-service` and the `*-contention-pressure` keys are in
//!   that file too but no controller sets or clears them, so they are compared like a user's.
//! - **Node labels: none left out.** The kubelet writes its default labels (`kubernetes.io/hostname`,
//!   `kubernetes.io/os`, `kubernetes.io/arch`; `updateDefaultLabels` in
//!   `pkg/kubelet/kubelet_node_status.go`) and the node lifecycle controller mirrors the GA
//!   os/arch labels into the `beta.kubernetes.io/` ones (`reconcileNodeLabels`), but both write the
//!   same value the node had at hand-out, so putting that value back never fights them, while
//!   leaving them out would let a test's relabelling of a node leak into the next test.
//! - **`kube-root-ca.crt` ConfigMaps** (root-ca-cert-publisher,
//!   `pkg/controller/certificates/rootcacertpublisher/publisher.go`) and **`default`
//!   ServiceAccounts** (`pkg/controller/serviceaccount/serviceaccounts_controller.go`): made in
//!   every new namespace, and made again with a new UID when deleted.
//! - **Service `default/kubernetes`**: the API server's own, made again when deleted
//!   (`pkg/controlplane/controller/kubernetesservice/controller.go`).
//! - **ConfigMaps `kube-system/extension-apiserver-authentication`** (written by
//!   `pkg/controlplane/controller/clusterauthenticationtrust/cluster_authentication_trust_controller.go`)
//!   and **`kube-system/kube-apiserver-legacy-service-account-token-tracking`**
//!   (`pkg/controlplane/controller/legacytokentracking/controller.go`): the API server makes them
//!   again when deleted.
//! - **Bootstrap token Secrets** (type `bootstrap.kubernetes.io/token`): kind's kubeadm config sets
//!   a bootstrap token with no `ttl` (kind `pkg/cluster/internal/kubeadm/config.go`,
//!   `bootstrapTokens`), so kubeadm's 24 h default applies and the token cleaner deletes the Secret
//!   a day later (`pkg/controller/bootstrap/tokencleaner.go`): a reused cluster would look damaged.
//! - **Legacy ServiceAccount token Secrets** (type `kubernetes.io/service-account-token`, named
//!   `<account>-token-…` for the account in their `kubernetes.io/service-account.name` annotation):
//!   made per ServiceAccount by the tokens controller before 1.24
//!   (`pkg/controller/serviceaccount/tokens_controller.go`; KEP-2799 stopped it), and made again
//!   when deleted.
//! - **Objects with ownerReferences**, pods above all: controllers make and replace them (a
//!   ReplicaSet's pods, a DaemonSet's pods on kind's `kube-system` DaemonSets kindnet and
//!   kube-proxy), and the garbage collector removes them with their owner
//!   (`pkg/controller/garbagecollector`); kind's static control-plane pods are mirror pods owned by
//!   their Node (`pkg/kubelet/pod/mirror_client.go`, KEP-1314), recreated with a new UID whenever
//!   the kubelet restarts them. Their owners are what this module compares.
//! - **Namespaces the harness made for tests** (label `app.kubernetes.io/managed-by:
//!   chaos-runtime`, see `namespace.rs`): the heal removes them; they are never in the baseline,
//!   and one still `Terminating` is the heal's business, not a test's leftover.
//!
//! Everything else kind makes (its `kube-system` DaemonSets, CoreDNS, the `local-path-storage`
//! namespace and its objects: kind `pkg/cluster/internal/create/actions/installcni/cni.go` and
//! `installstorage/storage.go`) exists before the cluster is handed out and does not change by
//! itself, so it is in the baseline. The sim makes only Leases (`chaos-sim/src/control/kubelet.rs`),
//! ReplicaSets and owned pods over time, none of them compared; the tests below check that an
//! untouched sim cluster restores to nothing.

// Called by the harness's heal, which the lead engineer wires in on another branch (issue 10, 4).
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Namespace, Node, Taint};
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Map, Value, json};
use tokio::time::Instant;

/// Node taints the node lifecycle controller adds and removes by itself (see the module doc).
const MANAGED_TAINTS: &[&str] = &[
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/unschedulable",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/network-unavailable",
    "node.kubernetes.io/pid-pressure",
];

/// `kube-system` ConfigMaps the API server makes again when they are deleted (see the module doc).
const API_SERVER_CONFIGMAPS: &[&str] = &[
    "extension-apiserver-authentication",
    "kube-apiserver-legacy-service-account-token-tracking",
];

/// The label the harness puts on the namespaces it makes for tests (`namespace::create`).
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "chaos-runtime");

/// One kind of object the baseline covers.
struct Covered {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    /// A changed `metadata.generation` means its spec changed, which is not put back.
    workload: bool,
}

const fn covered(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    workload: bool,
) -> Covered {
    Covered {
        group,
        version: "v1",
        kind,
        plural,
        namespaced,
        workload,
    }
}

#[rustfmt::skip]
const COVERED: &[Covered] = &[
    covered("apps", "Deployment", "deployments", true, true),
    covered("apps", "StatefulSet", "statefulsets", true, true),
    covered("apps", "DaemonSet", "daemonsets", true, true),
    covered("batch", "Job", "jobs", true, true),
    covered("batch", "CronJob", "cronjobs", true, true),
    covered("", "Service", "services", true, false),
    covered("", "ConfigMap", "configmaps", true, false),
    covered("", "Secret", "secrets", true, false),
    covered("", "ServiceAccount", "serviceaccounts", true, false),
    covered("", "PersistentVolumeClaim", "persistentvolumeclaims", true, false),
    covered("", "Pod", "pods", true, false),
    covered("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", false, false),
    covered("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", false, false),
];

impl Covered {
    fn resource(&self) -> ApiResource {
        let api_version = match self.group {
            "" => self.version.to_owned(),
            group => format!("{group}/{}", self.version),
        };
        ApiResource {
            group: self.group.to_owned(),
            version: self.version.to_owned(),
            api_version,
            kind: self.kind.to_owned(),
            plural: self.plural.to_owned(),
        }
    }

    fn api(&self, client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
        match self.namespaced {
            true => Api::namespaced_with(client.clone(), namespace, &self.resource()),
            false => Api::all_with(client.clone(), &self.resource()),
        }
    }

    /// Every object of the kind, in all namespaces, in one call; `None` when the API server does
    /// not serve the kind (404).
    async fn list(&self, client: &kube::Client) -> Result<Option<Vec<DynamicObject>>, String> {
        match Api::<DynamicObject>::all_with(client.clone(), &self.resource())
            .list(&ListParams::default())
            .await
        {
            Ok(list) => Ok(Some(list.items)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(err) => Err(format!("listing {}: {err}", self.plural)),
        }
    }

    /// `Kind namespace/name`, or `Kind name` for a cluster-scoped kind.
    fn describe(&self, namespace: &str, name: &str) -> String {
        match self.namespaced {
            true => format!("{} {namespace}/{name}", self.kind),
            false => format!("{} {name}", self.kind),
        }
    }
}

/// A node's state that a test may change and this module puts back.
#[derive(Clone, Debug)]
struct NodeState {
    uid: String,
    unschedulable: bool,
    /// Without the taints in [`MANAGED_TAINTS`].
    taints: Vec<Taint>,
    labels: BTreeMap<String, String>,
}

impl NodeState {
    fn of(node: &Node) -> Self {
        let spec = node.spec.as_ref();
        NodeState {
            uid: node.metadata.uid.clone().unwrap_or_default(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            taints: taints(node).into_iter().filter(|t| !managed(t)).collect(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
        }
    }
}

fn taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
}

fn managed(taint: &Taint) -> bool {
    MANAGED_TAINTS.contains(&taint.key.as_str())
}

/// A taint as `kubectl taint` writes it; `timeAdded` is left out, as two taints with the same
/// key, value and effect are the same taint (`Taint.MatchTaint`).
fn taint_text(taint: &Taint) -> String {
    match taint.value.as_deref() {
        Some(value) if !value.is_empty() => format!("{}={value}:{}", taint.key, taint.effect),
        _ => format!("{}:{}", taint.key, taint.effect),
    }
}

#[derive(Clone, Debug)]
struct ObjectState {
    uid: String,
    generation: Option<i64>,
}

/// (index in [`COVERED`], namespace or "", name)
type ObjectKey = (usize, String, String);

/// An object added since the baseline: (index in [`COVERED`], namespace, name, uid).
type Added = (usize, String, String, String);

/// What a cluster looked like when it was first handed out.
pub(crate) struct Baseline {
    nodes: BTreeMap<String, NodeState>,
    /// name → uid
    namespaces: BTreeMap<String, String>,
    objects: BTreeMap<ObjectKey, ObjectState>,
}

/// Why an object is left out of the comparison; see the module doc for the sources.
fn excluded(kind: &str, object: &DynamicObject) -> bool {
    let meta = &object.metadata;
    if meta
        .owner_references
        .as_ref()
        .is_some_and(|o| !o.is_empty())
    {
        return true;
    }
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    let name = meta.name.as_deref().unwrap_or_default();
    match kind {
        "ConfigMap" => {
            name == "kube-root-ca.crt"
                || (namespace == "kube-system" && API_SERVER_CONFIGMAPS.contains(&name))
        }
        "ServiceAccount" => name == "default",
        "Service" => namespace == "default" && name == "kubernetes",
        "Secret" => match object.data["type"].as_str() {
            Some("bootstrap.kubernetes.io/token") => true,
            Some("kubernetes.io/service-account-token") => meta
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .is_some_and(|account| name.starts_with(&format!("{account}-token-"))),
            _ => false,
        },
        _ => false,
    }
}

fn made_by_harness(namespace: &Namespace) -> bool {
    namespace
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .is_some_and(|v| v == MANAGED_BY.1)
}

fn name_of(meta: &kube::api::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

impl Baseline {
    /// Reads the cluster as it is now. Call it before the first test's namespace exists (the
    /// harness's test namespaces are left out in any case).
    pub(crate) async fn take(client: &kube::Client) -> anyhow::Result<Baseline> {
        let nodes = Api::<Node>::all(client.clone())
            .list(&ListParams::default())
            .await
            .context("listing nodes for the cluster's baseline")?
            .items
            .iter()
            .map(|n| (name_of(&n.metadata), NodeState::of(n)))
            .collect();
        let namespaces: BTreeMap<String, String> = Api::<Namespace>::all(client.clone())
            .list(&ListParams::default())
            .await
            .context("listing namespaces for the cluster's baseline")?
            .items
            .iter()
            .filter(|ns| !made_by_harness(ns))
            .map(|ns| {
                let uid = ns.metadata.uid.clone().unwrap_or_default();
                (name_of(&ns.metadata), uid)
            })
            .collect();
        let mut objects = BTreeMap::new();
        for (index, kind) in COVERED.iter().enumerate() {
            let Some(items) = kind
                .list(client)
                .await
                .map_err(|e| anyhow::anyhow!("{e}, for the cluster's baseline"))?
            else {
                continue;
            };
            for object in items {
                let namespace = object.metadata.namespace.clone().unwrap_or_default();
                if excluded(kind.kind, &object)
                    || (kind.namespaced && !namespaces.contains_key(&namespace))
                {
                    continue;
                }
                let state = ObjectState {
                    uid: object.metadata.uid.clone().unwrap_or_default(),
                    generation: object.metadata.generation,
                };
                objects.insert((index, namespace, name_of(&object.metadata)), state);
            }
        }
        Ok(Baseline {
            nodes,
            namespaces,
            objects,
        })
    }

    /// Puts back what a test changed at cluster scope; Ok(lines saying what was put back), or
    /// Err(why the cluster cannot be put back and must be recreated, in one line naming the
    /// object and what changed). `test_namespace` is the test's own namespace (removed by the
    /// harness separately: ignored here).
    ///
    /// Nothing is changed when the cluster cannot be put back: every problem is found first.
    pub(crate) async fn restore(
        &self,
        client: &kube::Client,
        test_namespace: &str,
        timeout: Duration,
    ) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + timeout;
        let mut problems = Vec::new();

        let nodes = Api::<Node>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing nodes: {e}"))?
            .items;
        problems.extend(self.node_problems(&nodes));

        let namespaces = Api::<Namespace>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing namespaces: {e}"))?
            .items;
        problems.extend(self.namespace_problems(&namespaces));
        let added_namespaces: Vec<String> = namespaces
            .iter()
            .filter(|ns| {
                let name = ns.metadata.name.as_deref().unwrap_or_default();
                let terminating_test_namespace =
                    ns.metadata.deletion_timestamp.is_some() && made_by_harness(ns);
                name != test_namespace
                    && !self.namespaces.contains_key(name)
                    && !terminating_test_namespace
            })
            .map(|ns| name_of(&ns.metadata))
            .collect();

        let mut added_objects = Vec::new();
        for (index, kind) in COVERED.iter().enumerate() {
            let Some(items) = kind.list(client).await? else {
                continue;
            };
            let (problems_here, added) = self.object_problems(index, items, test_namespace);
            problems.extend(problems_here);
            added_objects.extend(added);
        }

        if !problems.is_empty() {
            return Err(problems.join("; "));
        }

        let mut done = Vec::new();
        for node in &nodes {
            done.extend(self.put_back_node(client, node).await?);
        }
        let mut deleted = Vec::new();
        for (index, namespace, name, uid) in added_objects {
            let kind = &COVERED[index];
            match kind
                .api(client, &namespace)
                .delete(&name, &DeleteParams::foreground())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => continue,
                Err(err) => {
                    return Err(format!(
                        "deleting {} left by the test: {err}",
                        kind.describe(&namespace, &name)
                    ));
                }
            }
            done.push(format!("deleted {}", kind.describe(&namespace, &name)));
            deleted.push(Deleted::Object(index, namespace, name, uid));
        }
        let namespace_api = Api::<Namespace>::all(client.clone());
        for name in added_namespaces {
            match namespace_api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => continue,
                Err(err) => {
                    return Err(format!("deleting namespace {name} left by the test: {err}"));
                }
            }
            done.push(format!("deleted namespace {name}"));
            deleted.push(Deleted::Namespace(name));
        }
        for gone in &deleted {
            gone.wait(client, deadline, timeout).await?;
        }
        Ok(done)
    }

    fn node_problems(&self, nodes: &[Node]) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, want) in &self.nodes {
            match nodes
                .iter()
                .find(|n| n.metadata.name.as_ref() == Some(name))
            {
                None => problems.push(format!("node {name} is gone")),
                Some(node) if node.metadata.uid.as_deref() != Some(want.uid.as_str()) => problems
                    .push(format!(
                        "node {name} was deleted and registered again (uid {}, was {})",
                        node.metadata.uid.as_deref().unwrap_or("none"),
                        want.uid
                    )),
                Some(_) => {}
            }
        }
        for node in nodes {
            let name = name_of(&node.metadata);
            if !self.nodes.contains_key(&name) {
                problems.push(format!("node {name} was added"));
            }
        }
        problems
    }

    fn namespace_problems(&self, namespaces: &[Namespace]) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, uid) in &self.namespaces {
            match namespaces
                .iter()
                .find(|n| n.metadata.name.as_ref() == Some(name))
            {
                None => problems.push(format!("namespace {name} was deleted")),
                Some(ns) if ns.metadata.uid.as_deref() != Some(uid.as_str()) => {
                    problems.push(format!(
                        "namespace {name} was deleted and made again (uid {}, was {uid})",
                        ns.metadata.uid.as_deref().unwrap_or("none")
                    ))
                }
                Some(ns) if ns.metadata.deletion_timestamp.is_some() => {
                    problems.push(format!("namespace {name} is being deleted"))
                }
                Some(_) => {}
            }
        }
        problems
    }

    /// The problems with kind `index`'s objects, and those added since the baseline (namespace,
    /// name, uid) in namespaces that existed then.
    fn object_problems(
        &self,
        index: usize,
        items: Vec<DynamicObject>,
        test_namespace: &str,
    ) -> (Vec<String>, Vec<Added>) {
        let kind = &COVERED[index];
        let in_scope = |namespace: &str| {
            !kind.namespaced
                || (namespace != test_namespace && self.namespaces.contains_key(namespace))
        };
        let mut current = BTreeMap::new();
        let mut added = Vec::new();
        for object in &items {
            let namespace = object.metadata.namespace.clone().unwrap_or_default();
            if excluded(kind.kind, object) || !in_scope(&namespace) {
                continue;
            }
            let name = name_of(&object.metadata);
            let key = (index, namespace.clone(), name.clone());
            if !self.objects.contains_key(&key) {
                let uid = object.metadata.uid.clone().unwrap_or_default();
                added.push((index, namespace, name, uid));
            }
            current.insert(key, object);
        }
        let mut problems = Vec::new();
        for (key, want) in self.objects.range((index, String::new(), String::new())..) {
            let (i, namespace, name) = key;
            if *i != index {
                break;
            }
            if !in_scope(namespace) {
                continue;
            }
            let what = kind.describe(namespace, name);
            let Some(object) = current.get(key) else {
                problems.push(format!("{what} was deleted"));
                continue;
            };
            let meta = &object.metadata;
            if meta.uid.as_deref() != Some(want.uid.as_str()) {
                problems.push(format!(
                    "{what} was deleted and made again (uid {}, was {})",
                    meta.uid.as_deref().unwrap_or("none"),
                    want.uid
                ));
            } else if kind.workload && meta.generation != want.generation {
                problems.push(format!(
                    "{what}'s spec was changed (generation {}, was {})",
                    meta.generation.unwrap_or(0),
                    want.generation.unwrap_or(0)
                ));
            }
        }
        (problems, added)
    }

    /// Puts back `node`'s schedulability, own taints and labels, with its resourceVersion as a
    /// precondition, reading it again after a conflict (the kubelet and the node lifecycle
    /// controller write nodes all the time).
    async fn put_back_node(
        &self,
        client: &kube::Client,
        node: &Node,
    ) -> Result<Vec<String>, String> {
        let name = name_of(&node.metadata);
        let Some(want) = self.nodes.get(&name) else {
            return Ok(Vec::new());
        };
        let api = Api::<Node>::all(client.clone());
        let mut node = node.clone();
        for _ in 0..5 {
            let (patch, lines) = node_patch(want, &node);
            if lines.is_empty() {
                return Ok(Vec::new());
            }
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    return Ok(lines
                        .into_iter()
                        .map(|l| format!("node {name}: {l}"))
                        .collect());
                }
                Err(kube::Error::Api(status)) if status.code == 409 => {
                    node = api
                        .get(&name)
                        .await
                        .map_err(|e| format!("reading node {name} again: {e}"))?;
                }
                Err(err) => return Err(format!("putting back node {name}: {err}")),
            }
        }
        Err(format!(
            "node {name} kept changing while its taints and labels were put back (5 conflicts)"
        ))
    }
}

/// The JSON merge patch that makes `node` look like `want` again (managed taints kept as they
/// are), and what it does, one phrase each.
fn node_patch(want: &NodeState, node: &Node) -> (Value, Vec<String>) {
    let now = NodeState::of(node);
    let mut lines = Vec::new();
    let mut spec = Map::new();
    let mut metadata = Map::new();
    if now.unschedulable != want.unschedulable {
        spec.insert("unschedulable".into(), json!(want.unschedulable));
        lines.push(match want.unschedulable {
            false => "uncordoned".to_owned(),
            true => "cordoned again".to_owned(),
        });
    }
    let texts = |taints: &[Taint]| taints.iter().map(taint_text).collect::<BTreeSet<_>>();
    let (had, has) = (texts(&want.taints), texts(&now.taints));
    if had != has {
        lines.extend(has.difference(&had).map(|t| format!("taint {t} removed")));
        lines.extend(had.difference(&has).map(|t| format!("taint {t} put back")));
        let kept = taints(node).into_iter().filter(managed);
        let taints: Vec<Taint> = want.taints.iter().cloned().chain(kept).collect();
        spec.insert("taints".into(), json!(taints));
    }
    let mut labels = Map::new();
    for (key, value) in &now.labels {
        match want.labels.get(key) {
            None => {
                labels.insert(key.clone(), Value::Null);
                lines.push(format!("label {key} removed"));
            }
            Some(old) if old != value => {
                labels.insert(key.clone(), json!(old));
                lines.push(format!("label {key} set back to {old:?}"));
            }
            Some(_) => {}
        }
    }
    for (key, old) in &want.labels {
        if !now.labels.contains_key(key) {
            labels.insert(key.clone(), json!(old));
            lines.push(format!("label {key}={old:?} put back"));
        }
    }
    if !labels.is_empty() {
        metadata.insert("labels".into(), Value::Object(labels));
    }
    metadata.insert(
        "resourceVersion".into(),
        json!(node.metadata.resource_version),
    );
    (json!({"metadata": metadata, "spec": spec}), lines)
}

/// Something `restore` deleted, to wait for until it is gone.
enum Deleted {
    /// (index in [`COVERED`], namespace, name, uid)
    Object(usize, String, String, String),
    Namespace(String),
}

impl Deleted {
    async fn wait(
        &self,
        client: &kube::Client,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), String> {
        loop {
            let what = match self {
                Deleted::Object(index, namespace, name, uid) => {
                    let kind = &COVERED[*index];
                    let found = kind.api(client, namespace).get_opt(name).await;
                    let what = kind.describe(namespace, name);
                    match found.map_err(|e| format!("reading {what}: {e}"))? {
                        None => return Ok(()),
                        Some(o) if o.metadata.uid.as_deref() == Some(uid.as_str()) => what,
                        Some(_) => {
                            return Err(format!(
                                "{what}, left by the test, was deleted and something made it again"
                            ));
                        }
                    }
                }
                Deleted::Namespace(name) => {
                    let found = Api::<Namespace>::all(client.clone()).get_opt(name).await;
                    match found.map_err(|e| format!("reading namespace {name}: {e}"))? {
                        None => return Ok(()),
                        Some(_) => format!("namespace {name}"),
                    }
                }
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "{what}, left by the test, is still there {} after its deletion",
                    humantime::format_duration(timeout)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::Provider;
    use crate::provider::sim::SimProvider;
    use chaos_sim::control::Timings;
    use chaos_topology::TopologySpec;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use kube::api::PostParams;

    const TIMEOUT: Duration = Duration::from_secs(10);
    const TEST_NS: &str = "chaos-some-test-0000beef";

    /// A running sim cluster (one control plane, two workers) with the test's namespace made as
    /// the harness makes it, and the objects kind makes before hand-out that the tests touch.
    async fn cluster() -> (crate::provider::Provisioned, kube::Client) {
        let topology = TopologySpec {
            masters: 1,
            workers: 2,
            k8s: "1.35".parse().unwrap(),
            master_versions: vec![],
            worker_versions: vec![],
        }
        .build()
        .unwrap();
        let cluster = SimProvider::new(Duration::ZERO, Timings::default())
            .create("base", &topology)
            .await
            .unwrap();
        let client = cluster.client.clone();
        // kubeadm's CoreDNS ConfigMap (kube-system) and kind's storage namespace, as on kind.
        create(&client, "kube-system", config_map("coredns")).await;
        let storage = json!({"metadata": {"name": "local-path-storage"}});
        Api::<Namespace>::all(client.clone())
            .create(
                &PostParams::default(),
                &serde_json::from_value(storage).unwrap(),
            )
            .await
            .unwrap();
        crate::namespace::create(client.clone(), TEST_NS)
            .await
            .unwrap();
        (cluster, client)
    }

    fn config_map(name: &str) -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
    }

    fn deployment(name: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }))
        .unwrap()
    }

    async fn create<K>(client: &kube::Client, namespace: &str, object: K)
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::Serialize
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        Api::<K>::namespaced(client.clone(), namespace)
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }

    async fn worker(client: &kube::Client) -> Node {
        let nodes = Api::<Node>::all(client.clone());
        let list = nodes.list(&ListParams::default()).await.unwrap();
        list.items
            .into_iter()
            .find(|n| name_of(&n.metadata).ends_with("worker"))
            .unwrap()
    }

    #[tokio::test]
    async fn an_untouched_cluster_is_put_back_with_nothing_to_do() {
        let (_cluster, client) = cluster().await;
        let baseline = Baseline::take(&client).await.unwrap();
        // What the test does in its own namespace is the harness's business, and the sim's
        // controllers (pods of a Deployment, Leases) have had time to write.
        create(&client, TEST_NS, deployment("web")).await;
        create(&client, TEST_NS, config_map("settings")).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            baseline.restore(&client, TEST_NS, TIMEOUT).await,
            Ok(vec![])
        );
        let left = Api::<Deployment>::namespaced(client.clone(), TEST_NS);
        assert!(left.get_opt("web").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_cordon_taint_and_labels_set_through_the_api_are_put_back() {
        let (_cluster, client) = cluster().await;
        let baseline = Baseline::take(&client).await.unwrap();
        let before = worker(&client).await;
        let name = name_of(&before.metadata);
        let patch = json!({
            "metadata": {"labels": {"chaos": "yes", "kubernetes.io/os": "plan9"}},
            "spec": {"unschedulable": true, "taints": [
                {"key": "chaos", "value": "yes", "effect": "NoSchedule"},
                // As the node lifecycle controller adds it with a cordon: left to it.
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
            ]}
        });
        let nodes = Api::<Node>::all(client.clone());
        nodes
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();

        let done = baseline.restore(&client, TEST_NS, TIMEOUT).await.unwrap();
        for said in [
            "uncordoned",
            "taint chaos=yes:NoSchedule removed",
            "label chaos removed",
            "label kubernetes.io/os set back to \"linux\"",
        ] {
            assert!(
                done.contains(&format!("node {name}: {said}")),
                "{said:?} not in {done:?}"
            );
        }
        let after = nodes.get(&name).await.unwrap();
        let spec = after.spec.clone().unwrap();
        assert_eq!(spec.unschedulable, Some(false));
        let keys: Vec<String> = taints(&after).iter().map(taint_text).collect();
        assert_eq!(keys, ["node.kubernetes.io/unschedulable:NoSchedule"]);
        assert_eq!(after.metadata.labels, before.metadata.labels);
        // A second pass finds nothing left to do.
        assert_eq!(
            baseline.restore(&client, TEST_NS, TIMEOUT).await,
            Ok(vec![])
        );
    }

    #[tokio::test]
    async fn objects_left_in_default_are_deleted() {
        let (_cluster, client) = cluster().await;
        let baseline = Baseline::take(&client).await.unwrap();
        create(&client, "default", deployment("left")).await;
        create(&client, "default", config_map("left")).await;
        // What the control plane makes in every namespace stays, as do pods owned by a
        // workload (the garbage collector's business).
        create(&client, "default", config_map("kube-root-ca.crt")).await;

        let done = baseline.restore(&client, TEST_NS, TIMEOUT).await.unwrap();
        assert_eq!(
            done,
            [
                "deleted Deployment default/left",
                "deleted ConfigMap default/left"
            ]
        );
        let deployments = Api::<Deployment>::namespaced(client.clone(), "default");
        assert!(deployments.get_opt("left").await.unwrap().is_none());
        let config_maps = Api::<ConfigMap>::namespaced(client.clone(), "default");
        assert!(config_maps.get_opt("left").await.unwrap().is_none());
        assert!(
            config_maps
                .get_opt("kube-root-ca.crt")
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_pod_without_owner_left_in_default_is_deleted_but_an_owned_one_is_not() {
        let (_cluster, client) = cluster().await;
        let baseline = Baseline::take(&client).await.unwrap();
        let pod = |name: &str, owners: Value| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": name, "ownerReferences": owners},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }))
            .unwrap()
        };
        create(&client, "default", pod("naked", json!([]))).await;
        let node = worker(&client).await;
        let owner = json!([{"apiVersion": "v1", "kind": "Node", "name": name_of(&node.metadata),
                            "uid": node.metadata.uid, "controller": true}]);
        create(&client, "default", pod("mirror", owner)).await;

        let done = baseline.restore(&client, TEST_NS, TIMEOUT).await.unwrap();
        assert_eq!(done, ["deleted Pod default/naked"]);
    }

    #[tokio::test]
    async fn an_extra_namespace_is_deleted_and_waited_for() {
        let (_cluster, client) = cluster().await;
        let baseline = Baseline::take(&client).await.unwrap();
        let namespaces = Api::<Namespace>::all(client.clone());
        let extra = serde_json::from_value(json!({"metadata": {"name": "extra"}})).unwrap();
        namespaces
            .create(&PostParams::default(), &extra)
            .await
            .unwrap();
        create(&client, "extra", config_map("inside")).await;

        let done = baseline.restore(&client, TEST_NS, TIMEOUT).await.unwrap();
        assert_eq!(done, ["deleted namespace extra"]);
        assert!(namespaces.get_opt("extra").await.unwrap().is_none());
        assert!(namespaces.get_opt(TEST_NS).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_kube_system_object_deleted_makes_restore_fail_naming_it() {
        let (_cluster, client) = cluster().await;
        let baseline = Baseline::take(&client).await.unwrap();
        create(&client, "default", config_map("left")).await;
        let config_maps = Api::<ConfigMap>::namespaced(client.clone(), "kube-system");
        config_maps
            .delete("coredns", &DeleteParams::default())
            .await
            .unwrap();

        let err = baseline
            .restore(&client, TEST_NS, TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(err, "ConfigMap kube-system/coredns was deleted");
        // Nothing was changed on a cluster that is to be recreated.
        let left = Api::<ConfigMap>::namespaced(client.clone(), "default");
        assert!(left.get_opt("left").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_baseline_namespace_deleted_or_a_workload_changed_makes_restore_fail() {
        let (_cluster, client) = cluster().await;
        create(&client, "kube-system", deployment("coredns")).await;
        let baseline = Baseline::take(&client).await.unwrap();
        Api::<Namespace>::all(client.clone())
            .delete("local-path-storage", &DeleteParams::default())
            .await
            .unwrap();
        let scale = json!({"spec": {"replicas": 5}});
        Api::<Deployment>::namespaced(client.clone(), "kube-system")
            .patch("coredns", &PatchParams::default(), &Patch::Merge(&scale))
            .await
            .unwrap();

        let err = baseline
            .restore(&client, TEST_NS, TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            "namespace local-path-storage was deleted; \
             Deployment kube-system/coredns's spec was changed (generation 2, was 1)"
        );
    }

    #[tokio::test]
    async fn a_node_added_makes_restore_fail() {
        let (_cluster, client) = cluster().await;
        let baseline = Baseline::take(&client).await.unwrap();
        let mut extra = worker(&client).await;
        extra.metadata = kube::api::ObjectMeta {
            name: Some("stray".into()),
            ..Default::default()
        };
        Api::<Node>::all(client.clone())
            .create(&PostParams::default(), &extra)
            .await
            .unwrap();
        let err = baseline
            .restore(&client, TEST_NS, TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(err, "node stray was added");
    }

    #[tokio::test]
    async fn a_kind_not_served_is_skipped() {
        let (_cluster, client) = cluster().await;
        let missing = covered("apps", "Gadget", "gadgets", true, true);
        assert_eq!(missing.list(&client).await, Ok(None));
    }
}
