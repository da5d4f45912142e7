//! The Deployment controller: one ReplicaSet per pod template (`<deployment>-<hash>`, with the
//! `pod-template-hash` label), rolled simply: the new ReplicaSet gets every replica at once,
//! the old ones are scaled to zero once the new one is fully ready. No maxSurge arithmetic,
//! no pausing, no progress deadline; Recreate rolls the same way.

use serde_json::{Map, Value, json};

use super::{
    Controller, DEPLOYMENT, REPLICA_SET, WatchEvent, condition, controlled_by, controller_of,
    events, is, list, meta, modify, set_condition,
};
use crate::ApiServer;

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

pub(super) struct Deployments {
    server: ApiServer,
}

impl Deployments {
    pub fn new(server: &ApiServer) -> Self {
        Self {
            server: server.clone(),
        }
    }

    fn replica_sets_of(&self, deployment: &Value) -> Vec<Value> {
        list(&self.server, REPLICA_SET, Some(meta::namespace(deployment)))
            .into_iter()
            .filter(|rs| controlled_by(rs, deployment))
            .collect()
    }

    fn sync(&self, ns: &str, name: &str) {
        let Some(deployment) = super::get(&self.server, DEPLOYMENT, ns, name) else {
            return;
        };
        if meta::is_deleting(&deployment) {
            return;
        }
        let desired = replicas(&deployment["spec"]);
        let hash = template_hash(&deployment["spec"]["template"]);
        let owned = self.replica_sets_of(&deployment);
        let top_revision = owned.iter().map(revision).max().unwrap_or(0);
        let (new, created) = match owned.iter().find(|rs| hash_of(rs) == hash) {
            Some(rs) => {
                // Rolling back to an old template makes its ReplicaSet the newest revision.
                let revision = if revision(rs) < top_revision {
                    top_revision + 1
                } else {
                    revision(rs)
                };
                self.scale(&deployment, rs, desired, Some(revision));
                (meta::name(rs).to_string(), false)
            }
            None => {
                let rs = new_replica_set(&deployment, &hash, desired, top_revision + 1);
                match self.server.create(rs) {
                    Ok(rs) => {
                        // `getNewReplicaSet` (`pkg/controller/deployment/sync.go`): only a new
                        // ReplicaSet with replicas gets "Scaled up replica set %s from 0 to %d".
                        if desired > 0 {
                            let message = format!(
                                "Scaled up replica set {} from 0 to {desired}",
                                meta::name(&rs)
                            );
                            self.record(&deployment, message);
                        }
                        (meta::name(&rs).to_string(), true)
                    }
                    // A name collision with a ReplicaSet it does not own: nothing to do here.
                    Err(_) => return,
                }
            }
        };
        let owned = self.replica_sets_of(&deployment);
        let new_rs = owned.iter().find(|rs| meta::name(rs) == new);
        let new_ready = new_rs.map_or(0, |rs| count(rs, "readyReplicas"));
        if new_ready >= desired {
            for old in owned.iter().filter(|rs| meta::name(rs) != new) {
                self.scale(&deployment, old, 0, None);
            }
        }
        self.update_status(&deployment, &new, created);
    }

    /// Sets a ReplicaSet's replicas (and revision). A change of replicas is recorded as
    /// `scaleReplicaSet` does (`pkg/controller/deployment/sync.go`): `ScalingReplicaSet`
    /// "Scaled %s replica set %s from %d to %d", on the Deployment.
    fn scale(
        &self,
        deployment: &Value,
        rs: &Value,
        replicas_wanted: u64,
        revision_wanted: Option<u64>,
    ) {
        let uid = rs["metadata"]["uid"].clone();
        let mut scaled = None;
        let written = modify(
            &self.server,
            REPLICA_SET,
            meta::namespace(rs),
            meta::name(rs),
            |rs| {
                scaled = None;
                let revision_ok = revision_wanted.is_none_or(|r| revision(rs) == r);
                if rs["metadata"]["uid"] != uid
                    || (replicas(&rs["spec"]) == replicas_wanted && revision_ok)
                {
                    return false;
                }
                let from = replicas(&rs["spec"]);
                scaled = (from != replicas_wanted).then_some(from);
                rs["spec"]["replicas"] = replicas_wanted.into();
                if let Some(r) = revision_wanted {
                    set_annotation(rs, REVISION, r.to_string());
                }
                true
            },
        )
        .is_some();
        if let Some(from) = scaled.filter(|_| written) {
            let direction = if replicas_wanted > from { "up" } else { "down" };
            let message = format!(
                "Scaled {direction} replica set {} from {from} to {replicas_wanted}",
                meta::name(rs)
            );
            self.record(deployment, message);
        }
    }

    fn record(&self, deployment: &Value, message: String) {
        events::record(
            &self.server,
            deployment,
            events::Type::Normal,
            "ScalingReplicaSet",
            message,
            events::DEPLOYMENT_CONTROLLER,
            None,
        );
    }

