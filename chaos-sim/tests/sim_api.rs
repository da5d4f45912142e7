//! The simulated API server, driven through a real `kube::Client`, `kube::Api` and
//! `kube::runtime`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use chaos_sim::{ApiServer, EventKind};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, Preconditions, WatchEvent, WatchParams,
};
use kube::core::{Expression, Selector};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::watcher;
use kube::{Client, Discovery, ResourceExt};
use serde_json::{Value, json};

/// Every wait is bounded, so a bug fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(10);

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn setup() -> (ApiServer, Client) {
    let server = ApiServer::new("v1.29.14");
    let client = server.client();
    (server, client)
}

async fn namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels.iter().copied().collect::<BTreeMap<_, _>>()},
        "data": {"key": "value"},
    }))
    .unwrap()
}

fn pod(name: &str, node: Option<&str>) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}]},
    }))
    .unwrap()
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1"}]},
            },
        },
    }))
    .unwrap()
}

/// The `Status` of a failed call.
fn status(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The names a watcher lists before its `InitDone`.
async fn initial_names<K: ResourceExt>(
    what: &str,
    events: &mut (impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Unpin),
) -> Vec<String> {
    let mut initial = Vec::new();
    loop {
        match within(what, events.try_next()).await.unwrap().unwrap() {
            watcher::Event::Init => {}
            watcher::Event::InitApply(obj) => initial.push(obj.name_any()),
            watcher::Event::InitDone => return initial,
            watcher::Event::Apply(_) | watcher::Event::Delete(_) => {
                panic!("{what}: a change before InitDone")
            }
        }
    }
}

fn names<K: ResourceExt>(items: impl IntoIterator<Item = K>) -> Vec<String> {
    let mut names: Vec<String> = items.into_iter().map(|o| o.name_any()).collect();
    names.sort();
    names
}

async fn list_names(api: &Api<ConfigMap>, lp: &ListParams) -> Vec<String> {
    names(api.list(lp).await.unwrap())
}

#[tokio::test]
async fn config_map_crud() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);

    let created = api
        .create(&PostParams::default(), &config_map("cm", &[]))
        .await
        .unwrap();
    assert_eq!(created.namespace().as_deref(), Some("default"));
    assert!(created.uid().is_some());
    assert!(created.resource_version().is_some());
    assert!(created.creation_timestamp().is_some());
    assert_eq!(created.metadata.generation, Some(1));

    let mut fetched = api.get("cm").await.unwrap();
    assert_eq!(fetched.uid(), created.uid());
    fetched.data = Some([("key".to_string(), "changed".to_string())].into());
    let replaced = api
        .replace("cm", &PostParams::default(), &fetched)
        .await
        .unwrap();
    assert_eq!(replaced.data.unwrap()["key"], "changed");
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );

    let deleted = api.delete("cm", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        deleted.left().map(|cm| cm.name_any()).as_deref(),
        Some("cm")
    );
    assert!(api.get_opt("cm").await.unwrap().is_none());
    assert_eq!(
        status(api.delete("cm", &DeleteParams::default()).await).code,
        404
    );
}

#[tokio::test]
async fn pod_crud_starts_pending() {
    let (_server, client) = setup();
    let api: Api<Pod> = Api::default_namespaced(client);
    let mut new_pod = pod("web", None);
    new_pod.status = Some(serde_json::from_value(json!({"phase": "Running"})).unwrap());

    let created = api.create(&PostParams::default(), &new_pod).await.unwrap();
    // A new pod's status is the apiserver's, whatever the client sent.
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));

    let labelled = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.labels()["tier"], "front");
    assert_eq!(api.get("web").await.unwrap().labels()["tier"], "front");

    api.delete("web", &DeleteParams::default()).await.unwrap();
    assert_eq!(status(api.get("web").await).code, 404);
}

#[tokio::test]
async fn deployment_crud_and_generation() {
    let (_server, client) = setup();
    let api: Api<Deployment> = Api::default_namespaced(client);

    let created = api
        .create(&PostParams::default(), &deployment("app"))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(
        created.spec.as_ref().unwrap().replicas,
        Some(1),
        "defaulted"
    );

    // Labels are metadata: no new generation.
    let labelled = api
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));

    let scaled = api
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
    assert_eq!(scaled.spec.unwrap().replicas, Some(3));

    let listed = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(listed), ["app"]);
    api.delete("app", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("app").await.unwrap().is_none());
}

