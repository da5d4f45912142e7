//! Every object, the global resourceVersion, and the bounded history of changes that watches
//! are served from. Also the controllers the apiserver cannot work without: finalizer-aware
//! deletion, namespace cleanup and CRD registration, all applied at once.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use super::error::ApiError;
use super::limits;
use super::meta;
use super::resources::{self, CRDS, NAMESPACES, Registry, ResourceInfo, ResourceKey};
use super::selector::Selectors;
use super::strategy;
use super::{EventKind, WatchEvent};

/// Changes kept for watches that resume from an older resourceVersion.
pub(crate) const HISTORY_LIMIT: usize = 10_000;

/// (namespace, name); the namespace is empty for cluster-scoped objects.
type ObjectKey = (String, String);

/// One entry of the history.
pub(crate) struct Change {
    pub rv: u64,
    pub resource: ResourceKey,
    pub kind: EventKind,
    pub object: Value,
    /// The object before a modification, so that a watch with a selector can report an object
    /// that stops matching as DELETED, like the watch cache does.
    pub old: Option<Value>,
}

/// Which part of the stored object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusPolicy {
    /// Everything: the control plane's direct writes, and kinds without a status subresource.
    Whole,
    /// Everything but `.status`: the main resource of a kind with a status subresource.
    KeepStatus,
    /// Only `.status`: the `/status` subresource.
    OnlyStatus,
}

pub(crate) struct Store {
    pub registry: Registry,
    objects: BTreeMap<ResourceKey, BTreeMap<ObjectKey, Value>>,
    rv: u64,
    history: VecDeque<Change>,
    /// Highest resourceVersion evicted from `history`: watches from before it get 410.
    compacted: u64,
    /// Feeds uids and generated names.
    ids: u64,
    events: broadcast::Sender<WatchEvent>,
    /// The latest resourceVersion, to wake watches.
    rv_notify: watch::Sender<u64>,
    /// Set during a `dryRun=All` request: every check runs, nothing is stored or announced.
    dry_run: bool,
}

fn namespaces_key() -> ResourceKey {
    ResourceKey::new(NAMESPACES.0, NAMESPACES.1)
}

