//! Steady-state waits and background probes on the sim's API: statuses are patched by hand
//! here, as a controller would.

use std::time::Duration;

use chaos_runtime::conditions;
use chaos_runtime::probe::{always, eventually};
use chaos_runtime::wait;
use chaos_sim::ApiServer;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

async fn deployment_with_available(available: i32) -> Api<Deployment> {
    let api: Api<Deployment> = Api::namespaced(ApiServer::new("v1.35.8").client(), "default");
    let web: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &web).await.unwrap();
    set_available(&api, available).await;
    api
}

async fn set_available(api: &Api<Deployment>, available: i32) {
    let status = json!({"status": {"replicas": 2, "readyReplicas": available, "availableReplicas": available}});
    api.patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

fn web() -> watcher::Config {
    watcher::Config::default().fields("metadata.name=web")
}

/// Lets the probe's watch see the current state (the probe runs in the background).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn an_always_probe_that_holds_passes() {
    let api = deployment_with_available(2).await;
    let probe = always(
        api.clone(),
        web(),
        "web available",
        conditions::deployment_available("web", 1),
    );
    settle().await;
    set_available(&api, 1).await;
    settle().await;
    probe.finish().await.unwrap();
}

#[tokio::test]
async fn an_always_probe_reports_when_it_broke_and_what_it_saw() {
    let api = deployment_with_available(2).await;
    let probe = always(
        api.clone(),
        web(),
        "web keeps 1 available",
        conditions::deployment_available("web", 1),
    );
    settle().await;
    set_available(&api, 0).await;
    settle().await;
    set_available(&api, 2).await; // Recovering later does not undo the break.
    settle().await;
    let err = probe.finish().await.unwrap_err().to_string();
    assert!(
        err.starts_with("always-probe `web keeps 1 available` broke "),
        "{err}"
    );
    assert!(
        err.contains("it saw: deployment web: 0 available, 0 ready, 2 replicas"),
        "{err}"
    );
}

#[tokio::test]
async fn an_eventually_probe_passes_once_the_condition_held() {
    let api = deployment_with_available(0).await;
    let probe = eventually(
        api.clone(),
        web(),
        "web recovers",
        conditions::deployment_available("web", 2),
    );
    settle().await;
    set_available(&api, 2).await;
    settle().await;
    set_available(&api, 0).await;
    probe.finish().await.unwrap();
}

#[tokio::test]
async fn an_eventually_probe_that_never_held_says_what_it_saw_last() {
    let api = deployment_with_available(0).await;
    let probe = eventually(
        api.clone(),
        web(),
        "web recovers",
        conditions::deployment_available("web", 2),
    );
    settle().await;
    set_available(&api, 1).await;
    settle().await;
    let err = probe.finish().await.unwrap_err().to_string();
    assert!(
        err.starts_with("eventually-probe `web recovers` never held in "),
        "{err}"
    );
    assert!(err.ends_with("last seen: deployment web: 1 available, 1 ready, 2 replicas (wanted at least 2 available)"), "{err}");
}

#[tokio::test]
async fn a_probe_that_saw_nothing_proves_nothing() {
    let api = deployment_with_available(2).await;
    let probe = always(
        api,
        web(),
        "web available",
        conditions::deployment_available("web", 1),
    );
    // Finished before its first list could arrive.
    let err = probe.finish().await.unwrap_err().to_string();
    assert!(err.contains("saw no complete state"), "{err}");
}

#[tokio::test]
async fn a_wait_judges_only_complete_lists() {
    // An "is gone" condition holds for an empty set: it must not pass before the list arrives.
    let api = deployment_with_available(2).await;
    let err = wait::until_list(
        api,
        web(),
        "web to be deleted",
        Duration::from_millis(500),
        |found| match found {
            [] => Ok(()),
            _ => Err(format!("{} deployments", found.len())),
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "timed out after 500ms waiting for web to be deleted; last seen: 1 deployments"
    );
}