#[tokio::test]
async fn not_found_is_a_real_status() {
    let (_server, client) = setup();
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let s = status(pods.get("missing").await);
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "pods \"missing\" not found");
    let details = s.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("missing", "pods")
    );

    let deployments: Api<Deployment> = Api::default_namespaced(client);
    let s = status(deployments.get("missing").await);
    assert_eq!(s.message, "deployments.apps \"missing\" not found");
    assert_eq!(s.details.unwrap().group, "apps");
}

#[tokio::test]
async fn already_exists_is_409() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &config_map("twice", &[]))
        .await
        .unwrap();
    let s = status(
        api.create(&PostParams::default(), &config_map("twice", &[]))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(s.message, "configmaps \"twice\" already exists");
}

#[tokio::test]
async fn invalid_objects_are_rejected() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());

    let s = status(
        api.create(&PostParams::default(), &config_map("Not_Valid", &[]))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.message
            .starts_with("ConfigMap \"Not_Valid\" is invalid: metadata.name"),
        "{}",
        s.message
    );
    assert_eq!(s.details.unwrap().causes[0].field, "metadata.name");

    let s = status(
        api.create(&PostParams::default(), &ConfigMap::default())
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));

    // Namespaced creates need the namespace to exist.
    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    let s = status(
        elsewhere
            .create(&PostParams::default(), &config_map("cm", &[]))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "namespaces \"nowhere\" not found");

    // The body's namespace must be the path's.
    let mut other_ns = config_map("cm", &[]);
    other_ns.metadata.namespace = Some("kube-system".into());
    let s = status(api.create(&PostParams::default(), &other_ns).await);
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn generate_name_picks_a_fresh_name() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let mut template = ConfigMap::default();
    template.metadata.generate_name = Some("gen-".into());
    let a = api.create(&PostParams::default(), &template).await.unwrap();
    let b = api.create(&PostParams::default(), &template).await.unwrap();
    assert!(
        a.name_any().starts_with("gen-") && a.name_any().len() == 9,
        "{}",
        a.name_any()
    );
    assert_ne!(a.name_any(), b.name_any());
}

async fn labelled_config_maps(client: &Client) -> Api<ConfigMap> {
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    for (name, labels) in [
        ("prod-web", &[("env", "prod"), ("tier", "web")][..]),
        ("prod-db", &[("env", "prod"), ("tier", "db")][..]),
        ("dev-web", &[("env", "dev"), ("tier", "web")][..]),
        ("bare", &[][..]),
    ] {
        api.create(&PostParams::default(), &config_map(name, labels))
            .await
            .unwrap();
    }
    api
}

#[tokio::test]
async fn label_selector_equality() {
    let (_server, client) = setup();
    let api = labelled_config_maps(&client).await;
    let lp = |s: &str| ListParams::default().labels(s);
    assert_eq!(
        list_names(&api, &lp("env=prod")).await,
        ["prod-db", "prod-web"]
    );
    assert_eq!(
        list_names(&api, &lp("env==prod,tier=web")).await,
        ["prod-web"]
    );
    // `!=` also matches objects without the label.
    assert_eq!(
        list_names(&api, &lp("env!=prod")).await,
        ["bare", "dev-web"]
    );
}

#[tokio::test]
async fn label_selector_set_based() {
    let (_server, client) = setup();
    let api = labelled_config_maps(&client).await;
    // kube form-encodes the spaces as `+`.
    let selector: Selector =
        Expression::In("tier".into(), ["db".into(), "cache".into()].into()).into();
    let lp = ListParams::default().labels_from(&selector);
    assert_eq!(list_names(&api, &lp).await, ["prod-db"]);

    let lp = ListParams::default().labels("env notin (prod),tier in (web, db)");
    assert_eq!(list_names(&api, &lp).await, ["dev-web"]);
}

