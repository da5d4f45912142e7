//! Per-kind behaviour of the apiserver's registry strategies: defaults and status resets on
//! create, and what counts as a spec change. A simulated control plane's kinds get their
//! create-time behaviour here.

use serde_json::{Value, json};

use super::meta::{self, NameRule};
use super::resources::{CRDS, NAMESPACES, ResourceInfo};

pub(crate) fn name_rule(info: &ResourceInfo) -> NameRule {
    match (info.group.as_str(), info.plural.as_str()) {
        NAMESPACES => NameRule::Label,
        ("", "services") => NameRule::Dns1035,
        _ => NameRule::Subdomain,
    }
}

/// What the apiserver does to a new object before storing it.
pub(crate) fn prepare_for_create(info: &ResourceInfo, obj: &mut Value) {
    match (info.group.as_str(), info.plural.as_str()) {
        NAMESPACES => {
            obj["status"] = json!({"phase": "Active"});
            if obj["spec"].is_null() {
                obj["spec"] = json!({});
            }
            if obj["spec"].is_object() && obj["spec"]["finalizers"].is_null() {
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
            }
        }
        // No scheduler or kubelet has seen it yet.
        ("", "pods") => obj["status"] = json!({"phase": "Pending"}),
        // The kubelet registers its node with a status.
        ("", "nodes") => {}
        // The CRD controllers accept names and establish the CRD at once.
        CRDS => obj["status"] = crd_established(obj),
        _ if info.has_status => {
            if let Some(map) = obj.as_object_mut() {
                map.remove("status");
            }
        }
        _ => {}
    }
    if matches!(
        (info.group.as_str(), info.plural.as_str()),
        ("apps", "deployments" | "replicasets" | "statefulsets")
    ) && obj["spec"].is_object()
        && obj["spec"]["replicas"].is_null()
    {
        obj["spec"]["replicas"] = json!(1);
    }
}

fn crd_established(crd: &Value) -> Value {
    let now = meta::now();
    let stored: Vec<&Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .map(|v| &v["name"])
        .collect();
    json!({
        "acceptedNames": crd["spec"]["names"],
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
    })
}

/// Whether `metadata.generation` must move: anything but metadata changed, and for kinds
/// with a status subresource, anything but metadata and status.
pub(crate) fn spec_changed(info: &ResourceInfo, old: &Value, new: &Value) -> bool {
    let view = |obj: &Value| {
        let mut obj = obj.clone();
        if let Some(map) = obj.as_object_mut() {
            map.remove("metadata");
            if info.has_status {
                map.remove("status");
            }
        }
        obj
    };
    view(old) != view(new)
}
