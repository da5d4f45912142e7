//! What a run prints, run as a child process by `tests/output.rs`: tests on several topologies
//! that print lines of their own while `chaos:` lines come (whole lines), a test that runs longer
//! than the progress period (progress lines), probes that break (the test stops at the break, or
//! runs on when told to), and a failure with colour codes in it (`--format json`).

use std::time::Duration;

use chaos_runtime::k8s_openapi::api::apps::v1::Deployment;
use chaos_runtime::kube::Api;
use chaos_runtime::kube::api::{Patch, PatchParams};
use chaos_runtime::prelude::*;
use chaos_runtime::probe::Probe;

const WAIT: Duration = Duration::from_secs(30);

const APP: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  \
    replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: \
    {app: web}}\n    spec: {containers: [{name: web, image: 'registry.k8s.io/pause:3.10'}]}\n";

/// Deploys `web` (1 replica), waits until it is available and starts an always-probe on it.
async fn deploy_and_probe(cluster: &Cluster) -> anyhow::Result<Probe> {
    cluster.apply(APP).await?;
    cluster
        .wait_for_deployment_available("web", 1, WAIT)
        .await?;
    Ok(cluster.always_available("web", 1))
}

/// Breaks the steady state for good: `web` scaled to no replica.
async fn scale_web_to_zero(cluster: &Cluster) -> anyhow::Result<()> {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), cluster.namespace());
    let patch = serde_json::json!({"spec": {"replicas": 0}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    cluster.timeline().note("scaled web to 0 replicas");
    Ok(())
}

/// Would run a minute past the break: the probe stops it at the break instead.
#[chaos_test(masters = 1, workers = 1, k8s = "1.31", timeout = "5m")]
async fn probe_stops_the_test_at_the_break(cluster: &Cluster) -> anyhow::Result<()> {
    let available = deploy_and_probe(cluster).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    scale_web_to_zero(cluster).await?;
    tokio::time::sleep(Duration::from_secs(60)).await;
    available.finish().await?;
    Ok(())
}

/// Told to let the test run on: the break is said by `finish`, which this test expects.
#[chaos_test(masters = 1, workers = 1, k8s = "1.31")]
async fn probe_lets_the_test_run_on_when_told(cluster: &Cluster) -> anyhow::Result<()> {
    let available = deploy_and_probe(cluster).await?.fail_test_at_break(false);
    tokio::time::sleep(Duration::from_millis(300)).await;
    scale_web_to_zero(cluster).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let Err(broke) = available.finish().await else {
        anyhow::bail!("the probe should have broken");
    };
    anyhow::ensure!(broke.message.contains(" broke "), "{broke}");
    println!("output: the test ran on after the break");
    Ok(())
}

/// Runs past a few progress periods.
#[chaos_test(masters = 1, workers = 2, k8s = "1.31")]
async fn slow(_cluster: &Cluster) -> anyhow::Result<()> {
    tokio::time::sleep(Duration::from_millis(2500)).await;
    Ok(())
}

/// Its failure has colour codes in it, as some assertion libraries print.
#[chaos_test(masters = 1, workers = 2, k8s = "1.30")]
async fn fails_in_colour(_cluster: &Cluster) -> anyhow::Result<()> {
    anyhow::bail!("\u{1b}[31mred\u{1b}[0m and \u{1b}[1;32mgreen\u{1b}[0m on purpose")
}

/// Prints lines of its own while the harness prints `chaos:` lines.
async fn chatter(cluster: &Cluster) -> anyhow::Result<()> {
    for i in 0..20 {
        println!("output: {} says {i}", cluster.topology());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

#[chaos_test(masters = 1, workers = 2, k8s = "1.30")]
async fn chatter_a(cluster: &Cluster) -> anyhow::Result<()> {
    chatter(cluster).await
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.30")]
async fn chatter_b(cluster: &Cluster) -> anyhow::Result<()> {
    chatter(cluster).await
}

#[chaos_test(masters = 1, workers = 3, k8s = "1.30")]
async fn chatter_c(cluster: &Cluster) -> anyhow::Result<()> {
    chatter(cluster).await
}

chaos_runtime::main!();
