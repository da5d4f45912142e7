//! Server-side apply of manifests, through a real `kube::Client` on the sim's API.

use chaos_runtime::apply::{apply_object, apply_yaml};
use chaos_sim::ApiServer;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};

async fn cluster_with_namespace(namespace: &str) -> Client {
    let client = ApiServer::new("v1.35.8").client();
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    client
}

const MANIFEST: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: other
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
---
# An empty document is skipped.
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: elsewhere
  namespace: other
data: {}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "registry.k8s.io/pause:3.10"}]
"#;

#[tokio::test]
async fn a_multi_document_manifest_lands_in_the_test_namespace_unless_a_document_names_another() {
    let client = cluster_with_namespace("test-ns").await;
    let applied = apply_yaml(&client, "test-ns", MANIFEST).await.unwrap();
    let names: Vec<(Option<String>, String)> = applied
        .iter()
        .map(|o| (o.namespace(), o.name_any()))
        .collect();
    assert_eq!(
        names,
        [
            (None, "other".to_owned()),
            (Some("test-ns".to_owned()), "settings".to_owned()),
            (Some("other".to_owned()), "elsewhere".to_owned()),
            (Some("test-ns".to_owned()), "web".to_owned()),
        ]
    );
    let settings = Api::<ConfigMap>::namespaced(client.clone(), "test-ns")
        .get("settings")
        .await
        .unwrap();
    assert_eq!(settings.data.unwrap()["mode"], "fast");
    let web = Api::<Deployment>::namespaced(client.clone(), "test-ns")
        .get("web")
        .await
        .unwrap();
    assert_eq!(web.spec.unwrap().replicas, Some(2));
    Api::<ConfigMap>::namespaced(client, "other")
        .get("elsewhere")
        .await
        .unwrap();
}

#[tokio::test]
async fn applying_again_updates_in_place() {
    let client = cluster_with_namespace("t").await;
    apply_yaml(
        &client,
        "t",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '1'}\n",
    )
    .await
    .unwrap();
    apply_yaml(
        &client,
        "t",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: '2'}\n",
    )
    .await
    .unwrap();
    let c = Api::<ConfigMap>::namespaced(client, "t")
        .get("c")
        .await
        .unwrap();
    assert_eq!(c.data.unwrap()["a"], "2");
}

#[tokio::test]
async fn a_typed_object_is_applied_and_read_back() {
    let client = cluster_with_namespace("t").await;
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("typed".into()),
            ..Default::default()
        },
        data: Some([("k".to_owned(), "v".to_owned())].into()),
        ..Default::default()
    };
    let stored = apply_object(&client, "t", &cm).await.unwrap();
    assert_eq!(stored.metadata.namespace.as_deref(), Some("t"));
    assert!(
        stored.metadata.resource_version.is_some(),
        "read back as stored"
    );
}

#[tokio::test]
async fn errors_name_the_document_and_the_problem() {
    let client = cluster_with_namespace("t").await;
    let error = |yaml: &'static str| {
        let client = client.clone();
        async move { format!("{:#}", apply_yaml(&client, "t", yaml).await.unwrap_err()) }
    };
    let bad_yaml = error("apiVersion: v1\nkind: [unclosed\n").await;
    assert!(
        bad_yaml.contains("the manifest is not valid YAML"),
        "{bad_yaml}"
    );
    let unknown = error("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: example.com/v9\nkind: Gizmo\nmetadata: {name: g}\n").await;
    assert!(
        unknown.starts_with(
            "document 2 of the manifest: the cluster does not serve example.com/v9 Gizmo"
        ),
        "{unknown}"
    );
    let nameless = error("apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\n").await;
    assert!(
        nameless.contains("v1 ConfigMap has no metadata.name"),
        "{nameless}"
    );
    let untyped = error("metadata: {name: x}\n").await;
    assert!(untyped.contains("no apiVersion and kind"), "{untyped}");
}

fn config_maps(count: usize) -> String {
    (0..count)
        .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}}}\n"))
        .collect::<Vec<_>>()
        .join("---\n")
}

#[tokio::test]
async fn more_than_1024_documents_are_applied_and_a_manifest_over_the_cap_is_refused_saying_so() {
    let client = cluster_with_namespace("test-ns").await;
    let config_maps_api = Api::<ConfigMap>::namespaced(client.clone(), "test-ns");

    // serde-saphyr's default cap (1,024) once made this "not valid YAML".
    let applied = apply_yaml(&client, "test-ns", &config_maps(1_025))
        .await
        .unwrap();
    assert_eq!(applied.len(), 1_025);
    config_maps_api.get("cm-1024").await.unwrap();

    let message = format!(
        "{:#}",
        apply_yaml(&client, "test-ns", &config_maps(10_001))
            .await
            .unwrap_err()
    );
    assert!(
        message.contains("has 10001 YAML documents, more than the 10000")
            && message.contains("split it into several manifests")
            && !message.contains("not valid YAML")
            && !message.contains('\n'),
        "{message}"
    );
    // Refused before anything was applied.
    let err = config_maps_api.get("cm-10000").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 404));
}