#[tokio::test]
async fn label_selector_existence() {
    let (_server, client) = setup();
    let api = labelled_config_maps(&client).await;
    let lp = |s: &str| ListParams::default().labels(s);
    assert_eq!(
        list_names(&api, &lp("tier")).await,
        ["dev-web", "prod-db", "prod-web"]
    );
    assert_eq!(list_names(&api, &lp("!tier")).await, ["bare"]);
    let selector: Selector = Expression::DoesNotExist("env".into()).into();
    assert_eq!(
        list_names(&api, &ListParams::default().labels_from(&selector)).await,
        ["bare"]
    );

    let s = status(api.list(&lp("env in (prod")).await);
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn field_selectors() {
    let (_server, client) = setup();
    let api: Api<Pod> = Api::default_namespaced(client);
    for (name, node) in [("a", Some("node-1")), ("b", Some("node-2")), ("c", None)] {
        api.create(&PostParams::default(), &pod(name, node))
            .await
            .unwrap();
    }
    let lp = |s: &str| ListParams::default().fields(s);
    assert_eq!(
        names(api.list(&lp("metadata.name=b")).await.unwrap()),
        ["b"]
    );
    assert_eq!(
        names(api.list(&lp("spec.nodeName=node-1")).await.unwrap()),
        ["a"]
    );
    assert_eq!(
        names(api.list(&lp("spec.nodeName!=node-1")).await.unwrap()),
        ["b", "c"]
    );
    // Unscheduled pods have an empty nodeName.
    assert_eq!(names(api.list(&lp("spec.nodeName=")).await.unwrap()), ["c"]);
    assert_eq!(
        names(
            api.list(&lp("status.phase=Pending,metadata.namespace=default"))
                .await
                .unwrap()
        ),
        ["a", "b", "c"]
    );
}

#[tokio::test]
async fn list_across_namespaces() {
    let (_server, client) = setup();
    namespace(&client, "team-a").await;
    namespace(&client, "team-b").await;
    for ns in ["team-a", "team-b"] {
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        api.create(&PostParams::default(), &pod(&format!("{ns}-pod"), None))
            .await
            .unwrap();
    }
    let all = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(names(all.items.clone()), ["team-a-pod", "team-b-pod"]);
    assert!(all.metadata.resource_version.is_some());
    let one = Api::<Pod>::namespaced(client, "team-a")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(names(one), ["team-a-pod"]);
}

#[tokio::test]
async fn merge_patch() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &config_map("cm", &[]))
        .await
        .unwrap();
    let patched = api
        .patch(
            "cm",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"key": null, "other": "x"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.data.unwrap(),
        [("other".to_string(), "x".to_string())].into()
    );

    let s = status(
        api.patch("missing", &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
    );
    assert_eq!(s.code, 404);
}

#[tokio::test]
async fn server_side_apply_creates_then_updates() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let params = PatchParams::apply("mgr").force();
    let intent = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "applied", "labels": {"a": "1"}},
        "data": {"one": "1"},
    });
    let created = api
        .patch("applied", &params, &Patch::Apply(&intent))
        .await
        .unwrap();
    assert_eq!(created.data.as_ref().unwrap()["one"], "1");
    assert!(created.uid().is_some());

    let update = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "applied"},
        "data": {"two": "2"},
    });
    let updated = api
        .patch("applied", &params, &Patch::Apply(&update))
        .await
        .unwrap();
    let data = updated.data.clone().unwrap();
    assert_eq!((data["one"].as_str(), data["two"].as_str()), ("1", "2"));
    assert_eq!(updated.metadata.uid, created.metadata.uid);
    assert_eq!(updated.labels()["a"], "1");
}

#[tokio::test]
async fn json_patch() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &config_map("cm", &[("x", "1")]))
        .await
        .unwrap();
    let patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/data/key", "value": "patched"},
        {"op": "add", "path": "/metadata/labels/y", "value": "2"},
        {"op": "remove", "path": "/metadata/labels/x"},
    ]))
    .unwrap();
    let patched = api
        .patch("cm", &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["key"], "patched");
    assert_eq!(
        patched.labels(),
        &[("y".to_string(), "2".to_string())].into()
    );

    let failing =
        serde_json::from_value(json!([{"op": "test", "path": "/data/key", "value": "nope"}]))
            .unwrap();
    let s = status(
        api.patch("cm", &PatchParams::default(), &Patch::Json::<()>(failing))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
}

