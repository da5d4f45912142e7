//! A snapshot restored in a new server serves the same objects, and new writes go on from it.

use chaos_sim::ApiServer;
use serde_json::json;

#[test]
fn restore_serves_the_snapshots_objects_and_continues_from_it() {
    let server = ApiServer::new("v1.31.4");
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true}]},
    });
    server.create(crd).unwrap();
    let cm = server
        .create(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "kube-system"}, "data": {"k": "v"}}))
        .unwrap();
    server
        .create(json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default"}}))
        .unwrap();

    let snapshot = server.snapshot();
    // Through JSON text, as the stand-in writes it to disk.
    let snapshot: serde_json::Value = serde_json::from_str(&snapshot.to_string()).unwrap();
    let restored = ApiServer::restore("v1.31.4", &snapshot).unwrap();

    let again = restored
        .get("v1", "ConfigMap", Some("kube-system"), "a")
        .unwrap();
    assert_eq!(again, cm, "same object, uid and resourceVersion");
    assert!(
        restored
            .get("example.com/v1", "Widget", Some("default"), "w")
            .is_some()
    );
    assert!(
        restored
            .get("v1", "Namespace", None, "kube-node-lease")
            .is_some()
    );

    let next = restored
        .create(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "b", "namespace": "kube-system"}}))
        .unwrap();
    let rv = |o: &serde_json::Value| {
        o["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(
        rv(&next) > rv(&cm),
        "resourceVersions go on from the snapshot's"
    );
    assert_ne!(
        next["metadata"]["uid"], cm["metadata"]["uid"],
        "ids go on too"
    );
}
