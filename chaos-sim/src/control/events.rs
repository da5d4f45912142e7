//! Events, as the real components record them: a core/v1 `Event` about one object, written by
//! the component that saw it happen. Only what the sim really does gets an event (a pod
//! scheduled, created or deleted, a ReplicaSet scaled, a node gone NotReady or Ready again);
//! nothing about containers, which the sim does not run.
//!
//! The shape is client-go's recorder's (`tools/record/event.go`, `makeEvent`): named
//! `<object>.<unix nanos in hex>`, in the object's namespace or `default` for a cluster-scoped
//! object such as a Node, `count` 1, `firstTimestamp` = `lastTimestamp` = now. The recorder
//! aggregates repeats into `count`; the sim writes each occurrence, which `kubectl get events`
//! lists the same way.

use serde_json::{Value, json};

use super::meta;
use crate::ApiServer;

/// `Normal` or `Warning`, as `v1.EventTypeNormal` / `v1.EventTypeWarning`.
#[derive(Clone, Copy)]
pub(super) enum Type {
    Normal,
    Warning,
}

/// Who records: the component name real clusters show in `SOURCE`/`reportingComponent`.
pub(super) const SCHEDULER: &str = "default-scheduler";
pub(super) const REPLICA_SET_CONTROLLER: &str = "replicaset-controller";
pub(super) const DEPLOYMENT_CONTROLLER: &str = "deployment-controller";
pub(super) const NODE_CONTROLLER: &str = "node-controller";
pub(super) const KUBELET: &str = "kubelet";

/// Records an event about `object`. A failure (the namespace is terminating, a name taken in
/// the same nanosecond) is dropped, as the recorder drops what it cannot write.
pub(super) fn record(
    server: &ApiServer,
    object: &Value,
    type_: Type,
    reason: &str,
    message: String,
    component: &str,
    host: Option<&str>,
) {
    let _ = server.create(event(object, type_, reason, message, component, host));
}

fn event(
    object: &Value,
    type_: Type,
    reason: &str,
    message: String,
    component: &str,
    host: Option<&str>,
) -> Value {
    let name = meta::name(object);
    let namespace = match meta::namespace(object) {
        "" => "default",
        ns => ns,
    };
    let nanos = k8s_openapi::jiff::Timestamp::now().as_nanosecond();
    let now = meta::now();
    let mut source = json!({"component": component});
    if let Some(host) = host {
        source["host"] = host.into();
    }
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{nanos:x}"), "namespace": namespace},
        "involvedObject": {
            "apiVersion": object["apiVersion"],
            "kind": object["kind"],
            "name": name,
            "namespace": meta::namespace(object),
            "uid": object["metadata"]["uid"],
            "resourceVersion": object["metadata"]["resourceVersion"],
        },
        "reason": reason,
        "message": message,
        "source": source,
        "type": match type_ {
            Type::Normal => "Normal",
            Type::Warning => "Warning",
        },
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "reportingComponent": component,
        "reportingInstance": host.unwrap_or(component),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_event_goes_to_default_and_names_its_node() {
        let node = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "n1", "uid": "u1", "resourceVersion": "7"}});
        let e = event(
            &node,
            Type::Normal,
            "NodeNotReady",
            "Node n1 status is now: NodeNotReady".into(),
            NODE_CONTROLLER,
            None,
        );
        assert_eq!(e["metadata"]["namespace"], "default");
        assert!(
            e["metadata"]["name"].as_str().unwrap().starts_with("n1."),
            "{e}"
        );
        assert_eq!(e["involvedObject"]["kind"], "Node");
        assert_eq!(e["involvedObject"]["namespace"], "");
        assert_eq!(e["source"]["component"], "node-controller");
        assert_eq!(e["count"], 1);
    }
}

#[cfg(test)]
mod stored {
    use super::*;

    #[test]
    fn an_event_is_stored() {
        let server = ApiServer::new("v1.31.0");
        let node = server
            .create(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}))
            .unwrap();
        let e = event(&node, Type::Normal, "R", "m".into(), KUBELET, None);
        server.create(e).unwrap();
        assert_eq!(server.list("v1", "Event", Some("default")).len(), 1);
    }
}
