//! Retries, run as a child process by `tests/flaky.rs`: a test that fails its first attempt and
//! passes the next, one that fails every attempt, one that fails once without the key (flaky
//! only with `CHAOS_RETRIES`), one whose `retries = 0` wins over `CHAOS_RETRIES`, one that breaks
//! its cluster on its first attempt, one that passes and one ignored. Whether a test failed before
//! is a marker file in the directory `CHAOS_SELFTEST_FLAKY_DIR` names, which the caller makes
//! afresh.

use std::path::PathBuf;

use chaos_runtime::k8s_openapi::api::core::v1::Node as NodeObject;
use chaos_runtime::kube::Api;
use chaos_runtime::kube::api::{DeleteParams, ListParams};
use chaos_runtime::prelude::*;

/// True the first time it is called for `marker` in this directory, false after.
fn first_time(marker: &str) -> anyhow::Result<bool> {
    let Some(dir) = std::env::var_os("CHAOS_SELFTEST_FLAKY_DIR") else {
        anyhow::bail!("set CHAOS_SELFTEST_FLAKY_DIR to an empty directory for the markers");
    };
    let path = PathBuf::from(dir).join(marker);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(anyhow::anyhow!("marker {}: {err}", path.display())),
    }
}

fn say_seed(test: &str, cluster: &Cluster) {
    eprintln!("flaky: {test} attempt seed {}", cluster.seed());
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.31", retries = 1)]
async fn fails_first_then_passes(cluster: &Cluster) -> anyhow::Result<()> {
    say_seed("fails_first_then_passes", cluster);
    if first_time("fails_first_then_passes")? {
        anyhow::bail!("the first attempt fails on purpose");
    }
    Ok(())
}

#[chaos_test(masters = 1, workers = 1, k8s = "1.31", retries = 2)]
async fn fails_every_attempt(cluster: &Cluster) -> anyhow::Result<()> {
    anyhow::bail!("fails on purpose with seed {}", cluster.seed())
}

/// No `retries`: fails once, so it passes only when `CHAOS_RETRIES` gives it a retry.
#[chaos_test(masters = 1, workers = 1, k8s = "1.31")]
async fn fails_once_without_the_key(cluster: &Cluster) -> anyhow::Result<()> {
    say_seed("fails_once_without_the_key", cluster);
    if first_time("fails_once_without_the_key")? {
        anyhow::bail!("the first attempt fails on purpose");
    }
    Ok(())
}

/// `retries = 0` wins over `CHAOS_RETRIES`: it is never retried.
#[chaos_test(masters = 1, workers = 1, k8s = "1.31", retries = 0)]
async fn never_retried(_cluster: &Cluster) -> anyhow::Result<()> {
    if first_time("never_retried")? {
        anyhow::bail!("the first attempt fails on purpose");
    }
    Ok(())
}

/// The first attempt deletes a node and fails: the cluster cannot be healed, so the second
/// attempt runs on a new one, whole.
#[chaos_test(masters = 1, workers = 2, k8s = "1.30", retries = 1)]
async fn breaks_its_cluster_first(cluster: &Cluster) -> anyhow::Result<()> {
    let nodes: Api<NodeObject> = Api::all(cluster.client());
    eprintln!("flaky: breaks_its_cluster_first on {}", cluster.name());
    if first_time("breaks_its_cluster_first")? {
        nodes
            .delete(
                &format!("{}-worker2", cluster.name()),
                &DeleteParams::default(),
            )
            .await?;
        anyhow::bail!("deleted a node and failed on purpose");
    }
    let count = nodes.list(&ListParams::default()).await?.items.len();
    anyhow::ensure!(
        count == 3,
        "the retry got a cluster of {count} nodes, not 3"
    );
    Ok(())
}

/// Passes. With `CHAOS_SELFTEST_MKDIR`, it first makes a directory there (where the JUnit report
/// is to go, so that writing it fails at the end of the run).
#[chaos_test(masters = 1, workers = 1, k8s = "1.31")]
async fn passes(_cluster: &Cluster) -> anyhow::Result<()> {
    if let Some(dir) = std::env::var_os("CHAOS_SELFTEST_MKDIR") {
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}

#[chaos_test(
    masters = 1,
    workers = 1,
    k8s = "1.31",
    ignore = "shows a skipped case"
)]
async fn ignored(_cluster: &Cluster) {}

chaos_runtime::main!();