#[tokio::test]
async fn replace_with_stale_resource_version_conflicts() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let original = api
        .create(&PostParams::default(), &config_map("cm", &[]))
        .await
        .unwrap();
    let mut first = original.clone();
    first.data = Some([("key".to_string(), "first".to_string())].into());
    api.replace("cm", &PostParams::default(), &first)
        .await
        .unwrap();

    let mut stale = original;
    stale.data = Some([("key".to_string(), "stale".to_string())].into());
    let s = status(api.replace("cm", &PostParams::default(), &stale).await);
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert!(
        s.message.contains("the object has been modified"),
        "{}",
        s.message
    );
    assert_eq!(api.get("cm").await.unwrap().data.unwrap()["key"], "first");

    let s = status(
        api.replace("other", &PostParams::default(), &config_map("other", &[]))
            .await,
    );
    assert_eq!(s.code, 404);

    // Delete preconditions are checked the same way.
    let stale_delete = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: stale.metadata.resource_version.clone(),
            uid: None,
        }),
        ..Default::default()
    };
    let s = status(api.delete("cm", &stale_delete).await);
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert!(api.get_opt("cm").await.unwrap().is_some());
}

#[tokio::test]
async fn status_subresource_is_split_from_the_main_resource() {
    let (_server, client) = setup();
    let api: Api<Pod> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &pod("p", None))
        .await
        .unwrap();

    // A status write cannot touch the spec...
    let after_status = api
        .patch_status(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"nodeName": "sneaky"}, "status": {"phase": "Running"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        after_status.status.unwrap().phase.as_deref(),
        Some("Running")
    );
    assert_eq!(after_status.spec.unwrap().node_name, None);

    // ...and a main-resource write cannot touch the status.
    let after_main = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"l": "v"}}, "status": {"phase": "Failed"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        after_main.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );
    assert_eq!(after_main.labels()["l"], "v");

    let mut replaced = api.get_status("p").await.unwrap();
    replaced.status.as_mut().unwrap().phase = Some("Succeeded".into());
    let replaced = api
        .replace_status("p", &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(replaced.status.unwrap().phase.as_deref(), Some("Succeeded"));

    // Kinds without a status subresource have no /status.
    let cms: Api<ConfigMap> = Api::default_namespaced(api.into_client());
    cms.create(&PostParams::default(), &config_map("cm", &[]))
        .await
        .unwrap();
    let s = status(
        cms.patch_status("cm", &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
    );
    assert_eq!(s.code, 404);
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_objects() {
    let (server, client) = setup();
    namespace(&client, "doomed").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "doomed");
    cms.create(&PostParams::default(), &config_map("cm", &[]))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("p", None))
        .await
        .unwrap();
    let mut events = server.subscribe();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();

    assert!(namespaces.get_opt("doomed").await.unwrap().is_none());
    assert!(
        cms.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let mut deleted = Vec::new();
    while let Ok(event) = events.try_recv() {
        if event.kind == EventKind::Deleted {
            deleted.push(event.object["kind"].as_str().unwrap().to_string());
        }
    }
    deleted.sort();
    assert_eq!(deleted, ["ConfigMap", "Namespace", "Pod"]);
    assert!(
        Api::<Namespace>::all(client)
            .get_opt("default")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn finalizers_hold_objects_and_namespaces() {
    let (_server, client) = setup();
    namespace(&client, "held").await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "held");
    let mut held = config_map("held", &[]);
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete("held", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = namespaces.get("held").await.unwrap();
    assert_eq!(
        terminating.status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    assert!(
        cms.get("held")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );

    // No new content in a terminating namespace.
    let s = status(
        cms.create(&PostParams::default(), &config_map("late", &[]))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));

    // Removing the last finalizer lets the object, then the namespace, go.
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(cms.get_opt("held").await.unwrap().is_none());
    assert!(namespaces.get_opt("held").await.unwrap().is_none());
}

#[tokio::test]
async fn delete_collection_by_selector() {
    let (_server, client) = setup();
    let api = labelled_config_maps(&client).await;
    let deleted = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("env=prod"),
        )
        .await
        .unwrap();
    assert_eq!(names(deleted.left().unwrap()), ["prod-db", "prod-web"]);
    assert_eq!(
        list_names(&api, &ListParams::default()).await,
        ["bare", "dev-web"]
    );
}

#[tokio::test]
async fn discovery_and_version() {
    let (_server, client) = setup();
    let info = client.apiserver_version().await.unwrap();
    assert_eq!(info.git_version, "v1.29.14");
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "29"));

    for discovery in [
        Discovery::new(client.clone()).run().await.unwrap(),
        Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let apps = discovery.get("apps").expect("apps group");
        let (deployments, caps) = apps
            .recommended_resources()
            .into_iter()
            .find(|(ar, _)| ar.kind == "Deployment")
            .expect("deployments");
        assert_eq!(
            (
                deployments.plural.as_str(),
                deployments.api_version.as_str()
            ),
            ("deployments", "apps/v1")
        );
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        assert!(
            caps.subresources
                .iter()
                .any(|(ar, _)| ar.plural == "status")
        );
        let core = discovery.get("").expect("core group");
        assert!(
            core.recommended_resources()
                .iter()
                .any(|(ar, c)| ar.plural == "nodes" && c.scope == kube::discovery::Scope::Cluster)
        );
        for group in [
            "batch",
            "policy",
            "coordination.k8s.io",
            "apiextensions.k8s.io",
        ] {
            assert!(discovery.has_group(group), "{group}");
        }
    }
}

fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1alpha1", "Widget"),
        "widgets",
    )
}

#[tokio::test]
async fn dynamic_objects_of_an_unknown_group() {
    let (server, client) = setup();
    let ar = widget_resource();
    let api: Api<DynamicObject> = Api::default_namespaced_with(client.clone(), &ar);
    let widget = DynamicObject::new("w1", &ar).data(json!({"spec": {"size": 3}}));
    let created = api.create(&PostParams::default(), &widget).await.unwrap();
    assert!(created.uid().is_some());

    let fetched = api.get("w1").await.unwrap();
    assert_eq!(fetched.data["spec"]["size"], 3);
    assert_eq!(fetched.types.unwrap().kind, "Widget");
    let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    assert_eq!(
        names(all.list(&ListParams::default()).await.unwrap()),
        ["w1"]
    );

    // The control plane sees it by kind, too.
    let direct = server.get("example.com/v1alpha1", "Widget", Some("default"), "w1");
    assert_eq!(direct.unwrap()["spec"]["size"], 3);
    assert_eq!(status(api.get("w2").await).code, 404);
}

#[tokio::test]
async fn custom_resource_definitions_register_their_resources() {
    let (_server, client) = setup();
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Cluster",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}},
            }],
        },
    }))
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let established = within(
        "the CRD to be established",
        await_condition(
            crds.clone(),
            "gadgets.example.com",
            conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap();
    assert!(established.is_some());

    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.kind == "Gadget")
        .expect("gadgets are discovered");
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);

    let gadgets: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    gadgets
        .create(
            &PostParams::default(),
            &DynamicObject::new("g", &ar).data(json!({"spec": {"on": true}})),
        )
        .await
        .unwrap();
    let with_status = gadgets
        .patch_status(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}, "spec": {"on": false}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.data["status"]["ready"], true);
    assert_eq!(with_status.data["spec"]["on"], true);

    // Deleting the CRD takes its objects with it.
    crds.delete("gadgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        gadgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn watcher_sees_added_modified_deleted() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &config_map("before", &[]))
        .await
        .unwrap();
    let mut events = watcher(api.clone(), watcher::Config::default()).boxed();

    // The initial list.
    let initial = initial_names("the initial list", &mut events).await;
    assert_eq!(initial, ["before"]);

    api.create(&PostParams::default(), &config_map("cm", &[]))
        .await
        .unwrap();
    api.patch(
        "cm",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"key": "v2"}})),
    )
    .await
    .unwrap();
    api.delete("cm", &DeleteParams::default()).await.unwrap();

    match within("added", events.try_next()).await.unwrap().unwrap() {
        watcher::Event::Apply(cm) => assert_eq!(cm.data.unwrap()["key"], "value"),
        other => panic!("expected the creation, got {other:?}"),
    }
    match within("modified", events.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        watcher::Event::Apply(cm) => assert_eq!(cm.data.unwrap()["key"], "v2"),
        other => panic!("expected the modification, got {other:?}"),
    }
    match within("deleted", events.try_next()).await.unwrap().unwrap() {
        watcher::Event::Delete(cm) => assert_eq!(cm.name_any(), "cm"),
        other => panic!("expected the deletion, got {other:?}"),
    }
}

