//! The garbage collector, for the ownerReferences this control plane makes: ReplicaSets
//! owned by Deployments, pods owned by ReplicaSets, Leases owned by Nodes. Background
//! propagation: the owner is gone first, then its dependents.

use serde_json::Value;

use super::{Controller, LEASE, POD, REPLICA_SET, WatchEvent, is, meta, uid};
use crate::{ApiServer, EventKind};

const DEPENDENTS: [(&str, &str); 3] = [REPLICA_SET, POD, LEASE];

pub(super) struct GarbageCollector {
    server: ApiServer,
}

impl GarbageCollector {
    pub fn new(server: &ApiServer) -> Self {
        Self {
            server: server.clone(),
        }
    }

    fn owner_exists(&self, dependent: &Value, reference: &Value) -> bool {
        let (api_version, kind, name) = (
            reference["apiVersion"].as_str().unwrap_or_default(),
            reference["kind"].as_str().unwrap_or_default(),
            reference["name"].as_str().unwrap_or_default(),
        );
        // A namespaced dependent's owner is in its namespace; the server ignores the
        // namespace for cluster-scoped owners such as Nodes.
        self.server
            .get(api_version, kind, Some(meta::namespace(dependent)), name)
            .is_some_and(|owner| owner["metadata"]["uid"] == reference["uid"])
    }

    /// Deletes `dependent` when none of its owners exists any more; drops the dangling
    /// references when some still do.
    fn collect(&self, (api_version, kind): (&str, &str), dependent: &Value) {
        let Some(references) = dependent["metadata"]["ownerReferences"].as_array() else {
            return;
        };
        let alive: Vec<Value> = references
            .iter()
            .filter(|r| self.owner_exists(dependent, r))
            .cloned()
            .collect();
        if alive.len() == references.len() {
            return;
        }
        let (ns, name) = (meta::namespace(dependent), meta::name(dependent));
        if alive.is_empty() {
            super::delete_if(&self.server, (api_version, kind), dependent);
        } else {
            let uid = uid(dependent).to_string();
            super::modify(&self.server, (api_version, kind), ns, name, |obj| {
                if super::uid(obj) != uid {
                    return false;
                }
                obj["metadata"]["ownerReferences"] = alive.clone().into();
                true
            });
        }
    }

    /// Dependents that name `owner_uid`, in `namespace` (all for a cluster-scoped owner).
    fn collect_dependents_of(&self, owner_uid: &str, namespace: Option<&str>) {
        for kind in DEPENDENTS {
            for dependent in super::list(&self.server, kind, namespace) {
                let refers = dependent["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner_uid));
                if refers {
                    self.collect(kind, &dependent);
                }
            }
        }
    }
}

impl Controller for GarbageCollector {
    fn resync(&mut self) {
        for kind in DEPENDENTS {
            for dependent in super::list(&self.server, kind, None) {
                self.collect(kind, &dependent);
            }
        }
    }

    fn on_event(&mut self, event: &WatchEvent) {
        // Pods and Leases own nothing here; their deletions are the most frequent.
        if event.kind != EventKind::Deleted || is(event, POD) || is(event, LEASE) {
            return;
        }
        let ns = meta::namespace(&event.object);
        self.collect_dependents_of(uid(&event.object), (!ns.is_empty()).then_some(ns));
    }
}