    fn update_status(&self, deployment: &Value, new: &str, created: bool) {
        let owned = self.replica_sets_of(deployment);
        let sum = |field: &str| owned.iter().map(|rs| count(rs, field)).sum::<u64>();
        let desired = replicas(&deployment["spec"]);
        let new_rs = owned.iter().find(|rs| meta::name(rs) == new);
        let (replicas_now, available) = (sum("replicas"), sum("availableReplicas"));
        let updated = new_rs.map_or(0, |rs| count(rs, "replicas"));
        let total_wanted: u64 = owned.iter().map(|rs| replicas(&rs["spec"])).sum();
        let mut status = json!({
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas_now,
            "updatedReplicas": updated,
            "readyReplicas": sum("readyReplicas"),
            "availableReplicas": available,
            "unavailableReplicas": total_wanted.saturating_sub(available),
        });
        // The real status omits zero counts.
        if let Some(map) = status.as_object_mut() {
            map.retain(|_, v| v != 0);
        }
        let complete = updated == desired && replicas_now == desired && available == desired;
        let progressing = if complete {
            Some((
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{new}\" has successfully progressed."),
            ))
        } else if created {
            Some((
                "NewReplicaSetCreated",
                format!("Created new replica set \"{new}\""),
            ))
        } else if counts_moved(&deployment["status"], &status) {
            Some((
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{new}\" is progressing."),
            ))
        } else {
            None
        };
        let available_ok = available + max_unavailable(deployment) >= desired;
        let uid = deployment["metadata"]["uid"].clone();
        let revision = new_rs.map(revision).unwrap_or(0).to_string();
        let ns = meta::namespace(deployment);
        modify(&self.server, DEPLOYMENT, ns, meta::name(deployment), |d| {
            if d["metadata"]["uid"] != uid {
                return false;
            }
            let before = d.clone();
            let conditions = d["status"]["conditions"].clone();
            d["status"] = status.clone();
            if !conditions.is_null() {
                d["status"]["conditions"] = conditions;
            }
            let (status, reason, message) = if available_ok {
                (
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                )
            } else {
                (
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                )
            };
            set_deployment_condition(d, "Available", status, reason, message);
            if let Some((reason, message)) = &progressing {
                set_deployment_condition(d, "Progressing", "True", reason, message);
            }
            set_annotation(d, REVISION, revision.clone());
            *d != before
        });
    }
}

/// Deployment conditions also carry `lastUpdateTime`, moved whenever anything in them changes.
fn set_deployment_condition(d: &mut Value, type_: &str, status: &str, reason: &str, message: &str) {
    let unchanged = condition(d, type_)
        .is_some_and(|c| c["status"] == status && c["reason"] == reason && c["message"] == message);
    if !unchanged {
        set_condition(
            d,
            json!({"type": type_, "status": status, "reason": reason,
                                "message": message, "lastUpdateTime": meta::now()}),
        );
    }
}

/// Whether any count moved since the last status: the rollout is making progress.
fn counts_moved(old: &Value, new: &Value) -> bool {
    [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
    ]
    .iter()
    .any(|f| old[f].as_u64().unwrap_or(0) != new[f].as_u64().unwrap_or(0))
}

fn new_replica_set(deployment: &Value, hash: &str, replicas: u64, revision: u64) -> Value {
    let mut template = deployment["spec"]["template"].clone();
    template["metadata"]["labels"][HASH_LABEL] = hash.into();
    let mut selector = deployment["spec"]["selector"].clone();
    selector["matchLabels"][HASH_LABEL] = hash.into();
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{hash}", meta::name(deployment)),
            "namespace": meta::namespace(deployment),
            "labels": template["metadata"]["labels"],
            "annotations": {REVISION: revision.to_string()},
            "ownerReferences": [super::owner_reference(deployment)],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    })
}

fn set_annotation(obj: &mut Value, key: &str, value: String) {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = Value::Object(Map::new());
    }
    obj["metadata"]["annotations"][key] = value.into();
}

fn replicas(spec: &Value) -> u64 {
    spec["replicas"].as_u64().unwrap_or(1)
}

fn count(rs: &Value, field: &str) -> u64 {
    rs["status"][field].as_u64().unwrap_or(0)
}

fn revision(rs: &Value) -> u64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn hash_of(rs: &Value) -> &str {
    rs["metadata"]["labels"][HASH_LABEL]
        .as_str()
        .unwrap_or_default()
}

/// `maxUnavailable` of a RollingUpdate (default 25%, rounded down; 1 when both it and
/// maxSurge come to 0); 0 for Recreate.
fn max_unavailable(deployment: &Value) -> u64 {
    let spec = &deployment["spec"];
    let desired = replicas(spec);
    if spec["strategy"]["type"] == "Recreate" || desired == 0 {
        return 0;
    }
    let rolling = &spec["strategy"]["rollingUpdate"];
    let resolve = |value: &Value, default: &str, round_up: bool| match value {
        Value::Number(n) => n.as_u64().unwrap_or(0),
        other => {
            let percent: u64 = other
                .as_str()
                .unwrap_or(default)
                .trim_end_matches('%')
                .parse()
                .unwrap_or(25);
            let scaled = percent * desired;
            if round_up {
                scaled.div_ceil(100)
            } else {
                scaled / 100
            }
        }
    };
    let unavailable = resolve(&rolling["maxUnavailable"], "25%", false);
    let surge = resolve(&rolling["maxSurge"], "25%", true);
    let unavailable = if unavailable == 0 && surge == 0 {
        1
    } else {
        unavailable
    };
    unavailable.min(desired)
}

/// The pod-template-hash: FNV-1a of the template, spelled with the apiserver's safe
/// alphabet as `rand.SafeEncodeString` does (the real hash input is Go's dump of the struct).
fn template_hash(template: &Value) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash: u32 = 0x811c_9dc5;
    for byte in template.to_string().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

impl Controller for Deployments {
    fn resync(&mut self) {
        for d in list(&self.server, DEPLOYMENT, None) {
            self.sync(meta::namespace(&d), meta::name(&d));
        }
    }

    fn on_event(&mut self, event: &WatchEvent) {
        let obj = &event.object;
        if is(event, DEPLOYMENT) {
            self.sync(meta::namespace(obj), meta::name(obj));
        } else if is(event, REPLICA_SET)
            && let Some(owner) = controller_of(obj).filter(|r| r["kind"] == "Deployment")
        {
            self.sync(
                meta::namespace(obj),
                owner["name"].as_str().unwrap_or_default(),
            );
        }
    }
}