#[tokio::test]
async fn streaming_list_watcher() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &config_map("existing", &[]))
        .await
        .unwrap();
    let mut events = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let initial = initial_names("the streamed list", &mut events).await;
    assert_eq!(initial, ["existing"]);
    api.create(&PostParams::default(), &config_map("new", &[]))
        .await
        .unwrap();
    match within("the new object", events.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        watcher::Event::Apply(cm) => assert_eq!(cm.name_any(), "new"),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn await_condition_sees_a_pod_become_running() {
    let (_server, client) = setup();
    let api: Api<Pod> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &pod("starting", None))
        .await
        .unwrap();

    let kubelet = api.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        kubelet
            .patch_status(
                "starting",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": "Running"}})),
            )
            .await
            .unwrap();
    });
    let running = within(
        "the pod to run",
        await_condition(api.clone(), "starting", conditions::is_pod_running()),
    )
    .await
    .unwrap()
    .expect("the pod exists");
    assert_eq!(running.status.unwrap().phase.as_deref(), Some("Running"));
    writer.await.unwrap();
}

#[tokio::test]
async fn watch_from_an_old_resource_version_replays_missed_events() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let first = api
        .create(&PostParams::default(), &config_map("first", &[]))
        .await
        .unwrap();
    let since = first.resource_version().unwrap();
    // Changes nobody was watching for.
    api.create(&PostParams::default(), &config_map("second", &[]))
        .await
        .unwrap();
    api.delete("first", &DeleteParams::default()).await.unwrap();

    let stream = api
        .watch(&WatchParams::default().timeout(5), &since)
        .await
        .unwrap();
    let events: Vec<_> = within("the replay", stream.take(2).try_collect())
        .await
        .unwrap();
    match &events[..] {
        [WatchEvent::Added(second), WatchEvent::Deleted(first)] => {
            assert_eq!(
                (second.name_any().as_str(), first.name_any().as_str()),
                ("second", "first")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn watch_from_before_the_history_is_gone() {
    let (server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let created = api
        .create(&PostParams::default(), &config_map("busy", &[]))
        .await
        .unwrap();
    let since = created.resource_version().unwrap();
    let mut current = server
        .get("v1", "ConfigMap", Some("default"), "busy")
        .unwrap();
    for i in 0..10_001 {
        current["data"]["key"] = json!(i.to_string());
        current = server.update(current).unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &since)
        .await
        .unwrap()
        .boxed();
    match within("the error event", stream.next()).await {
        Some(Ok(WatchEvent::Error(status))) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
        }
        other => panic!("expected 410, got {other:?}"),
    }
    assert!(
        within("the end of the stream", stream.next())
            .await
            .is_none()
    );
}

#[tokio::test]
async fn selector_watch_reports_objects_leaving_the_selection() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &config_map("cm", &[("app", "a")]))
        .await
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("app=a").timeout(5), "0")
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        within("ADDED", stream.next()).await,
        Some(Ok(WatchEvent::Added(_)))
    ));
    api.patch(
        "cm",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "b"}}})),
    )
    .await
    .unwrap();
    match within("DELETED", stream.next()).await {
        Some(Ok(WatchEvent::Deleted(cm))) => assert_eq!(cm.labels()["app"], "b"),
        other => panic!("expected DELETED, got {other:?}"),
    }
}