impl Store {
    /// A store holding the namespaces every cluster starts with.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(HISTORY_LIMIT);
        let (rv_notify, _) = watch::channel(0);
        let mut store = Self {
            registry: Registry::built_in(),
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            compacted: 0,
            ids: 0,
            events,
            rv_notify,
            dry_run: false,
        };
        let info = store
            .registry
            .find("", "v1", "namespaces")
            .cloned()
            .expect("namespaces are built in");
        for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            store
                .create(&info, namespace)
                .expect("the initial namespaces are valid");
        }
        store
    }

    /// Runs `op` as a dry run (`dryRun=All`) when `dry_run` is set.
    pub fn run<T>(&mut self, dry_run: bool, op: impl FnOnce(&mut Self) -> T) -> T {
        self.dry_run = dry_run;
        let result = op(self);
        self.dry_run = false;
        result
    }

    /// Records a generic resource whose Kind an object just revealed.
    pub fn learn(&mut self, info: ResourceInfo) {
        if !self.dry_run {
            self.registry.register(info);
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.events.subscribe()
    }

    /// Wakes on every change; watches read what changed from the history.
    pub fn rv_receiver(&self) -> watch::Receiver<u64> {
        self.rv_notify.subscribe()
    }

    pub fn get(&self, key: &ResourceKey, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(key)?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Matching objects sorted by namespace and name; all namespaces when `namespace` is None.
    pub fn list(
        &self,
        key: &ResourceKey,
        namespace: Option<&str>,
        selectors: &Selectors,
    ) -> Vec<Value> {
        self.objects
            .get(key)
            .into_iter()
            .flatten()
            .filter(|((ns, _), obj)| namespace.is_none_or(|n| n == ns) && selectors.matches(obj))
            .map(|(_, obj)| obj.clone())
            .collect()
    }

    /// The resource a Kind belongs to, learning a generic one (guessed plural) when unknown.
    pub fn resolve_kind(
        &mut self,
        api_version: &str,
        kind: &str,
        namespaced: bool,
    ) -> ResourceInfo {
        if let Some(info) = self.registry.find_kind(api_version, kind) {
            return info.clone();
        }
        let (group, version) = resources::split_api_version(api_version);
        let info = ResourceInfo::generic(
            group,
            version,
            &resources::guess_plural(kind),
            kind,
            namespaced,
        );
        self.registry.register(info.clone());
        info
    }

    /// Stores a new object. Its `metadata.namespace` must already be the request's.
    pub fn create(&mut self, info: &ResourceInfo, mut obj: Value) -> Result<Value, ApiError> {
        let key = info.key();
        if !meta::resource_version(&obj).is_empty() {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        if !info.namespaced {
            meta::remove(&mut obj, "namespace");
        }
        let ns = meta::namespace(&obj).to_string();
        if meta::name(&obj).is_empty() {
            let prefix = meta::str_field(&obj, "generateName").to_string();
            if !prefix.is_empty() {
                let name = self.generate_name(&key, &ns, &prefix);
                meta::set(&mut obj, "name", name);
            }
        }
        let name = meta::name(&obj).to_string();
        if info.namespaced {
            if ns.is_empty() {
                return Err(ApiError::invalid(
                    &info.kind,
                    &info.group,
                    &name,
                    vec![super::error::Cause {
                        reason: "FieldValueRequired",
                        field: "metadata.namespace".into(),
                        message: "Required value".into(),
                    }],
                ));
            }
            self.admit_into_namespace(&key, &name, &ns)?;
        }
        let causes = meta::validate_name(&name, strategy::name_rule(info));
        if !causes.is_empty() {
            return Err(ApiError::invalid(&info.kind, &info.group, &name, causes));
        }
        if self.get(&key, &ns, &name).is_some() {
            return Err(ApiError::already_exists(&key, &name));
        }

        strategy::prepare_for_create(info, &mut obj);
        obj["apiVersion"] = info.api_version().into();
        obj["kind"] = info.kind.clone().into();
        self.ids += 1;
        meta::set(&mut obj, "uid", meta::uid(self.ids));
        meta::set(&mut obj, "creationTimestamp", meta::now());
        meta::set(&mut obj, "generation", 1);
        for field in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
            meta::remove(&mut obj, field);
        }
        self.check_stored_size(info, &obj)?;
        let stored = self.write(&key, obj, None);
        self.after_write(info, &stored);
        Ok(stored)
    }

    /// etcd's request limit; a dry run never reaches etcd.
    fn check_stored_size(&self, info: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
        if self.dry_run {
            return Ok(());
        }
        limits::check_stored_size(info, obj)
    }

    /// The NamespaceLifecycle admission plugin.
    fn admit_into_namespace(
        &self,
        key: &ResourceKey,
        name: &str,
        ns: &str,
    ) -> Result<(), ApiError> {
        match self.get(&namespaces_key(), "", ns) {
            None => Err(ApiError::not_found(&namespaces_key(), ns)),
            Some(namespace) if meta::is_deleting(namespace) => {
                Err(ApiError::namespace_terminating(key, name, ns))
            }
            Some(_) => Ok(()),
        }
    }

    fn generate_name(&mut self, key: &ResourceKey, ns: &str, prefix: &str) -> String {
        loop {
            self.ids += 1;
            let name = format!("{prefix}{}", meta::name_suffix(self.ids));
            if self.get(key, ns, &name).is_none() {
                return name;
            }
        }
    }

    /// Replaces a stored object (found by `new`'s namespace and name), keeping the fields only
    /// the server sets. A set `metadata.resourceVersion` is a precondition.
    pub fn update(
        &mut self,
        info: &ResourceInfo,
        new: Value,
        policy: StatusPolicy,
    ) -> Result<Value, ApiError> {
        let key = info.key();
        let ns = if info.namespaced {
            meta::namespace(&new)
        } else {
            ""
        }
        .to_string();
        let name = meta::name(&new).to_string();
        let old = self
            .get(&key, &ns, &name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(&key, &name))?;
        let precondition = meta::resource_version(&new);
        if !precondition.is_empty() && precondition != meta::resource_version(&old) {
            return Err(ApiError::conflict(&key, &name));
        }

        let mut obj = match policy {
            StatusPolicy::Whole => new,
            StatusPolicy::KeepStatus => with_status(new, old.get("status")),
            StatusPolicy::OnlyStatus => with_status(old.clone(), new.get("status")),
        };
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
        ] {
            match old["metadata"].get(field) {
                Some(value) => meta::set(&mut obj, field, value.clone()),
                None => meta::remove(&mut obj, field),
            }
        }
        obj["apiVersion"] = old["apiVersion"].clone();
        obj["kind"] = old["kind"].clone();
        if strategy::spec_changed(info, &old, &obj) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            meta::set(&mut obj, "generation", generation);
        }
        // etcd is not written when nothing changed: no new resourceVersion, no event.
        if obj == old {
            return Ok(old);
        }
        self.check_stored_size(info, &obj)?;
        let stored = self.write(&key, obj, Some(old));
        self.after_write(info, &stored);
        Ok(self.collect_if_done(&key, &ns, &name).unwrap_or(stored))
    }

    /// Deletes an object; one with finalizers is only marked and stays until they are removed.
    pub fn delete(&mut self, key: &ResourceKey, ns: &str, name: &str) -> Result<Value, ApiError> {
        let current = self
            .get(key, ns, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(key, name))?;
        if *key == namespaces_key() {
            // NamespaceLifecycle admits (or refuses) the deletion once the object is found.
            limits::check_namespace_deletion(key, name)?;
            return Ok(self.delete_namespace(current));
        }
        if !meta::finalizers_pending(&current) {
            return self
                .remove(key, ns, name)
                .ok_or_else(|| ApiError::not_found(key, name));
        }
        if meta::is_deleting(&current) {
            return Ok(current);
        }
        let mut marked = current.clone();
        meta::set(&mut marked, "deletionTimestamp", meta::now());
        meta::set(&mut marked, "deletionGracePeriodSeconds", 0);
        Ok(self.write(key, marked, Some(current)))
    }

    /// Deletes every match, returning what was deleted (or marked for deletion).
    pub fn delete_collection(
        &mut self,
        key: &ResourceKey,
        ns: Option<&str>,
        selectors: &Selectors,
    ) -> Vec<Value> {
        let targets: Vec<(String, String)> = self
            .list(key, ns, selectors)
            .iter()
            .map(|obj| {
                (
                    meta::namespace(obj).to_string(),
                    meta::name(obj).to_string(),
                )
            })
            .collect();
        targets
            .into_iter()
            .filter_map(|(ns, name)| self.delete(key, &ns, &name).ok())
            .collect()
    }

    /// Marks the namespace Terminating, then does the namespace controller's work at once:
    /// deletes everything inside and removes the namespace when nothing is left.
    fn delete_namespace(&mut self, current: Value) -> Value {
        let key = namespaces_key();
        let name = meta::name(&current).to_string();
        let mut latest = current.clone();
        if !meta::is_deleting(&current) {
            let mut marked = current.clone();
            meta::set(&mut marked, "deletionTimestamp", meta::now());
            marked["status"] = json!({"phase": "Terminating"});
            latest = self.write(&key, marked, Some(current));
        }
        let contents: Vec<(ResourceKey, String)> = self
            .objects
            .iter()
            .flat_map(|(resource, objects)| {
                objects
                    .keys()
                    .filter(|(ns, _)| *ns == name)
                    .map(|(_, obj)| (resource.clone(), obj.clone()))
            })
            .collect();
        for (resource, obj) in contents {
            // Already gone when an earlier deletion cascaded to it.
            let _ = self.delete(&resource, &name, &obj);
        }
        self.finish_namespace(&name);
        if self.dry_run {
            return latest;
        }
        self.get(&key, "", &name).cloned().unwrap_or(latest)
    }

    /// Removes a Terminating namespace once it is empty and has no finalizers left.
    fn finish_namespace(&mut self, name: &str) -> Option<Value> {
        let key = namespaces_key();
        let namespace = self.get(&key, "", name)?;
        if !meta::is_deleting(namespace) || meta::finalizers_pending(namespace) {
            return None;
        }
        let occupied = self
            .objects
            .values()
            .any(|objects| objects.keys().any(|(ns, _)| ns == name));
        if occupied {
            return None;
        }
        self.remove(&key, "", name)
    }

    /// Finishes a deletion that was waiting for finalizers, once they are gone.
    fn collect_if_done(&mut self, key: &ResourceKey, ns: &str, name: &str) -> Option<Value> {
        if *key == namespaces_key() {
            return self.finish_namespace(name);
        }
        let obj = self.get(key, ns, name)?;
        if meta::is_deleting(obj) && !meta::finalizers_pending(obj) {
            self.remove(key, ns, name)
        } else {
            None
        }
    }

    /// Removes an object for good, then does what the controllers watching for that do.
    fn remove(&mut self, key: &ResourceKey, ns: &str, name: &str) -> Option<Value> {
        if self.dry_run {
            return self.get(key, ns, name).cloned();
        }
        let mut obj = self
            .objects
            .get_mut(key)?
            .remove(&(ns.to_string(), name.to_string()))?;
        let rv = self.next_rv();
        meta::set(&mut obj, "resourceVersion", rv.to_string());
        self.record(rv, key, EventKind::Deleted, obj.clone(), None);
        if *key == ResourceKey::new(CRDS.0, CRDS.1) {
            self.remove_crd(&obj);
        }
        if !ns.is_empty() {
            self.finish_namespace(ns);
        }
        Some(obj)
    }

    /// The CRD cleanup controller: a deleted CRD takes its custom resources with it.
    fn remove_crd(&mut self, crd: &Value) {
        let (key, _) = resources::crd_resources(crd);
        self.registry.set_crd(&key, Vec::new());
        let names: Vec<ObjectKey> = self
            .objects
            .get(&key)
            .map(|objects| objects.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in names {
            self.remove(&key, &ns, &name);
        }
    }

    /// Every object (CRDs first), the resourceVersion and the id counter: what
    /// [`Store::restore`] needs to serve the same objects again.
    pub fn snapshot(&self) -> Value {
        let crds = ResourceKey::new(CRDS.0, CRDS.1);
        let mut objects: Vec<&Value> = self
            .objects
            .get(&crds)
            .into_iter()
            .flatten()
            .map(|(_, o)| o)
            .collect();
        for (key, of_key) in &self.objects {
            if *key != crds {
                objects.extend(of_key.values());
            }
        }
        json!({"resourceVersion": self.rv, "ids": self.ids, "objects": objects})
    }

    /// Puts a [`Store::snapshot`]'s objects back as they were (uids, resourceVersions,
    /// timestamps), learning the kinds of CRDs and generic resources. The history starts
    /// empty: watches from before the snapshot get 410 Gone and relist, as after a compaction.
    pub fn restore(&mut self, snapshot: &Value) -> Result<(), ApiError> {
        let number = |field: &str| snapshot[field].as_u64().unwrap_or(0);
        for obj in snapshot["objects"].as_array().into_iter().flatten() {
            let (api_version, kind) = super::type_of(obj)?;
            let namespaced = !meta::namespace(obj).is_empty();
            let info = self.resolve_kind(&api_version, &kind, namespaced);
            let object_key = (
                meta::namespace(obj).to_string(),
                meta::name(obj).to_string(),
            );
            self.objects
                .entry(info.key())
                .or_default()
                .insert(object_key, obj.clone());
            self.after_write(&info, obj);
        }
        self.rv = self.rv.max(number("resourceVersion"));
        self.ids = self.ids.max(number("ids"));
        self.compacted = self.rv;
        self.history.clear();
        self.rv_notify.send_replace(self.rv);
        Ok(())
    }

    fn after_write(&mut self, info: &ResourceInfo, stored: &Value) {
        if info.is(CRDS.0, CRDS.1) && !self.dry_run {
            let (key, infos) = resources::crd_resources(stored);
            self.registry.set_crd(&key, infos);
        }
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Stores `obj` under a new resourceVersion and records the change.
    fn write(&mut self, key: &ResourceKey, mut obj: Value, old: Option<Value>) -> Value {
        if self.dry_run {
            return obj;
        }
        let rv = self.next_rv();
        meta::set(&mut obj, "resourceVersion", rv.to_string());
        let object_key = (
            meta::namespace(&obj).to_string(),
            meta::name(&obj).to_string(),
        );
        self.objects
            .entry(key.clone())
            .or_default()
            .insert(object_key, obj.clone());
        let kind = if old.is_some() {
            EventKind::Modified
        } else {
            EventKind::Added
        };
        self.record(rv, key, kind, obj.clone(), old);
        obj
    }

    fn record(
        &mut self,
        rv: u64,
        key: &ResourceKey,
        kind: EventKind,
        object: Value,
        old: Option<Value>,
    ) {
        // Nobody subscribed is not an error.
        let _ = self.events.send(WatchEvent {
            kind,
            object: object.clone(),
        });
        self.history.push_back(Change {
            rv,
            resource: key.clone(),
            kind,
            object,
            old,
        });
        while self.history.len() > HISTORY_LIMIT {
            if let Some(evicted) = self.history.pop_front() {
                self.compacted = evicted.rv;
            }
        }
        self.rv_notify.send_replace(rv);
    }

    /// Changes after `rv`, oldest first; 410 when some of them were already evicted.
    pub fn changes_after(&self, rv: u64) -> Result<impl Iterator<Item = &Change>, ApiError> {
        if rv < self.compacted {
            return Err(ApiError::expired(rv, self.compacted + 1));
        }
        let start = self.history.partition_point(|c| c.rv <= rv);
        Ok(self.history.range(start..))
    }
}

/// `obj` with `.status` set to `status`, or without one.
fn with_status(mut obj: Value, status: Option<&Value>) -> Value {
    if let Some(map) = obj.as_object_mut() {
        match status {
            Some(status) => map.insert("status".into(), status.clone()),
            None => map.remove("status"),
        };
    }
    obj
}