#[tokio::test]
async fn subscribe_sees_direct_and_http_changes() {
    let (server, client) = setup();
    let mut events = server.subscribe();
    server
        .create(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "direct", "namespace": "default"},
        }))
        .unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &config_map("http", &[]))
        .await
        .unwrap();
    server
        .delete("v1", "ConfigMap", Some("default"), "direct")
        .unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = within("an event", events.recv()).await.unwrap();
        seen.push((
            event.kind,
            event.object["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string(),
        ));
    }
    assert_eq!(
        seen,
        [
            (EventKind::Added, "direct".to_string()),
            (EventKind::Added, "http".to_string()),
            (EventKind::Deleted, "direct".to_string()),
        ]
    );
}

#[tokio::test]
async fn direct_access_for_the_control_plane() {
    let (server, client) = setup();
    let node = server
        .create(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "node-1"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
    // Nodes keep the status they register with.
    assert_eq!(node["status"]["conditions"][0]["type"], "Ready");
    let listed = server.list("v1", "Node", None);
    assert_eq!(listed.len(), 1);

    // `update` replaces the status too, unlike a client's write to the main resource.
    let pods: Api<Pod> = Api::default_namespaced(client);
    pods.create(&PostParams::default(), &pod("p", None))
        .await
        .unwrap();
    let mut stored = server.get("v1", "Pod", Some("default"), "p").unwrap();
    stored["spec"]["nodeName"] = json!("node-1");
    stored["status"]["phase"] = json!("Running");
    server.update(stored.clone()).unwrap();
    let seen = pods.get("p").await.unwrap();
    assert_eq!(seen.spec.unwrap().node_name.as_deref(), Some("node-1"));
    assert_eq!(seen.status.unwrap().phase.as_deref(), Some("Running"));

    // The old resourceVersion is now stale.
    let e = server.update(stored).unwrap_err();
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    let e = server
        .delete("v1", "Pod", Some("default"), "missing")
        .unwrap_err();
    assert_eq!(e.code, 404);
}

#[tokio::test]
async fn metadata_only_requests() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &config_map("cm", &[("k", "v")]))
        .await
        .unwrap();
    let list = api.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].labels()["k"], "v");
    let meta = api.get_metadata("cm").await.unwrap();
    assert_eq!(meta.name_any(), "cm");
}

async fn raw(
    client: &Client,
    method: &str,
    uri: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
        .unwrap();
    let response = client.send(request).await.unwrap();
    let code = response.status().as_u16();
    let bytes = response.into_body().collect_bytes().await.unwrap();
    (code, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn bad_requests_get_status_errors() {
    let (server, client) = setup();
    let before = server.request_count();

    let (code, body) = raw(&client, "GET", "/api/v1/nothings", "application/json", "").await;
    assert_eq!((code, body["reason"].as_str()), (404, Some("NotFound")));
    assert_eq!(body["kind"], "Status");
    let (code, _) = raw(&client, "GET", "/no/such/path", "application/json", "").await;
    assert_eq!(code, 404);

    let (code, body) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        "{oops",
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));

    let (code, body) = raw(
        &client,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/x",
        "text/plain",
        "{}",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (415, Some("UnsupportedMediaType"))
    );

    let (code, body) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/default/configmaps/x",
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (405, Some("MethodNotAllowed"))
    );

    let (code, body) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        "application/json",
        "[1]",
    )
    .await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));

    assert_eq!(server.request_count() - before, 6);
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let (server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let mut events = server.subscribe();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let would_be = api.create(&dry, &config_map("cm", &[])).await.unwrap();
    assert_eq!(would_be.name_any(), "cm");
    assert!(api.get_opt("cm").await.unwrap().is_none());
    // Validation still runs.
    assert_eq!(
        status(api.create(&dry, &config_map("Bad", &[])).await).code,
        422
    );

    api.create(&PostParams::default(), &config_map("cm", &[]))
        .await
        .unwrap();
    let dry_patch = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let patched = api
        .patch(
            "cm",
            &dry_patch,
            &Patch::Merge(json!({"data": {"key": "dry"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["key"], "dry");
    let dry_delete = DeleteParams {
        dry_run: true,
        ..Default::default()
    };
    api.delete("cm", &dry_delete).await.unwrap();
    let everything = ListParams::default();
    api.delete_collection(&dry_delete, &everything)
        .await
        .unwrap();
    let stored = api.get("cm").await.unwrap();
    assert_eq!(stored.data.unwrap()["key"], "value");

    // Only the real create was announced.
    assert_eq!(events.try_recv().unwrap().kind, EventKind::Added);
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn watch_ends_after_timeout_seconds() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &config_map("cm", &[]))
        .await
        .unwrap();
    let stream = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap();
    let events: Vec<_> = within("the watch to time out", stream.try_collect())
        .await
        .unwrap();
    assert!(matches!(&events[..], [WatchEvent::Added(cm)] if cm.name_any() == "cm"));
}

/// A custom resource (stored as JSON, so its size is what etcd gets) with `bytes` of payload,
/// and its API on a fresh server.
fn big_thing(name: &str, bytes: usize) -> (Api<DynamicObject>, DynamicObject) {
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Thing");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "things");
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"payload": "x".repeat(bytes)},
    }))
    .unwrap();
    let client = setup().1;
    (Api::namespaced_with(client, "default", &resource), object)
}

#[tokio::test]
async fn a_body_over_the_apiservers_3_mib_limit_is_refused_with_413() {
    let (_server, client) = setup();
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let mut cm = config_map("huge", &[]);
    cm.data = Some([("key".to_owned(), "x".repeat(3 * 1024 * 1024))].into());
    let s = status(api.create(&PostParams::default(), &cm).await);
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728"
        )
    );
    // A server-side apply is a PATCH: the same limit.
    let s = status(
        api.patch("huge", &PatchParams::apply("t"), &Patch::Apply(&cm))
            .await,
    );
    assert_eq!(s.code, 413);
    assert_eq!(status(api.get("huge").await).code, 404, "nothing stored");
}

#[tokio::test]
async fn an_object_over_etcds_request_limit_is_refused_as_the_apiserver_relays_it() {
    // Under 3 MiB, so the API server reads it; over 1.5 MiB, so etcd refuses it.
    let (api, thing) = big_thing("big", 1600 * 1024);
    let s = status(api.create(&PostParams::default(), &thing).await);
    assert_eq!(
        (s.code, s.reason.as_str(), s.message.as_str()),
        (500, "", "etcdserver: request is too large")
    );
    assert_eq!(status(api.get("big").await).code, 404, "nothing stored");

    // One that fits is stored; growing it past the limit is refused and leaves it as it was.
    let (api, thing) = big_thing("grows", 1400 * 1024);
    api.create(&PostParams::default(), &thing).await.unwrap();
    let grow = json!({"spec": {"payload": "y".repeat(1600 * 1024)}});
    let s = status(
        api.patch("grows", &PatchParams::default(), &Patch::Merge(&grow))
            .await,
    );
    assert_eq!(
        (s.code, s.message.as_str()),
        (500, "etcdserver: request is too large")
    );
    let stored = api.get("grows").await.unwrap();
    assert!(
        stored.data["spec"]["payload"]
            .as_str()
            .unwrap()
            .starts_with('x')
    );

    // A dry run never reaches etcd.
    let (api, thing) = big_thing("dry", 1600 * 1024);
    api.create(
        &PostParams {
            dry_run: true,
            ..Default::default()
        },
        &thing,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn default_kube_system_and_kube_public_cannot_be_deleted_but_kube_node_lease_can() {
    let (_server, client) = setup();
    let namespaces: Api<Namespace> = Api::all(client);
    for name in ["default", "kube-system", "kube-public"] {
        let s = status(namespaces.delete(name, &DeleteParams::default()).await);
        assert_eq!(
            (s.code, s.reason.as_str(), s.message.as_str()),
            (
                403,
                "Forbidden",
                format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted")
                    .as_str()
            )
        );
        let details = s.details.unwrap();
        assert_eq!(
            (details.name.as_str(), details.kind.as_str()),
            (name, "namespaces")
        );
        let kept = namespaces.get(name).await.unwrap();
        assert!(
            kept.metadata.deletion_timestamp.is_none(),
            "{name} not terminating"
        );
    }
    namespaces
        .delete("kube-node-lease", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(status(namespaces.get("kube-node-lease").await).code, 404);
}
